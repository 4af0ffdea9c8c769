//! Runs consumers: a task per consumer in a server, or every consumer until it is caught up
//! when a test or tool asks.

use super::{Consumer, EventBus};
use crate::lifecycle::Draining;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct ConsumerRunner {
    bus: Arc<dyn EventBus>,
    consumers: Vec<Arc<dyn Consumer>>,
    batch: usize,
    idle: Duration,
}

impl ConsumerRunner {
    pub fn new(bus: Arc<dyn EventBus>, batch: usize, idle: Duration) -> Self {
        Self {
            bus,
            consumers: Vec::new(),
            batch: batch.max(1),
            idle,
        }
    }

    pub fn with(mut self, consumer: Arc<dyn Consumer>) -> Self {
        self.consumers.push(consumer);
        self
    }

    /// How long a consumer with nothing to do rests.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    pub fn is_empty(&self) -> bool {
        self.consumers.is_empty()
    }

    /// Hands every consumer its events until none is left; how many numbers they moved over.
    pub async fn run_once(&self) -> usize {
        let mut handled = 0;
        for consumer in &self.consumers {
            loop {
                match self.bus.deliver(consumer, self.batch).await {
                    Ok(0) => break,
                    Ok(n) => handled += n,
                    Err(e) => {
                        tracing::warn!(consumer = consumer.name(), error = %e, "event handling failed");
                        break;
                    }
                }
            }
        }
        handled
    }

    /// A task per consumer: a full batch is followed at once by the next, otherwise it rests
    /// for the idle interval. Stops taking batches when the instance drains.
    pub fn spawn(&self, draining: Draining) -> Vec<tokio::task::JoinHandle<()>> {
        self.consumers
            .iter()
            .map(|consumer| {
                let (bus, consumer, draining) =
                    (self.bus.clone(), consumer.clone(), draining.clone());
                let (batch, idle) = (self.batch, self.idle);
                tokio::spawn(async move {
                    while !draining.is_set() {
                        match bus.deliver(&consumer, batch).await {
                            Ok(n) if n == batch => continue,
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(consumer = consumer.name(), error = %e, "event handling failed");
                            }
                        }
                        tokio::time::sleep(idle).await;
                    }
                })
            })
            .collect()
    }
}
