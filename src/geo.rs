//! Destinations and the areas a warehouse serves: postcode ranges (`"900-961"`, prefixes of one
//! length, inclusive) and states. The return rule and stock allocation both read them.

/// A parsed postcode range: prefix bounds of one length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostcodeRange {
    lo: u64,
    hi: u64,
    len: usize,
}

impl PostcodeRange {
    /// `"900-961"` or a single prefix (`"100"`); `None` when it is not one.
    pub fn parse(spec: &str) -> Option<Self> {
        let (lo, hi) = spec.split_once('-').unwrap_or((spec, spec));
        let (lo, hi) = (lo.trim(), hi.trim());
        if lo.len() != hi.len()
            || lo.is_empty()
            || lo.len() > 18
            || !lo.bytes().chain(hi.bytes()).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let (lo_n, hi_n) = (lo.parse().ok()?, hi.parse().ok()?);
        (lo_n <= hi_n).then_some(Self {
            lo: lo_n,
            hi: hi_n,
            len: lo.len(),
        })
    }

    /// Whether the postcode's leading digits fall in the range.
    pub fn contains(&self, postal_code: &str) -> bool {
        let digits: String = postal_code
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.len() >= self.len
            && digits[..self.len]
                .parse::<u64>()
                .is_ok_and(|p| (self.lo..=self.hi).contains(&p))
    }

    /// Narrower ranges sort first: longer prefixes, then fewer prefixes covered.
    pub fn narrowness(&self) -> (std::cmp::Reverse<usize>, u64) {
        (std::cmp::Reverse(self.len), self.hi - self.lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_match_by_prefix() {
        let r = PostcodeRange::parse("900-961").unwrap();
        assert!(r.contains("90210"));
        assert!(r.contains("961"));
        assert!(!r.contains("962"));
        assert!(!r.contains("90"));
        assert!(PostcodeRange::parse("100").unwrap().contains("10001-1234"));
        for bad in ["", "9a0", "90-961", "961-900"] {
            assert!(PostcodeRange::parse(bad).is_none(), "{bad}");
        }
    }
}
