//! The instance's lifecycle state, shared by the HTTP layer (readiness, connection closing) and
//! the background workers (they stop after their current round).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the instance is on its way out (SIGTERM received).
#[derive(Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}
