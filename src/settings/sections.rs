//! The sections of the configuration, one type each. Keys and meanings: docs/configuration.md.

use carriers::CarrierId;
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Pushes to subscribers' webhook endpoints (see `webhooks`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Whether this instance runs the delivery worker (the outbox fills either way).
    pub enabled: bool,
    /// How often an idle worker looks for due deliveries.
    pub poll_interval_ms: u64,
    /// Deliveries in flight at once per instance.
    pub batch: u32,
    /// Deliveries in flight at once to one endpoint (endpoints take turns for the rest).
    pub max_in_flight_per_endpoint: u32,
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
    /// Ports endpoints may use (a URL without one uses its scheme's); empty: any port.
    pub allowed_ports: Vec<u16>,
}

/// What SIGTERM does: `/readyz` answers 503 at once, responses ask clients to reconnect
/// (`Connection: close`) for `drain_delay_ms`, then the listener closes and in-flight requests
/// get up to `timeout_ms` to finish.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSettings {
    pub drain_delay_ms: u64,
    pub timeout_ms: u64,
}

/// HTTPS: with both PEM paths set, shipgate serves TLS (rustls; HTTP/1.1 and HTTP/2 by ALPN)
/// instead of plain HTTP on `listen`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// Certificate chain, PEM.
    pub cert_path: Option<String>,
    /// Private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key_path: Option<String>,
}

/// Requests per API key, checked right after the key and before any other work.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// The default quota of each key.
    pub per_second: u32,
    pub burst: u32,
    /// Quotas for the keys of particular tenants, by tenant name.
    pub tenants: BTreeMap<String, Quota>,
    /// Failed authentications per client address (a flood of bad keys is refused before any
    /// hashing or database work).
    pub failed_auth_per_second: u32,
    pub failed_auth_burst: u32,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub per_second: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingSettings {
    /// How long a ready tracking answer stays in the cache without a new event.
    pub cache_ttl_secs: u64,
    /// Entries of the in-process cache used when no Redis is configured.
    pub local_cache_capacity: u64,
    /// Longest an instance serves an answer from its memory (instances side by side may store
    /// newer events meanwhile); with Redis, it bounds a client-side copy whose invalidation a
    /// read in flight missed.
    pub local_max_staleness_ms: u64,
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
    /// How long the receipt of a push is kept (a repeat within it is refused as a replay).
    pub callback_receipt_retention_days: u64,
    /// Carriers allowed to push, with their shared secret (HMAC key, SF checkword).
    pub callbacks: BTreeMap<CarrierId, CallbackSettings>,
    /// Normalized last-mile carrier name -> the names carriers use for it (any case).
    pub last_mile_carriers: BTreeMap<String, Vec<String>>,
    pub polling: PollingSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackSettings {
    pub secret: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
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
    /// Parcels older than this that never reached a final status are no longer polled.
    pub max_age_days: u64,
}

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelStorage {
    Database,
    Directory,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnsSettings {
    /// The platform's return warehouses and what each serves (requirement 4.1).
    pub warehouses: Vec<Warehouse>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `tracing` filter directive, e.g. `info` or `shipgate=debug,info`.
    pub level: String,
    /// `json` (structured, the default) or `pretty`.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Worker threads; 0 means one per CPU.
    pub workers: usize,
    /// Open connections per worker; more wait in the listen queue.
    pub max_connections: usize,
    /// How long a client may take to send a request's body (after its headers).
    pub body_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencySettings {
    /// How long a duplicate request waits for the first one before `409 REFERENCE_IN_PROGRESS`.
    pub wait_ms: u64,
    /// How long a create attempt owns its reference; past it a crashed attempt is taken over.
    pub lease_ms: u64,
    /// How long a created waybill is answered from an instance's memory on a replay (another
    /// instance may cancel it meanwhile).
    pub replay_cache_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// How long a verified API key is remembered in memory.
    pub cache_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCarrierSettings {
    pub enabled: bool,
    pub base_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub account_number: String,
    pub api_version: String,
    pub customer_code: String,
    pub checkword: SecretString,
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
    /// How long a "not found" from the reference lookup after an ambiguous failure is not
    /// trusted (the carrier's lookup lags behind its label creation).
    pub lookup_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    pub carrier: CarrierId,
    pub service: String,
}

/// A return warehouse and what it serves (requirement 4.1; see `labels::returns`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warehouse {
    pub code: String,
    pub name: String,
    pub company: String,
    pub phone: String,
    pub street1: String,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub country: String,
    /// States it serves (`NY`, `CA`).
    #[serde(default)]
    pub states: Vec<String>,
    /// Postcode ranges it serves, inclusive, as prefixes of equal length (`"900-961"`) or
    /// single prefixes (`"100"`).
    #[serde(default)]
    pub postcode_ranges: Vec<String>,
    /// Used when no warehouse serves the destination.
    #[serde(default)]
    pub default: bool,
}

/// The parts of shipgate an instance runs (`services`, or `shipgate serve --services`): each
/// brings its routes and its background work; keys, health and metrics are always served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// Waybills, labels, tracking, callbacks and webhook pushes.
    Gateway,
    /// SKUs, warehouses, stock, movements and allocations.
    Inventory,
    /// Orders from the sales channels, shipped through the gateway.
    Orders,
    /// The ledger: accounts, transfers, fed by the gateway's waybill events.
    Finance,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::Gateway,
        Service::Inventory,
        Service::Orders,
        Service::Finance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Inventory => "inventory",
            Self::Orders => "orders",
            Self::Finance => "finance",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s.trim())
    }

    /// Names separated by commas, each once; at least one.
    pub fn parse_list(list: &str) -> Result<Vec<Service>, String> {
        let mut services = Vec::new();
        for name in list.split(',').filter(|n| !n.trim().is_empty()) {
            let service = Service::parse(name).ok_or_else(|| {
                format!(
                    "unknown service `{}` (known: gateway, inventory, orders, finance)",
                    name.trim()
                )
            })?;
            if !services.contains(&service) {
                services.push(service);
            }
        }
        if services.is_empty() {
            return Err("name at least one of gateway, inventory, orders, finance".into());
        }
        Ok(services)
    }
}

