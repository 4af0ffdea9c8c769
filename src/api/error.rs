//! The public error envelope: one table of `errorCode` -> HTTP status, and the `From` impls that
//! turn each capability's error into it. Internal errors keep their cause chain for the log
//! (with the request id); clients see `INTERNAL` and the request id only.

use crate::auth::{AuthError, KeyError, Scope};
use crate::inventory::InventoryError;
use crate::store::StoreError;
use crate::tracking::TrackingError;
use crate::waybills::WaybillError;
use crate::webhooks::WebhookError;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use carriers::CarrierError;
use serde::Serialize;
use std::fmt;

pub use crate::fields::FieldError;

#[derive(Debug)]
pub enum ApiError {
    Validation(Vec<FieldError>),
    InvalidJson(String),
    InvalidContentType(String),
    InvalidRequest(String),
    PayloadTooLarge(usize),
    UnknownChannel(String),
    Unauthorized(&'static str),
    /// The key lacks the scope the action needs.
    InsufficientScope(Scope),
    /// A test key asked for a live carrier, or a live key for the sandbox.
    KeyModeMismatch(String),
    /// A key revoked, expired or rotated before cannot be rotated.
    KeyNotActive,
    NotFound(String),
    /// Some of several asked-for items do not exist; `details` names each.
    NotFoundItems(Vec<FieldError>),
    LabelNotAvailable(String),
    MethodNotAllowed,
    ReferenceConflict,
    ReferenceInProgress {
        retry_after_secs: u64,
    },
    /// The API key used up its request quota.
    RateLimited {
        retry_after_secs: u64,
    },
    Carrier(CarrierError),
    /// The carrier may have created the shipment; its state could not be settled yet.
    ShipmentStateUnknown {
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// The reference an operator resolves is not unresolved (any more).
    NothingToResolve(String),
    Unavailable(String),
    /// A carrier push whose signature, token or timestamp does not hold.
    CallbackUnauthorized(String),
    /// A carrier push delivered before (same delivery id).
    CallbackReplayed(String),
    /// What inventory refused (its codes are in the table below).
    Inventory(InventoryError),
    /// An order action its state does not allow.
    IllegalTransition(String),
    /// The gateway (its carrier) refused to void an order's waybill.
    CancelRefused(String),
    /// What the ledger refused: its own stable code (`finance::error::codes`), 400 for the
    /// client's mistake or 409 for a conflict with the ledger's state.
    LedgerRefused {
        code: &'static str,
        bad_request: bool,
        message: String,
    },
    /// A bug or a broken dependency: logged with its cause chain, never shown.
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// The one table of public codes and their HTTP statuses.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        match self {
            Self::Validation(_) => ("VALIDATION_FAILED", StatusCode::BAD_REQUEST),
            Self::InvalidJson(_) => ("INVALID_JSON", StatusCode::BAD_REQUEST),
            Self::InvalidContentType(_) => ("INVALID_CONTENT_TYPE", StatusCode::BAD_REQUEST),
            Self::InvalidRequest(_) => ("INVALID_REQUEST", StatusCode::BAD_REQUEST),
            Self::UnknownChannel(_) => ("UNKNOWN_CHANNEL", StatusCode::BAD_REQUEST),
            Self::PayloadTooLarge(_) => ("PAYLOAD_TOO_LARGE", StatusCode::PAYLOAD_TOO_LARGE),
            Self::Unauthorized(_) => ("UNAUTHORIZED", StatusCode::UNAUTHORIZED),
            Self::InsufficientScope(_) => ("INSUFFICIENT_SCOPE", StatusCode::FORBIDDEN),
            Self::KeyModeMismatch(_) => ("KEY_MODE_MISMATCH", StatusCode::FORBIDDEN),
            Self::KeyNotActive => ("KEY_NOT_ACTIVE", StatusCode::CONFLICT),
            Self::NotFound(_) | Self::NotFoundItems(_) => ("NOT_FOUND", StatusCode::NOT_FOUND),
            Self::LabelNotAvailable(_) => ("LABEL_NOT_AVAILABLE", StatusCode::NOT_FOUND),
            Self::MethodNotAllowed => ("METHOD_NOT_ALLOWED", StatusCode::METHOD_NOT_ALLOWED),
            Self::ReferenceConflict => ("REFERENCE_CONFLICT", StatusCode::CONFLICT),
            Self::ReferenceInProgress { .. } => ("REFERENCE_IN_PROGRESS", StatusCode::CONFLICT),
            Self::RateLimited { .. } => ("RATE_LIMITED", StatusCode::TOO_MANY_REQUESTS),
            Self::ShipmentStateUnknown { .. } => ("SHIPMENT_STATE_UNKNOWN", StatusCode::CONFLICT),
            Self::NothingToResolve(_) => ("NOTHING_TO_RESOLVE", StatusCode::CONFLICT),
            Self::Carrier(e) => match e {
                CarrierError::Rejected { .. } => ("CARRIER_REJECTED", StatusCode::BAD_GATEWAY),
                CarrierError::Auth(_) => ("CARRIER_AUTH_FAILED", StatusCode::BAD_GATEWAY),
                CarrierError::BadResponse(_) => ("CARRIER_BAD_RESPONSE", StatusCode::BAD_GATEWAY),
                CarrierError::Timeout(_) | CarrierError::ConnectionLost(_) => {
                    ("CARRIER_TIMEOUT", StatusCode::GATEWAY_TIMEOUT)
                }
                CarrierError::Unavailable(_) | CarrierError::NotSupported(_) => {
                    ("CARRIER_UNAVAILABLE", StatusCode::SERVICE_UNAVAILABLE)
                }
            },
            Self::Unavailable(_) => ("SERVICE_UNAVAILABLE", StatusCode::SERVICE_UNAVAILABLE),
            Self::CallbackUnauthorized(_) => ("CALLBACK_UNAUTHORIZED", StatusCode::UNAUTHORIZED),
            Self::CallbackReplayed(_) => ("CALLBACK_REPLAYED", StatusCode::CONFLICT),
            Self::Inventory(e) => match e {
                InventoryError::Validation(_) => ("VALIDATION_FAILED", StatusCode::BAD_REQUEST),
                InventoryError::UnknownSku(_) => ("UNKNOWN_SKU", StatusCode::BAD_REQUEST),
                InventoryError::UnknownWarehouse(_) => {
                    ("UNKNOWN_WAREHOUSE", StatusCode::BAD_REQUEST)
                }
                InventoryError::UnmappedIdentifier(_) => {
                    ("UNMAPPED_IDENTIFIER", StatusCode::BAD_REQUEST)
                }
                InventoryError::Unmapped(_) => ("UNMAPPED_IDENTIFIER", StatusCode::NOT_FOUND),
                InventoryError::WouldGoNegative(_) => {
                    ("STOCK_WOULD_GO_NEGATIVE", StatusCode::CONFLICT)
                }
                InventoryError::InsufficientStock(_) => {
                    ("INSUFFICIENT_STOCK", StatusCode::CONFLICT)
                }
                InventoryError::IdConflict(_) => ("ID_CONFLICT", StatusCode::CONFLICT),
                InventoryError::NotActive(_) => ("ALLOCATION_NOT_ACTIVE", StatusCode::CONFLICT),
                InventoryError::NotFound(_) => ("NOT_FOUND", StatusCode::NOT_FOUND),
                InventoryError::Store(_) => ("INTERNAL", StatusCode::INTERNAL_SERVER_ERROR),
            },
            Self::IllegalTransition(_) => ("ILLEGAL_TRANSITION", StatusCode::CONFLICT),
            Self::CancelRefused(_) => ("CANCEL_REFUSED", StatusCode::CONFLICT),
            Self::LedgerRefused {
                code, bad_request, ..
            } => (
                code,
                if *bad_request {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::CONFLICT
                },
            ),
            Self::Internal(_) => ("INTERNAL", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Validation(d) => format!("request validation failed ({} problem(s))", d.len()),
            Self::InvalidJson(m) | Self::InvalidContentType(m) | Self::InvalidRequest(m) => {
                m.clone()
            }
            Self::PayloadTooLarge(limit) => format!("request body exceeds {limit} bytes"),
            Self::UnknownChannel(c) => format!("unknown channel `{c}`"),
            Self::Unauthorized(m) => (*m).to_owned(),
            Self::InsufficientScope(scope) => {
                format!("this API key lacks the scope `{}`", scope.as_str())
            }
            Self::KeyModeMismatch(m) => m.clone(),
            Self::KeyNotActive => "the key is revoked, expired or already rotated".into(),
            Self::NotFound(m) | Self::LabelNotAvailable(m) => m.clone(),
            Self::NotFoundItems(d) => format!("{} of the numbers could not be printed", d.len()),
            Self::MethodNotAllowed => "method not allowed on this path".into(),
            Self::ReferenceConflict => {
                "this referenceNumber was already used with a different payload".into()
            }
            Self::ReferenceInProgress { .. } => {
                "a request with this referenceNumber is still being processed; retry shortly".into()
            }
            Self::RateLimited { retry_after_secs } => {
                format!("too many requests for this API key; retry after {retry_after_secs} s")
            }
            Self::ShipmentStateUnknown { message: m, .. }
            | Self::NothingToResolve(m)
            | Self::Unavailable(m)
            | Self::CallbackUnauthorized(m)
            | Self::CallbackReplayed(m)
            | Self::IllegalTransition(m)
            | Self::CancelRefused(m)
            | Self::LedgerRefused { message: m, .. } => m.clone(),
            Self::Carrier(CarrierError::Rejected { .. }) => {
                "the carrier rejected the shipment".into()
            }
            // The carrier is named; how its credentials or transport failed is for operators
            // (logged with the request id), not for tenants.
            Self::Carrier(e) => {
                let carrier = carrier_named_in(e);
                match e {
                    CarrierError::Auth(_) => format!(
                        "{carrier} refused this gateway's credentials; operators are alerted"
                    ),
                    CarrierError::Unavailable(_) => {
                        format!("{carrier} cannot be reached right now; retry shortly")
                    }
                    CarrierError::Timeout(_) | CarrierError::ConnectionLost(_) => format!(
                        "no answer from {carrier} in time; retrying the same request is safe"
                    ),
                    CarrierError::BadResponse(_) => {
                        format!("{carrier} answered something that cannot be read")
                    }
                    CarrierError::NotSupported(what) => {
                        format!("{carrier} does not offer {what}")
                    }
                    CarrierError::Rejected { .. } => "the carrier rejected the shipment".into(),
                }
            }
            Self::Inventory(e) => match e {
                InventoryError::Validation(d)
                | InventoryError::UnknownSku(d)
                | InventoryError::UnknownWarehouse(d)
                | InventoryError::UnmappedIdentifier(d)
                | InventoryError::InsufficientStock(d) => {
                    format!("{e} ({} problem(s))", d.len())
                }
                _ => e.to_string(),
            },
            // Internal details go to the log, not to the client.
            Self::Internal(_) => "internal error".into(),
        }
    }
}

/// The carrier a carrier error names (its details start with the carrier's id), else "the
/// carrier".
fn carrier_named_in(e: &CarrierError) -> &'static str {
    let detail = match e {
        CarrierError::Auth(d)
        | CarrierError::Unavailable(d)
        | CarrierError::Timeout(d)
        | CarrierError::ConnectionLost(d)
        | CarrierError::BadResponse(d) => d.as_str(),
        CarrierError::Rejected { .. } | CarrierError::NotSupported(_) => "",
    };
    carriers::CarrierId::ALL
        .into_iter()
        .find(|c| detail.starts_with(c.as_str()))
        .map_or("the carrier", carriers::CarrierId::as_str)
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, _) = self.code_and_status();
        write!(f, "{code}: {}", self.message())
    }
}

