//! `/v1/waybills`: create (idempotent on tenant + referenceNumber), get, query by reference.

use crate::auth::AuthTenant;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::waybills::{CreateWaybillRequest, Outcome, WaybillService, WaybillView, validate};
use actix_web::{HttpResponse, web};
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
    charge: Option<&'a carriers::Charge>,
    created_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    replayed: Option<bool>,
}

fn body(w: &WaybillView, replayed: Option<bool>) -> WaybillBody<'_> {
    WaybillBody {
        status: 1,
        waybill_number: &w.waybill_number,
        reference_number: &w.reference_number,
        carrier: &w.carrier,
        channel: &w.channel,
        tracking_number: &w.tracking_number,
        charge: w.charge.as_ref(),
        created_at: &w.created_at,
        replayed,
    }
}

pub async fn create(
    tenant: AuthTenant,
    service: web::Data<WaybillService>,
    ApiJson(req): ApiJson<CreateWaybillRequest>,
) -> Result<HttpResponse, ApiError> {
    let valid = validate(&req).map_err(ApiError::Validation)?;
    Ok(match service.create(&tenant.0.id, valid).await? {
        Outcome::Created(w) => HttpResponse::Created().json(body(&w, Some(false))),
        Outcome::Replayed(w) => HttpResponse::Ok().json(body(&w, Some(true))),
    })
}

pub async fn get(
    tenant: AuthTenant,
    service: web::Data<WaybillService>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let w = service.find(&tenant.0.id, &number).await?;
    Ok(HttpResponse::Ok().json(body(&w, None)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ByReference {
    reference_number: Option<String>,
}

pub async fn by_reference(
    tenant: AuthTenant,
    service: web::Data<WaybillService>,
    query: web::Query<ByReference>,
) -> Result<HttpResponse, ApiError> {
    let reference = query
        .reference_number
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ApiError::Validation(vec![crate::error::FieldError::new(
                "referenceNumber",
                "query parameter is required",
            )])
        })?;
    let w = service.find(&tenant.0.id, reference).await?;
    Ok(HttpResponse::Ok().json(body(&w, None)))
}
