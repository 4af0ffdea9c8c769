//! The processor's second half: a due shipment becomes a waybill through the gateway, with its
//! id as the reference number. The gateway down or busy leaves it waiting, retried with the same
//! reference; a refusal holds its orders with the gateway's reason.

use super::event_types::{HELD, WAYBILL_CREATED};
use super::gateway::{CreatedWaybill, GatewayError};
use super::ingest::order_event;
use super::process::{CLAIM_MS, ShipmentLine};
use super::{HoldReason, OrderError, OrdersService, ShipTo};
use crate::inventory::InventoryError;
use crate::store::now_millis;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sqlx::Row;

/// How many gateway calls one processor step has in flight.
const IN_FLIGHT: usize = 32;

struct Due {
    id: String,
    tenant: String,
    warehouse: String,
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
        let mut due = Vec::with_capacity(rows.len());
        for row in rows {
            let (lines, consignee, parcels): (String, String, String) =
                (row.get(4), row.get(5), row.get(6));
            let parcels: Value = serde_json::from_str(&parcels).unwrap_or(Value::Null);
            due.push(Due {
                id: row.get(0),
                tenant: row.get(1),
                warehouse: row.get(2),
                channel: row.get(3),
                lines: serde_json::from_str(&lines).unwrap_or_default(),
                consignee: serde_json::from_str(&consignee).unwrap_or_default(),
                max_parcel: parcels["maxParcelGrams"].as_u64(),
                attempts: row.get(7),
            });
        }
        let n = due.len();
        futures_util::stream::iter(due)
            .for_each_concurrent(IN_FLIGHT, |d| async move {
                if let Err(e) = self.send(&d).await {
                    tracing::warn!(shipment = %d.id, error = %e, "sending a shipment failed");
                    let _ = self.retry_later(&d, &e.to_string()).await;
                }
            })
            .await;
        Ok(n)
    }

    /// The gateway's create request for a shipment (the warehouse is the shipper).
    async fn request(&self, d: &Due) -> Result<Result<Value, String>, OrderError> {
        let warehouse = self
            .inventory
            .warehouses(&d.tenant)
            .await?
            .into_iter()
            .find(|w| w.code == d.warehouse);
        let Some((w, address)) = warehouse.and_then(|w| w.address.clone().map(|a| (w, a))) else {
            return Ok(Err(format!(
                "warehouse {} has no street address to ship from",
                d.warehouse
            )));
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
        Ok(Ok(request))
    }

    async fn send(&self, d: &Due) -> Result<(), OrderError> {
        let request = match self.request(d).await? {
            Ok(r) => r,
            Err(why) => return self.reject(d, "NO_SHIPPER_ADDRESS", &why).await,
        };
        match self.gateway.create_waybill(&d.tenant, &request).await {
            Ok(created) => self.created(d, created).await,
            Err(GatewayError::Unavailable(why)) => self.retry_later(d, &why).await,
            Err(GatewayError::Rejected { code, message }) => self.reject(d, &code, &message).await,
        }
    }

    async fn retry_later(&self, d: &Due, why: &str) -> Result<(), OrderError> {
        let shift = u32::try_from(d.attempts.clamp(1, 20) - 1).unwrap_or(0);
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
                .bind(d.id.clone()),
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

    async fn created(&self, d: &Due, w: CreatedWaybill) -> Result<(), OrderError> {
        // The stock leaves the warehouse with the waybill (committed first: a crash before the
        // shipment is marked asks the gateway again, which answers with the same waybill).
        let mut orders: Vec<&str> = d.lines.iter().map(|l| l.order_id.as_str()).collect();
        orders.sort_unstable();
        orders.dedup();
        for order in &orders {
            let allocation: Option<String> =
                sqlx::query("SELECT allocation_id FROM ord_orders WHERE id = $1")
                    .bind(*order)
                    .fetch_optional(&self.db.pool)
                    .await?
                    .and_then(|r| r.get(0));
            if let Some(allocation) = allocation {
                match self
                    .inventory
                    .commit(
                        &d.tenant,
                        &allocation,
                        Some(d.warehouse.clone()),
                        Some(w.waybill_number.clone()),
                    )
                    .await
                {
                    Ok(_) | Err(InventoryError::NotActive(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let (id, tenant) = (d.id.clone(), d.tenant.clone());
        let number = w.waybill_number.clone();
        let marked = self
            .db
            .transact(move |conn| {
                Box::pin(async move {
                    let now = now_millis();
                    let n = sqlx::query(
                        "UPDATE ord_shipments SET state = 'created', waybill_number = $1, \
                         tracking_number = $2, carrier = $3, next_attempt_at_ms = NULL, \
                         last_error = NULL, updated_at_ms = $4 WHERE id = $5 AND state = 'pending'",
                    )
                    .bind(&w.waybill_number)
                    .bind(&w.tracking_number)
                    .bind(&w.carrier)
                    .bind(now)
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if n == 0 {
                        return Ok::<_, OrderError>(false);
                    }
                    super::writeback::queue(conn, &tenant, &id).await?;
                    // The shipment's orders. PostgreSQL: two shipments of one order marked at
                    // once would each see the other still pending and neither move the order;
                    // locking the orders' rows first (in id order) makes the second wait, and its
                    // checks below (new snapshots) see the first.
                    let lock = match crate::store::sql::dialect_of(conn) {
                        crate::store::Dialect::Postgres => " FOR UPDATE",
                        crate::store::Dialect::Sqlite => "",
                    };
                    let orders: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT id FROM ord_orders WHERE id IN (SELECT order_id \
                         FROM ord_shipment_orders WHERE shipment_id = $1) ORDER BY id{lock}"
                    )))
                    .bind(&id)
                    .fetch_all(&mut *conn)
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                    // Each order whose shipments all have their waybill now has its labels. One
                    // order at a time, by key: joined, PostgreSQL's planner (its statistics
                    // behind a burst of new orders) scanned every allocated order instead.
                    let mut ready = Vec::new();
                    for order in orders {
                        let all_made = sqlx::query(
                            "SELECT 1 FROM ord_orders WHERE id = $1 AND state = 'allocated' \
                             AND NOT EXISTS (SELECT 1 FROM ord_shipment_orders x \
                             JOIN ord_shipments s ON s.id = x.shipment_id WHERE x.order_id = $1 \
                             AND s.state NOT IN ('created', 'rejected', 'voided'))",
                        )
                        .bind(&order)
                        .fetch_optional(&mut *conn)
                        .await?;
                        if all_made.is_some() {
                            ready.push(order);
                        }
                    }
                    for order in ready {
                        sqlx::query(
                            "UPDATE ord_orders SET state = 'waybill_created', waybill_at_ms = $1, \
                             updated_at_ms = $1 WHERE id = $2",
                        )
                        .bind(now)
                        .bind(&order)
                        .execute(&mut *conn)
                        .await?;
                        order_event(
                            conn,
                            &tenant,
                            WAYBILL_CREATED,
                            &order,
                            json!({"id": order, "state": "WAYBILL_CREATED", "shipmentId": id,
                                   "waybillNumber": w.waybill_number,
                                   "trackingNumber": w.tracking_number, "carrier": w.carrier}),
                        )
                        .await?;
                    }
                    Ok(true)
                })
            })
            .await?;
        if !marked {
            // Cancelled while the gateway was asked: the waybill it made is voided.
            if let Err(e) = self.gateway.cancel_waybill(&d.tenant, &number).await {
                tracing::warn!(shipment = %d.id, waybill = %number, error = %e,
                    "voiding the waybill of a cancelled shipment failed");
            }
            return Ok(());
        }
        metrics::counter!("shipgate_order_waybills_total").increment(1);
        Ok(())
    }
}
