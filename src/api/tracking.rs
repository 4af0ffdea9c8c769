//! Tracking queries (served from the cache, never from a carrier), the last mile of a waybill,
//! and carrier pushes.

use crate::auth::AuthTenant;
use crate::error::{ApiError, FieldError};
use crate::extract::ApiJson;
use crate::store::now_millis;
use crate::tracking::TrackingService;
use crate::tracking::callbacks::{self, CallbackError};
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
    tenant: AuthTenant,
    tracking: web::Data<TrackingService>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_number("number", &number)?;
    match tracking.answer(&tenant.0.id, &number).await? {
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
    tenant: AuthTenant,
    tracking: web::Data<TrackingService>,
    ApiJson(req): ApiJson<BatchQuery>,
) -> Result<HttpResponse, ApiError> {
    if req.numbers.is_empty() || req.numbers.len() > MAX_BATCH {
        return Err(ApiError::Validation(vec![FieldError::new(
            "numbers",
            format!("must hold 1 to {MAX_BATCH} numbers"),
        )]));
    }
    for (i, n) in req.numbers.iter().enumerate() {
        check_number(&format!("numbers[{i}]"), n)?;
    }
    let answers = tracking.answers(&tenant.0.id, &req.numbers).await?;
    let results = req
        .numbers
        .iter()
        .zip(answers)
        .map(|(number, answer)| {
            let tracking = answer
                .map(|body| {
                    String::from_utf8(body.to_vec())
                        .map_err(|e| ApiError::Internal(e.to_string()))
                        .and_then(|s| {
                            RawValue::from_string(s).map_err(|e| ApiError::Internal(e.to_string()))
                        })
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
    tenant: AuthTenant,
    tracking: web::Data<TrackingService>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_number("number", &number)?;
    let row = tracking
        .db()
        .track_row(&tenant.0.id, &number)
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

/// Push settings: each carrier's secret and the allowed clock skew.
pub struct CallbackConfig {
    pub secrets: std::collections::BTreeMap<String, String>,
    pub max_skew_secs: u64,
}

#[derive(Serialize)]
struct PushAnswer {
    status: u8,
    accepted: u64,
    duplicates: u64,
    unknown: u64,
}

/// `POST /v1/callbacks/{carrier}`: authenticated per carrier, stored before it is acknowledged,
/// answered in the carrier's own format.
pub async fn callback(
    req: HttpRequest,
    carrier: web::Path<String>,
    body: web::Bytes,
    tracking: web::Data<TrackingService>,
    config: web::Data<CallbackConfig>,
) -> Result<HttpResponse, ApiError> {
    let carrier = carrier.into_inner();
    let xml = carrier == carriers::sf_express::ID;
    match take_push(&req, &carrier, &body, &tracking, &config).await {
        Ok(_) if xml => Ok(HttpResponse::Ok()
            .content_type("application/xml; charset=utf-8")
            .body(carriers::sf_express::push::ok_answer())),
        Ok(answer) => Ok(HttpResponse::Ok().json(answer)),
        Err(e) if xml => {
            let (code, status) = e.code_and_status();
            let sf_code = match code {
                "CALLBACK_UNAUTHORIZED" => "4002",
                "CALLBACK_REPLAYED" => "4003",
                "INVALID_REQUEST" => "4004",
                _ => "4001",
            };
            Ok(HttpResponse::build(status)
                .content_type("application/xml; charset=utf-8")
                .body(carriers::sf_express::push::err_answer(
                    sf_code,
                    &e.to_string(),
                )))
        }
        Err(e) => Err(e),
    }
}

async fn take_push(
    req: &HttpRequest,
    carrier: &str,
    body: &[u8],
    tracking: &TrackingService,
    config: &CallbackConfig,
) -> Result<PushAnswer, ApiError> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let deliveries = callbacks::read(&callbacks::Request {
        carrier,
        secret: config.secrets.get(carrier).map(String::as_str),
        header: &header,
        body,
        now_secs: now_millis() / 1000,
        max_skew_secs: config.max_skew_secs,
    })
    .map_err(|e| {
        // Only known carriers become label values (the path is the caller's to choose).
        let label = callbacks::SUPPORTED
            .iter()
            .find(|c| **c == carrier)
            .copied()
            .unwrap_or("unknown");
        metrics::counter!("shipgate_callbacks_refused_total", "carrier" => label).increment(1);
        match e {
            CallbackError::UnknownCarrier(_) => ApiError::NotFound(e.to_string()),
            CallbackError::NotConfigured(_)
            | CallbackError::Unauthorized(_)
            | CallbackError::Stale(_) => ApiError::CallbackUnauthorized(e.to_string()),
            CallbackError::Invalid(m) => ApiError::InvalidRequest(m),
        }
    })?;
    let db = tracking.db();
    let mut answer = PushAnswer {
        status: 1,
        accepted: 0,
        duplicates: 0,
        unknown: 0,
    };
    // A delivery id recorded before is a replay: its events are the stored ones (deduplicated
    // by their key), so taking it again changes nothing, and when every delivery of the push was
    // seen before, the push is refused as a replay.
    let total = deliveries.len();
    let mut replayed = 0;
    for d in deliveries {
        match tracking.row_for_push(carrier, &d.number).await? {
            Some(row) => {
                let events = d.update.events.len() as u64
                    + d.update
                        .last_mile
                        .as_ref()
                        .map_or(0, |l| l.events.len() as u64);
                let got = tracking
                    .ingest(&row, carrier, d.update, Some((carrier, &d.id)))
                    .await?;
                replayed += usize::from(got.replayed);
                answer.accepted += got.new_events;
                answer.duplicates += events - got.new_events;
            }
            None => {
                answer.unknown += 1;
                tracing::info!(carrier, number = %d.number, "push for a number shipgate does not know");
                let done = db
                    .write(crate::store::Db::record_receipt(
                        carrier,
                        &d.id,
                        now_millis(),
                    ))
                    .await?;
                replayed += usize::from(done.rows_affected() == 0);
            }
        }
    }
    if replayed == total {
        return Err(ApiError::CallbackReplayed(format!(
            "delivery already received from {carrier}"
        )));
    }
    metrics::counter!("shipgate_callback_events_total", "carrier" => carrier.to_owned())
        .increment(answer.accepted);
    Ok(answer)
}
