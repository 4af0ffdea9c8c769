//! Sandbox waybill numbers: `SBX` + 16-digit serial + GS1 mod-10 check digit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Serials are microseconds since the epoch, made strictly increasing, so numbers stay unique
/// across restarts of one instance without any stored counter.
#[derive(Default)]
pub(crate) struct SerialSource {
    last: AtomicU64,
}

impl SerialSource {
    pub(crate) fn next(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let candidate = now.max(prev + 1);
            match self.last.compare_exchange_weak(
                prev,
                candidate,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return candidate % 10_u64.pow(16),
                Err(seen) => prev = seen,
            }
        }
    }
}

pub(crate) fn waybill_number(prefix: &str, serial: u64) -> String {
    let digits = format!("{serial:016}");
    let check = check_digit(&digits).unwrap_or(0);
    format!("{prefix}{digits}{check}")
}

/// GS1 mod-10 check digit: weights 3 and 1 alternating from the rightmost digit.
pub fn check_digit(digits: &str) -> Option<u32> {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let d = c.to_digit(10)?;
        sum += if i % 2 == 0 { d * 3 } else { d };
    }
    Some((10 - sum % 10) % 10)
}

/// True for a well-formed sandbox number whose check digit matches.
pub fn is_valid_number(number: &str) -> bool {
    let Some(rest) = number
        .strip_prefix("SBX")
        .or_else(|| number.strip_prefix("SBL"))
    else {
        return false;
    };
    if rest.len() != 17 {
        return false;
    }
    let (serial, check) = rest.split_at(16);
    match (
        check_digit(serial),
        check.chars().next().and_then(|c| c.to_digit(10)),
    ) {
        (Some(expected), Some(got)) => expected == got,
        _ => false,
    }
}
