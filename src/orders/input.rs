//! An order as it comes in (from the API, a pull connector or a channel webhook), its checks
//! and its normalized form: what is hashed to tell a changed order from a repeated one.

use crate::fields::FieldError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::str::FromStr;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderInput {
    /// The sales channel (`shopify`, `amazon`, `erp`, ...): with `shop` and `externalId` the
    /// order's natural key.
    pub channel: String,
    pub shop: String,
    pub external_id: String,
    /// What the seller and buyer call it (`#1001`).
    #[serde(default)]
    pub order_number: Option<String>,
    /// The channel's last update (RFC 3339): an older copy never replaces a newer one.
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub placed_at: Option<String>,
    #[serde(default)]
    pub paid_at: Option<String>,
    /// `standard`, `express`, ... (the shipping rules read it).
    #[serde(default)]
    pub service_level: Option<String>,
    pub currency: String,
    /// The order's total as a decimal string in `currency`.
    pub total: String,
    #[serde(default)]
    pub buyer: Buyer,
    pub ship_to: ShipTo,
    pub lines: Vec<LineInput>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Buyer {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShipTo {
    pub name: String,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    pub street1: String,
    #[serde(default)]
    pub street2: Option<String>,
    pub city: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    pub country: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineInput {
    /// The tenant's SKU, or (with `identifier`) the channel's id mapped to one.
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    pub quantity: i64,
    /// Price of one unit, a decimal string in the order's currency.
    pub unit_price: String,
    #[serde(default)]
    pub weight_grams: Option<u64>,
    #[serde(default)]
    pub hs_code: Option<String>,
    #[serde(default)]
    pub origin_country: Option<String>,
    /// The channel's id of the line (what a shipment confirmation names).
    #[serde(default)]
    pub external_line_id: Option<String>,
}

/// Epoch milliseconds of an RFC 3339 time.
pub(crate) fn millis(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

fn trimmed(s: &mut String) {
    let t = s.trim();
    if t.len() != s.len() {
        *s = t.to_owned();
    }
}

fn trimmed_opt(s: &mut Option<String>) {
    if let Some(v) = s {
        trimmed(v);
        if v.is_empty() {
            *s = None;
        }
    }
}

/// A money amount in `currency`: a decimal with no more places than the currency's minor unit.
fn money(
    field: &str,
    value: &str,
    currency: Option<iso_currency::Currency>,
) -> Result<String, FieldError> {
    let d = Decimal::from_str(value.trim())
        .map_err(|_| FieldError::new(field, "must be a decimal string such as \"9.90\""))?;
    if d.is_sign_negative() {
        return Err(FieldError::new(field, "must not be negative"));
    }
    let places = currency.and_then(|c| c.exponent()).unwrap_or(2);
    if d.normalize().scale() > u32::from(places) {
        return Err(FieldError::new(
            field,
            format!("has more decimal places than the currency's {places}"),
        ));
    }
    Ok(d.normalize().to_string())
}

impl OrderInput {
    /// Checks the order and puts it in normal form (trimmed text, upper-case codes, amounts in
    /// their shortest decimal form); each problem named by its field under `at`.
    pub fn normalize(mut self, at: &str) -> Result<Self, Vec<FieldError>> {
        let mut e = Vec::new();
        let f = |name: &str| format!("{at}{name}");
        for (name, v, max) in [
            ("channel", &mut self.channel, 32),
            ("shop", &mut self.shop, 128),
            ("externalId", &mut self.external_id, 128),
        ] {
            trimmed(v);
            if v.is_empty() || v.len() > max || v.chars().any(char::is_control) {
                e.push(FieldError::new(
                    f(name),
                    format!("must be 1-{max} characters"),
                ));
            }
        }
        self.channel = self.channel.to_ascii_lowercase();
        for (name, v) in [
            ("updatedAt", &mut self.updated_at),
            ("placedAt", &mut self.placed_at),
            ("paidAt", &mut self.paid_at),
        ] {
            trimmed_opt(v);
            if let Some(t) = v.as_deref()
                && millis(t).is_none()
            {
                e.push(FieldError::new(f(name), "must be an RFC 3339 time"));
            }
        }
        trimmed_opt(&mut self.order_number);
        trimmed_opt(&mut self.service_level);
        self.service_level = self.service_level.map(|s| s.to_ascii_lowercase());
        self.currency = self.currency.trim().to_ascii_uppercase();
        let currency = iso_currency::Currency::from_code(&self.currency);
        if currency.is_none() {
            e.push(FieldError::new(f("currency"), "must be an ISO 4217 code"));
        }
        match money(&f("total"), &self.total, currency) {
            Ok(t) => self.total = t,
            Err(err) => e.push(err),
        }
        let s = &mut self.ship_to;
        for v in [&mut s.name, &mut s.street1, &mut s.city, &mut s.country] {
            trimmed(v);
        }
        for v in [
            &mut s.company,
            &mut s.phone,
            &mut s.email,
            &mut s.street2,
            &mut s.state,
            &mut s.postal_code,
        ] {
            trimmed_opt(v);
        }
        s.country = s.country.to_ascii_uppercase();
        if isocountry::CountryCode::for_alpha2(&s.country).is_err() {
            e.push(FieldError::new(
                f("shipTo.country"),
                "must be an ISO 3166-1 alpha-2 country code",
            ));
        }
        for (name, v) in [
            ("shipTo.name", &s.name),
            ("shipTo.street1", &s.street1),
            ("shipTo.city", &s.city),
        ] {
            if v.len() > 200 {
                e.push(FieldError::new(f(name), "must be at most 200 characters"));
            }
        }
        trimmed_opt(&mut self.buyer.name);
        trimmed_opt(&mut self.buyer.email);
        trimmed_opt(&mut self.buyer.phone);
        if self.lines.is_empty() || self.lines.len() > 500 {
            e.push(FieldError::new(f("lines"), "must have 1-500 lines"));
        }
        for (i, line) in self.lines.iter_mut().enumerate() {
            let lf = |name: &str| format!("{at}lines[{i}].{name}");
            trimmed_opt(&mut line.sku);
            trimmed_opt(&mut line.identifier);
            trimmed_opt(&mut line.title);
            trimmed_opt(&mut line.hs_code);
            if line.sku.is_none() && line.identifier.is_none() {
                e.push(FieldError::new(
                    lf("sku"),
                    "a line needs `sku` or `identifier`",
                ));
            }
            for v in [&line.sku, &line.identifier].into_iter().flatten() {
                if v.len() > 64 || v.chars().any(char::is_control) {
                    e.push(FieldError::new(lf("sku"), "must be 1-64 characters"));
                }
            }
            if !(1..=1_000_000).contains(&line.quantity) {
                e.push(FieldError::new(
                    lf("quantity"),
                    "must be a whole number from 1 to 1000000",
                ));
            }
            match money(&lf("unitPrice"), &line.unit_price, currency) {
                Ok(p) => line.unit_price = p,
                Err(err) => e.push(err),
            }
            if line.weight_grams.is_some_and(|w| w == 0 || w > 1_000_000) {
                e.push(FieldError::new(
                    lf("weightGrams"),
                    "must be from 1 to 1000000",
                ));
            }
            if let Some(o) = &mut line.origin_country {
                *o = o.trim().to_ascii_uppercase();
                if isocountry::CountryCode::for_alpha2(o).is_err() {
                    e.push(FieldError::new(
                        lf("originCountry"),
                        "must be an ISO 3166-1 alpha-2 country code",
                    ));
                }
            }
        }
        if e.is_empty() { Ok(self) } else { Err(e) }
    }

    /// Digest of the content (everything but the channel's update time): a repeated copy
    /// hashes the same, a changed one does not.
    pub(crate) fn content_hash(&self) -> String {
        let mut content = self.clone();
        content.updated_at = None;
        let text = serde_json::to_string(&content).unwrap_or_default();
        hex::encode(&Sha256::digest(text.as_bytes())[..16])
    }

    /// Digest of the normalized consignee address: orders with the same one may merge.
    pub(crate) fn consignee_key(&self) -> String {
        let s = &self.ship_to;
        let norm = |v: &str| {
            v.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        };
        let text = [
            norm(&s.name),
            norm(&s.street1),
            norm(s.street2.as_deref().unwrap_or("")),
            norm(&s.city),
            norm(s.state.as_deref().unwrap_or("")),
            norm(s.postal_code.as_deref().unwrap_or("")),
            s.country.clone(),
        ]
        .join("|");
        hex::encode(&Sha256::digest(text.as_bytes())[..16])
    }

    /// Digest of buyer, address and amount: the same purchase placed through two channels.
    pub(crate) fn purchase_key(&self) -> String {
        let buyer = self
            .buyer
            .email
            .as_deref()
            .or(self.buyer.name.as_deref())
            .unwrap_or(&self.ship_to.name)
            .to_lowercase();
        let text = format!(
            "{}|{}|{}|{}",
            buyer,
            self.consignee_key(),
            self.currency,
            self.total
        );
        hex::encode(&Sha256::digest(text.as_bytes())[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> OrderInput {
        OrderInput {
            channel: "ERP".into(),
            shop: "main".into(),
            external_id: " PO-1 ".into(),
            currency: "usd".into(),
            total: "19.80".into(),
            ship_to: ShipTo {
                name: "Ada".into(),
                street1: "1 Main St".into(),
                city: "Newark".into(),
                state: Some("NJ".into()),
                postal_code: Some("07102".into()),
                country: "us".into(),
                ..ShipTo::default()
            },
            lines: vec![LineInput {
                sku: Some("PB-10K".into()),
                quantity: 2,
                unit_price: "9.9".into(),
                ..LineInput::default()
            }],
            ..OrderInput::default()
        }
    }

    #[test]
    fn normal_form_makes_equal_content_hash_equal() {
        let a = order().normalize("").unwrap();
        let mut b = order();
        b.total = "19.8".into();
        b.lines[0].unit_price = "9.90".into();
        b.updated_at = Some("2026-12-01T10:00:00Z".into());
        let b = b.normalize("").unwrap();
        assert_eq!(a.external_id, "PO-1");
        assert_eq!(a.channel, "erp");
        assert_eq!(a.content_hash(), b.content_hash());
        let mut c = order();
        c.lines[0].quantity = 3;
        assert_ne!(a.content_hash(), c.normalize("").unwrap().content_hash());
    }

    #[test]
    fn amounts_respect_the_currency_minor_unit() {
        let mut o = order();
        o.currency = "JPY".into();
        o.total = "1980.5".into();
        let errors = o.normalize("orders[0].").unwrap_err();
        assert!(
            errors.iter().any(|e| e.field == "orders[0].total"),
            "{errors:?}"
        );
        let mut o = order();
        o.lines[0].unit_price = "-1".into();
        let errors = o.normalize("").unwrap_err();
        assert!(errors.iter().any(|e| e.field == "lines[0].unitPrice"));
    }

    #[test]
    fn addresses_that_differ_only_in_case_and_punctuation_share_a_key() {
        let a = order().normalize("").unwrap();
        let mut b = order();
        b.ship_to.street1 = "1 MAIN ST.".into();
        b.ship_to.name = "ada".into();
        assert_eq!(a.consignee_key(), b.normalize("").unwrap().consignee_key());
    }
}
