//! Stripe's webhooks: the `Stripe-Signature` check and what an event means to the ledger.
//!
//! The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=…]`; each `v1` is the hex
//! HMAC-SHA256, keyed with the endpoint's whole signing secret, of `"<t>." + raw body`. Any
//! matching `v1` is enough (Stripe sends several while a secret is rolled); `v0` is ignored; a
//! timestamp further than the tolerance from now is refused, so a captured delivery cannot be
//! replayed later. Money is in integer minor units with a lower-case currency.

use super::payments::{PaymentEvent, PaymentKind};
use hmac::{KeyInit, Mac};
use serde_json::Value;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Checks the signature of `body`; why not, when it does not hold.
pub fn verify(
    header: &str,
    body: &[u8],
    secret: &str,
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), String> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.trim().parse::<i64>().ok(),
            Some(("v1", s)) => signatures.extend(hex::decode(s.trim()).ok()),
            _ => {}
        }
    }
    let t = timestamp.ok_or("the Stripe-Signature header has no timestamp")?;
    if signatures.is_empty() {
        return Err("the Stripe-Signature header has no v1 signature".into());
    }
    if (now_secs - t).abs() > tolerance_secs {
        return Err(format!(
            "the signature's timestamp is more than {tolerance_secs} s from now"
        ));
    }
    let mac = || {
        let mut m = HmacSha256::new_from_slice(secret.as_bytes())
            .unwrap_or_else(|_| HmacSha256::new_from_slice(b"").expect("HMAC takes any key"));
        m.update(t.to_string().as_bytes());
        m.update(b".");
        m.update(body);
        m
    };
    if signatures.iter().any(|s| mac().verify_slice(s).is_ok()) {
        Ok(())
    } else {
        Err("no v1 signature matches".into())
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// An id that may be expanded into its object.
fn id_of(v: &Value) -> Option<String> {
    text(v).or_else(|| text(&v["id"]))
}

/// The order the payer's metadata names, under the keys merchants use.
pub(super) fn order_ref(metadata: &Value) -> Option<String> {
    [
        "shipgate_order_id",
        "order_id",
        "orderId",
        "order_number",
        "orderNumber",
        "order",
    ]
    .iter()
    .find_map(|k| text(&metadata[*k]).or_else(|| metadata[*k].as_i64().map(|n| n.to_string())))
}

/// What a Stripe event means: a payment captured, refunds, a dispute, or nothing to post.
pub fn parse(event: &Value) -> Result<PaymentEvent, String> {
    let event_id = text(&event["id"]).ok_or("the event has no id")?;
    let event_type = text(&event["type"]).ok_or("the event has no type")?;
    let o = &event["data"]["object"];
    let mut p = PaymentEvent {
        event_id,
        event_type: event_type.clone(),
        kind: PaymentKind::Ignored,
        object_id: text(&o["id"]),
        payment_ref: None,
        charge_ref: None,
        order_ref: order_ref(&o["metadata"]),
        amount: 0,
        currency: text(&o["currency"]).map(|c| c.to_ascii_uppercase()),
        refunds: Vec::new(),
        refunded_total: None,
        fully_refunded: false,
        fees: Vec::new(),
    };
    let amount = |v: &Value| v.as_i64().filter(|a| *a >= 0);
    match event_type.as_str() {
        "payment_intent.succeeded" => {
            p.kind = PaymentKind::Captured;
            p.payment_ref = text(&o["id"]);
            p.charge_ref = id_of(&o["latest_charge"]).or_else(|| id_of(&o["charges"]["data"][0]));
            p.amount = amount(&o["amount_received"])
                .or_else(|| amount(&o["amount"]))
                .ok_or("the payment intent has no amount")?;
        }
        // A charge made without a payment intent (the older Charges API); with one, the
        // intent's own event counts it.
        "charge.succeeded" if o["payment_intent"].is_null() => {
            p.kind = PaymentKind::Captured;
            p.payment_ref = text(&o["id"]);
            p.charge_ref = text(&o["id"]);
            p.amount = amount(&o["amount"]).ok_or("the charge has no amount")?;
        }
        "charge.refunded" => {
            p.kind = PaymentKind::Refunded;
            p.charge_ref = text(&o["id"]);
            p.payment_ref = id_of(&o["payment_intent"]).or_else(|| text(&o["id"]));
            let total = amount(&o["amount_refunded"]).ok_or("the charge has no amount_refunded")?;
            p.refunded_total = Some(total);
            p.fully_refunded = o["refunded"].as_bool().unwrap_or(false)
                || amount(&o["amount"]).is_some_and(|a| total >= a);
            if let Some(list) = o["refunds"]["data"].as_array() {
                for r in list {
                    let succeeded = r["status"].as_str().is_none_or(|s| s == "succeeded");
                    if let (Some(id), Some(a), true) =
                        (text(&r["id"]), amount(&r["amount"]), succeeded)
                    {
                        p.refunds.push((id, a));
                    }
                }
            }
        }
        "charge.dispute.created" => {
            p.kind = PaymentKind::Disputed;
            p.charge_ref = id_of(&o["charge"]);
            p.payment_ref = id_of(&o["payment_intent"]);
            p.amount = amount(&o["amount"]).ok_or("the dispute has no amount")?;
        }
        _ => {}
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_v1_within_the_tolerance_verifies() {
        let body = br#"{"id":"evt_1"}"#;
        let secret = "whsec_test";
        let sign = |t: i64| {
            let mut m = HmacSha256::new_from_slice(secret.as_bytes()).expect("key");
            m.update(format!("{t}.").as_bytes());
            m.update(body);
            hex::encode(m.finalize().into_bytes())
        };
        let good = sign(1000);
        let header = format!("t=1000,v1={},v1={good},v0=00", "ab".repeat(32));
        assert_eq!(verify(&header, body, secret, 1100, 300), Ok(()));
        assert!(verify(&header, body, secret, 1400, 300).is_err(), "too old");
        assert!(
            verify(&header, b"{}", secret, 1000, 300).is_err(),
            "other body"
        );
        assert!(verify(&header, body, "whsec_other", 1000, 300).is_err());
        assert!(verify(&format!("t=1000,v0={good}"), body, secret, 1000, 300).is_err());
        assert!(verify("garbage", body, secret, 1000, 300).is_err());
    }
}

#[cfg(test)]
mod samples {
    use super::*;

    const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/payments/stripe/"
    );

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!("{DIR}{name}")).expect("fixture")
    }

    #[test]
    fn stripes_own_worked_example_verifies() {
        let body = read("event_test_signature.json");
        let header = "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef";
        assert_eq!(
            verify(header, &body, "webhook_secret", 1533204720, 300),
            Ok(())
        );
        assert!(verify(header, &body, "webhook_secret", 1533205000, 300).is_err());
    }

    #[test]
    fn real_events_read_as_payments_refunds_and_disputes() {
        let parse_file = |name: &str| {
            let v: Value = serde_json::from_slice(&read(name)).expect("json");
            parse(&v).expect("parses")
        };
        let paid = parse_file("event_payment_intent.succeeded.json");
        assert_eq!(paid.kind, PaymentKind::Captured);
        assert_eq!((paid.amount, paid.currency.as_deref()), (2000, Some("USD")));
        assert_eq!(
            paid.charge_ref.as_deref(),
            Some("ch_000000000000000000000000")
        );
        let refund = parse_file("event_charge.refunded.json");
        assert_eq!(refund.kind, PaymentKind::Refunded);
        assert_eq!(refund.refunded_total, Some(100));
        assert!(refund.fully_refunded);
        assert_eq!(refund.refunds.iter().map(|r| r.1).sum::<i64>(), 100);
        let dispute = parse_file("event_charge.dispute.created.json");
        assert_eq!(dispute.kind, PaymentKind::Disputed);
        assert_eq!(
            dispute.charge_ref.as_deref(),
            Some("ch_000000000000000000000000")
        );
        for ignored in ["event_payout.paid.json", "event_balance.available.json"] {
            assert_eq!(parse_file(ignored).kind, PaymentKind::Ignored);
        }
    }
}
