//! The delivery worker: claims due deliveries, sends them, records each attempt.
//!
//! A claim leases the delivery (`next_attempt_at` moves to the end of the lease) and counts the
//! attempt in one statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer on
//! SQLite), so instances side by side send each delivery once; a delivery whose instance died
//! mid-send comes due again when the lease ends (receivers deduplicate by `webhook-id`).

use crate::lifecycle::Draining;
use crate::settings::WebhookSettings;
use crate::store::now_millis;
use crate::store::outbox::{AttemptRecord, DeliveryState, Job};
use crate::store::{Db, StoreError};
use backon::BackoffBuilder;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Worker {
    db: Db,
    client: reqwest::Client,
    settings: WebhookSettings,
}

/// How one send ended.
enum Sent {
    Ok(u16),
    Refused(u16),
    Failed(String),
}

impl Worker {
    pub fn new(db: Db, settings: WebhookSettings) -> anyhow::Result<Self> {
        let client = crate::outbound::client(
            Duration::from_millis(settings.timeout_ms),
            settings.allow_private_targets,
            concat!("shipgate-webhooks/", env!("CARGO_PKG_VERSION")),
        )?;
        Ok(Self {
            db,
            client,
            settings,
        })
    }

    /// Sends deliveries until `stop` is set, with up to `batch` in flight: each claim takes as
    /// many as there are free slots, and a slow receiver holds only its own slots, never the
    /// others' deliveries. On `stop` the deliveries under way finish first.
    pub fn spawn(self, stop: Draining) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let idle = Duration::from_millis(self.settings.poll_interval_ms);
            let slots = self.settings.batch as usize;
            let refill = slots.div_ceil(4);
            let mut inflight = tokio::task::JoinSet::new();
            loop {
                if stop.is_set() {
                    while inflight.join_next().await.is_some() {}
                    tracing::info!("webhook worker stopped");
                    return;
                }
                while inflight.try_join_next().is_some() {}
                // Claims come in chunks (a quarter of the slots at least), not one per finished
                // send: each claim is a write.
                let free = slots.saturating_sub(inflight.len());
                let claimed = if free == 0 || (free < refill && !inflight.is_empty()) {
                    Ok(Vec::new())
                } else {
                    self.claim(free as u32).await
                };
                match claimed {
                    Ok(jobs) if !jobs.is_empty() => {
                        // Every slot filled: more may be due right away.
                        let full = jobs.len() == free;
                        for job in jobs {
                            let this = self.clone();
                            inflight.spawn(async move { this.deliver(job).await });
                        }
                        if full {
                            continue;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
                }
                // Nothing to claim (or no free slot): wait for a slot or the next look.
                if inflight.is_empty() {
                    tokio::time::sleep(idle).await;
                } else {
                    let _ = tokio::time::timeout(idle, inflight.join_next()).await;
                }
            }
        })
    }

    /// One batch, for running the worker a step at a time: claims up to `batch` due deliveries,
    /// sends them concurrently and records every attempt before returning how many it sent.
    pub async fn run_once(&self) -> usize {
        let jobs = match self.claim(self.settings.batch).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(error = %e, "claiming webhook deliveries failed");
                return 0;
            }
        };
        let sent = jobs.len();
        let mut inflight = tokio::task::JoinSet::new();
        for job in jobs {
            let this = self.clone();
            inflight.spawn(async move { this.deliver(job).await });
        }
        while inflight.join_next().await.is_some() {}
        sent
    }

    /// Removes finished (delivered, cancelled, dead) deliveries older than the retention
    /// period, a bounded chunk at a time.
    pub async fn prune(&self) {
        let days = i64::try_from(self.settings.retention_days).unwrap_or(i64::MAX / 86_400_000);
        let before = now_millis() - days.saturating_mul(86_400_000);
        match self.db.prune_deliveries(before, 5_000).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "pruned old webhook deliveries"),
            Err(e) => tracing::warn!(error = %e, "pruning old webhook deliveries"),
        }
    }

    /// Claims up to `limit` due deliveries (nothing when none is due: idle instances only read).
    async fn claim(&self, limit: u32) -> Result<Vec<Job>, StoreError> {
        let now = now_millis();
        if !self.db.deliveries_due(now).await? {
            return Ok(Vec::new());
        }
        // Longer than one send can take (the client times out at `timeout_ms`) and its recording.
        let lease = self.settings.timeout_ms as i64 * 2 + 1_000;
        self.db
            .claim_deliveries(
                now,
                limit,
                self.settings.max_in_flight_per_endpoint,
                now + lease,
            )
            .await
    }

    async fn deliver(&self, job: Job) {
        let event_id = super::delivery_event_id(&job);
        let started = Instant::now();
        let sent = match super::payload(&job, &event_id) {
            Ok(body) => self.send(&job, &event_id, body).await,
            Err(e) => Sent::Failed(format!("building the payload: {e}")),
        };
        let elapsed = started.elapsed();
        metrics::histogram!("shipgate_webhook_delivery_duration_seconds")
            .record(elapsed.as_secs_f64());
        let at = now_millis();
        let (http_status, error) = match &sent {
            Sent::Ok(s) => (Some(i64::from(*s)), None),
            Sent::Refused(s) => (Some(i64::from(*s)), Some(format!("answered {s}"))),
            Sent::Failed(e) => (None, Some(e.clone())),
        };
        let window_ms = self.settings.retry_window_secs.saturating_mul(1000) as i64;
        // (state stored, next attempt, outcome counted)
        let (state, next_attempt_at, outcome) = match sent {
            Sent::Ok(_) => (DeliveryState::Delivered, at, "delivered"),
            _ if at - job.window_start >= window_ms => (DeliveryState::Dead, at, "dead"),
            _ => (
                DeliveryState::Pending,
                at + backoff(&self.settings, job.attempt).as_millis() as i64,
                "retry",
            ),
        };
        metrics::counter!("shipgate_webhook_deliveries_total", "outcome" => outcome).increment(1);
        if state == DeliveryState::Dead {
            tracing::warn!(
                delivery = %job.id,
                event_id = %event_id,
                attempts = job.attempt,
                error = error.as_deref().unwrap_or_default(),
                "webhook delivery dead-lettered after its retry window"
            );
        } else if state == DeliveryState::Pending {
            tracing::info!(
                delivery = %job.id,
                attempt = job.attempt,
                error = error.as_deref().unwrap_or_default(),
                "webhook delivery failed; retrying later"
            );
        }
        let record = AttemptRecord {
            delivery_id: &job.id,
            attempt: job.attempt,
            at,
            http_status,
            error: error.as_deref(),
            duration_ms: elapsed.as_millis() as i64,
            state,
            next_attempt_at,
        };
        if let Err(e) = self.db.record_attempt(&record).await {
            // The lease runs out and the delivery is sent again: at least once.
            tracing::warn!(delivery = %job.id, error = %e, "recording a webhook attempt");
        }
    }

    async fn send(&self, job: &Job, event_id: &str, body: Vec<u8>) -> Sent {
        let url = match reqwest::Url::parse(&job.url) {
            Ok(url) => url,
            Err(e) => return Sent::Failed(format!("invalid endpoint URL: {e}")),
        };
        if !crate::outbound::port_allowed(&url, &self.settings.allowed_ports) {
            return Sent::Failed(
                "target not allowed: its port is not in webhooks.allowed_ports".into(),
            );
        }
        // Names are checked as they resolve; an address written in the URL here.
        if !self.settings.allow_private_targets
            && let Some(why) = crate::outbound::refused_host(&url)
        {
            return Sent::Failed(format!("target not allowed: {why}"));
        }
        let timestamp = now_millis() / 1000;
        let signature = super::signature(&job.secret, event_id, timestamp, &body);
        let result = self
            .client
            .post(&job.url)
            .header("content-type", "application/json")
            .header("webhook-id", event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match result {
            Ok(res) if res.status().is_success() => Sent::Ok(res.status().as_u16()),
            Ok(res) => Sent::Refused(res.status().as_u16()),
            Err(e) if e.is_timeout() => {
                Sent::Failed(format!("no answer within {} ms", self.settings.timeout_ms))
            }
            Err(e) if e.is_connect() => Sent::Failed(match source_text(&e) {
                Some(why) if why.contains("no public address") => why,
                _ => "could not connect".into(),
            }),
            Err(e) => Sent::Failed(format!("request failed: {e}")),
        }
    }
}

