pub mod health;
pub mod labels;
pub mod openapi;
pub mod waybills;
