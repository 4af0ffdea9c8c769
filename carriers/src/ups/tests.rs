use super::*;
use crate::http::{Adapter, Body, Context, RawResponse};
use crate::{LabelFormat, TrackingStatus};

fn fixture(name: &str, status: u16) -> RawResponse {
    let path = format!("{}/tests/fixtures/ups/{name}", env!("CARGO_MANIFEST_DIR"));
    RawResponse {
        status,
        content_type: None,
        body: std::fs::read(&path).unwrap().into(),
    }
}

#[test]
fn create_request_uses_ups_field_names() {
    let creds = UpsCredentials {
        account_number: "A1B2C3".into(),
        ..UpsCredentials::default()
    };
    let cx = Context {
        credentials: &creds,
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
    };
    let mut shipment = crate::fedex::tests::shipment();
    shipment.service = "65".into();
    let req = Ups.build_create(&shipment, &cx).unwrap();
    assert_eq!(req.path, "/api/shipments/v2409/ship");
    assert!(req.headers.iter().any(|(k, _)| k == "transId"));
    let Body::Json(body) = req.body else {
        panic!("json")
    };
    insta::assert_json_snapshot!("ups_create_request", body);
    let sample: serde_json::Value =
        serde_json::from_slice(&fixture("create_shipment_request.json", 200).body).unwrap();
    let ours = &body["ShipmentRequest"]["Shipment"];
    for key in ours.as_object().unwrap().keys() {
        assert!(
            sample["ShipmentRequest"]["Shipment"].get(key).is_some(),
            "UPS has no Shipment.{key}"
        );
    }
}

#[test]
fn created_reads_object_package_results_and_gif_label() {
    let created = Ups
        .parse_create(&fixture("create_shipment_response.json", 200))
        .unwrap();
    assert_eq!(created.tracking_number, "1ZWA82900123277535");
    let label = created.label.unwrap();
    assert_eq!(label.format, LabelFormat::Gif);
    assert!(label.content.starts_with(b"GIF8"));
    assert_eq!(created.charge.unwrap().amount, "193.64");
}

#[test]
fn created_reads_array_package_results() {
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("create_shipment_response.json", 200).body).unwrap();
    let results = &mut body["ShipmentResponse"]["ShipmentResults"];
    let one = results["PackageResults"].clone();
    let mut two = one.clone();
    two["TrackingNumber"] = "1ZWA82900123277544".into();
    results["PackageResults"] = serde_json::json!([one, two]);
    let res = RawResponse {
        status: 200,
        content_type: None,
        body: serde_json::to_vec(&body).unwrap().into(),
    };
    let created = Ups.parse_create(&res).unwrap();
    assert_eq!(created.tracking_number, "1ZWA82900123277535");
}

#[test]
fn string_expiry_tokens_and_errors() {
    let token = Ups
        .parse_token(&fixture("oauth_token_response.json", 200))
        .unwrap();
    assert!(token.expires_at > std::time::Instant::now() + std::time::Duration::from_secs(14_000));
    let (code, msg) = Ups
        .parse_error(&fixture("create_shipment_error_response.json", 400))
        .unwrap();
    assert_eq!(code, "120202");
    assert_eq!(msg, "Missing or invalid ship to address line 1");
}

#[test]
fn tracking_local_times_are_placed_by_location() {
    let events = Ups
        .parse_track(&fixture("tracking_response.json", 200))
        .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].status, TrackingStatus::Delivered);
    assert_eq!(events[0].status_code, "F4");
    assert_eq!(
        events[0].occurred_at.to_rfc3339(),
        "2022-01-26T16:30:00-05:00"
    );
    assert_eq!(events[0].timezone.as_deref(), Some("America/New_York"));
    assert_eq!(events[1].status, TrackingStatus::InfoReceived);
    // No state: the zone is unknown and the time is kept as given.
    assert_eq!(events[1].timezone, None);
}
