//! The canonical shipment every carrier adapter receives, already validated by the gateway.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub name: String,
    pub company: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub street1: String,
    pub street2: Option<String>,
    pub city: String,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

/// Personal data stays out of logs: phone, e-mail and street lines are masked.
impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Address")
            .field("name", &mask(Some(&self.name)))
            .field("phone", &mask(self.phone.as_deref()))
            .field("street1", &mask(Some(&self.street1)))
            .field("city", &self.city)
            .field("state", &self.state)
            .field("postal_code", &self.postal_code)
            .field("country", &self.country)
            .finish_non_exhaustive()
    }
}

/// Keeps the first and last character of a value and hides the rest (`+1***7`).
pub fn mask(value: Option<&str>) -> String {
    match value {
        None => String::new(),
        Some(v) => {
            let chars: Vec<char> = v.chars().collect();
            match chars.len() {
                0 => String::new(),
                1..=3 => "***".to_owned(),
                n => format!("{}***{}", chars[0], chars[n - 1]),
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parcel {
    pub weight_grams: u32,
    pub length_cm: Option<f64>,
    pub width_cm: Option<f64>,
    pub height_cm: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomsItem {
    pub description: String,
    pub hs_code: Option<String>,
    pub quantity: u32,
    /// Decimal string in `Customs::currency` (`"9.90"`).
    pub unit_value: String,
    pub weight_grams: Option<u32>,
    pub origin_country: Option<String>,
}

impl CustomsItem {
    /// Weight of the whole line (unit weight × quantity), computed wide: it cannot wrap.
    pub fn line_weight_grams(&self) -> u64 {
        u64::from(self.weight_grams.unwrap_or(0)) * u64::from(self.quantity)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customs {
    pub currency: String,
    pub incoterm: Option<String>,
    pub items: Vec<CustomsItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shipment {
    /// The seller's reference number, printed on labels and sent as the customer reference.
    pub reference_number: String,
    /// The gateway's key for this attempt chain; carriers store it so we can find the shipment again.
    pub idempotency_key: String,
    /// The carrier's own service code for the requested channel.
    pub service: String,
    pub shipper: Address,
    pub consignee: Address,
    pub parcels: Vec<Parcel>,
    pub customs: Option<Customs>,
}

impl Shipment {
    pub fn total_weight_grams(&self) -> u64 {
        self.parcels.iter().map(|p| u64::from(p.weight_grams)).sum()
    }
}

/// The carrier's quoted price for a shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// Decimal string (`"17.10"`).
    pub amount: String,
    pub currency: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelFormat {
    Pdf,
    Gif,
    Png,
    Zpl,
}

impl LabelFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "PDF" => Some(Self::Pdf),
            "GIF" => Some(Self::Gif),
            "PNG" => Some(Self::Png),
            "ZPL" | "ZPLII" => Some(Self::Zpl),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Gif => "gif",
            Self::Png => "png",
            Self::Zpl => "zpl",
        }
    }
}

/// A label document as the carrier returned it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub format: LabelFormat,
    #[serde(skip)]
    pub content: Vec<u8>,
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Label({:?}, {} bytes)", self.format, self.content.len())
    }
}

/// A shipment the carrier has created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub waybill_number: String,
    pub tracking_number: String,
    pub charge: Option<Charge>,
    /// The label the carrier printed, if it returned one.
    #[serde(skip)]
    pub label: Option<Label>,
    /// Routing data for printing our own label when the carrier returns no image (SF Express).
    pub routing: Option<serde_json::Value>,
}

impl Created {
    pub fn new(waybill_number: impl Into<String>, tracking_number: impl Into<String>) -> Self {
        Self {
            waybill_number: waybill_number.into(),
            tracking_number: tracking_number.into(),
            charge: None,
            label: None,
            routing: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_weights_do_not_wrap() {
        let item = CustomsItem {
            description: "Bolts".into(),
            hs_code: None,
            quantity: u32::MAX,
            unit_value: "1.00".into(),
            weight_grams: Some(u32::MAX),
            origin_country: None,
        };
        assert_eq!(
            item.line_weight_grams(),
            u64::from(u32::MAX) * u64::from(u32::MAX)
        );
    }
}