impl From<CarrierError> for ApiError {
    fn from(e: CarrierError) -> Self {
        Self::Carrier(e)
    }
}

impl ApiError {
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(e.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // The database being away is not a bug: 503 with a code, and the client may retry.
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            Self::Unavailable("database unavailable; retry shortly".into())
        } else {
            Self::internal(e)
        }
    }
}

impl From<WaybillError> for ApiError {
    fn from(e: WaybillError) -> Self {
        match e {
            WaybillError::Validation(d) => Self::Validation(d),
            WaybillError::UnknownChannel(c) => Self::UnknownChannel(c),
            WaybillError::ModeMismatch(m) => Self::KeyModeMismatch(m),
            WaybillError::ReferenceConflict => Self::ReferenceConflict,
            WaybillError::ReferenceInProgress { retry_after_secs } => {
                Self::ReferenceInProgress { retry_after_secs }
            }
            WaybillError::ShipmentStateUnknown {
                message,
                retry_after_secs,
            } => Self::ShipmentStateUnknown {
                message,
                retry_after_secs,
            },
            WaybillError::NothingToResolve(m) => Self::NothingToResolve(m),
            WaybillError::Carrier(e) => Self::Carrier(e),
            WaybillError::NotFound(m) => Self::NotFound(m),
            WaybillError::NotFoundItems(d) => Self::NotFoundItems(d),
            WaybillError::LabelNotAvailable(m) => Self::LabelNotAvailable(m),
            WaybillError::Store(e) => e.into(),
            e @ (WaybillError::Label(_)
            | WaybillError::Encode(_)
            | WaybillError::AttemptFailed(_)
            | WaybillError::Inconsistent(_)) => Self::internal(e),
        }
    }
}

