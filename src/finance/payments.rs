//! Payments from the providers: each delivered event is recorded once (by the provider's event
//! id), matched to an order, and posted to the ledger in the same transaction; a payment that
//! matches no order is posted to a suspense account and kept for review, never dropped. The
//! outcome is published (`finance.payment_*`) so the orders service can follow it.

use super::error::FinanceError;
use super::post::post_on;
use super::{AccountKind, FinanceService, TransferKind, TransferRequest, accounts};
use crate::events::{self, NewEvent};
use crate::store::{Dialect, StoreError, now_millis, rfc3339_millis};
use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};

/// Event types finance publishes.
pub mod event_types {
    pub const PAYMENT_RECEIVED: &str = "finance.payment_received";
    pub const PAYMENT_REFUNDED: &str = "finance.payment_refunded";
    pub const PAYMENT_DISPUTED: &str = "finance.payment_disputed";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentKind {
    Captured,
    Refunded,
    Disputed,
    /// Nothing to post (payouts, balance changes, types not handled).
    Ignored,
}

/// A provider's event as the ledger reads it.
#[derive(Debug, Clone)]
pub struct PaymentEvent {
    pub event_id: String,
    pub event_type: String,
    pub kind: PaymentKind,
    pub object_id: Option<String>,
    pub payment_ref: Option<String>,
    pub charge_ref: Option<String>,
    pub order_ref: Option<String>,
    /// Minor units (captured or disputed).
    pub amount: i64,
    pub currency: Option<String>,
    /// Refunds with their own ids (posted once each).
    pub refunds: Vec<(String, i64)>,
    /// The payment's refunded total, when the provider gives it.
    pub refunded_total: Option<i64>,
    pub fully_refunded: bool,
    /// Fees the provider took from a capture, with their transfer code (`fee`, `platform_fee`).
    pub fees: Vec<(String, i64)>,
}

/// A recorded payment event.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub provider: String,
    pub event_id: String,
    pub event_type: String,
    pub object_id: Option<String>,
    pub order_ref: Option<String>,
    pub order_id: Option<String>,
    pub amount: i64,
    pub currency: Option<String>,
    pub status: String,
    pub transfer_ids: Vec<String>,
    pub received_at: String,
}

pub(super) const COLUMNS: &str = "provider, event_id, event_type, object_id, order_ref, order_id, amount, \
     currency, status, transfer_ids, received_at_ms";

pub(super) fn from_row(r: &sqlx::any::AnyRow) -> Payment {
    let transfers: Option<String> = r.get(9);
    Payment {
        provider: r.get(0),
        event_id: r.get(1),
        event_type: r.get(2),
        object_id: r.get(3),
        order_ref: r.get(4),
        order_id: r.get(5),
        amount: r.get(6),
        currency: r.get(7),
        status: r.get(8),
        transfer_ids: transfers
            .map(|t| {
                t.split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        received_at: rfc3339_millis(r.get(10)),
    }
}

/// Records and posts one provider event; `false` with the first record when it came before.
pub(super) async fn record(
    conn: &mut AnyConnection,
    dialect: Dialect,
    tenant: &str,
    provider: &str,
    e: &PaymentEvent,
) -> Result<(Payment, bool), FinanceError> {
    let now = now_millis();
    let inserted = sqlx::query(
        "INSERT INTO fin_payments (tenant_id, provider, event_id, event_type, object_id, \
         payment_ref, charge_ref, order_ref, amount, currency, status, received_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, 'ignored', $10) \
         ON CONFLICT (tenant_id, provider, event_id) DO NOTHING",
    )
    .bind(tenant)
    .bind(provider)
    .bind(&e.event_id)
    .bind(&e.event_type)
    .bind(&e.object_id)
    .bind(&e.payment_ref)
    .bind(&e.charge_ref)
    .bind(&e.order_ref)
    .bind(&e.currency)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        post_event(conn, dialect, tenant, provider, e).await?;
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM fin_payments WHERE tenant_id = $1 AND provider = $2 AND event_id = $3"
    )))
    .bind(tenant)
    .bind(provider)
    .bind(&e.event_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok((from_row(&row), inserted == 1))
}

