//! Reports from the ledger: a period's summary per tenant (shipping charged, carrier cost,
//! payments, refunds, disputes, fees, net) in any currency the rates table reaches, and an
//! account's statement (opening balance, movements, closing balance). Both are sums of posted
//! transfers, so they equal what the accounts' counters say.

use super::error::FinanceError;
use super::rates::Converted;
use super::{FinanceService, money};
use crate::store::{StoreError, rfc3339_millis};
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;

/// The categories of a summary, in order, and how net is made of them (+1 or −1).
pub const CATEGORIES: [(&str, i64); 7] = [
    ("shippingCharged", -1),
    ("carrierCost", 0),
    ("payments", 1),
    ("refunds", -1),
    ("disputes", -1),
    ("fees", -1),
    ("other", 0),
];

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryLine {
    pub category: &'static str,
    /// Per original currency, minor units.
    pub amounts: BTreeMap<String, i64>,
    /// All of it in the report's currency, minor units.
    pub total: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub from: String,
    pub to: String,
    pub currency: String,
    pub lines: Vec<SummaryLine>,
    /// payments − refunds − disputes − fees − shipping charged, in the report's currency.
    pub net: i64,
    /// The rate used for each other currency (at the period's end).
    pub conversions: Vec<Converted>,
}

/// Which category a posted transfer counts in, and with which sign.
fn categorize(code: &str, debit: &str, credit: &str) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    if debit.starts_with("accounts_receivable.shipping:") {
        out.push(("shippingCharged", 1));
    } else if credit.starts_with("accounts_receivable.shipping:") {
        out.push(("shippingCharged", -1));
    }
    if credit.starts_with("accounts_payable.carrier.") {
        out.push(("carrierCost", 1));
    } else if debit.starts_with("accounts_payable.carrier.") {
        out.push(("carrierCost", -1));
    }
    if !out.is_empty() {
        return out;
    }
    vec![match code {
        "payment" => ("payments", 1),
        "refund" => ("refunds", 1),
        "dispute" => ("disputes", 1),
        "fee" | "platform_fee" => ("fees", 1),
        _ => ("other", 1),
    }]
}

/// An account's statement over a period.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    pub account: String,
    pub currency: String,
    pub from: String,
    pub to: String,
    pub opening_balance: i64,
    pub movements: Vec<Movement>,
    pub closing_balance: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Movement {
    pub transfer_id: String,
    pub created_at: String,
    pub code: String,
    pub reference: Option<String>,
    pub debit: i64,
    pub credit: i64,
    /// The balance after this movement, on the account's normal side.
    pub balance: i64,
}

impl FinanceService {
    /// The period `[from_ms, to_ms)` summed per category, in `currency`.
    pub async fn summary(
        &self,
        tenant: &str,
        from_ms: i64,
        to_ms: i64,
        currency: &str,
    ) -> Result<Summary, FinanceError> {
        let rows = sqlx::query(
            "SELECT code, currency, debit_account, credit_account, CAST(SUM(amount) AS BIGINT) \
             FROM fin_transfers WHERE tenant_id = $1 AND kind IN ('single', 'post_pending') \
             AND created_at_ms >= $2 AND created_at_ms < $3 \
             GROUP BY code, currency, debit_account, credit_account",
        )
        .bind(tenant)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.db.pool)
        .await
        .map_err(StoreError::from)?;
        let mut sums: BTreeMap<&'static str, BTreeMap<String, i64>> = BTreeMap::new();
        for r in &rows {
            let (code, cur, debit, credit): (String, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            let amount: i64 = r.get(4);
            for (category, sign) in categorize(&code, &debit, &credit) {
                *sums
                    .entry(category)
                    .or_default()
                    .entry(cur.clone())
                    .or_default() += sign * amount;
            }
        }
        let on = chrono::DateTime::from_timestamp_millis(to_ms.saturating_sub(1).max(0))
            .map(|d| d.date_naive().to_string());
        let target = money::currency(currency)
            .map(|c| c.code().to_owned())
            .ok_or_else(|| {
                FinanceError::Validation(vec![crate::fields::FieldError::new(
                    "currency",
                    "must be an ISO 4217 currency code",
                )])
            })?;
        let mut conversions: Vec<Converted> = Vec::new();
        let mut lines = Vec::new();
        let mut net = 0;
        for (category, weight) in CATEGORIES {
            let amounts = sums.remove(category).unwrap_or_default();
            let mut total = 0i64;
            for (cur, amount) in &amounts {
                let converted = self
                    .convert(tenant, amount.abs(), cur, &target, on.as_deref())
                    .await?;
                total += amount.signum() * converted.amount;
                if cur != &target && !conversions.iter().any(|c| c.path == converted.path) {
                    conversions.push(Converted {
                        amount: 0,
                        ..converted
                    });
                }
            }
            net += weight * total;
            lines.push(SummaryLine {
                category,
                amounts,
                total,
            });
        }
        Ok(Summary {
            from: rfc3339_millis(from_ms),
            to: rfc3339_millis(to_ms),
            currency: target,
            lines,
            net,
            conversions,
        })
    }

