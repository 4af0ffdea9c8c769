//! Events between the services: what changed, written to an outbox (the `events` table) in the
//! transaction that made the change, and handed to each consumer once, in order.
//!
//! A producer calls [`append`] on the connection of its transaction. A consumer implements
//! [`Consumer`]; an [`EventBus`] hands it the events after its position. The bus in this module
//! ([`DbBus`]) reads the outbox itself: one instance at a time holds a consumer's lease and
//! moves its position in the same transaction as the handling, so a consumer's database effects
//! happen exactly once per event and in the outbox's order (hence in order per aggregate). A
//! broker-backed bus goes behind the same trait; its consumers then also drop events whose id
//! they have handled.

mod db_bus;
pub mod kafka;
mod runner;

pub use db_bus::DbBus;
pub use runner::ConsumerRunner;

use crate::store::StoreError;
use serde::Serialize;
use sqlx::AnyConnection;
use std::sync::Arc;

/// One event as consumers see it.
#[derive(Debug, Clone)]
pub struct Event {
    /// Position in the outbox: commit order.
    pub seq: i64,
    /// `evt_…`, unique: consumers that may see an event twice drop repeats by it.
    pub id: String,
    pub tenant_id: String,
    pub event_type: String,
    pub aggregate: String,
    /// The event's JSON body.
    pub payload: String,
    pub created_at_ms: i64,
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub tenant_id: String,
    pub event_type: &'static str,
    pub aggregate: String,
    pub payload: serde_json::Value,
}

