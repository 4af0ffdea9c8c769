//! The outbox of webhook deliveries. Rows are written by triggers in the statement that stores
//! the change (see the `webhooks` migration); here the worker claims due deliveries and records
//! attempts, and the log, replays and pruning are served.

use super::{Db, Dialect, StoreError};
use carriers::{TrackingEvent, TrackingStatus};
use sqlx::Row;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Due at `next_attempt_at` (or leased by a worker sending it).
    Pending,
    Delivered,
    /// Its retry window ended without a 2xx; sent again only when replayed.
    Dead,
    /// Its endpoint was deleted.
    Cancelled,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 4] =
        [Self::Pending, Self::Delivered, Self::Dead, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl TryFrom<String> for DeliveryState {
    type Error = StoreError;

    fn try_from(s: String) -> Result<Self, StoreError> {
        Self::parse(&s).ok_or_else(|| StoreError::decode(format!("unknown delivery state {s}")))
    }
}

/// One claimed delivery with everything needed to send it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub attempt: i64,
    pub window_start: i64,
    pub created_at: i64,
    pub sequence: i64,
    pub event_type: String,
    /// The waybill of a tracking or last-mile delivery (`None`: a service's event).
    pub waybill_id: Option<String>,
    pub url: String,
    pub secret: String,
    pub waybill_number: String,
    pub reference_number: String,
    pub carrier: String,
    /// tracking.updated: who reported the event, and the event.
    pub event: Option<(String, TrackingEvent)>,
    /// last_mile.assigned: carrier and number.
    pub last_mile: Option<(String, String)>,
    /// A service's event: its id and the `data` pushed.
    pub service_event: Option<(String, String)>,
}

/// A delivery as the log shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: String,
    pub waybill_id: Option<String>,
    pub endpoint_id: String,
    /// Empty for a service's event.
    pub waybill_number: String,
    /// A service's event: its id and aggregate.
    pub service_event_id: Option<String>,
    pub aggregate: Option<String>,
    pub sequence: i64,
    pub event_type: String,
    #[sqlx(try_from = "String")]
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub last_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attempt {
    pub attempt: i64,
    pub at: i64,
    pub http_status: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// How one attempt ended, as stored.
#[derive(Debug, Clone)]
pub struct AttemptRecord<'a> {
    pub delivery_id: &'a str,
    pub attempt: i64,
    pub at: i64,
    pub http_status: Option<i64>,
    pub error: Option<&'a str>,
    pub duration_ms: i64,
    /// Delivered, pending (retry at `next_attempt_at`) or dead.
    pub state: DeliveryState,
    pub next_attempt_at: i64,
}

/// Outbox figures for `/metrics`.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
pub struct OutboxStats {
    pub pending: i64,
    pub oldest_pending_created_at: Option<i64>,
    pub dead: i64,
}

/// `SELECT` of a delivery as the log shows it (`d`: the delivery, `w`: its waybill), then `$where`.
macro_rules! select_delivery {
    ($where:literal) => {
        concat!(
            "SELECT d.id, d.endpoint_id, COALESCE(w.waybill_number, '') AS waybill_number, \
             d.sequence, d.event_type, d.state, d.attempts, d.next_attempt_at, d.created_at, \
             d.last_attempt_at, d.last_status, d.last_error, d.delivered_at, d.waybill_id, \
             d.event_id AS service_event_id, d.aggregate \
             FROM webhook_deliveries d \
             LEFT JOIN waybills w ON w.id = d.waybill_id WHERE ",
            $where
        )
    };
}

/// Claims due deliveries (see `Db::claim_deliveries`); `$lock` is the dialect's row locking.
/// Each endpoint's due deliveries are ranked (oldest first) and an endpoint gets at most `$4`
/// in flight counting what it has leased already; endpoints take turns (every endpoint's first,
/// then every endpoint's second, ...), so one busy or slow endpoint cannot take every slot.
/// The ranking reads a snapshot; the conditions repeated on the locked row and on the update are
/// what PostgreSQL re-checks against a row another instance claimed meanwhile (its lease moved
/// `next_attempt_at` ahead), so a delivery is never claimed twice.
macro_rules! claim_deliveries {
    ($lock:literal) => {
        concat!(
            "UPDATE webhook_deliveries SET next_attempt_at = $1, leased_until = $1, \
             attempts = attempts + 1 \
             WHERE state = 'pending' AND next_attempt_at <= $2 \
             AND id IN (SELECT l.id FROM webhook_deliveries l \
             WHERE l.state = 'pending' AND l.next_attempt_at <= $2 AND l.id IN (\
             SELECT ranked.id FROM (SELECT d.id, d.next_attempt_at, d.created_at, \
             ROW_NUMBER() OVER (PARTITION BY d.endpoint_id \
             ORDER BY d.next_attempt_at, d.created_at) AS turn, \
             (SELECT COUNT(*) FROM webhook_deliveries f WHERE f.endpoint_id = d.endpoint_id \
             AND f.state = 'pending' AND f.leased_until > $2) AS in_flight \
             FROM webhook_deliveries d \
             WHERE d.state = 'pending' AND d.next_attempt_at <= $2 AND NOT EXISTS \
             (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id \
             AND (p.waybill_id = d.waybill_id OR p.aggregate = d.aggregate) \
             AND p.state = 'pending' AND p.sequence < d.sequence)\
             ) ranked WHERE ranked.turn + ranked.in_flight <= $4 \
             ORDER BY ranked.turn, ranked.next_attempt_at, ranked.created_at LIMIT $3) ",
            $lock,
            ") RETURNING id"
        )
    };
}

