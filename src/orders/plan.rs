//! Storing a plan: the order allocated and its shipments made, or joined to an open shipment
//! to the same consignee when the tenant merges.

use super::aggregate;
use super::event_types::ALLOCATED;
use super::ingest::order_event;
use super::process::{Loaded, ShipmentLine};
use super::{OrderError, OrdersService};
use crate::events::{self, NewEvent};
use crate::store::sql::{Arg, dialect_of, rows_at, statement};
use crate::store::{Dialect, now_millis};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};
use std::collections::{HashMap, HashSet};

/// A shipment of a plan: warehouse, gateway channel, parcel limit and lines.
pub(super) type Planned = (String, String, Option<u64>, Vec<ShipmentLine>);

/// An order planned: its allocation and shipments, to store.
pub(super) struct Plan {
    pub tenant: String,
    pub id: String,
    pub loaded: Loaded,
    pub allocation_id: String,
    pub shipments: Vec<Planned>,
}

impl OrdersService {
    /// Stores a step's plans: those of tenants that merge one at a time (each may join an open
    /// shipment, under its consignee's lock), the others together in one transaction. A plan
    /// that fails is planned again later (its allocation is found again by its id).
    pub(super) async fn store_all(&self, plans: Vec<Plan>) {
        let mut merging: HashMap<String, Option<i64>> = HashMap::new();
        let mut together = Vec::new();
        for plan in plans {
            if !merging.contains_key(&plan.tenant) {
                let merge = match self.merge_setting(&plan.tenant).await {
                    Ok((true, secs)) => Some(secs.saturating_mul(1000)),
                    Ok((false, _)) => None,
                    Err(e) => {
                        self.plan_later(&plan.id, &e).await;
                        continue;
                    }
                };
                merging.insert(plan.tenant.clone(), merge);
            }
            match merging[&plan.tenant] {
                Some(window) => {
                    let id = plan.id.clone();
                    if let Err(e) = self.store_plan(plan, window).await {
                        self.plan_later(&id, &e).await;
                    }
                }
                None => together.push(plan),
            }
        }
        if together.is_empty() {
            return;
        }
        let ids: Vec<String> = together.iter().map(|p| p.id.clone()).collect();
        let stored = self
            .db
            .transact(move |conn| Box::pin(async move { store_plans(conn, together).await }))
            .await;
        if let Err(e) = stored {
            for id in ids {
                self.plan_later(&id, &e).await;
            }
        }
    }

