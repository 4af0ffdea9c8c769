use thiserror::Error;

/// What can go wrong talking to a carrier, classified by what it means for the shipment.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum CarrierError {
    /// The carrier answered and refused: nothing was created.
    #[error("carrier rejected the request: {code}: {message}")]
    Rejected { code: String, message: String },
    /// The carrier refused our credentials: an operator has to fix the configuration.
    #[error("carrier refused our credentials: {0}")]
    Auth(String),
    /// The request never reached the carrier (connection refused, circuit open): nothing was created.
    #[error("carrier unavailable: {0}")]
    Unavailable(String),
    /// No answer in time: the carrier may or may not have created the shipment.
    #[error("carrier timed out: {0}")]
    Timeout(String),
    /// The connection broke after the request was sent: the outcome is unknown.
    #[error("connection to carrier lost: {0}")]
    ConnectionLost(String),
    /// The carrier answered something we cannot read: the outcome is unknown.
    #[error("unreadable carrier response: {0}")]
    BadResponse(String),
    /// The carrier does not offer this operation.
    #[error("not supported by this carrier: {0}")]
    NotSupported(&'static str),
}

impl CarrierError {
    /// True when the carrier may have acted on the request even though we got no answer.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            Self::Timeout(_) | Self::ConnectionLost(_) | Self::BadResponse(_)
        )
    }
}
