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

use bytes::Bytes;
use redis::aio::ConnectionManager;
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct CacheConfig {
    pub redis_url: Option<String>,
    /// Answers kept in process memory, coherent through Redis's invalidation messages
    /// (server-assisted client-side caching, RESP3); 0 turns it off.
    pub client_cache_keys: usize,
    pub ttl: Duration,
    pub local_capacity: u64,
    pub timeout: Duration,
    pub breaker_failures: u32,
    pub breaker_open: Duration,
}

pub enum Cache {
    Local(moka::future::Cache<String, (i64, Bytes)>),
    Redis(Box<RedisCache>),
}

pub struct RedisCache {
    client: redis::Client,
    conn: tokio::sync::OnceCell<ConnectionManager>,
    ttl_secs: u64,
    timeout: Duration,
    breaker: Breaker,
    put: redis::Script,
    client_cache_keys: usize,
    /// Waybills whose answer could not be written while Redis was away.
    missed: Mutex<HashSet<String>>,
    missed_overflow: AtomicBool,
}

/// Most answers remembered for rewriting after an outage; beyond it the cache is flushed of
/// tracking answers on recovery instead.
const MAX_MISSED: usize = 100_000;

/// Sets each key (and its `:v` version) unless it holds a newer version.
const PUT_SCRIPT: &str = r"
local v = tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  local cur = tonumber(redis.call('GET', key .. ':v') or '-1')
  if v >= cur then
    redis.call('SET', key, ARGV[2], 'EX', ARGV[3])
    redis.call('SET', key .. ':v', ARGV[1], 'EX', ARGV[3])
  end
end
return 1";

/// The URL asking for RESP3 (`protocol=resp3`) unless it names a protocol already.
fn with_resp3(url: &str) -> String {
    if url.contains("protocol=") {
        return url.to_owned();
    }
    let after_scheme = url.split_once("://").map_or("", |(_, rest)| rest);
    if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else if after_scheme.contains('/') {
        format!("{url}?protocol=resp3")
    } else {
        format!("{url}/?protocol=resp3")
    }
}

/// Key of a tenant's number.
pub fn key(tenant_id: &str, number: &str) -> String {
    format!("sg:trk:{tenant_id}:{number}")
}

/// What a read found.
pub enum Lookup {
    Hit(Bytes),
    Miss,
    /// The cache could not be asked (Redis down or breaker open): go to the database.
    Unavailable,
}

