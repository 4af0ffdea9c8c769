//! MyDHL API answers.

use crate::http::RawResponse;
use crate::tracking::{localize, zone_for};
use crate::{CarrierError, Created, Label, LabelFormat, TrackingEvent, TrackingStatus};
use base64::Engine;
use serde::Deserialize;

fn bad(msg: impl std::fmt::Display) -> CarrierError {
    CarrierError::BadResponse(format!("dhl_express: {msg}"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DhlShipmentResponse {
    shipment_tracking_number: String,
    #[serde(default)]
    documents: Vec<DhlDocument>,
    #[serde(default)]
    shipment_charges: Vec<DhlCharge>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DhlDocument {
    type_code: String,
    image_format: Option<String>,
    content: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DhlCharge {
    currency_type: Option<String>,
    price_currency: Option<String>,
    price: Option<serde_json::Number>,
}

pub fn created(res: &RawResponse) -> Result<Created, CarrierError> {
    let body: DhlShipmentResponse = res.json(super::ID)?;
    let label = body
        .documents
        .iter()
        .find(|d| d.type_code == "label")
        .map(|d| {
            let content = base64::engine::general_purpose::STANDARD
                .decode(d.content.trim())
                .map_err(|e| bad(format!("label is not base64: {e}")))?;
            let format = d
                .image_format
                .as_deref()
                .and_then(LabelFormat::parse)
                .unwrap_or(LabelFormat::Pdf);
            Ok::<_, CarrierError>(Label { format, content })
        })
        .transpose()?;
    // The billing-currency charge when DHL quotes several.
    let charge = body
        .shipment_charges
        .iter()
        .find(|c| c.currency_type.as_deref() == Some("BILLC"))
        .or(body.shipment_charges.first())
        .and_then(|c| {
            let currency = c.price_currency.clone()?;
            Some(crate::Charge {
                amount: crate::money::text(crate::money::from_json(c.price.as_ref()?)?, &currency),
                currency,
            })
        });
    let number = body.shipment_tracking_number;
    Ok(Created {
        label,
        charge,
        ..Created::new(number.clone(), number)
    })
}

#[derive(Deserialize)]
struct DhlErrorBody {
    /// A string ("400") in MyDHL answers.
    status: Option<serde_json::Value>,
    title: Option<String>,
    detail: Option<String>,
}

/// `detail` reads `7008: The requested ...`: the number is DHL's error code.
pub fn error(res: &RawResponse) -> Option<(String, String)> {
    let body: DhlErrorBody = serde_json::from_slice(&res.body).ok()?;
    let detail = body.detail.or(body.title)?;
    Some(match detail.split_once(':') {
        Some((code, msg))
            if !code.is_empty() && code.trim().chars().all(|c| c.is_ascii_digit()) =>
        {
            (code.trim().to_owned(), msg.trim().to_owned())
        }
        _ => {
            let status = match body.status {
                Some(serde_json::Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => res.status.to_string(),
            };
            (status, detail)
        }
    })
}

#[derive(Deserialize)]
struct DhlTrackResponse {
    #[serde(default)]
    shipments: Vec<DhlTrackedShipment>,
}

#[derive(Deserialize)]
struct DhlTrackedShipment {
    #[serde(default)]
    events: Vec<DhlEvent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DhlEvent {
    date: String,
    time: String,
    type_code: Option<String>,
    description: Option<String>,
    #[serde(default)]
    service_area: Vec<DhlServiceArea>,
}

#[derive(Deserialize)]
struct DhlServiceArea {
    description: Option<String>,
}

/// MyDHL checkpoint codes -> normalized statuses.
pub fn status(code: &str) -> TrackingStatus {
    use TrackingStatus::*;
    match code {
        "SD" | "PD" => InfoReceived,
        "PU" => PickedUp,
        "PL" | "DF" | "AF" | "AR" | "CR" | "RR" | "CC" | "TR" | "TP" | "IC" | "HP" => InTransit,
        "WC" => OutForDelivery,
        "BA" | "UD" => AvailableForPickup,
        "NH" | "CA" | "CM" | "MS" => DeliveryFailed,
        "OK" | "DD" => Delivered,
        "OH" | "CD" | "DS" | "SS" => Exception,
        "RT" => Returning,
        "RD" => Returned,
        _ => Unknown,
    }
}

pub fn tracking(res: &RawResponse) -> Result<Vec<TrackingEvent>, CarrierError> {
    let body: DhlTrackResponse = res.json(super::ID)?;
    let shipment = body
        .shipments
        .into_iter()
        .next()
        .ok_or_else(|| bad("no shipments in the answer"))?;
    let mut events: Vec<TrackingEvent> = shipment
        .events
        .into_iter()
        .map(|e| {
            let local = chrono::NaiveDateTime::parse_from_str(
                &format!("{} {}", e.date, e.time),
                "%Y-%m-%d %H:%M:%S",
            )
            .map_err(|err| bad(format!("event time `{} {}`: {err}", e.date, e.time)))?;
            // Service areas read `SYDNEY-AU`: a city and the country code.
            let area = e
                .service_area
                .into_iter()
                .next()
                .and_then(|a| a.description);
            let (city, country) = match area.as_deref().and_then(|a| a.rsplit_once('-')) {
                Some((city, cc)) if cc.len() == 2 => (Some(city.to_owned()), Some(cc.to_owned())),
                _ => (area.clone(), None),
            };
            let (occurred_at, timezone) = localize(local, zone_for(country.as_deref(), None));
            let code = e.type_code.unwrap_or_default();
            Ok(TrackingEvent {
                status: status(&code),
                status_code: code,
                description: e.description.unwrap_or_default(),
                occurred_at,
                timezone,
                address: area,
                city,
                state: None,
                postal_code: None,
                country,
            })
        })
        .collect::<Result<_, CarrierError>>()?;
    events.sort_by_key(|e| std::cmp::Reverse(e.occurred_at));
    Ok(events)
}
