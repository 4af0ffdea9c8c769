//! Rates from a real ECB file and by hand, conversions with banker's rounding, and the reports
//! (summary in one currency, statements) equal to the ledger's own balances.

use super::{balance, chart, fin, transfer};
use crate::helpers::{Backend, TestApp, spawn_app, waybill_request};
use reqwest::Method;
use serde_json::{Value, json};

async fn import_ecb(app: &TestApp) {
    let xml = std::fs::read(format!(
        "{}/tests/fixtures/fx_rates/ecb_eurofxref-daily_2015-01-07.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    let res = app
        .client
        .post(format!("{}/v1/fx-rates/imports?source=ecb", app.address))
        .bearer_auth(&app.key)
        .header("Content-Type", "application/xml")
        .body(xml)
        .send()
        .await
        .expect("import");
    let reply = crate::helpers::Reply::read(res).await;
    crate::helpers::contract::check(
        "POST",
        "/v1/fx-rates/imports",
        reply.status.as_u16(),
        &reply.body,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["imported"], 31);
    assert_eq!(reply.body["dates"], json!(["2015-01-07"]));
}

async fn convert(app: &TestApp, query: &str) -> crate::helpers::Reply {
    fin(
        app,
        Method::GET,
        &format!("/v1/fx-rates/convert?{query}"),
        "/v1/fx-rates/convert",
        None,
    )
    .await
}

#[tokio::test]
async fn rates_convert_through_other_currencies_with_bankers_rounding() {
    let app = spawn_app(Backend::Sqlite).await;
    import_ecb(&app).await;
    // USD 100.00 to JPY through EUR: 100 / 1.1831 * 141.17 = 11932.21… -> 11932 (JPY has no minor unit)
    let r = convert(&app, "amount=10000&from=USD&to=JPY&date=2015-01-07").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["converted"]["amount"], 11932);
    let path = r.body["converted"]["path"].as_array().expect("path");
    assert_eq!(path.len(), 2);
    assert!(
        path.iter()
            .all(|p| p["source"] == "ecb" && p["asOf"] == "2015-01-07")
    );
    // USD 100.00 to EUR: 84.5237… -> 84.52
    assert_eq!(
        convert(&app, "amount=10000&from=usd&to=EUR").await.body["converted"]["amount"],
        8452
    );
    // Before the first rate there is none.
    assert_eq!(
        convert(&app, "amount=1&from=USD&to=EUR&date=2014-12-31")
            .await
            .status,
        404
    );

    let put = fin(
        &app,
        Method::PUT,
        "/v1/fx-rates/USD/AED",
        "/v1/fx-rates/{base}/{quote}",
        Some(&json!({"rate": "0.5", "asOf": "2015-01-07"})),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["rate"]["source"], "manual");
    // 0.01 USD = 0.005 AED -> 0.00 (half to even); 0.03 USD = 0.015 AED -> 0.02
    assert_eq!(
        convert(&app, "amount=1&from=USD&to=AED").await.body["converted"]["amount"],
        0
    );
    assert_eq!(
        convert(&app, "amount=3&from=USD&to=AED").await.body["converted"]["amount"],
        2
    );
    // AED back to USD uses the same rate the other way.
    assert_eq!(
        convert(&app, "amount=100&from=AED&to=USD").await.body["converted"]["amount"],
        200
    );
    assert_eq!(convert(&app, "amount=1&from=USD&to=XOF").await.status, 404);
    for bad in [
        "amount=1.5&from=USD&to=EUR",
        "amount=1&from=USD&to=EURO",
        "amount=1&from=USD&to=EUR&date=yesterday",
    ] {
        let r = convert(&app, bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    for body in [
        json!({"rate": "-1", "asOf": "2015-01-07"}),
        json!({"rate": "1", "asOf": "7 Jan"}),
        json!({"rate": 1.5, "asOf": "2015-01-07"}),
    ] {
        let r = fin(
            &app,
            Method::PUT,
            "/v1/fx-rates/USD/GBP",
            "/v1/fx-rates/{base}/{quote}",
            Some(&body),
        )
        .await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    let junk = app
        .client
        .post(format!("{}/v1/fx-rates/imports?source=ecb", app.address))
        .bearer_auth(&app.key)
        .body("<Cube><Cube time='2015-01-08'><Cube currency='USD' rate='abc'/></Cube></Cube>")
        .send()
        .await
        .expect("import");
    assert_eq!(junk.status(), 400);
    let listed = fin(&app, Method::GET, "/v1/fx-rates", "/v1/fx-rates", None).await;
    assert_eq!(listed.body["rates"].as_array().map(Vec::len), Some(32));
}

fn line<'a>(summary: &'a Value, category: &str) -> &'a Value {
    summary["lines"]
        .as_array()
        .and_then(|l| l.iter().find(|x| x["category"] == category))
        .expect("category")
}

#[tokio::test]
async fn reports_equal_the_ledger_in_any_reachable_currency() {
    let app = spawn_app(Backend::Sqlite).await;
    import_ecb(&app).await;
    let created = app.create(&waybill_request("REP-1")).await;
    assert_eq!(created.status, 201);
    app.wait_for("the charge", 20, || async {
        let n = app.count("SELECT COUNT(*) FROM fin_transfers").await;
        (n == 1).then_some(())
    })
    .await;
    chart(&app, "USD").await;
    chart(&app, "JPY").await;
    for (id, debit, credit, amount, code) in [
        ("pay-usd", "cash:USD", "revenue:USD", 5000, "payment"),
        ("pay-jpy", "cash:JPY", "revenue:JPY", 14117, "payment"),
        ("fee-usd", "equity:USD", "cash:USD", 150, "fee"),
    ] {
        let r = transfer(&app, json!({"id": id, "debitAccount": debit, "creditAccount": credit, "amount": amount, "code": code})).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = fin(
        &app,
        Method::GET,
        "/v1/ledger/reports/summary?currency=USD",
        "/v1/ledger/reports/summary",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = &r.body["summary"];
    let receivable = balance(&app, "accounts_receivable.shipping:USD").await;
    assert_eq!(
        line(s, "shippingCharged")["total"],
        receivable,
        "the report's shipping equals the ledger's"
    );
    assert_eq!(
        line(s, "carrierCost")["total"],
        balance(&app, "accounts_payable.carrier.sandbox:USD").await
    );
    assert_eq!(
        line(s, "payments")["amounts"],
        json!({"JPY": 14117, "USD": 5000})
    );
    // JPY 14117 at 141.17 JPY/EUR and 1.1831 USD/EUR: EUR 100.00 = USD 118.31
    assert_eq!(line(s, "payments")["total"], 5000 + 11831);
    assert_eq!(line(s, "fees")["total"], 150);
    assert_eq!(s["net"], 5000 + 11831 - 150 - receivable);
    assert_eq!(s["conversions"].as_array().map(Vec::len), Some(1));

    let csv = app
        .client
        .get(format!(
            "{}/v1/ledger/reports/summary?currency=EUR&format=csv",
            app.address
        ))
        .bearer_auth(&app.key)
        .send()
        .await
        .expect("csv");
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/csv")
    );
    let text = csv.text().await.expect("body");
    assert!(
        text.starts_with("category,currency,amount,amount_in_eur\n"),
        "{text}"
    );
    assert!(text.contains("payments,JPY,14117,\n"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("net,EUR,,")), "{text}");

    // A statement reconciles: opening + movements = closing = the account's balance.
    let first = fin(
        &app,
        Method::GET,
        "/v1/ledger/transfers/pay-usd",
        "/v1/ledger/transfers/{id}",
        None,
    )
    .await;
    let after_first = chrono::DateTime::parse_from_rfc3339(
        first.body["transfer"]["createdAt"].as_str().expect("t"),
    )
    .expect("time")
        + chrono::Duration::milliseconds(1);
    let path = format!(
        "/v1/ledger/accounts/cash:USD/statement?from={}",
        after_first.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let st = fin(
        &app,
        Method::GET,
        &path.replace('+', "%2B"),
        "/v1/ledger/accounts/{id}/statement",
        None,
    )
    .await;
    assert_eq!(st.status, 200, "{}", st.body);
    let st = &st.body["statement"];
    assert_eq!(st["openingBalance"], 5000);
    assert_eq!(st["movements"].as_array().map(Vec::len), Some(1));
    assert_eq!(st["movements"][0]["credit"], 150);
    assert_eq!(st["closingBalance"], balance(&app, "cash:USD").await);
    // The tenant's own report currency is the default.
    let set = fin(
        &app,
        Method::PUT,
        "/v1/ledger/settings",
        "/v1/ledger/settings",
        Some(&json!({"reportCurrency": "eur"})),
    )
    .await;
    assert_eq!(
        set.body["settings"]["reportCurrency"], "EUR",
        "{}",
        set.body
    );
    let bad = fin(
        &app,
        Method::PUT,
        "/v1/ledger/settings",
        "/v1/ledger/settings",
        Some(&json!({"reportCurrency": "EURO"})),
    )
    .await;
    assert_eq!(bad.status, 400);
    let in_eur = fin(
        &app,
        Method::GET,
        "/v1/ledger/reports/summary",
        "/v1/ledger/reports/summary",
        None,
    )
    .await;
    assert_eq!(in_eur.body["summary"]["currency"], "EUR");
    // JPY 14117 at 141.17 JPY/EUR is EUR 100.00 exactly.
    assert_eq!(
        line(&in_eur.body["summary"], "payments")["amounts"]["JPY"],
        14117
    );
    let no_rate = fin(
        &app,
        Method::GET,
        "/v1/ledger/reports/summary?currency=XOF",
        "/v1/ledger/reports/summary",
        None,
    )
    .await;
    assert_eq!(no_rate.status, 404);
    let backwards = fin(
        &app,
        Method::GET,
        "/v1/ledger/reports/summary?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
        "/v1/ledger/reports/summary",
        None,
    )
    .await;
    assert_eq!(backwards.status, 400);
}

#[tokio::test]
async fn a_conversion_posts_both_currencies_together_with_its_rate() {
    let app = spawn_app(Backend::Sqlite).await;
    import_ecb(&app).await;
    chart(&app, "USD").await;
    chart(&app, "JPY").await;
    let fund = json!({"id": "fund", "debitAccount": "cash:USD", "creditAccount": "equity:USD", "amount": 10000});
    assert_eq!(transfer(&app, fund).await.status, 201);
    // Buy JPY 11932 with USD: 11932 / 141.17 * 1.1831 = 99.998… -> USD 100.00
    let buy = json!({"id": "buy-jpy", "debitAccount": "cash:JPY", "creditAccount": "cash:USD", "amount": 11932, "date": "2015-01-07"});
    let r = fin(
        &app,
        Method::POST,
        "/v1/ledger/conversions",
        "/v1/ledger/conversions",
        Some(&buy),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let c = &r.body["conversion"];
    assert_eq!(
        (
            c["convertedAmount"].as_i64(),
            c["convertedCurrency"].as_str()
        ),
        (Some(10000), Some("USD"))
    );
    assert_eq!(c["path"].as_array().map(Vec::len), Some(2));
    assert!(
        c["rate"].as_str().is_some_and(|r| r.starts_with("0.0083")),
        "{c}"
    );
    assert_eq!(balance(&app, "cash:JPY").await, 11932);
    assert_eq!(balance(&app, "cash:USD").await, 0);
    let stored = fin(
        &app,
        Method::GET,
        "/v1/ledger/conversions/buy-jpy",
        "/v1/ledger/conversions/{id}",
        None,
    )
    .await;
    assert_eq!(
        stored.body["conversion"], r.body["conversion"],
        "the rate is stored with it"
    );
    let again = fin(
        &app,
        Method::POST,
        "/v1/ledger/conversions",
        "/v1/ledger/conversions",
        Some(&buy),
    )
    .await;
    assert_eq!(again.status, 200);
    let mut other = buy.clone();
    other["amount"] = json!(100);
    assert_eq!(
        fin(
            &app,
            Method::POST,
            "/v1/ledger/conversions",
            "/v1/ledger/conversions",
            Some(&other)
        )
        .await
        .error_code(),
        "ID_CONFLICT"
    );
    // Cash may not go below zero: neither leg posts.
    let mut more = buy.clone();
    more["id"] = json!("buy-more");
    let refused = fin(
        &app,
        Method::POST,
        "/v1/ledger/conversions",
        "/v1/ledger/conversions",
        Some(&more),
    )
    .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.error_code(), "EXCEEDS_DEBITS");
    assert_eq!(
        balance(&app, "cash:JPY").await,
        11932,
        "the linked leg did not post"
    );
    let same = json!({"id": "same", "debitAccount": "cash:USD", "creditAccount": "equity:USD", "amount": 1});
    assert_eq!(
        fin(
            &app,
            Method::POST,
            "/v1/ledger/conversions",
            "/v1/ledger/conversions",
            Some(&same)
        )
        .await
        .error_code(),
        "CURRENCY_MISMATCH"
    );
    super::assert_ledger_holds(&app).await;
}
