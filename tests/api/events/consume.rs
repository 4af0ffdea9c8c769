//! The services' consumers on the broker: members of a consumer group each, sharing its
//! partitions between instances, committing offsets only after the handling, and handling each
//! event once even when a member dies between the two.

use super::relay::{fresh_topics, kafka_settings};
use crate::helpers::{Backend, TestApp, kafka_brokers, spawn_app_with, wait_until};
use shipgate::events::kafka::KafkaBus;
use shipgate::events::{Consumer, Event, EventBus};
use shipgate::store::StoreError;
use sqlx::{AnyConnection, Row};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Records every event it handles in `seen`, in the handling transaction; fails its first batch
/// when told to.
struct Recorder {
    fail_once: AtomicBool,
}

const RECORDER: &str = "recorder";

#[async_trait::async_trait]
impl Consumer for Recorder {
    fn name(&self) -> &str {
        RECORDER
    }

    async fn handle(&self, conn: &mut AnyConnection, event: &Event) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO seen (event_id, event_type, aggregate) VALUES ($1, $2, $3)")
            .bind(&event.id)
            .bind(&event.event_type)
            .bind(&event.aggregate)
            .execute(&mut *conn)
            .await?;
        if self.fail_once.swap(false, Ordering::SeqCst) {
            return Err(StoreError::decode("the consumer failed once"));
        }
        Ok(())
    }
}

async fn seen(app: &TestApp) -> Vec<(String, String, String)> {
    sqlx::query("SELECT event_id, event_type, aggregate FROM seen ORDER BY n")
        .fetch_all(&app.db.pool)
        .await
        .expect("seen")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// An app relaying to fresh topics (its own consumers stay on the database), a `seen` table,
/// and two buses as two instances' members of one group.
async fn set_up(backend: Backend) -> (TestApp, KafkaBus, KafkaBus) {
    let brokers = kafka_brokers();
    let prefix = fresh_topics(&brokers).await;
    let settings = kafka_settings(&brokers, &prefix);
    let app = spawn_app_with(backend, |s| s.events.kafka = Some(settings.clone())).await;
    let serial = match backend {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGSERIAL PRIMARY KEY",
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE seen (n {serial}, event_id TEXT NOT NULL, event_type TEXT NOT NULL, \
         aggregate TEXT NOT NULL)"
    )))
    .execute(&app.db.pool)
    .await
    .expect("seen table");
    let wait = Duration::from_millis(200);
    let a = KafkaBus::new(app.db.clone(), &settings, wait);
    let b = KafkaBus::new(app.db.clone(), &settings, wait);
    (app, a, b)
}

/// Waybills created (and one cancelled) through the API, relayed to the broker; the outbox's
/// event ids.
async fn write_events(app: &TestApp, waybills: usize) -> Vec<String> {
    super::relay::create_waybills(app, "PO-GROUP", waybills, Some(0)).await;
    assert_eq!(app.run_background().await.relayed, waybills + 1);
    sqlx::query("SELECT event_id FROM numbered_events ORDER BY seq")
        .fetch_all(&app.db.pool)
        .await
        .expect("outbox")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn a_member_killed_mid_batch_leaves_it_to_the_group(backend: Backend) {
    needs!(Kafka);
    let (app, a, b) = set_up(backend).await;
    let recorder: Arc<dyn Consumer> = Arc::new(Recorder {
        fail_once: AtomicBool::new(false),
    });
    // Both members join; the group splits the three partitions of each topic between them.
    wait_until("both members have partitions", 60, || async {
        let (_, _) = tokio::join!(a.deliver(&recorder, 10), b.deliver(&recorder, 10));
        (a.assigned(RECORDER) > 0 && b.assigned(RECORDER) > 0).then_some(())
    })
    .await;
    assert_eq!(
        a.assigned(RECORDER) + b.assigned(RECORDER),
        18,
        "six topics of three partitions, each partition to one member"
    );
    // Enough waybills that some land in B's partitions too: each aggregate's partition is a
    // hash of its key, and with 12 all of them fell in A's two of three about once in 130 runs.
    let written = write_events(&app, 30).await;

    // A takes a batch and handles it, then dies before committing its offsets.
    let taken = wait_until("member A gets events", 30, || async {
        a.take(RECORDER, 100).await.expect("take")
    })
    .await;
    let handled_by_a = taken.events().len();
    assert_eq!(
        a.handle(&recorder, &taken).await.expect("handled"),
        handled_by_a
    );
    drop(taken);
    drop(a);

    // B gets A's partitions, and with them the batch A never committed: recorded, it is skipped.
    wait_until("every event handled", 60, || async {
        b.deliver(&recorder, 100).await.expect("deliver");
        (seen(&app).await.len() >= written.len()).then_some(())
    })
    .await;
    while b.deliver(&recorder, 100).await.expect("deliver") > 0 {}
    let seen = seen(&app).await;
    let mut ids: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    ids.sort_unstable();
    let mut want: Vec<&str> = written.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(ids, want, "every event handled, each once");
    assert!(
        handled_by_a > 0 && handled_by_a < written.len(),
        "{handled_by_a}"
    );
    // One aggregate's events in their order.
    let first = &seen
        .iter()
        .find(|s| s.1 == "waybill.cancelled")
        .expect("cancel")
        .2;
    let of_first: Vec<&str> = seen
        .iter()
        .filter(|s| &s.2 == first)
        .map(|s| s.1.as_str())
        .collect();
    assert_eq!(of_first, ["waybill.created", "waybill.cancelled"]);
}

async fn a_failed_batch_comes_again(backend: Backend) {
    needs!(Kafka);
    let (app, a, _b) = set_up(backend).await;
    let recorder: Arc<dyn Consumer> = Arc::new(Recorder {
        fail_once: AtomicBool::new(true),
    });
    wait_until("the member has partitions", 60, || async {
        a.deliver(&recorder, 10).await.expect("deliver");
        (a.assigned(RECORDER) > 0).then_some(())
    })
    .await;
    let written = write_events(&app, 3).await;
    let failed = wait_until("the first batch fails", 30, || async {
        a.deliver(&recorder, 100).await.err()
    })
    .await;
    assert!(failed.to_string().contains("failed once"), "{failed}");
    assert!(seen(&app).await.is_empty(), "the failed batch left nothing");
    wait_until("the batch handled on its second delivery", 30, || async {
        a.deliver(&recorder, 100).await.expect("deliver");
        (seen(&app).await.len() >= written.len()).then_some(())
    })
    .await;
    let seen = seen(&app).await;
    assert_eq!(seen.len(), written.len(), "{seen:?}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM event_handled WHERE consumer = 'recorder'")
            .await,
        written.len() as i64
    );
}

