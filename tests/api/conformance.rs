//! The carrier conformance suite, written once and run for every carrier through shipgate's HTTP
//! API against a mock of that carrier answering with its real payloads (carriers/tests/fixtures).

use crate::helpers::{Backend, TestApp, spawn_app_with, waybill_request};
use reqwest::Method;
use serde_json::{Value, json};
use shipgate::settings::{HttpCarrierSettings, Settings};
use std::time::Duration;
use wiremock::matchers::{body_string_contains, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

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
    spawn_app_with(Backend::Sqlite, |s| {
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
    .await
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

#[tokio::test]
async fn create_label_and_cancel() {
    for case in cases() {
        let server = MockServer::start().await;
        (case.mount)(&server).await;
        mount_create_ok(&case, &server).await;
        let app = app_for(&case, &server, |_| {}).await;

        let created = app.create(&request(&case, "PO-CONF-1")).await;
        assert_eq!(created.status, 201, "{}: {}", case.carrier, created.body);
        assert_eq!(
            created.body["trackingNumber"], case.tracking_number,
            "{}",
            case.carrier
        );
        assert_eq!(created.body["carrier"], case.carrier);
        let number = created.waybill_number().to_owned();
        assert_eq!(created.body["label"]["format"], "pdf", "{}", case.carrier);
        let (content_type, pdf) = label_bytes(&app, &number).await;
        assert_eq!(content_type, "application/pdf");
        assert!(
            pdf.starts_with(b"%PDF-"),
            "{}: label is not a PDF",
            case.carrier
        );
        let b64 = app
            .call(
                Method::GET,
                &format!("/v1/waybills/{number}/label?encoding=base64"),
                "/v1/waybills/{number}/label",
                Some(&app.key),
                None,
            )
            .await;
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.body["labelBase64"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, pdf, "base64 and PDF forms are the same label");
        if case.label_scans_as_number {
            let codes = crate::helpers::pdf::barcodes(&pdf, 300, None);
            assert!(
                codes.iter().any(|c| c.contains(case.tracking_number)),
                "{}: no barcode carries {} in {codes:?}",
                case.carrier,
                case.tracking_number
            );
        }
        if case.own_label {
            // Printed from SF's routing data: the destination route code and product name.
            let text = crate::helpers::pdf::text(&pdf);
            assert!(text.contains("755W-755BF"), "{text}");
            assert!(text.contains(case.tracking_number), "{text}");
            assert_eq!(
                app.count(
                    "SELECT COUNT(*) FROM waybills WHERE routing_json LIKE '%destRouteLabel%'"
                )
                .await,
                1
            );
        }

        let metrics = app
            .client
            .get(format!("{}/metrics", app.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let line = format!(
            "carrier=\"{}\",operation=\"create\",outcome=\"ok\"",
            case.carrier
        );
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("shipgate_carrier_requests_total") && l.contains(&line)),
            "{}: no create metric in\n{metrics}",
            case.carrier
        );

        let cancelled = app
            .call(
                Method::POST,
                &format!("/v1/waybills/{number}/cancel"),
                "/v1/waybills/{number}/cancel",
                Some(&app.key),
                None,
            )
            .await;
        assert_eq!(cancelled.status, 200, "{}", cancelled.body);
        assert_eq!(cancelled.body["state"], "cancelled");
        let again = app.get_waybill(&app.key, &number).await;
        assert_eq!(again.body["state"], "cancelled");
        assert_eq!(app.charges().await, 1);
    }
}

#[tokio::test]
async fn carrier_errors_keep_the_carriers_code() {
    for case in cases() {
        let server = MockServer::start().await;
        (case.mount)(&server).await;
        let (status, code, file, public_code) = case.create_error;
        Mock::given(method("POST"))
            .and(path(case.create_path))
            .respond_with(json_fixture_with(status, case.carrier, file))
            .mount(&server)
            .await;
        let app = app_for(&case, &server, |_| {}).await;
        let r = app.create(&request(&case, "PO-CONF-ERR")).await;
        assert_eq!(r.status, 502, "{}: {}", case.carrier, r.body);
        assert_eq!(r.error_code(), public_code, "{}", case.carrier);
        if public_code == "CARRIER_REJECTED" {
            assert_eq!(r.body["carrierErrorCode"], code, "{}", case.carrier);
            assert!(!r.body["carrierErrorMsg"].as_str().unwrap_or("").is_empty());
        } else {
            // Refused credentials name the carrier's own code in the message.
            assert!(
                r.body["errorMsg"].as_str().unwrap().contains(code),
                "{}",
                r.body
            );
        }
        assert_eq!(
            app.count("SELECT COUNT(*) FROM waybills").await,
            0,
            "a rejection keeps nothing"
        );

        // An unreadable body names the carrier instead of failing obscurely.
        server.reset().await;
        (case.mount)(&server).await;
        Mock::given(method("POST"))
            .and(path(case.create_path))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"))
            .mount(&server)
            .await;
        let r = app.create(&request(&case, "PO-CONF-GARBAGE")).await;
        assert_eq!(r.status, 502, "{}", r.body);
        assert_eq!(r.error_code(), "CARRIER_BAD_RESPONSE");
        assert!(
            r.body["errorMsg"].as_str().unwrap().contains(case.carrier),
            "{}",
            r.body
        );
    }
}

#[tokio::test]
async fn tokens_are_fetched_once_and_refreshed_once_on_a_401() {
    for case in cases() {
        let Some(token_path) = case.token_path else {
            continue;
        };
        let server = MockServer::start().await;
        (case.mount)(&server).await;
        // The first create is refused as if the token had been revoked; the retry succeeds.
        Mock::given(method("POST"))
            .and(path(case.create_path))
            .respond_with(ResponseTemplate::new(401).set_body_string("{}"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        mount_create_ok(&case, &server).await;
        let app = app_for(&case, &server, |_| {}).await;

        let replies = futures_util::future::join_all((0..8).map(|i| {
            let body = request(&case, &format!("PO-CONF-TOKEN-{i}"));
            let app = &app;
            async move { app.create(&body).await }
        }))
        .await;
        for r in &replies {
            assert_eq!(r.status, 201, "{}: {}", case.carrier, r.body);
        }
        // Eight concurrent first calls share one token; the 401 costs exactly one refresh.
        assert_eq!(
            requests_to(&server, token_path).await.len(),
            2,
            "{}",
            case.carrier
        );
    }
}

#[tokio::test]
async fn refused_credentials_are_a_distinct_error() {
    for case in cases() {
        let Some(token_path) = case.token_path else {
            continue;
        };
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(token_path))
            .respond_with(
                ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client"})),
            )
            .mount(&server)
            .await;
        let app = app_for(&case, &server, |_| {}).await;
        let r = app.create(&request(&case, "PO-CONF-AUTH")).await;
        assert_eq!(r.status, 502, "{}", r.body);
        assert_eq!(r.error_code(), "CARRIER_AUTH_FAILED", "{}", case.carrier);
    }
}

#[tokio::test]
async fn a_timeout_is_resolved_by_lookup_without_a_second_shipment() {
    for case in cases() {
        let server = MockServer::start().await;
        (case.mount)(&server).await;
        // The carrier creates the shipment but answers too late for us.
        Mock::given(method("POST"))
            .and(path(case.create_path))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", case.create_answer.1)
                    .set_body_bytes(fixture(case.carrier, case.create_answer.0))
                    .set_delay(Duration::from_millis(1500)),
            )
            .mount(&server)
            .await;
        let app = app_for(&case, &server, |c| c.timeout_ms = 300).await;
        let started = std::time::Instant::now();
        let r = app.create(&request(&case, "PO-CONF-TIMEOUT")).await;
        assert_eq!(r.status, 504, "{}: {}", case.carrier, r.body);
        assert_eq!(r.error_code(), "CARRIER_TIMEOUT");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "answered within the 3 s promise"
        );

        let retried = app.create(&request(&case, "PO-CONF-TIMEOUT")).await;
        if case.lookup {
            assert_eq!(retried.status, 201, "{}: {}", case.carrier, retried.body);
            assert_eq!(app.charges().await, 1);
        } else {
            // Without a lookup the state cannot be settled: refuse rather than ship twice.
            assert_eq!(retried.status, 409, "{}: {}", case.carrier, retried.body);
            assert_eq!(retried.error_code(), "SHIPMENT_STATE_UNKNOWN");
        }
        let creates = create_calls(&server, &case).await;
        assert_eq!(creates, 1, "{}: one shipment only", case.carrier);
    }
}

#[tokio::test]
async fn the_breaker_opens_while_a_carrier_is_down() {
    for case in cases() {
        let server = MockServer::start().await;
        (case.mount)(&server).await;
        Mock::given(method("POST"))
            .and(path(case.create_path))
            .respond_with(ResponseTemplate::new(503).set_body_string("down"))
            .mount(&server)
            .await;
        let app = app_for(&case, &server, |c| {
            c.breaker_failures = 3;
            c.breaker_open_ms = 60_000;
        })
        .await;
        for i in 0..3 {
            let r = app
                .create(&request(&case, &format!("PO-CONF-DOWN-{i}")))
                .await;
            assert_eq!(r.status, 502, "{}: {}", case.carrier, r.body);
        }
        let calls = create_calls(&server, &case).await;
        let r = app.create(&request(&case, "PO-CONF-DOWN-X")).await;
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.error_code(), "CARRIER_UNAVAILABLE");
        assert_eq!(
            create_calls(&server, &case).await,
            calls,
            "refused without calling"
        );
    }
}

#[tokio::test]
async fn a_hanging_carrier_times_out_opens_the_breaker_and_recovers() {
    let case = fedex();
    let server = MockServer::start().await;
    (case.mount)(&server).await;
    // The carrier accepts connections and never answers in time.
    Mock::given(method("POST"))
        .and(path(case.create_path))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let app = app_for(&case, &server, |c| {
        c.timeout_ms = 400;
        c.breaker_failures = 2;
        c.breaker_open_ms = 1500;
    })
    .await;
    for i in 0..2 {
        let started = std::time::Instant::now();
        let r = app.create(&request(&case, &format!("PO-HANG-{i}"))).await;
        assert_eq!(r.status, 504, "{}", r.body);
        assert_eq!(r.error_code(), "CARRIER_TIMEOUT");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    // Open: refused at once, without calling the carrier.
    let calls = create_calls(&server, &case).await;
    let started = std::time::Instant::now();
    let r = app.create(&request(&case, "PO-HANG-OPEN")).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.error_code(), "CARRIER_UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_millis(300));
    assert_eq!(create_calls(&server, &case).await, calls);

    // The carrier recovers; after the open period one trial goes through and closes it.
    server.reset().await;
    (case.mount)(&server).await;
    mount_create_ok(&case, &server).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let r = app.create(&request(&case, "PO-HANG-BACK-1")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = app.create(&request(&case, "PO-HANG-BACK-2")).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn the_rate_limit_makes_callers_wait_up_to_a_bound() {
    for case in cases() {
        let server = MockServer::start().await;
        (case.mount)(&server).await;
        mount_create_ok(&case, &server).await;
        let case = &case;
        let send_four = |app: TestApp, prefix: &'static str| async move {
            futures_util::future::join_all((0..4).map(|i| {
                let body = request(case, &format!("{prefix}-{i}"));
                let app = &app;
                async move { app.create(&body).await.status.as_u16() }
            }))
            .await
        };
        // 20 per second, burst 1, wait up to 1 s: four calls all get their turn.
        let patient = app_for(case, &server, |c| {
            c.rate_per_second = 20;
            c.rate_burst = 1;
            c.rate_max_wait_ms = 1000;
        })
        .await;
        let statuses = send_four(patient, "PO-CONF-RATE").await;
        assert!(
            statuses.iter().all(|s| *s == 201),
            "{}: {statuses:?}",
            case.carrier
        );
        // 1 per second, burst 1, no waiting: the calls beyond the quota are refused.
        let strict = app_for(case, &server, |c| {
            c.rate_per_second = 1;
            c.rate_burst = 1;
            c.rate_max_wait_ms = 1;
        })
        .await;
        let statuses = send_four(strict, "PO-CONF-RATE-STRICT").await;
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses.iter().filter(|s| **s != 201).all(|s| *s == 503),
            "{statuses:?}"
        );
    }
}

#[tokio::test]
async fn an_sf_duplicate_order_is_adopted_not_refused() {
    // SF refuses an order id it has seen (8016): the order exists, so it is looked up and used.
    let case = sf();
    let server = MockServer::start().await;
    (case.mount)(&server).await;
    Mock::given(method("POST"))
        .and(path(case.create_path))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?><Response><Head>ERR</Head>\
             <ERROR code=\"8016\">重复下单</ERROR></Response>",
        ))
        .mount(&server)
        .await;
    let app = app_for(&case, &server, |_| {}).await;
    let r = app.create(&request(&case, "PO-SF-DUP")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["trackingNumber"], case.tracking_number);
    assert_eq!(create_calls(&server, &case).await, 1);
    assert_eq!(app.charges().await, 1);
}
