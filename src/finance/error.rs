//! What the ledger refuses, with the public code each maps to (the HTTP statuses are in
//! `api::error`).

use crate::fields::FieldError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FinanceError {
    #[error("request validation failed")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    NotFound(String),
    /// An account id in use with other fields.
    #[error("{0}")]
    AccountConflict(String),
    /// A transfer refused; its code says why.
    #[error("{0}")]
    Transfer(TransferError),
    /// A transfer id taken for new was posted before or meanwhile; posting again with a lookup
    /// finds it (internal: the ledger retries).
    #[error("a transfer id was posted concurrently; retry")]
    Raced,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for FinanceError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Why one transfer was refused: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransferError {
    pub code: &'static str,
    pub message: String,
    /// The client's mistake (400) rather than a conflict with the ledger's state (409).
    pub bad_request: bool,
}

impl TransferError {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            bad_request: true,
        }
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            bad_request: false,
        }
    }
}

/// The stable codes of refused transfers.
pub mod codes {
    pub const INVALID_TRANSFER: &str = "INVALID_TRANSFER";
    pub const ACCOUNTS_MUST_BE_DIFFERENT: &str = "ACCOUNTS_MUST_BE_DIFFERENT";
    pub const UNKNOWN_ACCOUNT: &str = "UNKNOWN_ACCOUNT";
    pub const CURRENCY_MISMATCH: &str = "CURRENCY_MISMATCH";
    pub const ID_CONFLICT: &str = "ID_CONFLICT";
    pub const EXCEEDS_CREDITS: &str = "EXCEEDS_CREDITS";
    pub const EXCEEDS_DEBITS: &str = "EXCEEDS_DEBITS";
    pub const OVERFLOW: &str = "BALANCE_OVERFLOW";
    pub const PENDING_TRANSFER_NOT_FOUND: &str = "PENDING_TRANSFER_NOT_FOUND";
    pub const PENDING_TRANSFER_NOT_PENDING: &str = "PENDING_TRANSFER_NOT_PENDING";
    pub const PENDING_TRANSFER_EXPIRED: &str = "PENDING_TRANSFER_EXPIRED";
    pub const PENDING_TRANSFER_MISMATCH: &str = "PENDING_TRANSFER_MISMATCH";
    pub const AMOUNT_EXCEEDS_PENDING: &str = "AMOUNT_EXCEEDS_PENDING";
    pub const LINKED_EVENT_FAILED: &str = "LINKED_EVENT_FAILED";
    pub const LINKED_CHAIN_OPEN: &str = "LINKED_CHAIN_OPEN";
}
