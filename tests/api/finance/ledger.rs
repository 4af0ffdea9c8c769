//! Accounts, one-phase transfers, their idempotency, what is refused, and linked chains.

use super::{assert_ledger_holds, balance, batch, chart, fin, open, transfer};
use crate::helpers::{Backend, TestApp, spawn_app};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn accounts_open_once_and_read_back_with_their_balances() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = open(
        &app,
        "cash:USD",
        "usd",
        "asset",
        Some("creditsMustNotExceedDebits"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["account"]["currency"], "USD");
    assert_eq!(r.body["account"]["balance"], 0);
    let again = open(
        &app,
        "cash:USD",
        "USD",
        "asset",
        Some("creditsMustNotExceedDebits"),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    let other = open(&app, "cash:USD", "USD", "liability", None).await;
    assert_eq!(other.status, 409);
    assert_eq!(other.error_code(), "ACCOUNT_CONFLICT");

    let bad = open(&app, "cash:XYZ", "XYZ", "asset", None).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["details"][0]["field"], "currency");
    let bad_kind = fin(
        &app,
        Method::PUT,
        "/v1/ledger/accounts/x",
        "/v1/ledger/accounts/{id}",
        Some(&json!({"currency": "USD", "kind": "income"})),
    )
    .await;
    assert_eq!(bad_kind.status, 400);
    assert_eq!(bad_kind.body["details"][0]["field"], "kind");
    let missing = fin(
        &app,
        Method::GET,
        "/v1/ledger/accounts/nope",
        "/v1/ledger/accounts/{id}",
        None,
    )
    .await;
    assert_eq!(missing.status, 404);

    // Another tenant sees none of it.
    let other_key = app.new_key("globex").await;
    let theirs = app
        .call(
            Method::GET,
            "/v1/ledger/accounts/cash:USD",
            "/v1/ledger/accounts/{id}",
            Some(&other_key),
            None,
        )
        .await;
    assert_eq!(theirs.status, 404);
    let list = fin(
        &app,
        Method::GET,
        "/v1/ledger/accounts?currency=usd",
        "/v1/ledger/accounts",
        None,
    )
    .await;
    assert_eq!(list.body["accounts"].as_array().map(Vec::len), Some(1));
}

async fn transfers_post_once_per_id(app: &TestApp) {
    chart(app, "USD").await;
    let fund = json!({"id": "fund-1", "debitAccount": "cash:USD", "creditAccount": "equity:USD",
                      "amount": 10_000, "code": "capital", "reference": "opening"});
    let r = transfer(app, fund.clone()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["transfer"]["state"], "posted");
    assert_eq!(r.body["transfer"]["currency"], "USD");
    let replay = transfer(app, fund.clone()).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(replay.body["replayed"], true);
    assert_eq!(
        replay.body["transfer"], r.body["transfer"],
        "the first result"
    );
    let mut changed = fund.clone();
    changed["amount"] = json!(10_001);
    let conflict = transfer(app, changed).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.error_code(), "ID_CONFLICT");
    assert_eq!(balance(app, "cash:USD").await, 10_000);
    assert_eq!(balance(app, "equity:USD").await, 10_000);

    // Amounts as strings of digits are integers too.
    let sale = transfer(
        app,
        json!({"id": "sale-1", "debitAccount": "cash:USD", "creditAccount": "revenue:USD",
               "amount": "2500"}),
    )
    .await;
    assert_eq!(sale.status, 201, "{}", sale.body);
    assert_eq!(balance(app, "cash:USD").await, 12_500);
    let listed = fin(
        app,
        Method::GET,
        "/v1/ledger/transfers?account=cash:USD&limit=1",
        "/v1/ledger/transfers",
        None,
    )
    .await;
    assert_eq!(listed.body["transfers"][0]["id"], "fund-1");
    let next = listed.body["next"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let page2 = fin(
        app,
        Method::GET,
        &format!("/v1/ledger/transfers?account=cash:USD&limit=1&cursor={next}"),
        "/v1/ledger/transfers",
        None,
    )
    .await;
    assert_eq!(page2.body["transfers"][0]["id"], "sale-1");
    assert_ledger_holds(app).await;
}

#[tokio::test]
async fn a_transfer_posts_once_per_id_on_sqlite() {
    transfers_post_once_per_id(&spawn_app(Backend::Sqlite).await).await;
}

#[tokio::test]
async fn a_transfer_posts_once_per_id_on_postgres() {
    crate::needs!(Postgres);
    transfers_post_once_per_id(&spawn_app(Backend::Postgres).await).await;
}

