//! Every inventory change writes its events in its own transaction, and a consumer sees each
//! event once, in order, whichever instance hands it over.

use super::{allocate, receive, set_up};
use crate::helpers::{Backend, TestApp, spawn_app};
use shipgate::events::{Consumer, DbBus, Event, EventBus};
use shipgate::store::StoreError;
use sqlx::{AnyConnection, Row};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

/// Records every event it handles in `seen` (in the handling transaction), numbered in the
/// order it saw them; fails once on the event whose position is `fail_at`.
struct Recorder {
    name: &'static str,
    /// Its [`Consumer::wants`].
    wants: Option<&'static str>,
    counter: Arc<AtomicI64>,
    fail_at: AtomicI64,
    failed: AtomicBool,
}

#[async_trait::async_trait]
impl Consumer for Recorder {
    fn name(&self) -> &str {
        self.name
    }

    fn wants(&self) -> Option<&str> {
        self.wants
    }

    async fn handle(&self, conn: &mut AnyConnection, event: &Event) -> Result<(), StoreError> {
        if event.seq == self.fail_at.load(Ordering::SeqCst)
            && !self.failed.swap(true, Ordering::SeqCst)
        {
            return Err(StoreError::decode("the consumer failed once"));
        }
        sqlx::query(
            "INSERT INTO seen (consumer, event_id, aggregate, seq, n) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(self.name)
        .bind(&event.id)
        .bind(&event.aggregate)
        .bind(event.seq)
        .bind(self.counter.fetch_add(1, Ordering::SeqCst))
        .execute(conn)
        .await?;
        Ok(())
    }
}

async fn make_seen_table(app: &TestApp) {
    sqlx::query(
        "CREATE TABLE seen (consumer TEXT NOT NULL, event_id TEXT NOT NULL, \
                 aggregate TEXT NOT NULL, seq BIGINT NOT NULL, n BIGINT NOT NULL)",
    )
    .execute(&app.db.pool)
    .await
    .expect("seen table");
}

async fn changes_write_their_events(backend: Backend) {
    let app = spawn_app(backend).await;
    set_up(&app, "PB-10K").await;
    receive(&app, "PB-10K", "SZ", 3).await;
    allocate(
        &app,
        "o-1",
        serde_json::json!([{"sku": "PB-10K", "quantity": 2}]),
        "CA",
    )
    .await;
    let rows = sqlx::query("SELECT event_type, aggregate, payload FROM events ORDER BY id")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    let types: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        types,
        [
            "inventory.stock_changed",
            "inventory.stock_changed",
            "inventory.low_stock",
            "inventory.allocation_created"
        ]
    );
    let low: serde_json::Value = serde_json::from_str(&rows[2].get::<String, _>(2)).unwrap();
    assert_eq!(low["stock"]["available"], 1, "{low}");
    assert_eq!(low["lowStockThreshold"], 2);
    assert!(low["eventId"].as_str().unwrap().starts_with("evt_"));
    let refused = allocate(
        &app,
        "o-2",
        serde_json::json!([{"sku": "PB-10K", "quantity": 5}]),
        "CA",
    )
    .await;
    assert_eq!(refused.status, 409);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events").await,
        4,
        "a refused allocation writes nothing"
    );
}