impl From<TrackingError> for ApiError {
    fn from(e: TrackingError) -> Self {
        use carriers::push::PushError;
        match e {
            TrackingError::Store(e) => e.into(),
            TrackingError::UnknownCarrier(_) => Self::NotFound(e.to_string()),
            TrackingError::NotConfigured(_)
            | TrackingError::Push(PushError::Unauthorized(_) | PushError::Stale(_)) => {
                Self::CallbackUnauthorized(e.to_string())
            }
            TrackingError::Push(PushError::Invalid(m)) => Self::InvalidRequest(m),
            TrackingError::Replayed(_) => Self::CallbackReplayed(e.to_string()),
            TrackingError::Render(_) => Self::internal(e),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Validation(d) => Self::Validation(d),
            WebhookError::NotFound(m) => Self::NotFound(m),
            WebhookError::Store(e) => e.into(),
            WebhookError::Random(_) => Self::internal(e),
        }
    }
}

impl From<InventoryError> for ApiError {
    fn from(e: InventoryError) -> Self {
        match e {
            InventoryError::Store(e) => e.into(),
            e => Self::Inventory(e),
        }
    }
}

impl From<crate::orders::OrderError> for ApiError {
    fn from(e: crate::orders::OrderError) -> Self {
        use crate::orders::OrderError;
        match e {
            OrderError::Validation(d) => Self::Validation(d),
            OrderError::NotFound(m) => Self::NotFound(m),
            OrderError::IllegalTransition(m) => Self::IllegalTransition(m),
            OrderError::GatewayUnavailable(m) => Self::Unavailable(m),
            OrderError::GatewayRefused(m) => Self::CancelRefused(m),
            OrderError::Inventory(e) => e.into(),
            OrderError::Store(e) => e.into(),
        }
    }
}

