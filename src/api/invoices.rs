//! `/v1/carrier-invoices`: import a carrier's invoice file, read its classified lines (JSON or
//! CSV), and settle a line (accept, dispute, then won or lost).

use crate::api::auth::AuthKey;
use crate::api::error::ApiError;
use crate::api::extract::TimedBody;
use crate::auth::Scope;
use crate::fields::FieldError;
use crate::finance::{FinanceService, Settle, invoice_lines};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportQuery {
    carrier: String,
    layout: Option<String>,
}

pub async fn import(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    query: web::Query<ImportQuery>,
    body: TimedBody,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceWrite)?;
    let carrier = query.carrier.to_ascii_lowercase();
    if carrier.is_empty()
        || carrier.len() > 32
        || !carrier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(ApiError::Validation(vec![FieldError::new(
            "carrier",
            "must be a carrier id",
        )]));
    }
    let name = query.layout.clone().unwrap_or_else(|| carrier.clone());
    let layout = finance.invoice_layout(&name).cloned().ok_or_else(|| {
        ApiError::Validation(vec![FieldError::new(
            "layout",
            format!("no invoice layout `{name}` (configure finance.invoice_layouts.{name})"),
        )])
    })?;
    let (invoice, _) = finance
        .import_invoice(&tenant.id, &carrier, &layout, &body.0)
        .await?;
    Ok(HttpResponse::Created().json(json!({ "status": 1, "invoice": invoice })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InvoiceQuery {
    classification: Option<String>,
    format: Option<String>,
}

pub async fn get(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    id: web::Path<String>,
    query: web::Query<InvoiceQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceRead)?;
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "format",
                "must be json or csv",
            )]));
        }
    };
    let (invoice, lines) = finance
        .invoice(&tenant.id, &id, query.classification.as_deref())
        .await?;
    Ok(if csv {
        HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                format!(
                    "attachment; filename=\"{}.csv\"",
                    invoice.invoice_number.replace(['"', '\\'], "")
                ),
            ))
            .body(invoice_lines::lines_csv(&invoice, &lines))
    } else {
        HttpResponse::Ok().json(json!({ "status": 1, "invoice": invoice, "lines": lines }))
    })
}

pub async fn settle(
    key: AuthKey,
    finance: web::Data<FinanceService>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::FinanceWrite)?;
    let (id, line, action) = path.into_inner();
    let action = match action.as_str() {
        "accept" => Settle::Accept,
        "dispute" => Settle::Dispute,
        "won" => Settle::Won,
        "lost" => Settle::Lost,
        _ => {
            return Err(ApiError::NotFound(
                "no such action (accept, dispute, won, lost)".into(),
            ));
        }
    };
    let line: i64 = line
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no line `{line}`")))?;
    let settled = finance.settle_line(&tenant.id, &id, line, action).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "line": settled })))
}
