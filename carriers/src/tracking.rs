//! Normalized tracking: statuses, events, and local times placed in their time zone.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The closed list of normalized statuses (DESIGN.md); `Unknown` keeps the raw code elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrackingStatus {
    InfoReceived,
    PickedUp,
    InTransit,
    OutForDelivery,
    AvailableForPickup,
    DeliveryFailed,
    Delivered,
    Exception,
    Returning,
    Returned,
    Cancelled,
    Unknown,
}

impl TrackingStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Delivered | Self::Returned | Self::Cancelled)
    }

    /// Order in a shipment's life, to break ties between events at the same instant.
    fn rank(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::InfoReceived => 1,
            Self::PickedUp => 2,
            Self::InTransit => 3,
            Self::Exception => 4,
            Self::OutForDelivery => 5,
            Self::DeliveryFailed => 6,
            Self::AvailableForPickup => 7,
            Self::Delivered => 8,
            Self::Returning => 9,
            Self::Returned => 10,
            Self::Cancelled => 11,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InfoReceived => "INFO_RECEIVED",
            Self::PickedUp => "PICKED_UP",
            Self::InTransit => "IN_TRANSIT",
            Self::OutForDelivery => "OUT_FOR_DELIVERY",
            Self::AvailableForPickup => "AVAILABLE_FOR_PICKUP",
            Self::DeliveryFailed => "DELIVERY_FAILED",
            Self::Delivered => "DELIVERED",
            Self::Exception => "EXCEPTION",
            Self::Returning => "RETURNING",
            Self::Returned => "RETURNED",
            Self::Cancelled => "CANCELLED",
            Self::Unknown => "UNKNOWN",
        }
    }

    pub fn parse(s: &str) -> Self {
        [
            Self::InfoReceived,
            Self::PickedUp,
            Self::InTransit,
            Self::OutForDelivery,
            Self::AvailableForPickup,
            Self::DeliveryFailed,
            Self::Delivered,
            Self::Exception,
            Self::Returning,
            Self::Returned,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
        .unwrap_or(Self::Unknown)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackingEvent {
    /// The carrier's own event code, kept as sent.
    pub status_code: String,
    pub status: TrackingStatus,
    pub description: String,
    /// Local time at the event's place, with its offset.
    pub occurred_at: DateTime<FixedOffset>,
    /// IANA zone of the event's place, when it can be told.
    pub timezone: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// A carrier's answer about one shipment: its own events and, when it has handed the parcel to a
/// last-mile carrier, who that is (the name as the carrier wrote it) and that carrier's events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackingUpdate {
    pub events: Vec<TrackingEvent>,
    pub last_mile: Option<LastMile>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LastMile {
    /// The carrier's name as reported (`美国邮政`, `usps`...); the gateway normalizes it.
    pub carrier: String,
    pub tracking_number: String,
    pub events: Vec<TrackingEvent>,
}

impl From<Vec<TrackingEvent>> for TrackingUpdate {
    fn from(events: Vec<TrackingEvent>) -> Self {
        Self {
            events,
            last_mile: None,
        }
    }
}

/// The normalized status of a shipment from its timeline, in any order: the latest terminal event
/// (delivered, returned, cancelled) once there is one, so that a late-arriving older scan never
/// replaces it; otherwise the latest event whose code the carrier's map knows — except that a
/// status never goes back to before the pickup: once a parcel was picked up, a later acceptance
/// or information scan (the next carrier taking it over at a hand-over) reads `InTransit`.
/// `None` for an empty timeline or one of unknown codes only.
pub fn derive_status<'a>(
    events: impl IntoIterator<Item = (&'a DateTime<FixedOffset>, TrackingStatus)>,
) -> Option<TrackingStatus> {
    let known: Vec<(&DateTime<FixedOffset>, TrackingStatus)> = events
        .into_iter()
        .filter(|(_, s)| *s != TrackingStatus::Unknown)
        .collect();
    let mut latest: Option<(&DateTime<FixedOffset>, TrackingStatus)> = None;
    let mut terminal: Option<(&DateTime<FixedOffset>, TrackingStatus)> = None;
    for &(at, status) in &known {
        let slot = if status.is_terminal() {
            &mut terminal
        } else {
            &mut latest
        };
        // Equal instants: the later status in the lifecycle wins (picked up before in transit).
        if slot.is_none_or(|(t, s)| at > t || (at == t && status.rank() >= s.rank())) {
            *slot = Some((at, status));
        }
    }
    if let Some(t) = terminal {
        return Some(t.1);
    }
    let (at, status) = latest?;
    let picked_up_before = known
        .iter()
        .any(|(t, s)| *t < at && s.rank() >= TrackingStatus::PickedUp.rank());
    if status.rank() <= TrackingStatus::PickedUp.rank() && picked_up_before {
        return Some(TrackingStatus::InTransit);
    }
    Some(status)
}

/// The zone of a place: by US/CA/AU/BR/MX/RU state where a country spans several zones,
/// else the country's single zone.
pub fn zone_for(country: Option<&str>, state: Option<&str>) -> Option<Tz> {
    let country = country?.to_ascii_uppercase();
    let state = state.map(str::to_ascii_uppercase);
    let name = match (country.as_str(), state.as_deref()) {
        ("US", Some(s)) => us_zone(s)?,
        ("US", None) => return None,
        ("CA", Some("BC" | "YT")) => "America/Vancouver",
        ("CA", Some("AB" | "NT")) => "America/Edmonton",
        ("CA", Some("SK")) => "America/Regina",
        ("CA", Some("MB")) => "America/Winnipeg",
        ("CA", Some("NS" | "NB" | "PE")) => "America/Halifax",
        ("CA", Some("NL")) => "America/St_Johns",
        ("CA", _) => "America/Toronto",
        ("AU", Some("WA")) => "Australia/Perth",
        ("AU", Some("SA")) => "Australia/Adelaide",
        ("AU", Some("NT")) => "Australia/Darwin",
        ("AU", Some("QLD")) => "Australia/Brisbane",
        ("AU", _) => "Australia/Sydney",
        (c, _) => single_zone(c)?,
    };
    name.parse().ok()
}

fn us_zone(state: &str) -> Option<&'static str> {
    Some(match state {
        "CT" | "DE" | "DC" | "FL" | "GA" | "IN" | "KY" | "ME" | "MD" | "MA" | "MI" | "NH"
        | "NJ" | "NY" | "NC" | "OH" | "PA" | "RI" | "SC" | "VT" | "VA" | "WV" => "America/New_York",
        "AL" | "AR" | "IL" | "IA" | "KS" | "LA" | "MN" | "MS" | "MO" | "NE" | "ND" | "OK"
        | "SD" | "TN" | "TX" | "WI" => "America/Chicago",
        "CO" | "ID" | "MT" | "NM" | "UT" | "WY" => "America/Denver",
        "AZ" => "America/Phoenix",
        "CA" | "NV" | "OR" | "WA" => "America/Los_Angeles",
        "AK" => "America/Anchorage",
        "HI" => "Pacific/Honolulu",
        "PR" => "America/Puerto_Rico",
        _ => return None,
    })
}

fn single_zone(country: &str) -> Option<&'static str> {
    Some(match country {
        "CN" => "Asia/Shanghai",
        "HK" => "Asia/Hong_Kong",
        "TW" => "Asia/Taipei",
        "JP" => "Asia/Tokyo",
        "KR" => "Asia/Seoul",
        "SG" => "Asia/Singapore",
        "MY" => "Asia/Kuala_Lumpur",
        "TH" => "Asia/Bangkok",
        "VN" => "Asia/Ho_Chi_Minh",
        "PH" => "Asia/Manila",
        "IN" => "Asia/Kolkata",
        "AE" => "Asia/Dubai",
        "NZ" => "Pacific/Auckland",
        "GB" => "Europe/London",
        "IE" => "Europe/Dublin",
        "DE" => "Europe/Berlin",
        "FR" => "Europe/Paris",
        "NL" => "Europe/Amsterdam",
        "BE" => "Europe/Brussels",
        "ES" => "Europe/Madrid",
        "IT" => "Europe/Rome",
        "CH" => "Europe/Zurich",
        "AT" => "Europe/Vienna",
        "PL" => "Europe/Warsaw",
        "SE" => "Europe/Stockholm",
        "DK" => "Europe/Copenhagen",
        "NO" => "Europe/Oslo",
        "FI" => "Europe/Helsinki",
        "CZ" => "Europe/Prague",
        "PT" => "Europe/Lisbon",
        "GR" => "Europe/Athens",
        "TR" => "Europe/Istanbul",
        "IL" => "Asia/Jerusalem",
        "ZA" => "Africa/Johannesburg",
        _ => return None,
    })
}

/// Places a local time without offset in its zone; without a zone the time is taken as UTC.
pub fn localize(local: NaiveDateTime, zone: Option<Tz>) -> (DateTime<FixedOffset>, Option<String>) {
    match zone {
        Some(tz) => {
            let dt = tz
                .from_local_datetime(&local)
                .earliest()
                .unwrap_or_else(|| tz.from_utc_datetime(&local));
            (
                dt.with_timezone(&dt.offset().fix()),
                Some(tz.name().to_owned()),
            )
        }
        None => (local.and_utc().fixed_offset(), None),
    }
}

/// A zone name for a time that came with its own offset: the place's zone when its offset
/// agrees at that instant, else the fixed `Etc/GMT±h` zone of the offset.
pub fn zone_name(at: DateTime<FixedOffset>, place: Option<Tz>) -> Option<String> {
    if let Some(tz) = place
        && tz.offset_from_utc_datetime(&at.naive_utc()).fix() == *at.offset()
    {
        return Some(tz.name().to_owned());
    }
    let secs = at.offset().local_minus_utc();
    (secs % 3600 == 0).then(|| match secs / 3600 {
        0 => "Etc/UTC".to_owned(),
        // Etc/GMT zones have inverted signs by POSIX convention.
        h if h > 0 => format!("Etc/GMT-{h}"),
        h => format!("Etc/GMT+{}", -h),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_get_their_zone_and_offset() {
        let local =
            NaiveDateTime::parse_from_str("2024-08-15 10:30:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let (at, tz) = localize(local, zone_for(Some("US"), Some("TN")));
        assert_eq!(at.to_rfc3339(), "2024-08-15T10:30:00-05:00");
        assert_eq!(tz.as_deref(), Some("America/Chicago"));
        let (at, tz) = localize(local, zone_for(Some("CN"), None));
        assert_eq!(at.to_rfc3339(), "2024-08-15T10:30:00+08:00");
        assert_eq!(tz.as_deref(), Some("Asia/Shanghai"));
        let (at, tz) = localize(local, None);
        assert_eq!(at.to_rfc3339(), "2024-08-15T10:30:00+00:00");
        assert_eq!(tz, None);
    }

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn status_is_the_latest_event_but_a_terminal_one_is_never_replaced() {
        use TrackingStatus::*;
        let (t1, t2, t3) = (
            at("2026-11-20T08:00:00+08:00"),
            at("2026-11-21T08:00:00-05:00"),
            at("2026-11-22T08:00:00-05:00"),
        );
        assert_eq!(derive_status([]), None);
        assert_eq!(
            derive_status([(&t1, PickedUp), (&t2, InTransit)]),
            Some(InTransit)
        );
        // Arrival order does not matter.
        assert_eq!(
            derive_status([(&t2, InTransit), (&t1, PickedUp)]),
            Some(InTransit)
        );
        // A scan dated after delivery does not undo it.
        assert_eq!(
            derive_status([(&t2, Delivered), (&t3, InTransit)]),
            Some(Delivered)
        );
        // Unknown codes do not move the status.
        assert_eq!(
            derive_status([(&t1, PickedUp), (&t3, Unknown)]),
            Some(PickedUp)
        );
        assert_eq!(derive_status([(&t1, Unknown)]), None);
        // A hand-over: the next carrier's acceptance after the parcel moved never reads as a
        // step back, in whatever order the events arrive.
        assert_eq!(
            derive_status([(&t1, PickedUp), (&t2, InTransit), (&t3, PickedUp)]),
            Some(InTransit)
        );
        assert_eq!(
            derive_status([(&t3, PickedUp), (&t1, PickedUp), (&t2, InTransit)]),
            Some(InTransit)
        );
        assert_eq!(
            derive_status([(&t1, PickedUp), (&t3, InfoReceived)]),
            Some(InTransit)
        );
        // A first pickup is a pickup.
        assert_eq!(
            derive_status([(&t1, InfoReceived), (&t2, PickedUp)]),
            Some(PickedUp)
        );
        // Same instant: the later stage wins.
        assert_eq!(
            derive_status([(&t1, OutForDelivery), (&t1, InTransit)]),
            Some(OutForDelivery)
        );
        assert_eq!(
            derive_status([(&t2, Delivered), (&t3, Returned)]),
            Some(Returned)
        );
        for s in [InfoReceived, Delivered, AvailableForPickup, Cancelled] {
            assert_eq!(TrackingStatus::parse(s.as_str()), s);
        }
    }

    #[test]
    fn zone_names_for_offset_times() {
        let at = DateTime::parse_from_rfc3339("2024-08-15T10:30:00-04:00").unwrap();
        assert_eq!(
            zone_name(at, zone_for(Some("US"), Some("NY"))).as_deref(),
            Some("America/New_York")
        );
        assert_eq!(
            zone_name(at, zone_for(Some("US"), Some("CA"))).as_deref(),
            Some("Etc/GMT+4")
        );
        assert_eq!(zone_name(at, None).as_deref(), Some("Etc/GMT+4"));
    }
}
