//! Reports: a period's summary in a chosen currency, and an account's statement; JSON or CSV.

use crate::api::auth::AuthKey;
use crate::api::error::ApiError;
use crate::auth::Scope;
use crate::fields::FieldError;
use crate::finance::{FinanceService, reports};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
    currency: Option<String>,
    format: Option<String>,
}

/// `[from, to)` in epoch ms (from the beginning, to now when left out), and whether CSV.
fn period(q: &PeriodQuery) -> Result<(i64, i64, bool), ApiError> {
    let mut problems = Vec::new();
    let mut time = |field: &str, v: &Option<String>, default: i64| match v {
        None => default,
        Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(t) => t.timestamp_millis(),
            Err(_) => {
                problems.push(FieldError::new(field, "must be an RFC 3339 time"));
                0
            }
        },
    };
    let from = time("from", &q.from, 0);
    let to = time("to", &q.to, crate::store::now_millis() + 1);
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            problems.push(FieldError::new("format", "must be json or csv"));
            false
        }
    };
    if problems.is_empty() && to <= from {
        problems.push(FieldError::new("to", "must be after from"));
    }
    if problems.is_empty() {
        Ok((from, to, csv))
    } else {
        Err(ApiError::Validation(problems))
    }
}

fn csv(body: String, name: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}.csv\""),
        ))
        .body(body)
}

pub async fn summary(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceRead)?;
    let (from, to, as_csv) = period(&query)?;
    let currency = match &query.currency {
        Some(c) => c.clone(),
        None => finance.report_currency(&tenant.id).await?,
    };
    let summary = finance.summary(&tenant.id, from, to, &currency).await?;
    Ok(if as_csv {
        csv(reports::summary_csv(&summary), "summary")
    } else {
        HttpResponse::Ok().json(json!({ "status": 1, "summary": summary }))
    })
}

pub async fn statement(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    id: web::Path<String>,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceRead)?;
    if query.currency.is_some() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "currency",
            "a statement is in its account's currency",
        )]));
    }
    let (from, to, as_csv) = period(&query)?;
    let statement = finance.statement(&tenant.id, &id, from, to).await?;
    Ok(if as_csv {
        csv(reports::statement_csv(&statement), "statement")
    } else {
        HttpResponse::Ok().json(json!({ "status": 1, "statement": statement }))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsBody {
    report_currency: String,
}

pub async fn get_settings(
    key: AuthKey,
    finance: web::Data<FinanceService>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceRead)?;
    let currency = finance.report_currency(&tenant.id).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "settings": { "reportCurrency": currency } })))
}

pub async fn put_settings(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    crate::api::extract::ApiJson(body): crate::api::extract::ApiJson<SettingsBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceWrite)?;
    let currency = finance
        .set_report_currency(&tenant.id, &body.report_currency)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "settings": { "reportCurrency": currency } })))
}
