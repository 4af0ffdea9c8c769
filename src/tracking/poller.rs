//! Polling for carriers that do not push.
//!
//! Each waybill carries `next_poll_at`. Every tick an instance claims the parcels that are due
//! in one statement that also moves them out of the due set for a lease (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, the single writer on SQLite), so instances running side by side never
//! poll a parcel twice in a round, and a claim whose instance died comes due again when its lease
//! ends. Calls to each carrier pass a rate limiter with no burst, which spreads them evenly over
//! time; the next poll is set by what the parcel is doing (often once it is out for delivery, once
//! more after the grace period after delivery, then never), with ±10 % jitter so parcels created
//! together do not stay in step.

use super::schedule::jitter;
use super::{TrackingError, TrackingService};
use crate::lifecycle::Draining;
use crate::settings::PollingSettings;
use crate::store::now_millis;
use crate::store::tracking::DuePoll;
use carriers::tracking::derive_status;
use carriers::{CarrierError, CarrierId, Registry, TrackingStatus, TrackingUpdate};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct Poller {
    tracking: TrackingService,
    registry: Registry,
    settings: PollingSettings,
    limiters: Arc<HashMap<CarrierId, DefaultDirectRateLimiter>>,
}

impl Poller {
    pub fn new(tracking: TrackingService, registry: Registry, settings: PollingSettings) -> Self {
        let rate = NonZeroU32::new(settings.rate_per_second).unwrap_or(NonZeroU32::MIN);
        let limiters = registry
            .ids()
            .map(|id| {
                (
                    id,
                    RateLimiter::direct(Quota::per_second(rate).allow_burst(NonZeroU32::MIN)),
                )
            })
            .collect();
        Self {
            tracking,
            registry,
            settings,
            limiters: Arc::new(limiters),
        }
    }

