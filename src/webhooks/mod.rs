//! Pushes to subscribers: tracking events and last-mile hand-overs, sent to each tenant's
//! webhook endpoints from a durable outbox.
//!
//! The outbox rows are written by database triggers in the statement that stores the event or
//! the hand-over, so nothing acknowledged can be left without its pushes. The [`worker`] claims
//! due deliveries (at most one in flight per endpoint and waybill, so each waybill's events
//! arrive in order of their `sequence`), signs them the Standard Webhooks way, and retries
//! failures with exponential backoff and jitter until the retry window (24 h by default) is
//! over; then the delivery is dead until replayed.

pub mod fanout;
pub mod service;
pub mod worker;

pub use service::{WebhookError, WebhookService};

use crate::store::outbox::Job;
use serde::Serialize;

/// Events a subscriber can ask for: the gateway's, then the internal services'.
pub const EVENT_TYPES: [&str; 19] = [
    TRACKING_UPDATED,
    LAST_MILE_ASSIGNED,
    crate::inventory::event_types::STOCK_CHANGED,
    crate::inventory::event_types::LOW_STOCK,
    crate::inventory::event_types::ALLOCATION_CREATED,
    crate::inventory::event_types::ALLOCATION_RELEASED,
    crate::inventory::event_types::ALLOCATION_COMMITTED,
    crate::inventory::event_types::AVAILABLE_TO_SELL,
    crate::orders::event_types::RECEIVED,
    crate::orders::event_types::UPDATED,
    crate::orders::event_types::HELD,
    crate::orders::event_types::ALLOCATED,
    crate::orders::event_types::WAYBILL_CREATED,
    crate::orders::event_types::SHIPPED,
    crate::orders::event_types::DELIVERED,
    crate::orders::event_types::EXCEPTION,
    crate::orders::event_types::CANCELLED,
    crate::orders::event_types::REFUNDED,
    crate::orders::event_types::RETURN_UPDATED,
];

/// Whether an event is an internal service's (pushed by the fan-out consumer; the gateway's own
/// become deliveries by triggers).
pub fn service_event(event_type: &str) -> bool {
    crate::inventory::event_types::ALL.contains(&event_type)
        || crate::orders::event_types::ALL.contains(&event_type)
}
pub const TRACKING_UPDATED: &str = "tracking.updated";
pub const LAST_MILE_ASSIGNED: &str = "last_mile.assigned";

/// A new endpoint secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> Result<String, getrandom::Error> {
    use base64::Engine;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)?;
    Ok(format!(
        "{}{}",
        carriers::signing::SECRET_PREFIX,
        base64::engine::general_purpose::STANDARD.encode(key)
    ))
}

/// The HMAC key of a secret: the decoded part after `whsec_`.
pub fn signing_key(secret: &str) -> Vec<u8> {
    carriers::signing::standard_webhooks_key(secret)
}

/// `webhook-signature` for a delivery: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    carriers::signing::standard_webhooks_sign(&signing_key(secret), id, timestamp, body)
}

/// The event id: the same for every endpoint and every attempt, unique per waybill change.
pub fn event_id(waybill_id: &str, sequence: i64) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{waybill_id}:{sequence}").as_bytes());
    format!("evt_{}", hex::encode(&digest[..12]))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    event_id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    sequence: i64,
    created_at: String,
    data: Data<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    waybill_number: &'a str,
    reference_number: &'a str,
    carrier: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_mile_carrier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_mile_tracking_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<crate::tracking::EventAnswer<'a>>,
}

/// The id a delivery is sent under (`webhook-id`, the payload's `eventId`): a service's event
/// keeps its own; a waybill's is derived from the waybill and the sequence.
pub fn delivery_event_id(job: &Job) -> String {
    match (&job.service_event, &job.waybill_id) {
        (Some((id, _)), _) => id.clone(),
        (None, Some(waybill)) => event_id(waybill, job.sequence),
        (None, None) => event_id(&job.id, job.sequence),
    }
}

/// The JSON body of a delivery (the same bytes on every attempt: built from stored rows only).
pub fn payload(job: &Job, event_id: &str) -> serde_json::Result<Vec<u8>> {
    if let Some((_, data)) = &job.service_event {
        let data: &serde_json::value::RawValue = serde_json::from_str(data)?;
        return serde_json::to_vec(&serde_json::json!({
            "eventId": event_id,
            "type": job.event_type,
            "sequence": job.sequence,
            "createdAt": crate::store::rfc3339_millis(job.created_at),
            "data": data,
        }));
    }
    serde_json::to_vec(&Payload {
        event_id,
        event_type: &job.event_type,
        sequence: job.sequence,
        created_at: crate::store::rfc3339_millis(job.created_at),
        data: Data {
            waybill_number: &job.waybill_number,
            reference_number: &job.reference_number,
            carrier: &job.carrier,
            last_mile_carrier: job.last_mile.as_ref().map(|(c, _)| c.as_str()),
            last_mile_tracking_number: job.last_mile.as_ref().map(|(_, n)| n.as_str()),
            event: job
                .event
                .as_ref()
                .map(|(source, e)| crate::tracking::EventAnswer::new(source, e)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_decode_to_their_key() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("whsec_"));
        assert_eq!(signing_key(&a).len(), 32);
        // A signature made with the decoded key, not the text of the secret.
        let s = signature(&a, "msg_1", 1_700_000_000, b"{}");
        assert!(s.starts_with("v1,"));
        assert_ne!(
            s,
            carriers::signing::standard_webhooks_sign(a.as_bytes(), "msg_1", 1_700_000_000, b"{}")
        );
    }

    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        assert_eq!(
            signature(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn event_ids_are_stable_per_change() {
        assert_eq!(event_id("w1", 3), event_id("w1", 3));
        assert_ne!(event_id("w1", 3), event_id("w1", 4));
        assert_ne!(event_id("w1", 3), event_id("w2", 3));
    }
}
