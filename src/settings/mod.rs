//! Typed configuration: built-in defaults, then an optional TOML file (`SHIPGATE_CONFIG`), then
//! `SHIPGATE_*` environment variables (nested keys joined by `__`). Invalid values stop start-up
//! with a message naming the key.

mod sections;
mod validate;

pub use sections::*;

use carriers::CarrierId;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The built-in configuration, read by the same loader as an operator's file.
pub const DEFAULTS: &str = include_str!("defaults.toml");

#[derive(Debug, Clone, Deserialize)]
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

impl Settings {
    /// Defaults, then the TOML file named by `SHIPGATE_CONFIG`, then `SHIPGATE_*` variables.
    pub fn load() -> Result<Self, ConfigError> {
        let mut figment = Self::defaults();
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

    /// The built-in configuration as the first layer of a figment.
    pub fn defaults() -> Figment {
        Figment::from(Toml::string(DEFAULTS))
    }

    pub fn carrier_budget(&self) -> Duration {
        Duration::from_millis(self.carriers.budget_ms)
    }

    /// The HTTP carriers by id.
    pub fn http_carriers(&self) -> [(CarrierId, &HttpCarrierSettings); 5] {
        [
            (carriers::fedex::ID, &self.carriers.fedex),
            (carriers::dhl_express::ID, &self.carriers.dhl_express),
            (carriers::ups::ID, &self.carriers.ups),
            (carriers::usps::ID, &self.carriers.usps),
            (carriers::sf_express::ID, &self.carriers.sf_express),
        ]
    }
}

/// The built-in configuration alone (a starting point that tests and tools adjust).
impl Default for Settings {
    fn default() -> Self {
        match Self::from_figment(Self::defaults()) {
            Ok(s) => s,
            // `defaults_are_valid` proves this cannot happen with the file as shipped.
            Err(e) => panic!("the built-in configuration is invalid: {e}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    fn with(toml: &str) -> Result<Settings, ConfigError> {
        Settings::from_figment(Settings::defaults().merge(Toml::string(toml)))
    }

    #[test]
    fn defaults_are_valid() {
        let s = with("").unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert!(s.channels.contains_key("SANDBOX_EXPRESS"));
        assert_eq!(s.channels.len(), 16);
        assert_eq!(s.returns.warehouses.len(), 2);
        assert!(s.tracking.last_mile_carriers.contains_key("USPS"));
    }

    #[test]
    fn each_carrier_defaults_to_its_documented_sandbox() {
        let s = Settings::default();
        let sandbox = |id| match id {
            CarrierId::Fedex => carriers::fedex::SANDBOX_URL,
            CarrierId::DhlExpress => carriers::dhl_express::SANDBOX_URL,
            CarrierId::Ups => carriers::ups::SANDBOX_URL,
            CarrierId::Usps => carriers::usps::SANDBOX_URL,
            CarrierId::SfExpress => carriers::sf_express::SANDBOX_URL,
            CarrierId::Sandbox => "",
        };
        for (id, carrier) in s.http_carriers() {
            assert_eq!(carrier.base_url, sandbox(id), "{id}");
            assert!(!carrier.enabled, "{id}");
        }
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
