//! `events`: the outbox, its consumers, and the broker it may be relayed to.

use serde::Deserialize;

/// The event outbox and its consumers (see `events`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    /// How long an idle consumer rests before looking for new events.
    pub poll_interval_ms: u64,
    /// Events a consumer moves over at once (one transaction), handed the ones it wants.
    pub batch: u32,
    /// How long an instance holds a consumer without renewing; another instance takes it over
    /// after that.
    pub lease_ms: u64,
    /// How long events stay in the outbox after they were written.
    pub retention_days: u64,
    /// A Kafka-protocol broker the outbox is relayed to; unset: events stay on the database.
    #[serde(default)]
    pub kafka: Option<KafkaSettings>,
}

/// `events.kafka`: the broker, the topics' names, and this instance's part in relaying.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// `host:port` of the bootstrap brokers, separated by commas.
    pub brokers: String,
    /// Put in front of each family's name (`shipgate.waybills`, …).
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    /// Whether this instance relays the outbox (one instance at a time does; any may).
    #[serde(default = "default_true")]
    pub relay: bool,
    /// Events per relay pass.
    #[serde(default = "default_relay_batch")]
    pub relay_batch: u32,
    /// How long the broker has to acknowledge an event before the pass fails (and is retried).
    #[serde(default = "default_ack_timeout_ms")]
    pub ack_timeout_ms: u64,
    /// Whether this instance's consumers take their events from the broker (as members of a
    /// consumer group each) rather than from the outbox table.
    #[serde(default = "default_true")]
    pub consume: bool,
    /// Put in front of each consumer's name to make its consumer group's id.
    #[serde(default = "default_topic_prefix")]
    pub group_prefix: String,
    /// Sign-in, when the broker asks for it.
    #[serde(default)]
    pub sasl: Option<SaslSettings>,
}

/// SASL sign-in to a broker: `SCRAM-SHA-256`, `SCRAM-SHA-512` or `PLAIN`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaslSettings {
    pub mechanism: String,
    pub username: String,
    pub password: secrecy::SecretString,
}

fn default_topic_prefix() -> String {
    "shipgate.".into()
}

fn default_true() -> bool {
    true
}

fn default_relay_batch() -> u32 {
    5_000
}

fn default_ack_timeout_ms() -> u64 {
    10_000
}

impl KafkaSettings {
    pub(super) fn check(&self) -> Result<(), super::ConfigError> {
        let fail =
            |key: &str, why: &str| Err(super::ConfigError(format!("events.kafka.{key}: {why}")));
        if self.brokers.split(',').all(|b| b.trim().is_empty()) {
            return fail(
                "brokers",
                "names no broker (host:port, separated by commas)",
            );
        }
        if self.relay_batch == 0 || self.ack_timeout_ms == 0 {
            return fail(
                "relay_batch",
                "relay_batch and ack_timeout_ms must be at least 1",
            );
        }
        if let Some(sasl) = &self.sasl
            && let Err(why) = sasl.check()
        {
            return fail("sasl.mechanism", why);
        }
        Ok(())
    }
}

impl SaslSettings {
    pub(super) fn check(&self) -> Result<(), &'static str> {
        if ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&self.mechanism.as_str()) {
            Ok(())
        } else {
            Err("must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
        }
    }
}
