//! Orders follow their payments: the finance service publishes what a payment provider said
//! about an order's payment (`finance.payment_*`), and the order's `paymentStatus` (and its
//! payment time, when it had none) follows, with an `order.updated` event.

use super::OrderError;
use super::event_types::UPDATED;
use super::ingest::order_event;
use crate::events::{Consumer, Event};
use crate::store::{StoreError, now_millis};
use serde_json::{Value, json};
use sqlx::AnyConnection;

pub struct PaymentsFeed;

impl PaymentsFeed {
    pub const NAME: &'static str = "orders.payments";
}

#[async_trait::async_trait]
impl Consumer for PaymentsFeed {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn wants(&self) -> Option<&str> {
        Some("event_type LIKE 'finance.payment%'")
    }

    async fn handle(&self, conn: &mut AnyConnection, event: &Event) -> Result<(), StoreError> {
        if !event.event_type.starts_with("finance.payment_") {
            return Ok(());
        }
        let body: Value = serde_json::from_str(&event.payload).map_err(StoreError::decode)?;
        let p = &body["payment"];
        let (Some(order), Some(status)) = (p["orderId"].as_str(), p["paymentStatus"].as_str())
        else {
            return Ok(());
        };
        let now = now_millis();
        let changed = sqlx::query(
            "UPDATE ord_orders SET payment_status = $1, updated_at_ms = $2, \
             paid_at_ms = CASE WHEN $1 = 'paid' AND paid_at_ms IS NULL THEN $2 ELSE paid_at_ms END \
             WHERE id = $3 AND tenant_id = $4",
        )
        .bind(status)
        .bind(now)
        .bind(order)
        .bind(&event.tenant_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if changed == 1 {
            order_event(
                conn,
                &event.tenant_id,
                UPDATED,
                order,
                json!({"id": order, "paymentStatus": status}),
            )
            .await
            .map_err(|e| match e {
                OrderError::Store(s) => s,
                other => StoreError::decode(other.to_string()),
            })?;
        }
        Ok(())
    }
}
