//! What tracking queries and carrier pushes can end in.

use crate::store::StoreError;
use carriers::CarrierId;
use carriers::push::PushError;

#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An answer that could not be written as JSON.
    #[error("rendering a tracking answer: {0}")]
    Render(#[from] serde_json::Error),
    /// A push to a carrier path shipgate has no push format for.
    #[error("no push format for carrier `{0}`")]
    UnknownCarrier(String),
    /// Pushes from a carrier that is not configured with a secret.
    #[error("pushes from `{0}` are not configured")]
    NotConfigured(CarrierId),
    /// A push that does not authenticate or does not read.
    #[error(transparent)]
    Push(#[from] PushError),
    /// Every delivery of the push was received before.
    #[error("delivery already received from {0}")]
    Replayed(CarrierId),
}

impl TrackingError {
    /// How a carrier's answer classes the refusal.
    pub fn refusal(&self) -> carriers::push::Refusal {
        use carriers::push::Refusal;
        match self {
            Self::NotConfigured(_)
            | Self::Push(PushError::Unauthorized(_) | PushError::Stale(_)) => Refusal::Unauthorized,
            Self::Push(PushError::Invalid(_)) => Refusal::Invalid,
            Self::Replayed(_) => Refusal::Replayed,
            Self::Store(_) | Self::Render(_) | Self::UnknownCarrier(_) => Refusal::Other,
        }
    }
}
