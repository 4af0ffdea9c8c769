//! When parcels are polled: intervals with ±10 % jitter, so parcels created together do not stay
//! in step. A new waybill gets its first poll from [`FirstPoll`], a value the waybills service is
//! handed at start; the poller sets every later one.

/// The first poll of a new waybill: this long after its creation (± 10 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstPoll {
    pub after_ms: u64,
}

impl FirstPoll {
    pub fn at(self, created_ms: i64) -> i64 {
        created_ms + jitter(self.after_ms)
    }
}

/// `ms` ± 10 %.
pub fn jitter(ms: u64) -> i64 {
    let r = getrandom::u32().unwrap_or(u32::MAX / 2);
    let spread = ms / 10;
    let offset = if spread == 0 {
        0
    } else {
        u64::from(r) % (2 * spread + 1)
    };
    (ms - spread + offset) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let j = jitter(1000);
            assert!((900..=1100).contains(&j), "{j}");
        }
        assert_eq!(jitter(5), 5);
        let at = FirstPoll { after_ms: 1000 }.at(10_000);
        assert!((10_900..=11_100).contains(&at), "{at}");
    }
}
