//! Opening accounts and reading their balances (from the counters: no history is summed).

use super::error::FinanceError;
use super::{Account, AccountKind, FinanceService, NewAccount, money};
use crate::fields::FieldError;
use crate::store::Dialect;
use crate::store::{now_millis, rfc3339_millis};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

pub(super) const COLUMNS: &str = "id, currency, kind, name, debits_must_not_exceed_credits, \
     credits_must_not_exceed_debits, debits_pending, debits_posted, credits_pending, \
     credits_posted, created_at_ms";

pub(super) fn from_row(row: &AnyRow) -> Result<Account, FinanceError> {
    let kind: String = row.get(2);
    let kind = AccountKind::parse(&kind).ok_or_else(|| {
        FinanceError::Store(crate::store::StoreError::decode(format!(
            "account kind `{kind}`"
        )))
    })?;
    let (dp, dpo, cp, cpo): (i64, i64, i64, i64) = (row.get(6), row.get(7), row.get(8), row.get(9));
    Ok(Account {
        id: row.get(0),
        currency: row.get(1),
        kind,
        name: row.get(3),
        debits_must_not_exceed_credits: row.get::<i64, _>(4) != 0,
        credits_must_not_exceed_debits: row.get::<i64, _>(5) != 0,
        debits_pending: dp,
        debits_posted: dpo,
        credits_pending: cp,
        credits_posted: cpo,
        balance: if kind.debit_normal() {
            dpo - cpo
        } else {
            cpo - dpo
        },
        created_at: rfc3339_millis(row.get(10)),
    })
}

/// An account id: 1–128 of letters, digits and `.`, `_`, `-`, `:`.
pub(super) fn check_id(field: &str, id: &str) -> Result<(), FieldError> {
    if super::is_id(id, 128) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            "must be 1 to 128 letters, digits, `.`, `_`, `-` or `:`",
        ))
    }
}

impl NewAccount {
    /// The account with its currency code in upper case; each problem named.
    fn checked(mut self) -> Result<Self, FinanceError> {
        let mut problems = Vec::new();
        if let Err(e) = check_id("id", &self.id) {
            problems.push(e);
        }
        match money::currency(&self.currency) {
            Some(c) => self.currency = c.code().to_owned(),
            None => problems.push(FieldError::new(
                "currency",
                "must be an ISO 4217 currency code",
            )),
        }
        if self.debits_must_not_exceed_credits && self.credits_must_not_exceed_debits {
            problems.push(FieldError::new(
                "creditsMustNotExceedDebits",
                "cannot be set together with debitsMustNotExceedCredits",
            ));
        }
        if self.name.as_ref().is_some_and(|n| n.len() > 200) {
            problems.push(FieldError::new("name", "must be at most 200 characters"));
        }
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(FinanceError::Validation(problems))
        }
    }
}

/// Opens the account unless it exists (then nothing changes); on the caller's transaction.
pub(super) async fn ensure(
    conn: &mut AnyConnection,
    tenant: &str,
    a: &NewAccount,
) -> Result<(), FinanceError> {
    insert(tenant, a).execute(conn).await?;
    Ok(())
}

/// Opens an account without balance limits unless it exists: the accounts the ledger's feeds
/// open on first use.
pub(super) async fn ensure_plain(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
    currency: &str,
    kind: AccountKind,
    name: &str,
) -> Result<(), FinanceError> {
    let account = NewAccount {
        id: id.to_owned(),
        currency: currency.to_owned(),
        kind,
        name: Some(name.to_owned()),
        debits_must_not_exceed_credits: false,
        credits_must_not_exceed_debits: false,
    };
    ensure(conn, tenant, &account).await
}

fn insert(tenant: &str, a: &NewAccount) -> crate::store::writer::WriteQuery {
    sqlx::query(
        "INSERT INTO fin_accounts (tenant_id, id, currency, kind, name, \
         debits_must_not_exceed_credits, credits_must_not_exceed_debits, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, id) DO NOTHING",
    )
    .bind(tenant.to_owned())
    .bind(a.id.clone())
    .bind(a.currency.clone())
    .bind(a.kind.as_str())
    .bind(a.name.clone())
    .bind(i64::from(a.debits_must_not_exceed_credits))
    .bind(i64::from(a.credits_must_not_exceed_debits))
    .bind(now_millis())
}