    /// An account's movements in `[from_ms, to_ms)` with its balance before and after.
    pub async fn statement(
        &self,
        tenant: &str,
        account: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Statement, FinanceError> {
        let a = self.account(tenant, account).await?;
        let rows = sqlx::query(
            "SELECT id, debit_account, amount, code, reference, created_at_ms FROM fin_transfers \
             WHERE tenant_id = $1 AND (debit_account = $2 OR credit_account = $2) \
             AND kind IN ('single', 'post_pending') AND created_at_ms < $3 ORDER BY n",
        )
        .bind(tenant)
        .bind(account)
        .bind(to_ms)
        .fetch_all(&self.db.pool)
        .await
        .map_err(StoreError::from)?;
        let sign = if a.kind.debit_normal() { 1 } else { -1 };
        let mut balance = 0i64;
        let mut opening = 0i64;
        let mut movements = Vec::new();
        for r in &rows {
            let debit_account: String = r.get(1);
            let amount: i64 = r.get(2);
            let created: i64 = r.get(5);
            let is_debit = debit_account == account;
            balance += if is_debit {
                sign * amount
            } else {
                -sign * amount
            };
            if created < from_ms {
                opening = balance;
                continue;
            }
            movements.push(Movement {
                transfer_id: r.get(0),
                created_at: rfc3339_millis(created),
                code: r.get(3),
                reference: r.get(4),
                debit: if is_debit { amount } else { 0 },
                credit: if is_debit { 0 } else { amount },
                balance,
            });
        }
        Ok(Statement {
            account: a.id,
            currency: a.currency,
            from: rfc3339_millis(from_ms),
            to: rfc3339_millis(to_ms),
            opening_balance: opening,
            movements,
            closing_balance: balance,
        })
    }
}

/// A summary as CSV: category, currency, amount (decimal), in the report's currency.
pub fn summary_csv(s: &Summary) -> String {
    let mut out = format!(
        "category,currency,amount,amount_in_{}\n",
        s.currency.to_ascii_lowercase()
    );
    for line in &s.lines {
        for (cur, amount) in &line.amounts {
            out.push_str(&format!(
                "{},{cur},{},\n",
                line.category,
                money::to_decimal(*amount, cur)
            ));
        }
        out.push_str(&format!(
            "{},{},,{}\n",
            line.category,
            s.currency,
            money::to_decimal(line.total, &s.currency)
        ));
    }
    out.push_str(&format!(
        "net,{},,{}\n",
        s.currency,
        money::to_decimal(s.net, &s.currency)
    ));
    out
}

/// A statement as CSV: one row per movement, then the closing balance.
pub fn statement_csv(s: &Statement) -> String {
    let m = |v: i64| money::to_decimal(v, &s.currency);
    let mut out = String::from("date,transfer_id,code,reference,debit,credit,balance\n");
    out.push_str(&format!(
        "{},,opening_balance,,,,{}\n",
        s.from,
        m(s.opening_balance)
    ));
    for mv in &s.movements {
        out.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            mv.created_at,
            csv_field(&mv.transfer_id),
            csv_field(&mv.code),
            csv_field(mv.reference.as_deref().unwrap_or("")),
            m(mv.debit),
            m(mv.credit),
            m(mv.balance)
        ));
    }
    out.push_str(&format!(
        "{},,closing_balance,,,,{}\n",
        s.to,
        m(s.closing_balance)
    ));
    out
}

/// A CSV field, quoted when it holds a comma, quote or line break; a leading `=`, `+`, `-` or
/// `@` is prefixed with `'` so spreadsheets do not run it as a formula.
pub(super) fn csv_field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

impl FinanceService {
    /// The currency the tenant's reports are in unless asked otherwise (USD until set).
    pub async fn report_currency(&self, tenant: &str) -> Result<String, FinanceError> {
        let row = sqlx::query("SELECT report_currency FROM fin_settings WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(row.map_or_else(|| "USD".to_owned(), |r| r.get(0)))
    }

    pub async fn set_report_currency(
        &self,
        tenant: &str,
        currency: &str,
    ) -> Result<String, FinanceError> {
        let code = money::currency(currency)
            .map(|c| c.code().to_owned())
            .ok_or_else(|| {
                FinanceError::Validation(vec![crate::fields::FieldError::new(
                    "reportCurrency",
                    "must be an ISO 4217 currency code",
                )])
            })?;
        self.db
            .write(
                sqlx::query(
                    "INSERT INTO fin_settings (tenant_id, report_currency, updated_at_ms) \
                     VALUES ($1, $2, $3) ON CONFLICT (tenant_id) DO UPDATE \
                     SET report_currency = excluded.report_currency, \
                     updated_at_ms = excluded.updated_at_ms",
                )
                .bind(tenant.to_owned())
                .bind(code.clone())
                .bind(crate::store::now_millis()),
            )
            .await?;
        Ok(code)
    }
}
