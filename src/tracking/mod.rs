//! Tracking: the timeline of each waybill, its derived status and last mile, and the
//! ready-to-send answers the query path serves without ever calling a carrier.
//!
//! Events arrive through carrier pushes ([`intake`]) and the poller ([`poller`]); both end in
//! [`TrackingService::ingest`], which stores what is new, bumps the waybill's tracking version and
//! writes the rebuilt answer through to the cache ([`cache`]).

pub mod aliases;
mod answer;
pub mod cache;
mod error;
pub mod intake;
mod packed;
pub mod poller;
pub mod schedule;

pub use answer::{EventAnswer, hidden};
pub use error::TrackingError;
pub use intake::{PushConfig, PushSummary};
pub use packed::unpack as unpack_answer;

use crate::store::tracking::{PushMatch, TrackRow};
use crate::store::{Db, StoreError};
use answer::render;
use bytes::Bytes;
use cache::{Cache, Lookup};
use carriers::{TrackingStatus, TrackingUpdate};
use std::sync::Arc;

#[derive(Clone)]
pub struct TrackingService {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    cache: Cache,
    aliases: aliases::Aliases,
    /// Built answers by waybill id (packed), with the tracking version they were built at.
    built: moka::future::Cache<String, (i64, Bytes)>,
    /// Waybills by (carrier, pushed number), for pushes: only what never changes (the id and
    /// number, not the whole row), and every answer is rebuilt from a fresh read.
    pushed: moka::future::Cache<(String, String), Parcel>,
    pushes: PushConfig,
    /// Past this age (ms) a parcel without a final status is no longer polled; `None` when
    /// this instance's waybills are not polled.
    polling_max_age_ms: Option<i64>,
}

/// Memory for built answers kept beside the cache (by packed size).
const BUILT_ANSWERS_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheState {
    Local,
    Redis,
    RedisUnavailable,
}

impl CacheState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Redis => "redis",
            Self::RedisUnavailable => "redis-unavailable",
        }
    }
}

/// What ingesting a carrier's news needs of its waybill: numbers that never change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parcel {
    pub id: String,
    pub waybill_number: String,
}

impl From<&TrackRow> for Parcel {
    fn from(row: &TrackRow) -> Self {
        Self {
            id: row.id.clone(),
            waybill_number: row.waybill_number.clone(),
        }
    }
}

/// What one ingest changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    pub new_events: u64,
    pub status: Option<TrackingStatus>,
    /// The push's delivery id had been recorded before (a replay).
    pub replayed: bool,
}

