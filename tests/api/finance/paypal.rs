//! PayPal's webhooks through HTTP: deliveries signed the PayPal way (RSA over
//! `id|time|webhook id|crc32`), the certificate fetched from a PayPal host (a mock standing in
//! for api.paypal.com, serving a test certificate with PayPal's name), captures with their fees,
//! refunds, and refusals. PayPal's own signed deliveries verify in the unit tests (their
//! certificate has expired, so they need the delivery's clock).

use super::{assert_ledger_holds, balance, fin};
use crate::helpers::{Backend, Reply, TestApp, spawn_app_with};
use crate::orders::{get_order, ingest, order};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WEBHOOK_ID: &str = "8PT597110X687430LKGECATA";
const CERT_URL: &str = "https://api.paypal.com/v1/notifications/certs/CERT-test-0001";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/payments/paypal/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

fn sign(id: &str, time: &str, webhook_id: &str, body: &[u8]) -> String {
    let key = ring::signature::RsaKeyPair::from_pkcs8(&fixture("test_only_signing_key.pk8"))
        .expect("key");
    let message = format!("{id}|{time}|{webhook_id}|{}", crc32fast::hash(body));
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        message.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    base64::engine::general_purpose::STANDARD.encode(sig)
}

async fn deliver(
    app: &TestApp,
    path: &str,
    body: &Value,
    time: &str,
    webhook_id: &str,
    cert_url: &str,
) -> Reply {
    let bytes = serde_json::to_vec(body).expect("body");
    let id = uuid::Uuid::new_v4().to_string();
    let res = app
        .client
        .post(format!("{}{path}", app.address))
        .header("Content-Type", "application/json")
        .header("paypal-transmission-id", &id)
        .header("paypal-transmission-time", time)
        .header(
            "paypal-transmission-sig",
            sign(&id, time, webhook_id, &bytes),
        )
        .header("paypal-cert-url", cert_url)
        .header("paypal-auth-algo", "SHA256withRSA")
        .body(bytes)
        .send()
        .await
        .expect("request");
    let reply = Reply::read(res).await;
    crate::helpers::contract::check(
        "POST",
        "/v1/payment-webhooks/{provider}/{id}",
        reply.status.as_u16(),
        &reply.body,
    );
    reply
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn paypal_captures_fees_and_refunds_post_once() {
    let paypal = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/notifications/certs/CERT-test-0001"))
        .respond_with(
            ResponseTemplate::new(200).set_body_bytes(fixture("test_only_signing_cert.pem")),
        )
        .expect(1)
        .mount(&paypal)
        .await;
    let base = paypal.uri();
    let app = spawn_app_with(Backend::Sqlite, |s| s.finance.paypal_api_base = base).await;
    let account = fin(
        &app,
        Method::PUT,
        "/v1/payment-accounts/paypal/main",
        "/v1/payment-accounts/{provider}/{name}",
        Some(&json!({"webhookSecret": WEBHOOK_ID})),
    )
    .await;
    assert_eq!(account.status, 201, "{}", account.body);
    let hook = account.body["paymentAccount"]["webhookPath"]
        .as_str()
        .expect("path")
        .to_owned();
    let placed = ingest(&app, &order("PP-2001", "PB-1", 1)).await;
    let order_id = placed.body["order"]["orderId"]
        .as_str()
        .expect("id")
        .to_owned();
    app.run_background().await;

    // PayPal's own capture event, the merchant's order number in custom_id.
    let mut capture: Value =
        serde_json::from_slice(&fixture("PAYMENT.CAPTURE.COMPLETED.body.json")).expect("json");
    capture["resource"]["custom_id"] = json!("PP-2001");
    let r = deliver(&app, &hook, &capture, &now(), WEBHOOK_ID, CERT_URL).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["payment"]["orderId"], order_id.as_str());
    assert_eq!(
        balance(&app, "cash.paypal:USD").await,
        3000 - 154 - 200,
        "gross less PayPal's and the platform's fees"
    );
    assert_eq!(balance(&app, "fees.paypal:USD").await, 354);
    assert_eq!(balance(&app, "revenue.sales:USD").await, 3000);
    let again = deliver(&app, &hook, &capture, &now(), WEBHOOK_ID, CERT_URL).await;
    assert_eq!(again.body["outcome"], "duplicate");
    assert_eq!(balance(&app, "cash.paypal:USD").await, 2646);

    // A full refund of that capture: matched through its capture, the order follows.
    let mut refund: Value =
        serde_json::from_slice(&fixture("PAYMENT.CAPTURE.REFUNDED.body.json")).expect("json");
    refund["resource"]["amount"]["value"] = json!("30.00");
    refund["resource"]["seller_payable_breakdown"]["total_refunded_amount"]["value"] =
        json!("30.00");
    refund["resource"]["links"][1]["href"] =
        json!("https://api.paypal.com/v2/payments/captures/12A34567BC123456S");
    let r = deliver(&app, &hook, &refund, &now(), WEBHOOK_ID, CERT_URL).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["payment"]["orderId"], order_id.as_str());
    assert_eq!(balance(&app, "sales_returns:USD").await, 3000);
    app.wait_for("the order to follow its refund", 20, || async {
        let r = get_order(&app, &order_id).await;
        (r.body["order"]["paymentStatus"] == "refunded").then_some(())
    })
    .await;

    // Refused: another webhook id, a stale transmission, a certificate URL off PayPal's hosts.
    let mut other = capture.clone();
    other["id"] = json!("WH-other-1");
    let stale = (chrono::Utc::now() - chrono::Duration::minutes(10))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (time, webhook_id, cert) in [
        (now(), "WRONG_ID", CERT_URL.to_owned()),
        (stale, WEBHOOK_ID, CERT_URL.to_owned()),
        (
            now(),
            WEBHOOK_ID,
            format!("{}/v1/notifications/certs/CERT-test-0001", paypal.uri()),
        ),
    ] {
        let r = deliver(&app, &hook, &other, &time, webhook_id, &cert).await;
        assert_eq!(r.status, 401, "{time} {webhook_id} {cert}: {}", r.body);
    }
    assert_ledger_holds(&app).await;
}
