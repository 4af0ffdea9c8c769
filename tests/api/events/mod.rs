//! The services' events on a Kafka-protocol broker (the test command's tansu), and the outbox's
//! upgrade to numbering in batches.

mod consume;
mod relay;
mod upgrade;
