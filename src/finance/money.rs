//! Money as the ledger keeps it: integers in a currency's ISO 4217 minor units (JPY 0 places,
//! USD 2, KWD 3), converted from and to decimal strings without floats.

use rust_decimal::{Decimal, RoundingStrategy};

/// The ISO 4217 code, upper case, when it names a currency.
pub fn currency(code: &str) -> Option<iso_currency::Currency> {
    iso_currency::Currency::from_code(&code.trim().to_ascii_uppercase())
}

/// How many minor-unit places the currency has (2 when ISO 4217 gives none, as for XAU).
pub fn places(currency: iso_currency::Currency) -> u32 {
    currency.exponent().map_or(2, u32::from)
}

/// A decimal amount (`"17.10"`) in minor units of `code`; more places than the currency has are
/// rounded half to even (banker's rounding). `None` for an unknown currency, text that is not a
/// plain decimal, or an amount too large for the ledger.
pub fn to_minor(amount: &str, code: &str) -> Option<i64> {
    let places = places(currency(code)?);
    let text = amount.trim();
    if text.is_empty()
        || !text
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
    {
        return None;
    }
    let value: Decimal = text.parse().ok()?;
    let scaled = value
        .round_dp_with_strategy(places, RoundingStrategy::MidpointNearestEven)
        .checked_mul(Decimal::from(10i64.pow(places)))?;
    i64::try_from(scaled.trunc()).ok()
}

/// Minor units of `code` as a decimal string (`1710` USD is `"17.10"`).
pub fn to_decimal(minor: i64, code: &str) -> String {
    let places = currency(code).map_or(2, places);
    Decimal::new(minor, places).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_follow_the_currency() {
        assert_eq!(to_minor("17.10", "USD"), Some(1710));
        assert_eq!(to_minor("17.1", "usd"), Some(1710));
        assert_eq!(to_minor("1500", "JPY"), Some(1500));
        assert_eq!(to_minor("1.234", "KWD"), Some(1234));
        assert_eq!(to_decimal(1234, "KWD"), "1.234");
        assert_eq!(to_decimal(1710, "USD"), "17.10");
        assert_eq!(to_decimal(-5, "USD"), "-0.05");
    }

    #[test]
    fn extra_places_round_half_to_even() {
        assert_eq!(to_minor("0.125", "USD"), Some(12));
        assert_eq!(to_minor("0.135", "USD"), Some(14));
        assert_eq!(to_minor("10.5", "JPY"), Some(10));
        assert_eq!(to_minor("11.5", "JPY"), Some(12));
    }

    #[test]
    fn refuses_what_is_not_money() {
        assert_eq!(to_minor("1e3", "USD"), None);
        assert_eq!(to_minor("", "USD"), None);
        assert_eq!(to_minor("12.00", "XXQ"), None);
        assert_eq!(to_minor("99999999999999999999", "USD"), None);
    }
}
