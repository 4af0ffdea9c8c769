//! shipgate: a carrier-facing logistics gateway.
//!
//! Dependencies point one way: `api` (HTTP) -> the capabilities (`waybills`, `tracking`,
//! `labels`, `webhooks`, `auth`) -> `store` -> `settings`, with `fields`, `lifecycle` and
//! `request_id` as leaves everyone may use. `startup` wires it all together. See
//! docs/architecture.md.

pub mod api;
pub mod auth;
pub mod events;
pub mod fields;
pub mod finance;
pub mod geo;
pub mod inventory;
pub mod labels;
pub mod lifecycle;
pub mod orders;
pub mod outbound;
pub mod redis_link;
pub mod request_id;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tracking;
pub mod waybills;
pub mod webhooks;
