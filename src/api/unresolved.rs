//! `/v1/unknown-attempts`: references whose create attempt ended ambiguously and that no retry
//! settled. Operators list them and resolve each: the carrier made the shipment (its number,
//! and its label and charge when known) or it did not (the reference is freed).

use crate::api::auth::AuthKey;
use crate::api::error::{ApiError, FieldError};
use crate::api::extract::ApiJson;
use crate::auth::Scope;
use crate::store::Db;
use crate::store::now_millis;
use crate::waybills::WaybillService;
use crate::waybills::resolve::{Resolution, Resolved};
use actix_web::{HttpResponse, web};
use base64::Engine;
use carriers::{Charge, Label, LabelFormat};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    /// Only references unresolved for at least this long.
    older_than_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolveRequest {
    /// `created` (the carrier made the shipment) or `notCreated`.
    outcome: String,
    waybill_number: Option<String>,
    tracking_number: Option<String>,
    label: Option<LabelInput>,
    charge: Option<Charge>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelInput {
    format: String,
    base64: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Attempt {
    reference_number: String,
    channel: String,
    carrier: String,
    attempts: i64,
    unknown_since: String,
    age_seconds: i64,
}

pub async fn list(
    key: AuthKey,
    db: web::Data<Db>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::WaybillsRead)?;
    let min_age_ms = query
        .older_than_seconds
        .unwrap_or(0)
        .saturating_mul(1000)
        .min(i64::MAX as u64) as i64;
    let now = now_millis();
    let rows = db.unresolved(Some(&tenant.id), min_age_ms, 500).await?;
    #[derive(Serialize)]
    struct List {
        status: u8,
        attempts: Vec<Attempt>,
    }
    Ok(HttpResponse::Ok().json(List {
        status: 1,
        attempts: rows
            .into_iter()
            .map(|u| Attempt {
                unknown_since: u.since(),
                age_seconds: (now - u.since_ms).max(0) / 1000,
                reference_number: u.reference_number,
                channel: u.channel,
                carrier: u.carrier,
                attempts: u.attempts,
            })
            .collect(),
    }))
}

fn text_ok(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control)
}

fn resolution(req: ResolveRequest) -> Result<Resolution, Vec<FieldError>> {
    let mut problems = Vec::new();
    match req.outcome.as_str() {
        "notCreated" => {
            if req.waybill_number.is_some() || req.label.is_some() || req.charge.is_some() {
                problems.push(FieldError::new(
                    "outcome",
                    "notCreated takes no waybillNumber, label or charge",
                ));
            }
            return if problems.is_empty() {
                Ok(Resolution::NotCreated)
            } else {
                Err(problems)
            };
        }
        "created" => {}
        _ => {
            return Err(vec![FieldError::new(
                "outcome",
                "expected `created` or `notCreated`",
            )]);
        }
    }
    let waybill_number = req.waybill_number.unwrap_or_default();
    if !text_ok(&waybill_number, 64) {
        problems.push(FieldError::new(
            "waybillNumber",
            "required for `created`: 1 to 64 characters",
        ));
    }
    if let Some(t) = &req.tracking_number
        && !text_ok(t, 64)
    {
        problems.push(FieldError::new("trackingNumber", "1 to 64 characters"));
    }
    let label = match req.label {
        None => None,
        Some(l) => {
            let format = LabelFormat::parse(&l.format.to_ascii_lowercase());
            let content = base64::engine::general_purpose::STANDARD.decode(l.base64.trim());
            match (format, content) {
                (Some(format), Ok(content)) if !content.is_empty() => {
                    Some(Label { format, content })
                }
                (None, _) => {
                    problems.push(FieldError::new("label.format", "pdf, png, gif or zpl"));
                    None
                }
                _ => {
                    problems.push(FieldError::new("label.base64", "not base64 or empty"));
                    None
                }
            }
        }
    };
    if let Some(c) = &req.charge {
        if c.amount.parse::<rust_decimal::Decimal>().is_err() || c.amount.len() > 20 {
            problems.push(FieldError::new("charge.amount", "a decimal number as text"));
        }
        if c.currency.len() != 3 || !c.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            problems.push(FieldError::new("charge.currency", "an ISO 4217 code"));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Resolution::Created {
        waybill_number: waybill_number.trim().to_owned(),
        tracking_number: req.tracking_number.map(|t| t.trim().to_owned()),
        label,
        charge: req.charge,
    })
}

pub async fn resolve(
    key: AuthKey,
    service: web::Data<WaybillService>,
    reference: web::Path<String>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::WaybillsWrite)?;
    let resolution = resolution(req).map_err(ApiError::Validation)?;
    let resolved = service.resolve(&tenant.id, &reference, resolution).await?;
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer<'a> {
        status: u8,
        reference_number: &'a str,
        outcome: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        waybill_number: Option<&'a str>,
    }
    let (outcome, waybill_number) = match &resolved {
        Resolved::Freed => ("notCreated", None),
        Resolved::Recorded { waybill_number } => ("created", Some(waybill_number.as_str())),
    };
    Ok(HttpResponse::Ok().json(Answer {
        status: 1,
        reference_number: &reference,
        outcome,
        waybill_number,
    }))
}