#[tokio::test]
async fn bad_transfers_are_refused_with_stable_codes_and_change_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    chart(&app, "USD").await;
    chart(&app, "JPY").await;
    let ok = json!({"id": "t1", "debitAccount": "cash:USD", "creditAccount": "equity:USD", "amount": 100});
    let cases = [
        (
            json!({"amount": 10.5}),
            400,
            "VALIDATION_FAILED",
            Some("amount"),
        ),
        (
            json!({"amount": 1e3}),
            400,
            "VALIDATION_FAILED",
            Some("amount"),
        ),
        (
            json!({"amount": "12.00"}),
            400,
            "VALIDATION_FAILED",
            Some("amount"),
        ),
        (
            json!({"amount": -5}),
            400,
            "VALIDATION_FAILED",
            Some("amount"),
        ),
        (
            json!({"amount": 0}),
            400,
            "VALIDATION_FAILED",
            Some("amount"),
        ),
        (
            json!({"currency": "EURO"}),
            400,
            "VALIDATION_FAILED",
            Some("currency"),
        ),
        (
            json!({"creditAccount": "cash:USD"}),
            400,
            "VALIDATION_FAILED",
            Some("creditAccount"),
        ),
        (
            json!({"debitAccount": "nope"}),
            400,
            "UNKNOWN_ACCOUNT",
            None,
        ),
        (
            json!({"creditAccount": "equity:JPY"}),
            400,
            "CURRENCY_MISMATCH",
            None,
        ),
        (json!({"currency": "JPY"}), 400, "CURRENCY_MISMATCH", None),
        (
            json!({"id": "bad id!"}),
            400,
            "VALIDATION_FAILED",
            Some("id"),
        ),
        (
            json!({"kind": "posted"}),
            400,
            "VALIDATION_FAILED",
            Some("kind"),
        ),
        (
            json!({"kind": "post_pending"}),
            400,
            "VALIDATION_FAILED",
            Some("pendingId"),
        ),
        // cash may not be credited beyond its debits (it would go below zero)
        (
            json!({"debitAccount": "revenue:USD", "creditAccount": "cash:USD"}),
            409,
            "EXCEEDS_DEBITS",
            None,
        ),
    ];
    for (patch, status, code, field) in cases {
        let mut body = ok.clone();
        for (k, v) in patch.as_object().expect("object") {
            body[k] = v.clone();
        }
        let r = transfer(&app, body.clone()).await;
        assert_eq!(r.status, status, "{body} -> {}", r.body);
        assert_eq!(r.error_code(), code, "{body} -> {}", r.body);
        if let Some(f) = field {
            assert_eq!(r.body["details"][0]["field"], f, "{body} -> {}", r.body);
        }
    }
    let unknown_field = transfer(&app, json!({"id": "t2", "amount": 1, "debit": "cash:USD"})).await;
    assert_eq!(unknown_field.status, 400);
    assert_eq!(unknown_field.error_code(), "INVALID_JSON");
    for id in ["cash:USD", "equity:USD", "revenue:USD"] {
        assert_eq!(balance(&app, id).await, 0, "{id} untouched");
    }
    // The id was never used: it posts now.
    assert_eq!(transfer(&app, ok).await.status, 201);
    assert_ledger_holds(&app).await;
}

async fn linked_chains_post_together_or_not_at_all(app: &TestApp) {
    chart(app, "USD").await;
    let r = batch(
        app,
        json!([
            {"id": "fund", "debitAccount": "cash:USD", "creditAccount": "equity:USD", "amount": 1000},
            // a fee split: both legs or neither; the second would take cash below zero
            {"id": "leg-1", "debitAccount": "revenue:USD", "creditAccount": "cash:USD", "amount": 600, "linked": true},
            {"id": "leg-2", "debitAccount": "revenue:USD", "creditAccount": "cash:USD", "amount": 600},
            {"id": "after", "debitAccount": "cash:USD", "creditAccount": "revenue:USD", "amount": 5},
        ]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let results = r.body["results"].as_array().expect("results");
    let outcome: Vec<(&str, &str)> = results
        .iter()
        .map(|x| {
            (
                x["result"].as_str().unwrap_or(""),
                x["errorCode"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcome,
        [
            ("created", ""),
            ("failed", "LINKED_EVENT_FAILED"),
            ("failed", "EXCEEDS_DEBITS"),
            ("created", ""),
        ]
    );
    assert_eq!(balance(app, "cash:USD").await, 1005, "neither leg posted");

    let ok_chain = batch(
        app,
        json!([
            {"id": "leg-1", "debitAccount": "revenue:USD", "creditAccount": "cash:USD", "amount": 600, "linked": true},
            {"id": "leg-2", "debitAccount": "revenue:USD", "creditAccount": "cash:USD", "amount": 400},
        ]),
    )
    .await;
    let created = ok_chain.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|x| x["result"] == "created")
        .count();
    assert_eq!(created, 2, "{}", ok_chain.body);
    assert_eq!(balance(app, "cash:USD").await, 5);

    let open_chain = batch(
        app,
        json!([{"id": "dangling", "debitAccount": "cash:USD", "creditAccount": "equity:USD",
                "amount": 1, "linked": true}]),
    )
    .await;
    assert_eq!(
        open_chain.body["results"][0]["errorCode"],
        "LINKED_CHAIN_OPEN"
    );
    let malformed = batch(
        app,
        json!([{"id": "x", "debitAccount": "cash:USD", "creditAccount": "equity:USD", "amount": 1.5}]),
    )
    .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.body["details"][0]["field"], "transfers[0].amount");
    let empty = batch(app, json!([])).await;
    assert_eq!(empty.status, 400);
    assert_ledger_holds(app).await;
}

#[tokio::test]
async fn linked_chains_post_together_or_not_at_all_on_sqlite() {
    linked_chains_post_together_or_not_at_all(&spawn_app(Backend::Sqlite).await).await;
}

#[tokio::test]
async fn linked_chains_post_together_or_not_at_all_on_postgres() {
    crate::needs!(Postgres);
    linked_chains_post_together_or_not_at_all(&spawn_app(Backend::Postgres).await).await;
}
