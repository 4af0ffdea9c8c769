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
