//! Webhook endpoints and the outbox of deliveries. Deliveries are written by triggers in the
//! statement that stores the change (see the `webhooks` migration); this module manages
//! endpoints, claims due deliveries for the worker, records attempts, and serves the log.

use super::{Db, Dialect, now_rfc3339};
use crate::store::error::StoreError;
use carriers::{TrackingEvent, TrackingStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub created_at: String,
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
    pub waybill_id: String,
    pub url: String,
    pub secret: String,
    pub waybill_number: String,
    pub reference_number: String,
    pub carrier: String,
    /// tracking.updated: who reported the event, and the event.
    pub event: Option<(String, TrackingEvent)>,
    /// last_mile.assigned: carrier and number.
    pub last_mile: Option<(String, String)>,
}

/// A delivery as the log shows it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub waybill_id: String,
    pub endpoint_id: String,
    pub waybill_number: String,
    pub sequence: i64,
    pub event_type: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub last_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

#[derive(Debug, Clone)]
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
    /// `delivered`, `pending` (retry at `next_attempt_at`) or `dead`.
    pub state: &'static str,
    pub next_attempt_at: i64,
}

/// Outbox figures for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxStats {
    pub pending: i64,
    pub oldest_pending_created_at: Option<i64>,
    pub dead: i64,
}

/// `SELECT` of a delivery as the log shows it (`d`: the delivery, `w`: its waybill), then `$where`.
macro_rules! select_delivery {
    ($where:literal) => {
        concat!(
            "SELECT d.id, d.endpoint_id, w.waybill_number, d.sequence, d.event_type, d.state, \
             d.attempts, d.next_attempt_at, d.created_at, d.last_attempt_at, d.last_status, \
             d.last_error, d.delivered_at, d.waybill_id FROM webhook_deliveries d \
             JOIN waybills w ON w.id = d.waybill_id WHERE ",
            $where
        )
    };
}

/// Claims due deliveries (see `Db::claim_deliveries`); `$lock` is the dialect's row locking.
macro_rules! claim_deliveries {
    ($lock:literal) => {
        concat!(
            "UPDATE webhook_deliveries SET next_attempt_at = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT d.id FROM webhook_deliveries d \
             WHERE d.state = 'pending' AND d.next_attempt_at <= $2 AND NOT EXISTS \
             (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = d.endpoint_id \
             AND p.waybill_id = d.waybill_id AND p.state = 'pending' AND p.sequence < d.sequence) \
             ORDER BY d.next_attempt_at, d.created_at LIMIT $3 ",
            $lock,
            ") RETURNING id"
        )
    };
}

fn delivery(row: &AnyRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: row.try_get(0)?,
        endpoint_id: row.try_get(1)?,
        waybill_number: row.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
        sequence: row.try_get(3)?,
        event_type: row.try_get(4)?,
        state: row.try_get(5)?,
        attempts: row.try_get(6)?,
        next_attempt_at: row.try_get(7)?,
        created_at: row.try_get(8)?,
        last_attempt_at: row.try_get(9)?,
        last_status: row.try_get(10)?,
        last_error: row.try_get(11)?,
        delivered_at: row.try_get(12)?,
        waybill_id: row.try_get(13)?,
    })
}

fn endpoint(row: &AnyRow) -> Result<Endpoint, StoreError> {
    let types: String = row.try_get(3)?;
    Ok(Endpoint {
        id: row.try_get(0)?,
        tenant_id: row.try_get(1)?,
        url: row.try_get(2)?,
        event_types: types
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        description: row.try_get(4)?,
        created_at: row.try_get(5)?,
    })
}

