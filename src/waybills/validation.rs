//! Turns a [`CreateWaybillRequest`] into canonical model values, or into field-level errors
//! (all of them at once, with JSON paths such as `consignee.postalCode`).

use super::request::{AddressInput, CreateWaybillRequest, CustomsInput, ParcelInput};
use crate::fields::FieldError;
use carriers::{Address, Customs, CustomsItem, Parcel};
use iso_currency::Currency;
use isocountry::CountryCode;
use rust_decimal::Decimal;
use std::str::FromStr;

pub const MAX_PARCELS: usize = 50;
pub const MAX_CUSTOMS_ITEMS: usize = 100;
pub const MAX_WEIGHT_GRAMS: i64 = 1_000_000;
pub const MAX_QUANTITY: i64 = 100_000;
/// Most a customs line may weigh in all (unit weight × quantity): 10 t.
pub const MAX_LINE_WEIGHT_GRAMS: i64 = 10_000_000;
pub const MAX_DIMENSION_CM: f64 = 1_000.0;

/// Countries whose addresses carry no postal code.
const NO_POSTAL_CODE: &[&str] = &[
    "AE", "AG", "AO", "AW", "BF", "BI", "BJ", "BO", "BS", "BW", "BZ", "CD", "CF", "CG", "CI", "CK",
    "CM", "DJ", "DM", "ER", "FJ", "GA", "GD", "GH", "GM", "GQ", "GY", "HK", "JM", "KI", "KM", "KN",
    "KP", "LY", "ML", "MO", "MR", "MW", "NR", "NU", "QA", "RW", "SB", "SC", "SL", "SO", "SR", "SS",
    "ST", "SY", "TD", "TF", "TG", "TK", "TL", "TO", "TT", "TV", "UG", "VU", "YE", "ZW",
];

const INCOTERMS: &[&str] = &[
    "EXW", "FCA", "FAS", "FOB", "CFR", "CIF", "CPT", "CIP", "DAP", "DPU", "DDP", "DDU",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelEncoding {
    Url,
    Base64,
}

/// A request that passed validation, in canonical form.
#[derive(Debug, Clone)]
pub struct ValidRequest {
    pub reference_number: String,
    pub channel: String,
    pub label_encoding: LabelEncoding,
    pub shipper: Address,
    pub consignee: Address,
    pub parcels: Vec<Parcel>,
    pub customs: Option<Customs>,
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: impl Into<String>, msg: impl Into<String>) {
        self.0.push(FieldError::new(field, msg));
    }

    /// A trimmed string that must be present, non-empty and at most `max` characters.
    fn required(&mut self, field: &str, value: Option<&String>, max: usize) -> String {
        match value.map(|v| v.trim()) {
            None | Some("") => {
                self.add(field, "is required");
                String::new()
            }
            Some(v) => {
                self.max_len(field, v, max);
                v.to_owned()
            }
        }
    }

    /// A trimmed optional string; blank counts as absent.
    fn optional(&mut self, field: &str, value: Option<&String>, max: usize) -> Option<String> {
        let v = value.map(|v| v.trim()).filter(|v| !v.is_empty())?;
        self.max_len(field, v, max);
        Some(v.to_owned())
    }

    fn max_len(&mut self, field: &str, value: &str, max: usize) {
        if value.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
        }
        if value.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
        }
    }

    fn country(&mut self, field: &str, value: Option<&String>) -> String {
        let code = self.required(field, value, 2).to_ascii_uppercase();
        if !code.is_empty() && CountryCode::for_alpha2(&code).is_err() {
            self.add(field, "must be an ISO 3166-1 alpha-2 country code");
        }
        code
    }
}

pub fn validate(req: &CreateWaybillRequest) -> Result<ValidRequest, Vec<FieldError>> {
    let mut e = Errors::default();
    let reference_number = e.required("referenceNumber", req.reference_number.as_ref(), 64);
    if !reference_number
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        e.add(
            "referenceNumber",
            "may contain only letters, digits and - _ . :",
        );
    }
    let channel = e
        .required("channel", req.channel.as_ref(), 64)
        .to_ascii_uppercase();
    let label_encoding = match req.label_encoding.as_deref() {
        None | Some("url") => LabelEncoding::Url,
        Some("base64") => LabelEncoding::Base64,
        Some(_) => {
            e.add("labelEncoding", "must be `url` or `base64`");
            LabelEncoding::Url
        }
    };
    let shipper = address(&mut e, "shipper", req.shipper.as_ref(), false);
    let consignee = address(&mut e, "consignee", req.consignee.as_ref(), true);
    let parcels = parcels(&mut e, req.parcels.as_deref());
    let international = !shipper.country.is_empty()
        && !consignee.country.is_empty()
        && shipper.country != consignee.country;
    let customs = match (&req.customs, international) {
        (Some(c), _) => Some(customs(&mut e, c)),
        (None, true) => {
            e.add(
                "customs",
                "is required when shipper and consignee countries differ",
            );
            None
        }
        (None, false) => None,
    };
    if e.0.is_empty() {
        Ok(ValidRequest {
            reference_number,
            channel,
            label_encoding,
            shipper,
            consignee,
            parcels,
            customs,
        })
    } else {
        Err(e.0)
    }
}

