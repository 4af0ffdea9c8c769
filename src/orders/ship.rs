//! The processor's second half: a due shipment becomes a waybill through the gateway, with its
//! id as the reference number. The gateway down or busy leaves it waiting, retried with the same
//! reference; a refusal holds its orders with the gateway's reason.

use super::event_types::HELD;
use super::gateway::{CreatedWaybill, GatewayError};
use super::ingest::order_event;
use super::marking::Made;
use super::process::{CLAIM_MS, ShipmentLine};
use super::{HoldReason, OrderError, OrdersService, ShipTo};
use crate::inventory::Warehouse;
use crate::store::now_millis;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sqlx::Row;
use std::collections::HashMap;

/// How many gateway calls one processor step has in flight.
const IN_FLIGHT: usize = 32;
/// Most shipments marked in one batch, and how many batches are marked side by side.
const MARK_BATCH: usize = 32;
const MARKING: usize = 2;

struct Due {
    id: String,
    tenant: String,
    warehouse: String,
    /// The warehouse as the inventory service knows it (`None`: no longer there).
    shipper: Option<Warehouse>,
    channel: String,
    lines: Vec<ShipmentLine>,
    consignee: ShipTo,
    max_parcel: Option<u64>,
    attempts: i64,
}

impl OrdersService {
    pub(super) async fn send_due(&self) -> Result<usize, OrderError> {
        let now = now_millis();
        // Claimed in one statement, as orders are for planning.
        let rows = self
            .db
            .write_fetch_all(
                sqlx::query(
                    "UPDATE ord_shipments SET state = 'pending', next_attempt_at_ms = $1, \
                     attempts = attempts + 1 WHERE id IN (SELECT id FROM ord_shipments \
                     WHERE next_attempt_at_ms <= $2 AND state IN ('open', 'pending') \
                     ORDER BY next_attempt_at_ms LIMIT $3) AND next_attempt_at_ms <= $2 \
                     AND state IN ('open', 'pending') RETURNING id, tenant_id, warehouse, \
                     channel, lines, consignee, parcels, attempts",
                )
                .bind(now + CLAIM_MS)
                .bind(now)
                .bind(i64::from(self.settings.batch)),
            )
            .await?;
        // The shipping warehouses, read once per tenant for the whole step.
        let mut warehouses: HashMap<String, Vec<Warehouse>> = HashMap::new();
        for row in &rows {
            let tenant: String = row.get(1);
            if let std::collections::hash_map::Entry::Vacant(e) = warehouses.entry(tenant) {
                let known = self.inventory.warehouses(e.key()).await?;
                e.insert(known);
            }
        }
        let mut due = Vec::with_capacity(rows.len());
        for row in rows {
            let (lines, consignee, parcels): (String, String, String) =
                (row.get(4), row.get(5), row.get(6));
            let parcels: Value = serde_json::from_str(&parcels).unwrap_or(Value::Null);
            let (tenant, warehouse): (String, String) = (row.get(1), row.get(2));
            let shipper = warehouses[&tenant]
                .iter()
                .find(|w| w.code == warehouse)
                .cloned();
            due.push(Due {
                id: row.get(0),
                tenant,
                warehouse,
                shipper,
                channel: row.get(3),
                lines: serde_json::from_str(&lines).unwrap_or_default(),
                consignee: serde_json::from_str(&consignee).unwrap_or_default(),
                max_parcel: parcels["maxParcelGrams"].as_u64(),
                attempts: row.get(7),
            });
        }
        let n = due.len();
        // The gateway asked IN_FLIGHT at a time; the waybills it made are marked in batches of
        // what is ready (a few marking side by side) while the next are asked. The two halves
        // are polled side by side: a half that waited for the other (a gateway call not polled
        // while a batch is marked) would hold its pooled connection from the marking.
        let (made, ready) = tokio::sync::mpsc::unbounded_channel();
        // The closure owns the sender: the marking ends when the last call was answered. Each
        // call and batch owns a handle on the service (a spawned task awaits this step, and the
        // compiler cannot prove borrowing futures inside these streams `Send` for every lifetime).
        let service = self.clone();
        let ask = futures_util::stream::iter(due).for_each_concurrent(IN_FLIGHT, move |d| {
            let (service, made) = (service.clone(), made.clone());
            async move { service.ask(d, made).await }
        });
        let service = self.clone();
        let mark = futures_util::stream::unfold(ready, next_made)
            .ready_chunks(MARK_BATCH)
            .for_each_concurrent(MARKING, move |made| {
                let service = service.clone();
                async move { service.mark(made).await }
            });
        futures_util::future::join(ask, mark).await;
        Ok(n)
    }

