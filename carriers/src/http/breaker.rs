//! A circuit breaker per carrier: after `threshold` consecutive failures calls are refused at
//! once for `open_for`; then one trial call is let through (half-open) and its outcome decides.

use crate::CarrierError;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) struct Breaker {
    threshold: u32,
    open_for: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn check(&self, carrier: &str) -> Result<(), CarrierError> {
        let mut state = self.state();
        match state.open_until {
            Some(until) if Instant::now() < until => {
                metrics::counter!("shipgate_carrier_breaker_rejections_total", "carrier" => carrier.to_owned())
                    .increment(1);
                Err(CarrierError::Unavailable(format!(
                    "{carrier}: circuit open after repeated failures"
                )))
            }
            Some(_) => {
                // Half-open: this call is the trial; one more failure reopens at once.
                state.open_until = None;
                state.failures = self.threshold - 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub(crate) fn success(&self) {
        let mut state = self.state();
        state.failures = 0;
        state.open_until = None;
    }

    pub(crate) fn failure(&self, carrier: &str) {
        let mut state = self.state();
        state.failures += 1;
        if state.failures >= self.threshold && state.open_until.is_none() {
            tracing::warn!(carrier, failures = state.failures, "carrier circuit opened");
            state.open_until = Some(Instant::now() + self.open_for);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_half_opens_later() {
        let b = Breaker::new(3, Duration::from_millis(30));
        b.failure("x");
        b.failure("x");
        b.success();
        b.failure("x");
        b.failure("x");
        assert!(b.check("x").is_ok(), "a success reset the count");
        b.failure("x");
        assert!(matches!(b.check("x"), Err(CarrierError::Unavailable(_))));
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.check("x").is_ok(), "half-open lets one trial through");
        b.failure("x");
        assert!(b.check("x").is_err(), "a failed trial reopens at once");
    }
}
