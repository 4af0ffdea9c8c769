//! Shipments that got their waybills, marked in batches: the stock of their orders committed
//! through the inventory service (one transaction for the batch), then the shipments, their
//! write-backs and the orders whose shipments all have waybills marked in one more. A batch
//! costs a few statements whatever its size, where one shipment at a time cost a dozen round
//! trips each, under the stock rows' and the orders' locks.

use super::event_types::WAYBILL_CREATED;
use super::gateway::CreatedWaybill;
use super::process::ShipmentLine;
use super::{OrderError, OrdersService, aggregate};
use crate::events::{self, NewEvent};
use crate::inventory::{Closing, InventoryError};
use crate::store::sql::{Arg, dialect_of, list, rows_at, statement};
use crate::store::{Dialect, now_millis};
use serde_json::json;
use sqlx::Row;
use std::collections::HashMap;

/// A shipment the gateway made a waybill for.
pub(super) struct Made {
    pub id: String,
    pub tenant: String,
    pub warehouse: String,
    pub lines: Vec<ShipmentLine>,
    pub attempts: i64,
    pub waybill: CreatedWaybill,
}

impl OrdersService {
    /// Marks `made` (see the module's docs); the shipments that failed, with why, for the
    /// caller to retry (the gateway answers them again with the same waybill).
    pub(super) async fn mark_created(&self, made: Vec<Made>) -> Vec<(Made, String)> {
        let mut failed = Vec::new();
        let committed = match self.commit_stock(&made).await {
            Ok(answers) => answers,
            Err(e) => {
                let why = e.to_string();
                return made.into_iter().map(|m| (m, why.clone())).collect();
            }
        };
        let mut ready = Vec::with_capacity(made.len());
        for (m, answer) in made.into_iter().zip(committed) {
            match answer {
                Ok(()) => ready.push(m),
                Err(e) => failed.push((m, e.to_string())),
            }
        }
        if ready.is_empty() {
            return failed;
        }
        let marks: Vec<(String, String, CreatedWaybill)> = ready
            .iter()
            .map(|m| (m.id.clone(), m.tenant.clone(), m.waybill.clone()))
            .collect();
        let marked = self
            .db
            .transact(move |conn| Box::pin(async move { mark(conn, &marks).await }))
            .await;
        let marked = match marked {
            Ok(marked) => marked,
            Err(e) => {
                let why = e.to_string();
                failed.extend(ready.into_iter().map(|m| (m, why.clone())));
                return failed;
            }
        };
        for m in ready {
            if marked.contains(&m.id) {
                metrics::counter!("shipgate_order_waybills_total").increment(1);
                continue;
            }
            // Cancelled while the gateway was asked: the waybill it made is voided.
            let number = &m.waybill.waybill_number;
            if let Err(e) = self.gateway.cancel_waybill(&m.tenant, number).await {
                tracing::warn!(shipment = %m.id, waybill = %number, error = %e,
                    "voiding the waybill of a cancelled shipment failed");
            }
        }
        failed
    }

    /// Commits the allocations of the shipments' orders (in the shipment's warehouse), one
    /// transaction for all; per shipment, whether its stock left. Committed first: a crash
    /// before the shipment is marked asks the gateway again, which answers with the same
    /// waybill, and an allocation already committed is not an error.
    async fn commit_stock(&self, made: &[Made]) -> Result<Vec<Result<(), OrderError>>, OrderError> {
        let mut orders: Vec<String> = made
            .iter()
            .flat_map(|m| m.lines.iter().map(|l| l.order_id.clone()))
            .collect();
        orders.sort_unstable();
        orders.dedup();
        let allocations: HashMap<String, String> = if orders.is_empty() {
            HashMap::new()
        } else {
            let sql = format!(
                "SELECT id, allocation_id FROM ord_orders WHERE allocation_id IS NOT NULL \
                 AND id IN ({})",
                list(1, orders.len())
            );
            let args = orders.iter().map(|o| Arg::Text(o.clone())).collect();
            statement(self.db.dialect, &sql, args)
                .fetch_all(&self.db.pool)
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
        };
        // Each shipment's items, in the batch's order.
        let mut items = Vec::new();
        let mut owner = Vec::new();
        for (i, m) in made.iter().enumerate() {
            let mut mine: Vec<&str> = m.lines.iter().map(|l| l.order_id.as_str()).collect();
            mine.sort_unstable();
            mine.dedup();
            for order in mine {
                if let Some(allocation) = allocations.get(order) {
                    items.push(Closing {
                        tenant: m.tenant.clone(),
                        id: allocation.clone(),
                        warehouse: Some(m.warehouse.clone()),
                        note: Some(m.waybill.waybill_number.clone()),
                    });
                    owner.push(i);
                }
            }
        }
        let answers = self.inventory.commit_many(items).await?;
        let mut results: Vec<Result<(), OrderError>> = made.iter().map(|_| Ok(())).collect();
        for (i, answer) in owner.into_iter().zip(answers) {
            match answer {
                Ok(_) | Err(InventoryError::NotActive(_)) => {}
                Err(e) => results[i] = Err(e.into()),
            }
        }
        Ok(results)
    }
}

