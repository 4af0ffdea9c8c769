//! Requirement 4.1: the sender / return block of a last-mile label is the platform's nearest
//! return warehouse, chosen by postcode range or state from configuration.

use super::LabelError;
use crate::geo::PostcodeRange;
pub use crate::settings::Warehouse;

impl Warehouse {
    pub fn lines(&self) -> Vec<String> {
        vec![
            self.company.clone(),
            format!("{} ({})", self.name, self.code),
            self.street1.clone(),
            format!("{}, {} {}", self.city, self.state, self.postal_code),
            format!("{}  {}", self.country, self.phone),
        ]
    }
}

pub fn validate(warehouses: &[Warehouse]) -> Result<(), LabelError> {
    for (i, w) in warehouses.iter().enumerate() {
        if let Some(bad) = w
            .postcode_ranges
            .iter()
            .find(|r| PostcodeRange::parse(r).is_none())
        {
            return Err(LabelError::Warehouses(format!(
                "returns.warehouses[{i}].postcode_ranges: `{bad}` is not a range like 900-961"
            )));
        }
    }
    if !warehouses.is_empty() && warehouses.iter().filter(|w| w.default).count() != 1 {
        return Err(LabelError::Warehouses(
            "returns.warehouses: exactly one warehouse must be the default".into(),
        ));
    }
    Ok(())
}

/// The warehouse for a destination: the narrowest postcode range that contains the postcode,
/// else one serving the state, else the default.
pub fn choose<'a>(
    warehouses: &'a [Warehouse],
    country: &str,
    state: Option<&str>,
    postal_code: Option<&str>,
) -> Option<&'a Warehouse> {
    let postal_code = postal_code.unwrap_or_default();
    let by_range = warehouses
        .iter()
        .filter(|w| w.country == country)
        .flat_map(|w| {
            w.postcode_ranges
                .iter()
                .filter_map(move |r| Some((w, PostcodeRange::parse(r)?)))
        })
        .filter(|(_, r)| r.contains(postal_code))
        .min_by_key(|(_, r)| r.narrowness())
        .map(|(w, _)| w);
    by_range
        .or_else(|| {
            let state = state?;
            warehouses.iter().find(|w| {
                w.country == country && w.states.iter().any(|s| s.eq_ignore_ascii_case(state))
            })
        })
        .or_else(|| warehouses.iter().find(|w| w.default))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(w: Option<&Warehouse>) -> &str {
        w.map_or("", |w| w.code.as_str())
    }

    #[test]
    fn states_postcode_ranges_overlaps_and_the_default() {
        let mut ws = crate::settings::Settings::default().returns.warehouses;
        assert_eq!(
            code(choose(&ws, "US", Some("CA"), Some("90001"))),
            "US-WEST"
        );
        assert_eq!(
            code(choose(&ws, "US", Some("NY"), Some("10001"))),
            "US-EAST"
        );
        // By state when the postcode is in no range.
        assert_eq!(
            code(choose(&ws, "US", Some("CO"), Some("80202"))),
            "US-WEST"
        );
        // Nothing serves Texas: the default.
        assert_eq!(
            code(choose(&ws, "US", Some("TX"), Some("75001"))),
            "US-EAST"
        );
        // Overlap: a narrower range (a Chicago hub for 606-608) beats the wide one.
        ws.push(Warehouse {
            code: "US-CHI".into(),
            postcode_ranges: vec!["606-608".into()],
            states: vec![],
            default: false,
            ..ws[0].clone()
        });
        ws[0].postcode_ranges.push("400-699".into());
        assert_eq!(code(choose(&ws, "US", Some("IL"), Some("60601"))), "US-CHI");
        assert_eq!(
            code(choose(&ws, "US", Some("IL"), Some("61000"))),
            "US-EAST"
        );
        // A postcode range beats a state match.
        assert_eq!(code(choose(&ws, "US", Some("NV"), Some("60601"))), "US-CHI");
    }

    #[test]
    fn bad_configuration_is_named() {
        let mut ws = crate::settings::Settings::default().returns.warehouses;
        ws[1].postcode_ranges.push("90-961".into());
        assert!(validate(&ws).unwrap_err().to_string().contains("90-961"));
        ws[1].postcode_ranges.pop();
        ws[1].default = true;
        assert!(validate(&ws).unwrap_err().to_string().contains("default"));
    }
}
