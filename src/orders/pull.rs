//! Pulling orders from the shops on their schedule: each pull reads the window from the
//! shop's cursor (less the overlap) to now, page after page, ingests each page as it comes, and
//! moves the cursor only once every page is committed. A rate limit is waited out (the
//! channel's `Retry-After`, its call budget), a channel that is down is retried, and a pull that
//! cannot finish leaves the cursor where it was: the next pull reads the window again, and the
//! natural key makes the repeats no-ops. Shopify's signed webhooks come in here too.

use super::connectors::amazon::Amazon;
use super::connectors::shopify::{self, Shopify};
use super::connectors::taobao::Taobao;
use super::connectors::{ChannelError, Connector, Page};
use super::shops::Shop;
use super::{Action, OrderError, OrderInput, OrdersService};
use crate::store::now_millis;
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

/// The longest rate-limit wait a pull sits out; a longer one ends the pull until then.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// How long a shop being pulled is left to the instance pulling it.
const PULL_CLAIM_MS: i64 = 600_000;

#[derive(Clone)]
pub struct Connectors {
    shopify: Arc<Shopify>,
    amazon: Arc<Amazon>,
    pub(crate) taobao: Arc<Taobao>,
}

impl Connectors {
    pub fn new(timeout: Duration, allow_private: bool) -> anyhow::Result<Self> {
        let client = crate::outbound::client(timeout, allow_private, "shipgate-orders")?;
        Ok(Self {
            shopify: Arc::new(Shopify {
                client: client.clone(),
            }),
            amazon: Arc::new(Amazon::new(client.clone())),
            taobao: Arc::new(Taobao { client }),
        })
    }

    pub(crate) fn of(&self, channel: &str) -> Option<&dyn Connector> {
        match channel {
            "shopify" => Some(self.shopify.as_ref()),
            "amazon" => Some(self.amazon.as_ref()),
            "taobao" => Some(self.taobao.as_ref()),
            _ => None,
        }
    }
}

/// What a webhook delivery came to.
#[derive(Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    Ingested,
    /// A topic the orders service does not take (answered 200 so the channel stops sending).
    Ignored,
}

