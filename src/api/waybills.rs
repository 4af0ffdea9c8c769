//! `/v1/waybills`: create (idempotent on tenant + referenceNumber), get, query by reference,
//! cancel, and the stored label.

use crate::api::auth::AuthKey;
use crate::api::error::{ApiError, FieldError};
use crate::api::extract::ApiJson;
use crate::api::labels::{EncodingQuery, document};
use crate::auth::Scope;
use crate::waybills::{
    CreateWaybillRequest, LabelEncoding, Outcome, WaybillService, WaybillView, validate,
};
use actix_web::{HttpResponse, web};
use base64::Engine;
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WaybillBody<'a> {
    status: u8,
    waybill_number: &'a str,
    reference_number: &'a str,
    carrier: &'a str,
    channel: &'a str,
    tracking_number: &'a str,
    state: &'a str,
    label: Option<LabelLink<'a>>,
    charge: Option<&'a carriers::Charge>,
    created_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    replayed: Option<bool>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LabelLink<'a> {
    format: &'a str,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    base64: Option<String>,
}

fn body(w: &WaybillView, replayed: Option<bool>, base64: Option<String>) -> WaybillBody<'_> {
    WaybillBody {
        status: 1,
        waybill_number: &w.waybill_number,
        reference_number: &w.reference_number,
        carrier: &w.carrier,
        channel: &w.channel,
        tracking_number: &w.tracking_number,
        state: w.state,
        label: w.label_format.as_deref().map(|format| LabelLink {
            format,
            url: format!("/v1/waybills/{}/label", w.waybill_number),
            base64,
        }),
        charge: w.charge.as_ref(),
        created_at: &w.created_at,
        replayed,
    }
}

pub async fn create(
    key: AuthKey,
    service: web::Data<WaybillService>,
    ApiJson(req): ApiJson<CreateWaybillRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::WaybillsWrite)?;
    let valid = validate(&req).map_err(ApiError::Validation)?;
    let encoding = valid.label_encoding;
    let (outcome, replayed) = match service.create(tenant, valid).await? {
        Outcome::Created(w) => (w, false),
        Outcome::Replayed(w) => (w, true),
    };
    let base64 = match (encoding, &outcome.label_format) {
        (LabelEncoding::Base64, Some(_)) => {
            let (_, content) = service.label(&tenant.id, &outcome.waybill_number).await?;
            Some(base64::engine::general_purpose::STANDARD.encode(content))
        }
        _ => None,
    };
    let mut response = if replayed {
        HttpResponse::Ok()
    } else {
        HttpResponse::Created()
    };
    Ok(response.json(body(&outcome, Some(replayed), base64)))
}

pub async fn get(
    key: AuthKey,
    service: web::Data<WaybillService>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::WaybillsRead)?;
    let w = service.find(&tenant.id, &number).await?;
    Ok(HttpResponse::Ok().json(body(&w, None, None)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ByReference {
    reference_number: Option<String>,
}

pub async fn by_reference(
    key: AuthKey,
    service: web::Data<WaybillService>,
    query: web::Query<ByReference>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::WaybillsRead)?;
    let reference = query
        .reference_number
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                "referenceNumber",
                "query parameter is required",
            )])
        })?;
    let w = service.find(&tenant.id, reference).await?;
    Ok(HttpResponse::Ok().json(body(&w, None, None)))
}

pub async fn cancel(
    key: AuthKey,
    service: web::Data<WaybillService>,
    tracking: web::Data<crate::tracking::TrackingService>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::WaybillsWrite)?;
    let w = service.cancel(&tenant.id, &number).await?;
    // The tracking answer says CANCELLED from now on.
    tracking.refresh(&w.id).await?;
    Ok(HttpResponse::Ok().json(body(&w, None, None)))
}

pub async fn label(
    key: AuthKey,
    service: web::Data<WaybillService>,
    number: web::Path<String>,
    query: web::Query<EncodingQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::LabelsRead)?;
    let base64 = query.base64()?;
    let (format, content) = service.label(&tenant.id, &number).await?;
    Ok(document(&format, content, base64))
}