impl Cache {
    pub fn new(config: &CacheConfig) -> anyhow::Result<Self> {
        Ok(match &config.redis_url {
            Some(url) => {
                // Client-side caching needs RESP3 (invalidations arrive as push messages).
                let url = if config.client_cache_keys > 0 {
                    with_resp3(url)
                } else {
                    url.clone()
                };
                let client = redis::Client::open(url.as_str())
                    .map_err(|e| anyhow::anyhow!("redis_url: {e}"))?;
                Self::Redis(Box::new(RedisCache {
                    client,
                    conn: tokio::sync::OnceCell::new(),
                    ttl_secs: config.ttl.as_secs().max(1),
                    timeout: config.timeout,
                    breaker: Breaker::new(config.breaker_failures, config.breaker_open),
                    put: redis::Script::new(PUT_SCRIPT),
                    client_cache_keys: config.client_cache_keys,
                    missed: Mutex::new(HashSet::new()),
                    missed_overflow: AtomicBool::new(false),
                }))
            }
            None => Self::Local(
                moka::future::Cache::builder()
                    .max_capacity(config.local_capacity)
                    .time_to_live(config.ttl)
                    .build(),
            ),
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
            Self::Local(cache) => match cache.get(key).await {
                Some((_, body)) => Lookup::Hit(body),
                None => Lookup::Miss,
            },
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
            Self::Local(cache) => {
                let mut out = Vec::with_capacity(keys.len());
                for k in keys {
                    out.push(cache.get(k).await.map(|(_, b)| b));
                }
                Some(out)
            }
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
            Self::Local(cache) => {
                for k in keys {
                    let body = body.clone();
                    cache
                        .entry(k.clone())
                        .and_compute_with(|cur| async move {
                            match cur {
                                Some(e) if e.value().0 > version => moka::ops::compute::Op::Nop,
                                _ => moka::ops::compute::Op::Put((version, body)),
                            }
                        })
                        .await;
                }
            }
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

impl RedisCache {
    async fn conn(&self) -> Option<ConnectionManager> {
        if !self.breaker.allow() {
            return None;
        }
        let init = self.conn.get_or_try_init(|| async {
            let mut config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.timeout))
                .set_response_timeout(Some(self.timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(200));
            if let Some(keys) = std::num::NonZeroUsize::new(self.client_cache_keys) {
                // Reads marked below are answered from memory until Redis says the key changed;
                // a reconnect starts a new epoch, dropping everything cached before it.
                config = config.set_cache_config(
                    redis::caching::CacheConfig::new()
                        .set_mode(redis::caching::CacheMode::OptIn)
                        .set_size(keys),
                );
            }
            ConnectionManager::new_with_config(self.client.clone(), config).await
        });
        match tokio::time::timeout(self.timeout * 2, init).await {
            Ok(Ok(conn)) => Some(conn.clone()),
            Ok(Err(e)) => {
                self.failed(&e.to_string());
                None
            }
            Err(_) => {
                self.failed("connect timed out");
                None
            }
        }
    }

    fn failed(&self, what: &str) {
        if self.breaker.failure() {
            tracing::warn!(
                error = what,
                "redis unavailable: tracking queries go to the database"
            );
            metrics::counter!("shipgate_tracking_cache_breaker_opened_total").increment(1);
        }
    }

    fn succeeded(&self) {
        if self.breaker.success() {
            tracing::info!("redis is back: tracking queries are served from it again");
        }
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
        cmd: &redis::Cmd,
    ) -> Option<T> {
        self.settle(cmd.query_async::<T>(conn)).await
    }

    /// Runs one Redis call within the timeout and tells the breaker how it went.
    async fn settle<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Option<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => {
                self.succeeded();
                Some(v)
            }
            Ok(Err(e)) => {
                self.failed(&e.to_string());
                None
            }
            Err(_) => {
                self.failed("command timed out");
                None
            }
        }
    }

    /// Redis serves reads only when it is reachable and holds no answer it missed a write of.
    fn readable(&self) -> bool {
        let missed = self.missed.lock().unwrap_or_else(|e| e.into_inner());
        missed.is_empty() && !self.missed_overflow.load(Ordering::Relaxed)
    }

    fn cached(cmd: &mut redis::Cmd) -> &mut redis::Cmd {
        cmd.set_cache_config(redis::CommandCacheConfig::new().set_enable_cache(true))
    }

    async fn get(&self, key: &str) -> Lookup {
        if !self.readable() {
            return Lookup::Unavailable;
        }
        let Some(mut conn) = self.conn().await else {
            return Lookup::Unavailable;
        };
        match self
            .run::<Option<Vec<u8>>>(&mut conn, Self::cached(redis::cmd("GET").arg(key)))
            .await
        {
            Some(Some(body)) => Lookup::Hit(Bytes::from(body)),
            Some(None) => Lookup::Miss,
            None => Lookup::Unavailable,
        }
    }

    async fn get_many(&self, keys: &[String]) -> Option<Vec<Option<Bytes>>> {
        let mut conn = self.conn().await?;
        let found: Vec<Option<Vec<u8>>> = self.run(&mut conn, redis::cmd("MGET").arg(keys)).await?;
        Some(found.into_iter().map(|b| b.map(Bytes::from)).collect())
    }

    async fn put(
        &self,
        waybill_id: &str,
        keys: &[String],
        version: i64,
        body: &Bytes,
        remember: bool,
    ) {
        let written = match self.conn().await {
            Some(mut conn) => {
                let mut invocation = self.put.prepare_invoke();
                for k in keys {
                    invocation.key(k);
                }
                invocation
                    .arg(version)
                    .arg(body.as_ref())
                    .arg(self.ttl_secs);
                self.settle(invocation.invoke_async::<i64>(&mut conn))
                    .await
                    .is_some()
            }
            None => false,
        };
        if written && remember {
            let mut missed = self.missed.lock().unwrap_or_else(|e| e.into_inner());
            if !missed.is_empty() {
                missed.remove(waybill_id);
            }
        }
        if !written && remember {
            // Redis (or its copy in this process) may now hold an answer older than the
            // database: no reads from it until the answer is rewritten.
            self.breaker.trip();
            let mut missed = self.missed.lock().unwrap_or_else(|e| e.into_inner());
            if missed.len() < MAX_MISSED {
                missed.insert(waybill_id.to_owned());
            } else {
                self.missed_overflow.store(true, Ordering::Relaxed);
            }
        }
    }

    pub fn has_missed(&self) -> bool {
        !self.readable()
    }

    fn take_missed(&self) -> Option<Vec<String>> {
        if !self.breaker.is_closed() {
            return None;
        }
        let missed = self.missed.lock().unwrap_or_else(|e| e.into_inner());
        if missed.is_empty() && !self.missed_overflow.load(Ordering::Relaxed) {
            return None;
        }
        // A snapshot: each entry leaves the set when its answer is written (in `put`), so reads
        // stay off Redis until the last one is.
        Some(missed.iter().cloned().collect())
    }

    /// After losing track of more answers than it remembers, the cache drops every tracking
    /// answer (they refill from the database on the next query).
    pub async fn flush_if_overflowed(&self) {
        if self.missed_overflow.swap(false, Ordering::Relaxed)
            && let Some(mut conn) = self.conn().await
        {
            let mut cursor: u64 = 0;
            loop {
                let Some((next, keys)) = self
                    .run::<(u64, Vec<String>)>(
                        &mut conn,
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg("sg:trk:*")
                            .arg("COUNT")
                            .arg(1000),
                    )
                    .await
                else {
                    return;
                };
                if !keys.is_empty() {
                    let _ = self
                        .run::<i64>(&mut conn, redis::cmd("DEL").arg(&keys))
                        .await;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
    }

    pub async fn ping(&self) -> bool {
        match self.conn().await {
            Some(mut conn) => self
                .run::<String>(&mut conn, &redis::cmd("PING"))
                .await
                .is_some(),
            None => false,
        }
    }
}

/// A lock-free breaker for the hot path: `threshold` consecutive failures open it for
/// `open_for`; then exactly one call is let through, and its outcome closes or reopens it.
struct Breaker {
    threshold: u32,
    open_for_ms: u64,
    epoch: Instant,
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which calls are refused; 0 when closed.
    open_until: AtomicU64,
}

impl Breaker {
    fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for_ms: open_for.as_millis() as u64,
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn allow(&self) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now();
        // Open period over: the call that moves the deadline forward is the one trial.
        now >= until
            && self
                .open_until
                .compare_exchange(
                    until,
                    now + self.open_for_ms,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    fn is_closed(&self) -> bool {
        self.open_until.load(Ordering::Acquire) == 0
    }

    /// Opens at once (a write that could not be made).
    fn trip(&self) {
        self.failures.store(self.threshold, Ordering::Release);
        let _ = self.open_until.compare_exchange(
            0,
            self.now() + self.open_for_ms,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    /// True when this failure opened the breaker.
    fn failure(&self) -> bool {
        let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if failures >= self.threshold {
            let was = self
                .open_until
                .swap(self.now() + self.open_for_ms, Ordering::AcqRel);
            return was == 0;
        }
        false
    }

    /// True when this success closed an open breaker.
    fn success(&self) -> bool {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Release);
        }
        self.open_until.load(Ordering::Relaxed) != 0
            && self.open_until.swap(0, Ordering::AcqRel) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_lets_one_trial_through_and_closes() {
        let b = Breaker::new(2, Duration::from_millis(30));
        assert!(b.allow());
        assert!(!b.failure());
        assert!(b.failure(), "second consecutive failure opens it");
        assert!(!b.allow() && !b.is_closed());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "one trial after the open period");
        assert!(!b.allow(), "only one");
        assert!(b.success(), "the trial's success closes it");
        assert!(b.is_closed() && b.allow());
    }

    #[test]
    fn redis_urls_ask_for_resp3() {
        assert_eq!(
            with_resp3("redis://h:6379"),
            "redis://h:6379/?protocol=resp3"
        );
        assert_eq!(
            with_resp3("redis://h:6379/2"),
            "redis://h:6379/2?protocol=resp3"
        );
        assert_eq!(
            with_resp3("redis://h/?db=1"),
            "redis://h/?db=1&protocol=resp3"
        );
        assert_eq!(
            with_resp3("redis://h/?protocol=resp2"),
            "redis://h/?protocol=resp2"
        );
    }

    #[tokio::test]
    async fn local_writes_never_go_back_in_version() {
        let cache = Cache::new(&CacheConfig {
            redis_url: None,
            client_cache_keys: 0,
            ttl: Duration::from_secs(60),
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
