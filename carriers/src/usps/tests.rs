use super::*;
use crate::TrackingStatus;
use crate::http::{Adapter, Body, Context, RawResponse};

fn fixture(name: &str, status: u16) -> RawResponse {
    let path = format!("{}/tests/fixtures/usps/{name}", env!("CARGO_MANIFEST_DIR"));
    RawResponse {
        status,
        content_type: None,
        body: std::fs::read(&path).unwrap().into(),
    }
}

fn domestic() -> crate::Shipment {
    let mut s = crate::fedex::tests::shipment();
    s.service = "USPS_GROUND_ADVANTAGE".into();
    s.shipper.country = "US".into();
    s.shipper.state = Some("NY".into());
    s.shipper.postal_code = Some("10001".into());
    s.parcels.truncate(1);
    s.customs = None;
    s
}

#[test]
fn create_request_uses_usps_field_names() {
    let creds = UspsCredentials::default();
    let cx = Context {
        credentials: &creds,
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
    };
    let req = Usps.build_create(&domestic(), &cx).unwrap();
    assert_eq!(req.auth, crate::http::Auth::BearerWithPayment);
    let Body::Json(body) = req.body else {
        panic!("json")
    };
    insta::assert_json_snapshot!("usps_create_request", body);
    let sample: serde_json::Value =
        serde_json::from_slice(&fixture("create_shipment_request.json", 200).body).unwrap();
    for key in body.as_object().unwrap().keys() {
        assert!(sample.get(key).is_some(), "USPS has no {key}");
    }
    for key in body["packageDescription"].as_object().unwrap().keys() {
        assert!(
            sample["packageDescription"].get(key).is_some(),
            "USPS has no packageDescription.{key}"
        );
    }
    // International and multi-parcel shipments are refused before anything is sent.
    let mut abroad = domestic();
    abroad.consignee.country = "CA".into();
    assert!(matches!(
        Usps.build_create(&abroad, &cx),
        Err(crate::CarrierError::Rejected { .. })
    ));
}

#[test]
fn the_multipart_label_answer_is_parsed_with_lf_or_crlf() {
    let lf = fixture("create_shipment_response.multipart", 200);
    let crlf = RawResponse {
        status: 200,
        content_type: Some("multipart/form-data; boundary=r6-fpGYWbdZmd9w5-850fEfX".into()),
        body: String::from_utf8_lossy(&lf.body)
            .replace('\n', "\r\n")
            .into(),
    };
    for res in [lf, crlf] {
        let created = Usps.parse_create(&res).unwrap();
        assert_eq!(created.tracking_number, "9234690361980900000142");
        assert_eq!(created.charge.unwrap().amount, "18.76");
        assert!(created.label.unwrap().content.starts_with(b"%PDF-"));
    }
}

#[test]
fn gateway_errors_keep_their_title() {
    let (code, msg) = Usps
        .parse_error(&fixture("create_shipment_error_response.json", 401))
        .unwrap();
    assert_eq!(code, "invalid_token");
    assert!(msg.contains("missing or malformed"));
}

#[test]
fn tracking_uses_the_gmt_offset_and_flags_pre_advice() {
    let events = Usps
        .parse_track(&fixture("tracking_response.json", 200))
        .unwrap();
    assert_eq!(events.len(), 12);
    assert_eq!(events[0].status, TrackingStatus::Delivered);
    assert_eq!(
        events[0].occurred_at.to_rfc3339(),
        "2024-11-22T13:58:00-05:00"
    );
    assert_eq!(events[0].timezone.as_deref(), Some("America/New_York"));
    let label_created = events.iter().find(|e| e.status_code == "GX").unwrap();
    assert_eq!(label_created.status, TrackingStatus::InfoReceived);
    assert!(responses::is_pre_advice(&label_created.status_code));
    assert!(
        events.iter().all(|e| e.status != TrackingStatus::Unknown),
        "{events:#?}"
    );
}
