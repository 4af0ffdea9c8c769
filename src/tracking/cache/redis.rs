//! Answers in Redis: read through the breaker, written with a Lua script that never replaces a
//! newer version, copies held in process memory through Redis's invalidation messages (RESP3),
//! and answers whose write failed remembered for rewriting when Redis is back.

use super::{CacheConfig, Lookup};
use crate::redis_link::{RedisConn, RedisTarget};
use bytes::Bytes;
use carriers::breaker::Breaker;
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct RedisCache {
    target: RedisTarget,
    conn: tokio::sync::OnceCell<RedisConn>,
    ttl_secs: u64,
    timeout: Duration,
    breaker: Breaker,
    put: redis::Script,
    client_cache_keys: usize,
    /// Longest a copy in process memory is served: a read in flight can take the key's
    /// invalidation before its own answer is stored, and that copy is never invalidated again.
    client_cache_max_age: Duration,
    /// Waybills whose answer could not be written while Redis was away.
    missed: Mutex<HashSet<String>>,
    missed_overflow: AtomicBool,
}

/// Most answers remembered for rewriting after an outage; beyond it the cache is flushed of
/// tracking answers on recovery instead.
const MAX_MISSED: usize = 100_000;

/// KEYS are pairs (answer key, its version key): sets each answer and version unless the
/// version key holds a newer version. A version that is missing or not a number counts as
/// absent, so nothing a key may hold can make the script fail.
const PUT_SCRIPT: &str = r"
local v = tonumber(ARGV[1])
for i = 1, #KEYS, 2 do
  local raw = redis.call('GET', KEYS[i + 1])
  local cur = -1
  if raw then
    cur = tonumber(raw) or -1
  end
  if v >= cur then
    redis.call('SET', KEYS[i], ARGV[2], 'EX', ARGV[3])
    redis.call('SET', KEYS[i + 1], ARGV[1], 'EX', ARGV[3])
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

impl RedisCache {
    pub(super) fn new(url: &str, config: &CacheConfig) -> anyhow::Result<Self> {
        // Client-side caching needs RESP3 (invalidations arrive as push messages); a cluster
        // client asks for it itself.
        let url = if config.client_cache_keys > 0 && !config.redis_cluster {
            with_resp3(url)
        } else {
            url.to_owned()
        };
        Ok(Self {
            target: RedisTarget::new(&url, config.redis_cluster)?,
            conn: tokio::sync::OnceCell::new(),
            ttl_secs: config.ttl.as_secs().max(1),
            timeout: config.timeout,
            breaker: Breaker::new(config.breaker_failures, config.breaker_open),
            put: redis::Script::new(PUT_SCRIPT),
            client_cache_keys: config.client_cache_keys,
            client_cache_max_age: config.memory_max_age(),
            missed: Mutex::new(HashSet::new()),
            missed_overflow: AtomicBool::new(false),
        })
    }
}

impl RedisCache {
    async fn conn(&self) -> Option<RedisConn> {
        if !self.breaker.allow() {
            return None;
        }
        // Reads marked below are answered from memory until Redis says the key changed; a
        // reconnect starts a new epoch, dropping everything cached before it.
        let init = self.conn.get_or_try_init(|| {
            self.target.connect(
                self.timeout,
                std::num::NonZeroUsize::new(self.client_cache_keys),
            )
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
        conn: &mut RedisConn,
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

    fn cached<'a>(&self, cmd: &'a mut redis::Cmd) -> &'a mut redis::Cmd {
        cmd.set_cache_config(
            redis::CommandCacheConfig::new()
                .set_enable_cache(true)
                .set_client_side_ttl(self.client_cache_max_age),
        )
    }

    pub(super) async fn get(&self, key: &str) -> Lookup {
        if !self.readable() {
            return Lookup::Unavailable;
        }
        let Some(mut conn) = self.conn().await else {
            return Lookup::Unavailable;
        };
        match self
            .run::<Option<Vec<u8>>>(&mut conn, self.cached(redis::cmd("GET").arg(key)))
            .await
        {
            Some(Some(body)) => Lookup::Hit(Bytes::from(body)),
            Some(None) => Lookup::Miss,
            None => Lookup::Unavailable,
        }
    }

    pub(super) async fn get_many(&self, keys: &[String]) -> Option<Vec<Option<Bytes>>> {
        // As for single reads: not while Redis may hold an answer whose rewrite it missed.
        if !self.readable() {
            return None;
        }
        let mut conn = self.conn().await?;
        let found: Vec<Option<Vec<u8>>> = self.run(&mut conn, redis::cmd("MGET").arg(keys)).await?;
        Some(found.into_iter().map(|b| b.map(Bytes::from)).collect())
    }

    pub(super) async fn put(
        &self,
        waybill_id: &str,
        keys: &[String],
        version: i64,
        body: &Bytes,
        remember: bool,
    ) {
        let written = match self.conn().await {
            // One script for every key; in a cluster one per key (each with its version key,
            // in one slot by their hash tag), as a waybill's numbers hash to different slots.
            Some(mut conn) => {
                let groups: Vec<&[String]> = if self.target.is_cluster() {
                    keys.chunks(1).collect()
                } else {
                    vec![keys]
                };
                let mut all = true;
                for group in groups {
                    let mut invocation = self.put.prepare_invoke();
                    for k in group {
                        invocation.key(k).key(super::version_key(k));
                    }
                    invocation
                        .arg(version)
                        .arg(body.as_ref())
                        .arg(self.ttl_secs);
                    if self
                        .settle(invocation.invoke_async::<i64>(&mut conn))
                        .await
                        .is_none()
                    {
                        all = false;
                        break;
                    }
                }
                all
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

    pub(super) fn take_missed(&self) -> Option<Vec<String>> {
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
            if self.target.is_cluster() {
                // SCAN walks one node; KEYS goes to every master (a rare, whole-cache repair).
                let Some(keys) = self
                    .run::<Vec<String>>(&mut conn, redis::cmd("KEYS").arg(super::KEYS_PATTERN))
                    .await
                else {
                    return;
                };
                for chunk in keys.chunks(1000) {
                    let _ = self
                        .run::<i64>(&mut conn, redis::cmd("DEL").arg(chunk))
                        .await;
                }
                return;
            }
            let mut cursor: u64 = 0;
            loop {
                let Some((next, keys)) = self
                    .run::<(u64, Vec<String>)>(
                        &mut conn,
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(super::KEYS_PATTERN)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
