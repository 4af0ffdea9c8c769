//! `/v1/fx-rates`: the tenant's exchange-rate table (set by hand or imported from a feed) and
//! conversions through it.

use crate::api::auth::AuthKey;
use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, TimedBody};
use crate::auth::Scope;
use crate::fields::FieldError;
use crate::finance::{FinanceService, rates};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DateQuery {
    date: Option<String>,
}

fn date(field: &str, d: Option<&str>) -> Result<Option<String>, ApiError> {
    d.map(|d| {
        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map(|d| d.to_string())
            .map_err(|_| {
                ApiError::Validation(vec![FieldError::new(field, "must be a date, YYYY-MM-DD")])
            })
    })
    .transpose()
}

pub async fn list(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    query: web::Query<DateQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceRead)?;
    let on = date("date", query.date.as_deref())?;
    let rates = finance.rates(&tenant.id, on.as_deref()).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "rates": rates })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateBody {
    rate: String,
    as_of: String,
    source: Option<String>,
}

pub async fn put(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    path: web::Path<(String, String)>,
    ApiJson(body): ApiJson<RateBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceWrite)?;
    let (base, quote) = path.into_inner();
    let rate = FinanceService::rate_input(
        &base,
        &quote,
        &body.rate,
        &body.as_of,
        body.source.as_deref().unwrap_or("manual"),
    )?;
    finance
        .put_rates(&tenant.id, std::slice::from_ref(&rate))
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "rate": rate })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportQuery {
    source: String,
}

/// A feed's document as the provider serves it: the ECB's XML or Open Exchange Rates' JSON.
pub async fn import(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    query: web::Query<ImportQuery>,
    body: TimedBody,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceWrite)?;
    let text = std::str::from_utf8(&body.0)
        .map_err(|_| ApiError::InvalidRequest("the document is not UTF-8".into()))?;
    let parsed = match query.source.as_str() {
        "ecb" => rates::parse_ecb(text),
        "openexchangerates" => rates::parse_oxr(text),
        _ => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "source",
                "must be ecb or openexchangerates",
            )]));
        }
    }
    .map_err(ApiError::InvalidRequest)?;
    let imported = finance.put_rates(&tenant.id, &parsed).await?;
    let mut dates: Vec<&str> = parsed.iter().map(|r| r.as_of.as_str()).collect();
    dates.sort_unstable();
    dates.dedup();
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "imported": imported, "dates": dates })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConvertQuery {
    amount: String,
    from: String,
    to: String,
    date: Option<String>,
}

pub async fn convert(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    query: web::Query<ConvertQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceRead)?;
    let amount: i64 = query
        .amount
        .parse()
        .ok()
        .filter(|a: &i64| *a >= 0)
        .ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                "amount",
                "must be a whole number of minor units",
            )])
        })?;
    let on = date("date", query.date.as_deref())?;
    let converted = finance
        .convert(&tenant.id, amount, &query.from, &query.to, on.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "converted": converted })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConversionBody {
    id: String,
    debit_account: String,
    credit_account: String,
    amount: serde_json::Value,
    date: Option<String>,
}

/// Moves an amount from an account of one currency to an account of another, converted.
pub async fn post_conversion(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    ApiJson(body): ApiJson<ConversionBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceWrite)?;
    let mut problems = Vec::new();
    if !crate::finance::is_id(&body.id, 120) {
        problems.push(FieldError::new(
            "id",
            "must be 1 to 120 letters, digits, `.`, `_`, `-` or `:`",
        ));
    }
    let amount = body.amount.as_i64().filter(|a| *a > 0).unwrap_or_else(|| {
        problems.push(FieldError::new(
            "amount",
            "must be a positive whole number of minor units",
        ));
        0
    });
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let on = date("date", body.date.as_deref())?;
    let (conversion, created) = finance
        .convert_between(
            &tenant.id,
            crate::finance::conversions::ConversionRequest {
                id: body.id,
                debit_account: body.debit_account,
                credit_account: body.credit_account,
                amount,
                on,
            },
        )
        .await?;
    let answer = json!({ "status": 1, "conversion": conversion });
    Ok(if created {
        HttpResponse::Created().json(answer)
    } else {
        HttpResponse::Ok().json(answer)
    })
}

pub async fn get_conversion(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceRead)?;
    let conversion = finance
        .conversion(&tenant.id, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no conversion `{id}`")))?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "conversion": conversion })))
}
