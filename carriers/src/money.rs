//! Money on the wire: amounts are `Decimal` (never floats) and carry each currency's ISO 4217
//! minor units (JPY 0, USD 2, KWD 3, CLF 4).
//!
//! Carriers exchange amounts as JSON numbers. Read, a number is taken from its shortest text
//! form (exact for every amount of up to 15 significant digits, which covers any charge);
//! written, an amount computed in `Decimal` becomes a JSON number the same way.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use std::str::FromStr;

/// The currency's ISO 4217 minor units (digits after the decimal point).
pub fn minor_units(currency: &str) -> u32 {
    match currency.to_ascii_uppercase().as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// A decimal amount from text (`"9.90"`, `"1e3"`).
pub fn parse(text: &str) -> Option<Decimal> {
    let text = text.trim();
    Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .ok()
}

/// `amount` rounded half away from zero to the currency's minor units, with exactly that many
/// digits (`17.1` USD is `17.10`; `1710.4` JPY is `1710`).
pub fn round(amount: Decimal, currency: &str) -> Decimal {
    let units = minor_units(currency);
    let mut rounded = amount.round_dp_with_strategy(units, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(units);
    rounded
}

/// An amount as a carrier's charge text, in the currency's minor units.
pub fn text(amount: Decimal, currency: &str) -> String {
    round(amount, currency).to_string()
}

/// A JSON number a carrier sent, as a decimal.
pub fn from_json(number: &serde_json::Number) -> Option<Decimal> {
    parse(&number.to_string())
}

/// An amount as a JSON number.
pub fn to_json(amount: Decimal) -> serde_json::Value {
    amount
        .to_f64()
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_keep_their_currencys_minor_units() {
        let d = |s: &str| parse(s).unwrap();
        assert_eq!(text(d("17.1"), "USD"), "17.10");
        assert_eq!(text(d("1710.5"), "JPY"), "1711");
        assert_eq!(text(d("1.2345"), "KWD"), "1.235");
        assert_eq!(text(d("2.5"), "CLF"), "2.5000");
        assert_eq!(text(d("1e3"), "EUR"), "1000.00");
        // No binary rounding on the way: 0.1 + 0.2 is 0.30, and 3 × 9.90 is 29.70.
        assert_eq!(text(d("0.1") + d("0.2"), "USD"), "0.30");
        assert_eq!(text(d("9.90") * Decimal::from(3), "USD"), "29.70");
        assert!(parse("nine").is_none());
    }

    #[test]
    fn json_numbers_round_trip_exactly() {
        let n: serde_json::Number = serde_json::from_str("4321.07").unwrap();
        assert_eq!(from_json(&n), parse("4321.07"));
        assert_eq!(to_json(parse("29.70").unwrap()).to_string(), "29.7");
        assert_eq!(
            to_json(parse("123456789012.34").unwrap()).to_string(),
            "123456789012.34"
        );
    }
}
