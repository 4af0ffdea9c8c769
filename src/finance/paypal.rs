//! PayPal's webhooks: self-verification and what an event means to the ledger.
//!
//! PayPal signs `transmission_id|transmission_time|webhook_id|crc32(raw body)` (the CRC32 as an
//! unsigned decimal) with RSA PKCS#1 v1.5 and SHA-256 (`paypal-auth-algo: SHA256withRSA`); the
//! signature is `paypal-transmission-sig` in base64 and the certificate is at
//! `paypal-cert-url`. The certificate is taken only over HTTPS from PayPal's own API hosts
//! (TLS authenticates the host), must name `messageverificationcerts.paypal.com`, and is cached.
//! A transmission time further than the tolerance from now is refused as a replay. Money is a
//! decimal string with an upper-case currency.

use super::money;
use super::payments::{PaymentEvent, PaymentKind};
use serde_json::Value;

/// The hosts a certificate URL may name.
pub const CERT_HOSTS: [&str; 4] = [
    "api.paypal.com",
    "api-m.paypal.com",
    "api.sandbox.paypal.com",
    "api-m.sandbox.paypal.com",
];

/// The name PayPal's signing certificates carry.
pub const CERT_NAME: &str = "messageverificationcerts.paypal.com";

/// The headers of a delivery that verification needs.
#[derive(Debug, Clone, Default)]
pub struct Transmission {
    pub id: String,
    pub time: String,
    pub signature: String,
    pub cert_url: String,
    pub auth_algo: String,
}

/// Checks a certificate URL: HTTPS on a PayPal API host, under `/v1/notifications/certs/`.
pub fn cert_path(url: &str) -> Result<String, String> {
    let u = url::Url::parse(url).map_err(|_| "paypal-cert-url is not a URL".to_owned())?;
    let host = u.host_str().unwrap_or_default();
    if u.scheme() != "https" || !CERT_HOSTS.contains(&host) || u.port().is_some() {
        return Err(format!("paypal-cert-url is not on a PayPal host: {host}"));
    }
    if !u.path().starts_with("/v1/notifications/certs/") || u.query().is_some() {
        return Err("paypal-cert-url is not a PayPal certificate".into());
    }
    Ok(u.path().to_owned())
}

/// The string PayPal signs.
pub fn signed_string(t: &Transmission, webhook_id: &str, body: &[u8]) -> String {
    format!("{}|{}|{webhook_id}|{}", t.id, t.time, crc32fast::hash(body))
}

/// Verifies a delivery against the certificate (PEM); `now_secs` checks the transmission time
/// and the certificate's name (its validity period is PayPal's to keep: it is fetched fresh from
/// PayPal over TLS and cached for a day).
pub fn verify(
    t: &Transmission,
    webhook_id: &str,
    body: &[u8],
    cert_pem: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), String> {
    use base64::Engine;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    if t.auth_algo != "SHA256withRSA" {
        return Err(format!("unsupported paypal-auth-algo `{}`", t.auth_algo));
    }
    let sent = chrono::DateTime::parse_from_rfc3339(&t.time)
        .map_err(|_| "paypal-transmission-time is not a time".to_owned())?;
    if (now_secs - sent.timestamp()).abs() > tolerance_secs {
        return Err(format!(
            "the transmission time is more than {tolerance_secs} s from now"
        ));
    }
    let der = CertificateDer::from_pem_slice(cert_pem).map_err(|e| format!("certificate: {e}"))?;
    let cert = webpki::EndEntityCert::try_from(&der).map_err(|e| format!("certificate: {e}"))?;
    let name = rustls::pki_types::ServerName::try_from(CERT_NAME).map_err(|e| e.to_string())?;
    cert.verify_is_valid_for_subject_name(&name)
        .map_err(|_| format!("the certificate is not {CERT_NAME}'s"))?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(t.signature.trim())
        .map_err(|_| "paypal-transmission-sig is not base64".to_owned())?;
    cert.verify_signature(
        webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        signed_string(t, webhook_id, body).as_bytes(),
        &signature,
    )
    .map_err(|_| "the signature does not verify".to_owned())
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// `{"currency_code": "USD", "value": "30.00"}` (v2) or `{"total": "20.00", "currency": "USD"}`
/// (v1) in minor units, with its currency.
fn money_of(v: &Value) -> Option<(i64, String)> {
    let currency = text(&v["currency_code"]).or_else(|| text(&v["currency"]))?;
    let value = text(&v["value"]).or_else(|| text(&v["total"]))?;
    Some((
        money::to_minor(&value, &currency)?,
        currency.to_ascii_uppercase(),
    ))
}

/// The id at the end of the resource's link `rel` (`up`: the capture a refund belongs to).
fn linked_id(resource: &Value, rel: &str) -> Option<String> {
    resource["links"]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == rel)
        .and_then(|l| l["href"].as_str())
        .and_then(|h| h.trim_end_matches('/').rsplit('/').next())
        .map(str::to_owned)
}

