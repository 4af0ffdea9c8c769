//! References whose create attempt ended ambiguously and that no retry settled: the carrier may
//! or may not have made the shipment. Operators list them and resolve each.

use super::{Db, now_millis, rfc3339_millis};
use crate::store::error::StoreError;
use sqlx::Row;

/// One unresolved reference.
#[derive(Debug, Clone)]
pub struct Unresolved {
    pub id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub reference_number: String,
    pub channel: String,
    pub carrier: String,
    pub attempts: i64,
    /// When an attempt first ended ambiguously (or the crashed attempt's lease ended).
    pub since_ms: i64,
}

impl Unresolved {
    pub fn since(&self) -> String {
        rfc3339_millis(self.since_ms)
    }
}

/// How many references are unresolved and since when the oldest is.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnresolvedStats {
    pub count: i64,
    pub oldest_ms: Option<i64>,
}

/// Unknown, or pending with a lease that ran out (the attempt's process died); `$1` is now.
macro_rules! unresolved {
    () => {
        "(w.state = 'unknown' OR (w.state = 'pending' AND w.lease_until < $1))"
    };
}

impl Db {
    /// The unresolved references of one tenant row (or of all, for operators), oldest first,
    /// unresolved for at least `min_age_ms`.
    pub async fn unresolved(
        &self,
        tenant_id: Option<&str>,
        min_age_ms: i64,
        limit: i64,
    ) -> Result<Vec<Unresolved>, StoreError> {
        let now = now_millis();
        let sql = concat!(
            "SELECT w.id, w.tenant_id, COALESCE(a.name, t.name) AS tenant_name, \
             w.reference_number, w.channel, w.carrier, w.attempts, \
             COALESCE(w.unknown_since_ms, w.lease_until) AS since_ms \
             FROM waybills w JOIN tenants t ON t.id = w.tenant_id \
             LEFT JOIN tenants a ON a.id = t.account_id WHERE ",
            unresolved!(),
            " AND ($2 IS NULL OR w.tenant_id = $2) \
             AND COALESCE(w.unknown_since_ms, w.lease_until) <= $3 \
             ORDER BY since_ms, w.id LIMIT $4"
        );
        let rows = sqlx::query(sql)
            .bind(now)
            .bind(tenant_id.map(str::to_owned))
            .bind(now - min_age_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Unresolved {
                    id: r.try_get("id")?,
                    tenant_id: r.try_get("tenant_id")?,
                    tenant_name: r.try_get("tenant_name")?,
                    reference_number: r.try_get("reference_number")?,
                    channel: r.try_get("channel")?,
                    carrier: r.try_get("carrier")?,
                    attempts: r.try_get("attempts")?,
                    since_ms: r.try_get("since_ms")?,
                })
            })
            .collect()
    }

    /// For the alert: how many are unresolved, and the oldest.
    pub async fn unresolved_stats(&self) -> Result<UnresolvedStats, StoreError> {
        let sql = concat!(
            "SELECT COUNT(*) AS n, MIN(COALESCE(w.unknown_since_ms, w.lease_until)) AS oldest \
             FROM waybills w WHERE ",
            unresolved!()
        );
        let row = sqlx::query(sql)
            .bind(now_millis())
            .fetch_one(&self.pool)
            .await?;
        Ok(UnresolvedStats {
            count: row.try_get("n")?,
            oldest_ms: row.try_get("oldest")?,
        })
    }
}
