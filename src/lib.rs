//! shipgate: a carrier-facing logistics gateway.

pub mod api;
pub mod auth;
pub mod error;
pub mod extract;
pub mod labels;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tracking;
pub mod waybills;
pub mod webhooks;
