//! The ready-to-send tracking answers.
//!
//! Write-through, not invalidation: when a new event is stored the answer is rebuilt from the
//! database and written to every number it is found by (waybill, reference, last mile), so the
//! next query is a hit rather than a stampede of misses onto the database. Every answer carries
//! the waybill's tracking version (bumped by the statement that stores an event), and a write only
//! replaces an answer of an older or equal version — atomically, in one Lua script on Redis — so
//! a slow cache fill that read the database before a new event can never overwrite the newer
//! answer.
//!
//! Redis is optional. Without it an in-process cache serves. With it, a breaker guards every
//! call: after a few consecutive failures (errors or answers slower than the timeout) queries go
//! straight to the database without touching Redis, and one query tries Redis again after the
//! open period, closing the breaker when it answers. Answers whose write failed while Redis was
//! unreachable are remembered and rewritten when it is back, so a Redis that kept its data across
//! an outage serves no stale answer.

mod local;
mod redis;

use bytes::Bytes;
use local::LocalCache;
use std::time::Duration;

pub use self::redis::RedisCache;

pub struct CacheConfig {
    pub redis_url: Option<String>,
    /// `redis_url` lists a Redis Cluster's seed nodes.
    pub redis_cluster: bool,
    /// Answers kept in process memory, coherent through Redis's invalidation messages
    /// (server-assisted client-side caching, RESP3); 0 turns it off.
    pub client_cache_keys: usize,
    pub ttl: Duration,
    /// How long the in-process cache (without Redis) keeps an answer: another instance may
    /// store a newer event, so an answer here is never older than this.
    pub local_ttl: Duration,
    pub local_capacity: u64,
    pub timeout: Duration,
    pub breaker_failures: u32,
    pub breaker_open: Duration,
}

pub enum Cache {
    Local(LocalCache),
    Redis(Box<RedisCache>),
}

/// Key of a tenant's number. Tenant ids hold no `:`, so whatever a number holds, two
/// (tenant, number) pairs never share a key. The part after the prefix is a hash tag: an answer
/// and its version key (same text, another prefix) share a Redis Cluster slot, whatever the
/// number holds (a `}` in it ends the tag at the same place in both).
pub fn key(tenant_id: &str, number: &str) -> String {
    format!("{ANSWER_PREFIX}{{{tenant_id}:{number}}}")
}

/// The key of an answer's version: its own namespace, so no number can name a version key.
pub fn version_key(answer_key: &str) -> String {
    match answer_key.strip_prefix(ANSWER_PREFIX) {
        Some(rest) => format!("{VERSION_PREFIX}{rest}"),
        None => format!("{VERSION_PREFIX}{answer_key}"),
    }
}

const ANSWER_PREFIX: &str = "sg:trk:";
const VERSION_PREFIX: &str = "sg:trkv:";
/// Every key of the tracking cache, answers and versions.
const KEYS_PATTERN: &str = "sg:trk*";

/// What a read found.
pub enum Lookup {
    Hit(Bytes),
    Miss,
    /// The cache could not be asked (Redis down or breaker open): go to the database.
    Unavailable,
}

impl CacheConfig {
    /// Longest an answer is served from this process's memory: the local cache's entries and
    /// Redis's client-side copies alike (never longer than an answer lives at all).
    pub(super) fn memory_max_age(&self) -> Duration {
        self.local_ttl.min(self.ttl)
    }
}

impl Cache {
    pub fn new(config: &CacheConfig) -> anyhow::Result<Self> {
        Ok(match &config.redis_url {
            Some(url) => Self::Redis(Box::new(RedisCache::new(url, config)?)),
            None => Self::Local(LocalCache::new(
                config.local_capacity,
                config.memory_max_age(),
            )),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::Redis(_) => "redis",
        }
    }

    pub async fn get(&self, key: &str) -> Lookup {
        let found = match self {
            Self::Local(cache) => cache.get(key).await,
            Self::Redis(r) => r.get(key).await,
        };
        let outcome = match &found {
            Lookup::Hit(_) => "hit",
            Lookup::Miss => "miss",
            Lookup::Unavailable => "unavailable",
        };
        metrics::counter!("shipgate_tracking_cache_requests_total", "outcome" => outcome)
            .increment(1);
        found
    }

    /// Many keys at once (batch queries); `None` where there is no answer.
    pub async fn get_many(&self, keys: &[String]) -> Option<Vec<Option<Bytes>>> {
        match self {
            Self::Local(cache) => Some(cache.get_many(keys).await),
            Self::Redis(r) => r.get_many(keys).await,
        }
    }

    /// Fills the cache after a miss: writes an answer under each of its keys unless a newer
    /// version is there.
    pub async fn put(&self, waybill_id: &str, keys: &[String], version: i64, body: &Bytes) {
        self.write(waybill_id, keys, version, body, false).await;
    }

    /// Writes a changed answer; if Redis cannot take it now, it is rewritten when Redis is back.
    pub async fn put_tracked(&self, waybill_id: &str, keys: &[String], version: i64, body: &Bytes) {
        self.write(waybill_id, keys, version, body, true).await;
    }

    async fn write(
        &self,
        waybill_id: &str,
        keys: &[String],
        version: i64,
        body: &Bytes,
        remember: bool,
    ) {
        match self {
            Self::Local(cache) => cache.put(keys, version, body).await,
            Self::Redis(r) => r.put(waybill_id, keys, version, body, remember).await,
        }
    }

    /// Waybills whose answers must be rewritten because Redis came back after missing writes.
    pub fn take_missed(&self) -> Option<Vec<String>> {
        match self {
            Self::Local(_) => None,
            Self::Redis(r) => r.take_missed(),
        }
    }

    /// Ready: in-process always; Redis when it answers a PING.
    pub async fn ping(&self) -> bool {
        match self {
            Self::Local(_) => true,
            Self::Redis(r) => r.ping().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_keys_never_meet_answer_keys() {
        let (a, b) = (key("t", "R1"), key("t", "R1:v"));
        assert_ne!(version_key(&a), b);
        assert_ne!(version_key(&a), a);
        assert!(version_key(&b).starts_with(VERSION_PREFIX));
        assert!(!version_key(&a).starts_with(ANSWER_PREFIX));
    }

    #[tokio::test]
    async fn local_writes_never_go_back_in_version() {
        let cache = Cache::new(&CacheConfig {
            redis_url: None,
            redis_cluster: false,
            client_cache_keys: 0,
            ttl: Duration::from_secs(60),
            local_ttl: Duration::from_secs(60),
            local_capacity: 100,
            timeout: Duration::from_millis(50),
            breaker_failures: 3,
            breaker_open: Duration::from_secs(1),
        })
        .unwrap();
        let keys = [key("t", "A"), key("t", "B")];
        cache.put("w", &keys, 2, &Bytes::from_static(b"two")).await;
        cache.put("w", &keys, 1, &Bytes::from_static(b"one")).await;
        for k in &keys {
            assert!(matches!(cache.get(k).await, Lookup::Hit(b) if b == "two"));
        }
        cache
            .put("w", &keys[..1], 3, &Bytes::from_static(b"three"))
            .await;
        assert!(matches!(cache.get(&keys[0]).await, Lookup::Hit(b) if b == "three"));
        assert!(matches!(cache.get(&key("t", "C")).await, Lookup::Miss));
    }
}
