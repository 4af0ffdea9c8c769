//! The bus on the broker: each consumer is a member of its own consumer group
//! (`{group_prefix}{name}`) over every event topic, so instances running the same consumer share
//! its partitions, and one aggregate's events (one key, one partition) reach one member in order.
//!
//! A batch is handled in one database transaction that first records each event's id under the
//! consumer (`event_handled`): an event whose id is already there was handled before (a batch
//! delivered again after a crash, a rebalance, or the relay sending it twice) and is skipped.
//! The offsets are committed only after that transaction: a member killed between the two hands
//! the batch to the next member, which finds the ids recorded and handles nothing twice. A batch
//! whose handling failed is read again from its first offsets.

use crate::events::{Consumer, Event, EventBus};
use crate::settings::KafkaSettings;
use crate::store::sql::{self, Arg};
use crate::store::{Db, StoreError, now_millis};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// After the first message of a batch, how long a member waits for each further one before it
/// handles what it has.
const TOP_UP_WAIT: Duration = Duration::from_millis(5);

pub struct KafkaBus {
    db: Db,
    config: ClientConfig,
    topics: Vec<String>,
    group_prefix: String,
    /// How long a member waits for a first event before it reports none.
    wait: Duration,
    members: Mutex<HashMap<String, Arc<Member>>>,
}

/// One consumer's membership of its group.
struct Member {
    consumer: Arc<StreamConsumer>,
    /// One batch at a time: a batch's offsets are committed (or rewound) before the next.
    turn: Arc<tokio::sync::Mutex<()>>,
}

/// A batch taken from the broker and not yet committed.
pub struct Taken {
    member: Arc<Member>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
    events: Vec<Event>,
    spans: super::Spans,
}

impl KafkaBus {
    pub fn new(db: Db, settings: &KafkaSettings, wait: Duration) -> Self {
        let mut config = super::client_config(settings);
        config
            // Offsets move only when a batch was handled (see `Taken::commit`).
            .set("enable.auto.commit", "false")
            // A new group starts from the oldest event the broker keeps: nothing is skipped.
            .set("auto.offset.reset", "earliest")
            // A partition's assignment moves to a live member when one goes quiet this long.
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            // A fetch the broker holds for want of data returns within this: a broker that does
            // not answer a waiting fetch as soon as data arrives (tansu) adds at most this.
            .set("fetch.wait.max.ms", "100");
        Self {
            db,
            config,
            topics: super::topics(&settings.topic_prefix),
            group_prefix: settings.group_prefix.clone(),
            wait,
            members: Mutex::new(HashMap::new()),
        }
    }

    fn member(&self, name: &str) -> Result<Arc<Member>, StoreError> {
        let mut members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(member) = members.get(name) {
            return Ok(member.clone());
        }
        let mut config = self.config.clone();
        config.set("group.id", format!("{}{name}", self.group_prefix));
        let consumer: StreamConsumer = config.create().map_err(StoreError::decode)?;
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(StoreError::decode)?;
        let member = Arc::new(Member {
            consumer: Arc::new(consumer),
            turn: Arc::new(tokio::sync::Mutex::new(())),
        });
        members.insert(name.to_owned(), member.clone());
        Ok(member)
    }

    /// How many partitions the group gave this instance's member for `name` (0 before it joined).
    pub fn assigned(&self, name: &str) -> usize {
        self.member(name)
            .ok()
            .and_then(|m| m.consumer.assignment().ok())
            .map_or(0, |a| a.count())
    }

    /// Up to `max` events for the consumer `name`, waiting for the first at most the bus's wait;
    /// `None` when none came.
    pub async fn take(&self, name: &str, max: usize) -> Result<Option<Taken>, StoreError> {
        let member = self.member(name)?;
        let turn = member.turn.clone().lock_owned().await;
        let mut events = Vec::new();
        let mut spans = super::Spans::default();
        let mut wait = self.wait;
        while events.len() < max.max(1) {
            let Ok(message) = tokio::time::timeout(wait, member.consumer.recv()).await else {
                break;
            };
            let message = message.map_err(StoreError::decode)?;
            spans.note(message.topic(), message.partition(), message.offset());
            events.push(event_of(&message));
            wait = TOP_UP_WAIT;
        }
        Ok((!events.is_empty()).then_some(Taken {
            member,
            _turn: turn,
            events,
            spans,
        }))
    }

