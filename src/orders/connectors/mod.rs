//! Sales-channel connectors: one interface, one module per channel format. A connector reads a
//! page of orders updated in a time window (in the channel's own format, mapped to
//! [`OrderInput`]) and writes a shipment's tracking number back to the channel. All waiting
//! (rate limits, retries) is the puller's and the write-back worker's; a connector only maps.

pub mod amazon;
pub mod shopify;
pub mod taobao;

use super::OrderInput;
use super::shops::Shop;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The channel's rate limit (`429`): ask again after this long.
    #[error("rate limited for {0:?}")]
    RateLimited(Duration),
    /// Down, timed out, `5xx`: try again later.
    #[error("{0}")]
    Unavailable(String),
    /// Refused for good (credentials, a request it will not take, an answer that cannot be read).
    #[error("{0}")]
    Refused(String),
}

/// A page of a window.
#[derive(Debug, Default)]
pub struct Page {
    pub orders: Vec<OrderInput>,
    /// External ids of orders the channel reports cancelled.
    pub cancelled: Vec<String>,
    /// Where the next page is (a URL or token), if any.
    pub next: Option<String>,
    /// How long to rest before the next call (the channel's call budget is nearly spent).
    pub pause: Option<Duration>,
}

/// A shipment's tracking, for the channel.
#[derive(Debug, Clone)]
pub struct Fulfilment {
    pub external_id: String,
    pub tracking_number: String,
    pub carrier: String,
    /// The channel's line ids with their quantities.
    pub lines: Vec<(String, i64)>,
    pub shipped_at_ms: i64,
}

#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// Orders updated in `[from_ms, to_ms)`, the page after `next` (or the first).
    async fn page(
        &self,
        shop: &Shop,
        from_ms: i64,
        to_ms: i64,
        next: Option<String>,
    ) -> Result<Page, ChannelError>;

    /// Writes the tracking number and carrier back, so the channel shows the order shipped.
    async fn fulfil(&self, shop: &Shop, f: &Fulfilment) -> Result<(), ChannelError>;
}

/// Sends a request and reads a JSON answer, sorting failures the way the channel means them.
pub(crate) async fn send_json(
    req: reqwest::RequestBuilder,
) -> Result<(Value, HeaderMap), ChannelError> {
    let res = req
        .send()
        .await
        .map_err(|e| ChannelError::Unavailable(format!("channel unreachable: {e}")))?;
    let status = res.status();
    let headers = res.headers().clone();
    if status.as_u16() == 429 {
        let wait = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or(Duration::from_secs(1), |s| {
                Duration::from_secs_f64(s.min(3600.0))
            });
        return Err(ChannelError::RateLimited(wait));
    }
    let bytes = res
        .bytes()
        .await
        .map_err(|e| ChannelError::Unavailable(format!("answer cut off: {e}")))?;
    if status.is_server_error() || status.as_u16() == 408 {
        return Err(ChannelError::Unavailable(format!(
            "channel answered {status}"
        )));
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
        return Err(ChannelError::Refused(format!(
            "channel answered {status}: {text}"
        )));
    }
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ChannelError::Refused(format!("channel answer is not JSON: {e}")))?
    };
    Ok((value, headers))
}

/// Text of a JSON value that may be a string or a number (ids above 2^53, amounts).
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An RFC 3339 time of epoch milliseconds, to the second (what channels' filters take).
pub(crate) fn rfc3339_secs(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The same, to the millisecond.
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    crate::store::rfc3339_millis(ms)
}
