//! Moving money between accounts of two currencies: the amount converted through the rates
//! table (decimal, banker's rounding), posted as two linked transfers through the tenant's
//! exchange accounts (`fx.exchange:{CUR}`, one per currency), and stored with the rate and the
//! rates it went through. The same id again gives the first conversion back.

use super::error::{FinanceError, TransferError};
use super::post::post_on;
use super::rates::{Converted, Rate};
use super::{AccountKind, FinanceService, TransferKind, TransferRequest, accounts};
use crate::fields::FieldError;
use crate::store::{StoreError, now_millis, rfc3339_millis};
use serde::Serialize;
use sqlx::Row;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Conversion {
    pub id: String,
    pub debit_account: String,
    pub credit_account: String,
    pub amount: i64,
    pub currency: String,
    pub converted_amount: i64,
    pub converted_currency: String,
    pub rate: String,
    pub path: Vec<Rate>,
    /// The two linked transfers: `{id}:out` in the source currency, `{id}:in` in the target's.
    pub transfers: [String; 2],
    pub created_at: String,
}

/// A conversion asked for.
#[derive(Debug, Clone)]
pub struct ConversionRequest {
    pub id: String,
    pub debit_account: String,
    pub credit_account: String,
    pub amount: i64,
    /// Rates as of this date (`YYYY-MM-DD`); the latest when `None`.
    pub on: Option<String>,
}

impl FinanceService {
    pub async fn convert_between(
        &self,
        tenant: &str,
        r: ConversionRequest,
    ) -> Result<(Conversion, bool), FinanceError> {
        if let Some(existing) = self.conversion(tenant, &r.id).await? {
            let same = existing.debit_account == r.debit_account
                && existing.credit_account == r.credit_account
                && existing.amount == r.amount;
            if !same {
                return Err(FinanceError::Transfer(TransferError::conflict(
                    super::error::codes::ID_CONFLICT,
                    format!("conversion `{}` exists with other fields", r.id),
                )));
            }
            return Ok((existing, false));
        }
        if r.amount <= 0 {
            return Err(FinanceError::Validation(vec![FieldError::new(
                "amount",
                "must be positive",
            )]));
        }
        let from = self
            .account(tenant, &r.debit_account)
            .await
            .map_err(|_| unknown(&r.debit_account))?;
        let to = self
            .account(tenant, &r.credit_account)
            .await
            .map_err(|_| unknown(&r.credit_account))?;
        if from.currency == to.currency {
            return Err(FinanceError::Transfer(TransferError::invalid(
                super::error::codes::CURRENCY_MISMATCH,
                "both accounts hold the same currency: post a transfer instead",
            )));
        }
        let Converted {
            amount: converted,
            rate,
            path,
            ..
        } = self
            .convert(
                tenant,
                r.amount,
                &from.currency,
                &to.currency,
                r.on.as_deref(),
            )
            .await?;
        if converted <= 0 {
            return Err(FinanceError::Validation(vec![FieldError::new(
                "amount",
                "converts to nothing",
            )]));
        }
        let now = now_millis();
        let conversion = Conversion {
            id: r.id.clone(),
            debit_account: r.debit_account.clone(),
            credit_account: r.credit_account.clone(),
            amount: r.amount,
            currency: from.currency.clone(),
            converted_amount: converted,
            converted_currency: to.currency.clone(),
            rate,
            path,
            transfers: [format!("{}:out", r.id), format!("{}:in", r.id)],
            created_at: rfc3339_millis(now),
        };
        let (dialect, t, c) = (self.db.dialect, tenant.to_owned(), conversion.clone());
        self.db
            .transact(move |conn| {
                Box::pin(async move {
                    for cur in [&c.currency, &c.converted_currency] {
                        accounts::ensure_plain(conn, &t, &format!("fx.exchange:{cur}"), cur, AccountKind::Equity, &format!("Currency exchange position in {cur}")).await?;
                    }
                    let leg = |id: &str, debit: String, credit: String, amount: i64, cur: &str, linked: bool| TransferRequest {
                        id: id.to_owned(),
                        debit_account: Some(debit),
                        credit_account: Some(credit),
                        amount,
                        currency: Some(cur.to_owned()),
                        code: "conversion".into(),
                        kind: Some(TransferKind::Single),
                        linked,
                        reference: Some(format!("{}@{}", c.id, c.rate)),
                        ..TransferRequest::default()
                    };
                    let legs = vec![
                        leg(&c.transfers[0], c.debit_account.clone(), format!("fx.exchange:{}", c.currency), c.amount, &c.currency, true),
                        leg(&c.transfers[1], format!("fx.exchange:{}", c.converted_currency), c.credit_account.clone(), c.converted_amount, &c.converted_currency, false),
                    ];
                    for outcome in post_on(conn, dialect, &t, legs).await? {
                        if let Some(e) = outcome.error().filter(|e| e.code != super::error::codes::LINKED_EVENT_FAILED) {
                            return Err(FinanceError::Transfer(e.clone()));
                        }
                    }
                    sqlx::query(
                        "INSERT INTO fin_conversions (tenant_id, id, debit_account, credit_account, amount, \
                         currency, converted, converted_currency, rate, path, created_at_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    )
                    .bind(&t)
                    .bind(&c.id)
                    .bind(&c.debit_account)
                    .bind(&c.credit_account)
                    .bind(c.amount)
                    .bind(&c.currency)
                    .bind(c.converted_amount)
                    .bind(&c.converted_currency)
                    .bind(&c.rate)
                    .bind(serde_json::to_string(&c.path).unwrap_or_default())
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        Ok((conversion, true))
    }

    pub async fn conversion(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<Conversion>, FinanceError> {
        let row = sqlx::query(
            "SELECT id, debit_account, credit_account, amount, currency, converted, \
             converted_currency, rate, path, created_at_ms FROM fin_conversions \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(row.map(|r| {
            let id: String = r.get(0);
            let path: String = r.get(8);
            Conversion {
                transfers: [format!("{id}:out"), format!("{id}:in")],
                id,
                debit_account: r.get(1),
                credit_account: r.get(2),
                amount: r.get(3),
                currency: r.get(4),
                converted_amount: r.get(5),
                converted_currency: r.get(6),
                rate: r.get(7),
                path: serde_json::from_str(&path).unwrap_or_default(),
                created_at: rfc3339_millis(r.get(9)),
            }
        }))
    }
}

fn unknown(id: &str) -> FinanceError {
    FinanceError::Transfer(TransferError::invalid(
        super::error::codes::UNKNOWN_ACCOUNT,
        format!("no account `{id}`"),
    ))
}
