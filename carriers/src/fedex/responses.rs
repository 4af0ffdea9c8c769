//! FedEx answers, read into our model.

use crate::http::RawResponse;
use crate::tracking::{localize, zone_for, zone_name};
use crate::{CarrierError, Charge, Created, Label, LabelFormat, TrackingEvent, TrackingStatus};
use base64::Engine;
use serde::Deserialize;

#[derive(Deserialize)]
struct FedexShipResponse {
    output: FedexShipOutput,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FedexShipOutput {
    transaction_shipments: Vec<FedexTransactionShipment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FedexTransactionShipment {
    master_tracking_number: Option<String>,
    #[serde(default)]
    shipment_documents: Vec<FedexDocument>,
    #[serde(default)]
    piece_responses: Vec<FedexPiece>,
    completed_shipment_detail: Option<FedexCompletedDetail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FedexPiece {
    tracking_number: Option<String>,
    master_tracking_number: Option<String>,
    #[serde(default)]
    package_documents: Vec<FedexDocument>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FedexDocument {
    content_type: Option<String>,
    doc_type: Option<String>,
    encoded_label: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FedexCompletedDetail {
    shipment_rating: Option<FedexRating>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FedexRating {
    #[serde(default)]
    shipment_rate_details: Vec<FedexRateDetail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FedexRateDetail {
    total_net_charge: Option<serde_json::Number>,
    currency: Option<String>,
}

fn bad(msg: impl std::fmt::Display) -> CarrierError {
    CarrierError::BadResponse(format!("fedex: {msg}"))
}

fn label(doc: &FedexDocument) -> Option<Result<Label, CarrierError>> {
    let encoded = doc.encoded_label.as_deref()?;
    let format = doc
        .doc_type
        .as_deref()
        .and_then(LabelFormat::parse)
        .unwrap_or(LabelFormat::Pdf);
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map(|content| Label { format, content })
            .map_err(|e| bad(format!("label is not base64: {e}"))),
    )
}

pub fn created(res: &RawResponse) -> Result<Created, CarrierError> {
    let body: FedexShipResponse = res.json(super::ID)?;
    let shipment = body
        .output
        .transaction_shipments
        .into_iter()
        .next()
        .ok_or_else(|| bad("no transactionShipments in the answer"))?;
    let first_piece = shipment.piece_responses.first();
    let tracking = first_piece
        .and_then(|p| p.tracking_number.clone())
        .or_else(|| shipment.master_tracking_number.clone())
        .ok_or_else(|| bad("no tracking number in the answer"))?;
    let master = shipment
        .master_tracking_number
        .clone()
        .or_else(|| first_piece.and_then(|p| p.master_tracking_number.clone()))
        .unwrap_or_else(|| tracking.clone());
    // The shipment-level label covers every piece; otherwise the first piece's label.
    let label_doc = shipment
        .shipment_documents
        .iter()
        .find(|d| d.content_type.as_deref() == Some("LABEL") && d.encoded_label.is_some())
        .or_else(|| {
            shipment
                .piece_responses
                .iter()
                .flat_map(|p| &p.package_documents)
                .find(|d| d.encoded_label.is_some())
        });
    let label = label_doc.and_then(label).transpose()?;
    let charge = shipment
        .completed_shipment_detail
        .and_then(|d| d.shipment_rating)
        .and_then(|r| r.shipment_rate_details.into_iter().next())
        .and_then(|d| {
            let currency = d.currency?;
            Some(Charge {
                amount: crate::money::text(
                    crate::money::from_json(&d.total_net_charge?)?,
                    &currency,
                ),
                currency,
            })
        });
    Ok(Created {
        charge,
        label,
        ..Created::new(master, tracking)
    })
}

#[derive(Deserialize)]
struct FedexErrorBody {
    #[serde(default)]
    errors: Vec<FedexError>,
}

#[derive(Deserialize)]
struct FedexError {
    code: Option<String>,
    message: Option<String>,
}

pub fn error(res: &RawResponse) -> Option<(String, String)> {
    let body: FedexErrorBody = serde_json::from_slice(&res.body).ok()?;
    let first = body.errors.into_iter().next()?;
    Some((
        first.code.unwrap_or_default(),
        first.message.unwrap_or_default(),
    ))
}

#[derive(Deserialize)]
struct FedexTrackResponse {
    output: FedexTrackOutput,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FedexTrackOutput {
    #[serde(default)]
    complete_track_results: Vec<FedexCompleteTrackResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FedexCompleteTrackResult {
    tracking_number: Option<String>,
    #[serde(default)]
    track_results: Vec<FedexTrackResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FedexTrackResult {
    #[serde(default)]
    scan_events: Vec<FedexScanEvent>,
    error: Option<FedexError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FedexScanEvent {
    date: String,
    event_type: Option<String>,
    event_description: Option<String>,
    scan_location: Option<FedexLocation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FedexLocation {
    #[serde(default)]
    street_lines: Vec<String>,
    city: Option<String>,
    state_or_province_code: Option<String>,
    postal_code: Option<String>,
    country_code: Option<String>,
}

/// FedEx event types -> normalized statuses.
pub fn status(event_type: &str) -> TrackingStatus {
    use TrackingStatus::*;
    match event_type {
        "OC" => InfoReceived,
        "PU" => PickedUp,
        "AA" | "AC" | "AD" | "AE" | "AF" | "AO" | "AP" | "AR" | "AX" | "CC" | "CP" | "DP"
        | "DR" | "DS" | "EA" | "ED" | "EO" | "EP" | "FD" | "IT" | "IX" | "LO" | "PF" | "PL"
        | "PM" | "PX" | "RC" | "RR" | "SF" | "TR" | "CH" => InTransit,
        "OD" => OutForDelivery,
        "HL" | "HP" => AvailableForPickup,
        "DE" | "DY" => DeliveryFailed,
        "DL" => Delivered,
        "SE" | "CD" | "DD" | "HO" => Exception,
        "RS" | "RP" => Returning,
        "CA" => Cancelled,
        _ => Unknown,
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.trim().is_empty())
}

fn event(e: FedexScanEvent) -> Result<TrackingEvent, CarrierError> {
    let loc = e.scan_location;
    let (city, state, postal_code, country, address) = match loc {
        Some(l) => (
            non_empty(l.city),
            non_empty(l.state_or_province_code),
            non_empty(l.postal_code),
            non_empty(l.country_code),
            non_empty(Some(l.street_lines.join(", "))),
        ),
        None => (None, None, None, None, None),
    };
    let zone = zone_for(country.as_deref(), state.as_deref());
    // Usually ISO 8601 with offset; some events come without one (local time at the scan).
    let (occurred_at, timezone) = match chrono::DateTime::parse_from_rfc3339(&e.date) {
        Ok(at) => (at, zone_name(at, zone)),
        Err(_) => {
            let local = chrono::NaiveDateTime::parse_from_str(&e.date, "%Y-%m-%dT%H:%M:%S")
                .map_err(|err| bad(format!("event date `{}`: {err}", e.date)))?;
            localize(local, zone)
        }
    };
    let code = e.event_type.unwrap_or_default();
    Ok(TrackingEvent {
        status: status(&code),
        status_code: code,
        description: e.event_description.unwrap_or_default(),
        occurred_at,
        timezone,
        address,
        city,
        state,
        postal_code,
        country,
    })
}

pub fn tracking(res: &RawResponse) -> Result<Vec<TrackingEvent>, CarrierError> {
    let body: FedexTrackResponse = res.json(super::ID)?;
    let result = body
        .output
        .complete_track_results
        .into_iter()
        .flat_map(|r| r.track_results)
        .next()
        .ok_or_else(|| bad("no trackResults in the answer"))?;
    if let Some(err) = result.error
        && result.scan_events.is_empty()
    {
        return Err(CarrierError::Rejected {
            code: err.code.unwrap_or_default(),
            message: err.message.unwrap_or_default(),
        });
    }
    result.scan_events.into_iter().map(event).collect()
}

/// Track by References: the shipment our key was sent with, if FedEx has one.
pub fn lookup(res: &RawResponse) -> Result<Option<Created>, CarrierError> {
    let body: FedexTrackResponse = res.json(super::ID)?;
    Ok(body
        .output
        .complete_track_results
        .into_iter()
        .find(|r| r.track_results.iter().all(|t| t.error.is_none()))
        .and_then(|r| r.tracking_number)
        .map(|n| Created::new(n.clone(), n)))
}

/// A tracking push in the Track API's result shape (what FedEx's tracking webhook carries):
/// every tracking number in it with its scan events.
pub fn pushed(body: &[u8]) -> Result<Vec<(String, Vec<TrackingEvent>)>, CarrierError> {
    let body: FedexTrackResponse =
        serde_json::from_slice(body).map_err(|e| bad(format!("unreadable push: {e}")))?;
    body.output
        .complete_track_results
        .into_iter()
        .map(|r| {
            let number = r
                .tracking_number
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| bad("a pushed result has no trackingNumber"))?;
            let events = r
                .track_results
                .into_iter()
                .flat_map(|t| t.scan_events)
                .map(event)
                .collect::<Result<Vec<_>, _>>()?;
            Ok((number, events))
        })
        .collect()
}
