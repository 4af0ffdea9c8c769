//! Storing a plan: the order allocated and its shipments made, or joined to an open shipment
//! to the same consignee when the tenant merges.

use super::event_types::ALLOCATED;
use super::ingest::order_event;
use super::process::{Loaded, ShipmentLine};
use super::{OrderError, OrdersService};
use crate::store::{Dialect, now_millis};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// A shipment of a plan: warehouse, gateway channel, parcel limit and lines.
pub(super) type Planned = (String, String, Option<u64>, Vec<ShipmentLine>);

impl OrdersService {
    pub(super) async fn store_plan(
        &self,
        tenant: &str,
        id: &str,
        o: Loaded,
        allocation_id: String,
        shipments: Vec<Planned>,
    ) -> Result<(), OrderError> {
        let merge = match self.merge_setting(tenant).await? {
            (true, secs) => Some(secs.saturating_mul(1000)),
            (false, _) => None,
        };
        let (tenant, id, dialect) = (tenant.to_owned(), id.to_owned(), self.db.dialect);
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
                        let open = match merge {
                            Some(_) => {
                                if dialect == Dialect::Postgres {
                                    // Plans to one consignee, warehouse and channel take turns
                                    // (on any instance): a row lock cannot guard a shipment
                                    // that does not exist yet. SQLite's writer is one already.
                                    let key = Sha256::digest(
                                        format!(
                                            "{tenant}|{warehouse}|{}|{channel}",
                                            o.consignee_key
                                        )
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
                            }
                            None => None,
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
                                let digest = Sha256::digest(
                                    format!("{allocation_id}|{warehouse}").as_bytes(),
                                );
                                let sid = format!("shp_{}", &hex::encode(digest)[..24]);
                                let send_after = now + merge.unwrap_or(0);
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