    /// Handles `taken` with `consumer` in one transaction, skipping the events it handled
    /// before; how many it handled now.
    pub async fn handle(
        &self,
        consumer: &Arc<dyn Consumer>,
        taken: &Taken,
    ) -> Result<usize, StoreError> {
        let (consumer, events) = (consumer.clone(), taken.events.clone());
        let name = consumer.name().to_owned();
        let handled = self
            .db
            .transact(move |conn| {
                Box::pin(async move {
                    let fresh = record_handled(conn, &name, &events).await?;
                    let fresh: Vec<Event> = events
                        .into_iter()
                        .filter(|e| fresh.contains(&e.id))
                        .collect();
                    if !fresh.is_empty() {
                        consumer.handle_batch(conn, &fresh).await?;
                    }
                    crate::events::record_lag(&name, &fresh);
                    Ok::<_, StoreError>(fresh.len())
                })
            })
            .await?;
        Ok(handled)
    }
}

/// Records the ids of `events` as handled by `consumer`; the ids that were not recorded yet.
/// On PostgreSQL a row another transaction is recording waits for it, and counts as recorded
/// once it committed.
async fn record_handled(
    conn: &mut sqlx::AnyConnection,
    consumer: &str,
    events: &[Event],
) -> Result<HashSet<String>, StoreError> {
    let dialect = sql::dialect_of(conn);
    let now = now_millis();
    let mut fresh = HashSet::with_capacity(events.len());
    for chunk in events.chunks(1_000) {
        let query = format!(
            "INSERT INTO event_handled (consumer, event_id, handled_at_ms) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING event_id",
            sql::rows(chunk.len(), 3)
        );
        let args = chunk
            .iter()
            .flat_map(|e| {
                [
                    Arg::Text(consumer.to_owned()),
                    Arg::Text(e.id.clone()),
                    Arg::Int(now),
                ]
            })
            .collect();
        for row in sql::statement(dialect, &query, args)
            .fetch_all(&mut *conn)
            .await?
        {
            fresh.insert(row.get::<String, _>(0));
        }
    }
    Ok(fresh)
}

/// The event a message carries: its headers name it; a message without them (not published by
/// the relay) gets an id from where it sits, and no type any consumer acts on.
fn event_of(message: &BorrowedMessage<'_>) -> Event {
    let header = |name: &str| {
        message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == name))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let id = header(super::EVENT_ID_HEADER).unwrap_or_else(|| {
        format!(
            "kafka:{}:{}:{}",
            message.topic(),
            message.partition(),
            message.offset()
        )
    });
    Event {
        seq: header(super::SEQ_HEADER)
            .and_then(|s| s.parse().ok())
            .unwrap_or(message.offset()),
        id,
        tenant_id: header(super::TENANT_HEADER).unwrap_or_default(),
        event_type: header(super::EVENT_TYPE_HEADER).unwrap_or_default(),
        aggregate: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
        payload: String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
        created_at_ms: message.timestamp().to_millis().unwrap_or_else(now_millis),
    }
}

impl Taken {
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Commits the offsets past the batch: the group will not hand it out again.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.spans
            .commit(&self.member.consumer)
            .await
            .map_err(StoreError::decode)
    }

    /// Reads the batch's partitions again from its first offsets (after its handling failed).
    pub async fn rewind(self) {
        self.spans.rewind(&self.member.consumer).await;
    }
}

#[async_trait::async_trait]
impl EventBus for KafkaBus {
    async fn deliver(&self, consumer: &Arc<dyn Consumer>, max: usize) -> Result<usize, StoreError> {
        let Some(taken) = self.take(consumer.name(), max).await? else {
            return Ok(0);
        };
        let count = taken.events.len();
        match self.handle(consumer, &taken).await {
            Ok(handled) => {
                metrics::counter!("shipgate_events_handled_total",
                    "consumer" => consumer.name().to_owned())
                .increment(handled as u64);
                // Handled and recorded: a commit that fails only means the batch comes again,
                // and is skipped by id.
                if let Err(e) = taken.commit().await {
                    tracing::warn!(consumer = consumer.name(), error = %e, "committing offsets");
                }
                Ok(count)
            }
            Err(e) => {
                taken.rewind().await;
                Err(e)
            }
        }
    }
}

/// Forgets handled ids recorded before `before_ms` (at most `limit`); how many. Keep them at
/// least as long as the broker keeps events.
pub async fn prune_handled(db: &Db, before_ms: i64, limit: i64) -> Result<u64, StoreError> {
    Ok(db
        .write(
            sqlx::query(
                "DELETE FROM event_handled WHERE (consumer, event_id) IN (SELECT consumer, \
                 event_id FROM event_handled WHERE handled_at_ms < $1 LIMIT $2)",
            )
            .bind(before_ms)
            .bind(limit),
        )
        .await?
        .rows_affected())
}
