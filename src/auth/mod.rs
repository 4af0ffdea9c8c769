//! API keys: `Authorization: Bearer <key>`; each key belongs to one tenant.
//!
//! Keys are 192 random bits, so a plain SHA-256 digest is a safe way to store them (a slow
//! password hash protects guessable secrets, which these are not) and lets a lookup use an index.

pub mod keys;
pub mod scopes;
mod shared_limit;

pub use keys::{CreatedKey, KeyError, KeyRequest};
pub use scopes::{Scope, Scopes};

use crate::settings::RateLimitSettings;
use crate::store::tenants::{KeyRecord, Tenant};
use crate::store::{Db, StoreError, now_millis};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::time::Duration;

pub const KEY_PREFIX: &str = "sg_";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The key used up its request quota.
    #[error("too many requests for this API key")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An authenticated key: whose data it reaches (tenant and mode) and what it may do there.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub tenant: Tenant,
    pub scopes: Scopes,
    /// The end of a rotated key's grace period (epoch ms).
    expires_at_ms: Option<i64>,
}

impl ApiKey {
    fn from_record(record: KeyRecord) -> Self {
        Self {
            scopes: Scopes::from_stored(&record.scopes),
            id: record.id,
            tenant: record.tenant,
            expires_at_ms: record.expires_at_ms,
        }
    }

    fn expired(&self) -> bool {
        self.expires_at_ms.is_some_and(|end| now_millis() >= end)
    }
}

type Limiter = governor::DefaultDirectRateLimiter;
type AddressLimiter = governor::DefaultKeyedRateLimiter<IpAddr>;

fn address_limiter(per_second: u32, burst: u32) -> AddressLimiter {
    let nz = |n: u32| std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MIN);
    governor::RateLimiter::keyed(governor::Quota::per_second(nz(per_second)).allow_burst(nz(burst)))
}

#[derive(Clone)]
pub struct Auth {
    db: Db,
    /// Verified keys by digest; the TTL bounds how long a key revoked through another instance
    /// (or the CLI) keeps working here. This instance forgets a key it revokes at once.
    cache: moka::future::Cache<String, ApiKey>,
    /// Digests of keys that were looked up and do not exist (a negative cache): asked again,
    /// they are refused without a database query.
    unknown: moka::future::Cache<String, ()>,
    /// Failed authentications per client address, and addresses that used up their budget.
    failures: std::sync::Arc<AddressLimiter>,
    blocked: moka::future::Cache<IpAddr, std::time::Instant>,
    /// The quotas shared through Redis, when configured.
    shared: Option<std::sync::Arc<shared_limit::SharedLimiter>>,
    /// One token bucket per key (by digest), kept while the key is in use.
    limiters: Option<moka::future::Cache<String, std::sync::Arc<Limiter>>>,
    limits: std::sync::Arc<RateLimitSettings>,
    /// Digest of the service key another instance's services present, if one is configured.
    service_key: Option<String>,
}

/// What a service key may do for the tenant it names: the gateway's waybills and labels.
const SERVICE_SCOPES: &str = "waybills:read waybills:write labels:read tracking:read";

impl Auth {
    pub fn new(db: Db, ttl: Duration) -> Self {
        Self {
            db,
            cache: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
            unknown: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
            failures: std::sync::Arc::new(address_limiter(u32::MAX, u32::MAX)),
            blocked: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            limiters: None,
            shared: None,
            service_key: None,
            limits: std::sync::Arc::new(RateLimitSettings {
                enabled: false,
                per_second: 1,
                burst: 1,
                tenants: Default::default(),
                failed_auth_per_second: u32::MAX,
                failed_auth_burst: u32::MAX,
            }),
        }
    }

    /// Shares the per-key quotas with every instance through Redis.
    pub fn with_shared_limits(mut self, redis_url: &str, cluster: bool) -> anyhow::Result<Self> {
        self.shared = Some(std::sync::Arc::new(shared_limit::SharedLimiter::new(
            redis_url,
            cluster,
            Duration::from_millis(100),
        )?));
        Ok(self)
    }