impl TrackingService {
    pub fn new(db: Db, cache: Cache, aliases: aliases::Aliases, pushes: PushConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                cache,
                aliases,
                built: moka::future::Cache::builder()
                    .weigher(|_, (_, body): &(i64, Bytes)| {
                        u32::try_from(body.len() + 64).unwrap_or(u32::MAX)
                    })
                    .max_capacity(BUILT_ANSWERS_BYTES)
                    .build(),
                pushed: moka::future::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(std::time::Duration::from_secs(300))
                    .build(),
                pushes,
                polling_max_age_ms: None,
            }),
        }
    }

    /// Answers say when a parcel stopped being polled for its age.
    pub fn with_polling_max_age(mut self, max_age: Option<std::time::Duration>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.polling_max_age_ms =
                max_age.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        }
        self
    }

    /// The database, for the poller's claims.
    pub(in crate::tracking) fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The last mile of a tenant's waybill (by any of its numbers), as stored.
    pub async fn last_mile(
        &self,
        tenant_id: &str,
        number: &str,
    ) -> Result<Option<TrackRow>, StoreError> {
        self.inner.db.track_row(tenant_id, number).await
    }

    /// Where answers are served from, for readiness: the in-process cache, or Redis (and
    /// whether it answers now).
    pub async fn cache_state(&self) -> CacheState {
        match (self.inner.cache.kind(), self.inner.cache.ping().await) {
            ("local", _) => CacheState::Local,
            (_, true) => CacheState::Redis,
            (_, false) => CacheState::RedisUnavailable,
        }
    }

    /// The waybill a carrier's push is about (see `Db::track_row_for_carrier`), remembered for
    /// the next pushes of the same parcel.
    pub async fn parcel_for_push(
        &self,
        carrier: &str,
        number: &str,
    ) -> Result<PushMatch<Parcel>, StoreError> {
        let key = (carrier.to_owned(), number.to_owned());
        if let Some(parcel) = self.inner.pushed.get(&key).await {
            return Ok(PushMatch::One {
                row: Box::new(parcel),
                by_last_mile: false,
            });
        }
        let found = self
            .inner
            .db
            .track_row_for_carrier(carrier, number)
            .await?
            .map(|row| Parcel::from(&row));
        // A carrier's own numbers never change owner; a last-mile number may be given to
        // another waybill later (and then means two things), so it is looked up every time.
        if let PushMatch::One {
            row,
            by_last_mile: false,
        } = &found
        {
            self.inner.pushed.insert(key, (**row).clone()).await;
        }
        Ok(found)
    }

    /// The ready answer for a tenant's number: from the cache, else built from the database (and
    /// cached). `None` when the tenant has no such waybill.
    pub async fn answer(
        &self,
        tenant_id: &str,
        number: &str,
    ) -> Result<Option<Bytes>, TrackingError> {
        let key = cache::key(tenant_id, number);
        let fill = match self.inner.cache.get(&key).await {
            Lookup::Hit(stored) => match packed::unpack(stored) {
                Some(body) => return Ok(Some(body)),
                None => true,
            },
            Lookup::Miss => true,
            Lookup::Unavailable => false,
        };
        self.answer_uncached(tenant_id, number, fill).await
    }

    /// Answers for many numbers of one tenant, in order (`None`: not found).
    pub async fn answers(
        &self,
        tenant_id: &str,
        numbers: &[String],
    ) -> Result<Vec<Option<Bytes>>, TrackingError> {
        let keys: Vec<String> = numbers.iter().map(|n| cache::key(tenant_id, n)).collect();
        let cached = self.inner.cache.get_many(&keys).await;
        let mut out = Vec::with_capacity(numbers.len());
        for (i, number) in numbers.iter().enumerate() {
            match cached
                .as_ref()
                .and_then(|c| c[i].clone())
                .and_then(packed::unpack)
            {
                Some(body) => out.push(Some(body)),
                None => out.push(
                    self.answer_uncached(tenant_id, number, cached.is_some())
                        .await?,
                ),
            }
        }
        Ok(out)
    }

    /// Built from the database (or the built answer of the same version); written to the cache
    /// when `fill`.
    async fn answer_uncached(
        &self,
        tenant_id: &str,
        number: &str,
        fill: bool,
    ) -> Result<Option<Bytes>, TrackingError> {
        let Some(row) = self.inner.db.track_row(tenant_id, number).await? else {
            return Ok(None);
        };
        let built = self.build(&row).await?;
        if fill {
            self.inner
                .cache
                .put(&row.id, &keys(&row), row.version, &built.packed)
                .await;
        }
        Ok(Some(built.body))
    }

    /// Stores a carrier's news about a waybill: new events (repeats are dropped by their key),
    /// the last-mile hand-over (its name normalized) and, for a push, its delivery id, all in one
    /// unit; then the rebuilt answer goes to the cache.
    pub async fn ingest(
        &self,
        parcel: &Parcel,
        source: &str,
        update: TrackingUpdate,
        receipt: Option<(&str, &str)>,
    ) -> Result<Ingested, TrackingError> {
        let mut group = Db::insert_events(&parcel.id, source, &update.events);
        let mut last_mile_at = None;
        if let Some(lm) = &update.last_mile {
            let name = self.inner.aliases.normalize(&lm.carrier);
            if !name.known {
                tracing::warn!(
                    reported = %lm.carrier,
                    waybill = %parcel.waybill_number,
                    "last-mile carrier name not in tracking.last_mile_carriers: kept as reported"
                );
                metrics::counter!("shipgate_last_mile_unknown_carrier_total").increment(1);
            }
            // Written only when it differs from what is stored (decided by the database, so a
            // row read earlier may be stale); each stored event bumps the version by trigger.
            // The hand-over goes before the last-mile carrier's events, so its push comes first.
            last_mile_at = Some(group.len());
            group.push(Db::record_last_mile(
                &parcel.id,
                &name.name,
                &lm.tracking_number,
                name.known,
            ));
            group.extend(Db::insert_events(&parcel.id, &name.name, &lm.events));
        }
        let inserts = group.len();
        if let Some((carrier, id)) = receipt {
            group.push(Db::record_receipt(carrier, id, crate::store::now_millis()));
        }
        if group.is_empty() {
            return Ok(Ingested::default());
        }
        let done = self.inner.db.write_group(group).await?;
        let new_events: u64 = done[..inserts]
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != last_mile_at)
            .map(|(_, d)| d.rows_affected())
            .sum();
        let last_mile_changed = last_mile_at.is_some_and(|i| done[i].rows_affected() == 1);
        let replayed = receipt.is_some() && done.last().is_some_and(|d| d.rows_affected() == 0);
        metrics::counter!("shipgate_tracking_events_stored_total").increment(new_events);
        if new_events == 0 && !last_mile_changed && (replayed || receipt.is_none()) {
            // Nothing new: the cached answer is still right. (A first delivery refreshes even
            // without news, in case an earlier attempt stored its events but died before
            // refreshing.)
            return Ok(Ingested {
                replayed,
                ..Ingested::default()
            });
        }
        let status = self.refresh(&parcel.id).await?;
        Ok(Ingested {
            new_events,
            status,
            replayed,
        })
    }

    /// Rebuilds a waybill's answer from the database and writes it through to the cache. The
    /// row (with its version) and its events are one read, so the answer holds every event of
    /// that version.
    pub async fn refresh(&self, waybill_id: &str) -> Result<Option<TrackingStatus>, TrackingError> {
        let Some((row, stored)) = self.inner.db.track_row_with_events(waybill_id).await? else {
            return Ok(None);
        };
        let (body, status) = render(&row, &stored, self.inner.polling_max_age_ms)?;
        let packed = packed::pack(&body);
        self.inner
            .built
            .insert(row.id.clone(), (row.version, packed.clone()))
            .await;
        self.inner
            .cache
            .put_tracked(&row.id, &keys(&row), row.version, &packed)
            .await;
        if status.map(TrackingStatus::as_str) != row.tracking_status.as_deref() {
            self.inner
                .db
                .set_tracking_status(&row.id, row.version, status)
                .await?;
        }
        Ok(status)
    }

    /// Rewrites answers the cache missed while Redis was away.
    pub async fn repair_cache(&self) {
        if let Cache::Redis(r) = &self.inner.cache {
            // Reads stay off Redis while it misses answers, so it is probed from here.
            if !r.has_missed() || !r.ping().await {
                return;
            }
            r.flush_if_overflowed().await;
        }
        if let Some(ids) = self.inner.cache.take_missed() {
            tracing::info!(
                answers = ids.len(),
                "rewriting tracking answers missed by the cache"
            );
            for id in ids {
                if let Err(e) = self.refresh(&id).await {
                    tracing::warn!(error = %e, "rewriting a missed tracking answer");
                }
            }
        }
    }

    /// The answer of a waybill as the database has it. Answers built before are kept in memory under the waybill's tracking version: when the row read from the
    /// database still has that version, the events are not read again (this is what serves
    /// queries at speed while Redis is away, and it can never be stale: the version comes from
    /// the database on every query).
    async fn build(&self, row: &TrackRow) -> Result<Built, TrackingError> {
        if let Some((version, packed)) = self.inner.built.get(&row.id).await
            && version == row.version
            && let Some(body) = packed::unpack(packed.clone())
        {
            return Ok(Built { body, packed });
        }
        let stored = self.inner.db.events(&row.id).await?;
        let (body, _) = render(row, &stored, self.inner.polling_max_age_ms)?;
        let packed = packed::pack(&body);
        self.inner
            .built
            .insert(row.id.clone(), (row.version, packed.clone()))
            .await;
        Ok(Built {
            body: Bytes::from(body),
            packed,
        })
    }
}

/// An answer as sent and as kept.
struct Built {
    body: Bytes,
    packed: Bytes,
}

/// Every number a waybill's answer is found by.
fn keys(row: &TrackRow) -> Vec<String> {
    let mut keys = vec![
        cache::key(&row.tenant_id, &row.waybill_number),
        cache::key(&row.tenant_id, &row.reference_number),
    ];
    if let Some(n) = &row.last_mile_tracking_number {
        keys.push(cache::key(&row.tenant_id, n));
    }
    keys.dedup();
    keys
}
