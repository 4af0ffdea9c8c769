//! The event bus on the database: consumers read the outbox table directly.

use super::{Consumer, Event, EventBus};
use crate::store::{Db, Dialect, StoreError, now_millis};
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

/// Reads a batch after a position (only numbered events: on PostgreSQL `seq` is assigned after
/// commit by [`DbBus::sequence`]) as one row holding a JSON array: the SQLite driver hands rows
/// over one by one between threads, which made reading cost more than handling.
const READ_SQLITE: &str = "SELECT json_group_array(json_array(seq, event_id, tenant_id, \
     event_type, aggregate, payload, created_at_ms)) FROM (SELECT seq, event_id, tenant_id, \
     event_type, aggregate, payload, created_at_ms FROM events WHERE seq > $1 ORDER BY seq \
     LIMIT $2)";
const READ_POSTGRES: &str = "SELECT COALESCE(json_agg(json_build_array(seq, event_id, tenant_id, \
     event_type, aggregate, payload, created_at_ms) ORDER BY seq), '[]')::text FROM (SELECT seq, \
     event_id, tenant_id, event_type, aggregate, payload, created_at_ms FROM events \
     WHERE seq > $1 ORDER BY seq LIMIT $2) batch";

/// Moves a consumer's position past what it handled, if this instance still holds its lease and
/// nobody moved it meanwhile.
const MOVE_POSITION: &str = "UPDATE event_consumers SET position = $1, updated_at_ms = $2 \
     WHERE name = $3 AND lease_owner = $4 AND position = $5";

/// Numbers up to this many committed events per pass.
const SEQUENCE_BATCH: i64 = 5_000;

#[derive(Clone)]
pub struct DbBus {
    db: Db,
    /// This instance, as lease owner.
    owner: String,
    lease: Duration,
    /// The consumers this instance leased, with their positions and until when (epoch ms): a
    /// poll within the first half of the lease needs no write (on SQLite two trips through the
    /// single writer per poll and consumer, idle or not). Only the holder moves a position, and
    /// each move checks the holder and the position, so a lease lost meanwhile is found there.
    held: Arc<std::sync::Mutex<std::collections::HashMap<String, Held>>>,
}

#[derive(Clone, Copy)]
struct Held {
    position: i64,
    until_ms: i64,
}

