//! The instance's background work: the tracking poller (with the cache repairs after a Redis
//! outage) and the webhook delivery worker. A server runs them as tasks; tests and tools can
//! instead run them one step at a time ([`BackgroundJobs::run_once`]).

use super::AbortOnDrop;
use crate::lifecycle::Draining;
use crate::store::Db;
use crate::tracking::TrackingService;
use crate::tracking::poller::Poller;
use crate::webhooks::worker::Worker;
use std::time::Duration;

/// How an application runs its background work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Background {
    /// As tasks of the process (a server).
    Spawned,
    /// Only when asked, through [`BackgroundJobs::run_once`].
    OnDemand,
}

/// How often the gauges of `/metrics` that need the database are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How often SKUs due a push to their channels are looked for.
const PUSH_EVERY: Duration = Duration::from_millis(100);
/// How often shops due a pull and write-backs due are looked for.
const CHANNELS_EVERY: Duration = Duration::from_secs(1);
/// How often pending ledger transfers past their timeout are looked for.
const EXPIRE_TRANSFERS_EVERY: Duration = Duration::from_secs(1);
/// How long a step waits for a marketplace's first order message.
const MESSAGE_WAIT: Duration = Duration::from_millis(200);
/// How long the relay (or a subscription) rests after its broker failed.
const RELAY_RETRY: Duration = Duration::from_secs(1);
/// How often old deliveries and receipts are pruned.
const MAINTAIN_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct BackgroundJobs {
    pub(super) db: Db,
    pub(super) draining: Draining,
    pub(super) tracking: TrackingService,
    /// `None` when `tracking.polling.enabled` is off.
    pub(super) poller: Option<Poller>,
    /// `None` when `webhooks.enabled` is off.
    pub(super) worker: Option<Worker>,
    pub(super) receipt_retention_days: u64,
    /// `None` when this instance does not run the inventory service; else the service (for
    /// expiring allocations) and the pusher of available-to-sell to channels.
    pub(super) inventory: Option<(
        crate::inventory::InventoryService,
        crate::inventory::ats::AtsPusher,
    )>,
    /// How often expired allocations are released.
    pub(super) expiry_every: Duration,
    /// `None` when this instance does not run the orders service.
    pub(super) orders: Option<crate::orders::OrdersService>,
    /// `None` when this instance does not run the finance service; else the ledger (for
    /// expiring pending transfers).
    pub(super) finance: Option<crate::finance::FinanceService>,
    /// How often the orders processor looks for due orders and shipments.
    pub(super) orders_every: Duration,
    /// The event consumers this instance runs.
    pub(super) consumers: crate::events::ConsumerRunner,
    /// Marketplaces' order messages this instance consumes (`orders.subscriptions`).
    pub(super) subscriptions: Vec<std::sync::Arc<crate::orders::subscribe::Subscription>>,
    /// `None` unless this instance relays the outbox to a broker (`events.kafka`).
    pub(super) relay: Option<crate::events::kafka::Relay>,
    pub(super) event_retention_days: u64,
}

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub polled: usize,
    pub delivered: usize,
    /// Allocations released because they expired.
    pub expired: usize,
    /// Events consumers moved over (handed to them or not wanted).
    pub events: usize,
    /// Events relayed to the broker.
    pub relayed: usize,
    /// SKUs whose available-to-sell was settled on a channel.
    pub pushed: usize,
    /// Orders planned (allocated and given shipments, or held).
    pub planned: usize,
    /// Shipments sent to the gateway.
    pub shipped: usize,
    /// Orders read from shops by their pulls.
    pub pulled: usize,
    /// Tracking numbers written back to channels.
    pub written_back: usize,
    /// Pending ledger transfers voided because their timeout passed.
    pub transfers_expired: usize,
    /// Marketplace order messages taken from their brokers.
    pub messages: usize,
}