fn address(e: &mut Errors, at: &str, input: Option<&AddressInput>, is_consignee: bool) -> Address {
    let Some(a) = input else {
        e.add(at, "is required");
        return Address {
            name: String::new(),
            company: None,
            phone: None,
            email: None,
            street1: String::new(),
            street2: None,
            city: String::new(),
            state: None,
            postal_code: None,
            country: String::new(),
        };
    };
    let f = |name: &str| format!("{at}.{name}");
    let country = e.country(&f("country"), a.country.as_ref());
    let phone = e.optional(&f("phone"), a.phone.as_ref(), 32);
    // The platform may send a random or empty consignee phone; a shipper needs a reachable one.
    if !is_consignee && phone.is_none() {
        e.add(f("phone"), "is required");
    }
    if let Some(p) = &phone
        && !p
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')' | '.'))
    {
        e.add(f("phone"), "may contain only digits, spaces and + - ( ) .");
    }
    let email = e.optional(&f("email"), a.email.as_ref(), 254);
    if let Some(m) = &email
        && !m
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
    {
        e.add(f("email"), "is not an e-mail address");
    }
    let state = e.optional(&f("state"), a.state.as_ref(), 100);
    if matches!(country.as_str(), "US" | "CA") && state.is_none() {
        e.add(f("state"), "is required for this country");
    }
    let postal_code = postal_code(e, &f("postalCode"), a.postal_code.as_ref(), &country);
    Address {
        name: e.required(&f("name"), a.name.as_ref(), 100),
        company: e.optional(&f("company"), a.company.as_ref(), 100),
        phone,
        email,
        street1: e.required(&f("street1"), a.street1.as_ref(), 200),
        street2: e.optional(&f("street2"), a.street2.as_ref(), 200),
        city: e.required(&f("city"), a.city.as_ref(), 100),
        state: state.map(|s| {
            if s.len() == 2 {
                s.to_ascii_uppercase()
            } else {
                s
            }
        }),
        postal_code,
        country,
    }
}

fn postal_code(
    e: &mut Errors,
    field: &str,
    value: Option<&String>,
    country: &str,
) -> Option<String> {
    let code = e.optional(field, value, 20).map(|c| c.to_ascii_uppercase());
    let Some(code) = code else {
        if !country.is_empty() && !NO_POSTAL_CODE.contains(&country) {
            e.add(field, "is required for this country");
        }
        return None;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let ok = match country {
        "US" => {
            digits(&code, 5)
                || (code.len() == 10
                    && digits(&code[..5], 5)
                    && &code[5..6] == "-"
                    && digits(&code[6..], 4))
        }
        "CN" | "IN" | "SG" | "RU" => digits(&code, 6),
        "DE" | "FR" | "ES" | "IT" | "MX" => digits(&code, 5),
        "AU" | "DK" | "NO" | "CH" | "AT" | "BE" | "NZ" => digits(&code, 4),
        "JP" => {
            digits(&code, 7)
                || (code.len() == 8
                    && digits(&code[..3], 3)
                    && &code[3..4] == "-"
                    && digits(&code[4..], 4))
        }
        "CA" => {
            let c: Vec<char> = code.chars().filter(|c| *c != ' ').collect();
            c.len() == 6
                && c.iter().enumerate().all(|(i, ch)| {
                    if i % 2 == 0 {
                        ch.is_ascii_alphabetic()
                    } else {
                        ch.is_ascii_digit()
                    }
                })
        }
        _ => code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-'),
    };
    if !ok {
        e.add(field, format!("is not a valid postal code for {country}"));
    }
    Some(code)
}

fn parcels(e: &mut Errors, input: Option<&[ParcelInput]>) -> Vec<Parcel> {
    let input = match input {
        None | Some([]) => {
            e.add("parcels", "at least one parcel is required");
            return Vec::new();
        }
        Some(p) if p.len() > MAX_PARCELS => {
            e.add("parcels", format!("at most {MAX_PARCELS} parcels"));
            return Vec::new();
        }
        Some(p) => p,
    };
    input
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let weight = weight(
                e,
                &format!("parcels[{i}].weightGrams"),
                p.weight_grams,
                true,
            );
            let mut dim = |name: &str, v: Option<f64>| -> Option<f64> {
                // Zero or null means "not measured": the platform may leave dimensions empty.
                let v = v.filter(|v| *v != 0.0)?;
                if !(v > 0.0 && v <= MAX_DIMENSION_CM) {
                    e.add(
                        format!("parcels[{i}].{name}"),
                        format!("must be greater than 0 and at most {MAX_DIMENSION_CM}"),
                    );
                }
                Some(v)
            };
            Parcel {
                weight_grams: weight.unwrap_or(0),
                length_cm: dim("lengthCm", p.length_cm),
                width_cm: dim("widthCm", p.width_cm),
                height_cm: dim("heightCm", p.height_cm),
            }
        })
        .collect()
}

