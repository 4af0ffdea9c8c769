//! Carrier identifiers: one enum, spelled in configuration, URLs, metrics and stored rows as the
//! lower-case names below.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CarrierId {
    Sandbox,
    Fedex,
    DhlExpress,
    Ups,
    Usps,
    SfExpress,
}

impl CarrierId {
    pub const ALL: [CarrierId; 6] = [
        Self::Sandbox,
        Self::Fedex,
        Self::DhlExpress,
        Self::Ups,
        Self::Usps,
        Self::SfExpress,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Fedex => "fedex",
            Self::DhlExpress => "dhl_express",
            Self::Ups => "ups",
            Self::Usps => "usps",
            Self::SfExpress => "sf_express",
        }
    }

    /// Whether the carrier prints the label itself (a label shipgate draws is refused at its
    /// counters); the sandbox and SF Express (routing data only) leave it to shipgate.
    pub const fn prints_labels(self) -> bool {
        !matches!(self, Self::Sandbox | Self::SfExpress)
    }
}

impl std::fmt::Display for CarrierId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown carrier `{0}`")]
pub struct UnknownCarrier(pub String);

impl std::str::FromStr for CarrierId {
    type Err = UnknownCarrier;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCarrier(s.to_owned()))
    }
}

impl PartialEq<str> for CarrierId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_serde() {
        for id in CarrierId::ALL {
            assert_eq!(id.as_str().parse::<CarrierId>().unwrap(), id);
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{}\"", id.as_str()));
        }
        assert!("pigeon".parse::<CarrierId>().is_err());
    }
}
