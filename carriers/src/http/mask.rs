//! What carrier traffic may show in logs: credentials, tokens, personal data and label blobs
//! are masked; everything else (codes, numbers, statuses) stays readable for debugging.

use super::{Body, RawResponse};
use serde_json::Value;

/// Key fragments (lower case) whose values are hidden.
const SECRET_KEYS: &[&str] = &[
    "phone",
    "street",
    "address1",
    "address2",
    "addressline",
    "email",
    "personname",
    "name",
    "token",
    "secret",
    "password",
    "authorization",
    "client_id",
    "checkword",
    "verifycode",
    "encodedlabel",
    "graphicimage",
    "htmlimage",
    "content",
    "labelimage",
    "mobile",
    "tel",
    "contact",
    "account",
];

fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    // Codes and descriptions are safe even though they end in "name" or contain "content".
    if key.ends_with("code") || key == "servicename" || key == "contenttype" {
        return false;
    }
    SECRET_KEYS.iter().any(|s| key.contains(s))
}

pub fn json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    // Under a secret key everything is hidden, at every depth (UPS
                    // `Phone.Number`, FedEx `accountNumber.value`).
                    let masked = if is_secret(k) { hidden(v) } else { json(v) };
                    (k.clone(), masked)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        other => other.clone(),
    }
}

/// Every leaf of `value` replaced by `***` (its shape kept, for debugging).
fn hidden(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), hidden(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(hidden).collect()),
        Value::Null => Value::Null,
        _ => Value::String("***".into()),
    }
}

pub fn request_body(body: &Body) -> String {
    match body {
        Body::Empty => String::new(),
        Body::Json(v) => json(v).to_string(),
        Body::Form(fields) => fields
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret(k) || k == "xml" {
                    format!("<{} bytes>", v.len())
                } else {
                    v.clone()
                };
                format!("{k}={shown}")
            })
            .collect::<Vec<_>>()
            .join("&"),
    }
}

pub fn response_body(res: &RawResponse) -> String {
    match serde_json::from_slice::<Value>(&res.body) {
        Ok(v) => json(&v).to_string(),
        Err(_) => format!("<{} bytes>", res.body.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json as j;

    #[test]
    fn personal_data_and_secrets_are_hidden_codes_are_not() {
        let masked = json(&j!({
            "contact": {"personName": "Jane", "phoneNumber": "+1 555"},
            "address": {"streetLines": ["742 Evergreen"], "postalCode": "90001", "countryCode": "US"},
            "access_token": "abc", "errors": [{"code": "X.Y", "message": "bad"}],
            "encodedLabel": "JVBER...",
            "ShipTo": {"Phone": {"Number": "2135550147", "Extension": "12"}},
            "shipper": {"accountNumber": {"value": "740561073"}},
            "accounts": [{"typeCode": "shipper", "number": "123456789"}]
        }));
        let text = masked.to_string();
        for secret in [
            "Jane",
            "+1 555",
            "742 Evergreen",
            "abc",
            "JVBER",
            "2135550147",
            "740561073",
            "123456789",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        for visible in ["90001", "US", "X.Y", "bad"] {
            assert!(text.contains(visible), "{visible} missing from {text}");
        }
    }
}
