//! The sandbox's tracking push, signed the Standard Webhooks way: headers `webhook-id`,
//! `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`.
//! The body: `{"waybillNumber", "events": [{"code", "description", "occurredAt", "city"?,
//! "state"?, "postalCode"?, "country"?, "address"?, "status"?}], "lastMile"?: {"carrier",
//! "trackingNumber", "events": [...]}}`.

use crate::push::{PushDelivery, PushError, PushReceiver, PushRequest};
use crate::tracking::{zone_for, zone_name};
use crate::{CarrierId, LastMile, TrackingEvent, TrackingStatus, TrackingUpdate};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub struct SandboxPush;

impl PushReceiver for SandboxPush {
    fn carrier(&self) -> CarrierId {
        CarrierId::Sandbox
    }

    fn read(
        &self,
        req: &PushRequest<'_>,
        secret: &SecretString,
    ) -> Result<Vec<PushDelivery>, PushError> {
        let id = req.require_header("webhook-id")?;
        let timestamp = req.require_header("webhook-timestamp")?;
        let signatures = req.require_header("webhook-signature")?;
        // `whsec_...` (the specification's form) keys with its decoded part.
        let key = crate::signing::standard_webhooks_key(secret.expose_secret());
        if !crate::signing::standard_webhooks_verify(
            &key,
            &id,
            timestamp.trim(),
            req.body,
            &signatures,
        ) {
            return Err(PushError::Unauthorized("signature does not match".into()));
        }
        req.check_skew(&timestamp)?;
        let push: SandboxBody = serde_json::from_slice(req.body)
            .map_err(|e| PushError::Invalid(format!("body: {e}")))?;
        let events = push
            .events
            .into_iter()
            .map(|e| e.into_event(super::timeline::status_of))
            .collect::<Result<_, _>>()?;
        let last_mile = push
            .last_mile
            .map(|lm| {
                Ok::<_, PushError>(LastMile {
                    events: lm
                        .events
                        .into_iter()
                        .map(|e| e.into_event(crate::usps::event_status))
                        .collect::<Result<_, _>>()?,
                    carrier: lm.carrier,
                    tracking_number: lm.tracking_number,
                })
            })
            .transpose()?;
        Ok(vec![PushDelivery {
            id,
            number: push.waybill_number,
            update: TrackingUpdate { events, last_mile },
        }])
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SandboxBody {
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
    fn into_event(self, map: fn(&str) -> TrackingStatus) -> Result<TrackingEvent, PushError> {
        let occurred_at = chrono::DateTime::parse_from_rfc3339(&self.occurred_at).map_err(|e| {
            PushError::Invalid(format!(
                "occurredAt `{}` is not ISO 8601 with an offset: {e}",
                self.occurred_at
            ))
        })?;
        if self.code.trim().is_empty() {
            return Err(PushError::Invalid("an event has an empty code".into()));
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
