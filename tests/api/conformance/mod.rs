//! The carrier conformance suite, written once and run for every carrier through shipgate's HTTP
//! API against a mock of that carrier answering with its real payloads (carriers/tests/fixtures).

use crate::helpers::{Backend, TestApp, spawn_app_with, waybill_request};
use reqwest::Method;
use serde_json::{Value, json};
use shipgate::settings::{HttpCarrierSettings, Settings};
use std::time::Duration;
use wiremock::matchers::{body_string_contains, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

mod flows;
mod recovery;
mod resilience;

fn fixture(carrier: &str, name: &str) -> Vec<u8> {
    let path = format!(
        "{}/carriers/tests/fixtures/{carrier}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Answers `verb path` on `server` with a carrier's JSON sample.
async fn answer(server: &MockServer, verb: &str, p: &str, carrier: &str, file: &str) {
    Mock::given(method(verb))
        .and(path(p))
        .respond_with(json_fixture(carrier, file))
        .mount(server)
        .await;
}

fn json_fixture(carrier: &str, name: &str) -> ResponseTemplate {
    json_fixture_with(200, carrier, name)
}

fn json_fixture_with(status: u16, carrier: &str, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/json")
        .set_body_bytes(fixture(carrier, name))
}

/// What the suite needs to know about one carrier.
struct Case {
    carrier: &'static str,
    channel: &'static str,
    /// The tracking number in the carrier's create sample.
    tracking_number: &'static str,
    create_path: &'static str,
    /// The create sample and its content type.
    create_answer: (&'static str, &'static str),
    /// Status, carrier error code, sample file and the public error code it becomes.
    create_error: (u16, &'static str, &'static str, &'static str),
    /// A valid request for this carrier's channel.
    request: fn(&str) -> Value,
    /// OAuth token endpoint, for carriers with bearer tokens.
    token_path: Option<&'static str>,
    /// Whether the carrier can find a shipment by our reference.
    lookup: bool,
    /// Carriers that return routing data instead of a label image (SF) get shipgate's own label.
    own_label: bool,
    /// Whether the sample label's barcode carries the sample's tracking number (FedEx's sample
    /// label belongs to another shipment than its sample answer).
    label_scans_as_number: bool,
    /// The path of the carrier's service below the mock's root.
    base_path: &'static str,
    mount: fn(&MockServer) -> futures_util::future::BoxFuture<'_, ()>,
    settings: fn(&mut Settings) -> &mut HttpCarrierSettings,
}

fn fedex() -> Case {
    Case {
        carrier: "fedex",
        channel: "FEDEX_INTERNATIONAL_PRIORITY",
        tracking_number: "794953535000",
        create_path: "/ship/v1/shipments",
        create_answer: ("create_shipment_response.json", "application/json"),
        create_error: (
            400,
            "ACCOUNTNUMBER.REGISTRATION.REQUIRED",
            "create_shipment_error_response.json",
            "CARRIER_REJECTED",
        ),
        request: waybill_request,
        token_path: Some("/oauth/token"),
        lookup: true,
        own_label: false,
        label_scans_as_number: false,
        base_path: "",
        mount: |server| {
            Box::pin(async move {
                answer(
                    server,
                    "POST",
                    "/oauth/token",
                    "fedex",
                    "oauth_token_response.json",
                )
                .await;
                Mock::given(method("PUT"))
                    .and(path("/ship/v1/shipments/cancel"))
                    .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                        "transactionId": "c8c9b1f5", "output": {"cancelledShipment": true}
                    })))
                    .mount(server)
                    .await;
                answer(
                    server,
                    "POST",
                    "/track/v1/referencenumbers",
                    "fedex",
                    "tracking_response.json",
                )
                .await;
            })
        },
        settings: |s| &mut s.carriers.fedex,
    }
}

fn dhl() -> Case {
    Case {
        carrier: "dhl_express",
        channel: "DHL_EXPRESS_WORLDWIDE",
        tracking_number: "1103733901",
        create_path: "/shipments",
        create_answer: ("create_shipment_response.json", "application/json"),
        create_error: (
            400,
            "7008",
            "create_shipment_error_response.json",
            "CARRIER_REJECTED",
        ),
        request: waybill_request,
        token_path: None,
        lookup: false,
        own_label: false,
        label_scans_as_number: true,
        base_path: "",
        mount: |_| Box::pin(async {}),
        settings: |s| &mut s.carriers.dhl_express,
    }
}

