//! Carrier invoice reconciliation with UPS Billing Data files: the real file as published, and
//! files written in its layout (its own rows as templates) that bill this test's waybills as
//! quoted, with surcharges, heavier, after a void, twice, short, and unknown numbers.

use super::{account, assert_ledger_holds, fin};
use crate::helpers::{Backend, Reply, TestApp, spawn_app, waybill_request};
use reqwest::Method;
use serde_json::Value;

const REAL: &str = "ups_billing_data_v2.1_Invoice_000000K7Q318255_062125_excerpt.csv";

fn real_rows() -> Vec<Vec<String>> {
    let path = format!(
        "{}/tests/fixtures/carrier_invoices/{REAL}",
        env!("CARGO_MANIFEST_DIR")
    );
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .expect("fixture")
        .records()
        .map(|r| r.expect("row").iter().map(str::to_owned).collect())
        .collect()
}

async fn import(app: &TestApp, file: Vec<u8>) -> Reply {
    let res = app
        .client
        .post(format!("{}/v1/carrier-invoices?carrier=ups", app.address))
        .bearer_auth(&app.key)
        .header("Content-Type", "text/csv")
        .body(file)
        .send()
        .await
        .expect("import");
    let reply = Reply::read(res).await;
    crate::helpers::contract::check(
        "POST",
        "/v1/carrier-invoices",
        reply.status.as_u16(),
        &reply.body,
    );
    reply
}

#[tokio::test]
async fn the_real_ups_file_imports_with_every_row_read() {
    let app = spawn_app(Backend::Sqlite).await;
    let file = std::fs::read(format!(
        "{}/tests/fixtures/carrier_invoices/{REAL}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    let r = import(&app, file.clone()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let inv = &r.body["invoice"];
    assert_eq!(inv["invoiceNumber"], "000000K7Q318255");
    assert_eq!(inv["invoiceDate"], "2025-06-21");
    assert_eq!(inv["badRows"].as_array().map(Vec::len), Some(0));
    assert_eq!(inv["classifications"]["unknown_tracking_number"], 12);
    assert_eq!(inv["classifications"]["invoice_charge"], 3);
    let expected: i64 = real_rows()
        .iter()
        .map(|r| shipgate::finance::money::to_minor(&r[52], "USD").expect("amount"))
        .sum();
    assert_eq!(inv["total"], expected, "column 53 summed");
    let again = import(&app, file).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.error_code(), "INVOICE_EXISTS");
}

/// A file in the real layout: `rows` of (tracking, classification, description, amount, billed
/// weight in pounds), the first real row as the template of every row.
fn ups_file(invoice: &str, rows: &[(&str, &str, &str, &str, &str)]) -> Vec<u8> {
    let template = real_rows()[0].clone();
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for (tracking, class, description, amount, pounds) in rows {
        let mut r = template.clone();
        r[5] = invoice.to_owned();
        r[13] = (*tracking).to_owned();
        r[20] = (*tracking).to_owned();
        r[43] = (*class).to_owned();
        r[45] = (*description).to_owned();
        r[52] = (*amount).to_owned();
        r[28] = (*pounds).to_owned();
        r[29] = if pounds.is_empty() {
            String::new()
        } else {
            "L".into()
        };
        if tracking.is_empty() {
            r[34] = "MIS".into();
        }
        w.write_record(&r).expect("row");
    }
    w.into_inner().expect("csv")
}

fn line<'a>(lines: &'a Value, tracking: &str) -> &'a Value {
    lines
        .as_array()
        .and_then(|l| l.iter().find(|x| x["trackingNumber"] == tracking))
        .unwrap_or_else(|| panic!("no line for {tracking}: {lines}"))
}

async fn settle(app: &TestApp, invoice: &str, line_no: &Value, action: &str) -> Reply {
    fin(
        app,
        Method::POST,
        &format!("/v1/carrier-invoices/{invoice}/lines/{line_no}/{action}"),
        "/v1/carrier-invoices/{id}/lines/{line}/{action}",
        None,
    )
    .await
}