impl BackgroundJobs {
    /// One step of everything: rewrite answers the cache missed, one poll round, one batch of
    /// due webhook deliveries (sent concurrently, each attempt recorded before this returns).
    pub async fn run_once(&self) -> Step {
        crate::api::health::sample_gauges(&self.db, &self.draining).await;
        self.tracking.repair_cache().await;
        let mut step = Step::default();
        if let Some(poller) = &self.poller {
            match poller.round().await {
                Ok(n) => step.polled = n,
                Err(e) => tracing::warn!(error = %e, "tracking poll round failed"),
            }
        }
        if let Some((inventory, _)) = &self.inventory {
            match inventory.expire_due(500).await {
                Ok(n) => step.expired = n,
                Err(e) => tracing::warn!(error = %e, "releasing expired allocations failed"),
            }
        }
        if let Some(finance) = &self.finance {
            match finance.expire_pending(500).await {
                Ok(n) => step.transfers_expired = n,
                Err(e) => tracing::warn!(error = %e, "expiring pending transfers failed"),
            }
        }
        step.events = self.consumers.run_once().await;
        if let Some(relay) = &self.relay {
            loop {
                match relay.run_once().await {
                    Ok(0) => break,
                    Ok(n) => step.relayed += n,
                    Err(e) => {
                        tracing::warn!(error = %e, "relaying events to the broker failed");
                        break;
                    }
                }
            }
        }
        for subscription in &self.subscriptions {
            loop {
                match subscription.run_once(100, MESSAGE_WAIT).await {
                    Ok(0) => break,
                    Ok(n) => step.messages += n,
                    Err(e) => {
                        tracing::warn!(error = %e, "taking order messages failed");
                        break;
                    }
                }
            }
        }
        if let Some(orders) = &self.orders {
            orders.sample_promises().await;
            step.pulled = orders.pull_due().await;
            (step.planned, step.shipped) = orders.run_once().await;
            step.written_back = orders.write_back_due().await;
        }
        if let Some((_, pusher)) = &self.inventory {
            step.pushed = pusher.run_once(100).await;
        }
        if let Some(worker) = &self.worker {
            step.delivered = worker.run_once().await;
        }
        step
    }

    /// One round of the orders service's pulls from its shops alone (what a test of the pull
    /// times); how many orders they read.
    pub async fn pull_orders(&self) -> usize {
        match &self.orders {
            Some(orders) => orders.pull_due().await,
            None => 0,
        }
    }

