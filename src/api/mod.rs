pub mod health;
pub mod labels;
pub mod openapi;
pub mod station;
pub mod tracking;
pub mod waybills;
pub mod webhooks;
