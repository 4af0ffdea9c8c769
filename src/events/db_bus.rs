//! The event bus on the database: consumers read the outbox table directly.

use super::{Consumer, Event, EventBus};
use crate::store::{Db, Dialect, StoreError, now_millis};
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

/// The events numbered in `($1, $2]` that meet the consumer's condition (`{wants}`), in order.
/// On PostgreSQL numbers are given after commit by [`DbBus::sequence`], in batches (see
/// `event_batches`); the condition is met on the batch's types and tenants, so only the wanted
/// events of the range are looked up. SQLite reads them as one row holding a JSON array: its
/// driver hands rows over one by one between threads, which made reading cost more than
/// handling.
macro_rules! read_sql {
    (sqlite, $wants:expr) => {
        format!(
            "SELECT json_group_array(json_array(seq, event_id, tenant_id, event_type, aggregate, \
             payload, created_at_ms)) FROM (SELECT seq, event_id, tenant_id, event_type, \
             aggregate, payload, created_at_ms FROM events WHERE seq > $1 AND seq <= $2{} \
             ORDER BY seq)",
            $wants
        )
    };
    (postgres, $wants:expr) => {
        format!(
            "SELECT w.seq, e.event_id, e.tenant_id, e.event_type, e.aggregate, e.payload, \
             e.created_at_ms FROM (SELECT b.first_seq + r.lo + u.n - 2 AS seq, u.id \
             FROM event_batches b \
             CROSS JOIN LATERAL (SELECT GREATEST(1, $1 - b.first_seq + 2) AS lo, \
             LEAST(cardinality(b.ids), $2 - b.first_seq + 1) AS hi) r \
             CROSS JOIN LATERAL unnest(b.ids[r.lo:r.hi], b.types[r.lo:r.hi], \
             b.tenants[r.lo:r.hi]) WITH ORDINALITY AS u (id, event_type, tenant_id, n) \
             WHERE b.first_seq > $1 - {SEQUENCE_BATCH} AND b.first_seq <= $2{}) w \
             JOIN events e ON e.id = w.id ORDER BY 1",
            $wants
        )
    };
}

/// The last number given to an event: everything up to it is readable.
const LAST_SQLITE: &str = "SELECT COALESCE(MAX(seq), 0) FROM events";
const LAST_POSTGRES: &str = "SELECT last_seq FROM event_sequencer WHERE name = 'events'";

/// Moves a consumer's position past what it handled, if this instance still holds its lease and
/// nobody moved it meanwhile.
const MOVE_POSITION: &str = "UPDATE event_consumers SET position = $1, updated_at_ms = $2 \
     WHERE name = $3 AND lease_owner = $4 AND position = $5";

/// Numbers up to this many committed events per pass (one row of `event_batches`; readers rely
/// on no batch being longer, and the migration that made them cut the old ones to it).
pub(super) const SEQUENCE_BATCH: i64 = 5_000;

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

/// A consumer's next range: from `position` (exclusive) to `upto`, and its wanted events.
struct Batch {
    position: i64,
    upto: i64,
    events: Vec<Event>,
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

