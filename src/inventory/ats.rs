//! Available-to-sell pushed to sales channels.
//!
//! [`AtsFeed`] is a consumer of the inventory's own `stock_changed` events: for every channel
//! connection that counts the warehouse and has the SKU mapped, it marks the SKU due a push
//! after the coalescing window (a burst of changes is one push). [`AtsPusher`] claims due SKUs
//! (leased, so instances side by side never push the same one at once), computes what to show
//! — the available stock of the counted warehouses, less the buffer, at most the cap — and sets
//! it on the channel (Shopify `inventory_levels/set.json`: an absolute level, so a repeat is
//! harmless). A success is recorded with an `inventory.available_to_sell` event; a channel that
//! rate-limits is retried after its `Retry-After`, one that fails after an increasing backoff,
//! and the SKU stays due until a push succeeds: nothing is lost, a newer change is never
//! overwritten by an older level.

use super::event_types::{AVAILABLE_TO_SELL, STOCK_CHANGED};
use crate::events::{self, Consumer, Event, NewEvent, tenants_of};
use crate::store::{Db, Dialect, StoreError, now_millis};
use sqlx::{AnyConnection, Row};
use std::time::Duration;

pub struct AtsFeed {
    coalesce_ms: i64,
}

impl AtsFeed {
    pub fn new(coalesce: Duration) -> Self {
        Self {
            coalesce_ms: i64::try_from(coalesce.as_millis()).unwrap_or(1_000),
        }
    }
}

#[async_trait::async_trait]
impl Consumer for AtsFeed {
    fn name(&self) -> &str {
        "inventory.available_to_sell"
    }

    /// Stock changes of tenants with a channel connection (the rest have nobody to tell).
    fn wants(&self) -> Option<&str> {
        Some(
            "event_type = 'inventory.stock_changed' \
             AND tenant_id IN (SELECT tenant_id FROM inv_channels)",
        )
    }

    /// Skips the tenants that have no channel connection (one read per tenant of the batch).
    async fn handle_batch(
        &self,
        conn: &mut AnyConnection,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let mut connected = Vec::new();
        for tenant in tenants_of(events, |e| e.event_type == STOCK_CHANGED) {
            let any = sqlx::query("SELECT 1 FROM inv_channels WHERE tenant_id = $1 LIMIT 1")
                .bind(tenant)
                .fetch_optional(&mut *conn)
                .await?;
            if any.is_some() {
                connected.push(tenant.to_owned());
            }
        }
        for event in events.iter().filter(|e| connected.contains(&e.tenant_id)) {
            self.handle(conn, event).await?;
        }
        Ok(())
    }

    async fn handle(&self, conn: &mut AnyConnection, event: &Event) -> Result<(), StoreError> {
        if event.event_type != STOCK_CHANGED {
            return Ok(());
        }
        let body: serde_json::Value =
            serde_json::from_str(&event.payload).map_err(StoreError::decode)?;
        let (Some(sku), Some(warehouse)) = (
            body["stock"]["sku"].as_str(),
            body["stock"]["warehouse"].as_str(),
        ) else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO inv_ats_pending (tenant_id, channel, sku, due_at_ms, version, attempts) \
             SELECT c.tenant_id, c.channel, $2, $3, 1, 0 FROM inv_channels c \
             WHERE c.tenant_id = $1 AND (c.warehouses = '[]' OR c.warehouses LIKE $4) \
             AND EXISTS (SELECT 1 FROM inv_sku_aliases a WHERE a.tenant_id = c.tenant_id \
             AND a.channel = c.channel AND a.sku = $2) \
             ON CONFLICT (tenant_id, channel, sku) DO UPDATE \
             SET version = inv_ats_pending.version + 1",
        )
        .bind(&event.tenant_id)
        .bind(sku)
        .bind(event.created_at_ms + self.coalesce_ms)
        .bind(format!("%\"{warehouse}\"%"))
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// One SKU due a push, as claimed.
struct Due {
    tenant: String,
    channel: String,
    sku: String,
    version: i64,
    attempts: i64,
}

/// How a push ended.
enum Pushed {
    /// Set (or already showing) this quantity; the previous one pushed.
    Done(i64, Option<i64>),
    /// Try again after this long; why.
    Later(Duration, String),
}

#[derive(Clone)]
pub struct AtsPusher {
    db: Db,
    client: reqwest::Client,
    /// How long a claim holds a SKU (longer than a push can take).
    lease_ms: i64,
}

macro_rules! claim_due {
    ($lock:literal) => {
        concat!(
            "UPDATE inv_ats_pending SET due_at_ms = $1, attempts = attempts + 1 \
             WHERE due_at_ms <= $2 AND (tenant_id, channel, sku) IN (SELECT tenant_id, channel, \
             sku FROM inv_ats_pending WHERE due_at_ms <= $2 ORDER BY due_at_ms LIMIT $3 ",
            $lock,
            ") RETURNING tenant_id, channel, sku, version, attempts"
        )
    };
}

impl AtsPusher {
    pub fn new(db: Db, timeout: Duration, allow_private: bool) -> anyhow::Result<Self> {
        let client = crate::outbound::client(
            timeout,
            allow_private,
            concat!("shipgate-inventory/", env!("CARGO_PKG_VERSION")),
        )?;
        Ok(Self {
            db,
            client,
            lease_ms: i64::try_from(timeout.as_millis()).unwrap_or(10_000) * 2 + 1_000,
        })
    }

