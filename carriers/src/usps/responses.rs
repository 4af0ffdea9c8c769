//! USPS answers, including the multipart label answer.

use crate::http::{RawResponse, Token};
use crate::tracking::{zone_for, zone_name};
use crate::{CarrierError, Charge, Created, Label, LabelFormat, TrackingEvent, TrackingStatus};
use base64::Engine;
use futures_util::FutureExt;
use serde::Deserialize;
use std::time::{Duration, Instant};

fn bad(msg: impl std::fmt::Display) -> CarrierError {
    CarrierError::BadResponse(format!("usps: {msg}"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UspsLabelMetadata {
    tracking_number: String,
    postage: Option<serde_json::Number>,
}

/// The JSON form of the label answer (`Accept: application/vnd.usps.labels+json`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UspsLabelJson {
    label_metadata: UspsLabelMetadata,
    label_image: Option<String>,
}

fn boundary(res: &RawResponse) -> Option<String> {
    if let Some(b) = res
        .content_type
        .as_deref()
        .and_then(|ct| multer::parse_boundary(ct).ok())
    {
        return Some(b);
    }
    // Without a header (a stored answer), the first line names the boundary.
    let first = res.body.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(first).ok()?.trim_end_matches('\r');
    line.strip_prefix("--").map(str::to_owned)
}

/// The parts of a multipart body by name. The body is in memory, so the parser never waits.
fn parts(res: &RawResponse) -> Result<Vec<(String, Vec<u8>)>, CarrierError> {
    let boundary = boundary(res).ok_or_else(|| bad("multipart answer without a boundary"))?;
    // RFC 2046 wants CRLF; stored answers may have bare LF line ends.
    let body = if res.body.windows(2).any(|w| w == b"\r\n") {
        res.body.clone()
    } else {
        bytes::Bytes::from(String::from_utf8_lossy(&res.body).replace('\n', "\r\n"))
    };
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut out = Vec::new();
    loop {
        let next = multipart
            .next_field()
            .now_or_never()
            .ok_or_else(|| bad("multipart body incomplete"))?
            .map_err(|e| bad(format!("multipart: {e}")))?;
        let Some(field) = next else { break };
        let name = field.name().unwrap_or_default().to_owned();
        let data = field
            .bytes()
            .now_or_never()
            .ok_or_else(|| bad("multipart part incomplete"))?
            .map_err(|e| bad(format!("multipart part {name}: {e}")))?;
        out.push((name, data.to_vec()));
    }
    Ok(out)
}

fn decode_pdf(text: &[u8]) -> Result<Label, CarrierError> {
    let cleaned: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let content = base64::engine::general_purpose::STANDARD
        .decode(cleaned)
        .map_err(|e| bad(format!("labelImage is not base64: {e}")))?;
    Ok(Label {
        format: LabelFormat::Pdf,
        content,
    })
}

fn created_from(meta: UspsLabelMetadata, label: Option<Label>) -> Created {
    let charge = meta
        .postage
        .as_ref()
        .and_then(crate::money::from_json)
        .map(|p| Charge {
            amount: crate::money::text(p, "USD"),
            currency: "USD".into(),
        });
    Created {
        label,
        charge,
        ..Created::new(meta.tracking_number.clone(), meta.tracking_number)
    }
}

pub fn created(res: &RawResponse) -> Result<Created, CarrierError> {
    if res.body.first() == Some(&b'{') {
        let body: UspsLabelJson = res.json(super::ID)?;
        let label = body
            .label_image
            .map(|i| decode_pdf(i.as_bytes()))
            .transpose()?;
        return Ok(created_from(body.label_metadata, label));
    }
    let parts = parts(res)?;
    let meta = parts
        .iter()
        .find(|(name, _)| name == "labelMetadata")
        .ok_or_else(|| bad("no labelMetadata part"))?;
    let meta: UspsLabelMetadata =
        serde_json::from_slice(&meta.1).map_err(|e| bad(format!("labelMetadata: {e}")))?;
    let label = parts
        .iter()
        .find(|(name, _)| name == "labelImage")
        .map(|(_, data)| decode_pdf(data))
        .transpose()?;
    Ok(created_from(meta, label))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UspsPaymentToken {
    payment_authorization_token: String,
}

pub fn payment_token(res: &RawResponse) -> Result<Token, CarrierError> {
    let body: UspsPaymentToken = res.json(super::ID)?;
    Ok(Token {
        value: body.payment_authorization_token,
        // Valid for 8 hours; taken for one to stay well inside it.
        expires_at: Instant::now() + Duration::from_secs(3600),
    })
}

#[derive(Deserialize)]
struct UspsErrorBody {
    error: UspsError,
}

#[derive(Deserialize)]
struct UspsError {
    code: Option<String>,
    message: Option<String>,
    #[serde(default)]
    errors: Vec<UspsErrorDetail>,
}

#[derive(Deserialize)]
struct UspsErrorDetail {
    title: Option<String>,
    detail: Option<String>,
}

pub fn error(res: &RawResponse) -> Option<(String, String)> {
    let body: UspsErrorBody = serde_json::from_slice(&res.body).ok()?;
    let e = body.error;
    let first = e.errors.into_iter().next();
    let code = first
        .as_ref()
        .and_then(|d| d.title.clone())
        .or(e.code)
        .unwrap_or_default();
    let message = first
        .and_then(|d| d.detail)
        .or(e.message)
        .unwrap_or_default();
    Some((code, message))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UspsTracking {
    #[serde(default)]
    tracking_events: Vec<UspsEvent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UspsEvent {
    event_type: Option<String>,
    event_code: Option<String>,
    event_timestamp: Option<String>,
    #[serde(rename = "GMTTimestamp")]
    gmt_timestamp: Option<String>,
    #[serde(rename = "GMTOffset")]
    gmt_offset: Option<String>,
    event_city: Option<String>,
    event_state: Option<String>,
    #[serde(rename = "eventZIP")]
    event_zip: Option<String>,
    event_country: Option<String>,
}

/// USPS event codes -> normalized statuses. `GX`/`MA` are pre-advice (label created, shipping
/// information received), never a physical scan.
pub fn status(code: &str) -> TrackingStatus {
    use TrackingStatus::*;
    match code {
        "GX" | "MA" | "80" | "81" => InfoReceived,
        "03" | "OA" | "SA" => PickedUp,
        "07" | "10" | "A1" | "T1" | "SF" | "TL" | "L1" | "U1" | "NT" | "PC" | "OD" => InTransit,
        "OF" => OutForDelivery,
        "16" | "52" => AvailableForPickup,
        "02" | "53" | "54" | "55" | "56" => DeliveryFailed,
        "01" | "17" | "43" => Delivered,
        "04" | "05" | "06" | "44" | "51" => Exception,
        "09" | "21" | "28" | "29" => Returning,
        "31" | "32" => Returned,
        _ => Unknown,
    }
}

/// True for USPS pre-advice events, which platform rules keep from being shown or pushed.
pub fn is_pre_advice(code: &str) -> bool {
    matches!(code, "GX" | "MA" | "80" | "81")
}

pub fn tracking(res: &RawResponse) -> Result<Vec<TrackingEvent>, CarrierError> {
    let body: UspsTracking = res.json(super::ID)?;
    body.tracking_events
        .into_iter()
        .map(|e| {
            let local = e.event_timestamp.clone().unwrap_or_default();
            // Local time plus the stated GMT offset; else the GMT time.
            let occurred_at = match e.gmt_offset.as_deref() {
                Some(off) if !local.is_empty() => {
                    chrono::DateTime::parse_from_rfc3339(&format!("{local}{off}")).ok()
                }
                _ => None,
            }
            .or_else(|| {
                e.gmt_timestamp
                    .as_deref()
                    .and_then(|g| chrono::DateTime::parse_from_rfc3339(g).ok())
            })
            .ok_or_else(|| bad(format!("event time `{local}` without a usable offset")))?;
            let country = e
                .event_country
                .clone()
                .filter(|c| !c.is_empty())
                .or(Some("US".into()));
            let zone = zone_for(country.as_deref(), e.event_state.as_deref());
            let code = e.event_code.unwrap_or_default();
            Ok(TrackingEvent {
                status: status(&code),
                status_code: code,
                description: e.event_type.unwrap_or_default(),
                timezone: zone_name(occurred_at, zone),
                occurred_at,
                address: None,
                city: e.event_city,
                state: e.event_state,
                postal_code: e.event_zip,
                country,
            })
        })
        .collect()
}