impl DbBus {
    pub fn new(db: Db, lease: Duration) -> Self {
        Self {
            db,
            owner: uuid::Uuid::new_v4().simple().to_string(),
            lease,
            held: Arc::default(),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After a batch: the position moved to `to` (`Some`), or the lease is in doubt (`None`: the
    /// next poll takes it from the database again).
    fn moved(&self, name: &str, to: Option<i64>) {
        let mut held = self.held();
        match (to, held.get_mut(name)) {
            (Some(to), Some(h)) => h.position = to,
            _ => {
                held.remove(name);
            }
        }
    }

    /// PostgreSQL: numbers the committed events that have no `seq` yet, in id order, holding
    /// the sequencer's row lock (one sequencer at a time, each after the one before committed);
    /// how many, or `None` when none was waiting. SQLite numbers events as it writes them. With
    /// `wait` false, a pass that finds
    /// another sequencer at work leaves the numbering to it rather than queue behind its lock
    /// (consumers read what is numbered meanwhile).
    pub async fn sequence(&self, wait: bool) -> Result<Option<u64>, StoreError> {
        if self.db.dialect == Dialect::Sqlite {
            return Ok(None);
        }
        let pending = sqlx::query("SELECT 1 FROM events WHERE seq IS NULL LIMIT 1")
            .fetch_optional(&self.db.pool)
            .await?;
        if pending.is_none() {
            return Ok(None);
        }
        let lock = match wait {
            true => "SELECT last_seq FROM event_sequencer WHERE name = 'events' FOR UPDATE",
            false => {
                "SELECT last_seq FROM event_sequencer WHERE name = 'events' FOR UPDATE SKIP LOCKED"
            }
        };
        self.db
            .transact(move |conn| {
                Box::pin(async move {
                    let Some(row) = sqlx::query(lock).fetch_optional(&mut *conn).await? else {
                        return Ok(0);
                    };
                    let last: i64 = row.get(0);
                    // A statement of its own: its snapshot is taken after the lock, so it sees
                    // every number the previous sequencer committed.
                    let numbered = sqlx::query(
                        "UPDATE events SET seq = $1 + n.rn FROM (SELECT id, ROW_NUMBER() OVER \
                         (ORDER BY id) AS rn FROM events WHERE seq IS NULL ORDER BY id LIMIT $2) n \
                         WHERE events.id = n.id",
                    )
                    .bind(last)
                    .bind(SEQUENCE_BATCH)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    sqlx::query("UPDATE event_sequencer SET last_seq = $1 WHERE name = 'events'")
                        .bind(last + i64::try_from(numbered).unwrap_or(0))
                        .execute(&mut *conn)
                        .await?;
                    Ok::<_, StoreError>(numbered)
                })
            })
            .await
            .map(Some)
    }

    /// Takes or renews the consumer's lease; its position when this instance holds it.
    async fn lease(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let now = now_millis();
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 4);
        if let Some(h) = self.held().get(name).copied()
            && now < h.until_ms - lease_ms / 2
        {
            return Ok(Some(h.position));
        }
        let until_ms = now + lease_ms;
        let position = self.renew(name, now, until_ms).await;
        match position {
            Ok(Some(position)) => {
                self.held()
                    .insert(name.to_owned(), Held { position, until_ms });
            }
            _ => self.moved(name, None),
        }
        position
    }

    /// Takes or renews the consumer's lease in the database, until `until`; its position when
    /// this instance holds it.
    async fn renew(&self, name: &str, now: i64, until: i64) -> Result<Option<i64>, StoreError> {
        self.db
            .write(
                sqlx::query(
                    "INSERT INTO event_consumers (name, position, lease_owner, lease_until_ms, \
                     updated_at_ms) VALUES ($1, 0, NULL, 0, $2) ON CONFLICT (name) DO NOTHING",
                )
                .bind(name.to_owned())
                .bind(now),
            )
            .await?;
        let row = self
            .db
            .write_returning(
                sqlx::query(
                    "UPDATE event_consumers SET lease_owner = $1, lease_until_ms = $2 \
                     WHERE name = $3 AND (lease_owner = $1 OR lease_owner IS NULL \
                     OR lease_until_ms < $4) RETURNING position",
                )
                .bind(self.owner.clone())
                .bind(until)
                .bind(name.to_owned())
                .bind(now),
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn read(&self, after: i64, max: usize) -> Result<Vec<Event>, StoreError> {
        type Row = (i64, String, String, String, String, String, i64);
        let sql = match self.db.dialect {
            Dialect::Postgres => READ_POSTGRES,
            Dialect::Sqlite => READ_SQLITE,
        };
        let batch: String = sqlx::query(sql)
            .bind(after)
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .fetch_one(&self.db.pool)
            .await?
            .get(0);
        let rows: Vec<Row> = serde_json::from_str(&batch).map_err(StoreError::decode)?;
        let mut events: Vec<Event> = rows
            .into_iter()
            .map(
                |(seq, id, tenant_id, event_type, aggregate, payload, created_at_ms)| Event {
                    seq,
                    id,
                    tenant_id,
                    event_type,
                    aggregate,
                    payload,
                    created_at_ms,
                },
            )
            .collect();
        // json_group_array keeps its input's order in practice; position order is the contract.
        events.sort_by_key(|e| e.seq);
        Ok(events)
    }

    /// The consumer's position and up to `max` events after it, when this instance holds its
    /// lease and there is at least one.
    async fn next_batch(
        &self,
        name: &str,
        max: usize,
    ) -> Result<Option<(i64, Vec<Event>)>, StoreError> {
        let Some(position) = self.lease(name).await? else {
            return Ok(None);
        };
        // Without waiting for another sequencer; only when nothing numbered is left to read
        // does this one wait its turn (so "nothing to do" means nothing is left).
        self.sequence(false).await?;
        let mut events = self.read(position, max).await?;
        if events.is_empty() && self.sequence(true).await?.is_some() {
            events = self.read(position, max).await?;
        }
        Ok((!events.is_empty()).then_some((position, events)))
    }

    /// Hands the events after `name`'s position to `send` outside any transaction (a publisher
    /// awaiting a broker's acknowledgements), then moves the position past them if this instance
    /// still holds the lease; how many were sent. An event is behind the position only once
    /// `send` returned `Ok`: a crash or an error before that sends it again, never loses it.
    pub async fn forward<F, Fut, E>(&self, name: &str, max: usize, send: F) -> Result<usize, E>
    where
        F: FnOnce(Vec<Event>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: From<StoreError>,
    {
        let Some((position, events)) = self.next_batch(name, max).await? else {
            return Ok(0);
        };
        let (to, count) = (events[events.len() - 1].seq, events.len());
        send(events).await?;
        let moved = self
            .db
            .write(
                sqlx::query(MOVE_POSITION)
                    .bind(to)
                    .bind(now_millis())
                    .bind(name.to_owned())
                    .bind(self.owner.clone())
                    .bind(position),
            )
            .await;
        let held = matches!(&moved, Ok(done) if done.rows_affected() == 1);
        self.moved(name, held.then_some(to));
        moved?;
        Ok(count)
    }
}

#[async_trait::async_trait]
impl EventBus for DbBus {
    async fn deliver(&self, consumer: &Arc<dyn Consumer>, max: usize) -> Result<usize, StoreError> {
        let Some((position, events)) = self.next_batch(consumer.name(), max).await? else {
            return Ok(0);
        };
        let (to, count) = (events[events.len() - 1].seq, events.len());
        let label = consumer.name().to_owned();
        let (consumer, owner, name) = (consumer.clone(), self.owner.clone(), label.clone());
        let moved = self
            .db
            .transact(move |conn| {
                Box::pin(async move {
                    // Moving the position first takes the consumer's row lock (PostgreSQL): an
                    // instance that lost its lease finds the position moved and undoes its work.
                    let moved = sqlx::query(MOVE_POSITION)
                        .bind(to)
                        .bind(now_millis())
                        .bind(&name)
                        .bind(&owner)
                        .bind(position)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                    if moved == 0 {
                        return Err(LeaseLost.into());
                    }
                    consumer.handle_batch(conn, &events).await?;
                    crate::events::record_lag(&name, &events);
                    Ok::<_, StoreError>(())
                })
            })
            .await;
        self.moved(&label, moved.is_ok().then_some(to));
        match moved {
            Ok(()) => {
                metrics::counter!("shipgate_events_handled_total", "consumer" => label)
                    .increment(count as u64);
                Ok(count)
            }
            Err(e) if is_lease_lost(&e) => Ok(0),
            Err(e) => Err(e),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("another instance took the consumer over")]
struct LeaseLost;

impl From<LeaseLost> for StoreError {
    fn from(e: LeaseLost) -> Self {
        StoreError::decode(e)
    }
}

fn is_lease_lost(e: &StoreError) -> bool {
    matches!(e, StoreError::Decode(inner) if inner.is::<LeaseLost>())
}