async fn lines_are_classified_and_settled(app: &TestApp) {
    // Six waybills of 1200 g, each quoted 25.10 USD by the sandbox; the fourth voided.
    let mut tracking = Vec::new();
    for i in 1..=6 {
        let r = app.create(&waybill_request(&format!("INV-{i}"))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["charge"]["amount"], "25.10");
        tracking.push(
            r.body["trackingNumber"]
                .as_str()
                .expect("tracking")
                .to_owned(),
        );
        if i == 4 {
            let c = app
                .call(
                    Method::POST,
                    &format!("/v1/waybills/{}/cancel", r.waybill_number()),
                    "/v1/waybills/{number}/cancel",
                    Some(&app.key),
                    None,
                )
                .await;
            assert_eq!(c.status, 200, "{}", c.body);
        }
    }
    app.wait_for("finance to know the waybills", 20, || async {
        let n = app
            .count("SELECT COUNT(*) FROM fin_shipments WHERE state = 'cancelled'")
            .await;
        (n == 1).then_some(())
    })
    .await;
    let t: Vec<&str> = tracking.iter().map(String::as_str).collect();
    let file = ups_file(
        "000000TEST0001",
        &[
            (t[0], "FRT", "Ground Commercial", "23.50", "2.6"),
            (t[0], "FSC", "Fuel Surcharge", "1.60", ""),
            (t[1], "FRT", "Ground Commercial", "23.50", "2.6"),
            (t[1], "FSC", "Fuel Surcharge", "1.60", ""),
            (t[1], "ACC", "Residential Surcharge", "4.95", ""),
            (t[2], "FRT", "Ground Commercial", "30.00", "5.0"),
            (t[2], "FSC", "Fuel Surcharge", "2.00", ""),
            (t[3], "FRT", "Ground Commercial", "25.10", "2.6"),
            (t[4], "FRT", "Ground Commercial", "25.10", "2.6"),
            (t[4], "FRT", "Ground Commercial", "25.10", "2.6"),
            (t[5], "FRT", "Ground Commercial", "20.00", "2.6"),
            (t[5], "FSC", "Fuel Surcharge", "1.00", ""),
            (
                "1ZUNKNOWN000000001",
                "FRT",
                "Ground Commercial",
                "9.99",
                "1.0",
            ),
            ("", "FRT", "Payment Processing Fee", "3.30", ""),
            (t[0], "FRT", "Ground Commercial", "12,34", "1.0"),
        ],
    );
    let r = import(app, file).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let inv = r.body["invoice"].clone();
    let bad = inv["badRows"].as_array().expect("bad rows");
    assert_eq!(bad.len(), 1, "{inv}");
    assert_eq!(bad[0]["line"], 15, "the bad row is named by its line");
    let id = inv["id"].as_str().expect("id").to_owned();
    let got = fin(
        app,
        Method::GET,
        &format!("/v1/carrier-invoices/{id}"),
        "/v1/carrier-invoices/{id}",
        None,
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.body);
    let lines = &got.body["lines"];
    for (tn, expected) in [
        (t[0], "as_quoted"),
        (t[1], "surcharge_not_quoted"),
        (t[2], "weight_differs"),
        (t[3], "billed_after_void"),
        (t[4], "billed_twice"),
        (t[5], "amount_off"),
        ("1ZUNKNOWN000000001", "unknown_tracking_number"),
    ] {
        let l = line(lines, tn);
        assert_eq!(l["classification"], expected, "{l}");
        if expected == "as_quoted" {
            assert!(l["disputeDeadline"].is_null());
        } else {
            assert_eq!(
                l["disputeDeadline"], "2025-12-18",
                "180 days after the invoice date"
            );
        }
    }
    assert_eq!(line(lines, t[2])["billedWeightGrams"], 2268);
    assert_eq!(line(lines, t[2])["declaredWeightGrams"], 1200);
    let only = fin(
        app,
        Method::GET,
        &format!("/v1/carrier-invoices/{id}?classification=amount_off"),
        "/v1/carrier-invoices/{id}",
        None,
    )
    .await;
    assert_eq!(only.body["lines"].as_array().map(Vec::len), Some(1));

    // Billed again on a later invoice: billed twice.
    let later = import(
        app,
        ups_file(
            "000000TEST0002",
            &[(t[0], "FRT", "Ground Commercial", "25.10", "2.6")],
        ),
    )
    .await;
    assert_eq!(
        later.body["invoice"]["classifications"]["billed_twice"], 1,
        "{}",
        later.body
    );

    // Settling: the short bill accepted lowers what is owed; the surcharge disputed is held
    // pending, then lost and posted.
    let payable = "accounts_payable.carrier.ups:USD";
    let accept = settle(app, &id, &line(lines, t[5])["line"], "accept").await;
    assert_eq!(accept.status, 200, "{}", accept.body);
    assert_eq!(accept.body["line"]["resolution"], "accepted");
    assert_eq!(account(app, payable).await["balance"], -410);
    let dispute = settle(app, &id, &line(lines, t[1])["line"], "dispute").await;
    assert_eq!(dispute.status, 200, "{}", dispute.body);
    assert_eq!(account(app, payable).await["creditsPending"], 495);
    let lost = settle(app, &id, &line(lines, t[1])["line"], "lost").await;
    assert_eq!(lost.status, 200, "{}", lost.body);
    let a = account(app, payable).await;
    assert_eq!(
        (a["creditsPending"].as_i64(), a["balance"].as_i64()),
        (Some(0), Some(85))
    );
    let twice = settle(app, &id, &line(lines, t[5])["line"], "accept").await;
    assert_eq!(twice.status, 409);
    assert_eq!(twice.error_code(), "LINE_NOT_OPEN");
    let quoted = settle(app, &id, &line(lines, t[0])["line"], "dispute").await;
    assert_eq!(quoted.status, 409);

    let csv = app
        .client
        .get(format!(
            "{}/v1/carrier-invoices/{id}?format=csv",
            app.address
        ))
        .bearer_auth(&app.key)
        .send()
        .await
        .expect("csv");
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.expect("text");
    assert!(text.starts_with("line,tracking_number,"), "{text}");
    assert!(
        text.contains(",weight_differs,billed 2268 g, declared 1200 g,")
            || text.contains("weight_differs,\"billed 2268 g, declared 1200 g\""),
        "{text}"
    );
    assert_ledger_holds(app).await;
}

#[tokio::test]
async fn invoice_lines_are_classified_and_settled_on_sqlite() {
    lines_are_classified_and_settled(&spawn_app(Backend::Sqlite).await).await;
}

#[tokio::test]
async fn invoice_lines_are_classified_and_settled_on_postgres() {
    crate::needs!(Postgres);
    lines_are_classified_and_settled(&spawn_app(Backend::Postgres).await).await;
}
