//! The gateway's tracking and waybill events move orders along: the first carrier scan ships
//! an order, the last delivery delivers it, a carrier exception flags it. A shipment is found
//! by the waybill's reference number, which is the shipment's id.

use super::OrderError;
use super::event_types::{DELIVERED, EXCEPTION, SHIPPED};
use super::ingest::order_event;
use crate::events::{Consumer, Event};
use crate::store::{StoreError, now_millis};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};

pub struct TrackingFeed;

impl TrackingFeed {
    pub const NAME: &'static str = "orders.tracking";
}

fn store(e: OrderError) -> StoreError {
    match e {
        OrderError::Store(s) => s,
        other => StoreError::decode(other.to_string()),
    }
}

#[async_trait::async_trait]
impl Consumer for TrackingFeed {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn wants(&self) -> Option<&str> {
        Some("event_type IN ('tracking.updated', 'waybill.cancelled')")
    }

    async fn handle(&self, conn: &mut AnyConnection, event: &Event) -> Result<(), StoreError> {
        if !matches!(
            event.event_type.as_str(),
            "tracking.updated" | "waybill.cancelled"
        ) {
            return Ok(());
        }
        let body: Value = serde_json::from_str(&event.payload).map_err(StoreError::decode)?;
        let Some(reference) = body["waybill"]["referenceNumber"].as_str() else {
            return Ok(());
        };
        if !reference.starts_with("shp_") {
            return Ok(());
        }
        let found = sqlx::query("SELECT state FROM ord_shipments WHERE id = $1 AND tenant_id = $2")
            .bind(reference)
            .bind(&event.tenant_id)
            .fetch_optional(&mut *conn)
            .await?;
        if found.is_none() {
            return Ok(());
        }
        let now = now_millis();
        if event.event_type == "waybill.cancelled" {
            sqlx::query(
                "UPDATE ord_shipments SET state = 'voided', updated_at_ms = $1 WHERE id = $2",
            )
            .bind(now)
            .bind(reference)
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        let status = body["event"]["trackingStatus"].as_str().unwrap_or("");
        if matches!(status, "" | "INFO_RECEIVED" | "CANCELLED") {
            return Ok(());
        }
        sqlx::query(
            "UPDATE ord_shipments SET tracking_status = $1, updated_at_ms = $2 \
             WHERE id = $3 AND (tracking_status IS NULL OR tracking_status <> 'DELIVERED')",
        )
        .bind(status)
        .bind(now)
        .bind(reference)
        .execute(&mut *conn)
        .await?;
        // PostgreSQL: the orders' rows are locked, so two shipments of one order delivered at
        // once (members of the broker's consumer group handle partitions side by side) cannot
        // each see the other undelivered; the count below then reads after the other committed.
        let lock = match crate::store::sql::dialect_of(conn) {
            crate::store::Dialect::Postgres => " ORDER BY o.id FOR UPDATE OF o",
            crate::store::Dialect::Sqlite => "",
        };
        let orders = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT o.id, o.state FROM ord_orders o JOIN ord_shipment_orders so \
             ON so.order_id = o.id WHERE so.shipment_id = $1{lock}"
        )))
        .bind(reference)
        .fetch_all(&mut *conn)
        .await?;
        for row in orders {
            let (order, state): (String, String) = (row.get(0), row.get(1));
            let (next, event_type) = match status {
                "DELIVERED" => {
                    let undelivered: i64 = sqlx::query(
                        "SELECT COUNT(*) FROM ord_shipment_orders x JOIN ord_shipments s \
                         ON s.id = x.shipment_id WHERE x.order_id = $1 AND s.state = 'created' \
                         AND (s.tracking_status IS NULL OR s.tracking_status <> 'DELIVERED')",
                    )
                    .bind(&order)
                    .fetch_one(&mut *conn)
                    .await?
                    .get(0);
                    if undelivered == 0 {
                        ("delivered", DELIVERED)
                    } else {
                        ("shipped", SHIPPED)
                    }
                }
                "EXCEPTION" | "DELIVERY_FAILED" | "RETURNING" | "RETURNED" => {
                    ("exception", EXCEPTION)
                }
                _ => ("shipped", SHIPPED),
            };
            let from: &[&str] = match next {
                "shipped" => &["waybill_created", "exception"],
                _ => &["waybill_created", "shipped", "exception"],
            };
            if !from.contains(&state.as_str()) || state == next {
                continue;
            }
            sqlx::query(
                "UPDATE ord_orders SET state = $1, \
                 shipped_at_ms = COALESCE(shipped_at_ms, $2), \
                 delivered_at_ms = CASE WHEN $1 = 'delivered' THEN $2 ELSE delivered_at_ms END, \
                 updated_at_ms = $2 WHERE id = $3",
            )
            .bind(next)
            .bind(now)
            .bind(&order)
            .execute(&mut *conn)
            .await?;
            order_event(
                conn,
                &event.tenant_id,
                event_type,
                &order,
                json!({"id": order, "state": next.to_ascii_uppercase(), "shipmentId": reference,
                       "waybillNumber": body["waybill"]["waybillNumber"],
                       "trackingStatus": status, "occurredAt": body["event"]["occurredAt"]}),
            )
            .await
            .map_err(store)?;
        }
        Ok(())
    }
}
