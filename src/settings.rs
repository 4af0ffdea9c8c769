//! Typed configuration: built-in defaults, then an optional TOML file (`SHIPGATE_CONFIG`), then
//! `SHIPGATE_*` environment variables (nested keys joined by `__`). Invalid values stop start-up
//! with a message naming the key.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server binds.
    pub listen: String,
    /// `sqlite://path` or `postgres://...`.
    pub database_url: String,
    /// Connections in the database pool.
    pub database_pool_size: u32,
    /// Redis for the shared caches; empty means in-process caches only.
    pub redis_url: Option<String>,
    pub log: LogSettings,
    pub http: HttpSettings,
    pub idempotency: IdempotencySettings,
    pub auth: AuthSettings,
    pub carriers: CarrierSettings,
    /// Public channel code -> carrier and the carrier's service code.
    pub channels: BTreeMap<String, ChannelSettings>,
    pub labels: LabelSettings,
    pub returns: ReturnsSettings,
    pub tracking: TrackingSettings,
    pub rate_limits: RateLimitSettings,
    pub tls: TlsSettings,
    pub shutdown: ShutdownSettings,
    pub webhooks: WebhookSettings,
}

/// Pushes to subscribers' webhook endpoints (see `webhooks`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Whether this instance runs the delivery worker (the outbox fills either way).
    pub enabled: bool,
    /// How often an idle worker looks for due deliveries.
    pub poll_interval_ms: u64,
    /// Deliveries in flight at once per instance.
    pub batch: u32,
    /// One delivery's budget (connect, send, answer).
    pub timeout_ms: u64,
    /// Wait after the first failure; doubles per failure (plus up to 100 % jitter).
    pub initial_backoff_ms: u64,
    /// Longest wait between attempts.
    pub max_backoff_ms: u64,
    /// How long a failing delivery is retried before it is dead-lettered (at least a day in
    /// production).
    pub retry_window_secs: u64,
    /// Endpoints per tenant.
    pub max_endpoints: u32,
    /// How long delivered (and cancelled) deliveries stay in the delivery log.
    pub retention_days: u64,
    /// Whether endpoints may be on loopback, private or link-local addresses (off: tenants'
    /// URLs cannot reach the gateway's own network).
    pub allow_private_targets: bool,
}

/// What SIGTERM does: `/readyz` answers 503 at once, responses ask clients to reconnect
/// (`Connection: close`) for `drain_delay_ms`, then the listener closes and in-flight requests
/// get up to `timeout_ms` to finish.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSettings {
    pub drain_delay_ms: u64,
    pub timeout_ms: u64,
}

/// HTTPS: with both PEM paths set, shipgate serves TLS (rustls; HTTP/1.1 and HTTP/2 by ALPN)
/// instead of plain HTTP on `listen`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// Certificate chain, PEM.
    pub cert_path: Option<String>,
    /// Private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key_path: Option<String>,
}

