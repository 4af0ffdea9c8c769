//! The services' events on a Kafka-protocol broker (the test command's tansu).

mod consume;
mod relay;
