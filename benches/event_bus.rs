//! Event delivery between services through the database bus: `cargo bench --bench event_bus`
//! (SQLite; with `TEST_POSTGRES_URL` set, PostgreSQL too — `benches/events_load.sh` starts it).
//! Target: >= 5,000 events/s from outbox to consumer, and the lag under that load.
//!
//! Two cases per database, the consumer being the webhook fan-out as a server runs it (one read
//! of the tenant's subscriptions per batch; the tenant here has no endpoint, so no delivery is
//! written):
//! - drain: EVENTS events already in the outbox, one consumer takes them in batches of 500;
//!   events/s from outbox to consumer.
//! - live: 4 writers append EVENTS events in transactions of 10 (as changes write them) while
//!   the consumer runs; events/s written and handled, and the lag from write to handling.

use shipgate::events::{Consumer, DbBus, Event, EventBus, NewEvent};
use shipgate::store::{Db, StoreError, now_millis};
use shipgate::webhooks::fanout::FanOut;
use sqlx::{AnyConnection, Connection, Executor};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The fan-out, with the lag of every event it handles recorded.
struct Measured {
    inner: FanOut,
    lags: Mutex<Vec<i64>>,
}

#[async_trait::async_trait]
impl Consumer for Measured {
    fn name(&self) -> &str {
        "bench"
    }

    async fn handle(&self, conn: &mut AnyConnection, event: &Event) -> Result<(), StoreError> {
        self.inner.handle(conn, event).await?;
        self.lags
            .lock()
            .unwrap()
            .push(now_millis() - event.created_at_ms);
        Ok(())
    }
}

async fn write(db: &Db, events: usize, writers: usize) {
    let per_writer = events / writers;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let db = db.clone();
            tokio::spawn(async move {
                for batch in 0..per_writer / 10 {
                    db.transact(move |conn| {
                        Box::pin(async move {
                            for i in 0..10 {
                                shipgate::events::append(
                                    conn,
                                    NewEvent::new(
                                        "bench",
                                        "inventory.stock_changed",
                                        format!("sku:SKU-{}", (w * 7 + batch + i) % 200),
                                        serde_json::json!({"stock": {"onHand": batch}}),
                                    ),
                                )
                                .await?;
                            }
                            Ok::<_, StoreError>(())
                        })
                    })
                    .await
                    .expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

async fn drain(bus: &DbBus, consumer: &Arc<dyn Consumer>, until: usize) -> usize {
    let mut handled = 0;
    while handled < until {
        handled += bus.deliver(consumer, 500).await.expect("deliver");
    }
    handled
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

async fn run(name: &str, url: &str, events: usize) {
    let db = Db::connect(url, 16).await.expect("connect");
    db.migrate().await.expect("migrate");
    let bus = DbBus::new(db.clone(), Duration::from_secs(10));
    let measured = Arc::new(Measured {
        inner: FanOut::new(db.dialect),
        lags: Mutex::new(Vec::new()),
    });
    let consumer: Arc<dyn Consumer> = measured.clone();

    write(&db, events, 4).await;
    let started = Instant::now();
    let n = drain(&bus, &consumer, events).await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name:<9} drain  {n} events in {secs:.2} s: {:.0} events/s",
        n as f64 / secs
    );

    measured.lags.lock().unwrap().clear();
    let started = Instant::now();
    let (_, handled) = tokio::join!(write(&db, events, 4), async {
        let mut handled = 0;
        while handled < events {
            match bus.deliver(&consumer, 500).await.expect("deliver") {
                0 => tokio::time::sleep(Duration::from_millis(5)).await,
                n => handled += n,
            }
        }
        handled
    });
    let secs = started.elapsed().as_secs_f64();
    let mut lags = measured.lags.lock().unwrap().clone();
    lags.sort_unstable();
    println!(
        "{name:<9} live   {handled} events written by 4 writers and handled in {secs:.2} s: \
         {:.0} events/s; lag p50 {} ms, p99 {} ms, max {} ms",
        handled as f64 / secs,
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(0)
    );
}

fn main() {
    sqlx::any::install_default_drivers();
    let events: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("bus.db").display());
        run("sqlite", &sqlite, events).await;
        if let Ok(admin) = std::env::var("TEST_POSTGRES_URL") {
            let name = format!("bench_bus_{}", std::process::id());
            let mut conn = sqlx::AnyConnection::connect(&admin)
                .await
                .expect("postgres");
            conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .expect("create database");
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            run("postgres", &format!("{base}/{name}"), events).await;
        }
    });
}