    /// The tasks of the internal services: expiring allocations, and the event consumers.
    pub(super) fn spawn_services(&self, draining: &Draining) -> Vec<AbortOnDrop> {
        let mut tasks: Vec<AbortOnDrop> = self
            .consumers
            .spawn(draining.clone())
            .into_iter()
            .map(AbortOnDrop)
            .collect();
        if let Some(relay) = self.relay.clone() {
            let (draining, idle) = (draining.clone(), self.consumers.idle());
            tasks.push(AbortOnDrop(tokio::spawn(async move {
                while !draining.is_set() {
                    match relay.run_once().await {
                        // A full batch: more is waiting.
                        Ok(n) if n == relay.batch() => continue,
                        Ok(_) => tokio::time::sleep(idle).await,
                        Err(e) => {
                            tracing::warn!(error = %e, "relaying events to the broker failed");
                            tokio::time::sleep(RELAY_RETRY).await;
                        }
                    }
                }
            })));
        }
        for subscription in self.subscriptions.clone() {
            let draining = draining.clone();
            tasks.push(AbortOnDrop(tokio::spawn(async move {
                while !draining.is_set() {
                    if let Err(e) = subscription.run_once(100, Duration::from_secs(1)).await {
                        tracing::warn!(error = %e, "taking order messages failed");
                        tokio::time::sleep(RELAY_RETRY).await;
                    }
                }
            })));
        }
        if let Some(orders) = self.orders.clone() {
            // Planning and sending side by side: the shipments of one batch go to the gateway
            // while the next orders are planned.
            let planner = orders.clone();
            tasks.push(until_idle_every(self.orders_every, move || {
                let planner = planner.clone();
                async move { planner.plan_step().await }
            }));
            let sender = orders.clone();
            tasks.push(until_idle_every(self.orders_every, move || {
                let sender = sender.clone();
                async move { sender.send_step().await }
            }));
            let channels = self.orders.clone();
            tasks.push(AbortOnDrop(tokio::spawn(async move {
                let Some(orders) = channels else { return };
                let mut tick = tokio::time::interval(CHANNELS_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut ticks = 0u64;
                loop {
                    tick.tick().await;
                    orders.pull_due().await;
                    while orders.write_back_due().await > 0 {}
                    if ticks.is_multiple_of(5) {
                        orders.sample_promises().await;
                    }
                    ticks += 1;
                }
            })));
        }
        if let Some(finance) = self.finance.clone() {
            tasks.push(AbortOnDrop(tokio::spawn(async move {
                let mut tick = tokio::time::interval(EXPIRE_TRANSFERS_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if let Err(e) = finance.expire_pending(500).await {
                        tracing::warn!(error = %e, "expiring pending transfers failed");
                    }
                }
            })));
        }
        if let Some((inventory, pusher)) = self.inventory.clone() {
            let every = self.expiry_every;
            tasks.push(AbortOnDrop(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    if let Err(e) = inventory.expire_due(500).await {
                        tracing::warn!(error = %e, "releasing expired allocations failed");
                    }
                }
            })));
            tasks.push(AbortOnDrop(tokio::spawn(async move {
                let mut tick = tokio::time::interval(PUSH_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    pusher.run_once(100).await;
                }
            })));
        }
        tasks
    }

    /// Housekeeping, once a minute in a server: finished and dead webhook deliveries past
    /// `webhooks.retention_days`, push receipts past `tracking.callback_receipt_retention_days`.
    pub async fn maintain(&self) {
        if let Some(worker) = &self.worker {
            worker.prune().await;
        }
        let days = i64::try_from(self.event_retention_days).unwrap_or(i64::MAX / 86_400_000);
        let before = crate::store::now_millis() - days.saturating_mul(86_400_000);
        match crate::events::prune(&self.db, before, 10_000).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "pruned old events"),
            Err(e) => tracing::warn!(error = %e, "pruning old events"),
        }
        match crate::events::kafka::prune_handled(&self.db, before, 10_000).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(ids = n, "pruned old handled-event ids"),
            Err(e) => tracing::warn!(error = %e, "pruning old handled-event ids"),
        }
        let days = i64::try_from(self.receipt_retention_days).unwrap_or(i64::MAX / 86_400_000);
        let before = crate::store::now_millis() - days.saturating_mul(86_400_000);
        match self.db.prune_receipts(before, 5_000).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(receipts = n, "pruned old push receipts"),
            Err(e) => tracing::warn!(error = %e, "pruning old push receipts"),
        }
    }

    /// Starts the poller (or, without polling, the cache repairs) and the delivery worker as
    /// tasks; the returned handles stop them when dropped.
    pub(super) fn spawn(
        &self,
        draining: &Draining,
    ) -> (Option<AbortOnDrop>, Option<AbortOnDrop>, AbortOnDrop) {
        let (jobs, sampling) = (self.clone(), draining.clone());
        let sampler = AbortOnDrop(tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            let mut last_maintained = std::time::Instant::now();
            loop {
                tick.tick().await;
                crate::api::health::sample_gauges(&jobs.db, &sampling).await;
                if last_maintained.elapsed() >= MAINTAIN_EVERY {
                    last_maintained = std::time::Instant::now();
                    jobs.maintain().await;
                }
            }
        }));
        let poller = match &self.poller {
            Some(poller) => poller.clone().spawn(draining.clone()),
            None => {
                // Without polling the cache still needs its repairs after a Redis outage.
                let tracking = self.tracking.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_secs(1));
                    loop {
                        tick.tick().await;
                        tracking.repair_cache().await;
                    }
                })
            }
        };
        let worker = self
            .worker
            .as_ref()
            .map(|w| AbortOnDrop(w.clone().spawn(draining.clone())));
        (Some(AbortOnDrop(poller)), worker, sampler)
    }
}

/// Runs `step` every `every`, and at once again while it finds work (a full batch left more).
fn until_idle_every<F, Fut>(every: Duration, mut step: F) -> AbortOnDrop
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = usize> + Send + 'static,
{
    AbortOnDrop(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            while step().await > 0 {}
        }
    }))
}
