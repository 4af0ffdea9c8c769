//! UPS answers.

use crate::http::RawResponse;
use crate::tracking::{localize, zone_for};
use crate::{CarrierError, Charge, Created, Label, LabelFormat, TrackingEvent, TrackingStatus};
use base64::Engine;
use serde::Deserialize;

fn bad(msg: impl std::fmt::Display) -> CarrierError {
    CarrierError::BadResponse(format!("ups: {msg}"))
}

/// UPS sends one element as an object and several as an array.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            Self::One(t) => vec![t],
            Self::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpsShipResponse {
    shipment_response: UpsShipmentResponse,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpsShipmentResponse {
    shipment_results: UpsShipmentResults,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpsShipmentResults {
    shipment_identification_number: Option<String>,
    shipment_charges: Option<UpsShipmentCharges>,
    package_results: OneOrMany<UpsPackageResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpsShipmentCharges {
    total_charges: Option<UpsMoney>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpsMoney {
    currency_code: String,
    monetary_value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpsPackageResult {
    tracking_number: String,
    shipping_label: Option<UpsLabel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpsLabel {
    image_format: Option<UpsCode>,
    graphic_image: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpsCode {
    code: String,
}

pub fn created(res: &RawResponse) -> Result<Created, CarrierError> {
    let body: UpsShipResponse = res.json(super::ID)?;
    let results = body.shipment_response.shipment_results;
    let packages = results.package_results.into_vec();
    let first = packages
        .first()
        .ok_or_else(|| bad("no PackageResults in the answer"))?;
    let label = first
        .shipping_label
        .as_ref()
        .map(|l| {
            let format = l
                .image_format
                .as_ref()
                .and_then(|f| LabelFormat::parse(&f.code))
                .unwrap_or(LabelFormat::Gif);
            base64::engine::general_purpose::STANDARD
                .decode(l.graphic_image.trim())
                .map(|content| Label { format, content })
                .map_err(|e| bad(format!("label is not base64: {e}")))
        })
        .transpose()?;
    let tracking = first.tracking_number.clone();
    let waybill = results
        .shipment_identification_number
        .unwrap_or_else(|| tracking.clone());
    let charge = results
        .shipment_charges
        .and_then(|c| c.total_charges)
        .map(|m| Charge {
            amount: m.monetary_value,
            currency: m.currency_code,
        });
    Ok(Created {
        label,
        charge,
        ..Created::new(waybill, tracking)
    })
}

#[derive(Deserialize)]
struct UpsErrorBody {
    response: UpsErrors,
}

#[derive(Deserialize)]
struct UpsErrors {
    #[serde(default)]
    errors: Vec<UpsError>,
}

#[derive(Deserialize)]
struct UpsError {
    code: String,
    message: String,
}

pub fn error(res: &RawResponse) -> Option<(String, String)> {
    let body: UpsErrorBody = serde_json::from_slice(&res.body).ok()?;
    body.response
        .errors
        .into_iter()
        .next()
        .map(|e| (e.code, e.message))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpsTrackResponse {
    track_response: UpsTrack,
}

#[derive(Deserialize)]
struct UpsTrack {
    #[serde(default)]
    shipment: Vec<UpsTrackedShipment>,
}

#[derive(Deserialize)]
struct UpsTrackedShipment {
    #[serde(default)]
    package: Vec<UpsTrackedPackage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpsTrackedPackage {
    tracking_number: Option<String>,
    #[serde(default)]
    activity: Vec<UpsActivity>,
}

#[derive(Deserialize)]
struct UpsActivity {
    location: Option<UpsLocation>,
    status: UpsStatus,
    date: String,
    time: String,
}

#[derive(Deserialize)]
struct UpsLocation {
    address: Option<UpsAddress>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpsAddress {
    city: Option<String>,
    state_province: Option<String>,
    postal_code: Option<String>,
    country_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpsStatus {
    #[serde(rename = "type")]
    kind: Option<String>,
    description: Option<String>,
    code: Option<String>,
    status_code: Option<String>,
}

/// UPS status type (and, where the type is too coarse, the three-digit status code).
pub fn status(kind: &str, status_code: &str) -> TrackingStatus {
    use TrackingStatus::*;
    match (kind, status_code) {
        (_, "021") => OutForDelivery,
        (_, "017") => AvailableForPickup,
        (_, "022" | "023" | "024") => DeliveryFailed,
        (_, "007") => Cancelled,
        ("M" | "MV", _) => InfoReceived,
        ("P", _) => PickedUp,
        ("I", _) => InTransit,
        ("O", _) => OutForDelivery,
        ("D", _) => Delivered,
        ("X", _) => Exception,
        ("RS", _) => Returning,
        ("DO" | "DD" | "W", _) => InTransit,
        ("NA", _) => Exception,
        _ => Unknown,
    }
}

fn events(package: UpsTrackedPackage) -> Result<Vec<TrackingEvent>, CarrierError> {
    package
        .activity
        .into_iter()
        .map(|a| {
            let local = chrono::NaiveDateTime::parse_from_str(
                &format!("{}{}", a.date, a.time),
                "%Y%m%d%H%M%S",
            )
            .map_err(|e| bad(format!("activity time `{} {}`: {e}", a.date, a.time)))?;
            let address = a.location.and_then(|l| l.address);
            let (city, state, postal_code, country) = match address {
                Some(ad) => (ad.city, ad.state_province, ad.postal_code, ad.country_code),
                None => (None, None, None, None),
            };
            let (occurred_at, timezone) =
                localize(local, zone_for(country.as_deref(), state.as_deref()));
            let s = a.status;
            Ok(TrackingEvent {
                status: status(
                    s.kind.as_deref().unwrap_or(""),
                    s.status_code.as_deref().unwrap_or(""),
                ),
                status_code: s.code.unwrap_or_default(),
                description: s.description.unwrap_or_default().trim().to_owned(),
                occurred_at,
                timezone,
                address: None,
                city,
                state,
                postal_code,
                country,
            })
        })
        .collect()
}

pub fn tracking(res: &RawResponse) -> Result<Vec<TrackingEvent>, CarrierError> {
    let body: UpsTrackResponse = res.json(super::ID)?;
    let package = body
        .track_response
        .shipment
        .into_iter()
        .flat_map(|s| s.package)
        .next()
        .ok_or_else(|| bad("no package in the tracking answer"))?;
    events(package)
}

/// Track by Reference: the first package shipped under our key.
pub fn lookup(res: &RawResponse) -> Result<Option<Created>, CarrierError> {
    let body: UpsTrackResponse = res.json(super::ID)?;
    Ok(body
        .track_response
        .shipment
        .into_iter()
        .flat_map(|s| s.package)
        .find_map(|p| p.tracking_number)
        .map(|n| Created::new(n.clone(), n)))
}
