//! The circuit breaker of every dependency the gateway calls: each carrier, and Redis.
//!
//! `threshold` consecutive failures open it for `open_for`; then exactly one call is let through
//! (the one that moves the deadline forward), and its outcome closes or reopens it. Lock-free, so
//! it can sit on the hot path of every tracking query.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Breaker {
    threshold: u32,
    open_for_ms: u64,
    epoch: Instant,
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which calls are refused; 0 when closed.
    open_until: AtomicU64,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for_ms: open_for.as_millis() as u64,
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    pub fn allow(&self) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now();
        // Open period over: the call that moves the deadline forward is the one trial.
        now >= until
            && self
                .open_until
                .compare_exchange(
                    until,
                    now + self.open_for_ms,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    pub fn is_closed(&self) -> bool {
        self.open_until.load(Ordering::Acquire) == 0
    }

    /// Opens at once (a write that could not be made).
    pub fn trip(&self) {
        self.failures.store(self.threshold, Ordering::Release);
        let _ = self.open_until.compare_exchange(
            0,
            self.now() + self.open_for_ms,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    /// True when this failure opened the breaker.
    pub fn failure(&self) -> bool {
        let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if failures >= self.threshold {
            let was = self
                .open_until
                .swap(self.now() + self.open_for_ms, Ordering::AcqRel);
            return was == 0;
        }
        false
    }

    /// True when this success closed an open breaker.
    pub fn success(&self) -> bool {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Release);
        }
        self.open_until.load(Ordering::Relaxed) != 0
            && self.open_until.swap(0, Ordering::AcqRel) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_lets_one_trial_through_and_closes() {
        let b = Breaker::new(2, Duration::from_millis(30));
        assert!(b.allow());
        assert!(!b.failure());
        assert!(b.failure(), "second consecutive failure opens it");
        assert!(!b.allow() && !b.is_closed());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "one trial after the open period");
        assert!(!b.allow(), "only one");
        assert!(b.success(), "the trial's success closes it");
        assert!(b.is_closed() && b.allow());
    }

    #[test]
    fn a_success_resets_the_count_and_a_failed_trial_reopens_at_once() {
        let b = Breaker::new(3, Duration::from_millis(30));
        b.failure();
        b.failure();
        b.success();
        b.failure();
        b.failure();
        assert!(b.allow(), "a success reset the count");
        assert!(b.failure(), "the third consecutive failure opens it");
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "one trial after the open period");
        assert!(!b.failure(), "already open: not opened again");
        assert!(!b.allow(), "a failed trial keeps it open");
    }
}
