//! Closing allocations: commit (the waybill is created), release (cancelled), expiry.

use super::allocate::{load, publish};
use super::event_types::{ALLOCATION_COMMITTED, ALLOCATION_RELEASED};
use super::movements::{Change, apply};
use super::{Allocation, AllocationState, InventoryError, InventoryService, MovementKind};
use crate::store::{Dialect, now_millis};
use sqlx::Row;

impl InventoryService {
    /// Releases the allocation's active reservations (an order cancelled, or expired).
    pub async fn release(
        &self,
        tenant: &str,
        id: &str,
        reason: Option<String>,
    ) -> Result<Allocation, InventoryError> {
        self.close(tenant, id, None, Close::Release, reason).await
    }

    /// Commits the allocation's active reservations (in one warehouse, if named): the stock
    /// leaves the warehouse with the waybill.
    pub async fn commit(
        &self,
        tenant: &str,
        id: &str,
        warehouse: Option<String>,
        reference: Option<String>,
    ) -> Result<Allocation, InventoryError> {
        self.close(tenant, id, warehouse, Close::Commit, reference)
            .await
    }

    /// Releases allocations whose expiry has passed; how many.
    pub async fn expire_due(&self, limit: u32) -> Result<usize, InventoryError> {
        let rows = sqlx::query(
            "SELECT tenant_id, id FROM inv_allocations WHERE state = 'active' \
             AND expires_at_ms IS NOT NULL AND expires_at_ms <= $1 ORDER BY expires_at_ms LIMIT $2",
        )
        .bind(now_millis())
        .bind(i64::from(limit))
        .fetch_all(&self.db.pool)
        .await?;
        let mut released = 0;
        for r in rows {
            let (tenant, id): (String, String) = (r.get(0), r.get(1));
            match self.release(&tenant, &id, Some("expired".into())).await {
                Ok(_) => released += 1,
                Err(InventoryError::NotActive(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(released)
    }

    async fn close(
        &self,
        tenant: &str,
        id: &str,
        warehouse: Option<String>,
        how: Close,
        note: Option<String>,
    ) -> Result<Allocation, InventoryError> {
        let (tenant, id, dialect) = (tenant.to_owned(), id.to_owned(), self.db.dialect);
        self.db
            .transact(move |conn| {
                Box::pin(async move {
                    let lock = match dialect {
                        Dialect::Postgres => "SELECT state FROM inv_allocations WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                        Dialect::Sqlite => "SELECT state FROM inv_allocations WHERE tenant_id = $1 AND id = $2",
                    };
                    let state: String = sqlx::query(lock)
                        .bind(&tenant)
                        .bind(&id)
                        .fetch_optional(&mut *conn)
                        .await?
                        .ok_or_else(|| InventoryError::NotFound(format!("no allocation `{id}`")))?
                        .get(0);
                    let active = sqlx::query(
                        "SELECT id, sku, warehouse, quantity FROM inv_reservations \
                         WHERE tenant_id = $1 AND allocation_id = $2 AND state = 'active' \
                         AND ($3 = '' OR warehouse = $3) ORDER BY sku, warehouse",
                    )
                    .bind(&tenant)
                    .bind(&id)
                    .bind(warehouse.as_deref().unwrap_or_default())
                    .fetch_all(&mut *conn)
                    .await?;
                    if active.is_empty() {
                        let current = load(conn, &tenant, &id).await?;
                        let done = match how {
                            Close::Release => AllocationState::Released,
                            Close::Commit => AllocationState::Committed,
                        };
                        if state == done.as_str() || (how == Close::Commit && warehouse.is_some() && state != "released") {
                            return Ok(current);
                        }
                        return Err(InventoryError::NotActive(format!(
                            "allocation `{id}` is {state}"
                        )));
                    }
                    for r in &active {
                        let (rid, sku, wh, qty): (String, String, String, i64) =
                            (r.get(0), r.get(1), r.get(2), r.get(3));
                        sqlx::query("UPDATE inv_reservations SET state = $1 WHERE id = $2 AND state = 'active'")
                            .bind(how.reservation_state())
                            .bind(&rid)
                            .execute(&mut *conn)
                            .await?;
                        apply(conn, Change {
                            tenant: &tenant,
                            sku: &sku,
                            warehouse: &wh,
                            kind: how.kind(),
                            on_hand: if how == Close::Commit { -qty } else { 0 },
                            reserved: -qty,
                            reservation_id: Some(&rid),
                            reason: note.as_deref(),
                            request_id: None,
                        })
                        .await?;
                    }
                    // The allocation is closed when nothing of it is active any more: committed
                    // if any of it left with a waybill, else released.
                    sqlx::query(
                        "UPDATE inv_allocations SET state = CASE \
                         WHEN EXISTS (SELECT 1 FROM inv_reservations r WHERE r.tenant_id = $1 \
                           AND r.allocation_id = $2 AND r.state = 'active') THEN 'active' \
                         WHEN EXISTS (SELECT 1 FROM inv_reservations r WHERE r.tenant_id = $1 \
                           AND r.allocation_id = $2 AND r.state = 'committed') THEN 'committed' \
                         ELSE 'released' END, closed_at_ms = $3, reason = COALESCE($4, reason) \
                         WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(&tenant)
                    .bind(&id)
                    .bind(now_millis())
                    .bind(note.as_deref())
                    .execute(&mut *conn)
                    .await?;
                    let allocation = load(conn, &tenant, &id).await?;
                    let event = match how {
                        Close::Release => ALLOCATION_RELEASED,
                        Close::Commit => ALLOCATION_COMMITTED,
                    };
                    publish(conn, &tenant, event, &allocation).await?;
                    Ok(allocation)
                })
            })
            .await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    Release,
    Commit,
}

impl Close {
    fn kind(self) -> MovementKind {
        match self {
            Self::Release => MovementKind::Release,
            Self::Commit => MovementKind::Commit,
        }
    }

    fn reservation_state(self) -> &'static str {
        match self {
            Self::Release => "released",
            Self::Commit => "committed",
        }
    }
}