    /// Runs rounds until `stop` is set (a round under way finishes first; what it claimed and
    /// did not poll comes due again when its lease ends).
    pub fn spawn(self, stop: Draining) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(self.settings.tick_ms));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if stop.is_set() {
                    tracing::info!("tracking poller stopped");
                    return;
                }
                self.tracking.repair_cache().await;
                if let Err(e) = self.round().await {
                    tracing::warn!(error = %e, "tracking poll round failed");
                }
            }
        })
    }

    /// Claims what is due (about one tick's worth of calls per carrier) and polls it.
    pub async fn round(&self) -> Result<usize, TrackingError> {
        let now = now_millis();
        let per_tick = (u64::from(self.settings.rate_per_second) * self.settings.tick_ms)
            .div_ceil(1000)
            .max(1);
        let limit =
            (per_tick * self.limiters.len().max(1) as u64).min(u64::from(self.settings.batch));
        let due = self
            .tracking
            .db()
            .claim_due_polls(now, limit as u32, now + self.settings.lease_ms as i64)
            .await?;
        let count = due.len();
        let mut by_carrier: HashMap<String, Vec<DuePoll>> = HashMap::new();
        for d in due {
            by_carrier.entry(d.carrier.clone()).or_default().push(d);
        }
        let tasks: Vec<_> = by_carrier
            .into_values()
            .map(|polls| {
                let this = self.clone();
                tokio::spawn(async move {
                    for p in polls {
                        this.poll(p).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        Ok(count)
    }

    async fn poll(&self, due: DuePoll) {
        let db = self.tracking.db();
        let Some(carrier) = due
            .carrier
            .parse::<CarrierId>()
            .ok()
            .and_then(|id| self.registry.get(id))
        else {
            // The carrier is no longer configured here: leave the parcel to an instance that has
            // it, a while later.
            let _ = db
                .schedule_poll(
                    &due.id,
                    Some(now_millis() + jitter(self.settings.moving_ms)),
                )
                .await;
            return;
        };
        let created = chrono::DateTime::parse_from_rfc3339(&due.created_at)
            .map(|d| d.to_utc())
            .unwrap_or_else(|_| chrono::Utc::now());
        // A parcel that never reaches a final status is not polled for ever: past the maximum
        // age it is left alone (its answer says so).
        let max_age_ms = i64::try_from(self.settings.max_age_days)
            .unwrap_or(i64::MAX / 86_400_000)
            .saturating_mul(86_400_000);
        if now_millis() - created.timestamp_millis() > max_age_ms {
            tracing::info!(waybill = %due.waybill_number, "polling stopped: past tracking.polling.max_age_days");
            let _ = db.schedule_poll(&due.id, None).await;
            return;
        }
        if let Some(limiter) = self.limiters.get(&carrier.id()) {
            limiter.until_ready().await;
        }
        let next = match carrier.track_shipment(&due.waybill_number, created).await {
            Ok(update) => {
                let next = next_poll(&update, now_millis(), &self.settings);
                match db.track_row_by_id(&due.id).await {
                    Ok(Some(row)) => {
                        if let Err(e) = self
                            .tracking
                            .ingest(&(&row).into(), carrier.id().as_str(), update, None)
                            .await
                        {
                            tracing::warn!(error = %e, waybill = %due.waybill_number, "storing polled events");
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "reading a polled waybill"),
                }
                metrics::counter!("shipgate_tracking_polls_total", "carrier" => carrier.id().as_str(), "outcome" => "ok").increment(1);
                next
            }
            Err(CarrierError::NotSupported(_)) => None,
            Err(e) => {
                tracing::info!(error = %e, waybill = %due.waybill_number, "tracking poll failed; retrying later");
                metrics::counter!("shipgate_tracking_polls_total", "carrier" => carrier.id().as_str(), "outcome" => "error").increment(1);
                Some(now_millis() + jitter(self.settings.moving_ms))
            }
        };
        if let Err(e) = db.schedule_poll(&due.id, next).await {
            tracing::warn!(error = %e, "scheduling the next poll");
        }
    }
}

/// The next poll for a parcel in this state, or `None` once it is done.
fn next_poll(update: &TrackingUpdate, now: i64, s: &PollingSettings) -> Option<i64> {
    let all = update
        .events
        .iter()
        .chain(update.last_mile.iter().flat_map(|lm| lm.events.iter()));
    let status = derive_status(all.clone().map(|e| (&e.occurred_at, e.status)));
    use TrackingStatus::*;
    match status {
        Some(Delivered | Returned | Cancelled) => {
            let done_at = all
                .filter(|e| e.status.is_terminal())
                .map(|e| e.occurred_at.timestamp_millis())
                .max()
                .unwrap_or(now);
            let grace_end = done_at + s.delivered_grace_ms as i64;
            (now < grace_end).then_some(grace_end)
        }
        Some(OutForDelivery | AvailableForPickup | DeliveryFailed) => {
            Some(now + jitter(s.out_for_delivery_ms))
        }
        _ => Some(now + jitter(s.moving_ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carriers::TrackingEvent;

    fn settings() -> PollingSettings {
        crate::settings::Settings::default().tracking.polling
    }

    fn event(at: chrono::DateTime<chrono::Utc>, status: TrackingStatus) -> TrackingEvent {
        TrackingEvent {
            status_code: "X".into(),
            status,
            description: String::new(),
            occurred_at: at.fixed_offset(),
            timezone: None,
            address: None,
            city: None,
            state: None,
            postal_code: None,
            country: None,
        }
    }

    #[test]
    fn polls_follow_the_parcel() {
        let s = settings();
        let now = chrono::Utc::now();
        let ms = now.timestamp_millis();
        let within = |next: Option<i64>, base: u64| {
            let d = next.unwrap() - ms;
            let spread = (base / 10) as i64;
            assert!(
                (base as i64 - spread..=base as i64 + spread).contains(&d),
                "{d} vs {base}"
            );
        };
        within(
            next_poll(&vec![event(now, TrackingStatus::InTransit)].into(), ms, &s),
            s.moving_ms,
        );
        within(
            next_poll(
                &vec![event(now, TrackingStatus::OutForDelivery)].into(),
                ms,
                &s,
            ),
            s.out_for_delivery_ms,
        );
        // Delivered just now: once more after the grace period; long ago: never again.
        let delivered = next_poll(&vec![event(now, TrackingStatus::Delivered)].into(), ms, &s);
        assert_eq!(delivered, Some(ms + s.delivered_grace_ms as i64));
        let old = now - chrono::Duration::days(3);
        assert_eq!(
            next_poll(&vec![event(old, TrackingStatus::Delivered)].into(), ms, &s),
            None
        );
    }
}
