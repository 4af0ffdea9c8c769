//! Typed configuration: built-in defaults, then an optional TOML file (`SHIPGATE_CONFIG`), then
//! `SHIPGATE_*` environment variables (nested keys joined by `__`). Invalid values stop start-up
//! with a message naming the key.

mod events;
mod orders;
mod sections;
mod validate;

pub use events::{EventSettings, KafkaSettings, SaslSettings};
pub use orders::{OrderSubscription, OrdersSettings, ShippingRule, Sla};
pub use sections::*;

use carriers::CarrierId;
use figment::Figment;
use figment::providers::{Format, Toml};
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
    /// `redis_url` lists the seed nodes of a Redis Cluster (`redis://a:7000,redis://b:7001`).
    #[serde(default)]
    pub redis_cluster: bool,
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
    /// What this instance runs (all of it by default).
    #[serde(deserialize_with = "sections::services_list")]
    pub services: Vec<Service>,
    pub inventory: InventorySettings,
    pub orders: OrdersSettings,
    pub finance: FinanceSettings,
    pub events: EventSettings,
    /// A secret another instance's services present (`Authorization: Bearer <key>` with
    /// `Shipgate-Tenant: <tenant id>`) to act for a tenant on the gateway; unset: none accepted.
    pub service_key: Option<secrecy::SecretString>,
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
        Self::with_env(figment, std::env::vars())
    }

    /// `SHIPGATE_*` variables over `figment`: nested keys joined by `__`, values read as
    /// numbers, booleans or arrays where they look like one — except for keys that take text:
    /// there the variable is taken as written, so an account number, CRID or service code of
    /// digits stays text (leading zeros included).
    pub fn with_env(
        figment: Figment,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        use figment::error::{Actual, Kind};
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let key = name.strip_prefix("SHIPGATE_")?;
                (key != "CONFIG").then(|| (key.to_ascii_lowercase().replace("__", "."), value))
            })
            .collect();
        let mut as_text = std::collections::BTreeSet::new();
        loop {
            let mut layered = figment.clone();
            for (key, raw) in &vars {
                layered = if as_text.contains(key) {
                    layered.merge((key.as_str(), raw.as_str()))
                } else {
                    let value: figment::value::Value = raw
                        .parse()
                        .unwrap_or_else(|_| figment::value::Value::from(raw.clone()));
                    layered.merge((key.as_str(), value))
                };
            }
            let Err(errors) = layered.extract::<Settings>() else {
                return Self::from_figment(layered);
            };
            let text_keys: Vec<String> = errors
                .into_iter()
                .filter(|e| {
                    matches!(&e.kind, Kind::InvalidType(
                        Actual::Unsigned(_) | Actual::Signed(_) | Actual::Float(_) | Actual::Bool(_),
                        expected,
                    ) if expected.contains("string"))
                })
                .map(|e| e.path.join("."))
                .filter(|path| !as_text.contains(path) && vars.iter().any(|(k, _)| k == path))
                .collect();
            if text_keys.is_empty() {
                return Self::from_figment(layered);
            }
            as_text.extend(text_keys);
        }
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

    fn env(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::with_env(
            Settings::defaults(),
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn digits_in_variables_stay_text_where_a_key_takes_text() {
        let s = env(&[
            ("SHIPGATE_CARRIERS__FEDEX__ACCOUNT_NUMBER", "0740561073"),
            ("SHIPGATE_CARRIERS__USPS__CRID", "56982563"),
            ("SHIPGATE_CARRIERS__USPS__MID", "901234567"),
            ("SHIPGATE_CARRIERS__SF_EXPRESS__CHECKWORD", "12345678"),
            ("SHIPGATE_CHANNELS__MY_UPS__CARRIER", "ups"),
            ("SHIPGATE_CHANNELS__MY_UPS__SERVICE", "65"),
            ("SHIPGATE_IDEMPOTENCY__WAIT_MS", "300"),
            ("SHIPGATE_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
            ("SHIPGATE_WEBHOOKS__ALLOWED_PORTS", "[443, 8443]"),
            ("OTHER_VARIABLE", "1"),
        ])
        .unwrap();
        assert_eq!(s.carriers.fedex.account_number, "0740561073");
        assert_eq!(s.carriers.usps.crid, "56982563");
        assert_eq!(s.carriers.usps.mid, "901234567");
        use secrecy::ExposeSecret;
        assert_eq!(s.carriers.sf_express.checkword.expose_secret(), "12345678");
        assert_eq!(s.channels["MY_UPS"].service, "65");
        assert_eq!(s.idempotency.wait_ms, 300);
        assert!(s.webhooks.allow_private_targets);
        assert_eq!(s.webhooks.allowed_ports, [443, 8443]);
        // A number where a number belongs is still checked, and named.
        let err = env(&[("SHIPGATE_IDEMPOTENCY__WAIT_MS", "soon")]).unwrap_err();
        assert!(err.0.contains("idempotency.wait_ms"), "{err}");
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