    /// The gateway's create request for a shipment (the warehouse is the shipper).
    fn request(d: &Due) -> Result<Value, String> {
        let Some((w, address)) = d
            .shipper
            .as_ref()
            .and_then(|w| w.address.as_ref().map(|a| (w, a)))
        else {
            return Err(format!(
                "warehouse {} has no street address to ship from",
                d.warehouse
            ));
        };
        let units: Vec<(u64, i64)> = d
            .lines
            .iter()
            .map(|l| (l.unit_weight_grams, l.quantity))
            .collect();
        let parcels: Vec<Value> = super::rules::parcels(&units, d.max_parcel)
            .into_iter()
            .map(|g| json!({"weightGrams": g}))
            .collect();
        let c = &d.consignee;
        // The platform may send a consignee phone that is not one ("555-555-SHIP"): the
        // gateway takes none rather than refuse the shipment.
        let phone = c.phone.as_deref().filter(|p| {
            p.chars()
                .all(|ch| ch.is_ascii_digit() || matches!(ch, '+' | '-' | ' ' | '(' | ')' | '.'))
        });
        let mut request = json!({
            "referenceNumber": d.id,
            "channel": d.channel,
            "shipper": {"name": address.name, "company": address.company, "phone": address.phone,
                        "street1": address.street1, "street2": address.street2,
                        "city": address.city, "state": w.state, "postalCode": w.postal_code,
                        "country": w.country},
            "consignee": {"name": c.name, "company": c.company, "phone": phone,
                          "email": c.email, "street1": c.street1, "street2": c.street2,
                          "city": c.city, "state": c.state, "postalCode": c.postal_code,
                          "country": c.country},
            "parcels": parcels,
        });
        if w.country != c.country {
            let currency = d.lines.first().map_or("USD", |l| l.currency.as_str());
            let items: Vec<Value> = d
                .lines
                .iter()
                .map(|l| {
                    json!({"description": l.title.clone().unwrap_or_else(|| l.sku.clone()),
                           "hsCode": l.hs_code, "quantity": l.quantity,
                           "unitValue": l.unit_price, "weightGrams": l.unit_weight_grams,
                           "originCountry": l.origin_country.clone()
                               .unwrap_or_else(|| w.country.clone())})
                })
                .collect();
            request["customs"] = json!({"currency": currency, "incoterm": "DDU", "items": items});
        }
        Ok(request)
    }

    /// Sends a shipment; one the gateway made a waybill for goes to `made` to be marked.
    async fn ask(&self, d: Due, made: tokio::sync::mpsc::UnboundedSender<Made>) {
        match self.send(&d).await {
            Ok(Some(waybill)) => {
                let _ = made.send(Made {
                    id: d.id,
                    tenant: d.tenant,
                    warehouse: d.warehouse,
                    lines: d.lines,
                    attempts: d.attempts,
                    waybill,
                });
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(shipment = %d.id, error = %e, "sending a shipment failed");
                let _ = self.retry_later(&d, &e.to_string()).await;
            }
        }
    }

    /// Marks a batch of shipments with waybills; one that fails waits to be sent again.
    async fn mark(&self, made: Vec<Made>) {
        for (m, why) in self.mark_created(made).await {
            tracing::warn!(shipment = %m.id, error = %why, "marking a shipment failed");
            let _ = self.retry_later_id(&m.id, m.attempts, &why).await;
        }
    }