    /// Pushes up to `limit` due SKUs (concurrently); how many were settled (pushed, or already
    /// showing the right level).
    pub async fn run_once(&self, limit: u32) -> usize {
        let now = now_millis();
        let sql = match self.db.dialect {
            Dialect::Postgres => claim_due!("FOR UPDATE SKIP LOCKED"),
            Dialect::Sqlite => claim_due!(""),
        };
        let claimed = match self
            .db
            .write_fetch_all(
                sqlx::query(sql)
                    .bind(now + self.lease_ms)
                    .bind(now)
                    .bind(i64::from(limit)),
            )
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "claiming channel pushes failed");
                return 0;
            }
        };
        let due = claimed.into_iter().map(|r| Due {
            tenant: r.get(0),
            channel: r.get(1),
            sku: r.get(2),
            version: r.get(3),
            attempts: r.get(4),
        });
        let settled = futures_util::future::join_all(due.map(|d| self.push_one(d))).await;
        settled.into_iter().filter(|ok| *ok).count()
    }

    async fn push_one(&self, due: Due) -> bool {
        let outcome = match self.push(&due).await {
            Ok(outcome) => outcome,
            Err(e) => Pushed::Later(Duration::from_secs(5), format!("database: {e}")),
        };
        let label = match &outcome {
            Pushed::Done(..) => "pushed",
            Pushed::Later(..) => "retry",
        };
        metrics::counter!("shipgate_inventory_channel_pushes_total", "outcome" => label)
            .increment(1);
        let recorded = match outcome {
            Pushed::Done(quantity, previous) => self.settle(&due, quantity, previous).await,
            Pushed::Later(wait, why) => {
                tracing::warn!(channel = %due.channel, sku = %due.sku, error = %why,
                    "channel push failed; retrying");
                self.retry_later(&due, wait, &why).await
            }
        };
        match recorded {
            Ok(settled) => settled,
            Err(e) => {
                // The claim's lease runs out and the SKU comes due again.
                tracing::warn!(error = %e, "recording a channel push failed");
                false
            }
        }
    }

    async fn push(&self, due: &Due) -> Result<Pushed, StoreError> {
        let Some(channel) = sqlx::query(
            "SELECT base_url, api_version, access_token, location_id, warehouses, buffer, cap \
             FROM inv_channels WHERE tenant_id = $1 AND channel = $2",
        )
        .bind(&due.tenant)
        .bind(&due.channel)
        .fetch_optional(&self.db.pool)
        .await?
        else {
            return Ok(Pushed::Done(0, None));
        };
        let (base, version, token, location): (String, String, String, String) = (
            channel.get(0),
            channel.get(1),
            channel.get(2),
            channel.get(3),
        );
        let warehouses: String = channel.get(4);
        let (buffer, cap): (i64, Option<i64>) = (channel.get(5), channel.get(6));
        let item: Option<String> = sqlx::query(
            "SELECT identifier FROM inv_sku_aliases WHERE tenant_id = $1 AND channel = $2 \
             AND sku = $3 ORDER BY identifier LIMIT 1",
        )
        .bind(&due.tenant)
        .bind(&due.channel)
        .bind(&due.sku)
        .fetch_optional(&self.db.pool)
        .await?
        .map(|r| r.get(0));
        let Some(item) = item else {
            return Ok(Pushed::Done(0, None));
        };
        let available: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(CASE WHEN on_hand - reserved - safety > 0 \
             THEN on_hand - reserved - safety ELSE 0 END), 0) AS BIGINT) FROM inv_stock \
             WHERE tenant_id = $1 AND sku = $2 AND ($3 = '[]' OR $3 LIKE '%\"' || warehouse || '\"%')",
        )
        .bind(&due.tenant)
        .bind(&due.sku)
        .bind(&warehouses)
        .fetch_one(&self.db.pool)
        .await?
        .get(0);
        let mut quantity = (available - buffer).max(0);
        if let Some(cap) = cap {
            quantity = quantity.min(cap);
        }
        let previous: Option<i64> = sqlx::query(
            "SELECT quantity FROM inv_ats_pushed WHERE tenant_id = $1 AND channel = $2 AND sku = $3",
        )
        .bind(&due.tenant)
        .bind(&due.channel)
        .bind(&due.sku)
        .fetch_optional(&self.db.pool)
        .await?
        .map(|r| r.get(0));
        if previous == Some(quantity) {
            return Ok(Pushed::Done(quantity, previous));
        }
        let (Ok(location), Ok(item_id)) = (location.parse::<u64>(), item.parse::<u64>()) else {
            return Ok(Pushed::Later(
                Duration::from_secs(300),
                format!("the item id `{item}` or location id is not a Shopify numeric id"),
            ));
        };
        let url = format!("{base}/admin/api/{version}/inventory_levels/set.json");
        let sent = self
            .client
            .post(&url)
            .header("X-Shopify-Access-Token", token)
            .json(&serde_json::json!({
                "location_id": location,
                "inventory_item_id": item_id,
                "available": quantity,
            }))
            .send()
            .await;
        Ok(match sent {
            Ok(res) if res.status().is_success() => Pushed::Done(quantity, previous),
            Ok(res) if res.status().as_u16() == 429 => {
                let wait = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map_or(Duration::from_secs(2), |s| {
                        Duration::from_secs_f64(s.min(600.0))
                    });
                Pushed::Later(wait, "the channel rate-limited the push (429)".into())
            }
            Ok(res) if res.status().is_server_error() => Pushed::Later(
                backoff(due.attempts),
                format!("the channel answered {}", res.status()),
            ),
            Ok(res) => Pushed::Later(
                Duration::from_secs(300),
                format!("the channel refused the push: {}", res.status()),
            ),
            Err(e) => Pushed::Later(
                backoff(due.attempts),
                format!("the channel cannot be reached: {}", without_url(&e)),
            ),
        })
    }

    /// Records a settled push: what the channel shows, its event, and the SKU no longer due
    /// unless it changed again since the claim.
    async fn settle(
        &self,
        due: &Due,
        quantity: i64,
        previous: Option<i64>,
    ) -> Result<bool, StoreError> {
        let (tenant, channel, sku, version) = (
            due.tenant.clone(),
            due.channel.clone(),
            due.sku.clone(),
            due.version,
        );
        self.db
            .transact(move |conn| {
                Box::pin(async move {
                    let now = now_millis();
                    if previous != Some(quantity) {
                        sqlx::query(
                            "INSERT INTO inv_ats_pushed (tenant_id, channel, sku, quantity, \
                             pushed_at_ms) VALUES ($1, $2, $3, $4, $5) \
                             ON CONFLICT (tenant_id, channel, sku) DO UPDATE \
                             SET quantity = excluded.quantity, pushed_at_ms = excluded.pushed_at_ms",
                        )
                        .bind(&tenant)
                        .bind(&channel)
                        .bind(&sku)
                        .bind(quantity)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                        events::append(
                            conn,
                            NewEvent::new(
                                &tenant,
                                AVAILABLE_TO_SELL,
                                format!("sku:{sku}"),
                                serde_json::json!({
                                    "channel": channel, "sku": sku,
                                    "quantity": quantity, "previousQuantity": previous,
                                }),
                            ),
                        )
                        .await?;
                    }
                    let done = sqlx::query(
                        "DELETE FROM inv_ats_pending WHERE tenant_id = $1 AND channel = $2 \
                         AND sku = $3 AND version = $4",
                    )
                    .bind(&tenant)
                    .bind(&channel)
                    .bind(&sku)
                    .bind(version)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if done == 0 {
                        // Changed meanwhile: push the newer level now.
                        sqlx::query(
                            "UPDATE inv_ats_pending SET due_at_ms = $4, attempts = 0 \
                             WHERE tenant_id = $1 AND channel = $2 AND sku = $3",
                        )
                        .bind(&tenant)
                        .bind(&channel)
                        .bind(&sku)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok::<_, StoreError>(true)
                })
            })
            .await
    }

    async fn retry_later(&self, due: &Due, wait: Duration, why: &str) -> Result<bool, StoreError> {
        let at = now_millis() + i64::try_from(wait.as_millis()).unwrap_or(600_000);
        self.db
            .write(
                sqlx::query(
                    "UPDATE inv_ats_pending SET due_at_ms = $4, last_error = $5 \
                     WHERE tenant_id = $1 AND channel = $2 AND sku = $3",
                )
                .bind(due.tenant.clone())
                .bind(due.channel.clone())
                .bind(due.sku.clone())
                .bind(at)
                .bind(why.to_owned()),
            )
            .await?;
        Ok(false)
    }
}

/// 0.5 s doubling per attempt, at most a minute.
fn backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    Duration::from_millis(500 * 2u64.pow(exp)).min(Duration::from_secs(60))
}

/// A transport error without the URL (it is the tenant's shop; the log names the channel).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<shop>");
    }
    text
}