impl From<crate::finance::FinanceError> for ApiError {
    fn from(e: crate::finance::FinanceError) -> Self {
        use crate::finance::FinanceError;
        match e {
            FinanceError::Validation(d) => Self::Validation(d),
            FinanceError::NotFound(m) => Self::NotFound(m),
            FinanceError::AccountConflict(message) => Self::LedgerRefused {
                code: "ACCOUNT_CONFLICT",
                bad_request: false,
                message,
            },
            FinanceError::Transfer(t) => t.into(),
            FinanceError::Store(e) => e.into(),
            FinanceError::Raced => {
                Self::Unavailable("a transfer id was posted concurrently; retry".into())
            }
        }
    }
}

impl From<crate::finance::TransferError> for ApiError {
    fn from(t: crate::finance::TransferError) -> Self {
        Self::LedgerRefused {
            code: t.code,
            bad_request: t.bad_request,
            message: t.message,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized(m) => Self::Unauthorized(m),
            AuthError::RateLimited { retry_after_secs } => Self::RateLimited { retry_after_secs },
            AuthError::Store(e) => e.into(),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Invalid(m) => Self::InvalidRequest(m),
            KeyError::NotFound => Self::NotFound("no such key".into()),
            KeyError::NotActive => Self::KeyNotActive,
            KeyError::Store(e) => e.into(),
            e @ (KeyError::UnknownTenant(_) | KeyError::NoRandomness(_)) => Self::internal(e),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    status: u8,
    error_code: &'a str,
    error_msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a [FieldError]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    carrier_error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    carrier_error_msg: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code_and_status().1
    }

    fn error_response(&self) -> HttpResponse {
        let (code, status) = self.code_and_status();
        if let Self::Carrier(e) = self
            && !matches!(e, CarrierError::Rejected { .. })
        {
            tracing::warn!(error = %e, "carrier failure");
        }
        if let Self::Internal(e) = self {
            // The whole cause chain goes to the log, under the request's id.
            let mut chain = e.to_string();
            let mut source = e.source();
            while let Some(cause) = source {
                chain.push_str(": ");
                chain.push_str(&cause.to_string());
                source = cause.source();
            }
            tracing::error!(error = %chain, "internal error");
        }
        let (carrier_error_code, carrier_error_msg) = match self {
            Self::Carrier(CarrierError::Rejected { code, message }) => {
                (Some(code.as_str()), Some(message.as_str()))
            }
            _ => (None, None),
        };
        let body = ErrorBody {
            status: 0,
            error_code: code,
            error_msg: self.message(),
            details: match self {
                Self::Validation(d) | Self::NotFoundItems(d) => Some(d),
                Self::Inventory(
                    InventoryError::Validation(d)
                    | InventoryError::UnknownSku(d)
                    | InventoryError::UnknownWarehouse(d)
                    | InventoryError::UnmappedIdentifier(d)
                    | InventoryError::InsufficientStock(d),
                ) => Some(d),
                _ => None,
            },
            carrier_error_code,
            carrier_error_msg,
            request_id: crate::request_id::current(),
        };
        let mut response = HttpResponse::build(status).json(body);
        let retry_after = match self {
            Self::ReferenceInProgress { retry_after_secs }
            | Self::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            Self::ShipmentStateUnknown {
                retry_after_secs, ..
            } => *retry_after_secs,
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