    /// PostgreSQL: numbers the committed events waiting in `event_pending`, in id order, as one
    /// row of `event_batches`, holding the sequencer's row lock (one sequencer at a time, each
    /// after the one before committed); how many, or `None` when none was waiting. SQLite
    /// numbers events as it writes them. With `wait` false, a pass that finds another sequencer
    /// at work leaves the numbering to it rather than queue behind its lock (consumers read what
    /// is numbered meanwhile).
    pub async fn sequence(&self, wait: bool) -> Result<Option<u64>, StoreError> {
        if self.db.dialect == Dialect::Sqlite {
            return Ok(None);
        }
        let pending = sqlx::query("SELECT id FROM event_pending ORDER BY id LIMIT 1")
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
                    // every event the previous sequencer took off the pending list. One range
                    // of the index: the ids up to the first `SEQUENCE_BATCH` committed ones
                    // (uncommitted ones in it are not seen, so not taken).
                    let numbered: i64 = sqlx::query(
                        "WITH taken AS (DELETE FROM event_pending WHERE id <= \
                         (SELECT max(id) FROM (SELECT id FROM event_pending ORDER BY id \
                         LIMIT $2) first) RETURNING id, event_type, tenant_id) \
                         INSERT INTO event_batches (first_seq, ids, types, tenants, created_at_ms) \
                         SELECT $1 + 1, array_agg(id ORDER BY id), array_agg(event_type ORDER BY id), \
                         array_agg(tenant_id ORDER BY id), $3 FROM taken \
                         HAVING count(*) > 0 RETURNING cardinality(ids)::BIGINT",
                    )
                    .bind(last)
                    .bind(SEQUENCE_BATCH)
                    .bind(now_millis())
                    .fetch_optional(&mut *conn)
                    .await?
                    .map_or(0, |r| r.get(0));
                    if numbered > 0 {
                        sqlx::query(
                            "UPDATE event_sequencer SET last_seq = $1 WHERE name = 'events'",
                        )
                        .bind(last + numbered)
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok::<_, StoreError>(u64::try_from(numbered).unwrap_or(0))
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

    /// The last number given to an event, on its own snapshot: every event numbered up to it
    /// is committed, so a later read of the range sees them all.
    async fn last_numbered(&self) -> Result<i64, StoreError> {
        let sql = match self.db.dialect {
            Dialect::Postgres => LAST_POSTGRES,
            Dialect::Sqlite => LAST_SQLITE,
        };
        let last: Option<i64> = sqlx::query(sql)
            .fetch_optional(&self.db.pool)
            .await?
            .map(|r| r.get(0));
        Ok(last.unwrap_or(0))
    }

    /// The events numbered in `(after, upto]` that meet `wants`, in order.
    async fn read(
        &self,
        after: i64,
        upto: i64,
        wants: Option<&str>,
    ) -> Result<Vec<Event>, StoreError> {
        type Row = (i64, String, String, String, String, String, i64);
        let wants = wants.map(|w| format!(" AND ({w})")).unwrap_or_default();
        let rows: Vec<Row> = match self.db.dialect {
            Dialect::Postgres => sqlx::query(sqlx::AssertSqlSafe(read_sql!(postgres, wants)))
                .bind(after)
                .bind(upto)
                .fetch_all(&self.db.pool)
                .await?
                .iter()
                .map(|r| {
                    (
                        r.get(0),
                        r.get(1),
                        r.get(2),
                        r.get(3),
                        r.get(4),
                        r.get(5),
                        r.get(6),
                    )
                })
                .collect(),
            Dialect::Sqlite => {
                let batch: String = sqlx::query(sqlx::AssertSqlSafe(read_sql!(sqlite, wants)))
                    .bind(after)
                    .bind(upto)
                    .fetch_one(&self.db.pool)
                    .await?
                    .get(0);
                serde_json::from_str(&batch).map_err(StoreError::decode)?
            }
        };
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

    /// The consumer's position, the end of the next range of at most `max` numbers after it,
    /// and the events of that range that meet `wants`, when this instance holds the consumer's
    /// lease and the range is not empty (the events may be: none of them was wanted).
    async fn next_batch(
        &self,
        name: &str,
        max: usize,
        wants: Option<&str>,
    ) -> Result<Option<Batch>, StoreError> {
        let Some(position) = self.lease(name).await? else {
            return Ok(None);
        };
        // Without waiting for another sequencer; only when nothing numbered is left to read
        // does this one wait its turn (so "nothing to do" means nothing is left).
        self.sequence(false).await?;
        let mut last = self.last_numbered().await?;
        if last <= position && self.sequence(true).await?.is_some() {
            last = self.last_numbered().await?;
        }
        if last <= position {
            return Ok(None);
        }
        let upto = last.min(position.saturating_add(i64::try_from(max).unwrap_or(i64::MAX)));
        let events = self.read(position, upto, wants).await?;
        Ok(Some(Batch {
            position,
            upto,
            events,
        }))
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
        let Some(Batch {
            position,
            upto,
            events,
        }) = self.next_batch(name, max, None).await?
        else {
            return Ok(0);
        };
        let count = events.len();
        if count > 0 {
            send(events).await?;
        }
        let moved = self
            .db
            .write(
                sqlx::query(MOVE_POSITION)
                    .bind(upto)
                    .bind(now_millis())
                    .bind(name.to_owned())
                    .bind(self.owner.clone())
                    .bind(position),
            )
            .await;
        let held = matches!(&moved, Ok(done) if done.rows_affected() == 1);
        self.moved(name, held.then_some(upto));
        moved?;
        Ok(count)
    }
}

#[async_trait::async_trait]
impl EventBus for DbBus {
    /// Moves the consumer over the next range of numbers, handing it the events of the range
    /// it wants; how many numbers it moved over (a full range: more may be waiting).
    async fn deliver(&self, consumer: &Arc<dyn Consumer>, max: usize) -> Result<usize, StoreError> {
        let Some(Batch {
            position,
            upto,
            events,
        }) = self
            .next_batch(consumer.name(), max, consumer.wants())
            .await?
        else {
            return Ok(0);
        };
        let (count, passed) = (events.len(), usize::try_from(upto - position).unwrap_or(0));
        let label = consumer.name().to_owned();
        let (consumer, owner, name) = (consumer.clone(), self.owner.clone(), label.clone());
        let moved = self
            .db
            .transact(move |conn| {
                Box::pin(async move {
                    // Moving the position first takes the consumer's row lock (PostgreSQL): an
                    // instance that lost its lease finds the position moved and undoes its work.
                    let moved = sqlx::query(MOVE_POSITION)
                        .bind(upto)
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
                    if !events.is_empty() {
                        consumer.handle_batch(conn, &events).await?;
                        crate::events::record_lag(&name, &events);
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await;
        self.moved(&label, moved.is_ok().then_some(upto));
        match moved {
            Ok(()) => {
                metrics::counter!("shipgate_events_handled_total", "consumer" => label)
                    .increment(count as u64);
                Ok(passed)
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
