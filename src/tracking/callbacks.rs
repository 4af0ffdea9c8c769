//! Carrier pushes, each in its carrier's own format and authentication:
//!
//! | carrier      | body                                         | authentication                                   | delivery id        |
//! |--------------|----------------------------------------------|--------------------------------------------------|--------------------|
//! | `sandbox`    | JSON (below)                                 | `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`, `webhook-timestamp` within the allowed skew | `webhook-id` |
//! | `fedex`      | JSON in the Track API's result shape         | `fdx-signature`: HMAC-SHA256 of the body (hex or base64); `fdx-timestamp`, when sent, within the skew | SHA-256 of the body |
//! | `sf_express` | form `content=<RoutePushService XML>`        | `verifyCode` = Base64(MD5(content + checkword))  | each `WaybillRoute@id` |
//!
//! The sandbox's body: `{"waybillNumber", "events": [{"code", "description", "occurredAt",
//! "city"?, "state"?, "postalCode"?, "country"?, "address"?, "status"?}], "lastMile"?:
//! {"carrier", "trackingNumber", "events": [...]}}`.

use carriers::tracking::{zone_for, zone_name};
use carriers::{LastMile, TrackingEvent, TrackingStatus, TrackingUpdate};
use hmac::{KeyInit, Mac};
use serde::Deserialize;

/// Carriers whose push format shipgate reads.
pub const SUPPORTED: &[&str] = &["sandbox", "fedex", "sf_express"];

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// One shipment's news in a push, under the id that makes a repeat recognizable.
#[derive(Debug)]
pub struct Delivery {
    pub id: String,
    pub number: String,
    pub update: TrackingUpdate,
}

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("no push format for carrier `{0}`")]
    UnknownCarrier(String),
    #[error("pushes from `{0}` are not configured")]
    NotConfigured(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("timestamp outside the allowed {0} s")]
    Stale(u64),
    #[error("{0}")]
    Invalid(String),
}

pub struct Request<'a> {
    pub carrier: &'a str,
    pub secret: Option<&'a str>,
    pub header: &'a dyn Fn(&str) -> Option<String>,
    pub body: &'a [u8],
    pub now_secs: i64,
    pub max_skew_secs: u64,
}

/// Authenticates a push, then reads it.
pub fn read(req: &Request<'_>) -> Result<Vec<Delivery>, CallbackError> {
    if !SUPPORTED.contains(&req.carrier) {
        return Err(CallbackError::UnknownCarrier(req.carrier.to_owned()));
    }
    let secret = req
        .secret
        .ok_or_else(|| CallbackError::NotConfigured(req.carrier.to_owned()))?;
    match req.carrier {
        "sandbox" => sandbox(req, secret),
        "fedex" => fedex(req, secret),
        _ => sf_express(req, secret),
    }
}

fn check_skew(req: &Request<'_>, timestamp: &str) -> Result<(), CallbackError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| CallbackError::Unauthorized("timestamp is not a number".into()))?;
    if (req.now_secs - ts).unsigned_abs() > req.max_skew_secs {
        return Err(CallbackError::Stale(req.max_skew_secs));
    }
    Ok(())
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    HmacSha256::new_from_slice(key).expect("HMAC accepts any key length")
}

/// The Standard Webhooks signature of `id.timestamp.body`, as sent in `webhook-signature`,
/// keyed with the bytes of `secret`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    sign_with_key(secret.as_bytes(), id, timestamp, body)
}

/// The same signature keyed with raw key bytes.
pub fn sign_with_key(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    use base64::Engine;
    let mut m = mac(key);
    m.update(format!("{id}.{timestamp}.").as_bytes());
    m.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
    )
}

