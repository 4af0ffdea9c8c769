//! The invariants, checked against the whole history: every stock row's on-hand equals the sum
//! of its movements, and its reserved quantity equals the sum of its active reservations (and
//! of its movements' reserved deltas). Tests run it after every concurrent run; operators run
//! `shipgate inventory verify`.

use super::{InventoryError, InventoryService};
use sqlx::Row;

impl InventoryService {
    /// Every broken invariant, described; empty when all hold.
    pub async fn verify(&self) -> Result<Vec<String>, InventoryError> {
        let rows = sqlx::query(
            "SELECT s.tenant_id, s.sku, s.warehouse, s.on_hand, s.reserved, \
             CAST(COALESCE((SELECT SUM(m.on_hand_delta) FROM inv_movements m \
               WHERE m.tenant_id = s.tenant_id AND m.sku = s.sku AND m.warehouse = s.warehouse), 0) AS BIGINT), \
             CAST(COALESCE((SELECT SUM(m.reserved_delta) FROM inv_movements m \
               WHERE m.tenant_id = s.tenant_id AND m.sku = s.sku AND m.warehouse = s.warehouse), 0) AS BIGINT), \
             CAST(COALESCE((SELECT SUM(r.quantity) FROM inv_reservations r \
               WHERE r.tenant_id = s.tenant_id AND r.sku = s.sku AND r.warehouse = s.warehouse \
               AND r.state = 'active'), 0) AS BIGINT) \
             FROM inv_stock s ORDER BY s.tenant_id, s.sku, s.warehouse",
        )
        .fetch_all(&self.db.pool)
        .await?;
        let mut broken = Vec::new();
        for r in rows {
            let (tenant, sku, warehouse): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            let (on_hand, reserved): (i64, i64) = (r.get(3), r.get(4));
            let (moved, moved_reserved, active): (i64, i64, i64) = (r.get(5), r.get(6), r.get(7));
            let at = format!("{tenant}/{sku}@{warehouse}");
            if on_hand != moved {
                broken.push(format!(
                    "{at}: on hand {on_hand} but movements sum to {moved}"
                ));
            }
            if reserved != active {
                broken.push(format!(
                    "{at}: reserved {reserved} but active reservations sum to {active}"
                ));
            }
            if reserved != moved_reserved {
                broken.push(format!(
                    "{at}: reserved {reserved} but reserve movements sum to {moved_reserved}"
                ));
            }
            if on_hand < 0 || reserved < 0 || reserved > on_hand {
                broken.push(format!("{at}: on hand {on_hand}, reserved {reserved}"));
            }
        }
        Ok(broken)
    }
}
