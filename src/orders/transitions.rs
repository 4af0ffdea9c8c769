//! What people do to an order: release a hold, hold it, cancel it before shipment (stock
//! released, waybills voided through the gateway), refund it, and take a return through
//! authorization, receipt and restock or write-off. An action the state does not allow is
//! refused with `ILLEGAL_TRANSITION`.

use super::event_types::{CANCELLED, HELD, REFUNDED, RETURN_UPDATED, UPDATED};
use super::gateway::GatewayError;
use super::ingest::order_event;
use super::process::ShipmentLine;
use super::{HoldReason, OrderError, OrderState, OrdersService};
use crate::inventory::{InventoryError, MovementKind, MovementRequest};
use crate::store::now_millis;
use serde_json::json;
use sha2::Digest;
use sqlx::Row;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// An order on hold goes back to be planned (a possible duplicate is not flagged again).
    Release,
    /// A received order is held by hand.
    Hold {
        detail: Option<String>,
    },
    Cancel {
        reason: Option<String>,
    },
    Refund {
        reason: Option<String>,
    },
    AuthorizeReturn {
        reason: Option<String>,
    },
    /// The return arrived at `warehouse`.
    ReceiveReturn {
        warehouse: String,
    },
    /// The returned goods go back on the shelf of the return warehouse.
    Restock,
    WriteOff {
        reason: Option<String>,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Hold { .. } => "hold",
            Self::Cancel { .. } => "cancel",
            Self::Refund { .. } => "refund",
            Self::AuthorizeReturn { .. } => "authorize_return",
            Self::ReceiveReturn { .. } => "receive_return",
            Self::Restock => "restock",
            Self::WriteOff { .. } => "write_off",
        }
    }

    /// The states it may start from, and where it leads.
    fn edge(&self) -> (&'static [OrderState], OrderState) {
        use OrderState::*;
        match self {
            Self::Release => (&[OnHold], Received),
            Self::Hold { .. } => (&[Received], OnHold),
            Self::Cancel { .. } => (&[Received, OnHold, Allocated, WaybillCreated], Cancelled),
            Self::Refund { .. } => (
                &[
                    Cancelled,
                    Delivered,
                    Exception,
                    ReturnReceived,
                    Restocked,
                    WrittenOff,
                ],
                Refunded,
            ),
            Self::AuthorizeReturn { .. } => (&[Shipped, Delivered, Exception], ReturnAuthorized),
            Self::ReceiveReturn { .. } => (&[ReturnAuthorized], ReturnReceived),
            Self::Restock => (&[ReturnReceived], Restocked),
            Self::WriteOff { .. } => (&[ReturnReceived], WrittenOff),
        }
    }
}

