//! What creating, finding, cancelling and printing waybills can end in.

use crate::fields::FieldError;
use crate::labels::LabelError;
use crate::store::StoreError;
use carriers::CarrierError;

#[derive(Debug, thiserror::Error)]
pub enum WaybillError {
    #[error("request validation failed")]
    Validation(Vec<FieldError>),
    #[error("unknown channel `{0}`")]
    UnknownChannel(String),
    /// A test key asked for a real carrier, or a live key for the sandbox.
    #[error("{0}")]
    ModeMismatch(String),
    #[error("this referenceNumber was already used with a different payload")]
    ReferenceConflict,
    #[error("a request with this referenceNumber is still being processed")]
    ReferenceInProgress { retry_after_secs: u64 },
    /// The carrier may have created the shipment; its state could not be settled yet.
    #[error("{message}")]
    ShipmentStateUnknown {
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// An operator's resolution of a reference that is not unresolved (any more).
    #[error("{0}")]
    NothingToResolve(String),
    #[error(transparent)]
    Carrier(#[from] CarrierError),
    #[error("{0}")]
    NotFound(String),
    /// Some of several asked-for waybills do not exist; each is named.
    #[error("{} of the numbers could not be printed", .0.len())]
    NotFoundItems(Vec<FieldError>),
    #[error("{0}")]
    LabelNotAvailable(String),
    #[error("label: {0}")]
    Label(#[from] LabelError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("serializing the shipment: {0}")]
    Encode(#[from] serde_json::Error),
    /// The task running the carrier call died (an adapter panicked).
    #[error("create attempt failed: {0}")]
    AttemptFailed(#[from] tokio::task::JoinError),
    /// Stored state that should not exist (a bug or a manual edit), named for the log.
    #[error("{0}")]
    Inconsistent(String),
}
