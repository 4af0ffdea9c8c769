//! Tracking queries (served from the cache, never from a carrier), the last mile of a waybill,
//! and carrier pushes.

use crate::api::auth::AuthKey;
use crate::api::error::{ApiError, FieldError};
use crate::api::extract::{self, ApiJson};
use crate::auth::Scope;
use crate::tracking::{PushSummary, TrackingService, intake};
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Most numbers in one batch query.
pub const MAX_BATCH: usize = 40;

fn check_number(field: &str, number: &str) -> Result<(), ApiError> {
    if number.trim().is_empty() || number.len() > 64 {
        return Err(ApiError::Validation(vec![FieldError::new(
            field,
            "must be 1 to 64 characters",
        )]));
    }
    Ok(())
}

pub async fn get(
    key: AuthKey,
    tracking: web::Data<TrackingService>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::TrackingRead)?;
    check_number("number", &number)?;
    match tracking.answer(&tenant.id, &number).await? {
        Some(body) => Ok(HttpResponse::Ok()
            .insert_header(ContentType::json())
            .body(body)),
        None => Err(ApiError::NotFound(format!("no waybill {number}"))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchQuery {
    numbers: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchItem<'a> {
    number: &'a str,
    found: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'static str>,
}

#[derive(Serialize)]
struct BatchAnswer<'a> {
    status: u8,
    results: Vec<BatchItem<'a>>,
}

pub async fn query(
    key: AuthKey,
    tracking: web::Data<TrackingService>,
    ApiJson(req): ApiJson<BatchQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::TrackingRead)?;
    if req.numbers.is_empty() || req.numbers.len() > MAX_BATCH {
        return Err(ApiError::Validation(vec![FieldError::new(
            "numbers",
            format!("must hold 1 to {MAX_BATCH} numbers"),
        )]));
    }
    for (i, n) in req.numbers.iter().enumerate() {
        check_number(&format!("numbers[{i}]"), n)?;
    }
    let answers = tracking.answers(&tenant.id, &req.numbers).await?;
    let results = req
        .numbers
        .iter()
        .zip(answers)
        .map(|(number, answer)| {
            let tracking = answer
                .map(|body| {
                    String::from_utf8(body.to_vec())
                        .map_err(ApiError::internal)
                        .and_then(|s| RawValue::from_string(s).map_err(ApiError::internal))
                })
                .transpose()?;
            Ok(BatchItem {
                number,
                found: tracking.is_some(),
                error_code: tracking.is_none().then_some("NOT_FOUND"),
                tracking,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(HttpResponse::Ok().json(BatchAnswer { status: 1, results }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LastMileAnswer<'a> {
    status: u8,
    waybill_number: &'a str,
    last_mile_carrier: Option<&'a str>,
    last_mile_tracking_number: Option<&'a str>,
    /// False when the carrier's name is not in the configured table (kept as reported).
    last_mile_carrier_recognized: Option<bool>,
}

pub async fn last_mile(
    key: AuthKey,
    tracking: web::Data<TrackingService>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::WaybillsRead)?;
    check_number("number", &number)?;
    let row = tracking
        .last_mile(&tenant.id, &number)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no waybill {number}")))?;
    Ok(HttpResponse::Ok().json(LastMileAnswer {
        status: 1,
        waybill_number: &row.waybill_number,
        last_mile_carrier: row.last_mile_carrier.as_deref(),
        last_mile_tracking_number: row.last_mile_tracking_number.as_deref(),
        last_mile_carrier_recognized: row.last_mile_carrier.as_ref().map(|_| row.last_mile_known),
    }))
}

#[derive(Serialize)]
struct PushAnswer {
    status: u8,
    accepted: u64,
    duplicates: u64,
    unknown: u64,
}

impl From<PushSummary> for PushAnswer {
    fn from(s: PushSummary) -> Self {
        Self {
            status: 1,
            accepted: s.accepted,
            duplicates: s.duplicates,
            unknown: s.unknown,
        }
    }
}

/// `POST /v1/callbacks/{carrier}`: authenticated per carrier, stored before it is acknowledged,
/// answered in the carrier's own format where it has one. A path no configured carrier can sign
/// is refused before any of the body is read.
pub async fn callback(
    req: HttpRequest,
    carrier: web::Path<String>,
    payload: web::Payload,
    tracking: web::Data<TrackingService>,
) -> Result<HttpResponse, ApiError> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let outcome = match tracking.check_push(&carrier) {
        Ok(()) => {
            let body = extract::read_body(&req, payload).await?;
            tracking.take_push(&carrier, &header, &body).await
        }
        Err(e) => Err(e),
    };
    let receiver = intake::receiver(&carrier);
    match outcome {
        Ok(summary) => Ok(match receiver.and_then(|r| r.answer(Ok(()))) {
            Some(answer) => HttpResponse::Ok()
                .content_type(answer.content_type)
                .body(answer.body),
            None => HttpResponse::Ok().json(PushAnswer::from(summary)),
        }),
        Err(e) => {
            let refusal = e.refusal();
            let e = ApiError::from(e);
            let message = e.to_string();
            match receiver.and_then(|r| r.answer(Err((refusal, &message)))) {
                Some(answer) => Ok(HttpResponse::build(e.code_and_status().1)
                    .content_type(answer.content_type)
                    .body(answer.body)),
                None => Err(e),
            }
        }
    }
}