impl NewEvent {
    pub fn new(
        tenant_id: &str,
        event_type: &'static str,
        aggregate: String,
        payload: impl Serialize,
    ) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            event_type,
            aggregate,
            payload: serde_json::to_value(payload).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Appends `event` on `conn`, inside the caller's transaction; returns its id. The stored body
/// carries the envelope (`eventId`, `type`, `createdAt`) around the payload's fields.
pub async fn append(conn: &mut AnyConnection, event: NewEvent) -> Result<String, StoreError> {
    let id = new_id();
    let now = crate::store::now_millis();
    let body = envelope(&id, event.event_type, now, event.payload);
    sqlx::query(
        "INSERT INTO events (event_id, tenant_id, event_type, aggregate, payload, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(&event.tenant_id)
    .bind(event.event_type)
    .bind(&event.aggregate)
    .bind(body)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Appends `events` in order with one statement per 1,000 (same as [`append`] for each).
pub async fn append_many(
    conn: &mut AnyConnection,
    events: Vec<NewEvent>,
) -> Result<(), StoreError> {
    use crate::store::sql::{self, Arg};
    let now = crate::store::now_millis();
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let chunk: Vec<NewEvent> = events.by_ref().take(1000).collect();
        let query = format!(
            "INSERT INTO events (event_id, tenant_id, event_type, aggregate, payload, \
             created_at_ms) VALUES {}",
            sql::rows(chunk.len(), 6)
        );
        let mut args = Vec::with_capacity(chunk.len() * 6);
        for event in chunk {
            let id = new_id();
            let body = envelope(&id, event.event_type, now, event.payload);
            args.extend([
                Arg::Text(id),
                Arg::Text(event.tenant_id),
                Arg::Text(event.event_type.into()),
                Arg::Text(event.aggregate),
                Arg::Text(body),
                Arg::Int(now),
            ]);
        }
        sql::statement(sql::dialect_of(conn), &query, args)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A new event id (`evt_…`, time-ordered).
pub fn new_id() -> String {
    format!("evt_{}", uuid::Uuid::now_v7().simple())
}

/// The stored body of an event: `eventId`, `type` and `createdAt` around the payload's fields.
pub fn envelope(id: &str, event_type: &str, now_ms: i64, payload: serde_json::Value) -> String {
    let mut body = serde_json::json!({
        "eventId": id,
        "type": event_type,
        "createdAt": crate::store::rfc3339_millis(now_ms),
    });
    if let (Some(body), serde_json::Value::Object(fields)) = (body.as_object_mut(), payload) {
        body.extend(fields);
    }
    body.to_string()
}

/// Deletes about `limit` events (whole batches on PostgreSQL) written before `before_ms` that every consumer has
/// handled; how many. A consumer no instance has held since `before_ms` (one that moved to the
/// broker, or was retired) holds nothing back. PostgreSQL deletes whole batches of numbers
/// (`event_batches`), so a batch goes once its last event is old and handled.
pub async fn prune(db: &crate::store::Db, before_ms: i64, limit: i64) -> Result<u64, StoreError> {
    let sql = match db.dialect {
        crate::store::Dialect::Postgres => {
            "WITH done AS (SELECT first_seq, ids FROM (SELECT b.first_seq, b.ids, \
             sum(cardinality(b.ids)) OVER (ORDER BY b.first_seq) AS upto FROM event_batches b \
             WHERE b.created_at_ms < $1 AND NOT EXISTS (SELECT 1 FROM event_consumers c \
             WHERE b.first_seq + cardinality(b.ids) - 1 > c.position AND c.lease_until_ms >= $1) \
             ORDER BY b.first_seq LIMIT $2) oldest WHERE upto - cardinality(ids) < $2), \
             gone AS (DELETE FROM event_batches WHERE first_seq IN (SELECT first_seq FROM done)) \
             DELETE FROM events WHERE id IN (SELECT unnest(ids) FROM done)"
        }
        crate::store::Dialect::Sqlite => {
            "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.created_at_ms < $1 \
             AND NOT EXISTS (SELECT 1 FROM event_consumers c \
             WHERE e.seq > c.position AND c.lease_until_ms >= $1) ORDER BY e.id LIMIT $2)"
        }
    };
    Ok(db
        .write(sqlx::query(sql).bind(before_ms).bind(limit))
        .await?
        .rows_affected())
}

/// Forgets consumer `name`'s position (it reads the outbox no more); whether there was one.
pub async fn forget(db: &crate::store::Db, name: &str) -> Result<bool, StoreError> {
    Ok(db
        .write(sqlx::query("DELETE FROM event_consumers WHERE name = $1").bind(name.to_owned()))
        .await?
        .rows_affected()
        > 0)
}

/// Where each consumer stands: (name, events behind, age in ms of the oldest it has not
/// handled), for `/metrics`. Events not numbered yet (PostgreSQL) count as behind.
pub async fn lag(db: &crate::store::Db) -> Result<Vec<(String, i64, i64)>, StoreError> {
    use sqlx::Row;
    // PostgreSQL numbers without gaps (the sequencer's last number minus the position is the
    // count: counting the range took 0.5 s a sample with tens of thousands behind), and the
    // first event behind is found in the batch holding the next number; SQLite's ids may skip
    // a rolled-back insert, so it counts, and reads the first by `seq`.
    let sql = match db.dialect {
        crate::store::Dialect::Postgres => {
            format!(
                "SELECT c.name, (SELECT last_seq FROM event_sequencer WHERE name = 'events') \
                 - c.position, (SELECT e.created_at_ms FROM event_batches b JOIN events e \
                 ON e.id = b.ids[c.position + 1 - b.first_seq + 1] \
                 WHERE b.first_seq <= c.position + 1 AND b.first_seq > c.position + 1 - {} \
                 ORDER BY b.first_seq DESC LIMIT 1) FROM event_consumers c",
                db_bus::SEQUENCE_BATCH
            )
        }
        crate::store::Dialect::Sqlite => {
            "SELECT c.name, (SELECT COUNT(*) FROM events e WHERE e.seq > c.position), \
             (SELECT e.created_at_ms FROM events e WHERE e.seq > c.position ORDER BY e.seq \
             LIMIT 1) FROM event_consumers c"
                .to_owned()
        }
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&db.pool)
        .await?;
    let (waiting, waiting_since): (i64, Option<i64>) = match db.dialect {
        crate::store::Dialect::Postgres => {
            let r = sqlx::query(
                "SELECT COUNT(*), MIN(e.created_at_ms) FROM event_pending p \
                 JOIN events e ON e.id = p.id",
            )
            .fetch_one(&db.pool)
            .await?;
            (r.get(0), r.get(1))
        }
        crate::store::Dialect::Sqlite => (0, None),
    };
    let now = crate::store::now_millis();
    Ok(rows
        .into_iter()
        .map(|r| {
            let first: Option<i64> = r.get(2);
            let oldest = match (first, waiting_since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (
                r.get(0),
                r.get::<i64, _>(1) + waiting,
                oldest.map_or(0, |t| (now - t).max(0)),
            )
        })
        .collect())
}

/// Records how long each of `events` waited between its write and its handling by `consumer`.
pub fn record_lag(consumer: &str, events: &[Event]) {
    let now = crate::store::now_millis();
    let lag = metrics::histogram!("shipgate_event_delivery_lag_seconds",
        "consumer" => consumer.to_owned());
    for event in events {
        lag.record((now - event.created_at_ms).max(0) as f64 / 1000.0);
    }
}

/// Something that reacts to events: it sees every event after its position, in order, each once.
#[async_trait::async_trait]
pub trait Consumer: Send + Sync + 'static {
    /// Its name, unique among consumers: its position is kept under it.
    fn name(&self) -> &str;

    /// The events it has something to do for, as an SQL condition on the outbox row's
    /// `event_type` and `tenant_id` (see [`of_types`]); the outbox bus moves it past the others
    /// without reading them. `None`: every event. A consumer still checks each event it is
    /// handed (a broker hands it all of them).
    fn wants(&self) -> Option<&str> {
        None
    }

    /// Handles one event on `conn`, inside the transaction that also moves the consumer's
    /// position (an error undoes both, and the event comes again). Anything outside the
    /// database (a call to a channel) is recorded here as work and done afterwards.
    async fn handle(&self, conn: &mut AnyConnection, event: &Event) -> Result<(), StoreError>;

    /// Handles a batch, in order, in one transaction. A consumer may override it to read once
    /// what every event of the batch needs (and skip the events it has nothing to do for).
    async fn handle_batch(
        &self,
        conn: &mut AnyConnection,
        events: &[Event],
    ) -> Result<(), StoreError> {
        for event in events {
            self.handle(conn, event).await?;
        }
        Ok(())
    }
}

/// The condition of [`Consumer::wants`] for events of `types` (names made of letters, digits,
/// `.` and `_`).
pub fn of_types(types: &[&str]) -> String {
    let names: Vec<String> = types
        .iter()
        .inspect(|t| {
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_'),
                "event type {t:?}"
            );
        })
        .map(|t| format!("'{t}'"))
        .collect();
    format!("event_type IN ({})", names.join(", "))
}

/// The distinct tenants of a batch's events that pass `wanted`, in first-seen order.
pub fn tenants_of(events: &[Event], wanted: impl Fn(&Event) -> bool) -> Vec<&str> {
    let mut tenants: Vec<&str> = Vec::new();
    for e in events.iter().filter(|e| wanted(e)) {
        if !tenants.contains(&e.tenant_id.as_str()) {
            tenants.push(&e.tenant_id);
        }
    }
    tenants
}

/// Hands consumers their events.
#[async_trait::async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Hands `consumer` its events among the next `max` after its position; how far it moved
    /// (0 when nothing was left, or another instance holds the consumer; `max`: more may wait).
    async fn deliver(&self, consumer: &Arc<dyn Consumer>, max: usize) -> Result<usize, StoreError>;
}

/// The stored events of one aggregate of a tenant, oldest first (their bodies), at most `limit`.
pub async fn of_aggregate(
    db: &crate::store::Db,
    tenant: &str,
    aggregate: &str,
    limit: i64,
) -> Result<Vec<serde_json::Value>, StoreError> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT payload FROM events WHERE tenant_id = $1 AND aggregate = $2 ORDER BY id LIMIT $3",
    )
    .bind(tenant)
    .bind(aggregate)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.into_iter()
        .map(|r| serde_json::from_str(&r.get::<String, _>(0)).map_err(StoreError::decode))
        .collect()
}
