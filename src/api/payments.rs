//! Payments: a tenant's provider accounts, the providers' signed webhooks, and the recorded
//! payments (the unmatched ones are the review queue).

use crate::api::auth::AuthKey;
use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, TimedBody};
use crate::auth::Scope;
use crate::fields::FieldError;
use crate::finance::paypal::Transmission;
use crate::finance::{FinanceService, WebhookHeaders, WebhookRefusal};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountBody {
    webhook_secret: String,
}

pub async fn put_account(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    path: web::Path<(String, String)>,
    ApiJson(body): ApiJson<AccountBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceWrite)?;
    let (provider, name) = path.into_inner();
    let (account, created) = finance
        .put_payment_account(&tenant.id, &provider, &name, &body.webhook_secret)
        .await?;
    let answer = json!({ "status": 1, "paymentAccount": account });
    Ok(if created {
        HttpResponse::Created().json(answer)
    } else {
        HttpResponse::Ok().json(answer)
    })
}

pub async fn list_accounts(
    key: AuthKey,
    finance: web::Data<FinanceService>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceRead)?;
    let accounts = finance.payment_accounts(&tenant.id).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "paymentAccounts": accounts })))
}

/// A provider's webhook: no API key; the path names the account and its secret signs the body.
pub async fn webhook(
    req: HttpRequest,
    finance: web::Data<FinanceService>,
    path: web::Path<(String, String)>,
    body: TimedBody,
) -> Result<HttpResponse, ApiError> {
    let (provider, id) = path.into_inner();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let headers = WebhookHeaders {
        stripe_signature: header("Stripe-Signature"),
        paypal: Transmission {
            id: header("PayPal-Transmission-Id"),
            time: header("PayPal-Transmission-Time"),
            signature: header("PayPal-Transmission-Sig"),
            cert_url: header("PayPal-Cert-Url"),
            auth_algo: header("PayPal-Auth-Algo"),
        },
    };
    let tolerance = finance.webhook_tolerance_secs();
    match finance
        .receive_payment_webhook(&provider, &id, &headers, &body.0, tolerance)
        .await
    {
        Ok((payment, new)) => Ok(HttpResponse::Ok().json(json!({
            "status": 1,
            "outcome": if new { "recorded" } else { "duplicate" },
            "payment": payment,
        }))),
        Err(WebhookRefusal::Unauthorized(m)) => Err(ApiError::CallbackUnauthorized(m)),
        Err(WebhookRefusal::Malformed(m)) => Err(ApiError::InvalidJson(m)),
        Err(WebhookRefusal::Finance(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentsQuery {
    status: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    query: web::Query<PaymentsQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceRead)?;
    let mut problems = Vec::new();
    if let Some(s) = &query.status
        && !["matched", "unmatched", "ignored"].contains(&s.as_str())
    {
        problems.push(FieldError::new(
            "status",
            "must be matched, unmatched or ignored",
        ));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        problems.push(FieldError::new("limit", "must be from 1 to 1000"));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let payments = finance
        .payments(&tenant.id, query.status.as_deref(), limit)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "payments": payments })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchBody {
    order_id: String,
}

/// Matches a payment from the review queue to an order by hand.
pub async fn match_payment(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    path: web::Path<(String, String)>,
    crate::api::extract::ApiJson(body): crate::api::extract::ApiJson<MatchBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceWrite)?;
    let (provider, event_id) = path.into_inner();
    let payment = finance
        .match_payment(&tenant.id, &provider, &event_id, &body.order_id)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "payment": payment })))
}
