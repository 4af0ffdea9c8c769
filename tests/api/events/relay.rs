//! The outbox relayed to the broker: every event on its family's topic, keyed by its aggregate,
//! with its id, type and tenant in headers, in order, once; and nothing lost while the broker is
//! away.

use crate::helpers::{Backend, kafka_brokers, spawn_app_with, waybill_request};
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use reqwest::Method;
use serde_json::Value;
use shipgate::events::kafka::FAMILIES;
use shipgate::settings::KafkaSettings;
use std::time::Duration;

/// A topic prefix of this test alone, with its families' topics created (3 partitions each).
pub async fn fresh_topics(brokers: &str) -> String {
    let prefix = format!("t{}.", uuid::Uuid::new_v4().simple());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let names: Vec<String> = FAMILIES.iter().map(|f| format!("{prefix}{f}")).collect();
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, 3, TopicReplication::Fixed(1)))
        .collect();
    for made in admin
        .create_topics(&topics, &AdminOptions::new())
        .await
        .expect("create topics")
    {
        made.expect("topic created");
    }
    prefix
}

pub fn kafka_settings(brokers: &str, prefix: &str) -> KafkaSettings {
    KafkaSettings {
        brokers: brokers.to_owned(),
        topic_prefix: prefix.to_owned(),
        relay: true,
        relay_batch: 5_000,
        ack_timeout_ms: 5_000,
        // These tests look at the topics themselves; `consume` has tests of its own.
        consume: false,
        group_prefix: format!("{prefix}group."),
        sasl: None,
    }
}

/// `count` waybills created through the API (references `{reference}-{i}`), the one at `cancel`
/// then cancelled; their numbers.
pub async fn create_waybills(
    app: &crate::helpers::TestApp,
    reference: &str,
    count: usize,
    cancel: Option<usize>,
) -> Vec<String> {
    let mut numbers = Vec::new();
    for i in 0..count {
        let created = app
            .create(&waybill_request(&format!("{reference}-{i}")))
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        numbers.push(created.waybill_number().to_owned());
    }
    if let Some(i) = cancel {
        let path = format!("/v1/waybills/{}/cancel", numbers[i]);
        let cancelled = app
            .call(
                Method::POST,
                &path,
                "/v1/waybills/{number}/cancel",
                Some(&app.key),
                None,
            )
            .await;
        assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    }
    numbers
}

/// One message as the tests look at it.
#[derive(Debug)]
struct Seen {
    partition: i32,
    /// The event's position in the outbox (`event-seq`).
    seq: i64,
    key: String,
    event_id: String,
    event_type: String,
    tenant: String,
    body: Value,
}

/// Reads `topic` from the start until `count` messages arrived (or 30 s passed).
async fn read_topic(brokers: &str, topic: &str, count: usize) -> Vec<Seen> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("test-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < count {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(msg) = tokio::time::timeout(left, consumer.recv()).await else {
            break;
        };
        let msg = msg.expect("message");
        let header = |name: &str| {
            msg.headers()
                .and_then(|h| h.iter().find(|x| x.key == name))
                .and_then(|x| x.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        seen.push(Seen {
            partition: msg.partition(),
            seq: header("event-seq").parse().expect("event-seq header"),
            key: String::from_utf8_lossy(msg.key().unwrap_or_default()).into_owned(),
            event_id: header("event-id"),
            event_type: header("event-type"),
            tenant: header("tenant-id"),
            body: serde_json::from_slice(msg.payload().unwrap_or_default()).expect("JSON body"),
        });
    }
    seen
}

async fn relays_each_event_once_in_order(backend: Backend) {
    needs!(Kafka);
    let brokers = kafka_brokers();
    let prefix = fresh_topics(&brokers).await;
    let settings = kafka_settings(&brokers, &prefix);
    let app = spawn_app_with(backend, |s| s.events.kafka = Some(settings)).await;

    let numbers = create_waybills(&app, "PO-KAFKA", 3, Some(1)).await;

    let step = app.run_background().await;
    assert_eq!(step.relayed, 4, "three created, one cancelled: {step:?}");
    let seen = read_topic(&brokers, &format!("{prefix}waybills"), 4).await;
    assert_eq!(seen.len(), 4, "{seen:?}");
    for m in &seen {
        assert!(m.event_id.starts_with("evt_"), "{m:?}");
        assert_eq!(m.body["eventId"], m.event_id.as_str(), "{m:?}");
        assert_eq!(m.body["type"], m.event_type.as_str(), "{m:?}");
        assert_eq!(m.tenant, app.tenant_id, "{m:?}");
        assert!(m.key.starts_with("waybill:"), "{m:?}");
    }
    // One aggregate's events share a key (hence a partition) and keep their order.
    let of_cancelled: Vec<&Seen> = seen
        .iter()
        .filter(|m| m.body["waybill"]["waybillNumber"] == numbers[1].as_str())
        .collect();
    let types: Vec<&str> = of_cancelled.iter().map(|m| m.event_type.as_str()).collect();
    assert_eq!(types, ["waybill.created", "waybill.cancelled"]);
    assert_eq!(of_cancelled[0].key, of_cancelled[1].key);
    let mut ids: Vec<&str> = seen.iter().map(|m| m.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "no event published twice");

    // The position moved past them: the next pass publishes nothing again.
    assert_eq!(app.run_background().await.relayed, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM event_consumers WHERE name = 'kafka-relay'")
            .await,
        1
    );
}

