//! What can go wrong in storage: the database, a label file, or a stored value that no longer
//! reads back.

use std::error::Error as StdError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("label file: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored value cannot be read: {0}")]
    Decode(#[source] Box<dyn StdError + Send + Sync>),
}

impl StoreError {
    pub fn decode(e: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Decode(e.into())
    }

    /// The database being away (refused, reset, shutting down, pool exhausted): not a bug, the
    /// caller may retry.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Sql(e) => match e {
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
                sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
                // 08xxx connection exceptions, 57P0x operator intervention (shutdown, restart).
                sqlx::Error::Database(db) => db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
                _ => false,
            },
            Self::Io(_) | Self::Decode(_) => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
