//! BSP XML answers, read with quick-xml's serde support (single or double quoted attributes).

use crate::http::RawResponse;
use crate::tracking::localize;
use crate::{CarrierError, Created, TrackingEvent, TrackingStatus};
use serde::Deserialize;
use std::collections::BTreeMap;

fn bad(msg: impl std::fmt::Display) -> CarrierError {
    CarrierError::BadResponse(format!("sf_express: {msg}"))
}

#[derive(Deserialize)]
struct SfResponse {
    #[serde(rename = "Head")]
    head: String,
    #[serde(rename = "ERROR")]
    error: Option<SfError>,
    #[serde(rename = "Body")]
    body: Option<SfBody>,
}

#[derive(Deserialize)]
struct SfError {
    #[serde(rename = "@code")]
    code: Option<String>,
    #[serde(rename = "$text")]
    text: Option<String>,
}

#[derive(Deserialize)]
struct SfBody {
    #[serde(rename = "OrderResponse")]
    order: Option<SfOrderResponse>,
    #[serde(rename = "RouteResponse")]
    route: Option<SfRouteResponse>,
}

#[derive(Deserialize)]
struct SfOrderResponse {
    #[serde(rename = "@mailno")]
    mailno: Option<String>,
    rls_info: Option<SfRlsInfo>,
}

#[derive(Deserialize)]
struct SfRlsInfo {
    /// Every attribute of `rls_detail`: the data to print SF's routing label with.
    rls_detail: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct SfRouteResponse {
    #[serde(rename = "Route", default)]
    routes: Vec<SfRoute>,
}

#[derive(Deserialize)]
struct SfRoute {
    #[serde(rename = "@accept_time")]
    accept_time: String,
    #[serde(rename = "@accept_address")]
    accept_address: Option<String>,
    #[serde(rename = "@opcode")]
    opcode: Option<String>,
    #[serde(rename = "@remark")]
    remark: Option<String>,
}

fn parse(res: &RawResponse) -> Result<SfResponse, CarrierError> {
    let text =
        std::str::from_utf8(&res.body).map_err(|e| bad(format!("answer is not UTF-8: {e}")))?;
    quick_xml::de::from_str(text)
        .map_err(|e| bad(format!("unreadable XML (HTTP {}): {e}", res.status)))
}

/// `<Head>ERR</Head><ERROR code="4001">...</ERROR>`: SF's code and message.
pub fn error(res: &RawResponse) -> Option<(String, String)> {
    let parsed = parse(res).ok()?;
    if parsed.head.trim() != "ERR" {
        return None;
    }
    let e = parsed.error?;
    Some((
        e.code.unwrap_or_default(),
        e.text.unwrap_or_default().trim().to_owned(),
    ))
}

fn order(parsed: SfResponse) -> Option<Created> {
    let order = parsed.body?.order?;
    let mailno = order.mailno.filter(|m| !m.is_empty())?;
    let routing = order
        .rls_info
        .and_then(|i| i.rls_detail)
        .map(|attrs| {
            attrs
                .into_iter()
                .map(|(k, v)| {
                    (
                        k.trim_start_matches('@').to_owned(),
                        serde_json::Value::String(v),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
        })
        .map(serde_json::Value::Object);
    Some(Created {
        routing,
        ..Created::new(mailno.clone(), mailno)
    })
}

pub fn created(res: &RawResponse) -> Result<Created, CarrierError> {
    order(parse(res)?).ok_or_else(|| bad("no OrderResponse@mailno in the answer"))
}

/// `OrderSearchService`: an order with a waybill number, or none. An `ERR` answer is taken as
/// "not found": creating again is safe because SF refuses a repeated order id.
pub fn lookup(res: &RawResponse) -> Result<Option<Created>, CarrierError> {
    let parsed = parse(res)?;
    if parsed.head.trim() != "OK" {
        return Ok(None);
    }
    Ok(order(parsed))
}

/// SF route opcodes -> normalized statuses.
pub fn status(opcode: &str) -> TrackingStatus {
    use TrackingStatus::*;
    match opcode {
        "50" | "54" | "43" => PickedUp,
        "30" | "31" | "36" | "21" | "10" | "26" | "46" | "105" | "106" | "122" | "123" | "3036"
        | "607" | "610" => InTransit,
        "44" | "204" => OutForDelivery,
        "125" | "126" => AvailableForPickup,
        "70" => DeliveryFailed,
        "80" | "8000" | "8" => Delivered,
        "33" | "77" => Exception,
        "99" | "648" => Returning,
        _ => Unknown,
    }
}

/// One SF route (queried or pushed): China local time without an offset, the place as SF
/// wrote it, the opcode and its remark.
pub(crate) fn route_event(
    accept_time: &str,
    address: Option<String>,
    opcode: Option<String>,
    remark: Option<String>,
) -> Result<TrackingEvent, String> {
    let china: chrono_tz::Tz = chrono_tz::Asia::Shanghai;
    let local = chrono::NaiveDateTime::parse_from_str(accept_time, "%Y-%m-%d %H:%M:%S")
        .map_err(|e| format!("accept time `{accept_time}`: {e}"))?;
    let (occurred_at, timezone) = localize(local, Some(china));
    let code = opcode.unwrap_or_default();
    Ok(TrackingEvent {
        status: status(&code),
        status_code: code,
        description: remark.unwrap_or_default(),
        occurred_at,
        timezone,
        city: address.clone(),
        address,
        state: None,
        postal_code: None,
        country: Some("CN".into()),
    })
}

pub fn tracking(res: &RawResponse) -> Result<Vec<TrackingEvent>, CarrierError> {
    let parsed = parse(res)?;
    if parsed.head.trim() != "OK" {
        let (code, message) = parsed
            .error
            .map(|e| (e.code.unwrap_or_default(), e.text.unwrap_or_default()))
            .unwrap_or_default();
        return Err(CarrierError::Rejected { code, message });
    }
    let routes = parsed
        .body
        .and_then(|b| b.route)
        .map(|r| r.routes)
        .unwrap_or_default();
    let mut events: Vec<TrackingEvent> = routes
        .into_iter()
        .map(|r| route_event(&r.accept_time, r.accept_address, r.opcode, r.remark).map_err(bad))
        .collect::<Result<_, CarrierError>>()?;
    events.sort_by_key(|e| std::cmp::Reverse(e.occurred_at));
    Ok(events)
}