    /// Asks the gateway for the shipment's waybill; the waybill when it made one (for the
    /// caller to mark), `None` when the shipment was left to retry or held.
    async fn send(&self, d: &Due) -> Result<Option<CreatedWaybill>, OrderError> {
        let request = match Self::request(d) {
            Ok(r) => r,
            Err(why) => {
                return self
                    .reject(d, "NO_SHIPPER_ADDRESS", &why)
                    .await
                    .map(|_| None);
            }
        };
        match self.gateway.create_waybill(&d.tenant, &request).await {
            Ok(created) => Ok(Some(created)),
            Err(GatewayError::Unavailable(why)) => self.retry_later(d, &why).await.map(|_| None),
            Err(GatewayError::Rejected { code, message }) => {
                self.reject(d, &code, &message).await.map(|_| None)
            }
        }
    }

    async fn retry_later(&self, d: &Due, why: &str) -> Result<(), OrderError> {
        self.retry_later_id(&d.id, d.attempts, why).await
    }

    /// The shipment waits before it is sent again, longer after each attempt.
    async fn retry_later_id(&self, id: &str, attempts: i64, why: &str) -> Result<(), OrderError> {
        let shift = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
        let wait = self
            .settings
            .retry_initial_ms
            .saturating_mul(1u64 << shift)
            .min(
                self.settings
                    .retry_max_ms
                    .max(self.settings.retry_initial_ms),
            );
        self.db
            .write(
                sqlx::query(
                    "UPDATE ord_shipments SET next_attempt_at_ms = $1, last_error = $2, \
                     updated_at_ms = $3 WHERE id = $4 AND state = 'pending'",
                )
                .bind(now_millis() + i64::try_from(wait).unwrap_or(i64::MAX / 4))
                .bind(why.chars().take(500).collect::<String>())
                .bind(now_millis())
                .bind(id.to_owned()),
            )
            .await?;
        metrics::counter!("shipgate_order_shipment_retries_total").increment(1);
        Ok(())
    }

    /// The gateway refused for good: the shipment is rejected and its orders held.
    async fn reject(&self, d: &Due, code: &str, message: &str) -> Result<(), OrderError> {
        let (id, tenant) = (d.id.clone(), d.tenant.clone());
        let detail = format!("{code}: {message}");
        self.db
            .transact(move |conn| {
                Box::pin(async move {
                    let now = now_millis();
                    sqlx::query(
                        "UPDATE ord_shipments SET state = 'rejected', next_attempt_at_ms = NULL, \
                         last_error = $1, updated_at_ms = $2 WHERE id = $3",
                    )
                    .bind(&detail)
                    .bind(now)
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?;
                    let orders = sqlx::query(
                        "SELECT o.id FROM ord_orders o JOIN ord_shipment_orders s \
                         ON s.order_id = o.id WHERE s.shipment_id = $1 AND o.state = 'allocated'",
                    )
                    .bind(&id)
                    .fetch_all(&mut *conn)
                    .await?;
                    for row in orders {
                        let order: String = row.get(0);
                        sqlx::query(
                            "UPDATE ord_orders SET state = 'on_hold', hold_reason = $1, \
                             hold_detail = $2, updated_at_ms = $3 WHERE id = $4",
                        )
                        .bind(HoldReason::GatewayRejected.as_str())
                        .bind(&detail)
                        .bind(now)
                        .bind(&order)
                        .execute(&mut *conn)
                        .await?;
                        order_event(
                            conn,
                            &tenant,
                            HELD,
                            &order,
                            json!({"id": order, "state": "ON_HOLD",
                                   "holdReason": HoldReason::GatewayRejected.as_str(),
                                   "holdDetail": detail, "shipmentId": id}),
                        )
                        .await?;
                    }
                    Ok::<_, OrderError>(())
                })
            })
            .await
    }
}

/// The next shipment to mark, as a stream's step.
async fn next_made(
    mut ready: tokio::sync::mpsc::UnboundedReceiver<Made>,
) -> Option<(Made, tokio::sync::mpsc::UnboundedReceiver<Made>)> {
    ready.recv().await.map(|m| (m, ready))
}
