//! The orders service's settings (`[orders]`): where the gateway is, how orders are processed,
//! the shipping rules and the platforms' promises.

use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersSettings {
    /// The gateway's base URL when it runs elsewhere; empty: the gateway of this process.
    pub gateway_url: String,
    /// The service key the gateway at `gateway_url` accepts (its `service_key`).
    pub gateway_service_key: Option<SecretString>,
    /// One gateway call's budget.
    pub gateway_timeout_ms: u64,
    /// How often the processor looks for orders and shipments that are due.
    pub process_interval_ms: u64,
    /// Orders (and shipments) taken per processor step.
    pub batch: u32,
    /// The first wait after a failed gateway call; it doubles up to `retry_max_ms`.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// Orders of other channels with the same buyer, address and amount placed within this
    /// window are held as possible duplicates.
    pub duplicate_window_secs: u64,
    /// What a line weighs when neither the order nor the SKU (`weightGrams` attribute) says.
    pub default_line_weight_grams: u64,
    /// Whether shop URLs may be on loopback or private networks (tests, closed networks).
    pub allow_private_channels: bool,
    /// The first rule that matches a shipment names its gateway channel.
    pub rules: Vec<ShippingRule>,
    /// The platforms' promises per sales channel (`default` for the rest).
    pub sla: BTreeMap<String, Sla>,
    /// Marketplaces' order messages this instance consumes from their brokers.
    #[serde(default)]
    pub subscriptions: Vec<OrderSubscription>,
}

/// `[[orders.subscriptions]]`: a marketplace's order messages on its Kafka-protocol broker, as
/// its distributor guide hands them out (brokers, a topic, a consumer group, a user name and
/// password), for one connected shop.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSubscription {
    /// The connected shop (`shp_…`) the messages are about: its tenant, channel and credentials
    /// fetch the full orders the messages point at.
    pub shop: String,
    /// `host:port` of the marketplace's bootstrap brokers, separated by commas.
    pub brokers: String,
    pub topic: String,
    /// The consumer group the marketplace assigned.
    pub group: String,
    /// The messages' format: `taobao_tmc` (Taobao/Tmall message service: `topic`, and `content`
    /// as a JSON string).
    #[serde(default = "default_format")]
    pub format: String,
    #[serde(default)]
    pub sasl: Option<super::SaslSettings>,
}

fn default_format() -> String {
    "taobao_tmc".into()
}

impl OrderSubscription {
    pub(super) fn check(&self, i: usize) -> Result<(), super::ConfigError> {
        let fail = |key: &str, why: &str| {
            Err(super::ConfigError(format!(
                "orders.subscriptions[{i}].{key}: {why}"
            )))
        };
        if self.brokers.split(',').all(|b| b.trim().is_empty()) {
            return fail(
                "brokers",
                "names no broker (host:port, separated by commas)",
            );
        }
        if !self.shop.starts_with("shp_") {
            return fail("shop", "must be a connected shop's id (shp_…)");
        }
        if self.topic.trim().is_empty() || self.group.trim().is_empty() {
            return fail("topic", "topic and group must be set");
        }
        if self.format != "taobao_tmc" {
            return fail("format", "must be taobao_tmc");
        }
        if let Some(sasl) = &self.sasl {
            sasl.check().map_err(|why| {
                super::ConfigError(format!("orders.subscriptions[{i}].sasl.mechanism: {why}"))
            })?;
        }
        Ok(())
    }
}

/// Which gateway channel a shipment uses: every condition given must hold.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShippingRule {
    /// The gateway channel (e.g. `SANDBOX_EXPRESS`).
    pub channel: String,
    /// Destination countries (ISO alpha-2); empty: any.
    #[serde(default)]
    pub countries: Vec<String>,
    /// Destination states or regions; empty: any.
    #[serde(default)]
    pub states: Vec<String>,
    /// The order's service levels (e.g. `express`, `standard`); empty: any.
    #[serde(default)]
    pub service_levels: Vec<String>,
    /// The shipment's total weight bounds, in grams.
    #[serde(default)]
    pub min_weight_grams: Option<u64>,
    #[serde(default)]
    pub max_weight_grams: Option<u64>,
    /// SKU attributes (e.g. `battery`) every line must lack / one line must have.
    #[serde(default)]
    pub without_attributes: Vec<String>,
    #[serde(default)]
    pub with_attributes: Vec<String>,
    /// The channel's parcel limit: heavier shipments split into parcels of at most this.
    #[serde(default)]
    pub max_parcel_grams: Option<u64>,
}

/// A platform's promise: the tracking number uploaded within `upload_hours` of payment, the
/// parcel shipped (first carrier scan) within `ship_hours`; orders are at risk `warn_hours`
/// before either deadline.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    pub upload_hours: u64,
    pub ship_hours: u64,
    pub warn_hours: u64,
}

impl OrdersSettings {
    /// The promise of a sales channel.
    pub fn sla_of(&self, channel: &str) -> Sla {
        self.sla
            .get(channel)
            .or_else(|| self.sla.get("default"))
            .copied()
            .unwrap_or(Sla {
                upload_hours: 24,
                ship_hours: 48,
                warn_hours: 4,
            })
    }
}