/// Requests per API key, checked right after the key and before any other work.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// The default quota of each key.
    pub per_second: u32,
    pub burst: u32,
    /// Quotas for the keys of particular tenants, by tenant name.
    pub tenants: BTreeMap<String, Quota>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub per_second: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingSettings {
    /// How long a ready tracking answer stays in the cache without a new event.
    pub cache_ttl_secs: u64,
    /// Entries of the in-process cache used when no Redis is configured.
    pub local_cache_capacity: u64,
    /// Answers also kept in process memory with Redis, coherent through Redis's invalidation
    /// messages (server-assisted client-side caching over RESP3); 0 turns it off.
    pub redis_client_cache_keys: usize,
    /// One Redis command's budget; a slower answer counts as a failure.
    pub redis_timeout_ms: u64,
    /// Consecutive Redis failures that open the breaker (queries then go to the database).
    pub redis_breaker_failures: u32,
    /// How long the breaker stays open before one query tries Redis again.
    pub redis_breaker_open_ms: u64,
    /// Largest distance of a push's timestamp from now (replay protection).
    pub callback_max_skew_secs: u64,
    /// Carriers allowed to push, with their shared secret (HMAC key, SF checkword).
    pub callbacks: BTreeMap<String, CallbackSettings>,
    /// Normalized last-mile carrier name -> the names carriers use for it (any case).
    pub last_mile_carriers: BTreeMap<String, Vec<String>>,
    pub polling: PollingSettings,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackSettings {
    pub secret: String,
}

impl std::fmt::Debug for CallbackSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallbackSettings { secret: *** }")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollingSettings {
    pub enabled: bool,
    /// How often the scheduler looks for parcels that are due.
    pub tick_ms: u64,
    /// Parcels claimed per tick and instance.
    pub batch: u32,
    /// How long a claimed parcel belongs to the instance polling it.
    pub lease_ms: u64,
    /// First poll after creation.
    pub first_ms: u64,
    /// Between polls while the parcel moves.
    pub moving_ms: u64,
    /// Between polls once it is out for delivery (or waiting for pickup, or a failed attempt).
    pub out_for_delivery_ms: u64,
    /// After delivery or return, one last poll this much later; then polling stops.
    pub delivered_grace_ms: u64,
    /// Tracking calls per second and carrier, spread evenly.
    pub rate_per_second: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSettings {
    /// The layout shipgate renders its own labels with (`4x6`, `100x150`, or one of `templates_dir`).
    pub layout: String,
    /// More layouts: `*.toml` files here are read at start.
    pub templates_dir: String,
    /// Where label documents are kept: `database` (small deployments) or `directory`.
    pub storage: LabelStorage,
    /// The directory of `storage = "directory"` (shared by every instance).
    pub directory: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelStorage {
    Database,
    Directory,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnsSettings {
    /// The platform's return warehouses and what each serves (requirement 4.1).
    pub warehouses: Vec<crate::labels::returns::Warehouse>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `tracing` filter directive, e.g. `info` or `shipgate=debug,info`.
    pub level: String,
    /// `json` (structured, the default) or `pretty`.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Worker threads; 0 means one per CPU.
    pub workers: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencySettings {
    /// How long a duplicate request waits for the first one before `409 REFERENCE_IN_PROGRESS`.
    pub wait_ms: u64,
    /// How long a create attempt owns its reference; past it a crashed attempt is taken over.
    pub lease_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// How long a verified API key is remembered in memory.
    pub cache_ttl_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarrierSettings {
    /// The whole carrier part of one API request (token, rate-limit wait, retries, lookup and
    /// create together), kept under the 3 s every endpoint answers within.
    pub budget_ms: u64,
    pub sandbox: SandboxSettings,
    pub fedex: HttpCarrierSettings,
    pub dhl_express: HttpCarrierSettings,
    pub ups: HttpCarrierSettings,
    pub usps: HttpCarrierSettings,
    pub sf_express: HttpCarrierSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSettings {
    pub enabled: bool,
    /// Delay of the `SANDBOX_SLOW` trigger.
    pub slow_ms: u64,
    /// How fast sandbox parcels move: 1 is real time (about three days to delivery), 3600 makes
    /// each journey hour one second.
    pub clock_speed: f64,
}

/// One HTTP carrier: where it is, who we are there, and how hard we may call it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCarrierSettings {
    pub enabled: bool,
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub account_number: String,
    pub api_version: String,
    pub customer_code: String,
    pub checkword: String,
    pub crid: String,
    pub mid: String,
    /// Budget of one HTTP exchange.
    pub timeout_ms: u64,
    pub rate_per_second: u32,
    pub rate_burst: u32,
    /// How long a call may wait for its turn under the rate limit.
    pub rate_max_wait_ms: u64,
    /// Extra attempts of calls that are safe to repeat (tracking, lookups).
    pub retries: u32,
    pub breaker_failures: u32,
    pub breaker_open_ms: u64,
}

impl std::fmt::Debug for HttpCarrierSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCarrierSettings")
            .field("enabled", &self.enabled)
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .finish_non_exhaustive()
    }
}

impl HttpCarrierSettings {
    /// Off until credentials are configured; `base_url` is the carrier's documented sandbox.
    pub fn with_url(base_url: &str) -> Self {
        Self {
            enabled: false,
            base_url: base_url.into(),
            client_id: String::new(),
            client_secret: String::new(),
            account_number: String::new(),
            api_version: String::new(),
            customer_code: String::new(),
            checkword: String::new(),
            crid: String::new(),
            mid: String::new(),
            timeout_ms: 2000,
            rate_per_second: 10,
            rate_burst: 10,
            rate_max_wait_ms: 500,
            retries: 2,
            breaker_failures: 5,
            breaker_open_ms: 30_000,
        }
    }

    pub fn http_config(&self) -> carriers::http::HttpConfig {
        carriers::http::HttpConfig {
            base_url: self.base_url.clone(),
            timeout: Duration::from_millis(self.timeout_ms),
            rate_per_second: self.rate_per_second,
            rate_burst: self.rate_burst,
            rate_max_wait: Duration::from_millis(self.rate_max_wait_ms),
            retries: self.retries,
            breaker_failures: self.breaker_failures,
            breaker_open: Duration::from_millis(self.breaker_open_ms),
            credentials: carriers::http::Credentials {
                client_id: self.client_id.clone(),
                client_secret: self.client_secret.clone(),
                account_number: self.account_number.clone(),
                api_version: self.api_version.clone(),
                customer_code: self.customer_code.clone(),
                checkword: self.checkword.clone(),
                crid: self.crid.clone(),
                mid: self.mid.clone(),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    pub carrier: String,
    pub service: String,
}

/// Built-in channels: public code, carrier, the carrier's service code. A channel is offered
/// when its carrier is enabled.
const DEFAULT_CHANNELS: &[(&str, &str, &str)] = &[
    ("SANDBOX_EXPRESS", "sandbox", "EXPRESS"),
    ("SANDBOX_LINEHAUL_US", "sandbox", "LINEHAUL_US"),
    (
        "FEDEX_INTERNATIONAL_PRIORITY",
        "fedex",
        "INTERNATIONAL_PRIORITY",
    ),
    (
        "FEDEX_INTERNATIONAL_ECONOMY",
        "fedex",
        "INTERNATIONAL_ECONOMY",
    ),
    ("FEDEX_GROUND", "fedex", "FEDEX_GROUND"),
    ("DHL_EXPRESS_WORLDWIDE", "dhl_express", "P"),
    ("DHL_EXPRESS_WORLDWIDE_DOC", "dhl_express", "D"),
    ("UPS_WORLDWIDE_SAVER", "ups", "65"),
    ("UPS_WORLDWIDE_EXPEDITED", "ups", "08"),
    ("UPS_GROUND", "ups", "03"),
    ("USPS_GROUND_ADVANTAGE", "usps", "USPS_GROUND_ADVANTAGE"),
    ("USPS_PRIORITY_MAIL", "usps", "PRIORITY_MAIL"),
    (
        "USPS_PRIORITY_MAIL_EXPRESS",
        "usps",
        "PRIORITY_MAIL_EXPRESS",
    ),
    ("SF_EXPRESS_STANDARD", "sf_express", "1"),
    ("SF_INTERNATIONAL_STANDARD", "sf_express", "9"),
    ("SF_INTERNATIONAL_ECONOMY", "sf_express", "10"),
];

impl Default for Settings {
    fn default() -> Self {
        let channel = |carrier: &str, service: &str| ChannelSettings {
            carrier: carrier.into(),
            service: service.into(),
        };
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://data/shipgate.db".into(),
            database_pool_size: 16,
            redis_url: None,
            log: LogSettings {
                level: "info".into(),
                format: LogFormat::Json,
            },
            http: HttpSettings {
                max_body_bytes: 1024 * 1024,
                workers: 0,
            },
            idempotency: IdempotencySettings {
                wait_ms: 2500,
                lease_ms: 15_000,
            },
            auth: AuthSettings { cache_ttl_secs: 30 },
            carriers: CarrierSettings {
                budget_ms: 2500,
                sandbox: SandboxSettings {
                    enabled: true,
                    slow_ms: 1500,
                    clock_speed: 1.0,
                },
                fedex: HttpCarrierSettings::with_url(carriers::fedex::SANDBOX_URL),
                dhl_express: HttpCarrierSettings::with_url(carriers::dhl_express::SANDBOX_URL),
                ups: HttpCarrierSettings::with_url(carriers::ups::SANDBOX_URL),
                usps: HttpCarrierSettings::with_url(carriers::usps::SANDBOX_URL),
                sf_express: HttpCarrierSettings::with_url(carriers::sf_express::SANDBOX_URL),
            },
            labels: LabelSettings {
                layout: "4x6".into(),
                templates_dir: "label_templates".into(),
                storage: LabelStorage::Database,
                directory: "data/labels".into(),
            },
            returns: ReturnsSettings {
                warehouses: crate::labels::returns::examples(),
            },
            tracking: TrackingSettings {
                cache_ttl_secs: 24 * 3600,
                local_cache_capacity: 200_000,
                redis_client_cache_keys: 20_000,
                redis_timeout_ms: 100,
                redis_breaker_failures: 3,
                redis_breaker_open_ms: 1000,
                callback_max_skew_secs: 300,
                callbacks: BTreeMap::new(),
                last_mile_carriers: crate::tracking::aliases::defaults(),
                polling: PollingSettings {
                    enabled: true,
                    tick_ms: 1000,
                    batch: 200,
                    lease_ms: 60_000,
                    first_ms: 30 * 60_000,
                    moving_ms: 4 * 3_600_000,
                    out_for_delivery_ms: 30 * 60_000,
                    delivered_grace_ms: 24 * 3_600_000,
                    rate_per_second: 5,
                },
            },
            tls: TlsSettings::default(),
            shutdown: ShutdownSettings {
                drain_delay_ms: 1000,
                timeout_ms: 30_000,
            },
            webhooks: WebhookSettings {
                enabled: true,
                poll_interval_ms: 250,
                batch: 64,
                timeout_ms: 10_000,
                initial_backoff_ms: 5_000,
                max_backoff_ms: 3_600_000,
                retry_window_secs: 24 * 3600,
                max_endpoints: 20,
                retention_days: 30,
                allow_private_targets: false,
            },
            rate_limits: RateLimitSettings {
                enabled: true,
                per_second: 500,
                burst: 1000,
                tenants: BTreeMap::new(),
            },
            channels: DEFAULT_CHANNELS
                .iter()
                .map(|(code, carrier, service)| ((*code).to_owned(), channel(carrier, service)))
                .collect(),
        }
    }
}

impl Settings {
    /// Defaults, then the TOML file named by `SHIPGATE_CONFIG`, then `SHIPGATE_*` variables.
    pub fn load() -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Ok(path) = std::env::var("SHIPGATE_CONFIG") {
            if !std::path::Path::new(&path).is_file() {
                return Err(ConfigError(format!(
                    "SHIPGATE_CONFIG: no such file: {path}"
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(
            Env::prefixed("SHIPGATE_")
                .ignore(&["CONFIG"])
                .split("__")
                .lowercase(true),
        );
        Self::from_figment(figment)
    }

    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let mut settings: Settings = figment.extract().map_err(|e| {
            let mut messages = Vec::new();
            for err in e {
                let key = err.path.join(".");
                messages.push(if key.is_empty() {
                    err.to_string()
                } else {
                    format!("{key}: {}", err.kind)
                });
            }
            ConfigError(messages.join("; "))
        })?;
        settings.channels = std::mem::take(&mut settings.channels)
            .into_iter()
            .map(|(code, ch)| (code.to_ascii_uppercase(), ch))
            .collect();
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, msg: String| Err(ConfigError(format!("{key}: {msg}")));
        if let Err(e) = self.listen.parse::<SocketAddr>() {
            return fail(
                "listen",
                format!("`{}` is not an address: {e}", self.listen),
            );
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return fail(
                "database_url",
                "must start with sqlite:, postgres:// or postgresql://".into(),
            );
        }
        if self.database_pool_size == 0 {
            return fail("database_pool_size", "must be at least 1".into());
        }
        if let Err(e) = self.log.level.parse::<tracing_subscriber::EnvFilter>() {
            return fail("log.level", e.to_string());
        }
        if self.http.max_body_bytes < 1024 {
            return fail("http.max_body_bytes", "must be at least 1024".into());
        }
        if self.carriers.budget_ms == 0 || self.carriers.budget_ms > 2900 {
            return fail(
                "carriers.budget_ms",
                "must be between 1 and 2900 (the 3 s promise)".into(),
            );
        }
        if self.idempotency.lease_ms <= self.carriers.budget_ms {
            return fail(
                "idempotency.lease_ms",
                "must be longer than carriers.budget_ms".into(),
            );
        }
        for (id, carrier) in self.http_carriers() {
            let key = |k: &str| format!("carriers.{id}.{k}");
            if !carrier.base_url.starts_with("https://") && !carrier.base_url.starts_with("http://")
            {
                return fail(&key("base_url"), "must be an http(s) URL".into());
            }
            if carrier.timeout_ms == 0 || carrier.timeout_ms > self.carriers.budget_ms {
                return fail(
                    &key("timeout_ms"),
                    "must be between 1 and carriers.budget_ms".into(),
                );
            }
            if carrier.rate_per_second == 0 {
                return fail(&key("rate_per_second"), "must be at least 1".into());
            }
            // SF Express signs with a checkword; the others log in with a client id.
            let secret = if id == carriers::sf_express::ID {
                ("checkword", &carrier.checkword)
            } else {
                ("client_id", &carrier.client_id)
            };
            if carrier.enabled && secret.1.is_empty() {
                return fail(
                    &key(secret.0),
                    "is required when the carrier is enabled".into(),
                );
            }
        }
        crate::labels::returns::validate(&self.returns.warehouses).map_err(ConfigError)?;
        if self.carriers.sandbox.clock_speed.is_nan() || self.carriers.sandbox.clock_speed <= 0.0 {
            return fail("carriers.sandbox.clock_speed", "must be above 0".into());
        }
        let w = &self.webhooks;
        for (key, v) in [
            ("poll_interval_ms", w.poll_interval_ms),
            ("timeout_ms", w.timeout_ms),
            ("initial_backoff_ms", w.initial_backoff_ms),
            ("max_backoff_ms", w.max_backoff_ms),
            ("retry_window_secs", w.retry_window_secs),
            ("max_endpoints", u64::from(w.max_endpoints)),
            ("retention_days", w.retention_days),
        ] {
            if v == 0 {
                return fail(&format!("webhooks.{key}"), "must be at least 1".into());
            }
        }
        if w.batch == 0 || w.batch > 256 {
            return fail("webhooks.batch", "must be between 1 and 256".into());
        }
        if w.initial_backoff_ms > w.max_backoff_ms {
            return fail(
                "webhooks.initial_backoff_ms",
                "must not exceed webhooks.max_backoff_ms".into(),
            );
        }
        let p = &self.tracking.polling;
        for (key, v) in [
            ("tick_ms", p.tick_ms),
            ("lease_ms", p.lease_ms),
            ("moving_ms", p.moving_ms),
            ("out_for_delivery_ms", p.out_for_delivery_ms),
            ("batch", u64::from(p.batch)),
            ("rate_per_second", u64::from(p.rate_per_second)),
        ] {
            if v == 0 {
                return fail(
                    &format!("tracking.polling.{key}"),
                    "must be at least 1".into(),
                );
            }
        }
        fn tls_path(p: &Option<String>) -> Option<&str> {
            p.as_deref().map(str::trim).filter(|p| !p.is_empty())
        }
        match (tls_path(&self.tls.cert_path), tls_path(&self.tls.key_path)) {
            (Some(_), None) => {
                return fail("tls.key_path", "is required with tls.cert_path".into());
            }
            (None, Some(_)) => {
                return fail("tls.cert_path", "is required with tls.key_path".into());
            }
            _ => {}
        }
        let quotas = std::iter::once((
            "default".to_owned(),
            (self.rate_limits.per_second, self.rate_limits.burst),
        ))
        .chain(
            self.rate_limits
                .tenants
                .iter()
                .map(|(t, q)| (format!("tenants.{t}"), (q.per_second, q.burst))),
        );
        for (key, (per_second, burst)) in quotas {
            if per_second == 0 || burst == 0 {
                return fail(
                    &format!("rate_limits.{key}"),
                    "per_second and burst must be at least 1".into(),
                );
            }
        }
        if self.tracking.redis_timeout_ms == 0 {
            return fail("tracking.redis_timeout_ms", "must be at least 1".into());
        }
        for (carrier, cb) in &self.tracking.callbacks {
            if !crate::tracking::callbacks::SUPPORTED.contains(&carrier.as_str()) {
                return fail(
                    &format!("tracking.callbacks.{carrier}"),
                    format!(
                        "no push format for this carrier (have: {})",
                        crate::tracking::callbacks::SUPPORTED.join(", ")
                    ),
                );
            }
            if cb.secret.len() < 8 {
                return fail(
                    &format!("tracking.callbacks.{carrier}.secret"),
                    "must be at least 8 characters".into(),
                );
            }
        }
        crate::tracking::aliases::Aliases::new(&self.tracking.last_mile_carriers)
            .map_err(|e| ConfigError(format!("tracking.last_mile_carriers: {e}")))?;
        for (code, channel) in &self.channels {
            let known = channel.carrier == "sandbox"
                || self
                    .http_carriers()
                    .iter()
                    .any(|(id, _)| *id == channel.carrier);
            if !known {
                return fail(
                    &format!("channels.{code}.carrier"),
                    format!("unknown carrier `{}`", channel.carrier),
                );
            }
            if channel.service.trim().is_empty() {
                return fail(
                    &format!("channels.{code}.service"),
                    "must not be empty".into(),
                );
            }
        }
        Ok(())
    }

    pub fn carrier_budget(&self) -> Duration {
        Duration::from_millis(self.carriers.budget_ms)
    }

    /// The HTTP carriers by id.
    pub fn http_carriers(&self) -> [(&'static str, &HttpCarrierSettings); 5] {
        [
            (carriers::fedex::ID, &self.carriers.fedex),
            (carriers::dhl_express::ID, &self.carriers.dhl_express),
            (carriers::ups::ID, &self.carriers.ups),
            (carriers::usps::ID, &self.carriers.usps),
            (carriers::sf_express::ID, &self.carriers.sf_express),
        ]
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    fn with(toml: &str) -> Result<Settings, ConfigError> {
        Settings::from_figment(
            Figment::from(Serialized::defaults(Settings::default())).merge(Toml::string(toml)),
        )
    }

    #[test]
    fn defaults_are_valid() {
        let s = with("").unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert!(s.channels.contains_key("SANDBOX_EXPRESS"));
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = with("[idempotency]\nwait_ms = \"soon\"").unwrap_err();
        assert!(err.0.contains("idempotency.wait_ms"), "{err}");
    }

    #[test]
    fn bad_listen_and_unknown_keys_are_named() {
        assert!(
            with("listen = \"nowhere\"")
                .unwrap_err()
                .0
                .contains("listen")
        );
        let err = with("[http]\nmax_body = 1").unwrap_err();
        assert!(err.0.contains("max_body"), "{err}");
    }

    #[test]
    fn channel_codes_are_upper_cased_and_checked() {
        let s =
            with("[channels.my_express]\ncarrier = \"sandbox\"\nservice = \"EXPRESS\"").unwrap();
        assert!(s.channels.contains_key("MY_EXPRESS"));
        let err = with("[channels.X]\ncarrier = \"pigeon\"\nservice = \"S\"").unwrap_err();
        assert!(err.0.contains("channels.X.carrier"), "{err}");
    }
}