/// `$1, $2, ...` for `n` parameters starting at `from`.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Db {
    pub async fn insert_webhook_endpoint(
        &self,
        e: &Endpoint,
        secret: &str,
    ) -> Result<(), StoreError> {
        self.write(
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, description, \
                 secret, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(e.id.clone())
            .bind(e.tenant_id.clone())
            .bind(e.url.clone())
            .bind(format!(",{},", e.event_types.join(",")))
            .bind(e.description.clone())
            .bind(secret.to_owned())
            .bind(e.created_at.clone()),
        )
        .await
        .map(drop)
    }

    /// The tenant's endpoints that are not deleted, oldest first.
    pub async fn webhook_endpoints(&self, tenant_id: &str) -> Result<Vec<Endpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, url, event_types, description, created_at \
             FROM webhook_endpoints WHERE tenant_id = $1 AND deleted_at IS NULL \
             ORDER BY created_at, id",
        )
        .bind(tenant_id.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(endpoint).collect()
    }

    /// Deletes an endpoint of the tenant; what it still had to receive (or had dead) is cancelled
    /// in the same unit. False when the tenant has no such endpoint.
    pub async fn delete_webhook_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let done = self
            .write_group(vec![
                sqlx::query(
                    "UPDATE webhook_endpoints SET deleted_at = $3 \
                     WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
                )
                .bind(id.to_owned())
                .bind(tenant_id.to_owned())
                .bind(now_rfc3339()),
                sqlx::query(
                    "UPDATE webhook_deliveries SET state = 'cancelled' \
                     WHERE endpoint_id = $1 AND tenant_id = $2 AND state IN ('pending', 'dead')",
                )
                .bind(id.to_owned())
                .bind(tenant_id.to_owned()),
            ])
            .await?;
        Ok(done[0].rows_affected() == 1)
    }

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
                    .bind(i64::from(limit)),
            )
            .await?;
        let ids: Vec<String> = claimed
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT d.id, d.attempts, d.window_start, d.created_at, d.sequence, d.event_type, \
             d.waybill_id, e.url, e.secret, w.waybill_number, w.reference_number, w.carrier, \
             d.source, d.last_mile_carrier, d.last_mile_tracking_number, \
             t.status_code, t.occurred_at, t.status, t.description, t.timezone, t.address, \
             t.city, t.state, t.postal_code, t.country \
             FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             JOIN waybills w ON w.id = d.waybill_id \
             LEFT JOIN tracking_events t ON t.waybill_id = d.waybill_id AND t.source = d.source \
             AND t.status_code = d.status_code AND t.occurred_at_ms = d.occurred_at_ms \
             WHERE d.id IN ({})",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in &ids {
            query = query.bind(id.clone());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(job).collect()
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
                 last_attempt_at = $5, last_status = $6, last_error = $7, \
                 delivered_at = CASE WHEN $3 = 'delivered' THEN $5 ELSE delivered_at END \
                 WHERE id = $1 AND attempts = $2 AND state = 'pending'",
            )
            .bind(r.delivery_id.to_owned())
            .bind(r.attempt)
            .bind(r.state)
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
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(select_delivery!(
            "d.tenant_id = $1 AND ($2 IS NULL OR d.endpoint_id = $2) \
             AND ($3 IS NULL OR d.state = $3) ORDER BY d.created_at DESC, d.sequence DESC LIMIT $4"
        ))
        .bind(tenant_id.to_owned())
        .bind(endpoint_id.map(str::to_owned))
        .bind(state.map(str::to_owned))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery).collect()
    }

    /// One delivery of the tenant with its attempts, oldest first.
    pub async fn webhook_delivery(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<(Delivery, Vec<Attempt>)>, StoreError> {
        let Some(row) = sqlx::query(select_delivery!("d.id = $1 AND d.tenant_id = $2"))
            .bind(id.to_owned())
            .bind(tenant_id.to_owned())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let attempts = sqlx::query(
            "SELECT attempt, at, http_status, error, duration_ms FROM webhook_attempts \
             WHERE delivery_id = $1 ORDER BY attempt",
        )
        .bind(id.to_owned())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(Attempt {
                attempt: r.try_get(0)?,
                at: r.try_get(1)?,
                http_status: r.try_get(2)?,
                error: r.try_get(3)?,
                duration_ms: r.try_get(4)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some((delivery(&row)?, attempts)))
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

    /// Deletes up to `limit` delivered or cancelled deliveries created before `before` (their
    /// attempts go with them); how many.
    pub async fn prune_deliveries(&self, before: i64, limit: u32) -> Result<u64, StoreError> {
        let done = self
            .write(
                sqlx::query(
                    "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries \
                     WHERE state IN ('delivered', 'cancelled') AND created_at < $1 \
                     ORDER BY created_at LIMIT $2)",
                )
                .bind(before)
                .bind(i64::from(limit)),
            )
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let pending = sqlx::query(
            "SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        let dead = sqlx::query("SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'dead'")
            .fetch_one(&self.pool)
            .await?;
        Ok(OutboxStats {
            pending: pending.try_get(0)?,
            oldest_pending_created_at: pending.try_get(1)?,
            dead: dead.try_get(0)?,
        })
    }
}

fn job(r: &AnyRow) -> Result<Job, StoreError> {
    let event_type: String = r.try_get(5)?;
    let source: Option<String> = r.try_get(12)?;
    let code: Option<String> = r.try_get(15)?;
    let event = match (source, code) {
        (Some(source), Some(status_code)) => {
            let at: String = r.try_get(16)?;
            let status: String = r.try_get(17)?;
            let occurred_at =
                chrono::DateTime::parse_from_rfc3339(&at).map_err(StoreError::decode)?;
            Some((
                source,
                TrackingEvent {
                    status_code,
                    status: TrackingStatus::parse(&status),
                    description: r.try_get(18)?,
                    occurred_at,
                    timezone: r.try_get(19)?,
                    address: r.try_get(20)?,
                    city: r.try_get(21)?,
                    state: r.try_get(22)?,
                    postal_code: r.try_get(23)?,
                    country: r.try_get(24)?,
                },
            ))
        }
        _ => None,
    };
    let last_mile = match (
        r.try_get::<Option<String>, _>(13)?,
        r.try_get::<Option<String>, _>(14)?,
    ) {
        (Some(carrier), Some(number)) => Some((carrier, number)),
        _ => None,
    };
    Ok(Job {
        id: r.try_get(0)?,
        attempt: r.try_get(1)?,
        window_start: r.try_get(2)?,
        created_at: r.try_get(3)?,
        sequence: r.try_get(4)?,
        event_type,
        waybill_id: r.try_get(6)?,
        url: r.try_get(7)?,
        secret: r.try_get(8)?,
        waybill_number: r.try_get::<Option<String>, _>(9)?.unwrap_or_default(),
        reference_number: r.try_get(10)?,
        carrier: r.try_get(11)?,
        event,
        last_mile,
    })
}
