//! The finance service through HTTP: the ledger's accounts and transfers (idempotent, two-phase,
//! linked), what it refuses, the waybill charges it posts by itself, and its invariants under
//! concurrent posting.

mod feed;
mod invariants;
mod invoices;
mod ledger;
mod payments;
mod paypal;
mod reports;
mod two_phase;

use crate::helpers::{Reply, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

/// Every ledger call, checked against the contract.
pub async fn fin(
    app: &TestApp,
    method: Method,
    path: &str,
    template: &str,
    body: Option<&Value>,
) -> Reply {
    app.call(method, path, template, Some(&app.key), body).await
}

pub async fn open(
    app: &TestApp,
    id: &str,
    currency: &str,
    kind: &str,
    limit: Option<&str>,
) -> Reply {
    let mut body = json!({"currency": currency, "kind": kind, "name": id});
    if let Some(flag) = limit {
        body[flag] = json!(true);
    }
    fin(
        app,
        Method::PUT,
        &format!("/v1/ledger/accounts/{id}"),
        "/v1/ledger/accounts/{id}",
        Some(&body),
    )
    .await
}

pub async fn transfer(app: &TestApp, body: Value) -> Reply {
    fin(
        app,
        Method::POST,
        "/v1/ledger/transfers",
        "/v1/ledger/transfers",
        Some(&body),
    )
    .await
}

pub async fn batch(app: &TestApp, transfers: Value) -> Reply {
    fin(
        app,
        Method::POST,
        "/v1/ledger/transfer-batches",
        "/v1/ledger/transfer-batches",
        Some(&json!({ "transfers": transfers })),
    )
    .await
}

/// The account's posted balance (normal side) and its four counters.
pub async fn account(app: &TestApp, id: &str) -> Value {
    let r = fin(
        app,
        Method::GET,
        &format!("/v1/ledger/accounts/{id}"),
        "/v1/ledger/accounts/{id}",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["account"].clone()
}

pub async fn balance(app: &TestApp, id: &str) -> i64 {
    account(app, id).await["balance"].as_i64().expect("balance")
}

/// The ledger holds: counters equal history, limits kept, debits equal credits per currency.
pub async fn assert_ledger_holds(app: &TestApp) {
    let finance = shipgate::finance::FinanceService::new(app.db.clone());
    let problems = finance.verify().await.expect("verify");
    assert!(
        problems.is_empty(),
        "ledger invariants broken: {problems:#?}"
    );
    let r = fin(
        app,
        Method::GET,
        "/v1/ledger/trial-balance",
        "/v1/ledger/trial-balance",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for c in r.body["currencies"].as_array().expect("currencies") {
        assert_eq!(c["debitsPosted"], c["creditsPosted"], "{c}");
        assert_eq!(c["debitsPending"], c["creditsPending"], "{c}");
    }
}

/// A cash account that may not go below zero, an equity account to fund it, and a revenue
/// account, all in `currency`.
pub async fn chart(app: &TestApp, currency: &str) {
    for (id, kind, limit) in [
        ("cash", "asset", Some("creditsMustNotExceedDebits")),
        ("equity", "equity", None),
        ("revenue", "revenue", None),
    ] {
        let r = open(app, &format!("{id}:{currency}"), currency, kind, limit).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
}
