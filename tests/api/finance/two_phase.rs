//! Two-phase transfers: a pending amount is held (and counts against limits), then posted in
//! full or in part, voided, or expired by the background sweep.

use super::{account, assert_ledger_holds, balance, chart, fin, transfer};
use crate::helpers::{Backend, TestApp, spawn_app};
use reqwest::Method;
use serde_json::json;

async fn holds_then_posts_voids_or_expires(app: &TestApp) {
    chart(app, "USD").await;
    let fund = json!({"id": "fund", "debitAccount": "cash:USD", "creditAccount": "equity:USD", "amount": 1000});
    assert_eq!(transfer(app, fund).await.status, 201);
    let hold = |id: &str, amount: i64, timeout: i64| {
        json!({"id": id, "debitAccount": "revenue:USD", "creditAccount": "cash:USD",
               "amount": amount, "kind": "pending", "timeoutSecs": timeout, "code": "authorization"})
    };
    let r = transfer(app, hold("auth-1", 700, 0)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["transfer"]["state"], "pending");
    let cash = account(app, "cash:USD").await;
    assert_eq!(cash["creditsPending"], 700);
    assert_eq!(
        cash["balance"], 1000,
        "a hold does not move the posted balance"
    );
    // The hold counts against the limit: 700 held + 400 would exceed 1000.
    let over = transfer(app, hold("auth-2", 400, 0)).await;
    assert_eq!(over.status, 409);
    assert_eq!(over.error_code(), "EXCEEDS_DEBITS");

    // Post part of it: the rest is released.
    let post = transfer(
        app,
        json!({"id": "capture-1", "kind": "post_pending", "pendingId": "auth-1", "amount": 500}),
    )
    .await;
    assert_eq!(post.status, 201, "{}", post.body);
    assert_eq!(post.body["transfer"]["debitAccount"], "revenue:USD");
    let cash = account(app, "cash:USD").await;
    assert_eq!(
        (cash["creditsPending"].as_i64(), cash["balance"].as_i64()),
        (Some(0), Some(500))
    );
    let again = transfer(
        app,
        json!({"id": "capture-2", "kind": "post_pending", "pendingId": "auth-1"}),
    )
    .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.error_code(), "PENDING_TRANSFER_NOT_PENDING");
    let pending = fin(
        app,
        Method::GET,
        "/v1/ledger/transfers/auth-1",
        "/v1/ledger/transfers/{id}",
        None,
    )
    .await;
    assert_eq!(pending.body["transfer"]["state"], "posted");

    // Void another hold.
    assert_eq!(transfer(app, hold("auth-3", 200, 0)).await.status, 201);
    let void = transfer(
        app,
        json!({"id": "void-3", "kind": "void_pending", "pendingId": "auth-3"}),
    )
    .await;
    assert_eq!(void.status, 201, "{}", void.body);
    assert_eq!(account(app, "cash:USD").await["creditsPending"], 0);
    let more = transfer(
        app,
        json!({"id": "capture-3", "kind": "post_pending", "pendingId": "auth-3", "amount": 999}),
    )
    .await;
    assert_eq!(more.error_code(), "PENDING_TRANSFER_NOT_PENDING");
    let wrong = transfer(
        app,
        json!({"id": "capture-x", "kind": "post_pending", "pendingId": "fund"}),
    )
    .await;
    assert_eq!(wrong.error_code(), "PENDING_TRANSFER_NOT_FOUND");

    // A hold with a timeout expires in the background sweep (its time is moved back here
    // rather than waited for).
    assert_eq!(transfer(app, hold("auth-4", 300, 60)).await.status, 201);
    let too_much = transfer(
        app,
        json!({"id": "capture-4x", "kind": "post_pending", "pendingId": "auth-4", "amount": 301}),
    )
    .await;
    assert_eq!(too_much.error_code(), "AMOUNT_EXCEEDS_PENDING");
    sqlx::query("UPDATE fin_transfers SET expires_at_ms = 1 WHERE id = 'auth-4'")
        .execute(&app.db.pool)
        .await
        .expect("age the hold");
    let late = transfer(
        app,
        json!({"id": "capture-4", "kind": "post_pending", "pendingId": "auth-4"}),
    )
    .await;
    assert_eq!(late.status, 409);
    assert_eq!(late.error_code(), "PENDING_TRANSFER_EXPIRED");
    let step = app.run_background().await;
    assert_eq!(step.transfers_expired, 1);
    let expired = fin(
        app,
        Method::GET,
        "/v1/ledger/transfers/auth-4",
        "/v1/ledger/transfers/{id}",
        None,
    )
    .await;
    assert_eq!(expired.body["transfer"]["state"], "expired");
    assert_eq!(account(app, "cash:USD").await["creditsPending"], 0);
    assert_eq!(balance(app, "cash:USD").await, 500);
    assert_eq!(app.run_background().await.transfers_expired, 0, "once");
    assert_ledger_holds(app).await;
}

#[tokio::test]
async fn pending_transfers_hold_then_post_void_or_expire_on_sqlite() {
    holds_then_posts_voids_or_expires(&spawn_app(Backend::Sqlite).await).await;
}

#[tokio::test]
async fn pending_transfers_hold_then_post_void_or_expire_on_postgres() {
    crate::needs!(Postgres);
    holds_then_posts_voids_or_expires(&spawn_app(Backend::Postgres).await).await;
}
