//! Events on a Kafka-protocol broker: the relay that moves the outbox to topics ([`Relay`]), and
//! the bus that hands the services' consumers their events from those topics ([`KafkaBus`]).
//!
//! Every event goes to the topic of its family (`{prefix}waybills`, `{prefix}tracking`,
//! `{prefix}orders`, `{prefix}inventory`, `{prefix}finance`, `{prefix}other`), keyed by its
//! aggregate (waybill number, order id, SKU) so that one aggregate's events share a partition and
//! keep their order, with its id, type, tenant and outbox position in headers.

mod bus;
mod relay;
mod spans;

pub use bus::{KafkaBus, Taken, prune_handled};
pub use relay::{RELAY, Relay, RelayError};
pub use spans::Spans;

use crate::settings::KafkaSettings;
use rdkafka::config::ClientConfig;
use secrecy::ExposeSecret;

/// Headers every published event carries.
pub const EVENT_ID_HEADER: &str = "event-id";
pub const EVENT_TYPE_HEADER: &str = "event-type";
pub const TENANT_HEADER: &str = "tenant-id";
/// The event's position in the outbox it was relayed from (decimal).
pub const SEQ_HEADER: &str = "event-seq";

/// The families events are published under (the part of the type before its first `.`), and
/// `other` for types of no family.
pub const FAMILIES: [&str; 6] = [
    "waybills",
    "tracking",
    "orders",
    "inventory",
    "finance",
    "other",
];

/// The topic of an event type: `waybill.created` goes to `{prefix}waybills`.
pub fn topic(prefix: &str, event_type: &str) -> String {
    let family = match event_type.split('.').next().unwrap_or_default() {
        "waybill" => "waybills",
        "order" => "orders",
        "tracking" | "last_mile" => "tracking",
        "inventory" => "inventory",
        "finance" => "finance",
        _ => "other",
    };
    format!("{prefix}{family}")
}

/// Every topic events are published to under `prefix`.
pub fn topics(prefix: &str) -> Vec<String> {
    FAMILIES.iter().map(|f| format!("{prefix}{f}")).collect()
}

/// The client settings every connection to the broker shares: where it is, and how to sign in.
pub fn client_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", "shipgate");
    if let Some(sasl) = &settings.sasl {
        sasl_config(&mut config, sasl);
    }
    config
}

/// Signs `config` in with `sasl` (over plaintext: put the broker behind a private network or
/// TLS terminator).
pub fn sasl_config(config: &mut ClientConfig, sasl: &crate::settings::SaslSettings) {
    config
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", &sasl.mechanism)
        .set("sasl.username", &sasl.username)
        .set("sasl.password", sasl.password.expose_secret());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_go_to_their_family_topic() {
        assert_eq!(topic("shipgate.", "waybill.created"), "shipgate.waybills");
        assert_eq!(
            topic("shipgate.", "order.waybill_created"),
            "shipgate.orders"
        );
        assert_eq!(topic("", "inventory.stock_changed"), "inventory");
        assert_eq!(topic("p.", "finance.payment_received"), "p.finance");
        assert_eq!(topic("p.", "tracking.updated"), "p.tracking");
        assert_eq!(topic("p.", "last_mile.assigned"), "p.tracking");
        assert_eq!(topic("p.", "something"), "p.other");
        for t in [
            "waybill.x",
            "order.x",
            "tracking.x",
            "inventory.x",
            "finance.x",
            "x",
        ] {
            assert!(topics("p.").contains(&topic("p.", t)), "{t}");
        }
    }

    #[test]
    fn sign_in_settings_reach_the_client() {
        let sasl = crate::settings::SaslSettings {
            mechanism: "SCRAM-SHA-512".into(),
            username: "distributor".into(),
            password: "s3cret".into(),
        };
        let mut config = ClientConfig::new();
        sasl_config(&mut config, &sasl);
        assert_eq!(config.get("security.protocol"), Some("SASL_PLAINTEXT"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("distributor"));
        assert_eq!(config.get("sasl.password"), Some("s3cret"));
    }
}