/// The innermost cause of a request error (a refused name says why).
fn source_text(e: &reqwest::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    last
}

/// The wait after failed attempt `attempt` (1-based): exponential from `initial_backoff_ms`,
/// capped at `max_backoff_ms`, with up to 100 % jitter added.
pub fn backoff(settings: &WebhookSettings, attempt: i64) -> Duration {
    let n = usize::try_from(attempt.max(1) - 1).unwrap_or(0);
    backon::ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(settings.initial_backoff_ms))
        .with_max_delay(Duration::from_millis(settings.max_backoff_ms))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(n)
        .unwrap_or(Duration::from_millis(settings.max_backoff_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WebhookSettings {
        crate::settings::Settings::default().webhooks
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let s = settings();
        let initial = Duration::from_millis(s.initial_backoff_ms);
        let first = backoff(&s, 1);
        assert!(first >= initial && first < initial * 2, "{first:?}");
        let third = backoff(&s, 3);
        assert!(third >= initial * 4 && third < initial * 8, "{third:?}");
        let cap = Duration::from_millis(s.max_backoff_ms);
        let late = backoff(&s, 60);
        assert!(late >= cap && late < cap * 2, "{late:?}");
        // Jitter: not every draw is the same.
        let draws: std::collections::HashSet<_> = (0..20).map(|_| backoff(&s, 5)).collect();
        assert!(draws.len() > 1);
    }

    #[test]
    fn the_default_schedule_retries_for_a_day() {
        // Without jitter the waits are shortest: the attempts made within the window.
        let s = settings();
        let mut t = Duration::ZERO;
        let mut attempts = 1;
        let window = Duration::from_secs(s.retry_window_secs);
        assert!(window >= Duration::from_secs(24 * 3600));
        let mut d = Duration::from_millis(s.initial_backoff_ms);
        while t < window {
            t += d;
            attempts += 1;
            d = (d * 2).min(Duration::from_millis(s.max_backoff_ms));
        }
        assert!((20..60).contains(&attempts), "{attempts} attempts");
    }
}
