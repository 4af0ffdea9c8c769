//! Receipts of carrier pushes: a delivery id recorded once refuses its repeats (replays) until
//! the receipt is pruned.

use super::writer::WriteQuery;
use super::{Db, StoreError};

impl Db {
    /// Deletes up to `limit` push receipts older than `before` (past the replay window and the
    /// retention, a receipt has nothing left to refuse); how many.
    pub async fn prune_receipts(&self, before: i64, limit: u32) -> Result<u64, StoreError> {
        let done = self
            .write(
                sqlx::query(
                    "DELETE FROM callback_receipts WHERE (carrier, delivery_id) IN \
                     (SELECT carrier, delivery_id FROM callback_receipts WHERE received_at < $1 \
                     ORDER BY received_at LIMIT $2)",
                )
                .bind(before)
                .bind(i64::from(limit)),
            )
            .await?;
        Ok(done.rows_affected())
    }

    pub fn record_receipt(carrier: &str, delivery_id: &str, now_ms: i64) -> WriteQuery {
        sqlx::query(
            "INSERT INTO callback_receipts (carrier, delivery_id, received_at) \
             VALUES ($1, $2, $3) ON CONFLICT (carrier, delivery_id) DO NOTHING",
        )
        .bind(carrier.to_owned())
        .bind(delivery_id.to_owned())
        .bind(now_ms)
    }
}