/// Marks the shipments created, queues their write-backs, and moves each of their orders whose
/// shipments all have waybills now to `waybill_created` (with its event); the shipments
/// marked (one cancelled meanwhile is not).
async fn mark(
    conn: &mut sqlx::AnyConnection,
    marks: &[(String, String, CreatedWaybill)],
) -> Result<Vec<String>, OrderError> {
    let dialect = dialect_of(conn);
    let now = now_millis();
    let ids: Vec<Arg> = marks
        .iter()
        .map(|(id, _, _)| Arg::Text(id.clone()))
        .collect();
    // The shipments' orders, locked first in id order (PostgreSQL): two batches marking two
    // shipments of one order take turns, and the second's checks below (new snapshots) see the
    // first's.
    let lock = match dialect {
        Dialect::Postgres => " FOR UPDATE",
        Dialect::Sqlite => "",
    };
    let sql = format!(
        "SELECT id FROM ord_orders WHERE id IN (SELECT order_id FROM ord_shipment_orders \
         WHERE shipment_id IN ({})) ORDER BY id{lock}",
        list(1, ids.len())
    );
    let locked = statement(dialect, &sql, ids).fetch_all(&mut *conn).await?;
    let mut args = vec![Arg::Int(now)];
    for (id, _, w) in marks {
        args.extend([
            Arg::Text(id.clone()),
            Arg::Text(w.waybill_number.clone()),
            Arg::OptText(w.tracking_number.clone()),
            Arg::Text(w.carrier.clone()),
        ]);
    }
    let sql = format!(
        "UPDATE ord_shipments SET state = 'created', waybill_number = v.column2, \
         tracking_number = v.column3, carrier = v.column4, next_attempt_at_ms = NULL, \
         last_error = NULL, updated_at_ms = $1 FROM (VALUES {}) AS v \
         WHERE ord_shipments.id = v.column1 AND ord_shipments.state = 'pending' \
         RETURNING ord_shipments.id",
        rows_at(2, marks.len(), 4)
    );
    let marked: Vec<String> = statement(dialect, &sql, args)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if marked.is_empty() || locked.is_empty() {
        return Ok(marked);
    }
    super::writeback::queue(conn, &marked).await?;
    // The marked shipments' orders, each with the shipment of this batch that completes it (the
    // last one marked, when two of its shipments were).
    let by_order: HashMap<String, String> = {
        let sql = format!(
            "SELECT order_id, shipment_id FROM ord_shipment_orders WHERE shipment_id IN ({})",
            list(1, marked.len())
        );
        let args = marked.iter().map(|s| Arg::Text(s.clone())).collect();
        let mut rows: Vec<(String, String)> = statement(dialect, &sql, args)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let at = |s: &str| marked.iter().position(|m| m == s).unwrap_or(0);
        rows.sort_by_key(|(_, s)| at(s));
        rows.into_iter().collect()
    };
    let candidates: Vec<&String> = by_order.keys().collect();
    // Those whose shipments all have their waybill now, by key (joined by state, PostgreSQL's
    // planner — its statistics behind a burst of new orders — scanned every allocated order).
    let sql = format!(
        "SELECT o.id, o.tenant_id FROM ord_orders o WHERE o.id IN ({}) AND o.state = 'allocated' \
         AND NOT EXISTS (SELECT 1 FROM ord_shipment_orders x JOIN ord_shipments s \
         ON s.id = x.shipment_id WHERE x.order_id = o.id \
         AND s.state NOT IN ('created', 'rejected', 'voided'))",
        list(1, candidates.len())
    );
    let args = candidates.iter().map(|o| Arg::Text((*o).clone())).collect();
    let ready: Vec<(String, String)> = statement(dialect, &sql, args)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    if ready.is_empty() {
        return Ok(marked);
    }
    let mut args = vec![Arg::Int(now)];
    args.extend(ready.iter().map(|(id, _)| Arg::Text(id.clone())));
    let sql = format!(
        "UPDATE ord_orders SET state = 'waybill_created', waybill_at_ms = $1, updated_at_ms = $1 \
         WHERE id IN ({})",
        list(2, ready.len())
    );
    statement(dialect, &sql, args).execute(&mut *conn).await?;
    let shipments: HashMap<&str, &(String, String, CreatedWaybill)> =
        marks.iter().map(|m| (m.0.as_str(), m)).collect();
    let mut news = Vec::with_capacity(ready.len());
    for (order, tenant) in &ready {
        let Some((shipment, _, w)) = by_order
            .get(order)
            .and_then(|s| shipments.get(s.as_str()))
            .copied()
        else {
            continue;
        };
        news.push(NewEvent::new(
            tenant,
            WAYBILL_CREATED,
            aggregate(order),
            json!({"order": {"id": order, "state": "WAYBILL_CREATED", "shipmentId": shipment,
                   "waybillNumber": w.waybill_number, "trackingNumber": w.tracking_number,
                   "carrier": w.carrier}}),
        ));
    }
    events::append_many(conn, news).await?;
    Ok(marked)
}
