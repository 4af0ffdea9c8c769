//! The integration tests, one binary: the real server through HTTP (SQLite and PostgreSQL),
//! carrier conformance against mock carriers, labels read back, processes started and stopped.
//! Shared helpers live in `helpers` (spawn the app, typed calls, wait-for, own servers).

#[macro_use]
mod helpers;

mod api_errors;
mod conformance;
mod events;
mod faults;
mod finance;
mod https;
pub mod inventory;
mod keys;
mod labels;
mod orders;
mod process;
mod rate_limits;
mod station;
mod tracking;
mod unresolved;
mod waybills;
mod webhooks;