/// What a PayPal event means: a capture (with PayPal's fee and platform fees), a refund, a
/// dispute, or nothing to post.
pub fn parse(event: &Value) -> Result<PaymentEvent, String> {
    let event_id = text(&event["id"]).ok_or("the event has no id")?;
    let event_type = text(&event["event_type"]).ok_or("the event has no event_type")?;
    let r = &event["resource"];
    let mut p = PaymentEvent {
        event_id,
        event_type: event_type.clone(),
        kind: PaymentKind::Ignored,
        object_id: text(&r["id"]),
        payment_ref: None,
        charge_ref: None,
        // What the merchant put on the purchase: its own order id or invoice number.
        order_ref: text(&r["custom_id"]).or_else(|| text(&r["invoice_id"])),
        amount: 0,
        currency: None,
        refunds: Vec::new(),
        refunded_total: None,
        fully_refunded: false,
        fees: Vec::new(),
    };
    match event_type.as_str() {
        "PAYMENT.CAPTURE.COMPLETED" | "PAYMENT.SALE.COMPLETED" => {
            let (amount, currency) = money_of(&r["amount"]).ok_or("the capture has no amount")?;
            p.kind = PaymentKind::Captured;
            p.payment_ref = text(&r["id"]);
            p.charge_ref = text(&r["id"]);
            p.amount = amount;
            p.currency = Some(currency);
            let b = &r["seller_receivable_breakdown"];
            if let Some((fee, _)) = money_of(&b["paypal_fee"]) {
                p.fees.push(("fee".into(), fee));
            }
            for f in b["platform_fees"].as_array().into_iter().flatten() {
                if let Some((fee, _)) = money_of(&f["amount"]) {
                    p.fees.push(("platform_fee".into(), fee));
                }
            }
        }
        "PAYMENT.CAPTURE.REFUNDED" | "PAYMENT.SALE.REFUNDED" => {
            let (amount, currency) = money_of(&r["amount"]).ok_or("the refund has no amount")?;
            p.kind = PaymentKind::Refunded;
            p.charge_ref = linked_id(r, "up").or_else(|| text(&r["sale_id"]));
            p.payment_ref = p.charge_ref.clone();
            p.currency = Some(currency);
            p.refunds = vec![(text(&r["id"]).ok_or("the refund has no id")?, amount)];
            p.refunded_total =
                money_of(&r["seller_payable_breakdown"]["total_refunded_amount"]).map(|(t, _)| t);
        }
        "CUSTOMER.DISPUTE.CREATED" => {
            let (amount, currency) =
                money_of(&r["dispute_amount"]).ok_or("the dispute has no amount")?;
            p.kind = PaymentKind::Disputed;
            p.charge_ref = text(&r["disputed_transactions"][0]["seller_transaction_id"]);
            p.payment_ref = p.charge_ref.clone();
            p.object_id = text(&r["dispute_id"]);
            p.amount = amount;
            p.currency = Some(currency);
        }
        _ => {}
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/payments/paypal/"
    );

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!("{DIR}{name}")).expect("fixture")
    }

    fn transmission(headers: &str) -> Transmission {
        let h: Value = serde_json::from_slice(&read(headers)).expect("json");
        let s = |k: &str| h[k].as_str().unwrap_or_default().to_owned();
        Transmission {
            id: s("paypal-transmission-id"),
            time: s("paypal-transmission-time"),
            signature: s("paypal-transmission-sig"),
            cert_url: s("paypal-cert-url"),
            auth_algo: s("paypal-auth-algo"),
        }
    }

    #[test]
    fn paypals_own_deliveries_verify_against_its_certificate() {
        let cert = read("paypal_cert_CERT-360caa42-fca2a594-1a5f47cb.pem");
        for (body, headers, crc) in [
            (
                "PAYMENT.CAPTURE.COMPLETED.body.json",
                "PAYMENT.CAPTURE.COMPLETED.headers.json",
                1698892491u32,
            ),
            (
                "PAYMENT.CAPTURE.REFUNDED.body.json",
                "PAYMENT.CAPTURE.REFUNDED.headers.json",
                3783980084,
            ),
        ] {
            let body = read(body);
            let t = transmission(headers);
            assert_eq!(crc32fast::hash(&body), crc);
            assert!(cert_path(&t.cert_url).is_ok());
            let sent = chrono::DateTime::parse_from_rfc3339(&t.time)
                .expect("time")
                .timestamp();
            // The simulator's webhook id is the literal WEBHOOK_ID; the clock is the delivery's.
            assert_eq!(
                verify(&t, "WEBHOOK_ID", &body, &cert, sent + 10, 300),
                Ok(())
            );
            assert!(verify(&t, "OTHER_ID", &body, &cert, sent + 10, 300).is_err());
            assert!(
                verify(&t, "WEBHOOK_ID", &body, &cert, sent + 3600, 300).is_err(),
                "stale"
            );
            let mut tampered = body.clone();
            tampered[10] ^= 1;
            assert!(verify(&t, "WEBHOOK_ID", &tampered, &cert, sent + 10, 300).is_err());
        }
        assert!(cert_path("https://evil.example/v1/notifications/certs/CERT-1").is_err());
        assert!(cert_path("http://api.paypal.com/v1/notifications/certs/CERT-1").is_err());
        assert!(cert_path("https://api.paypal.com/v2/other").is_err());
    }

    #[test]
    fn captures_refunds_and_their_fees_read_from_real_events() {
        let parse_file = |name: &str| {
            let v: Value = serde_json::from_slice(&read(name)).expect("json");
            parse(&v).expect("parses")
        };
        let capture = parse_file("PAYMENT.CAPTURE.COMPLETED.body.json");
        assert_eq!(capture.kind, PaymentKind::Captured);
        assert_eq!(
            (capture.amount, capture.currency.as_deref()),
            (3000, Some("USD"))
        );
        assert_eq!(
            capture.fees,
            vec![("fee".to_owned(), 154), ("platform_fee".to_owned(), 200)]
        );
        assert_eq!(
            capture.order_ref.as_deref(),
            Some("5840243-146"),
            "the invoice id"
        );
        let refund = parse_file("PAYMENT.CAPTURE.REFUNDED.body.json");
        assert_eq!(refund.kind, PaymentKind::Refunded);
        assert_eq!(refund.refunds, vec![("1Y107995YT783435V".to_owned(), 99)]);
        assert_eq!(refund.charge_ref.as_deref(), Some("0JF852973C016714D"));
        assert_eq!(refund.refunded_total, Some(198));
        assert_eq!(
            parse_file("CHECKOUT.ORDER.APPROVED.body.json").kind,
            PaymentKind::Ignored
        );
    }
}
