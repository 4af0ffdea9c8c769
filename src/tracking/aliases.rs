//! Last-mile carrier names: carriers write them every which way (`美国邮政`, `United States
//! Postal Service`, `usps`). The configured table maps them onto a closed list with exact case;
//! a name that is not in it is kept as sent and flagged, never guessed.

use std::collections::{BTreeMap, HashMap};

/// A table that does not map every name to one carrier.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AliasError(String);

/// What a reported name became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The normalized name, or the reported one (trimmed) when unknown.
    pub name: String,
    pub known: bool,
}

#[derive(Debug, Clone)]
pub struct Aliases {
    by_key: HashMap<String, String>,
}

/// Case, spacing and punctuation do not tell carriers apart: `U.S. Postal-Service` = `us postal service`.
fn key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut space = false;
    for c in name.trim().chars() {
        if c.is_alphanumeric() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.extend(c.to_lowercase());
        } else if c.is_whitespace() || c == '-' || c == '_' {
            space = true;
        }
    }
    out
}

impl Aliases {
    pub fn new(table: &BTreeMap<String, Vec<String>>) -> Result<Self, AliasError> {
        let mut by_key = HashMap::new();
        for (name, aliases) in table {
            if name.trim().is_empty() {
                return Err(AliasError("a normalized name is empty".into()));
            }
            for alias in std::iter::once(name).chain(aliases) {
                let k = key(alias);
                if k.is_empty() {
                    return Err(AliasError(format!(
                        "{name}: alias `{alias}` has no letters or digits"
                    )));
                }
                if let Some(other) = by_key.insert(k, name.clone())
                    && other != *name
                {
                    return Err(AliasError(format!(
                        "`{alias}` names both {other} and {name}"
                    )));
                }
            }
        }
        Ok(Self { by_key })
    }

    pub fn normalize(&self, reported: &str) -> Normalized {
        match self.by_key.get(&key(reported)) {
            Some(name) => Normalized {
                name: name.clone(),
                known: true,
            },
            None => Normalized {
                name: reported.trim().to_owned(),
                known: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_with_exact_case() {
        let a = Aliases::new(
            &crate::settings::Settings::default()
                .tracking
                .last_mile_carriers,
        )
        .unwrap();
        for reported in [
            "美国邮政",
            "United States Postal Service",
            "usps",
            "USPS",
            " U.S. Postal Service ",
        ] {
            assert_eq!(a.normalize(reported).name, "USPS", "{reported}");
        }
        assert_eq!(a.normalize("fedex").name, "FedEx");
        assert_eq!(a.normalize("ONTRAC").name, "OnTrac");
        assert_eq!(a.normalize("uniuni").name, "UniUni");
        assert_eq!(a.normalize("Gofo").name, "GOFO");
        let unknown = a.normalize(" Pigeon Post ");
        assert_eq!(unknown.name, "Pigeon Post");
        assert!(!unknown.known);
    }

    #[test]
    fn an_alias_naming_two_carriers_is_refused() {
        let mut t = crate::settings::Settings::default()
            .tracking
            .last_mile_carriers;
        t.insert("Other".into(), vec!["usps".into()]);
        let err = Aliases::new(&t).unwrap_err().to_string();
        assert!(err.contains("Other") && err.contains("USPS"), "{err}");
    }
}
