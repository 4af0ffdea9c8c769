//! The review queue of payments that matched no order: an operator names the order, the amount
//! moves from suspense to sales, and the order follows as if the payment had named it.

use super::FinanceService;
use super::error::{FinanceError, TransferError};
use super::payments::{COLUMNS, Payment, event_types, from_row};
use super::post::post_on;
use super::{AccountKind, TransferKind, TransferRequest, accounts};
use crate::events::{self, NewEvent};
use serde_json::json;
use sqlx::Row;

impl FinanceService {
    /// Matches an unmatched payment to `order` (its id, channel id or number).
    pub async fn match_payment(
        &self,
        tenant: &str,
        provider: &str,
        event_id: &str,
        order: &str,
    ) -> Result<Payment, FinanceError> {
        let (dialect, t, p, e, o) = (
            self.db.dialect,
            tenant.to_owned(),
            provider.to_owned(),
            event_id.to_owned(),
            order.to_owned(),
        );
        self.db
            .transact(move |conn| {
                Box::pin(async move {
                    let select = format!(
                        "SELECT {COLUMNS} FROM fin_payments WHERE tenant_id = $1 AND provider = $2 \
                         AND event_id = $3"
                    );
                    let row = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
                        .bind(&t)
                        .bind(&p)
                        .bind(&e)
                        .fetch_optional(&mut *conn)
                        .await?
                        .ok_or_else(|| FinanceError::NotFound(format!("no payment `{e}`")))?;
                    let payment = from_row(&row);
                    let received = matches!(
                        payment.event_type.as_str(),
                        "payment_intent.succeeded"
                            | "charge.succeeded"
                            | "PAYMENT.CAPTURE.COMPLETED"
                            | "PAYMENT.SALE.COMPLETED"
                    );
                    if payment.status != "unmatched" || !received {
                        return Err(FinanceError::Transfer(TransferError::conflict(
                            "PAYMENT_NOT_UNMATCHED",
                            format!("payment `{e}` is {}", payment.status),
                        )));
                    }
                    let found = sqlx::query(
                        "SELECT order_id FROM fin_orders WHERE tenant_id = $1 \
                         AND (order_id = $2 OR external_id = $2 OR order_number = $2) LIMIT 2",
                    )
                    .bind(&t)
                    .bind(&o)
                    .fetch_all(&mut *conn)
                    .await?;
                    let [only] = found.as_slice() else {
                        return Err(FinanceError::NotFound(format!("no single order is `{o}`")));
                    };
                    let order_id: String = only.get(0);
                    let cur = payment.currency.clone().unwrap_or_default();
                    let (suspense, sales) = (
                        format!("suspense.unmatched_payments:{cur}"),
                        format!("revenue.sales:{cur}"),
                    );
                    accounts::ensure_plain(conn, &t, &sales, &cur, AccountKind::Revenue, "Sales")
                        .await?;
                    let request = TransferRequest {
                        id: format!("{p}:{e}:matched"),
                        debit_account: Some(suspense),
                        credit_account: Some(sales),
                        amount: payment.amount,
                        currency: Some(cur.clone()),
                        code: "payment_matched".into(),
                        kind: Some(TransferKind::Single),
                        reference: Some(order_id.clone()),
                        ..TransferRequest::default()
                    };
                    if payment.amount > 0 {
                        for outcome in post_on(conn, dialect, &t, vec![request]).await? {
                            if let Some(err) = outcome.error() {
                                return Err(FinanceError::Transfer(err.clone()));
                            }
                        }
                    }
                    sqlx::query(
                        "UPDATE fin_payments SET status = 'matched', order_id = $1 \
                         WHERE tenant_id = $2 AND provider = $3 AND event_id = $4",
                    )
                    .bind(&order_id)
                    .bind(&t)
                    .bind(&p)
                    .bind(&e)
                    .execute(&mut *conn)
                    .await?;
                    events::append(
                        conn,
                        NewEvent::new(
                            &t,
                            event_types::PAYMENT_RECEIVED,
                            format!("payment:{p}:{e}"),
                            json!({"payment": {"provider": p, "eventId": e, "orderId": order_id,
                                   "orderRef": payment.order_ref, "amount": payment.amount,
                                   "currency": cur, "paymentStatus": "paid"}}),
                        ),
                    )
                    .await?;
                    let row = sqlx::query(sqlx::AssertSqlSafe(select))
                        .bind(&t)
                        .bind(&p)
                        .bind(&e)
                        .fetch_one(&mut *conn)
                        .await?;
                    Ok(from_row(&row))
                })
            })
            .await
    }
}