async fn each_event_is_handled_once_in_order_across_instances(backend: Backend) {
    let app = spawn_app(backend).await;
    make_seen_table(&app).await;
    set_up(&app, "A").await;
    super::put_sku(&app, "B").await;
    let counter = Arc::new(AtomicI64::new(0));
    let recorder = |fail_at| -> Arc<dyn Consumer> {
        Arc::new(Recorder {
            name: "recorder",
            wants: None,
            counter: counter.clone(),
            fail_at: AtomicI64::new(fail_at),
            failed: AtomicBool::new(false),
        })
    };
    // Two instances, each with its own bus and its own copy of the consumer; the first fails
    // once in the middle of a batch.
    let first_bus = DbBus::new(app.db.clone(), Duration::from_secs(1));
    let second_bus = DbBus::new(app.db.clone(), Duration::from_secs(1));
    let (first, second) = (recorder(5), recorder(-1));
    let writing = async {
        futures_util::future::join_all((0..30).map(|i| {
            let app = &app;
            async move {
                let sku = if i % 2 == 0 { "A" } else { "B" };
                receive(app, sku, if i % 3 == 0 { "SZ" } else { "US-EAST" }, 1).await
            }
        }))
        .await
    };
    let consuming = async {
        for _ in 0..20 {
            let _ = first_bus.deliver(&first, 7).await;
            let _ = second_bus.deliver(&second, 7).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let (written, ()) = tokio::join!(writing, consuming);
    assert!(written.iter().all(|r| r.status == 201));
    // The first instance stops (crashed): the second takes over once the lease ends.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let total = app.count("SELECT COUNT(*) FROM events").await;
    while app.count("SELECT COUNT(*) FROM seen").await < total {
        assert!(
            std::time::Instant::now() < deadline,
            "the second instance never caught up"
        );
        second_bus.deliver(&second, 7).await.expect("deliver");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dupes = app.count("SELECT COUNT(*) FROM (SELECT event_id FROM seen GROUP BY event_id HAVING COUNT(*) > 1) d").await;
    assert_eq!(dupes, 0, "no event handled twice");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM seen").await,
        total,
        "none lost"
    );
    // In the order handled, each aggregate's events come in outbox order.
    let rows = sqlx::query("SELECT aggregate, seq FROM seen ORDER BY n")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    let mut last = std::collections::HashMap::new();
    for r in rows {
        let (aggregate, seq): (String, i64) = (r.get(0), r.get(1));
        if let Some(before) = last.insert(aggregate.clone(), seq) {
            assert!(
                seq > before,
                "{aggregate}: event {seq} handled after {before}"
            );
        }
    }
    assert!(
        first_bus.deliver(&first, 7).await.unwrap() == 0,
        "the first instance lost the consumer"
    );
}

/// `/metrics` shows how far behind each consumer is (sampled before the step's consumers run).
async fn consumers_report_how_far_behind_they_are(backend: Backend) {
    let app = spawn_app(backend).await;
    set_up(&app, "PB-10K").await;
    app.run_background().await;
    let behind = || async {
        app.run_background().await;
        let text = app
            .client
            .get(format!("{}/metrics", app.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with("shipgate_events_behind{consumer=\"webhooks.fan_out\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    receive(&app, "PB-10K", "SZ", 1).await;
    receive(&app, "PB-10K", "SZ", 1).await;
    assert_eq!(
        behind().await,
        Some(2.0),
        "two events written, not yet handled"
    );
    assert_eq!(
        behind().await,
        Some(0.0),
        "handled in the step after the sample"
    );
}

/// A consumer that wants one type is handed only those events, in order, and moves past the
/// others; each delivery moves it over at most `max` numbers.
async fn a_consumer_is_handed_only_the_events_it_wants(backend: Backend) {
    let app = spawn_app(backend).await;
    make_seen_table(&app).await;
    set_up(&app, "PB-10K").await;
    receive(&app, "PB-10K", "SZ", 50).await;
    for order in 0..6 {
        let placed = allocate(
            &app,
            &format!("o-{order}"),
            serde_json::json!([{"sku": "PB-10K", "quantity": 1}]),
            "CA",
        )
        .await;
        assert_eq!(placed.status, 201);
        receive(&app, "PB-10K", "SZ", 1).await;
    }
    let recorder: Arc<dyn Consumer> = Arc::new(Recorder {
        name: "allocations",
        wants: Some("event_type = 'inventory.allocation_created'"),
        counter: Arc::new(AtomicI64::new(0)),
        fail_at: AtomicI64::new(-1),
        failed: AtomicBool::new(false),
    });
    let bus = DbBus::new(app.db.clone(), Duration::from_secs(10));
    let mut moved = Vec::new();
    loop {
        match bus.deliver(&recorder, 4).await.expect("deliver") {
            0 => break,
            n => moved.push(n),
        }
    }
    let total = app.count("SELECT COUNT(*) FROM events").await;
    assert!(total > 12, "stock changes and allocations: {total}");
    assert!(moved.iter().all(|&n| n <= 4), "{moved:?}");
    assert_eq!(
        moved.iter().sum::<usize>() as i64,
        total,
        "moved over every event"
    );
    let pool = &app.db.pool;
    let ids = |sql: &'static str| async move {
        let rows = sqlx::query(sql).fetch_all(pool).await.unwrap();
        rows.iter().map(|r| r.get(0)).collect::<Vec<String>>()
    };
    let wanted = ids(
        "SELECT event_id FROM events WHERE event_type = 'inventory.allocation_created' ORDER BY id",
    )
    .await;
    let seen = ids("SELECT event_id FROM seen ORDER BY n").await;
    assert_eq!(wanted.len(), 6);
    assert_eq!(seen, wanted, "only the wanted events, each once, in order");
    let numbered_alike = app
        .count(
            "SELECT COUNT(*) FROM seen s JOIN numbered_events n \
             ON n.event_id = s.event_id AND n.seq = s.seq",
        )
        .await;
    assert_eq!(numbered_alike, 6, "each handed over with its number");
    let position = app
        .count("SELECT position FROM event_consumers WHERE name = 'allocations'")
        .await;
    assert_eq!(position, total, "the position is past the last event");
}

crate::on_both_databases!(
    a_consumer_is_handed_only_the_events_it_wants,
    changes_write_their_events,
    each_event_is_handled_once_in_order_across_instances,
    consumers_report_how_far_behind_they_are,
);
