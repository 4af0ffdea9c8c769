pub mod health;
pub mod openapi;
pub mod waybills;
