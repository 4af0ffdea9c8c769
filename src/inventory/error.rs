//! What inventory refuses, with the public code each maps to (the table is in `api::error`).

use crate::fields::FieldError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("request validation failed")]
    Validation(Vec<FieldError>),
    /// SKUs the tenant has not defined, named per field.
    #[error("unknown SKU")]
    UnknownSku(Vec<FieldError>),
    /// Warehouses the tenant has not defined, named per field.
    #[error("unknown warehouse")]
    UnknownWarehouse(Vec<FieldError>),
    /// Channel identifiers mapped to no SKU, named per field.
    #[error("unmapped channel identifier")]
    UnmappedIdentifier(Vec<FieldError>),
    /// A lookup of a channel identifier that is mapped to no SKU.
    #[error("{0}")]
    Unmapped(String),
    /// The movement would leave on-hand stock negative or below what is reserved.
    #[error("{0}")]
    WouldGoNegative(String),
    /// Not enough available stock to allocate; each short line named.
    #[error("not enough available stock")]
    InsufficientStock(Vec<FieldError>),
    /// The allocation id (or a movement's request id) was used with other content.
    #[error("{0}")]
    IdConflict(String),
    /// The allocation is released or committed already.
    #[error("{0}")]
    NotActive(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for InventoryError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

pub(crate) fn invalid(field: impl Into<String>, msg: impl Into<String>) -> InventoryError {
    InventoryError::Validation(vec![FieldError::new(field, msg)])
}