async fn post_event(
    conn: &mut AnyConnection,
    dialect: Dialect,
    tenant: &str,
    provider: &str,
    e: &PaymentEvent,
) -> Result<(), FinanceError> {
    let Some(currency) = e.currency.as_deref().and_then(super::money::currency) else {
        return Ok(());
    };
    if e.kind == PaymentKind::Ignored {
        return Ok(());
    }
    let cur = currency.code();
    let order_id = match_order(conn, tenant, e).await?;
    let cash = format!("cash.{provider}:{cur}");
    let (amounts, counter, code, counter_kind, counter_name): (
        Vec<(String, i64)>,
        String,
        _,
        _,
        _,
    ) = match e.kind {
        PaymentKind::Captured => {
            let (account, kind, name) = if order_id.is_some() {
                (
                    format!("revenue.sales:{cur}"),
                    AccountKind::Revenue,
                    "Sales",
                )
            } else {
                (
                    format!("suspense.unmatched_payments:{cur}"),
                    AccountKind::Liability,
                    "Payments not matched to an order yet",
                )
            };
            (
                vec![(format!("{provider}:{}", e.event_id), e.amount)],
                account,
                "payment",
                kind,
                name,
            )
        }
        PaymentKind::Refunded => {
            let amounts = if e.refunds.is_empty() {
                let before = refunded_before(conn, tenant, provider, e).await?;
                let delta = e.refunded_total.unwrap_or(0) - before;
                vec![(format!("{provider}:{}", e.event_id), delta)]
            } else {
                e.refunds
                    .iter()
                    .map(|(id, a)| (format!("{provider}:{id}"), *a))
                    .collect()
            };
            (
                amounts,
                format!("sales_returns:{cur}"),
                "refund",
                AccountKind::Expense,
                "Refunds to buyers",
            )
        }
        PaymentKind::Disputed => (
            vec![(format!("{provider}:{}", e.event_id), e.amount)],
            format!("disputes:{cur}"),
            "dispute",
            AccountKind::Expense,
            "Disputed payments withdrawn",
        ),
        PaymentKind::Ignored => return Ok(()),
    };
    for (id, kind, name) in [
        (
            &cash,
            AccountKind::Asset,
            format!("Cash held at {provider}"),
        ),
        (&counter, counter_kind, counter_name.to_owned()),
    ] {
        accounts::ensure_plain(conn, tenant, id, cur, kind, &name).await?;
    }
    let (debit, credit) = if e.kind == PaymentKind::Captured {
        (&cash, &counter)
    } else {
        (&counter, &cash)
    };
    let requests: Vec<TransferRequest> = amounts
        .iter()
        .filter(|(_, a)| *a > 0)
        .map(|(id, a)| TransferRequest {
            id: id.clone(),
            debit_account: Some(debit.clone()),
            credit_account: Some(credit.clone()),
            amount: *a,
            currency: Some(cur.to_owned()),
            code: code.into(),
            kind: Some(TransferKind::Single),
            reference: order_id.clone().or_else(|| e.object_id.clone()),
            ..TransferRequest::default()
        })
        .collect();
    let mut posted = Vec::new();
    let mut total = 0;
    for outcome in post_on(conn, dialect, tenant, requests).await? {
        match outcome {
            super::Outcome::Created(t) => {
                total += t.amount;
                posted.push(t.id);
            }
            super::Outcome::Exists(t) => posted.push(t.id),
            super::Outcome::Failed { id, error } => {
                tracing::warn!(transfer = %id, code = error.code, "payment not posted")
            }
        }
    }
    if e.kind == PaymentKind::Captured && !e.fees.is_empty() {
        let fees = format!("fees.{provider}:{cur}");
        accounts::ensure_plain(
            conn,
            tenant,
            &fees,
            cur,
            AccountKind::Expense,
            &format!("Fees taken by {provider}"),
        )
        .await?;
        let requests = e
            .fees
            .iter()
            .enumerate()
            .filter(|(_, (_, a))| *a > 0)
            .map(|(i, (code, a))| TransferRequest {
                id: format!("{provider}:{}:fee:{i}", e.event_id),
                debit_account: Some(fees.clone()),
                credit_account: Some(cash.clone()),
                amount: *a,
                currency: Some(cur.to_owned()),
                code: code.clone(),
                kind: Some(TransferKind::Single),
                reference: order_id.clone().or_else(|| e.object_id.clone()),
                ..TransferRequest::default()
            })
            .collect();
        for outcome in post_on(conn, dialect, tenant, requests).await? {
            if let super::Outcome::Created(t) | super::Outcome::Exists(t) = outcome {
                posted.push(t.id);
            }
        }
    }
    let fully_refunded = e.fully_refunded
        || match (e.kind, e.refunded_total) {
            (PaymentKind::Refunded, Some(total)) => {
                let captured = captured_amount(conn, tenant, provider, e).await?;
                captured > 0 && total >= captured
            }
            _ => false,
        };
    let status = if order_id.is_some() {
        "matched"
    } else {
        "unmatched"
    };
    sqlx::query(
        "UPDATE fin_payments SET order_id = $1, amount = $2, status = $3, transfer_ids = $4 \
         WHERE tenant_id = $5 AND provider = $6 AND event_id = $7",
    )
    .bind(&order_id)
    .bind(total)
    .bind(status)
    .bind(posted.join(" "))
    .bind(tenant)
    .bind(provider)
    .bind(&e.event_id)
    .execute(&mut *conn)
    .await?;
    let (event_type, payment_status) = match e.kind {
        PaymentKind::Captured => (event_types::PAYMENT_RECEIVED, "paid"),
        PaymentKind::Refunded if fully_refunded => (event_types::PAYMENT_REFUNDED, "refunded"),
        PaymentKind::Refunded => (event_types::PAYMENT_REFUNDED, "partially_refunded"),
        _ => (event_types::PAYMENT_DISPUTED, "disputed"),
    };
    events::append(
        conn,
        NewEvent::new(
            tenant,
            event_type,
            format!(
                "payment:{provider}:{}",
                e.payment_ref.as_deref().unwrap_or(&e.event_id)
            ),
            json!({"payment": {"provider": provider, "eventId": e.event_id,
                   "orderId": order_id, "orderRef": e.order_ref, "amount": total,
                   "currency": cur, "paymentStatus": payment_status}}),
        ),
    )
    .await?;
    Ok(())
}

