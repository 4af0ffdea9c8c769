//! Per-key quotas shared by every instance through Redis: GCRA (the generic cell rate
//! algorithm, what `governor` does in one process) in one Lua script, so the check and the update
//! are one atomic step and the clock is Redis's own. Redis errors or slowness open a breaker and
//! the caller falls back to its in-process limiter.

use crate::redis_link::{RedisConn, RedisTarget};
use carriers::breaker::Breaker;
use std::time::Duration;

/// KEYS[1]: the key's theoretical arrival time (ms). ARGV: emission interval (ms), burst
/// tolerance (ms). Returns 0 when admitted, else the milliseconds to wait.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - now - tolerance
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.max(1, math.ceil(next_tat - now)))
return 0";

pub enum Verdict {
    Admitted,
    Wait(Duration),
    /// Redis could not be asked: decide locally.
    Unavailable,
}

pub struct SharedLimiter {
    target: RedisTarget,
    conn: tokio::sync::OnceCell<RedisConn>,
    script: redis::Script,
    timeout: Duration,
    breaker: Breaker,
}

impl SharedLimiter {
    pub fn new(url: &str, cluster: bool, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            target: RedisTarget::new(url, cluster)?,
            conn: tokio::sync::OnceCell::new(),
            script: redis::Script::new(GCRA),
            timeout,
            breaker: Breaker::new(3, Duration::from_secs(1)),
        })
    }

    /// Takes one request from `key`'s quota of `per_second` with `burst`.
    pub async fn check(&self, key: &str, per_second: u32, burst: u32) -> Verdict {
        if !self.breaker.allow() {
            return Verdict::Unavailable;
        }
        let interval = 1000.0 / f64::from(per_second.max(1));
        let tolerance = interval * f64::from(burst.max(1));
        let call = async {
            let conn = self
                .conn
                .get_or_try_init(|| self.target.connect(self.timeout, None))
                .await?;
            let mut conn = conn.clone();
            self.script
                .key(format!("sg:rl:{key}"))
                .arg(interval)
                .arg(tolerance)
                .invoke_async::<i64>(&mut conn)
                .await
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(wait)) => {
                self.breaker.success();
                if wait <= 0 {
                    Verdict::Admitted
                } else {
                    Verdict::Wait(Duration::from_millis(wait.unsigned_abs()))
                }
            }
            Ok(Err(e)) => {
                if self.breaker.failure() {
                    tracing::warn!(error = %e, "redis unavailable: rate limits are per instance");
                }
                Verdict::Unavailable
            }
            Err(_) => {
                if self.breaker.failure() {
                    tracing::warn!("redis too slow: rate limits are per instance");
                }
                Verdict::Unavailable
            }
        }
    }
}
