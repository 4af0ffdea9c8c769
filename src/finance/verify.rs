//! The ledger's invariants, checked against its history: every account's counters equal the
//! sums of its transfers, debits equal credits in every currency, and no account with a
//! balance limit is beyond it.

use super::FinanceService;
use super::error::FinanceError;
use crate::store::StoreError;
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;

/// Totals of one currency over a tenant's accounts (a trial balance).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CurrencyTotals {
    pub currency: String,
    pub debits_posted: i64,
    pub credits_posted: i64,
    pub debits_pending: i64,
    pub credits_pending: i64,
}

/// An account whose counters disagree with its transfers, or that is beyond its limit.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Discrepancy {
    pub tenant: String,
    pub account: String,
    pub problem: String,
}

impl FinanceService {
    /// Debits and credits per currency, from the accounts' counters.
    pub async fn trial_balance(&self, tenant: &str) -> Result<Vec<CurrencyTotals>, FinanceError> {
        let rows = sqlx::query(
            "SELECT currency, CAST(SUM(debits_posted) AS BIGINT), CAST(SUM(credits_posted) AS BIGINT), \
             CAST(SUM(debits_pending) AS BIGINT), CAST(SUM(credits_pending) AS BIGINT) FROM fin_accounts WHERE tenant_id = $1 GROUP BY currency \
             ORDER BY currency",
        )
        .bind(tenant)
        .fetch_all(&self.db.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(rows
            .iter()
            .map(|r| CurrencyTotals {
                currency: r.get(0),
                debits_posted: sum(r, 1),
                credits_posted: sum(r, 2),
                debits_pending: sum(r, 3),
                credits_pending: sum(r, 4),
            })
            .collect())
    }

    /// Every account (of every tenant) whose counters differ from the sums of its transfers,
    /// or whose balance is beyond its limit; empty when the ledger holds.
    pub async fn verify(&self) -> Result<Vec<Discrepancy>, FinanceError> {
        let sums = sqlx::query(
            "SELECT tenant_id, account, \
             CAST(SUM(CASE WHEN side = 'd' AND kind IN ('single', 'post_pending') THEN amount ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN side = 'c' AND kind IN ('single', 'post_pending') THEN amount ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN side = 'd' AND kind = 'pending' AND state = 'pending' THEN amount ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN side = 'c' AND kind = 'pending' AND state = 'pending' THEN amount ELSE 0 END) AS BIGINT) \
             FROM (SELECT tenant_id, debit_account AS account, 'd' AS side, kind, state, amount \
                   FROM fin_transfers \
                   UNION ALL SELECT tenant_id, credit_account, 'c', kind, state, amount \
                   FROM fin_transfers) t GROUP BY tenant_id, account",
        )
        .fetch_all(&self.db.pool)
        .await
        .map_err(StoreError::from)?;
        let mut from_history: BTreeMap<(String, String), [i64; 4]> = BTreeMap::new();
        for r in &sums {
            from_history.insert(
                (r.get(0), r.get(1)),
                [sum(r, 2), sum(r, 3), sum(r, 4), sum(r, 5)],
            );
        }
        let accounts = sqlx::query(
            "SELECT tenant_id, id, debits_posted, credits_posted, debits_pending, credits_pending, \
             debits_must_not_exceed_credits, credits_must_not_exceed_debits FROM fin_accounts",
        )
        .fetch_all(&self.db.pool)
        .await
        .map_err(StoreError::from)?;
        let mut problems = Vec::new();
        for r in &accounts {
            let key: (String, String) = (r.get(0), r.get(1));
            let counters: [i64; 4] = [r.get(2), r.get(3), r.get(4), r.get(5)];
            let history = from_history.remove(&key).unwrap_or_default();
            let mut problem = |p: String| {
                problems.push(Discrepancy {
                    tenant: key.0.clone(),
                    account: key.1.clone(),
                    problem: p,
                })
            };
            if counters != history {
                problem(format!(
                    "counters (debits posted, credits posted, debits pending, credits pending) \
                     {counters:?} but transfers sum to {history:?}"
                ));
            }
            let [dpo, cpo, dp, cp] = counters;
            if r.get::<i64, _>(6) != 0 && dpo + dp > cpo {
                problem(format!("debits {} exceed credits {cpo}", dpo + dp));
            }
            if r.get::<i64, _>(7) != 0 && cpo + cp > dpo {
                problem(format!("credits {} exceed debits {dpo}", cpo + cp));
            }
        }
        for ((tenant, account), _) in from_history {
            problems.push(Discrepancy {
                tenant,
                account,
                problem: "transfers name an account that does not exist".into(),
            });
        }
        Ok(problems)
    }
}

/// A summed column (NULL when there was nothing to sum).
fn sum(row: &sqlx::any::AnyRow, i: usize) -> i64 {
    row.get::<Option<i64>, _>(i).unwrap_or(0)
}