impl OrdersService {
    /// Applies `action` to the order; its new state.
    pub async fn act(
        &self,
        tenant: &str,
        id: &str,
        action: Action,
    ) -> Result<OrderState, OrderError> {
        let row = sqlx::query(
            "SELECT state, hold_reason, allocation_id, return_warehouse FROM ord_orders \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or_else(|| OrderError::NotFound(format!("no order `{id}`")))?;
        let (state, hold, allocation, back_to): (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        ) = (row.get(0), row.get(1), row.get(2), row.get(3));
        let current = OrderState::parse(&state)
            .ok_or_else(|| OrderError::NotFound(format!("order `{id}` has state `{state}`")))?;
        let (from, to) = action.edge();
        if !from.contains(&current) {
            return Err(OrderError::IllegalTransition(format!(
                "cannot {} an order in state {}",
                action.name(),
                current.as_str().to_ascii_uppercase()
            )));
        }
        let mut set_warehouse = None;
        match &action {
            Action::Cancel { reason } => {
                self.void_shipments(tenant, id).await?;
                if let Some(allocation) = &allocation {
                    let why = reason.clone().unwrap_or_else(|| "order cancelled".into());
                    self.release_quietly(tenant, allocation, &why).await?;
                    self.restock(tenant, allocation, None, &format!("cancel:{id}"))
                        .await?;
                }
            }
            Action::ReceiveReturn { warehouse } => {
                let known = self.inventory.warehouses(tenant).await?;
                if !known.iter().any(|w| &w.code == warehouse) {
                    return Err(super::error::invalid(
                        "warehouse",
                        format!("no warehouse `{warehouse}`"),
                    ));
                }
                set_warehouse = Some(warehouse.clone());
            }
            Action::Restock => {
                if let (Some(allocation), Some(warehouse)) = (&allocation, &back_to) {
                    self.restock(tenant, allocation, Some(warehouse), &format!("return:{id}"))
                        .await?;
                }
            }
            _ => {}
        }
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        let cleared = action == Action::Release
            && hold.as_deref() == Some(HoldReason::PossibleDuplicate.as_str());
        let (event_type, detail) = match &action {
            Action::Release => (UPDATED, None),
            Action::Hold { detail } => (HELD, detail.clone()),
            Action::Cancel { reason } => (CANCELLED, reason.clone()),
            Action::Refund { reason } => (REFUNDED, reason.clone()),
            Action::WriteOff { reason } | Action::AuthorizeReturn { reason } => {
                (RETURN_UPDATED, reason.clone())
            }
            Action::ReceiveReturn { .. } | Action::Restock => (RETURN_UPDATED, None),
        };
        let name = action.name();
        self.db
            .transact(move |conn| {
                Box::pin(async move {
                    let now = now_millis();
                    let n = sqlx::query(
                        "UPDATE ord_orders SET state = $1, updated_at_ms = $2, \
                         next_attempt_at_ms = CASE WHEN $1 = 'received' THEN $2 ELSE NULL END, \
                         hold_reason = CASE WHEN $1 = 'on_hold' THEN 'MANUAL' ELSE NULL END, \
                         hold_detail = CASE WHEN $1 = 'on_hold' THEN $3 ELSE NULL END, \
                         duplicate_cleared = CASE WHEN $4 = 1 THEN 1 ELSE duplicate_cleared END, \
                         return_warehouse = COALESCE($5, return_warehouse) \
                         WHERE id = $6 AND state = $7",
                    )
                    .bind(to.as_str())
                    .bind(now)
                    .bind(&detail)
                    .bind(i64::from(cleared))
                    .bind(&set_warehouse)
                    .bind(&id)
                    .bind(current.as_str())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if n == 0 {
                        return Err(OrderError::IllegalTransition(format!(
                            "the order changed state while it was being {name}ed; read it again"
                        )));
                    }
                    order_event(
                        conn,
                        &tenant,
                        event_type,
                        &id,
                        json!({"id": id, "state": to.as_str().to_ascii_uppercase(),
                               "previousState": current.as_str().to_ascii_uppercase(),
                               "action": name, "detail": detail,
                               "returnWarehouse": set_warehouse}),
                    )
                    .await?;
                    Ok(to)
                })
            })
            .await
    }

    /// Voids the order's shipments: open ones at once (a merged one keeps its other orders),
    /// created ones at the gateway. A shipment being sent, or one shared with other orders
    /// after its waybill exists, refuses the cancel.
    async fn void_shipments(&self, tenant: &str, id: &str) -> Result<(), OrderError> {
        let rows = sqlx::query(
            "SELECT s.id, s.state, s.waybill_number, s.lines, \
             (SELECT COUNT(*) FROM ord_shipment_orders x WHERE x.shipment_id = s.id) \
             FROM ord_shipments s JOIN ord_shipment_orders so ON so.shipment_id = s.id \
             WHERE so.order_id = $1",
        )
        .bind(id)
        .fetch_all(&self.db.pool)
        .await?;
        for row in rows {
            let (sid, state, number, lines, orders): (String, String, Option<String>, String, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
            match state.as_str() {
                "created" if orders > 1 => {
                    return Err(OrderError::IllegalTransition(format!(
                        "shipment {sid} carries other orders too; cancel its waybill through the gateway first"
                    )));
                }
                "created" => {
                    let number = number.unwrap_or_default();
                    match self.gateway.cancel_waybill(tenant, &number).await {
                        Ok(()) => {}
                        Err(GatewayError::Unavailable(why)) => {
                            return Err(OrderError::GatewayUnavailable(format!(
                                "waybill {number} could not be voided yet ({why}); nothing changed, retry"
                            )));
                        }
                        Err(GatewayError::Rejected { code, message }) => {
                            return Err(OrderError::GatewayRefused(format!(
                                "waybill {number} was not voided: {code} {message}"
                            )));
                        }
                    }
                    self.set_shipment(&sid, "voided", None).await?;
                }
                "open" | "pending" if orders > 1 => {
                    let mut all: Vec<ShipmentLine> =
                        serde_json::from_str(&lines).unwrap_or_default();
                    all.retain(|l| l.order_id != id);
                    self.set_shipment(
                        &sid,
                        &state,
                        Some(serde_json::to_string(&all).unwrap_or_default()),
                    )
                    .await?;
                    self.db
                        .write(
                            sqlx::query(
                                "DELETE FROM ord_shipment_orders WHERE shipment_id = $1 AND order_id = $2",
                            )
                            .bind(sid)
                            .bind(id.to_owned()),
                        )
                        .await?;
                }
                // A pending one may be at the gateway now: when its answer comes, the waybill
                // is voided there (see `ship`).
                "open" | "pending" => self.set_shipment(&sid, "voided", None).await?,
                _ => {}
            }
        }
        Ok(())
    }

    async fn set_shipment(
        &self,
        id: &str,
        state: &str,
        lines: Option<String>,
    ) -> Result<(), OrderError> {
        self.db
            .write(
                sqlx::query(
                    "UPDATE ord_shipments SET state = $1, lines = COALESCE($2, lines), \
                     next_attempt_at_ms = CASE WHEN $1 = 'voided' THEN NULL ELSE next_attempt_at_ms END, \
                     updated_at_ms = $3 WHERE id = $4",
                )
                .bind(state.to_owned())
                .bind(lines)
                .bind(now_millis())
                .bind(id.to_owned()),
            )
            .await?;
        Ok(())
    }

    /// Puts the committed units of an allocation back on a shelf (their warehouse's, or
    /// `warehouse`), once per `key`.
    async fn restock(
        &self,
        tenant: &str,
        allocation: &str,
        warehouse: Option<&String>,
        key: &str,
    ) -> Result<(), OrderError> {
        let plan = match self.inventory.allocation(tenant, allocation).await {
            Ok(a) => a,
            Err(InventoryError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut units: BTreeMap<(String, String), i64> = BTreeMap::new();
        for part in &plan.warehouses {
            for line in part.lines.iter().filter(|l| l.state == "COMMITTED") {
                let at = warehouse.cloned().unwrap_or_else(|| part.warehouse.clone());
                *units.entry((line.sku.clone(), at)).or_default() += line.quantity;
            }
        }
        for ((sku, at), quantity) in units {
            self.inventory
                .record(
                    tenant,
                    MovementRequest {
                        kind: MovementKind::Restock,
                        request_id: Some(format!(
                            "rs_{}",
                            &hex::encode(sha2::Sha256::digest(format!("{key}|{at}|{sku}")))[..32]
                        )),
                        sku,
                        warehouse: at,
                        quantity,
                        reason: Some(key.to_owned()),
                    },
                )
                .await?;
        }
        Ok(())
    }
}