    /// Stores one plan of a tenant that merges (`window`: how long a new shipment stays open).
    async fn store_plan(&self, plan: Plan, window: i64) -> Result<(), OrderError> {
        let Plan {
            tenant,
            id,
            loaded: o,
            allocation_id,
            shipments,
        } = plan;
        let dialect = self.db.dialect;
        let consignee = serde_json::to_string(&o.order.ship_to).unwrap_or_default();
        self.db
            .transact(move |conn| {
                Box::pin(async move {
                    let now = now_millis();
                    let n = sqlx::query(
                        "UPDATE ord_orders SET state = 'allocated', allocation_id = $1, \
                         next_attempt_at_ms = NULL, updated_at_ms = $2 \
                         WHERE id = $3 AND state = 'received' AND version = $4",
                    )
                    .bind(&allocation_id)
                    .bind(now)
                    .bind(&id)
                    .bind(o.version)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if n == 0 {
                        return Ok::<_, OrderError>(());
                    }
                    let mut planned = Vec::new();
                    for (warehouse, channel, max_parcel, lines) in shipments {
                        let lock = if dialect == Dialect::Postgres {
                            " FOR UPDATE"
                        } else {
                            ""
                        };
                        let open = {
                            if dialect == Dialect::Postgres {
                                // Plans to one consignee, warehouse and channel take turns
                                // (on any instance): a row lock cannot guard a shipment
                                // that does not exist yet. SQLite's writer is one already.
                                let key = Sha256::digest(
                                    format!("{tenant}|{warehouse}|{}|{channel}", o.consignee_key)
                                        .as_bytes(),
                                );
                                let mut first = [0u8; 8];
                                first.copy_from_slice(&key[..8]);
                                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                                    .bind(i64::from_be_bytes(first))
                                    .execute(&mut *conn)
                                    .await?;
                            }
                            sqlx::query(sqlx::AssertSqlSafe(format!(
                                "SELECT id, lines FROM ord_shipments WHERE tenant_id = $1 \
                                 AND warehouse = $2 AND consignee_key = $3 AND channel = $4 \
                                 AND state = 'open' AND send_after_ms > $5 \
                                 ORDER BY created_at_ms LIMIT 1{lock}"
                            )))
                            .bind(&tenant)
                            .bind(&warehouse)
                            .bind(&o.consignee_key)
                            .bind(&channel)
                            .bind(now)
                            .fetch_optional(&mut *conn)
                            .await?
                        };
                        let shipment = match open {
                            Some(row) => {
                                let (sid, old): (String, String) = (row.get(0), row.get(1));
                                let mut all: Vec<ShipmentLine> =
                                    serde_json::from_str(&old).unwrap_or_default();
                                all.extend(lines);
                                sqlx::query(
                                    "UPDATE ord_shipments SET lines = $1, updated_at_ms = $2 \
                                     WHERE id = $3",
                                )
                                .bind(serde_json::to_string(&all).unwrap_or_default())
                                .bind(now)
                                .bind(&sid)
                                .execute(&mut *conn)
                                .await?;
                                sid
                            }
                            None => {
                                let sid = shipment_id(&allocation_id, &warehouse);
                                let send_after = now + window;
                                sqlx::query(
                                    "INSERT INTO ord_shipments (id, tenant_id, warehouse, \
                                     consignee_key, channel, state, lines, consignee, parcels, \
                                     send_after_ms, next_attempt_at_ms, created_at_ms, \
                                     updated_at_ms) VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, \
                                     $8, $9, $9, $10, $10) ON CONFLICT (id) DO NOTHING",
                                )
                                .bind(&sid)
                                .bind(&tenant)
                                .bind(&warehouse)
                                .bind(&o.consignee_key)
                                .bind(&channel)
                                .bind(serde_json::to_string(&lines).unwrap_or_default())
                                .bind(&consignee)
                                .bind(json!({"maxParcelGrams": max_parcel}).to_string())
                                .bind(send_after)
                                .bind(now)
                                .execute(&mut *conn)
                                .await?;
                                sid
                            }
                        };
                        sqlx::query(
                            "INSERT INTO ord_shipment_orders (shipment_id, order_id) \
                             VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        )
                        .bind(&shipment)
                        .bind(&id)
                        .execute(&mut *conn)
                        .await?;
                        planned.push(json!({"shipmentId": shipment, "warehouse": warehouse,
                                            "channel": channel}));
                    }
                    order_event(
                        conn,
                        &tenant,
                        ALLOCATED,
                        &id,
                        json!({"id": id, "state": "ALLOCATED", "allocationId": allocation_id,
                               "shipments": planned}),
                    )
                    .await
                })
            })
            .await
    }
}

/// The id of a plan's shipment from a warehouse (the gateway's reference number): the same for
/// the same allocation and warehouse, however often the plan is stored.
fn shipment_id(allocation_id: &str, warehouse: &str) -> String {
    let digest = Sha256::digest(format!("{allocation_id}|{warehouse}").as_bytes());
    format!("shp_{}", &hex::encode(digest)[..24])
}

/// Stores plans of tenants that do not merge with a statement per table: the orders allocated
/// (each only if still received at the version planned), then their shipments, links and
/// events.
async fn store_plans(conn: &mut AnyConnection, plans: Vec<Plan>) -> Result<(), OrderError> {
    let dialect = dialect_of(conn);
    let now = now_millis();
    let mut args = vec![Arg::Int(now)];
    for p in &plans {
        args.extend([
            Arg::Text(p.id.clone()),
            Arg::Text(p.allocation_id.clone()),
            Arg::Int(p.loaded.version),
        ]);
    }
    let sql = format!(
        "UPDATE ord_orders SET state = 'allocated', allocation_id = v.column2, \
         next_attempt_at_ms = NULL, updated_at_ms = $1 FROM (VALUES {}) AS v \
         WHERE ord_orders.id = v.column1 AND ord_orders.state = 'received' \
         AND ord_orders.version = v.column3 RETURNING ord_orders.id",
        rows_at(2, plans.len(), 3)
    );
    let moved: HashSet<String> = statement(dialect, &sql, args)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut shipments = vec![Arg::Int(now)];
    let mut links = Vec::new();
    let mut events = Vec::new();
    for p in plans.iter().filter(|p| moved.contains(&p.id)) {
        let consignee = serde_json::to_string(&p.loaded.order.ship_to).unwrap_or_default();
        let mut planned = Vec::new();
        for (warehouse, channel, max_parcel, lines) in &p.shipments {
            let sid = shipment_id(&p.allocation_id, warehouse);
            shipments.extend([
                Arg::Text(sid.clone()),
                Arg::Text(p.tenant.clone()),
                Arg::Text(warehouse.clone()),
                Arg::Text(p.loaded.consignee_key.clone()),
                Arg::Text(channel.clone()),
                Arg::Text(serde_json::to_string(lines).unwrap_or_default()),
                Arg::Text(consignee.clone()),
                Arg::Text(json!({"maxParcelGrams": max_parcel}).to_string()),
            ]);
            links.extend([Arg::Text(sid.clone()), Arg::Text(p.id.clone())]);
            planned.push(json!({"shipmentId": sid, "warehouse": warehouse, "channel": channel}));
        }
        events.push(NewEvent::new(
            &p.tenant,
            ALLOCATED,
            aggregate(&p.id),
            json!({"order": {"id": p.id, "state": "ALLOCATED", "allocationId": p.allocation_id,
                   "shipments": planned}}),
        ));
    }
    if events.is_empty() {
        return Ok(());
    }
    let n = (shipments.len() - 1) / 8;
    if n > 0 {
        let sql = format!(
            "INSERT INTO ord_shipments (id, tenant_id, warehouse, consignee_key, channel, state, \
             lines, consignee, parcels, send_after_ms, next_attempt_at_ms, created_at_ms, \
             updated_at_ms) SELECT v.column1, v.column2, v.column3, v.column4, v.column5, 'open', \
             v.column6, v.column7, v.column8, $1, $1, $1, $1 FROM (VALUES {}) AS v WHERE true \
             ON CONFLICT (id) DO NOTHING",
            rows_at(2, n, 8)
        );
        statement(dialect, &sql, shipments)
            .execute(&mut *conn)
            .await?;
        let sql = format!(
            "INSERT INTO ord_shipment_orders (shipment_id, order_id) VALUES {} \
             ON CONFLICT DO NOTHING",
            rows_at(1, n, 2)
        );
        statement(dialect, &sql, links).execute(&mut *conn).await?;
    }
    events::append_many(conn, events).await?;
    Ok(())
}
