//! Stripe's webhooks into the ledger: signed deliveries recorded and posted once, matched to
//! their order (which follows: paid, refunded), unmatched ones kept for review, bad and replayed
//! signatures refused. The events are Stripe's own fixtures, given the order's id in their
//! metadata as a merchant's integration does.

use super::{assert_ledger_holds, balance, fin};
use crate::helpers::{Backend, Reply, TestApp, spawn_app};
use crate::orders::{get_order, ingest, order};
use hmac::{KeyInit, Mac};
use reqwest::Method;
use serde_json::{Value, json};

const SECRET: &str = "whsec_test_6f1c0a9e2b";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/payments/stripe/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("json")
}

fn sign(body: &[u8], secret: &str, t: i64) -> String {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    m.update(format!("{t}.").as_bytes());
    m.update(body);
    format!("t={t},v1={}", hex::encode(m.finalize().into_bytes()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

async fn deliver(app: &TestApp, path: &str, event: &Value, signature: &str) -> Reply {
    let body = serde_json::to_vec(event).expect("body");
    let res = app
        .client
        .post(format!("{}{path}", app.address))
        .header("Content-Type", "application/json")
        .header("Stripe-Signature", signature)
        .body(body)
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

async fn signed(app: &TestApp, path: &str, event: &Value) -> Reply {
    let body = serde_json::to_vec(event).expect("body");
    deliver(app, path, event, &sign(&body, SECRET, now())).await
}

async fn payments_follow_through_ledger_and_orders(app: &TestApp) {
    let account = fin(
        app,
        Method::PUT,
        "/v1/payment-accounts/stripe/main",
        "/v1/payment-accounts/{provider}/{name}",
        Some(&json!({"webhookSecret": SECRET})),
    )
    .await;
    assert_eq!(account.status, 201, "{}", account.body);
    let path = account.body["paymentAccount"]["webhookPath"]
        .as_str()
        .expect("path")
        .to_owned();
    let listed = fin(
        app,
        Method::GET,
        "/v1/payment-accounts",
        "/v1/payment-accounts",
        None,
    )
    .await;
    assert!(
        !listed.body.to_string().contains(SECRET),
        "the secret is never shown"
    );

    let placed = ingest(app, &order("PAY-1001", "PB-1", 1)).await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    let order_id = placed.body["order"]["orderId"]
        .as_str()
        .expect("id")
        .to_owned();
    app.run_background().await;

    // The fixtures' ids were zeroed when they were published; real events' ids are unique.
    let mut paid = fixture("event_payment_intent.succeeded.json");
    paid["id"] = json!("evt_paid_1");
    paid["data"]["object"]["metadata"] = json!({"order_id": "PAY-1001"});
    let r = signed(app, &path, &paid).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["outcome"], "recorded");
    assert_eq!(r.body["payment"]["orderId"], order_id.as_str());
    assert_eq!(r.body["payment"]["amount"], 2000);
    assert_eq!(balance(app, "cash.stripe:USD").await, 2000);
    assert_eq!(balance(app, "revenue.sales:USD").await, 2000);

    // Stripe delivers again (a retry, freshly signed): acknowledged, nothing posted twice.
    let again = signed(app, &path, &paid).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["outcome"], "duplicate");
    assert_eq!(balance(app, "cash.stripe:USD").await, 2000);

    // Refused: a wrong secret, a replay of an old delivery, an unknown account, no signature.
    let body = serde_json::to_vec(&paid).expect("body");
    for (p, sig) in [
        (path.clone(), sign(&body, "whsec_someone_else", now())),
        (path.clone(), sign(&body, SECRET, now() - 301)),
        (
            "/v1/payment-webhooks/stripe/pac_unknown".to_owned(),
            sign(&body, SECRET, now()),
        ),
        (path.clone(), String::new()),
    ] {
        let r = deliver(app, &p, &paid, &sig).await;
        assert_eq!(r.status, 401, "{p} {sig}: {}", r.body);
        assert_eq!(r.error_code(), "CALLBACK_UNAUTHORIZED");
    }

    let seen = app
        .wait_for("the order to follow its payment", 20, || async {
            let r = get_order(app, &order_id).await;
            (r.body["order"]["paymentStatus"] == "paid").then_some(r)
        })
        .await;
    assert_eq!(seen.body["order"]["paymentStatus"], "paid");

    // The refund matches through its charge, posts once per refund id, and the order follows.
    let mut refund = fixture("event_charge.refunded.json");
    refund["id"] = json!("evt_refund_1");
    let r = signed(app, &path, &refund).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["payment"]["orderId"], order_id.as_str());
    assert_eq!(balance(app, "sales_returns:USD").await, 100);
    assert_eq!(balance(app, "cash.stripe:USD").await, 1900);
    app.wait_for("the order to follow its refund", 20, || async {
        let r = get_order(app, &order_id).await;
        (r.body["order"]["paymentStatus"] == "refunded").then_some(())
    })
    .await;

    // A payment naming no known order is posted to suspense and kept for review.
    let mut stray = fixture("event_payment_intent.succeeded.json");
    stray["id"] = json!("evt_stray_1");
    stray["data"]["object"]["id"] = json!("pi_stray_1");
    stray["data"]["object"]["metadata"] = json!({"order_id": "NO-SUCH-ORDER"});
    let r = signed(app, &path, &stray).await;
    assert_eq!(r.body["payment"]["status"], "unmatched");
    assert_eq!(balance(app, "suspense.unmatched_payments:USD").await, 2000);
    let review = fin(
        app,
        Method::GET,
        "/v1/payments?status=unmatched",
        "/v1/payments",
        None,
    )
    .await;
    let queue = review.body["payments"].as_array().expect("payments");
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0]["orderRef"], "NO-SUCH-ORDER");

    // An operator matches it by hand: suspense to sales, and the order is paid.
    let second = ingest(app, &order("PAY-1002", "PB-1", 1)).await;
    let second_id = second.body["order"]["orderId"]
        .as_str()
        .expect("id")
        .to_owned();
    app.run_background().await;
    let matched = fin(
        app,
        Method::POST,
        "/v1/payments/stripe/evt_stray_1/match",
        "/v1/payments/{provider}/{event_id}/match",
        Some(&json!({"orderId": "PAY-1002"})),
    )
    .await;
    assert_eq!(matched.status, 200, "{}", matched.body);
    assert_eq!(matched.body["payment"]["orderId"], second_id.as_str());
    assert_eq!(balance(app, "suspense.unmatched_payments:USD").await, 0);
    assert_eq!(balance(app, "revenue.sales:USD").await, 4000);
    let twice = fin(
        app,
        Method::POST,
        "/v1/payments/stripe/evt_stray_1/match",
        "/v1/payments/{provider}/{event_id}/match",
        Some(&json!({"orderId": "PAY-1002"})),
    )
    .await;
    assert_eq!(twice.status, 409);
    app.wait_for("the matched order to be paid", 20, || async {
        let r = get_order(app, &second_id).await;
        (r.body["order"]["paymentStatus"] == "paid").then_some(())
    })
    .await;

    // Events with nothing to post are recorded and acknowledged.
    let mut payout = fixture("event_payout.paid.json");
    payout["id"] = json!("evt_payout_1");
    let payout = signed(app, &path, &payout).await;
    assert_eq!(payout.status, 200);
    assert_eq!(payout.body["payment"]["status"], "ignored");
    let junk = deliver(
        app,
        &path,
        &json!({"no": "id"}),
        &sign(br#"{"no":"id"}"#, SECRET, now()),
    )
    .await;
    assert_eq!(junk.status, 400, "{}", junk.body);
    assert_ledger_holds(app).await;
}

#[tokio::test]
async fn stripe_payments_post_once_and_orders_follow_on_sqlite() {
    payments_follow_through_ledger_and_orders(&spawn_app(Backend::Sqlite).await).await;
}

#[tokio::test]
async fn stripe_payments_post_once_and_orders_follow_on_postgres() {
    crate::needs!(Postgres);
    payments_follow_through_ledger_and_orders(&spawn_app(Backend::Postgres).await).await;
}
