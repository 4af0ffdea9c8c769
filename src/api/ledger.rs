//! `/v1/ledger/...`: accounts, transfers (one, or a batch with linked chains), the trial balance.

use crate::api::auth::AuthKey;
use crate::api::error::ApiError;
use crate::api::extract::ApiJson;
use crate::auth::Scope;
use crate::fields::FieldError;
use crate::finance::{
    AccountKind, FinanceService, NewAccount, Outcome, TransferKind, TransferRequest, money,
};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

/// Most transfers in one batch.
const MAX_BATCH: usize = 8190;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountBody {
    currency: String,
    kind: String,
    name: Option<String>,
    #[serde(default)]
    debits_must_not_exceed_credits: bool,
    #[serde(default)]
    credits_must_not_exceed_debits: bool,
}

pub async fn put_account(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    id: web::Path<String>,
    ApiJson(body): ApiJson<AccountBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceWrite)?;
    let kind = AccountKind::parse(&body.kind).ok_or_else(|| {
        ApiError::Validation(vec![FieldError::new(
            "kind",
            "must be one of asset, liability, equity, revenue, expense",
        )])
    })?;
    let (account, created) = finance
        .open_account(
            &tenant.id,
            NewAccount {
                id: id.into_inner(),
                currency: body.currency,
                kind,
                name: body.name,
                debits_must_not_exceed_credits: body.debits_must_not_exceed_credits,
                credits_must_not_exceed_debits: body.credits_must_not_exceed_debits,
            },
        )
        .await?;
    let answer = json!({ "status": 1, "account": account });
    Ok(if created {
        HttpResponse::Created().json(answer)
    } else {
        HttpResponse::Ok().json(answer)
    })
}

pub async fn get_account(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceRead)?;
    let account = finance.account(&tenant.id, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "account": account })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountsQuery {
    currency: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

pub async fn list_accounts(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    query: web::Query<AccountsQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceRead)?;
    let limit = limit(query.limit)?;
    let accounts = finance
        .accounts(
            &tenant.id,
            query.currency.as_deref(),
            query.after.as_deref(),
            limit,
        )
        .await?;
    let next = (accounts.len() as i64 == limit)
        .then(|| accounts.last().map(|a| a.id.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "accounts": accounts, "next": next })))
}

fn limit(asked: Option<i64>) -> Result<i64, ApiError> {
    match asked.unwrap_or(100) {
        n @ 1..=1000 => Ok(n),
        _ => Err(ApiError::Validation(vec![FieldError::new(
            "limit",
            "must be from 1 to 1000",
        )])),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferBody {
    id: String,
    debit_account: Option<String>,
    credit_account: Option<String>,
    amount: Option<Value>,
    currency: Option<String>,
    code: Option<String>,
    kind: Option<String>,
    pending_id: Option<String>,
    timeout_secs: Option<Value>,
    #[serde(default)]
    linked: bool,
    reference: Option<String>,
}

/// An integer from `min`; JSON numbers with a fraction or an exponent, and anything else, are
/// refused (money is never a float).
fn integer(field: &str, v: &Value, min: i64, problems: &mut Vec<FieldError>) -> i64 {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    };
    match n {
        Some(n) if n >= min => n,
        _ => {
            problems.push(FieldError::new(
                field,
                format!(
                    "must be a whole number of minor units from {min} to {}",
                    i64::MAX
                ),
            ));
            0
        }
    }
}

fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.'))
}

