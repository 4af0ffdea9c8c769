//! Stock changes: every one is a movement appended in the transaction that moves the stock
//! row's counters (guarded so no statement leaves stock negative) and publishes the change.

use super::catalog::{check_code, check_warehouse_code};
use super::error::invalid;
use super::event_types::{LOW_STOCK, STOCK_CHANGED};
use super::{
    InventoryError, InventoryService, Movement, MovementKind, MovementRequest, StockLevel,
};
use crate::events::{self, NewEvent};
use crate::store::{Dialect, now_millis, rfc3339_millis};
use serde_json::json;
use sqlx::{AnyConnection, Row};

/// One change of one stock row.
pub(super) struct Change<'a> {
    pub tenant: &'a str,
    pub sku: &'a str,
    pub warehouse: &'a str,
    pub kind: MovementKind,
    pub on_hand: i64,
    pub reserved: i64,
    pub reservation_id: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// Moves the counters of a stock row (which must exist) and appends the movement and its
/// events; refused when on hand would go negative or below what is reserved, and for a
/// reservation when available stock would.
pub(super) async fn apply(
    conn: &mut AnyConnection,
    c: Change<'_>,
) -> Result<(Movement, StockLevel), InventoryError> {
    let now = now_millis();
    let needs_available = i64::from(c.kind == MovementKind::Reserve);
    let row = sqlx::query(
        "UPDATE inv_stock SET on_hand = on_hand + $1, reserved = reserved + $2, \
         updated_at_ms = $3 WHERE tenant_id = $4 AND sku = $5 AND warehouse = $6 \
         AND on_hand + $1 >= 0 AND reserved + $2 >= 0 AND reserved + $2 <= on_hand + $1 \
         AND ($7 = 0 OR on_hand + $1 - reserved - $2 - safety >= 0) \
         RETURNING on_hand, reserved, safety, (SELECT s.low_stock_threshold FROM inv_skus s \
         WHERE s.tenant_id = inv_stock.tenant_id AND s.sku = inv_stock.sku)",
    )
    .bind(c.on_hand)
    .bind(c.reserved)
    .bind(now)
    .bind(c.tenant)
    .bind(c.sku)
    .bind(c.warehouse)
    .bind(needs_available)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| {
        InventoryError::WouldGoNegative(format!(
            "{} of {} at {} would leave stock negative or below what is reserved",
            c.kind.as_str(),
            c.sku,
            c.warehouse
        ))
    })?;
    let level = StockLevel::new(
        c.sku.to_owned(),
        c.warehouse.to_owned(),
        row.get(0),
        row.get(1),
        row.get(2),
    );
    let threshold: Option<i64> = row.get(3);
    let movement = Movement {
        id: format!("mov_{}", uuid::Uuid::now_v7().simple()),
        sku: c.sku.to_owned(),
        warehouse: c.warehouse.to_owned(),
        kind: c.kind,
        on_hand_delta: c.on_hand,
        reserved_delta: c.reserved,
        reservation_id: c.reservation_id.map(str::to_owned),
        reason: c.reason.map(str::to_owned),
        request_id: c.request_id.map(str::to_owned),
        created_at: rfc3339_millis(now),
    };
    sqlx::query(
        "INSERT INTO inv_movements (tenant_id, id, sku, warehouse, kind, on_hand_delta, \
         reserved_delta, reservation_id, reason, request_id, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(c.tenant)
    .bind(&movement.id)
    .bind(c.sku)
    .bind(c.warehouse)
    .bind(c.kind.as_str())
    .bind(c.on_hand)
    .bind(c.reserved)
    .bind(c.reservation_id)
    .bind(c.reason)
    .bind(c.request_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    publish_level(conn, c.tenant, &level, Some(&movement)).await?;
    let before = level.available - (c.on_hand - c.reserved);
    if let Some(t) = threshold
        && level.available <= t
        && before > t
    {
        events::append(
            conn,
            NewEvent::new(
                c.tenant,
                LOW_STOCK,
                format!("sku:{}", c.sku),
                json!({ "stock": level, "lowStockThreshold": t }),
            ),
        )
        .await?;
    }
    Ok((movement, level))
}

async fn publish_level(
    conn: &mut AnyConnection,
    tenant: &str,
    level: &StockLevel,
    movement: Option<&Movement>,
) -> Result<(), InventoryError> {
    events::append(
        conn,
        NewEvent::new(
            tenant,
            STOCK_CHANGED,
            format!("sku:{}", level.sku),
            json!({ "stock": level, "movement": movement }),
        ),
    )
    .await?;
    Ok(())
}

/// Makes sure the stock row exists (all zero) so it can be locked and moved.
pub(super) async fn ensure_row(
    conn: &mut AnyConnection,
    tenant: &str,
    sku: &str,
    warehouse: &str,
) -> Result<(), InventoryError> {
    sqlx::query(
        "INSERT INTO inv_stock (tenant_id, sku, warehouse, on_hand, reserved, safety, \
         updated_at_ms) VALUES ($1, $2, $3, 0, 0, 0, $4) \
         ON CONFLICT (tenant_id, sku, warehouse) DO NOTHING",
    )
    .bind(tenant)
    .bind(sku)
    .bind(warehouse)
    .bind(now_millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks a stock row (PostgreSQL) and reads (on hand, reserved, safety).
pub(super) async fn lock_row(
    conn: &mut AnyConnection,
    dialect: Dialect,
    tenant: &str,
    sku: &str,
    warehouse: &str,
) -> Result<Option<(i64, i64, i64)>, InventoryError> {
    let sql = match dialect {
        Dialect::Postgres => {
            "SELECT on_hand, reserved, safety FROM inv_stock WHERE tenant_id = $1 AND sku = $2 \
             AND warehouse = $3 FOR UPDATE"
        }
        Dialect::Sqlite => {
            "SELECT on_hand, reserved, safety FROM inv_stock WHERE tenant_id = $1 AND sku = $2 \
             AND warehouse = $3"
        }
    };
    Ok(sqlx::query(sql)
        .bind(tenant)
        .bind(sku)
        .bind(warehouse)
        .fetch_optional(conn)
        .await?
        .map(|r| (r.get(0), r.get(1), r.get(2))))
}

fn movement_from(r: &sqlx::any::AnyRow) -> Movement {
    let kind: String = r.get(3);
    Movement {
        id: r.get(0),
        sku: r.get(1),
        warehouse: r.get(2),
        kind: MovementKind::parse(&kind).unwrap_or(MovementKind::Adjust),
        on_hand_delta: r.get(4),
        reserved_delta: r.get(5),
        reservation_id: r.get(6),
        reason: r.get(7),
        request_id: r.get(8),
        created_at: rfc3339_millis(r.get(9)),
    }
}

const MOVEMENT_COLUMNS: &str = "id, sku, warehouse, kind, on_hand_delta, reserved_delta, \
     reservation_id, reason, request_id, created_at_ms";

impl InventoryService {
    /// Receives, restocks or adjusts (to a counted quantity) the stock of a SKU in a warehouse.
    /// A request id makes it idempotent: the same id again returns the first movement.
    pub async fn record(
        &self,
        tenant: &str,
        req: MovementRequest,
    ) -> Result<(Movement, StockLevel, bool), InventoryError> {
        check_code("sku", &req.sku)?;
        check_warehouse_code("warehouse", &req.warehouse)?;
        if let Some(id) = &req.request_id {
            check_code("requestId", id)?;
        }
        match req.kind {
            MovementKind::Receive | MovementKind::Restock if req.quantity <= 0 => {
                return Err(invalid("quantity", "must be a whole number above 0"));
            }
            MovementKind::Adjust if req.quantity < 0 => {
                return Err(invalid("quantity", "a counted quantity must be 0 or more"));
            }
            MovementKind::Receive | MovementKind::Restock | MovementKind::Adjust => {}
            _ => {
                return Err(invalid("type", "must be RECEIVE, ADJUST or RESTOCK"));
            }
        }
        if req.kind == MovementKind::Adjust && req.reason.as_deref().is_none_or(str::is_empty) {
            return Err(invalid("reason", "an adjustment needs a reason"));
        }
        self.known_skus(tenant, &[("sku".into(), req.sku.clone())])
            .await?;
        self.known_warehouse(tenant, "warehouse", &req.warehouse)
            .await?;
        let (tenant, dialect) = (tenant.to_owned(), self.db.dialect);
        self.db
            .transact(move |conn| {
                Box::pin(async move {
                    if let Some(id) = &req.request_id
                        && let Some(first) = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "SELECT {MOVEMENT_COLUMNS} FROM inv_movements \
                             WHERE tenant_id = $1 AND request_id = $2"
                        )))
                        .bind(&tenant)
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await?
                    {
                        let first = movement_from(&first);
                        if first.kind != req.kind
                            || first.sku != req.sku
                            || first.warehouse != req.warehouse
                        {
                            return Err(InventoryError::IdConflict(format!(
                                "requestId `{id}` was used for another movement"
                            )));
                        }
                        let (on_hand, reserved, safety) =
                            lock_row(conn, dialect, &tenant, &req.sku, &req.warehouse)
                                .await?
                                .unwrap_or_default();
                        let level = StockLevel::new(
                            req.sku.clone(),
                            req.warehouse.clone(),
                            on_hand,
                            reserved,
                            safety,
                        );
                        return Ok((first, level, false));
                    }
                    ensure_row(conn, &tenant, &req.sku, &req.warehouse).await?;
                    let delta = match req.kind {
                        MovementKind::Adjust => {
                            let (on_hand, _, _) =
                                lock_row(conn, dialect, &tenant, &req.sku, &req.warehouse)
                                    .await?
                                    .unwrap_or_default();
                            req.quantity - on_hand
                        }
                        _ => req.quantity,
                    };
                    let (movement, level) = apply(
                        conn,
                        Change {
                            tenant: &tenant,
                            sku: &req.sku,
                            warehouse: &req.warehouse,
                            kind: req.kind,
                            on_hand: delta,
                            reserved: 0,
                            reservation_id: None,
                            reason: req.reason.as_deref(),
                            request_id: req.request_id.as_deref(),
                        },
                    )
                    .await?;
                    Ok((movement, level, true))
                })
            })
            .await
    }

    /// Sets the safety stock of a SKU in a warehouse (held back from what can be allocated).
    pub async fn set_safety_stock(
        &self,
        tenant: &str,
        sku: &str,
        warehouse: &str,
        quantity: i64,
    ) -> Result<StockLevel, InventoryError> {
        if quantity < 0 {
            return Err(invalid("safetyStock", "must be 0 or more"));
        }
        self.known_skus(tenant, &[("sku".into(), sku.to_owned())])
            .await?;
        self.known_warehouse(tenant, "warehouse", warehouse).await?;
        let (tenant, sku, warehouse) = (tenant.to_owned(), sku.to_owned(), warehouse.to_owned());
        self.db
            .transact(move |conn| {
                Box::pin(async move {
                    ensure_row(conn, &tenant, &sku, &warehouse).await?;
                    let row = sqlx::query(
                        "UPDATE inv_stock SET safety = $1, updated_at_ms = $2 \
                         WHERE tenant_id = $3 AND sku = $4 AND warehouse = $5 \
                         RETURNING on_hand, reserved, safety",
                    )
                    .bind(quantity)
                    .bind(now_millis())
                    .bind(&tenant)
                    .bind(&sku)
                    .bind(&warehouse)
                    .fetch_one(&mut *conn)
                    .await?;
                    let level = StockLevel::new(sku, warehouse, row.get(0), row.get(1), row.get(2));
                    publish_level(conn, &tenant, &level, None).await?;
                    Ok(level)
                })
            })
            .await
    }

    /// A SKU's stock in every warehouse that has a row for it.
    pub async fn stock(&self, tenant: &str, sku: &str) -> Result<Vec<StockLevel>, InventoryError> {
        self.known_skus(tenant, &[("sku".into(), sku.to_owned())])
            .await?;
        let rows = sqlx::query(
            "SELECT warehouse, on_hand, reserved, safety FROM inv_stock \
             WHERE tenant_id = $1 AND sku = $2 ORDER BY warehouse",
        )
        .bind(tenant)
        .bind(sku)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| StockLevel::new(sku.to_owned(), r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    /// The latest movements of a SKU (in one warehouse, if named), newest first.
    pub async fn movements(
        &self,
        tenant: &str,
        sku: &str,
        warehouse: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Movement>, InventoryError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MOVEMENT_COLUMNS} FROM inv_movements WHERE tenant_id = $1 AND sku = $2 \
             AND ($3 = '' OR warehouse = $3) ORDER BY created_at_ms DESC, id DESC LIMIT $4"
        )))
        .bind(tenant)
        .bind(sku)
        .bind(warehouse.unwrap_or_default())
        .bind(i64::from(limit.clamp(1, 500)))
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.iter().map(movement_from).collect())
    }
}
