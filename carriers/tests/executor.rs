//! The executor against mock carriers: tracking through every adapter, retries only of what is
//! safe to repeat, and rate-limit waiting.

use carriers::http::{HttpCarrier, HttpConfig};
use carriers::{CarrierClient, CarrierError, TrackingStatus};
use std::time::Duration;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(carrier: &str, name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{carrier}/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn config<C: Default>(base_url: String) -> HttpConfig<C> {
    HttpConfig {
        base_url,
        timeout: Duration::from_secs(2),
        rate_per_second: 100,
        rate_burst: 100,
        rate_max_wait: Duration::from_millis(500),
        retries: 2,
        breaker_failures: 5,
        breaker_open: Duration::from_secs(30),
        credentials: C::default(),
    }
}

async fn token(server: &MockServer, p: &str, carrier: &str) {
    Mock::given(method("POST"))
        .and(path(p))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_bytes(fixture(carrier, "oauth_token_response.json")),
        )
        .mount(server)
        .await;
}

async fn track(client: &dyn CarrierClient, number: &str) -> Vec<carriers::TrackingEvent> {
    client
        .track(number)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", client.id()))
}

#[tokio::test]
async fn every_adapter_tracks_through_the_executor() {
    let server = MockServer::start().await;
    token(&server, "/oauth/token", "fedex").await;
    token(&server, "/security/v1/oauth/token", "ups").await;
    token(&server, "/oauth2/v3/token", "usps").await;
    let answer = |carrier: &str, file: &str| {
        ResponseTemplate::new(200).set_body_bytes(fixture(carrier, file))
    };
    Mock::given(method("POST"))
        .and(path("/track/v1/trackingnumbers"))
        .respond_with(answer("fedex", "tracking_response.json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/api/track/v1/details/.+$"))
        .respond_with(answer("ups", "tracking_response.json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/shipments/.+/tracking$"))
        .respond_with(answer("dhl_express", "tracking_response.json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/tracking/v3/tracking/.+$"))
        .respond_with(answer("usps", "tracking_response.json"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/sf"))
        .respond_with(answer("sf_express", "tracking_response.xml"))
        .mount(&server)
        .await;

    let uri = server.uri();
    let fedex = HttpCarrier::new(carriers::fedex::Fedex, config(uri.clone())).unwrap();
    let ups = HttpCarrier::new(carriers::ups::Ups, config(uri.clone())).unwrap();
    let dhl = HttpCarrier::new(carriers::dhl_express::DhlExpress, config(uri.clone())).unwrap();
    let usps = HttpCarrier::new(carriers::usps::Usps, config(uri.clone())).unwrap();
    let sf =
        HttpCarrier::new(carriers::sf_express::SfExpress, config(format!("{uri}/sf"))).unwrap();

    assert_eq!(
        track(&fedex, "794953535000").await[0].status,
        TrackingStatus::Delivered
    );
    assert_eq!(
        track(&ups, "1Z1442YY7229014688").await[0].status,
        TrackingStatus::Delivered
    );
    assert_eq!(
        track(&dhl, "1234567890").await[0].status,
        TrackingStatus::Delivered
    );
    assert_eq!(
        track(&usps, "9400109104250532908587").await[0].status,
        TrackingStatus::Delivered
    );
    assert_eq!(track(&sf, "SF1010575444025").await.len(), 7);

    // One function derives a shipment's status from any carrier's timeline.
    let derived = |events: &[carriers::TrackingEvent]| {
        carriers::tracking::derive_status(events.iter().map(|e| (&e.occurred_at, e.status)))
    };
    for (client, number, expected) in [
        (
            &fedex as &dyn CarrierClient,
            "794953535000",
            TrackingStatus::Delivered,
        ),
        (&ups, "1Z1442YY7229014688", TrackingStatus::Delivered),
        (&dhl, "1234567890", TrackingStatus::Delivered),
        (&usps, "9400109104250532908587", TrackingStatus::Delivered),
        (&sf, "SF1010575444025", TrackingStatus::InTransit),
    ] {
        let mut events = track(client, number).await;
        assert_eq!(derived(&events), Some(expected), "{}", client.id());
        // Order of arrival does not change it.
        events.reverse();
        assert_eq!(derived(&events), Some(expected), "{}", client.id());
    }
}

#[tokio::test]
async fn lookups_are_retried_creates_are_not() {
    let server = MockServer::start().await;
    token(&server, "/oauth/token", "fedex").await;
    Mock::given(method("POST"))
        .and(path("/track/v1/referencenumbers"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/track/v1/referencenumbers"))
        .respond_with(
            ResponseTemplate::new(200).set_body_bytes(fixture("fedex", "tracking_response.json")),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/ship/v1/shipments"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let fedex = HttpCarrier::new(carriers::fedex::Fedex, config(server.uri())).unwrap();

    let found = fedex
        .lookup_by_reference("0192f0c1a2b34c5d8e9f000000000001")
        .await
        .unwrap();
    assert!(found.is_some(), "the third attempt succeeded");

    let shipment = serde_json::from_value(serde_json::json!({
        "referenceNumber": "PO-1", "idempotencyKey": "k", "service": "FEDEX_GROUND",
        "shipper": {"name": "A", "street1": "1 St", "city": "Memphis", "state": "TN", "postalCode": "38117", "country": "US",
                    "company": null, "phone": "1", "email": null, "street2": null},
        "consignee": {"name": "B", "street1": "2 St", "city": "Memphis", "state": "TN", "postalCode": "38117", "country": "US",
                      "company": null, "phone": null, "email": null, "street2": null},
        "parcels": [{"weightGrams": 500, "lengthCm": null, "widthCm": null, "heightCm": null}],
        "customs": null
    }))
    .unwrap();
    let err = fedex.create(&shipment).await.unwrap_err();
    assert!(matches!(err, CarrierError::BadResponse(_)), "{err}");
    let creates = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/ship/v1/shipments")
        .count();
    assert_eq!(creates, 1, "a create is never repeated by the executor");
}