fn sandbox(req: &Request<'_>, secret: &str) -> Result<Vec<Delivery>, CallbackError> {
    use base64::Engine;
    let header = |name: &str| {
        (req.header)(name)
            .ok_or_else(|| CallbackError::Unauthorized(format!("missing {name} header")))
    };
    let (id, timestamp, signatures) = (
        header("webhook-id")?,
        header("webhook-timestamp")?,
        header("webhook-signature")?,
    );
    let mut m = mac(secret.as_bytes());
    m.update(format!("{id}.{}.", timestamp.trim()).as_bytes());
    m.update(req.body);
    let valid = signatures.split_whitespace().any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|sig| m.clone().verify_slice(&sig).is_ok())
    });
    if !valid {
        return Err(CallbackError::Unauthorized(
            "signature does not match".into(),
        ));
    }
    check_skew(req, &timestamp)?;
    let push: SandboxPush = serde_json::from_slice(req.body)
        .map_err(|e| CallbackError::Invalid(format!("body: {e}")))?;
    let events = push
        .events
        .into_iter()
        .map(|e| e.into_event(carriers::sandbox::timeline::status_of))
        .collect::<Result<_, _>>()?;
    let last_mile = push
        .last_mile
        .map(|lm| {
            Ok::<_, CallbackError>(LastMile {
                events: lm
                    .events
                    .into_iter()
                    .map(|e| e.into_event(carriers::usps::event_status))
                    .collect::<Result<_, _>>()?,
                carrier: lm.carrier,
                tracking_number: lm.tracking_number,
            })
        })
        .transpose()?;
    Ok(vec![Delivery {
        id,
        number: push.waybill_number,
        update: TrackingUpdate { events, last_mile },
    }])
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SandboxPush {
    waybill_number: String,
    #[serde(default)]
    events: Vec<PushedEvent>,
    last_mile: Option<PushedLastMile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PushedLastMile {
    carrier: String,
    tracking_number: String,
    #[serde(default)]
    events: Vec<PushedEvent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PushedEvent {
    code: String,
    #[serde(default)]
    description: String,
    occurred_at: String,
    status: Option<String>,
    address: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
}

impl PushedEvent {
    fn into_event(self, map: fn(&str) -> TrackingStatus) -> Result<TrackingEvent, CallbackError> {
        let occurred_at = chrono::DateTime::parse_from_rfc3339(&self.occurred_at).map_err(|e| {
            CallbackError::Invalid(format!(
                "occurredAt `{}` is not ISO 8601 with an offset: {e}",
                self.occurred_at
            ))
        })?;
        if self.code.trim().is_empty() {
            return Err(CallbackError::Invalid("an event has an empty code".into()));
        }
        let status = match self.status.as_deref() {
            Some(s) => TrackingStatus::parse(s),
            None => map(&self.code),
        };
        let zone = zone_for(self.country.as_deref(), self.state.as_deref());
        Ok(TrackingEvent {
            status,
            timezone: zone_name(occurred_at, zone),
            status_code: self.code,
            description: self.description,
            occurred_at,
            address: self.address,
            city: self.city,
            state: self.state,
            postal_code: self.postal_code,
            country: self.country,
        })
    }
}

fn fedex(req: &Request<'_>, secret: &str) -> Result<Vec<Delivery>, CallbackError> {
    use base64::Engine;
    let signature = (req.header)("fdx-signature")
        .ok_or_else(|| CallbackError::Unauthorized("missing fdx-signature header".into()))?;
    let signature = signature.trim();
    let sig = hex::decode(signature)
        .ok()
        .or_else(|| {
            base64::engine::general_purpose::STANDARD
                .decode(signature)
                .ok()
        })
        .ok_or_else(|| {
            CallbackError::Unauthorized("fdx-signature is neither hex nor base64".into())
        })?;
    let mut m = mac(secret.as_bytes());
    m.update(req.body);
    m.verify_slice(&sig)
        .map_err(|_| CallbackError::Unauthorized("signature does not match".into()))?;
    if let Some(ts) = (req.header)("fdx-timestamp") {
        check_skew(req, &ts)?;
    }
    let id = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(req.body))
    };
    let results =
        carriers::fedex::parse_push(req.body).map_err(|e| CallbackError::Invalid(e.to_string()))?;
    Ok(results
        .into_iter()
        .map(|(number, events)| Delivery {
            id: format!("{id}:{number}"),
            number,
            update: events.into(),
        })
        .collect())
}

fn sf_express(req: &Request<'_>, checkword: &str) -> Result<Vec<Delivery>, CallbackError> {
    let fields: Vec<(String, String)> = form_fields(req.body)?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let content = field("content")
        .or_else(|| field("xml"))
        .ok_or_else(|| CallbackError::Invalid("form field `content` is missing".into()))?;
    let verify = field("verifyCode")
        .ok_or_else(|| CallbackError::Unauthorized("form field `verifyCode` is missing".into()))?;
    let expected = carriers::sf_express::verify_code(content, checkword);
    if !constant_time_eq(expected.as_bytes(), verify.trim().as_bytes()) {
        return Err(CallbackError::Unauthorized(
            "verifyCode does not match".into(),
        ));
    }
    let routes = carriers::sf_express::push::parse_route_push(content)
        .map_err(|e| CallbackError::Invalid(e.to_string()))?;
    Ok(routes
        .into_iter()
        .map(|r| Delivery {
            id: r.id,
            number: r.mailno,
            update: vec![r.event].into(),
        })
        .collect())
}

fn form_fields(body: &[u8]) -> Result<Vec<(String, String)>, CallbackError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| CallbackError::Invalid(format!("form body: {e}")))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
