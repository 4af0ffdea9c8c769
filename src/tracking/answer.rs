//! The ready-to-send tracking answer of a waybill: its visible events (newest first, the
//! creation included), the derived status, the last mile, and whether polling stopped.

use crate::store::tracking::{StoredEvent, TrackRow};
use carriers::tracking::{derive_status, zone_for, zone_name};
use carriers::{TrackingEvent, TrackingStatus};
use serde::Serialize;

/// The source name of the gateway's own events (the creation of the waybill).
const GATEWAY: &str = "shipgate";

/// True for events platform rules never show or push: USPS pre-advice (label created,
/// pre-shipment information) when USPS carries the last mile. They stay hidden after the
/// acceptance scan too. The outbox triggers (`migrations/*/…_webhooks.sql`) apply the same rule
/// to pushes, in SQL.
pub fn hidden(source: &str, event: &TrackingEvent) -> bool {
    source.eq_ignore_ascii_case(carriers::usps::ID.as_str())
        && carriers::usps::is_pre_advice(&event.status_code)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    status: u8,
    waybill_number: &'a str,
    reference_number: &'a str,
    carrier: &'a str,
    tracking_status: Option<&'static str>,
    last_mile_carrier: Option<&'a str>,
    last_mile_tracking_number: Option<&'a str>,
    /// Present (true) when the parcel is past `tracking.polling.max_age_days` without a final
    /// status: its carrier is no longer asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    polling_stopped: Option<bool>,
    events: Vec<EventAnswer<'a>>,
}

/// One event as answers and pushes show it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventAnswer<'a> {
    status_code: &'a str,
    tracking_status: &'static str,
    description: &'a str,
    occurred_at: String,
    occurred_at_utc: String,
    timezone: Option<&'a str>,
    address: Option<&'a str>,
    city: Option<&'a str>,
    state: Option<&'a str>,
    postal_code: Option<&'a str>,
    country: Option<&'a str>,
    /// Who reported it: the carrier, the last-mile carrier, or `shipgate` for the creation.
    carrier: &'a str,
}

impl<'a> EventAnswer<'a> {
    pub fn new(source: &'a str, e: &'a TrackingEvent) -> Self {
        Self {
            status_code: &e.status_code,
            tracking_status: e.status.as_str(),
            description: &e.description,
            occurred_at: e.occurred_at.to_rfc3339(),
            occurred_at_utc: e
                .occurred_at
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            timezone: e.timezone.as_deref(),
            address: e.address.as_deref(),
            city: e.city.as_deref(),
            state: e.state.as_deref(),
            postal_code: e.postal_code.as_deref(),
            country: e.country.as_deref(),
            carrier: source,
        }
    }
}

/// The creation of the waybill: the first event of every timeline, at the shipper's place.
fn created_event(row: &TrackRow) -> Option<TrackingEvent> {
    let created = chrono::DateTime::parse_from_rfc3339(&row.created_at).ok()?;
    let shipper: serde_json::Value = serde_json::from_str(&row.request_json)
        .ok()
        .and_then(|v: serde_json::Value| v.get("shipper").cloned())
        .unwrap_or_default();
    let field = |k: &str| shipper.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let (country, state) = (field("country"), field("state"));
    let zone = zone_for(country.as_deref(), state.as_deref());
    let occurred_at = match zone {
        Some(tz) => created.with_timezone(&tz).fixed_offset(),
        None => created,
    };
    Some(TrackingEvent {
        status_code: "CREATED".into(),
        status: TrackingStatus::InfoReceived,
        description: "Shipment information received".into(),
        timezone: zone_name(occurred_at, zone),
        occurred_at,
        address: None,
        city: field("city"),
        state,
        postal_code: field("postalCode"),
        country,
    })
}

/// The answer's JSON and the derived status.
pub(super) fn render(
    row: &TrackRow,
    stored: &[StoredEvent],
    polling_max_age_ms: Option<i64>,
) -> serde_json::Result<(Vec<u8>, Option<TrackingStatus>)> {
    let created = created_event(row);
    let mut visible: Vec<(&str, &TrackingEvent)> = stored
        .iter()
        .filter(|e| !hidden(&e.source, &e.event))
        .map(|e| (e.source.as_str(), &e.event))
        .collect();
    if let Some(c) = &created {
        visible.push((GATEWAY, c));
    }
    // Newest first; the database already sorts, the creation event goes where it belongs.
    visible.sort_by_key(|(_, e)| std::cmp::Reverse(e.occurred_at));
    // The creation counts only while no carrier has said anything: a carrier's pickup dated
    // before the gateway's record (clocks, back-dated scans) still moves the status on.
    let status = if row.cancelled {
        Some(TrackingStatus::Cancelled)
    } else {
        derive_status(
            visible
                .iter()
                .filter(|(source, _)| *source != GATEWAY)
                .map(|(_, e)| (&e.occurred_at, e.status)),
        )
        .or(created.as_ref().map(|_| TrackingStatus::InfoReceived))
    };
    let events = visible
        .into_iter()
        .map(|(source, e)| EventAnswer::new(source, e))
        .collect::<Vec<_>>();
    let polling_stopped = polling_max_age_ms
        .zip(chrono::DateTime::parse_from_rfc3339(&row.created_at).ok())
        .is_some_and(|(max_age, created)| {
            crate::store::now_millis() - created.timestamp_millis() > max_age
        })
        && !status.is_some_and(TrackingStatus::is_terminal);
    let body = serde_json::to_vec(&Answer {
        status: 1,
        waybill_number: &row.waybill_number,
        reference_number: &row.reference_number,
        carrier: &row.carrier,
        tracking_status: status.map(TrackingStatus::as_str),
        last_mile_carrier: row.last_mile_carrier.as_deref(),
        last_mile_tracking_number: row.last_mile_tracking_number.as_deref(),
        polling_stopped: polling_stopped.then_some(true),
        events,
    })?;
    Ok((body, status))
}