/// Through the app: with `events.kafka.consume`, its consumers (here the push of the services'
/// events to webhook endpoints) take their events from the broker, each once.
async fn the_apps_consumers_take_events_from_the_broker(backend: Backend) {
    needs!(Kafka);
    let brokers = kafka_brokers();
    let prefix = fresh_topics(&brokers).await;
    let mut settings = kafka_settings(&brokers, &prefix);
    settings.consume = true;
    let app = spawn_app_with(backend, |s| {
        s.events.kafka = Some(settings);
        s.events.poll_interval_ms = 100;
        crate::webhooks::fast(s);
    })
    .await;
    let receiver = wiremock::MockServer::start().await;
    let r = app
        .add_endpoint(
            &app.key,
            &receiver.uri(),
            Some(&["inventory.stock_changed"]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    crate::inventory::set_up(&app, "PB-20K").await;
    crate::inventory::receive(&app, "PB-20K", "SZ", 3).await;
    crate::inventory::receive(&app, "PB-20K", "SZ", 2).await;
    let changes: Vec<String> = sqlx::query(
        "SELECT event_id FROM events WHERE event_type = 'inventory.stock_changed' ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("outbox")
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(changes.len(), 2);
    let ids = || async {
        sqlx::query("SELECT event_id FROM webhook_deliveries ORDER BY event_id")
            .fetch_all(&app.db.pool)
            .await
            .expect("deliveries")
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect::<Vec<_>>()
    };
    app.wait_for("the changes become deliveries", 60, || async {
        (ids().await.len() >= 2).then_some(())
    })
    .await;
    for _ in 0..3 {
        app.run_background().await;
    }
    let mut want = changes.clone();
    want.sort();
    assert_eq!(ids().await, want, "each event once");
    // It went through the broker: ids recorded as handled, no position kept in the outbox.
    let handled = app
        .count(
            "SELECT COUNT(*) FROM event_handled h JOIN events e ON e.event_id = h.event_id \
             WHERE h.consumer = 'webhooks.fan_out' AND e.event_type = 'inventory.stock_changed'",
        )
        .await;
    assert_eq!(handled, 2);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM event_consumers WHERE name = 'webhooks.fan_out'")
            .await,
        0
    );
}

#[tokio::test]
async fn sqlite_a_member_killed_mid_batch_leaves_it_to_the_group() {
    a_member_killed_mid_batch_leaves_it_to_the_group(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_member_killed_mid_batch_leaves_it_to_the_group() {
    needs!(Postgres);
    a_member_killed_mid_batch_leaves_it_to_the_group(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_a_failed_batch_comes_again() {
    a_failed_batch_comes_again(Backend::Sqlite).await;
}

#[tokio::test]
async fn sqlite_the_apps_consumers_take_events_from_the_broker() {
    the_apps_consumers_take_events_from_the_broker(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_the_apps_consumers_take_events_from_the_broker() {
    needs!(Postgres);
    the_apps_consumers_take_events_from_the_broker(Backend::Postgres).await;
}
