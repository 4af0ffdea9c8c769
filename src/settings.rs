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
    pub sandbox: SandboxSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSettings {
    pub enabled: bool,
    /// Delay of the `SANDBOX_SLOW` trigger.
    pub slow_ms: u64,
    /// Budget for one sandbox call.
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    pub carrier: String,
    pub service: String,
}

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
                sandbox: SandboxSettings {
                    enabled: true,
                    slow_ms: 1500,
                    timeout_ms: 2500,
                },
            },
            channels: BTreeMap::from([
                ("SANDBOX_EXPRESS".into(), channel("sandbox", "EXPRESS")),
                (
                    "SANDBOX_LINEHAUL_US".into(),
                    channel("sandbox", "LINEHAUL_US"),
                ),
            ]),
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
        if self.idempotency.lease_ms <= self.carriers.sandbox.timeout_ms {
            return fail(
                "idempotency.lease_ms",
                "must be longer than every carrier timeout".into(),
            );
        }
        for (code, channel) in &self.channels {
            if channel.carrier != "sandbox" {
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

    pub fn sandbox_timeout(&self) -> Duration {
        Duration::from_millis(self.carriers.sandbox.timeout_ms)
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
