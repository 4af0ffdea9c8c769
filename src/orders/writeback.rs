//! Tracking written back to the sales channel: when a shipment of a shop's order gets its
//! waybill, a write-back is queued in the same transaction; this worker sends it (Shopify's
//! fulfillment, Amazon's shipment confirmation), retrying a channel that is down or
//! rate-limits, and giving up only on a refusal (named in the write-back's last error).

use super::OrderError;
use super::OrdersService;
use super::connectors::{ChannelError, Fulfilment};
use super::process::CLAIM_MS;
use crate::store::now_millis;
use crate::store::sql::{Arg, dialect_of, list, rows_at, statement};
use sqlx::{AnyConnection, Row};

/// Queues the write-backs of the orders of `shipments` (each marked with its waybill) that came
/// from a connected shop, with one read and one insert.
pub(crate) async fn queue(
    conn: &mut AnyConnection,
    shipments: &[String],
) -> Result<(), OrderError> {
    if shipments.is_empty() {
        return Ok(());
    }
    let dialect = dialect_of(conn);
    let now = now_millis();
    let sql = format!(
        "SELECT o.tenant_id, o.id, s.id, so.shipment_id FROM ord_shipment_orders so \
         JOIN ord_orders o ON o.id = so.order_id \
         JOIN ord_shops s ON s.tenant_id = o.tenant_id AND s.channel = o.channel AND s.shop = o.shop \
         WHERE so.shipment_id IN ({})",
        list(1, shipments.len())
    );
    let args = shipments.iter().map(|s| Arg::Text(s.clone())).collect();
    let rows = statement(dialect, &sql, args).fetch_all(&mut *conn).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut args = vec![Arg::Int(now)];
    for row in &rows {
        args.extend([
            Arg::Text(format!("wb_{}", uuid::Uuid::now_v7().simple())),
            Arg::Text(row.get(0)),
            Arg::Text(row.get(1)),
            Arg::Text(row.get(2)),
            Arg::Text(row.get(3)),
        ]);
    }
    let sql = format!(
        "INSERT INTO ord_writebacks (id, tenant_id, order_id, shop_id, shipment_id, state, \
         next_attempt_at_ms, created_at_ms, updated_at_ms) SELECT v.column1, v.column2, \
         v.column3, v.column4, v.column5, 'pending', $1, $1, $1 FROM (VALUES {}) AS v \
         WHERE true ON CONFLICT (order_id, shipment_id) DO NOTHING",
        rows_at(2, rows.len(), 5)
    );
    statement(dialect, &sql, args).execute(&mut *conn).await?;
    Ok(())
}

impl OrdersService {
    /// Sends the write-backs that are due; how many were sent.
    pub async fn write_back_due(&self) -> usize {
        match self.write_back_batch().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "writing tracking back to channels failed");
                0
            }
        }
    }

    async fn write_back_batch(&self) -> Result<usize, OrderError> {
        let now = now_millis();
        let rows = sqlx::query(
            "SELECT w.id, w.next_attempt_at_ms, w.shop_id, w.attempts, o.external_id, o.body, \
             s.tracking_number, s.carrier, s.updated_at_ms FROM ord_writebacks w \
             JOIN ord_orders o ON o.id = w.order_id JOIN ord_shipments s ON s.id = w.shipment_id \
             WHERE w.next_attempt_at_ms <= $1 AND w.state = 'pending' ORDER BY w.next_attempt_at_ms LIMIT 50",
        )
        .bind(now)
        .fetch_all(&self.db.pool)
        .await?;
        let mut sent = 0;
        for row in rows {
            let (id, due, shop_id, attempts): (String, i64, String, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let claimed = self
                .db
                .write(
                    sqlx::query(
                        "UPDATE ord_writebacks SET next_attempt_at_ms = $1, attempts = attempts + 1 \
                         WHERE id = $2 AND next_attempt_at_ms = $3",
                    )
                    .bind(now + CLAIM_MS)
                    .bind(id.clone())
                    .bind(due),
                )
                .await?
                .rows_affected();
            if claimed == 0 {
                continue;
            }
            let Some(shop) = self.shop_by_id(&shop_id).await? else {
                continue;
            };
            let Some(connector) = self.connectors.of(&shop.channel) else {
                continue;
            };
            let body: serde_json::Value =
                serde_json::from_str(&row.get::<String, _>(5)).unwrap_or_default();
            let f = Fulfilment {
                external_id: row.get(4),
                tracking_number: row.get::<Option<String>, _>(6).unwrap_or_default(),
                carrier: row.get::<Option<String>, _>(7).unwrap_or_default(),
                lines: body["lines"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| {
                        Some((
                            l["externalLineId"].as_str()?.to_owned(),
                            l["quantity"].as_i64()?,
                        ))
                    })
                    .collect(),
                shipped_at_ms: row.get(8),
            };
            let (state, next, error) = match connector.fulfil(&shop, &f).await {
                Ok(()) => {
                    sent += 1;
                    ("done", None, None)
                }
                Err(ChannelError::Refused(why)) => ("failed", None, Some(why)),
                Err(e) => {
                    let wait = match &e {
                        ChannelError::RateLimited(d) => {
                            i64::try_from(d.as_millis()).unwrap_or(60_000)
                        }
                        _ => 1000_i64.saturating_mul(1 << attempts.clamp(0, 12)),
                    };
                    ("pending", Some(now_millis() + wait), Some(e.to_string()))
                }
            };
            metrics::counter!("shipgate_order_writebacks_total", "channel" => shop.channel.clone(), "outcome" => state)
                .increment(1);
            self.db
                .write(
                    sqlx::query(
                        "UPDATE ord_writebacks SET state = $1, next_attempt_at_ms = $2, last_error = $3, \
                         updated_at_ms = $4 WHERE id = $5",
                    )
                    .bind(state)
                    .bind(next)
                    .bind(error.map(|e| e.chars().take(500).collect::<String>()))
                    .bind(now_millis())
                    .bind(id),
                )
                .await?;
        }
        Ok(sent)
    }
}