fn ups() -> Case {
    Case {
        carrier: "ups",
        channel: "UPS_WORLDWIDE_SAVER",
        tracking_number: "1ZWA82900123277535",
        create_path: "/api/shipments/v2409/ship",
        create_answer: ("create_shipment_response.json", "application/json"),
        create_error: (
            400,
            "120202",
            "create_shipment_error_response.json",
            "CARRIER_REJECTED",
        ),
        request: waybill_request,
        token_path: Some("/security/v1/oauth/token"),
        lookup: true,
        own_label: false,
        label_scans_as_number: true,
        base_path: "",
        mount: |server| {
            Box::pin(async move {
                answer(
                    server,
                    "POST",
                    "/security/v1/oauth/token",
                    "ups",
                    "oauth_token_response.json",
                )
                .await;
                Mock::given(method("DELETE"))
                    .and(path_regex("^/api/shipments/v2409/void/cancel/.+$"))
                    .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                        "VoidShipmentResponse": {"Response": {"ResponseStatus": {"Code": "1", "Description": "Success"}},
                                                 "SummaryResult": {"Status": {"Code": "1", "Description": "Voided"}}}
                    })))
                    .mount(server)
                    .await;
                Mock::given(method("GET"))
                    .and(path_regex("^/api/track/v1/reference/details/.+$"))
                    .respond_with(json_fixture("ups", "tracking_response.json"))
                    .mount(server)
                    .await;
            })
        },
        settings: |s| &mut s.carriers.ups,
    }
}

/// A US domestic request (USPS labels are domestic).
fn domestic_request(reference: &str) -> Value {
    let mut body = waybill_request(reference);
    body["shipper"] = json!({"name": "Tall Tom", "company": "ABC Corp.", "phone": "8005554526",
        "street1": "1098 N Fraser Street", "city": "Georgetown", "state": "SC",
        "postalCode": "29440", "country": "US"});
    body.as_object_mut().unwrap().remove("customs");
    body
}

fn usps() -> Case {
    Case {
        carrier: "usps",
        channel: "USPS_GROUND_ADVANTAGE",
        tracking_number: "9234690361980900000142",
        create_path: "/labels/v3/label",
        create_answer: (
            "create_shipment_response.multipart",
            "multipart/form-data; boundary=r6-fpGYWbdZmd9w5-850fEfX",
        ),
        create_error: (
            401,
            "invalid_token",
            "create_shipment_error_response.json",
            "CARRIER_AUTH_FAILED",
        ),
        request: domestic_request,
        token_path: Some("/oauth2/v3/token"),
        lookup: false,
        own_label: false,
        label_scans_as_number: true,
        base_path: "",
        mount: |server| {
            Box::pin(async move {
                answer(
                    server,
                    "POST",
                    "/oauth2/v3/token",
                    "usps",
                    "oauth_token_response.json",
                )
                .await;
                Mock::given(method("POST"))
                    .and(path("/payments/v3/payment-authorization"))
                    .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                        "paymentAuthorizationToken": "eyJhbGciOiJIUzI1NiJ9.payment"
                    })))
                    .mount(server)
                    .await;
                Mock::given(method("DELETE"))
                    .and(path_regex("^/labels/v3/label/.+$"))
                    .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                        "trackingNumber": "9234690361980900000142", "status": "CANCELED"
                    })))
                    .mount(server)
                    .await;
            })
        },
        settings: |s| &mut s.carriers.usps,
    }
}