impl OrdersService {
    /// Pulls every shop that is due; how many orders the pulls read.
    pub async fn pull_due(&self) -> usize {
        let now = now_millis();
        let rows = match sqlx::query(
            "SELECT id, next_pull_at_ms FROM ord_shops WHERE next_pull_at_ms <= $1 \
             ORDER BY next_pull_at_ms LIMIT 20",
        )
        .bind(now)
        .fetch_all(&self.db.pool)
        .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "looking for shops to pull failed");
                return 0;
            }
        };
        let mut read = 0;
        for row in rows {
            let (id, due): (String, i64) = (row.get(0), row.get(1));
            let claimed = self
                .db
                .write(
                    sqlx::query(
                        "UPDATE ord_shops SET next_pull_at_ms = $1 WHERE id = $2 AND next_pull_at_ms = $3",
                    )
                    .bind(now + PULL_CLAIM_MS)
                    .bind(id.clone())
                    .bind(due),
                )
                .await
                .map(|r| r.rows_affected() == 1)
                .unwrap_or(false);
            if !claimed {
                continue;
            }
            match self.pull_shop(&id).await {
                Ok(n) => read += n,
                Err(e) => tracing::warn!(shop = %id, error = %e, "pulling a shop failed"),
            }
        }
        read
    }

    async fn pull_shop(&self, id: &str) -> Result<usize, OrderError> {
        let Some(shop) = self.shop_by_id(id).await? else {
            return Ok(0);
        };
        let Some(connector) = self.connectors.of(&shop.channel) else {
            return Ok(0);
        };
        let to = now_millis();
        let from = shop.cursor_ms - shop.overlap_secs.saturating_mul(1000);
        let mut next = None;
        let mut read = 0;
        loop {
            let page = match self
                .page_with_retries(connector, &shop, from, to, next.clone())
                .await
            {
                Ok(page) => page,
                Err((error, retry_in)) => {
                    metrics::counter!("shipgate_order_pull_failures_total", "channel" => shop.channel.clone())
                        .increment(1);
                    let at =
                        now_millis() + i64::try_from(retry_in.as_millis()).unwrap_or(i64::MAX / 4);
                    self.pull_ended(&shop, None, at, Some(error.to_string()))
                        .await?;
                    return Ok(read);
                }
            };
            read += page.orders.len();
            self.take_page(&shop, page.orders, page.cancelled).await?;
            if let Some(p) = page.pause {
                tokio::time::sleep(p).await;
            }
            match page.next {
                Some(n) => next = Some(n),
                None => break,
            }
        }
        metrics::counter!("shipgate_orders_pulled_total", "channel" => shop.channel.clone())
            .increment(read as u64);
        let at = now_millis() + shop.pull_interval_secs.saturating_mul(1000);
        self.pull_ended(&shop, Some(to), at, None).await?;
        Ok(read)
    }

    /// A page, with the rate limit waited out and a channel that is down asked again; the
    /// error and when to try again if it cannot be had.
    async fn page_with_retries(
        &self,
        connector: &dyn Connector,
        shop: &Shop,
        from: i64,
        to: i64,
        next: Option<String>,
    ) -> Result<Page, (ChannelError, Duration)> {
        let mut tries = 0;
        loop {
            tries += 1;
            match connector.page(shop, from, to, next.clone()).await {
                Ok(page) => return Ok(page),
                Err(ChannelError::RateLimited(wait)) if wait <= MAX_WAIT && tries < 6 => {
                    metrics::counter!("shipgate_order_pull_rate_limited_total").increment(1);
                    tokio::time::sleep(wait).await;
                }
                Err(ChannelError::RateLimited(wait)) => {
                    return Err((ChannelError::RateLimited(wait), wait));
                }
                Err(ChannelError::Unavailable(_)) if tries < 3 => {
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(e @ ChannelError::Unavailable(_)) => return Err((e, Duration::from_secs(60))),
                Err(e) => {
                    return Err((
                        e,
                        Duration::from_secs(u64::try_from(shop.pull_interval_secs).unwrap_or(900)),
                    ));
                }
            }
        }
    }

    /// Ingests a page (one transaction; if one order of it is malformed, each alone, and the
    /// malformed ones are counted and named in the shop's last error), then cancels what the
    /// channel cancelled.
    pub(super) async fn take_page(
        &self,
        shop: &Shop,
        orders: Vec<OrderInput>,
        cancelled: Vec<String>,
    ) -> Result<(), OrderError> {
        if orders.is_empty() && cancelled.is_empty() {
            return Ok(());
        }
        if let Err(OrderError::Validation(_)) =
            self.ingest(&shop.tenant_id, orders.clone(), true).await
        {
            for order in orders {
                let external = order.external_id.clone();
                if let Err(OrderError::Validation(problems)) =
                    self.ingest(&shop.tenant_id, vec![order], false).await
                {
                    metrics::counter!("shipgate_order_ingest_rejected_total", "channel" => shop.channel.clone())
                        .increment(1);
                    let why = crate::fields::FieldError::describe(&problems);
                    tracing::warn!(shop = %shop.id, order = %external, problems = %why, "a channel order could not be read");
                    self.note_shop_error(&shop.id, &format!("order {external}: {why}"))
                        .await?;
                }
            }
        }
        for external in cancelled {
            let row = sqlx::query(
                "SELECT id FROM ord_orders WHERE tenant_id = $1 AND channel = $2 AND shop = $3 AND external_id = $4",
            )
            .bind(&shop.tenant_id)
            .bind(&shop.channel)
            .bind(&shop.shop)
            .bind(&external)
            .fetch_optional(&self.db.pool)
            .await?;
            if let Some(row) = row {
                let id: String = row.get(0);
                // Cancelled in the channel: cancelled here while it has not shipped.
                let _ = self
                    .act(
                        &shop.tenant_id,
                        &id,
                        Action::Cancel {
                            reason: Some("cancelled in the channel".into()),
                        },
                    )
                    .await;
            }
        }
        Ok(())
    }

    pub(super) async fn note_shop_error(&self, id: &str, error: &str) -> Result<(), OrderError> {
        self.db
            .write(
                sqlx::query("UPDATE ord_shops SET last_error = $1 WHERE id = $2")
                    .bind(error.chars().take(500).collect::<String>())
                    .bind(id.to_owned()),
            )
            .await?;
        Ok(())
    }

    async fn pull_ended(
        &self,
        shop: &Shop,
        cursor: Option<i64>,
        next_at: i64,
        error: Option<String>,
    ) -> Result<(), OrderError> {
        self.db
            .write(
                sqlx::query(
                    "UPDATE ord_shops SET cursor_ms = COALESCE($1, cursor_ms), next_pull_at_ms = $2, \
                     last_pull_at_ms = $3, last_error = COALESCE($4, last_error), updated_at_ms = $3 \
                     WHERE id = $5",
                )
                .bind(cursor)
                .bind(next_at)
                .bind(now_millis())
                .bind(error.map(|e| e.chars().take(500).collect::<String>()))
                .bind(shop.id.clone()),
            )
            .await?;
        Ok(())
    }

    /// A webhook of a shop's channel: `topic` and the raw body with its signature header.
    pub async fn webhook(
        &self,
        channel: &str,
        shop_id: &str,
        topic: &str,
        body: &[u8],
        signature: &str,
    ) -> Result<WebhookOutcome, WebhookRefusal> {
        let shop = self
            .shop_by_id(shop_id)
            .await
            .map_err(WebhookRefusal::Store)?;
        let shop = shop
            .filter(|s| s.channel == channel)
            .ok_or(WebhookRefusal::Unauthorized)?;
        let secret = shop
            .credentials
            .webhook_secret
            .as_ref()
            .ok_or(WebhookRefusal::Unauthorized)?;
        use secrecy::ExposeSecret;
        if channel != "shopify" || !shopify::verify_webhook(secret.expose_secret(), body, signature)
        {
            return Err(WebhookRefusal::Unauthorized);
        }
        if !matches!(
            topic,
            "orders/create" | "orders/updated" | "orders/cancelled"
        ) {
            return Ok(WebhookOutcome::Ignored);
        }
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| WebhookRefusal::Malformed(e.to_string()))?;
        if shopify::fulfilled(&value) {
            return Ok(WebhookOutcome::Ignored);
        }
        let order = shopify::to_order(&shop.shop, &value)
            .ok_or_else(|| WebhookRefusal::Malformed("not a Shopify order".into()))?;
        let cancelled = value["cancelled_at"]
            .is_string()
            .then(|| order.external_id.clone());
        self.take_page(&shop, vec![order], cancelled.into_iter().collect())
            .await
            .map_err(WebhookRefusal::Store)?;
        Ok(WebhookOutcome::Ingested)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookRefusal {
    #[error("the signature does not verify")]
    Unauthorized,
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Store(OrderError),
}