/// The order a payment belongs to: the one its metadata names (by id, channel id or number,
/// when exactly one order has it), else the order of the payment it refunds or disputes.
async fn match_order(
    conn: &mut AnyConnection,
    tenant: &str,
    e: &PaymentEvent,
) -> Result<Option<String>, FinanceError> {
    if let Some(r) = &e.order_ref {
        let rows = sqlx::query(
            "SELECT order_id FROM fin_orders WHERE tenant_id = $1 \
             AND (order_id = $2 OR external_id = $2 OR order_number = $2) LIMIT 2",
        )
        .bind(tenant)
        .bind(r)
        .fetch_all(&mut *conn)
        .await?;
        if rows.len() == 1 {
            return Ok(Some(rows[0].get(0)));
        }
    }
    if e.kind == PaymentKind::Captured {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT order_id FROM fin_payments WHERE tenant_id = $1 AND order_id IS NOT NULL \
         AND ((payment_ref IS NOT NULL AND payment_ref = $2) \
              OR (charge_ref IS NOT NULL AND charge_ref = $3)) LIMIT 1",
    )
    .bind(tenant)
    .bind(&e.payment_ref)
    .bind(&e.charge_ref)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| r.get(0)))
}

/// What the capture a refund belongs to took in (0 when it is not known here).
async fn captured_amount(
    conn: &mut AnyConnection,
    tenant: &str,
    provider: &str,
    e: &PaymentEvent,
) -> Result<i64, FinanceError> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM fin_payments WHERE tenant_id = $1 \
         AND provider = $2 AND charge_ref = $3 AND event_type IN ('payment_intent.succeeded', \
         'charge.succeeded', 'PAYMENT.CAPTURE.COMPLETED', 'PAYMENT.SALE.COMPLETED')",
    )
    .bind(tenant)
    .bind(provider)
    .bind(&e.charge_ref)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.get(0))
}

/// What earlier refund events of the same charge posted (for providers that give a total).
async fn refunded_before(
    conn: &mut AnyConnection,
    tenant: &str,
    provider: &str,
    e: &PaymentEvent,
) -> Result<i64, FinanceError> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM fin_payments WHERE tenant_id = $1 \
         AND provider = $2 AND charge_ref = $3 AND event_type = $4 AND event_id <> $5",
    )
    .bind(tenant)
    .bind(provider)
    .bind(&e.charge_ref)
    .bind(&e.event_type)
    .bind(&e.event_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.get(0))
}

impl FinanceService {
    /// Recorded payment events, newest first; only those with `status` when asked (`unmatched`
    /// for the review queue).
    pub async fn payments(
        &self,
        tenant: &str,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Payment>, FinanceError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM fin_payments WHERE tenant_id = $1 AND ($2 = '' OR status = $2) \
             ORDER BY received_at_ms DESC, event_id LIMIT $3"
        )))
        .bind(tenant)
        .bind(status.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(rows.iter().map(from_row).collect())
    }
}