fn sf() -> Case {
    Case {
        carrier: "sf_express",
        channel: "SF_INTERNATIONAL_STANDARD",
        tracking_number: "SF7444404156506",
        create_path: "/bsp-oisp/sfexpressService",
        create_answer: (
            "create_shipment_response.xml",
            "application/xml;charset=UTF-8",
        ),
        create_error: (
            200,
            "4001",
            "create_shipment_error_response.xml",
            "CARRIER_REJECTED",
        ),
        request: waybill_request,
        token_path: None,
        lookup: true,
        own_label: true,
        label_scans_as_number: true,
        base_path: "/bsp-oisp/sfexpressService",
        mount: |server| {
            Box::pin(async move {
                // OrderSearchService answers with the order, as OrderService did.
                Mock::given(method("POST"))
                    .and(path("/bsp-oisp/sfexpressService"))
                    .and(body_string_contains("OrderSearchService"))
                    .respond_with(
                        ResponseTemplate::new(200)
                            .insert_header("content-type", "application/xml;charset=UTF-8")
                            .set_body_bytes(fixture("sf_express", "create_shipment_response.xml")),
                    )
                    .with_priority(1)
                    .mount(server)
                    .await;
            })
        },
        settings: |s| &mut s.carriers.sf_express,
    }
}

fn cases() -> Vec<Case> {
    vec![fedex(), dhl(), ups(), usps(), sf()]
}

async fn app_for(
    case: &Case,
    server: &MockServer,
    tweak: impl FnOnce(&mut HttpCarrierSettings),
) -> TestApp {
    let uri = format!("{}{}", server.uri(), case.base_path);
    let mut app = spawn_app_with(Backend::Sqlite, |s| {
        let c = (case.settings)(s);
        c.enabled = true;
        c.base_url = uri;
        c.client_id = "shipgate-test-id".into();
        c.client_secret = "shipgate-test-secret".into();
        c.account_number = "740561073".into();
        c.customer_code = "SHIPGATE".into();
        c.checkword = "checkword".into();
        c.rate_per_second = 1000;
        c.rate_burst = 1000;
        tweak(c);
    })
    .await;
    // Real carriers take live keys only.
    app.use_live_key().await;
    app
}

fn request(case: &Case, reference: &str) -> Value {
    let mut body = (case.request)(reference);
    body["channel"] = json!(case.channel);
    body
}

/// The carrier's create sample, with its tracking number made unique per call after the first
/// (a real carrier never hands out one number twice).
struct UniqueNumbers {
    body: String,
    number: &'static str,
    status: u16,
    content_type: &'static str,
    calls: std::sync::atomic::AtomicUsize,
}

impl wiremock::Respond for UniqueNumbers {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body = if n == 0 {
            self.body.clone()
        } else {
            let keep = &self.number[..self.number.len() - 4];
            self.body
                .replace(self.number, &format!("{keep}{}", 5000 + n))
        };
        ResponseTemplate::new(self.status)
            .insert_header("content-type", self.content_type)
            .set_body_string(body)
    }
}

/// A create that answers after the carrier timeout: the attempt ends ambiguously.
async fn mount_slow_create(case: &Case, server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(case.create_path))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", case.create_answer.1)
                .set_body_bytes(fixture(case.carrier, case.create_answer.0))
                .set_delay(Duration::from_millis(1500)),
        )
        .mount(server)
        .await;
}

async fn mount_create_ok(case: &Case, server: &MockServer) {
    let status = if case.carrier == "dhl_express" {
        201
    } else {
        200
    };
    let (file, content_type) = case.create_answer;
    let body = String::from_utf8(fixture(case.carrier, file)).unwrap();
    Mock::given(method("POST"))
        .and(path(case.create_path))
        .respond_with(UniqueNumbers {
            body,
            number: case.tracking_number,
            status,
            content_type,
            calls: Default::default(),
        })
        .mount(server)
        .await;
}

async fn requests_to(server: &MockServer, p: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == p)
        .collect()
}

/// Create calls only (SF Express serves every service on one path; its lookups are not creates).
async fn create_calls(server: &MockServer, case: &Case) -> usize {
    requests_to(server, case.create_path)
        .await
        .iter()
        .filter(|r| !String::from_utf8_lossy(&r.body).contains("OrderSearchService"))
        .count()
}

async fn label_bytes(app: &TestApp, number: &str) -> (String, Vec<u8>) {
    let res = app
        .client
        .get(format!("{}/v1/waybills/{number}/label", app.address))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    (ct, res.bytes().await.unwrap().to_vec())
}
