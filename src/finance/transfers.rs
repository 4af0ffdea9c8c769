//! Stored transfers: reading them back, writing a batch, and the expiry of pending ones.

use super::error::FinanceError;
use super::{FinanceService, Transfer, TransferKind};
use crate::store::{StoreError, now_millis, rfc3339_millis};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

const COLUMNS: &str = "id, debit_account, credit_account, amount, currency, code, kind, \
     pending_id, state, expires_at_ms, linked, reference, created_at_ms, request_hash, n";

/// A stored transfer with what posting needs besides.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub transfer: Transfer,
    pub hash: String,
    pub expires_at_ms: Option<i64>,
}

fn from_row(row: &AnyRow) -> Result<Stored, FinanceError> {
    let kind: String = row.get(6);
    let kind = TransferKind::parse(&kind)
        .ok_or_else(|| StoreError::decode(format!("transfer kind `{kind}`")))?;
    let expires_at_ms: Option<i64> = row.get(9);
    Ok(Stored {
        transfer: Transfer {
            id: row.get(0),
            debit_account: row.get(1),
            credit_account: row.get(2),
            amount: row.get(3),
            currency: row.get(4),
            code: row.get(5),
            kind,
            pending_id: row.get(7),
            state: row.get(8),
            expires_at: expires_at_ms.map(rfc3339_millis),
            linked: row.get::<i64, _>(10) != 0,
            reference: row.get(11),
            created_at: rfc3339_millis(row.get(12)),
        },
        hash: row.get(13),
        expires_at_ms,
    })
}

/// The tenant's transfers with these ids.
pub(super) async fn load(
    conn: &mut AnyConnection,
    tenant: &str,
    ids: &[&str],
) -> Result<HashMap<String, Stored>, FinanceError> {
    let mut found = HashMap::new();
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(500) {
        let list = crate::store::sql::list(2, chunk.len());
        let sql =
            format!("SELECT {COLUMNS} FROM fin_transfers WHERE tenant_id = $1 AND id IN ({list})");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let s = from_row(&row)?;
            found.insert(s.transfer.id.clone(), s);
        }
    }
    Ok(found)
}