/// `$1, $2, ...` for `n` parameters starting at `from`.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Db {
    /// Whether any delivery is due (a read, so idle instances do not write).
    pub async fn deliveries_due(&self, now_ms: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "SELECT 1 FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 \
             LIMIT 1",
        )
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }

    /// Claims up to `limit` due deliveries, each the oldest pending one of its (endpoint,
    /// waybill), leasing them until `lease_until` and counting the attempt, in one statement:
    /// instances side by side never claim the same delivery, and a later event of a waybill is
    /// never sent while an earlier one to the same endpoint is still pending.
    pub async fn claim_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
        per_endpoint: u32,
        lease_until: i64,
    ) -> Result<Vec<Job>, StoreError> {
        let sql = match self.dialect {
            Dialect::Postgres => claim_deliveries!("FOR UPDATE SKIP LOCKED"),
            Dialect::Sqlite => claim_deliveries!(""),
        };
        let claimed = self
            .write_fetch_all(
                sqlx::query(sql)
                    .bind(lease_until)
                    .bind(now_ms)
                    .bind(i64::from(limit))
                    .bind(i64::from(per_endpoint)),
            )
            .await?;
        let ids: Vec<String> = claimed
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT d.id, d.attempts, d.window_start, d.created_at, d.sequence, d.event_type, \
             d.waybill_id, e.url, e.secret, COALESCE(w.waybill_number, '') AS waybill_number, \
             COALESCE(w.reference_number, '') AS reference_number, \
             COALESCE(w.carrier, '') AS carrier, d.event_id, d.payload, d.source, \
             d.last_mile_carrier, \
             d.last_mile_tracking_number, t.status_code, t.occurred_at, t.status, t.description, \
             t.timezone, t.address, t.city, t.state, t.postal_code, t.country \
             FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             LEFT JOIN waybills w ON w.id = d.waybill_id \
             LEFT JOIN tracking_events t ON t.waybill_id = d.waybill_id AND t.source = d.source \
             AND t.status_code = d.status_code AND t.occurred_at_ms = d.occurred_at_ms \
             WHERE d.id IN ({})",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(sql));
        for id in &ids {
            query = query.bind(id.clone());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.into_iter().map(Job::try_from).collect()
    }

    /// Stores an attempt and its consequence for the delivery, unless the delivery was claimed
    /// again meanwhile (its lease ran out): then the newer claim decides.
    pub async fn record_attempt(&self, r: &AttemptRecord<'_>) -> Result<(), StoreError> {
        self.write_group(vec![
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, attempt, at, http_status, error, \
                 duration_ms) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (delivery_id, attempt) DO NOTHING",
            )
            .bind(r.delivery_id.to_owned())
            .bind(r.attempt)
            .bind(r.at)
            .bind(r.http_status)
            .bind(r.error.map(str::to_owned))
            .bind(r.duration_ms),
            sqlx::query(
                "UPDATE webhook_deliveries SET state = $3, next_attempt_at = $4, \
                 leased_until = NULL, last_attempt_at = $5, last_status = $6, last_error = $7, \
                 delivered_at = CASE WHEN $3 = 'delivered' THEN $5 ELSE delivered_at END \
                 WHERE id = $1 AND attempts = $2 AND state = 'pending'",
            )
            .bind(r.delivery_id.to_owned())
            .bind(r.attempt)
            .bind(r.state.as_str())
            .bind(r.next_attempt_at)
            .bind(r.at)
            .bind(r.http_status)
            .bind(r.error.map(str::to_owned)),
        ])
        .await
        .map(drop)
    }

    /// The tenant's deliveries, newest first, optionally of one endpoint and in one state.
    pub async fn webhook_deliveries(
        &self,
        tenant_id: &str,
        endpoint_id: Option<&str>,
        state: Option<DeliveryState>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query_as(select_delivery!(
            "d.tenant_id = $1 AND ($2 IS NULL OR d.endpoint_id = $2) \
             AND ($3 IS NULL OR d.state = $3) ORDER BY d.created_at DESC, d.sequence DESC LIMIT $4"
        ))
        .bind(tenant_id.to_owned())
        .bind(endpoint_id.map(str::to_owned))
        .bind(state.map(|s| s.as_str()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// One delivery of the tenant with its attempts, oldest first.
    pub async fn webhook_delivery(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<(Delivery, Vec<Attempt>)>, StoreError> {
        let Some(delivery) = sqlx::query_as(select_delivery!("d.id = $1 AND d.tenant_id = $2"))
            .bind(id.to_owned())
            .bind(tenant_id.to_owned())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let attempts = sqlx::query_as(
            "SELECT attempt, at, http_status, error, duration_ms FROM webhook_attempts \
             WHERE delivery_id = $1 ORDER BY attempt",
        )
        .bind(id.to_owned())
        .fetch_all(&self.pool)
        .await?;
        Ok(Some((delivery, attempts)))
    }

    /// Sends a delivery again (due now, with a fresh retry window). None when the tenant has no
    /// such delivery or its endpoint is deleted.
    pub async fn replay_delivery(
        &self,
        tenant_id: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = self
            .write(
                sqlx::query(
                    "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $3, \
                     window_start = $3 WHERE id = $1 AND tenant_id = $2 AND state <> 'cancelled' \
                     AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE deleted_at IS NULL)",
                )
                .bind(id.to_owned())
                .bind(tenant_id.to_owned())
                .bind(now_ms),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sends every dead delivery of an endpoint again; how many.
    pub async fn replay_dead(
        &self,
        tenant_id: &str,
        endpoint_id: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let done = self
            .write(
                sqlx::query(
                    "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $3, \
                     window_start = $3 WHERE endpoint_id = $1 AND tenant_id = $2 \
                     AND state = 'dead' AND endpoint_id IN \
                     (SELECT id FROM webhook_endpoints WHERE deleted_at IS NULL)",
                )
                .bind(endpoint_id.to_owned())
                .bind(tenant_id.to_owned())
                .bind(now_ms),
            )
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes up to `limit` delivered, cancelled or dead deliveries created before `before`
    /// (their attempts go with them); how many.
    pub async fn prune_deliveries(&self, before: i64, limit: u32) -> Result<u64, StoreError> {
        let done = self
            .write(
                sqlx::query(
                    "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries \
                     WHERE state IN ('delivered', 'cancelled', 'dead') AND created_at < $1 \
                     ORDER BY created_at LIMIT $2)",
                )
                .bind(before)
                .bind(i64::from(limit)),
            )
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        Ok(sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending') AS pending, \
             (SELECT MIN(created_at) FROM webhook_deliveries WHERE state = 'pending') \
             AS oldest_pending_created_at, \
             (SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'dead') AS dead",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}

/// A claimed delivery as read: the delivery, its endpoint and waybill, and the event it pushes.
#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    attempts: i64,
    window_start: i64,
    created_at: i64,
    sequence: i64,
    event_type: String,
    waybill_id: Option<String>,
    url: String,
    secret: String,
    waybill_number: String,
    reference_number: String,
    carrier: String,
    event_id: Option<String>,
    payload: Option<String>,
    source: Option<String>,
    last_mile_carrier: Option<String>,
    last_mile_tracking_number: Option<String>,
    status_code: Option<String>,
    occurred_at: Option<String>,
    status: Option<String>,
    description: Option<String>,
    timezone: Option<String>,
    address: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;

    fn try_from(r: JobRow) -> Result<Self, StoreError> {
        let event = match (r.source, r.status_code, r.occurred_at) {
            (Some(source), Some(status_code), Some(at)) => {
                let occurred_at =
                    chrono::DateTime::parse_from_rfc3339(&at).map_err(StoreError::decode)?;
                Some((
                    source,
                    TrackingEvent {
                        status_code,
                        status: TrackingStatus::parse(r.status.as_deref().unwrap_or_default()),
                        description: r.description.unwrap_or_default(),
                        occurred_at,
                        timezone: r.timezone,
                        address: r.address,
                        city: r.city,
                        state: r.state,
                        postal_code: r.postal_code,
                        country: r.country,
                    },
                ))
            }
            _ => None,
        };
        let last_mile = r.last_mile_carrier.zip(r.last_mile_tracking_number);
        Ok(Job {
            id: r.id,
            attempt: r.attempts,
            window_start: r.window_start,
            created_at: r.created_at,
            sequence: r.sequence,
            event_type: r.event_type,
            waybill_id: r.waybill_id,
            url: r.url,
            secret: r.secret,
            waybill_number: r.waybill_number,
            reference_number: r.reference_number,
            carrier: r.carrier,
            event,
            last_mile,
            service_event: r.event_id.zip(r.payload),
        })
    }
}
