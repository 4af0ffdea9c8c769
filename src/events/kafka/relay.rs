//! The relay that moves the outbox to the broker's topics.
//!
//! The producer is idempotent (the broker drops a retried batch it already has, and a partition
//! keeps the order it was sent in). The relay holds a position in the outbox like any consumer,
//! and moves it only after the broker acknowledged every event of a batch: a relay that fails or
//! dies sends the batch again (consumers drop the repeats by event id), it never skips one. One
//! instance relays at a time (the position's lease), so in the normal case nothing is published
//! twice.

use super::{EVENT_ID_HEADER, EVENT_TYPE_HEADER, SEQ_HEADER, TENANT_HEADER, client_config, topic};
use crate::events::{DbBus, Event};
use crate::settings::KafkaSettings;
use crate::store::StoreError;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::sync::{Arc, Mutex};

/// The relay's position in the outbox, kept among the consumers'.
pub const RELAY: &str = "kafka-relay";

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("broker: {0}")]
    Broker(#[from] KafkaError),
    #[error("broker: the delivery was dropped before it was acknowledged")]
    Dropped,
}

#[derive(Clone)]
pub struct Relay {
    bus: DbBus,
    config: ClientConfig,
    /// Replaced by a new one when it fails for good (an idempotent producer can).
    producer: Arc<Mutex<FutureProducer>>,
    prefix: String,
    batch: usize,
}

impl Relay {
    pub fn new(bus: DbBus, settings: &KafkaSettings) -> anyhow::Result<Self> {
        let mut config = client_config(settings);
        config
            // Retries never duplicate or reorder a partition's messages.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Keys land on the partitions Java clients would pick for them.
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("message.timeout.ms", settings.ack_timeout_ms.to_string());
        let producer: FutureProducer = config
            .create()
            .map_err(|e| anyhow::anyhow!("events.kafka: {e}"))?;
        Ok(Self {
            bus,
            config,
            producer: Arc::new(Mutex::new(producer)),
            prefix: settings.topic_prefix.clone(),
            batch: usize::try_from(settings.relay_batch).unwrap_or(1).max(1),
        })
    }

    fn producer(&self) -> FutureProducer {
        self.producer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// After a failed pass: a producer in a fatal state (its idempotence sequence lost) sends
    /// nothing again, so a new one takes its place.
    fn renew_if_fatal(&self, producer: &FutureProducer) {
        let Some((code, reason)) = producer.client().fatal_error() else {
            return;
        };
        tracing::warn!(
            ?code,
            reason,
            "the broker producer failed for good: starting a new one"
        );
        match self.config.create::<FutureProducer>() {
            Ok(fresh) => *self.producer.lock().unwrap_or_else(|e| e.into_inner()) = fresh,
            Err(e) => tracing::warn!(error = %e, "starting a new broker producer"),
        }
    }

    /// Events per pass.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Publishes the next batch of the outbox and waits for the broker to acknowledge all of
    /// it; how many events were relayed (0: none waiting, or another instance relays).
    pub async fn run_once(&self) -> Result<usize, RelayError> {
        let producer = self.producer();
        let prefix = self.prefix.as_str();
        let sent = self
            .bus
            .forward(RELAY, self.batch, |events| {
                publish(&producer, prefix, events)
            })
            .await;
        match sent {
            Ok(n) => {
                metrics::counter!("shipgate_events_relayed_total").increment(n as u64);
                Ok(n)
            }
            Err(e) => {
                metrics::counter!("shipgate_events_relay_failures_total").increment(1);
                self.renew_if_fatal(&producer);
                Err(e)
            }
        }
    }
}

async fn publish(
    producer: &FutureProducer,
    prefix: &str,
    events: Vec<Event>,
) -> Result<(), RelayError> {
    let mut deliveries = Vec::with_capacity(events.len());
    for event in &events {
        let topic = topic(prefix, &event.event_type);
        let seq = event.seq.to_string();
        let headers = OwnedHeaders::new_with_capacity(4)
            .insert(Header {
                key: EVENT_ID_HEADER,
                value: Some(event.id.as_bytes()),
            })
            .insert(Header {
                key: EVENT_TYPE_HEADER,
                value: Some(event.event_type.as_bytes()),
            })
            .insert(Header {
                key: TENANT_HEADER,
                value: Some(event.tenant_id.as_bytes()),
            })
            .insert(Header {
                key: SEQ_HEADER,
                value: Some(seq.as_bytes()),
            });
        let record = FutureRecord::to(&topic)
            .key(event.aggregate.as_bytes())
            .payload(event.payload.as_bytes())
            .timestamp(event.created_at_ms)
            .headers(headers);
        match producer.send_result(record) {
            Ok(delivery) => deliveries.push(delivery),
            // The local queue is full or the producer failed: what was queued still goes out,
            // and the whole batch is sent again on the next pass (repeats are dropped by id).
            Err((e, _)) => return Err(RelayError::Broker(e)),
        }
    }
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(RelayError::Broker(e)),
            Err(_) => return Err(RelayError::Dropped),
        }
    }
    Ok(())
}