/// Inserts new transfers (with their request digests and expiry), many rows per statement; how
/// many were inserted (an id that exists already is not).
pub(super) async fn insert(
    conn: &mut AnyConnection,
    tenant: &str,
    new: &[(&Transfer, &str, Option<i64>)],
    now: i64,
) -> Result<u64, FinanceError> {
    let mut inserted = 0;
    const FIELDS: usize = 15;
    for chunk in new.chunks(200) {
        let rows = crate::store::sql::rows(chunk.len(), FIELDS);
        let sql = format!(
            "INSERT INTO fin_transfers (tenant_id, id, debit_account, credit_account, amount, \
             currency, code, kind, pending_id, state, expires_at_ms, linked, reference, \
             request_hash, created_at_ms) VALUES {rows} ON CONFLICT (tenant_id, id) DO NOTHING"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (t, hash, expires) in chunk {
            q = q
                .bind(tenant)
                .bind(&t.id)
                .bind(&t.debit_account)
                .bind(&t.credit_account)
                .bind(t.amount)
                .bind(&t.currency)
                .bind(&t.code)
                .bind(t.kind.as_str())
                .bind(&t.pending_id)
                .bind(&t.state)
                .bind(*expires)
                .bind(i64::from(t.linked))
                .bind(&t.reference)
                .bind(*hash)
                .bind(now);
        }
        inserted += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(inserted)
}

pub(super) async fn set_state(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    state: &str,
) -> Result<(), FinanceError> {
    sqlx::query("UPDATE fin_transfers SET state = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(state)
        .bind(tenant)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Filters of a transfer listing.
#[derive(Debug, Default, Clone)]
pub struct TransferQuery {
    /// Transfers debiting or crediting this account.
    pub account: Option<String>,
    /// Created at or after / before these epoch milliseconds.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// The page after this cursor (from a previous page's `next`).
    pub after: Option<i64>,
    pub limit: i64,
}

impl FinanceService {
    pub async fn transfer(&self, tenant: &str, id: &str) -> Result<Transfer, FinanceError> {
        let mut conn = self.db.pool.acquire().await.map_err(StoreError::from)?;
        load(&mut conn, tenant, &[id])
            .await?
            .remove(id)
            .map(|s| s.transfer)
            .ok_or_else(|| FinanceError::NotFound(format!("no transfer `{id}`")))
    }

    /// Transfers in the order they were written; the cursor of the next page when there may be
    /// one.
    pub async fn transfers(
        &self,
        tenant: &str,
        q: &TransferQuery,
    ) -> Result<(Vec<Transfer>, Option<i64>), FinanceError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM fin_transfers WHERE tenant_id = $1 \
             AND ($2 = '' OR debit_account = $2 OR credit_account = $2) \
             AND created_at_ms >= $3 AND created_at_ms < $4 AND n > $5 ORDER BY n LIMIT $6"
        )))
        .bind(tenant)
        .bind(q.account.clone().unwrap_or_default())
        .bind(q.from_ms.unwrap_or(i64::MIN))
        .bind(q.to_ms.unwrap_or(i64::MAX))
        .bind(q.after.unwrap_or(0))
        .bind(q.limit)
        .fetch_all(&self.db.pool)
        .await
        .map_err(StoreError::from)?;
        let next = (rows.len() as i64 == q.limit)
            .then(|| rows.last().map(|r| r.get::<i64, _>(14)))
            .flatten();
        let transfers = rows
            .iter()
            .map(|r| from_row(r).map(|s| s.transfer))
            .collect::<Result<_, _>>()?;
        Ok((transfers, next))
    }

    /// Voids pending transfers whose timeout has passed (their amounts stop counting); how
    /// many. Each in its own transaction, under its accounts' locks.
    pub async fn expire_pending(&self, limit: i64) -> Result<usize, FinanceError> {
        let due = sqlx::query(
            "SELECT tenant_id, id FROM fin_transfers WHERE state = 'pending' \
             AND expires_at_ms IS NOT NULL AND expires_at_ms <= $1 ORDER BY expires_at_ms LIMIT $2",
        )
        .bind(now_millis())
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await
        .map_err(StoreError::from)?;
        let mut expired = 0;
        for row in due {
            let (tenant, id): (String, String) = (row.get(0), row.get(1));
            let dialect = self.db.dialect;
            let done = self
                .db
                .transact(move |conn| {
                    Box::pin(async move { expire_one(conn, dialect, &tenant, &id).await })
                })
                .await?;
            expired += usize::from(done);
        }
        Ok(expired)
    }
}

async fn expire_one(
    conn: &mut AnyConnection,
    dialect: crate::store::Dialect,
    tenant: &str,
    id: &str,
) -> Result<bool, FinanceError> {
    let Some(p) = load(conn, tenant, &[id]).await?.remove(id) else {
        return Ok(false);
    };
    let t = &p.transfer;
    let ids = [t.debit_account.clone(), t.credit_account.clone()];
    let mut accounts = super::accounts::lock_accounts(conn, dialect, tenant, &ids).await?;
    // Read again under the locks: a post or void may have come first.
    let Some(p) = load(conn, tenant, &[id]).await?.remove(id) else {
        return Ok(false);
    };
    if p.transfer.state != "pending" {
        return Ok(false);
    }
    for (account, debit) in [(&ids[0], true), (&ids[1], false)] {
        if let Some(c) = accounts.get_mut(account) {
            if debit {
                c.dp -= p.transfer.amount;
            } else {
                c.cp -= p.transfer.amount;
            }
        }
    }
    let changed: Vec<(&String, &super::accounts::Counters)> = accounts.iter().collect();
    super::accounts::write_counters(conn, tenant, &changed).await?;
    set_state(conn, tenant, id, "expired").await?;
    Ok(true)
}