impl FinanceService {
    /// Opens an account; the same id with the same fields gives the account back (`false`),
    /// with other fields `AccountConflict`.
    pub async fn open_account(
        &self,
        tenant: &str,
        account: NewAccount,
    ) -> Result<(Account, bool), FinanceError> {
        let account = account.checked()?;
        let created = self
            .db
            .write(insert(tenant, &account))
            .await?
            .rows_affected()
            == 1;
        let stored = self.account(tenant, &account.id).await?;
        let same = stored.currency == account.currency
            && stored.kind == account.kind
            && stored.name == account.name
            && stored.debits_must_not_exceed_credits == account.debits_must_not_exceed_credits
            && stored.credits_must_not_exceed_debits == account.credits_must_not_exceed_debits;
        if !created && !same {
            return Err(FinanceError::AccountConflict(format!(
                "account `{}` exists with other fields",
                account.id
            )));
        }
        Ok((stored, created))
    }

    pub async fn account(&self, tenant: &str, id: &str) -> Result<Account, FinanceError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM fin_accounts WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or_else(|| FinanceError::NotFound(format!("no account `{id}`")))?;
        from_row(&row)
    }

    /// The tenant's accounts in id order after `after`, at most `limit`; of one currency if
    /// asked.
    pub async fn accounts(
        &self,
        tenant: &str,
        currency: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Account>, FinanceError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM fin_accounts WHERE tenant_id = $1 \
             AND ($2 IS NULL OR currency = $2) AND id > $3 ORDER BY id LIMIT $4"
        )))
        .bind(tenant)
        .bind(currency.map(str::to_ascii_uppercase))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }
}

/// The counters of one account, as this batch moves them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Counters {
    pub currency: String,
    pub dmnec: bool,
    pub cmned: bool,
    pub dp: i64,
    pub dpo: i64,
    pub cp: i64,
    pub cpo: i64,
}

/// The accounts' counters, locked until the transaction ends (PostgreSQL; on SQLite the single
/// writer runs one unit of work at a time). Locked in id order, so batches never deadlock.
pub(super) async fn lock_accounts(
    conn: &mut AnyConnection,
    dialect: Dialect,
    tenant: &str,
    ids: &[String],
) -> Result<HashMap<String, Counters>, FinanceError> {
    let mut accounts = HashMap::with_capacity(ids.len());
    let lock = if dialect == Dialect::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    for chunk in ids.chunks(500) {
        let list = crate::store::sql::list(2, chunk.len());
        let sql = format!(
            "SELECT id, currency, debits_must_not_exceed_credits, credits_must_not_exceed_debits, \
             debits_pending, debits_posted, credits_pending, credits_posted FROM fin_accounts \
             WHERE tenant_id = $1 AND id IN ({list}) ORDER BY id{lock}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant);
        for id in chunk {
            q = q.bind(id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            accounts.insert(
                row.get::<String, _>(0),
                Counters {
                    currency: row.get(1),
                    dmnec: row.get::<i64, _>(2) != 0,
                    cmned: row.get::<i64, _>(3) != 0,
                    dp: row.get(4),
                    dpo: row.get(5),
                    cp: row.get(6),
                    cpo: row.get(7),
                },
            );
        }
    }
    Ok(accounts)
}

/// Writes the counters of these accounts, many per statement.
pub(super) async fn write_counters(
    conn: &mut AnyConnection,
    tenant: &str,
    changed: &[(&String, &Counters)],
) -> Result<(), FinanceError> {
    for chunk in changed.chunks(200) {
        let values = crate::store::sql::rows(chunk.len(), 5);
        let t = chunk.len() * 5 + 1;
        let sql = format!(
            "UPDATE fin_accounts SET debits_pending = v.column2, debits_posted = v.column3, \
             credits_pending = v.column4, credits_posted = v.column5 \
             FROM (VALUES {values}) AS v WHERE fin_accounts.tenant_id = ${t} \
             AND fin_accounts.id = v.column1"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, c) in chunk {
            q = q
                .bind(id.as_str())
                .bind(c.dp)
                .bind(c.dpo)
                .bind(c.cp)
                .bind(c.cpo);
        }
        q.bind(tenant).execute(&mut *conn).await?;
    }
    Ok(())
}