async fn keeps_events_while_the_broker_is_away(backend: Backend) {
    needs!(Kafka);
    // Nothing listens here: every pass fails, and the events stay in the outbox.
    let away = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        socket.local_addr().expect("address").to_string()
    };
    let mut settings = kafka_settings(&away, "away.");
    settings.ack_timeout_ms = 500;
    let app = spawn_app_with(backend, |s| {
        s.events.kafka = Some(settings);
        // Everything handled is old enough to prune at once: only the relay can keep it.
        s.events.retention_days = 0;
    })
    .await;
    let created = app.create(&waybill_request("PO-KAFKA-AWAY")).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(app.run_background().await.relayed, 0);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM numbered_events e JOIN event_consumers c ON c.name = 'kafka-relay' \
             WHERE e.seq > c.position"
        )
        .await,
        1,
        "the unacknowledged event is still ahead of the relay"
    );
    // Old events are pruned only once the relay has them too.
    app.run_maintenance().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM events").await, 1);
}

/// A broker of the test's own on `port` (in-memory storage: it starts empty), stopped on drop.
struct OwnBroker(std::process::Child);

impl OwnBroker {
    fn start(port: u16) -> Self {
        let bin = std::env::var("TEST_KAFKA_BIN").expect("TEST_KAFKA_BIN (scripts/test.sh)");
        let url = format!("tcp://127.0.0.1:{port}");
        let child = std::process::Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("broker starts");
        Self(child)
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The broker is away while events are written: the relay fails, keeps them, and when the broker
/// comes the backlog goes out in order, each event once.
async fn the_backlog_drains_when_the_broker_returns(backend: Backend) {
    needs!(Kafka);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("port")
        .port();
    let brokers = format!("127.0.0.1:{port}");
    let mut settings = kafka_settings(&brokers, "back.");
    settings.ack_timeout_ms = 1_000;
    let app = spawn_app_with(backend, |s| s.events.kafka = Some(settings)).await;
    let numbers = create_waybills(&app, "PO-BACKLOG", 5, None).await;
    assert_eq!(app.run_background().await.relayed, 0, "no broker yet");

    let _broker = OwnBroker::start(port);
    // Ready once it takes a topic (in-memory storage: topics are made each start).
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("admin client");
    let topic = NewTopic::new("back.waybills", 3, TopicReplication::Fixed(1));
    crate::helpers::wait_until("the broker takes a topic", 30, || async {
        let made = admin.create_topics([&topic], &AdminOptions::new()).await;
        made.is_ok_and(|r| r.iter().all(Result::is_ok))
            .then_some(())
    })
    .await;
    let relayed = std::cell::Cell::new(0);
    crate::helpers::wait_until("the backlog is relayed", 60, || async {
        relayed.set(relayed.get() + app.run_background().await.relayed);
        (relayed.get() >= 5).then_some(())
    })
    .await;
    assert_eq!(relayed.get(), 5, "each event relayed once");
    let seen = read_topic(&brokers, "back.waybills", 5).await;
    let mut got: Vec<&str> = seen
        .iter()
        .map(|m| {
            m.body["waybill"]["waybillNumber"]
                .as_str()
                .unwrap_or_default()
        })
        .collect();
    got.sort_unstable();
    let mut want: Vec<&str> = numbers.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want, "{seen:?}");
    // In order: each partition holds its events in outbox order.
    for partition in 0..3 {
        let seqs: Vec<i64> = seen
            .iter()
            .filter(|m| m.partition == partition)
            .map(|m| m.seq)
            .collect();
        assert!(seqs.is_sorted(), "partition {partition}: {seqs:?}");
    }
}

#[tokio::test]
async fn sqlite_the_backlog_drains_when_the_broker_returns() {
    the_backlog_drains_when_the_broker_returns(Backend::Sqlite).await;
}

#[tokio::test]
async fn sqlite_relays_each_event_once_in_order() {
    relays_each_event_once_in_order(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_relays_each_event_once_in_order() {
    needs!(Postgres);
    relays_each_event_once_in_order(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_keeps_events_while_the_broker_is_away() {
    keeps_events_while_the_broker_is_away(Backend::Sqlite).await;
}