    /// Limits the requests of each key (`rate_limits.*`).
    pub fn with_rate_limits(mut self, limits: RateLimitSettings) -> Self {
        self.limiters = limits.enabled.then(|| {
            moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(3600))
                .build()
        });
        if limits.enabled {
            self.failures = std::sync::Arc::new(address_limiter(
                limits.failed_auth_per_second,
                limits.failed_auth_burst,
            ));
        }
        self.limits = std::sync::Arc::new(limits);
        self
    }

    /// Takes one request from the key's quota, or says how long to wait.
    async fn admit(&self, digest: &str, tenant: &Tenant) -> Result<(), AuthError> {
        let Some(limiters) = &self.limiters else {
            return Ok(());
        };
        let limits = &self.limits;
        let (per_second, burst) = match limits.tenants.get(&tenant.name) {
            Some(q) => (q.per_second, q.burst),
            None => (limits.per_second, limits.burst),
        };
        // With Redis the quota is the key's across every instance; without it (or while it
        // fails) each instance keeps its own.
        if let Some(shared) = &self.shared {
            match shared.check(digest, per_second, burst).await {
                shared_limit::Verdict::Admitted => return Ok(()),
                shared_limit::Verdict::Wait(wait) => {
                    metrics::counter!("shipgate_rate_limited_total").increment(1);
                    return Err(AuthError::RateLimited {
                        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                    });
                }
                shared_limit::Verdict::Unavailable => {}
            }
        }
        let limiter = limiters
            .get_with_by_ref(digest, async {
                let quota = governor::Quota::per_second(
                    std::num::NonZeroU32::new(per_second).unwrap_or(std::num::NonZeroU32::MIN),
                )
                .allow_burst(std::num::NonZeroU32::new(burst).unwrap_or(std::num::NonZeroU32::MIN));
                std::sync::Arc::new(governor::RateLimiter::direct(quota))
            })
            .await;
        limiter.check().map_err(|not_until| {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            metrics::counter!("shipgate_rate_limited_total").increment(1);
            AuthError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        })
    }

    /// Accepts `key` from other instances' services (with the tenant they act for named).
    pub fn with_service_key(mut self, key: Option<&str>) -> Self {
        self.service_key = key.filter(|k| !k.is_empty()).map(digest);
        self
    }

    /// A service's request for `tenant_id`: the service key, and a tenant that exists.
    pub async fn verify_service(
        &self,
        key: &str,
        tenant_id: &str,
        address: Option<IpAddr>,
    ) -> Result<ApiKey, AuthError> {
        let known = self.service_key.as_deref();
        if known.is_none_or(|k| k != digest(key)) {
            // Counted like any bad key (the same failure budget per address).
            return self
                .verify(&format!("{KEY_PREFIX}not-a-service-key"), address)
                .await;
        }
        let tenant = self
            .db
            .tenant_by_id(tenant_id)
            .await?
            .ok_or(AuthError::Unauthorized(
                "the service key names no such tenant",
            ))?;
        Ok(ApiKey {
            id: "service".into(),
            tenant,
            scopes: Scopes::parse(SERVICE_SCOPES).unwrap_or(Scopes::FULL),
            expires_at_ms: None,
        })
    }

    /// The tenant of `key`, asked from `address`. An address that keeps presenting bad keys is
    /// refused before any work once it used up its failure budget.
    pub async fn verify(&self, key: &str, address: Option<IpAddr>) -> Result<ApiKey, AuthError> {
        if let Some(ip) = address
            && let Some(until) = self.blocked.get(&ip).await
        {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if !left.is_zero() {
                metrics::counter!("shipgate_auth_failures_throttled_total").increment(1);
                return Err(AuthError::RateLimited {
                    retry_after_secs: left.as_secs_f64().ceil().max(1.0) as u64,
                });
            }
        }
        let result = self.lookup(key).await;
        if matches!(result, Err(AuthError::Unauthorized(_)))
            && let Some(ip) = address
            && let Err(not_until) = self.failures.check_key(&ip)
        {
            // Only failures spend the address's budget; once it is spent the address is
            // refused before any work until the budget refills.
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            if self.failures.len() > 100_000 {
                self.failures.retain_recent();
            }
            self.blocked
                .insert(ip, std::time::Instant::now() + wait)
                .await;
            metrics::counter!("shipgate_auth_failures_throttled_total").increment(1);
            return Err(AuthError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        let (digest, key) = result?;
        self.admit(&digest, &key.tenant).await?;
        Ok(key)
    }

    /// The key's digest (hashed once per request) and what it is.
    async fn lookup(&self, key: &str) -> Result<(String, ApiKey), AuthError> {
        if !key.starts_with(KEY_PREFIX) || key.len() > 128 {
            return Err(AuthError::Unauthorized("invalid API key"));
        }
        let digest = digest(key);
        if let Some(found) = self.cache.get(&digest).await {
            return match found.expired() {
                true => Err(AuthError::Unauthorized("API key expired (it was rotated)")),
                false => Ok((digest, found)),
            };
        }
        if self.unknown.contains_key(&digest) {
            return Err(AuthError::Unauthorized("invalid API key"));
        }
        match self.db.key_by_hash(&digest).await? {
            Some(record) => {
                let found = ApiKey::from_record(record);
                self.cache.insert(digest.clone(), found.clone()).await;
                match found.expired() {
                    true => Err(AuthError::Unauthorized("API key expired (it was rotated)")),
                    false => Ok((digest, found)),
                }
            }
            None => {
                self.unknown.insert(digest, ()).await;
                Err(AuthError::Unauthorized("invalid API key"))
            }
        }
    }

    /// Revokes a key of `tenant_id` and stops it on this instance at once.
    pub async fn revoke(&self, id: &str, tenant_id: &str) -> Result<KeyRecord, KeyError> {
        let key = keys::revoke_key(&self.db, id, Some(tenant_id)).await?;
        self.cache.invalidate(&key.digest).await;
        Ok(key)
    }

    /// Rotates a key of `tenant_id`; the old key's new end applies on this instance at once.
    pub async fn rotate(
        &self,
        id: &str,
        tenant_id: &str,
        grace: Duration,
    ) -> Result<(CreatedKey, KeyRecord), KeyError> {
        let (new, old) = keys::rotate_key(&self.db, id, Some(tenant_id), grace).await?;
        self.cache.invalidate(&old.digest).await;
        Ok((new, old))
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

pub fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}
