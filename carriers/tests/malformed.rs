//! Malformed carrier bodies through every adapter's parsers: truncated at every length, with
//! values of the wrong type, and very large. Each must come back as an error or a value, never a
//! panic. The pushed formats (FedEx tracking push, SF route push) are fed the same way.

use carriers::http::{Adapter, RawResponse};
use std::panic::{AssertUnwindSafe, catch_unwind};

fn fixture(carrier: &str, file: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{carrier}/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn response(status: u16, content_type: &str, body: Vec<u8>) -> RawResponse {
    RawResponse {
        status,
        content_type: Some(content_type.into()),
        body: body.into(),
    }
}

/// Every parser of the adapter on this body, under `catch_unwind`.
/// Each adapter's parsers behind one signature (adapters differ in their credentials type).
type Parsers = Box<dyn Fn(&RawResponse, &str)>;

fn parsers<A: Adapter>(adapter: A) -> Parsers {
    Box::new(move |res, what| parse_all(&adapter, res, what))
}

fn parse_all<A: Adapter>(adapter: &A, res: &RawResponse, what: &str) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _ = adapter.parse_create(res);
        let _ = adapter.parse_track(res);
        let _ = adapter.parse_lookup(res);
        let _ = adapter.parse_error(res);
        let _ = adapter.error_in_success(res);
        let _ = adapter.parse_token(res);
    }));
    assert!(outcome.is_ok(), "{} panicked on {what}", adapter.id());
}

/// Cut points: every byte for short bodies, about 400 spread over long ones.
fn cuts(len: usize) -> impl Iterator<Item = usize> {
    let step = (len / 400).max(1);
    (0..len).step_by(step)
}

/// JSON with every string turned into a number and every number into a string.
fn retyped(body: &[u8]) -> Option<Vec<u8>> {
    fn flip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(_) => *v = serde_json::json!(12345),
            serde_json::Value::Number(n) => *v = serde_json::json!(n.to_string()),
            serde_json::Value::Array(items) => items.iter_mut().for_each(flip),
            serde_json::Value::Object(map) => map.values_mut().for_each(flip),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    flip(&mut v);
    serde_json::to_vec(&v).ok()
}

#[test]
fn every_adapter_survives_malformed_bodies() {
    type Case = (Parsers, &'static str, &'static str, Vec<&'static str>);
    let cases: Vec<Case> = vec![
        (
            parsers(carriers::fedex::Fedex),
            "fedex",
            "application/json",
            vec![
                "create_shipment_response.json",
                "create_shipment_error_response.json",
                "tracking_response.json",
                "oauth_token_response.json",
            ],
        ),
        (
            parsers(carriers::ups::Ups),
            "ups",
            "application/json",
            vec![
                "create_shipment_response.json",
                "create_shipment_error_response.json",
                "tracking_response.json",
                "oauth_token_response.json",
            ],
        ),
        (
            parsers(carriers::dhl_express::DhlExpress),
            "dhl_express",
            "application/json",
            vec![
                "create_shipment_response.json",
                "create_shipment_error_response.json",
                "tracking_response.json",
            ],
        ),
        (
            parsers(carriers::usps::Usps),
            "usps",
            "multipart/form-data; boundary=r6-fpGYWbdZmd9w5-850fEfX",
            vec!["create_shipment_response.multipart"],
        ),
        (
            parsers(carriers::usps::Usps),
            "usps",
            "application/json",
            vec![
                "create_shipment_error_response.json",
                "tracking_response.json",
                "oauth_token_response.json",
            ],
        ),
        (
            parsers(carriers::sf_express::SfExpress),
            "sf_express",
            "application/xml",
            vec![
                "create_shipment_response.xml",
                "create_shipment_error_response.xml",
                "tracking_response.xml",
            ],
        ),
    ];
    for (adapter, carrier, content_type, files) in &cases {
        for file in files {
            let body = fixture(carrier, file);
            for status in [200, 400, 500] {
                adapter(&response(status, content_type, body.clone()), file);
            }
            for cut in cuts(body.len()) {
                adapter(
                    &response(200, content_type, body[..cut].to_vec()),
                    &format!("{file} cut at {cut}"),
                );
            }
            if let Some(retyped) = retyped(&body) {
                adapter(
                    &response(200, content_type, retyped),
                    &format!("{file} with wrong types"),
                );
            }
        }
        // Huge: 8 MB of nesting and of noise.
        let deep = format!("{}{}", "[".repeat(4_000_000), "]".repeat(4_000_000));
        adapter(
            &response(200, content_type, deep.into_bytes()),
            "deep nesting",
        );
        let noise: Vec<u8> = (0..8_000_000_u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        adapter(&response(200, content_type, noise), "8 MB of noise");
        adapter(&response(200, content_type, Vec::new()), "empty body");
    }
}

#[test]
fn pushed_formats_survive_malformed_bodies() {
    let fedex = fixture("fedex", "tracking_response.json");
    let sf = r#"<Request service="RoutePushService" lang="zh-CN"><Body><WaybillRoute id="1" mailno="444003077898" acceptTime="2026-11-20 17:29:37" acceptAddress="深圳" remark="已收件" opCode="50"/></Body></Request>"#.as_bytes().to_vec();
    for cut in cuts(fedex.len()) {
        let r = catch_unwind(|| carriers::fedex::parse_push(&fedex[..cut]));
        assert!(r.is_ok(), "fedex push cut at {cut} panicked");
    }
    let retyped_fedex = retyped(&fedex).unwrap();
    assert!(catch_unwind(|| carriers::fedex::parse_push(&retyped_fedex)).is_ok());
    for cut in 0..sf.len() {
        let text = String::from_utf8_lossy(&sf[..cut]).into_owned();
        let r = catch_unwind(|| carriers::sf_express::push::parse_route_push(&text));
        assert!(r.is_ok(), "sf push cut at {cut} panicked");
        if cut < sf.len() - 1 {
            assert!(
                r.unwrap().is_err(),
                "a truncated push was accepted (cut at {cut})"
            );
        }
    }
}
