use super::*;
use crate::http::{Adapter, Context, RawResponse};
use crate::{Address, Customs, CustomsItem, Parcel, Shipment, TrackingStatus};

fn fixture(name: &str, status: u16) -> RawResponse {
    let path = format!("{}/tests/fixtures/fedex/{name}", env!("CARGO_MANIFEST_DIR"));
    RawResponse {
        status,
        content_type: Some("application/json".into()),
        body: std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .into(),
    }
}

pub(crate) fn shipment() -> Shipment {
    let address = |name: &str, city: &str, state: &str, zip: &str, country: &str| Address {
        name: name.into(),
        company: Some("Acme".into()),
        phone: Some("+1 901 555 0100".into()),
        email: None,
        street1: "10 Fedex Pkwy".into(),
        street2: None,
        city: city.into(),
        state: Some(state.into()),
        postal_code: Some(zip.into()),
        country: country.into(),
    };
    Shipment {
        reference_number: "PO-1".into(),
        idempotency_key: "0192f0c1a2b34c5d8e9f000000000001".into(),
        service: "INTERNATIONAL_PRIORITY".into(),
        shipper: address("Li Wei", "Shenzhen", "GD", "518057", "CN"),
        consignee: address("Jane Doe", "Memphis", "TN", "38117", "US"),
        parcels: vec![
            Parcel {
                weight_grams: 1200,
                length_cm: Some(30.0),
                width_cm: Some(20.0),
                height_cm: Some(10.0),
            },
            Parcel {
                weight_grams: 800,
                length_cm: None,
                width_cm: None,
                height_cm: None,
            },
        ],
        customs: Some(Customs {
            currency: "USD".into(),
            incoterm: Some("DDU".into()),
            items: vec![CustomsItem {
                description: "Cotton T-shirt".into(),
                hs_code: Some("610910".into()),
                quantity: 2,
                unit_value: "9.90".into(),
                weight_grams: Some(300),
                origin_country: Some("CN".into()),
            }],
        }),
    }
}

fn context(credentials: &FedexCredentials) -> Context<'_, FedexCredentials> {
    Context {
        credentials,
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
    }
}

#[test]
fn create_request_uses_fedex_field_names() {
    let creds = FedexCredentials {
        account_number: "740561073".into(),
        ..FedexCredentials::default()
    };
    let req = Fedex.build_create(&shipment(), &context(&creds)).unwrap();
    assert_eq!(req.path, "/ship/v1/shipments");
    let crate::http::Body::Json(body) = req.body else {
        panic!("json body")
    };
    insta::assert_json_snapshot!("fedex_create_request", body);
    // The sample request's top-level structure, which FedEx documents, is what we send.
    let sample: serde_json::Value =
        serde_json::from_slice(&fixture("create_shipment_request.json", 200).body).unwrap();
    for key in ["labelResponseOptions", "accountNumber", "requestedShipment"] {
        assert!(
            sample.get(key).is_some() && body.get(key).is_some(),
            "{key}"
        );
    }
    for key in body["requestedShipment"].as_object().unwrap().keys() {
        assert!(
            sample["requestedShipment"].get(key).is_some(),
            "FedEx has no requestedShipment.{key}"
        );
    }
}

#[test]
fn created_reads_tracking_number_label_and_charge() {
    let created = Fedex
        .parse_create(&fixture("create_shipment_response.json", 200))
        .unwrap();
    assert_eq!(created.tracking_number, "794953535000");
    assert_eq!(created.waybill_number, "794953535000");
    let label = created.label.unwrap();
    assert_eq!(label.format, crate::LabelFormat::Pdf);
    assert!(label.content.starts_with(b"%PDF-"));
    let charge = created.charge.unwrap();
    assert_eq!(
        (charge.amount.as_str(), charge.currency.as_str()),
        ("3.78", "USD")
    );
}

#[test]
fn errors_keep_fedex_code_and_message() {
    let (code, message) = Fedex
        .parse_error(&fixture("create_shipment_error_response.json", 400))
        .unwrap();
    assert_eq!(code, "ACCOUNTNUMBER.REGISTRATION.REQUIRED");
    assert!(message.contains("9-digit FedEx account number"));
    let garbage = RawResponse {
        status: 400,
        content_type: None,
        body: "<html>".into(),
    };
    assert_eq!(Fedex.parse_error(&garbage), None);
}

#[test]
fn tracking_events_are_normalized_with_zones() {
    let events = Fedex
        .parse_track(&fixture("tracking_response.json", 200))
        .unwrap();
    assert_eq!(events.len(), 17);
    let delivered = &events[0];
    assert_eq!(delivered.status, TrackingStatus::Delivered);
    assert_eq!(
        delivered.occurred_at.to_rfc3339(),
        "2024-08-20T12:41:57-04:00"
    );
    assert_eq!(delivered.timezone.as_deref(), Some("America/New_York"));
    // The pick-up scan has no offset: it is placed in Mankato, MN (Central time).
    let picked_up = events.last().unwrap();
    assert_eq!(picked_up.status, TrackingStatus::PickedUp);
    assert_eq!(
        picked_up.occurred_at.to_rfc3339(),
        "2024-08-15T00:00:00-05:00"
    );
    assert_eq!(picked_up.timezone.as_deref(), Some("America/Chicago"));
    assert!(events.iter().all(|e| e.status != TrackingStatus::Unknown));
}

#[test]
fn token_and_lookup() {
    let token = Fedex
        .parse_token(&fixture("oauth_token_response.json", 200))
        .unwrap();
    assert_eq!(token.value, "access_token");
    let found = Fedex
        .parse_lookup(&fixture("tracking_response.json", 200))
        .unwrap()
        .unwrap();
    assert!(!found.tracking_number.is_empty());
}