fn weight(e: &mut Errors, field: &str, value: Option<i64>, required: bool) -> Option<u32> {
    match value {
        None if required => {
            e.add(field, "is required");
            None
        }
        None => None,
        Some(w) if w <= 0 || w > MAX_WEIGHT_GRAMS => {
            e.add(
                field,
                format!("must be greater than 0 and at most {MAX_WEIGHT_GRAMS}"),
            );
            None
        }
        Some(w) => u32::try_from(w).ok(),
    }
}

fn customs(e: &mut Errors, c: &CustomsInput) -> Customs {
    let currency_code = e
        .required("customs.currency", c.currency.as_ref(), 3)
        .to_ascii_uppercase();
    let currency = Currency::from_code(&currency_code);
    if !currency_code.is_empty() && currency.is_none() {
        e.add("customs.currency", "must be an ISO 4217 currency code");
    }
    let incoterm = e
        .optional("customs.incoterm", c.incoterm.as_ref(), 3)
        .map(|t| t.to_ascii_uppercase());
    if let Some(t) = &incoterm
        && !INCOTERMS.contains(&t.as_str())
    {
        e.add(
            "customs.incoterm",
            format!("must be one of {}", INCOTERMS.join(", ")),
        );
    }
    let items = match c.items.as_deref() {
        None | Some([]) => {
            e.add("customs.items", "at least one item is required");
            &[][..]
        }
        Some(items) if items.len() > MAX_CUSTOMS_ITEMS => {
            e.add(
                "customs.items",
                format!("at most {MAX_CUSTOMS_ITEMS} items"),
            );
            &[][..]
        }
        Some(items) => items,
    };
    let exponent = currency.and_then(Currency::exponent).unwrap_or(2);
    let items = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let f = |name: &str| format!("customs.items[{i}].{name}");
            let hs_code = e
                .optional(&f("hsCode"), item.hs_code.as_ref(), 14)
                .map(|h| h.replace('.', ""));
            if let Some(h) = &hs_code
                && !(h.len() >= 6 && h.len() <= 10 && h.bytes().all(|b| b.is_ascii_digit()))
            {
                e.add(f("hsCode"), "must be 6 to 10 digits");
            }
            let quantity = match item.quantity {
                Some(q) if q > 0 && q <= MAX_QUANTITY => q as u32,
                Some(_) => {
                    e.add(
                        f("quantity"),
                        format!("must be greater than 0 and at most {MAX_QUANTITY}"),
                    );
                    0
                }
                None => {
                    e.add(f("quantity"), "is required");
                    0
                }
            };
            let unit_value = e.required(&f("unitValue"), item.unit_value.as_ref(), 20);
            if !unit_value.is_empty() {
                money(e, &f("unitValue"), &unit_value, exponent);
            }
            let origin_country = item
                .origin_country
                .as_ref()
                .map(|_| e.country(&f("originCountry"), item.origin_country.as_ref()));
            let weight_grams = weight(e, &f("weightGrams"), item.weight_grams, false);
            if let Some(w) = weight_grams
                && i64::from(w) * i64::from(quantity) > MAX_LINE_WEIGHT_GRAMS
            {
                e.add(
                    f("weightGrams"),
                    format!("times quantity must be at most {MAX_LINE_WEIGHT_GRAMS} grams"),
                );
            }
            CustomsItem {
                description: e.required(&f("description"), item.description.as_ref(), 200),
                hs_code,
                quantity,
                unit_value,
                weight_grams,
                origin_country,
            }
        })
        .collect();
    Customs {
        currency: currency_code,
        incoterm,
        items,
    }
}

/// A money amount: a plain decimal string, not negative, with no more decimals than the currency has.
fn money(e: &mut Errors, field: &str, value: &str, exponent: u16) {
    let plain = value.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    match Decimal::from_str(value) {
        Ok(d) if plain && !d.is_sign_negative() && d.scale() <= u32::from(exponent) => {}
        Ok(_) if plain => e.add(
            field,
            format!("must have at most {exponent} decimal places"),
        ),
        _ => e.add(
            field,
            "must be a non-negative decimal string such as \"9.90\"",
        ),
    }
}

#[cfg(test)]
mod tests;
