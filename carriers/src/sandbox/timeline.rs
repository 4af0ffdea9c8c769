//! The sandbox's parcels move: a fixed, realistic journey from Shenzhen to a US consignee with a
//! USPS last mile, laid out in hours after creation and read against a clock that configuration
//! can speed up (`clock_speed` 3600 turns each journey hour into one second).

use crate::tracking::{LastMile, TrackingEvent, TrackingStatus, TrackingUpdate, zone_for};
use chrono::{DateTime, Duration, FixedOffset, Utc};

struct Step {
    hours: f64,
    code: &'static str,
    status: TrackingStatus,
    description: &'static str,
    place: Place,
}

#[derive(Clone, Copy)]
struct Place {
    city: &'static str,
    state: Option<&'static str>,
    postal_code: &'static str,
    country: &'static str,
}

const SHENZHEN: Place = Place {
    city: "Shenzhen",
    state: Some("GD"),
    postal_code: "518000",
    country: "CN",
};
const HONG_KONG: Place = Place {
    city: "Hong Kong",
    state: None,
    postal_code: "999077",
    country: "HK",
};
const LOS_ANGELES: Place = Place {
    city: "Los Angeles",
    state: Some("CA"),
    postal_code: "90045",
    country: "US",
};
const CITY_OF_INDUSTRY: Place = Place {
    city: "City of Industry",
    state: Some("CA"),
    postal_code: "91715",
    country: "US",
};
const SANTA_MONICA: Place = Place {
    city: "Santa Monica",
    state: Some("CA"),
    postal_code: "90401",
    country: "US",
};

use TrackingStatus::*;

/// The line-haul carrier's own scans (the sandbox). Creation itself is the gateway's event.
const LINE_HAUL: &[Step] = &[
    step(3.0, "PU", PickedUp, "Picked up by courier", SHENZHEN),
    step(
        9.0,
        "DP",
        InTransit,
        "Departed origin sort facility",
        SHENZHEN,
    ),
    step(14.0, "LD", InTransit, "Line-haul departed", HONG_KONG),
    step(
        30.0,
        "LA",
        InTransit,
        "Line-haul arrived at destination",
        LOS_ANGELES,
    ),
    step(
        36.0,
        "CC",
        InTransit,
        "Cleared by import customs",
        LOS_ANGELES,
    ),
    step(
        37.0,
        "LM",
        InTransit,
        "Handed over to last-mile carrier USPS",
        LOS_ANGELES,
    ),
];

/// Hours after creation when the last-mile carrier becomes known.
const LAST_MILE_AT: f64 = 37.0;

/// USPS's events for the same parcel, pre-advice (`GX`, `MA`) first, as USPS sends them.
const USPS: &[Step] = &[
    step(
        37.2,
        "GX",
        InfoReceived,
        "Shipping Label Created, USPS Awaiting Item",
        CITY_OF_INDUSTRY,
    ),
    step(
        37.5,
        "MA",
        InfoReceived,
        "Pre-Shipment Info Sent to USPS",
        CITY_OF_INDUSTRY,
    ),
    step(
        40.0,
        "03",
        PickedUp,
        "USPS in possession of item",
        CITY_OF_INDUSTRY,
    ),
    step(
        48.0,
        "10",
        InTransit,
        "Processed through USPS Regional Facility",
        LOS_ANGELES,
    ),
    step(
        66.0,
        "07",
        InTransit,
        "Arrived at Post Office",
        SANTA_MONICA,
    ),
    step(68.0, "OF", OutForDelivery, "Out for Delivery", SANTA_MONICA),
    step(
        73.0,
        "01",
        Delivered,
        "Delivered, In/At Mailbox",
        SANTA_MONICA,
    ),
];

/// Hours from creation to delivery.
pub const JOURNEY_HOURS: f64 = 73.0;

const fn step(
    hours: f64,
    code: &'static str,
    status: TrackingStatus,
    description: &'static str,
    place: Place,
) -> Step {
    Step {
        hours,
        code,
        status,
        description,
        place,
    }
}

/// What has happened to `number` by `now`, for a parcel created at `created_at`.
pub fn progress(
    number: &str,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
    clock_speed: f64,
) -> TrackingUpdate {
    let clock_speed = if clock_speed > 0.0 { clock_speed } else { 1.0 };
    let elapsed_hours =
        (now - created_at).num_milliseconds().max(0) as f64 * clock_speed / 3_600_000.0;
    let events = |steps: &[Step]| -> Vec<TrackingEvent> {
        steps
            .iter()
            .filter(|s| s.hours <= elapsed_hours)
            .map(|s| event(s, created_at, clock_speed))
            .collect()
    };
    TrackingUpdate {
        events: events(LINE_HAUL),
        last_mile: (elapsed_hours >= LAST_MILE_AT).then(|| LastMile {
            carrier: "United States Postal Service".into(),
            tracking_number: usps_number(number),
            events: events(USPS),
        }),
    }
}

/// A step happens when the sped-up clock reaches it: creation + its hours / `clock_speed`, in
/// the scan's own zone (so a demo never shows an event from the future).
fn event(s: &Step, created_at: DateTime<Utc>, clock_speed: f64) -> TrackingEvent {
    let at = created_at + Duration::milliseconds((s.hours * 3_600_000.0 / clock_speed) as i64);
    let zone = zone_for(Some(s.place.country), s.place.state);
    let occurred_at: DateTime<FixedOffset> = match zone {
        Some(tz) => at.with_timezone(&tz).fixed_offset(),
        None => at.fixed_offset(),
    };
    TrackingEvent {
        status_code: s.code.into(),
        status: s.status,
        description: s.description.into(),
        occurred_at,
        timezone: zone.map(|z| z.name().to_owned()),
        address: None,
        city: Some(s.place.city.into()),
        state: s.place.state.map(Into::into),
        postal_code: Some(s.place.postal_code.into()),
        country: Some(s.place.country.into()),
    }
}

/// A USPS-shaped 22-digit tracking number (`9400` + 18 digits) derived from the waybill number,
/// so repeated polls name the same last-mile parcel.
pub fn usps_number(number: &str) -> String {
    // FNV-1a: stable across runs and platforms.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in number.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("9400{:018}", hash % 1_000_000_000_000_000_000)
}

/// The normalized status of a sandbox or sandbox-USPS event code.
pub fn status_of(code: &str) -> TrackingStatus {
    LINE_HAUL
        .iter()
        .chain(USPS)
        .find(|s| s.code == code)
        .map(|s| s.status)
        .unwrap_or(TrackingStatus::Unknown)
}