/// The inventory service (see `inventory`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventorySettings {
    /// How long an allocation holds its reservations unless committed or released (0: until
    /// released); a request may ask for its own.
    pub reservation_expiry_secs: u64,
    /// How often expired allocations are looked for.
    pub expiry_interval_ms: u64,
    /// How long after a stock change its available-to-sell is pushed to channels (changes
    /// within the window are one push).
    pub channel_coalesce_ms: u64,
    /// One push's budget (connect, send, answer).
    pub channel_timeout_ms: u64,
    /// Whether channel URLs may be on loopback, private or link-local addresses (off: a
    /// tenant's shop URL cannot reach the gateway's own network).
    pub allow_private_channels: bool,
}

/// The finance service (see `finance`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinanceSettings {
    /// How far a payment webhook's signed timestamp may be from now (Stripe's default: 300 s);
    /// older deliveries are refused as replays.
    pub payment_webhook_tolerance_secs: u64,
    /// Where PayPal's signing certificates are fetched from: empty for the PayPal host the
    /// certificate URL names (only PayPal's API hosts are accepted); a base URL to fetch the same
    /// path from instead (a proxy, or a mock in tests).
    #[serde(default)]
    pub paypal_api_base: String,
    /// Carrier invoice files by layout name: which column holds what (1-based), so another
    /// carrier's layout is configuration, not code.
    #[serde(default)]
    pub invoice_layouts: std::collections::BTreeMap<String, InvoiceLayout>,
}

/// The columns of a carrier's invoice file (1-based) and how to read them.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InvoiceLayout {
    /// Rows before the first charge row (0 for UPS Billing Data, which has no header).
    #[serde(default)]
    pub header_rows: usize,
    pub invoice_number: usize,
    pub invoice_date: usize,
    /// chrono format of the invoice date.
    #[serde(default = "default_date_format")]
    pub date_format: String,
    pub currency: usize,
    pub tracking_number: usize,
    /// The row's billed (net) amount, a decimal.
    pub amount: usize,
    #[serde(default)]
    pub charge_category: Option<usize>,
    #[serde(default)]
    pub charge_classification: Option<usize>,
    #[serde(default)]
    pub charge_description: Option<usize>,
    #[serde(default)]
    pub billed_weight: Option<usize>,
    #[serde(default)]
    pub billed_weight_unit: Option<usize>,
    /// Weight unit when the file has no unit column: `L` (pounds), `K` (kg), `O` (ounces), `G`.
    #[serde(default = "default_weight_unit")]
    pub default_weight_unit: String,
    /// Charge classifications that are surcharges (accessorials).
    #[serde(default)]
    pub surcharge_classes: Vec<String>,
    /// Charge categories that are corrections of an earlier bill (not a second bill).
    #[serde(default)]
    pub adjustment_categories: Vec<String>,
    /// Days after the invoice date within which the carrier takes a dispute.
    pub dispute_window_days: i64,
    /// Billed amounts within this many minor units of the quote count as quoted.
    pub amount_tolerance_minor: i64,
    /// Billed weights within this percentage of the declared weight count as declared.
    pub weight_tolerance_percent: u32,
}

fn default_date_format() -> String {
    "%Y-%m-%d".into()
}

fn default_weight_unit() -> String {
    "K".into()
}

/// `services`: a list, or one string of names separated by commas (as an environment variable
/// is easiest to write: `SHIPGATE_SERVICES=inventory`).
pub fn services_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Service>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Names {
        One(String),
        Many(Vec<String>),
    }
    let list = match Names::deserialize(d)? {
        Names::One(s) => s,
        Names::Many(v) => v.join(","),
    };
    Service::parse_list(&list).map_err(serde::de::Error::custom)
}
