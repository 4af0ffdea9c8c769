use super::*;
use crate::TrackingStatus;
use crate::http::{Adapter, Body, Context, RawResponse};

fn fixture(name: &str, status: u16) -> RawResponse {
    let path = format!(
        "{}/tests/fixtures/dhl_express/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    RawResponse {
        status,
        content_type: None,
        body: std::fs::read(&path).unwrap().into(),
    }
}

#[test]
fn create_request_uses_mydhl_field_names() {
    let creds = DhlExpressCredentials {
        account_number: "123456789".into(),
        ..DhlExpressCredentials::default()
    };
    let cx = Context {
        credentials: &creds,
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
    };
    let mut shipment = crate::fedex::tests::shipment();
    shipment.service = "P".into();
    let req = DhlExpress.build_create(&shipment, &cx).unwrap();
    assert_eq!(req.path, "/shipments");
    let Body::Json(body) = req.body else {
        panic!("json")
    };
    insta::assert_json_snapshot!("dhl_create_request", body);
    let sample: serde_json::Value =
        serde_json::from_slice(&fixture("create_shipment_request.json", 200).body).unwrap();
    for key in body.as_object().unwrap().keys() {
        assert!(
            sample.get(key).is_some() || key == "customerReferences",
            "MyDHL has no {key}"
        );
    }
    for key in body["content"].as_object().unwrap().keys() {
        assert!(
            sample["content"].get(key).is_some(),
            "MyDHL has no content.{key}"
        );
    }
}

#[test]
fn created_reads_number_and_pdf_label() {
    let created = DhlExpress
        .parse_create(&fixture("create_shipment_response.json", 201))
        .unwrap();
    assert_eq!(created.waybill_number, "1103733901");
    let label = created.label.unwrap();
    assert!(label.content.starts_with(b"%PDF-"));
}

#[test]
fn string_status_errors_keep_the_dhl_code() {
    let (code, msg) = DhlExpress
        .parse_error(&fixture("create_shipment_error_response.json", 400))
        .unwrap();
    assert_eq!(code, "7008");
    assert!(msg.starts_with("The requested Special Service Code"));
}

#[test]
fn tracking_has_local_times_in_the_service_areas_zone() {
    let events = DhlExpress
        .parse_track(&fixture("tracking_response.json", 200))
        .unwrap();
    assert_eq!(events.len(), 13);
    let first = events.last().unwrap();
    assert_eq!(first.status, TrackingStatus::PickedUp);
    assert_eq!(first.country.as_deref(), Some("AU"));
    assert_eq!(first.occurred_at.to_rfc3339(), "2023-08-09T13:56:21+10:00");
    assert_eq!(first.timezone.as_deref(), Some("Australia/Sydney"));
    assert_eq!(
        events[0].status,
        TrackingStatus::Delivered,
        "newest first: {:?}",
        events[0]
    );
    assert!(events.iter().all(|e| e.status != TrackingStatus::Unknown));
}
