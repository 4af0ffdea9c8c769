//! The shipping rules (which gateway channel a shipment uses) and the parcel split (a shipment
//! over the channel's parcel limit travels as several parcels). Pure functions.

use crate::settings::ShippingRule;
use serde_json::Value;

/// What the rules look at.
pub struct Facts<'a> {
    pub country: &'a str,
    pub state: Option<&'a str>,
    pub service_level: Option<&'a str>,
    pub weight_grams: u64,
    /// Each line's SKU attributes (a JSON object).
    pub attributes: Vec<&'a Value>,
}

/// Whether an attribute is set (present and not null, false or empty).
fn has(attributes: &Value, name: &str) -> bool {
    match attributes.get(name) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

fn matches(rule: &ShippingRule, f: &Facts) -> bool {
    let listed = |list: &[String], v: Option<&str>| {
        list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x.eq_ignore_ascii_case(v)))
    };
    listed(&rule.countries, Some(f.country))
        && listed(&rule.states, f.state)
        && listed(&rule.service_levels, f.service_level)
        && rule.min_weight_grams.is_none_or(|m| f.weight_grams >= m)
        && rule.max_weight_grams.is_none_or(|m| f.weight_grams <= m)
        && rule
            .without_attributes
            .iter()
            .all(|a| !f.attributes.iter().any(|attrs| has(attrs, a)))
        && rule
            .with_attributes
            .iter()
            .all(|a| f.attributes.iter().any(|attrs| has(attrs, a)))
}

/// The first rule that matches.
pub fn route<'r>(rules: &'r [ShippingRule], facts: &Facts) -> Option<&'r ShippingRule> {
    rules.iter().find(|r| matches(r, facts))
}

/// Parcel weights for units of `(weight, count)` under a parcel limit: heaviest first, each
/// into the first parcel it fits (a unit over the limit travels alone).
pub fn parcels(units: &[(u64, i64)], max: Option<u64>) -> Vec<u64> {
    let total: u64 = units
        .iter()
        .map(|(w, n)| w.saturating_mul(u64::try_from(*n).unwrap_or(0)))
        .sum();
    let Some(max) = max.filter(|m| total > *m) else {
        return vec![total.max(1)];
    };
    let mut each: Vec<u64> = units
        .iter()
        .flat_map(|(w, n)| std::iter::repeat_n(*w, usize::try_from(*n).unwrap_or(0)))
        .collect();
    each.sort_unstable_by(|a, b| b.cmp(a));
    let mut out: Vec<u64> = Vec::new();
    for w in each {
        match out.iter_mut().find(|p| **p + w <= max) {
            Some(p) => *p += w,
            None => out.push(w),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(channel: &str) -> ShippingRule {
        ShippingRule {
            channel: channel.into(),
            countries: vec![],
            states: vec![],
            service_levels: vec![],
            min_weight_grams: None,
            max_weight_grams: None,
            without_attributes: vec![],
            with_attributes: vec![],
            max_parcel_grams: None,
        }
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let battery = json!({"battery": "UN3481"});
        let plain = json!({});
        let rules = vec![
            ShippingRule {
                with_attributes: vec!["battery".into()],
                countries: vec!["US".into()],
                ..rule("LINEHAUL")
            },
            ShippingRule {
                service_levels: vec!["express".into()],
                max_weight_grams: Some(2000),
                ..rule("EXPRESS")
            },
            rule("DEFAULT"),
        ];
        let facts = |attrs: Vec<&'static Value>, level, weight| Facts {
            country: "US",
            state: Some("CA"),
            service_level: level,
            weight_grams: weight,
            attributes: attrs,
        };
        let b: &'static Value = Box::leak(Box::new(battery));
        let p: &'static Value = Box::leak(Box::new(plain));
        assert_eq!(
            route(&rules, &facts(vec![p, b], None, 100))
                .unwrap()
                .channel,
            "LINEHAUL"
        );
        assert_eq!(
            route(&rules, &facts(vec![p], Some("express"), 100))
                .unwrap()
                .channel,
            "EXPRESS"
        );
        assert_eq!(
            route(&rules, &facts(vec![p], Some("express"), 2001))
                .unwrap()
                .channel,
            "DEFAULT"
        );
        assert!(route(&rules[..2], &facts(vec![p], None, 100)).is_none());
    }

    #[test]
    fn heavy_shipments_split_into_parcels_under_the_limit() {
        assert_eq!(parcels(&[(400, 2)], Some(1000)), vec![800]);
        let split = parcels(&[(600, 3), (300, 2)], Some(1000));
        assert_eq!(split.iter().sum::<u64>(), 2400);
        assert!(split.iter().all(|p| *p <= 1000), "{split:?}");
        assert_eq!(split.len(), 3);
        // A unit over the limit travels alone.
        assert_eq!(parcels(&[(1500, 1), (100, 1)], Some(1000)), vec![1500, 100]);
    }
}
