//! Waybills post their charges by themselves: created posts (the seller owes it, the carrier is
//! owed it), cancelled reverses; every event replayed from the beginning changes nothing.

use super::{assert_ledger_holds, balance, fin};
use crate::helpers::{Backend, TestApp, spawn_app, waybill_request};
use reqwest::Method;
use sqlx::Row;

async fn position(app: &TestApp) -> i64 {
    sqlx::query("SELECT position FROM event_consumers WHERE name = 'finance.ledger'")
        .fetch_optional(&app.db.pool)
        .await
        .expect("position")
        .map_or(0, |r| r.get::<i64, _>(0))
}

async fn transfers(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM fin_transfers").await
}

async fn waybill_charges_post_once(app: &TestApp) {
    let created = app.create(&waybill_request("FIN-1")).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let number = created.waybill_number().to_owned();
    let charge = &created.body["charge"];
    let currency = charge["currency"]
        .as_str()
        .expect("the sandbox quotes")
        .to_owned();
    let minor =
        shipgate::finance::money::to_minor(charge["amount"].as_str().expect("amount"), &currency)
            .expect("a decimal amount");
    assert!(minor > 0);
    let id = format!("wb:{number}:charge");
    let path = format!("/v1/ledger/transfers/{id}");
    let posted = app
        .wait_for("the charge posted", 20, || async {
            let r = fin(app, Method::GET, &path, "/v1/ledger/transfers/{id}", None).await;
            (r.status == 200).then_some(r)
        })
        .await;
    assert_eq!(posted.body["transfer"]["amount"], minor);
    assert_eq!(posted.body["transfer"]["reference"], number.as_str());
    let receivable = format!("accounts_receivable.shipping:{currency}");
    let payable = format!("accounts_payable.carrier.sandbox:{currency}");
    assert_eq!(
        balance(app, &receivable).await,
        minor,
        "the seller owes the charge"
    );
    assert_eq!(
        balance(app, &payable).await,
        minor,
        "shipgate owes the carrier"
    );

    // A replayed create posts no second charge.
    assert_eq!(app.create(&waybill_request("FIN-1")).await.status, 200);
    let second = app.create(&waybill_request("FIN-2")).await;
    assert_eq!(second.status, 201);
    let cancel = app
        .call(
            Method::POST,
            &format!("/v1/waybills/{}/cancel", second.waybill_number()),
            "/v1/waybills/{number}/cancel",
            Some(&app.key),
            None,
        )
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    let reversal = format!(
        "/v1/ledger/transfers/wb:{}:reversal",
        second.waybill_number()
    );
    app.wait_for("the reversal posted", 20, || async {
        let r = fin(
            app,
            Method::GET,
            &reversal,
            "/v1/ledger/transfers/{id}",
            None,
        )
        .await;
        (r.status == 200).then_some(())
    })
    .await;
    assert_eq!(
        balance(app, &receivable).await,
        minor,
        "the cancelled one nets to nothing"
    );
    assert_eq!(transfers(app).await, 3);

    // Every event again from the beginning: nothing new, no balance moves.
    let handled = position(app).await;
    assert!(handled > 0);
    sqlx::query("UPDATE event_consumers SET position = 0 WHERE name = 'finance.ledger'")
        .execute(&app.db.pool)
        .await
        .expect("rewind");
    app.wait_for("the replay", 20, || async {
        (position(app).await >= handled).then_some(())
    })
    .await;
    assert_eq!(transfers(app).await, 3);
    assert_eq!(balance(app, &receivable).await, minor);
    assert_eq!(balance(app, &payable).await, minor);
    assert_ledger_holds(app).await;
}

#[tokio::test]
async fn waybill_charges_post_once_on_sqlite() {
    waybill_charges_post_once(&spawn_app(Backend::Sqlite).await).await;
}

#[tokio::test]
async fn waybill_charges_post_once_on_postgres() {
    crate::needs!(Postgres);
    waybill_charges_post_once(&spawn_app(Backend::Postgres).await).await;
}
