//! Carriers pushing tracking to the gateway: each carrier that pushes implements [`PushReceiver`]
//! next to its create / track / cancel code — how a push is authenticated, how its body reads,
//! and how the carrier wants to be answered. The gateway only dispatches by [`CarrierId`].
//!
//! | carrier      | body                                 | authentication                                                   | delivery id        |
//! |--------------|--------------------------------------|------------------------------------------------------------------|--------------------|
//! | `sandbox`    | JSON (see `sandbox::push`)           | Standard Webhooks: `webhook-signature`, `webhook-timestamp` within the skew | `webhook-id` |
//! | `fedex`      | JSON in the Track API's result shape | `fdx-signature`: HMAC-SHA256 of the body (hex or base64); the unsigned `fdx-timestamp` is not trusted | SHA-256 of the body |
//! | `sf_express` | form `content=<RoutePushService XML>`| `verifyCode` = Base64(MD5(content + checkword))                  | each `WaybillRoute@id` |

use crate::{CarrierId, TrackingUpdate};
use secrecy::SecretString;

/// A push as it arrived.
pub struct PushRequest<'a> {
    pub header: &'a dyn Fn(&str) -> Option<String>,
    pub body: &'a [u8],
    /// The receiving clock, for the replay window.
    pub now_secs: i64,
    pub max_skew_secs: u64,
}

impl PushRequest<'_> {
    pub(crate) fn require_header(&self, name: &str) -> Result<String, PushError> {
        (self.header)(name).ok_or_else(|| PushError::Unauthorized(format!("missing {name} header")))
    }

    /// A timestamp (seconds) within the allowed skew of now.
    pub(crate) fn check_skew(&self, timestamp: &str) -> Result<(), PushError> {
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| PushError::Unauthorized("timestamp is not a number".into()))?;
        if (self.now_secs - ts).unsigned_abs() > self.max_skew_secs {
            return Err(PushError::Stale(self.max_skew_secs));
        }
        Ok(())
    }
}

/// One shipment's news in a push, under the id that makes a repeat recognizable.
#[derive(Debug)]
pub struct PushDelivery {
    pub id: String,
    pub number: String,
    pub update: TrackingUpdate,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("timestamp outside the allowed {0} s")]
    Stale(u64),
    #[error("{0}")]
    Invalid(String),
}

/// Why a push was refused, in the terms a carrier's answer distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unauthorized,
    Replayed,
    Invalid,
    Other,
}

/// A carrier's own answer to a push (content type and body).
pub struct PushAnswer {
    pub content_type: &'static str,
    pub body: String,
}

pub trait PushReceiver: Send + Sync + 'static {
    fn carrier(&self) -> CarrierId;

    /// Authenticates the push with the shared secret, then reads it.
    fn read(
        &self,
        req: &PushRequest<'_>,
        secret: &SecretString,
    ) -> Result<Vec<PushDelivery>, PushError>;

    /// The answer the carrier expects, when it is not the gateway's JSON: `Ok` for a push that
    /// was taken, the refusal and its message otherwise.
    fn answer(&self, _outcome: Result<(), (Refusal, &str)>) -> Option<PushAnswer> {
        None
    }
}