impl TransferBody {
    /// The transfer as the ledger takes it; each problem named under `prefix`.
    fn request(self, prefix: &str, problems: &mut Vec<FieldError>) -> TransferRequest {
        let at = |f: &str| format!("{prefix}{f}");
        let mut bad = |f: &str, m: &str| problems.push(FieldError::new(at(f), m));
        let kind = match self.kind.as_deref() {
            None => TransferKind::Single,
            Some(k) => TransferKind::parse(k).unwrap_or_else(|| {
                bad(
                    "kind",
                    "must be one of single, pending, post_pending, void_pending",
                );
                TransferKind::Single
            }),
        };
        let first_phase = matches!(kind, TransferKind::Single | TransferKind::Pending);
        let id_ok = |s: &str| crate::finance::is_id(s, 128);
        if !id_ok(&self.id) {
            bad(
                "id",
                "must be 1 to 128 letters, digits, `.`, `_`, `-` or `:`",
            );
        }
        for (field, account) in [
            ("debitAccount", &self.debit_account),
            ("creditAccount", &self.credit_account),
        ] {
            match account {
                Some(a) if !id_ok(a) => bad(field, "is not an account id"),
                None if first_phase => bad(field, "is required"),
                _ => {}
            }
        }
        if first_phase && self.debit_account.is_some() && self.debit_account == self.credit_account
        {
            bad("creditAccount", "must differ from debitAccount");
        }
        let currency = self.currency.map(|c| match money::currency(&c) {
            Some(cur) => cur.code().to_owned(),
            None => {
                bad("currency", "must be an ISO 4217 currency code");
                c
            }
        });
        let code = self.code.unwrap_or_else(|| "transfer".into());
        if !is_code(&code) {
            bad(
                "code",
                "must be 1 to 64 lower-case letters, digits, `_` or `.`",
            );
        }
        match (&self.pending_id, first_phase) {
            (Some(_), true) => bad("pendingId", "is only for post_pending and void_pending"),
            (None, false) => bad("pendingId", "is required"),
            (Some(p), false) if !id_ok(p) => bad("pendingId", "is not a transfer id"),
            _ => {}
        }
        if self.reference.as_ref().is_some_and(|r| r.len() > 200) {
            bad("reference", "must be at most 200 characters");
        }
        let amount = match &self.amount {
            Some(v) => integer(&at("amount"), v, i64::from(first_phase), problems),
            None if first_phase => {
                problems.push(FieldError::new(at("amount"), "is required"));
                0
            }
            None => 0,
        };
        let timeout_secs = match &self.timeout_secs {
            Some(_) if kind != TransferKind::Pending => {
                problems.push(FieldError::new(
                    at("timeoutSecs"),
                    "is only for pending transfers",
                ));
                0
            }
            Some(v) => integer(&at("timeoutSecs"), v, 0, problems).min(315_360_000),
            None => 0,
        };
        TransferRequest {
            id: self.id,
            debit_account: self.debit_account,
            credit_account: self.credit_account,
            amount,
            currency,
            code,
            kind: Some(kind),
            pending_id: self.pending_id,
            timeout_secs,
            linked: self.linked,
            reference: self.reference,
        }
    }
}

pub async fn post_transfer(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    ApiJson(body): ApiJson<TransferBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceWrite)?;
    let mut problems = Vec::new();
    let mut request = body.request("", &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    // A lone transfer has no next one to link with.
    request.linked = false;
    let outcome = finance
        .post(&tenant.id, vec![request])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("the ledger answered nothing"))?;
    match outcome {
        Outcome::Created(t) => Ok(
            HttpResponse::Created().json(json!({"status": 1, "transfer": t, "replayed": false}))
        ),
        Outcome::Exists(t) => {
            Ok(HttpResponse::Ok().json(json!({"status": 1, "transfer": t, "replayed": true})))
        }
        Outcome::Failed { error, .. } => Err(error.into()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchBody {
    transfers: Vec<TransferBody>,
}

/// A batch: each transfer (or linked chain) posts or fails on its own; one result each.
pub async fn post_batch(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceWrite)?;
    if body.transfers.is_empty() || body.transfers.len() > MAX_BATCH {
        return Err(ApiError::Validation(vec![FieldError::new(
            "transfers",
            format!("must hold 1 to {MAX_BATCH} transfers"),
        )]));
    }
    let mut problems = Vec::new();
    let requests: Vec<TransferRequest> = body
        .transfers
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.request(&format!("transfers[{i}]."), &mut problems))
        .collect();
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let outcomes = finance.post(&tenant.id, requests).await?;
    let results: Vec<Value> = outcomes
        .into_iter()
        .map(|o| match o {
            Outcome::Created(t) => json!({"id": t.id, "result": "created", "transfer": t}),
            Outcome::Exists(t) => json!({"id": t.id, "result": "exists", "transfer": t}),
            Outcome::Failed { id, error } => json!({
                "id": id, "result": "failed", "errorCode": error.code, "errorMsg": error.message
            }),
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "results": results })))
}

pub async fn get_transfer(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceRead)?;
    let transfer = finance.transfer(&tenant.id, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "transfer": transfer })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransfersQuery {
    account: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

pub async fn list_transfers(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    query: web::Query<TransfersQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceRead)?;
    let q = query.into_inner();
    let mut problems = Vec::new();
    let mut time = |field: &str, v: Option<String>| {
        v.and_then(|t| match chrono::DateTime::parse_from_rfc3339(&t) {
            Ok(t) => Some(t.timestamp_millis()),
            Err(_) => {
                problems.push(FieldError::new(field, "must be an RFC 3339 time"));
                None
            }
        })
    };
    let from_ms = time("from", q.from);
    let to_ms = time("to", q.to);
    let after = q.cursor.map(|c| {
        c.parse::<i64>().unwrap_or_else(|_| {
            problems.push(FieldError::new("cursor", "is not a cursor of this listing"));
            0
        })
    });
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let query = crate::finance::TransferQuery {
        account: q.account,
        from_ms,
        to_ms,
        after,
        limit: limit(q.limit)?,
    };
    let (transfers, next) = finance.transfers(&tenant.id, &query).await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": 1, "transfers": transfers, "next": next.map(|n| n.to_string())
    })))
}

/// Debits and credits per currency over the tenant's accounts: equal in every currency.
pub async fn trial_balance(
    key: AuthKey,
    finance: web::Data<FinanceService>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceRead)?;
    let totals = finance.trial_balance(&tenant.id).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "currencies": totals })))
}
