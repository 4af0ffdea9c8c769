//! The HTTP layer: handlers (parse, call one service, render), the error envelope, the JSON
//! extractor, authentication of requests and the middleware. Nothing below `api` knows actix.

pub mod auth;
pub mod docs;
pub mod error;
pub mod extract;
pub mod health;
pub mod inventory;
pub mod inventory_allocations;
pub mod invoices;
pub mod keys;
pub mod labels;
pub mod ledger;
pub mod middleware;
pub mod openapi;
pub mod order_shops;
pub mod orders;
pub mod payments;
pub mod rates;
pub mod reports;
pub mod station;
pub mod tracking;
pub mod unresolved;
pub mod waybills;
pub mod webhooks;
