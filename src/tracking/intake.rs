//! Carrier pushes: the carrier's own receiver (in `carriers`) authenticates and reads a push;
//! here each delivery is matched to its waybill and stored before the push is acknowledged.

use super::{TrackingError, TrackingService};
use crate::store::tracking::PushMatch;
use crate::store::{Db, now_millis};
use carriers::CarrierId;
use carriers::push::{PushReceiver, PushRequest};
use secrecy::SecretString;
use std::collections::BTreeMap;

/// Push settings: each carrier's shared secret and the allowed clock skew.
#[derive(Debug, Clone, Default)]
pub struct PushConfig {
    pub secrets: BTreeMap<CarrierId, SecretString>,
    pub max_skew_secs: u64,
}

/// What a push changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PushSummary {
    pub accepted: u64,
    pub duplicates: u64,
    /// Deliveries for numbers shipgate does not know (acknowledged, recorded, not stored).
    pub unknown: u64,
}

/// The receiver of a carrier path (`/v1/callbacks/{carrier}`), if that carrier pushes.
pub fn receiver(carrier: &str) -> Option<&'static dyn PushReceiver> {
    carrier
        .parse::<CarrierId>()
        .ok()
        .and_then(carriers::push_receiver)
}

/// Counts a refused push under its carrier; only known carriers become label values (the path
/// is the caller's to choose).
fn count_refusal(carrier: &str) {
    let label = receiver(carrier).map_or("unknown", |r| r.carrier().as_str());
    metrics::counter!("shipgate_callbacks_refused_total", "carrier" => label).increment(1);
}

impl TrackingService {
    /// Whether `carrier` pushes and has a secret configured: asked before a push's body is
    /// read, so a path no carrier can sign costs no body read. A refusal is counted.
    pub fn check_push(&self, carrier: &str) -> Result<(), TrackingError> {
        let result = receiver(carrier)
            .ok_or_else(|| TrackingError::UnknownCarrier(carrier.to_owned()))
            .and_then(
                |r| match self.inner.pushes.secrets.contains_key(&r.carrier()) {
                    true => Ok(()),
                    false => Err(TrackingError::NotConfigured(r.carrier())),
                },
            );
        if result.is_err() {
            count_refusal(carrier);
        }
        result
    }

    /// Authenticates a push with the carrier's secret, reads it, and stores every delivery in
    /// it (each in one write unit with its receipt). A delivery id recorded before is a replay:
    /// its events are the stored ones, so taking it again changes nothing; a push all of whose
    /// deliveries were seen before is refused as a replay.
    pub async fn take_push(
        &self,
        carrier: &str,
        header: &dyn Fn(&str) -> Option<String>,
        body: &[u8],
    ) -> Result<PushSummary, TrackingError> {
        let result = self.take_push_inner(carrier, header, body).await;
        if let Err(e) = &result
            && !matches!(e, TrackingError::Store(_) | TrackingError::Render(_))
        {
            count_refusal(carrier);
        }
        result
    }

    async fn take_push_inner(
        &self,
        carrier: &str,
        header: &dyn Fn(&str) -> Option<String>,
        body: &[u8],
    ) -> Result<PushSummary, TrackingError> {
        let receiver =
            receiver(carrier).ok_or_else(|| TrackingError::UnknownCarrier(carrier.to_owned()))?;
        let id = receiver.carrier();
        let config = &self.inner.pushes;
        let secret = config
            .secrets
            .get(&id)
            .ok_or(TrackingError::NotConfigured(id))?;
        let deliveries = receiver.read(
            &PushRequest {
                header,
                body,
                now_secs: now_millis() / 1000,
                max_skew_secs: config.max_skew_secs,
            },
            secret,
        )?;
        let mut summary = PushSummary::default();
        let total = deliveries.len();
        let mut replayed = 0;
        for d in deliveries {
            let found = match self.parcel_for_push(id.as_str(), &d.number).await? {
                PushMatch::One { row, .. } => Some(*row),
                PushMatch::None => None,
                PushMatch::Ambiguous => {
                    tracing::warn!(carrier = %id, number = %d.number, "push for a number two waybills have: not taken");
                    metrics::counter!("shipgate_callbacks_ambiguous_total", "carrier" => id.as_str())
                        .increment(1);
                    None
                }
            };
            match found {
                Some(parcel) => {
                    let events = d.update.events.len() as u64
                        + d.update
                            .last_mile
                            .as_ref()
                            .map_or(0, |l| l.events.len() as u64);
                    let got = self
                        .ingest(&parcel, id.as_str(), d.update, Some((id.as_str(), &d.id)))
                        .await?;
                    replayed += usize::from(got.replayed);
                    summary.accepted += got.new_events;
                    summary.duplicates += events - got.new_events;
                }
                None => {
                    summary.unknown += 1;
                    tracing::info!(carrier = %id, number = %d.number, "push for a number shipgate does not know");
                    let done = self
                        .inner
                        .db
                        .write(Db::record_receipt(id.as_str(), &d.id, now_millis()))
                        .await?;
                    replayed += usize::from(done.rows_affected() == 0);
                }
            }
        }
        if replayed == total {
            return Err(TrackingError::Replayed(id));
        }
        metrics::counter!("shipgate_callback_events_total", "carrier" => id.as_str())
            .increment(summary.accepted);
        Ok(summary)
    }
}
