//! Creating and finding waybills: validation, the idempotency protocol and the carrier call.

mod attempt;
mod error;
mod fingerprint;
mod labels;
pub mod request;
pub mod resolve;
mod service;
pub mod validation;

pub use error::WaybillError;
pub use fingerprint::fingerprint;
pub use request::CreateWaybillRequest;
pub use service::{Channel, Outcome, WaybillService, WaybillView};
pub use validation::{LabelEncoding, ValidRequest, validate};
