//! What the orders service refuses, with the public code each maps to (the table is in
//! `api::error`).

use crate::fields::FieldError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("request validation failed")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    NotFound(String),
    /// The transition is not allowed from the order's state.
    #[error("{0}")]
    IllegalTransition(String),
    /// The gateway could not be reached to void a waybill: nothing changed; try again.
    #[error("{0}")]
    GatewayUnavailable(String),
    /// The gateway (its carrier) refused to void a waybill.
    #[error("{0}")]
    GatewayRefused(String),
    #[error("{0}")]
    Inventory(#[from] crate::inventory::InventoryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for OrderError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

pub(crate) fn invalid(field: impl Into<String>, msg: impl Into<String>) -> OrderError {
    OrderError::Validation(vec![FieldError::new(field, msg)])
}
