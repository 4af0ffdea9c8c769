//! Closing allocations: commit (the waybill is created), release (cancelled), expiry.

use super::close::close_all;
use super::{Allocation, Close, Closing, InventoryError, InventoryService};
use crate::store::now_millis;
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
        let item = Closing {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            warehouse,
            note,
        };
        let mut answers = self.close_many(how, vec![item]).await?;
        answers
            .pop()
            .unwrap_or_else(|| Err(InventoryError::NotFound(format!("no allocation `{id}`"))))
    }

    /// Commits many allocations in one transaction (see [`Self::commit`]), each answered on its
    /// own; an error only when the database fails.
    pub async fn commit_many(
        &self,
        items: Vec<Closing>,
    ) -> Result<Vec<Result<Allocation, InventoryError>>, InventoryError> {
        self.close_many(Close::Commit, items).await
    }

    async fn close_many(
        &self,
        how: Close,
        items: Vec<Closing>,
    ) -> Result<Vec<Result<Allocation, InventoryError>>, InventoryError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.db
            .transact(move |conn| Box::pin(async move { close_all(conn, how, &items).await }))
            .await
    }
}
