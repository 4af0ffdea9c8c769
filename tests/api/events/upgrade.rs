//! A PostgreSQL outbox written before events were numbered in batches (`seq` on each row)
//! carries every number over, holes and all, and its unnumbered events wait to be numbered.

use crate::helpers::{count_in, fresh_postgres_database};
use shipgate::store::Db;
use sqlx::Row;

/// The last migration before `event_batches`.
const BEFORE_BATCHES: i64 = 20261203000001;

#[tokio::test]
async fn numbered_events_keep_their_numbers_through_the_upgrade() {
    needs!(Postgres);
    let url = fresh_postgres_database().await;
    let db = Db::connect(&url, 2).await.expect("connect");
    sqlx::migrate!("migrations/postgres")
        .run_to(BEFORE_BATCHES, &db.pool)
        .await
        .expect("migrations before the batches");
    // 12,010 events: numbers 101..=12,100 on the first 12,000 ids (an older part pruned),
    // three pruned from the middle, the last ten not numbered yet.
    sqlx::query(
        "INSERT INTO events (event_id, tenant_id, event_type, aggregate, payload, created_at_ms, \
         seq) SELECT 'evt_' || g, 't' || (g % 3), 'kind.' || (g % 5), 'a', '{}', g, \
         CASE WHEN g <= 12000 THEN g + 100 END FROM generate_series(1, 12010) g",
    )
    .execute(&db.pool)
    .await
    .expect("old events");
    for sql in [
        "DELETE FROM events WHERE seq BETWEEN 5001 AND 5003",
        "UPDATE event_sequencer SET last_seq = 12100 WHERE name = 'events'",
    ] {
        sqlx::query(sql).execute(&db.pool).await.expect(sql);
    }
    db.migrate().await.expect("the upgrade");

    let batches: Vec<(i64, i64)> = sqlx::query(
        "SELECT first_seq, cardinality(ids)::BIGINT FROM event_batches ORDER BY first_seq",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert_eq!(
        batches,
        [(101, 4900), (5004, 4997), (10001, 2100)],
        "runs of consecutive numbers, none longer than 5,000"
    );
    let count = |sql: &'static str| count_in(&db.pool, sql);
    assert_eq!(count("SELECT COUNT(*) FROM numbered_events").await, 11997);
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM numbered_events n JOIN events e ON e.id = n.id \
             WHERE n.seq <> e.id + 100 OR n.event_type <> e.event_type"
        )
        .await,
        0,
        "every event keeps its number"
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM event_batches b, unnest(b.ids, b.types, b.tenants) \
             AS u (id, event_type, tenant_id) JOIN events e ON e.id = u.id \
             WHERE e.event_type <> u.event_type OR e.tenant_id <> u.tenant_id"
        )
        .await,
        0,
        "the batches carry each event's type and tenant"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM event_pending WHERE id > 12000").await,
        10
    );
    assert_eq!(count("SELECT COUNT(*) FROM event_pending").await, 10);

    // The sequencer numbers the waiting ten after the last number.
    let bus = shipgate::events::DbBus::new(db.clone(), std::time::Duration::from_secs(10));
    assert_eq!(bus.sequence(true).await.expect("sequence"), Some(10));
    assert_eq!(
        count("SELECT MIN(seq) FROM numbered_events WHERE id > 12000").await,
        12101
    );
    assert_eq!(
        count("SELECT last_seq FROM event_sequencer WHERE name = 'events'").await,
        12110
    );
}
