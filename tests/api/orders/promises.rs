//! The platforms' promises watched (orders at risk listed and counted before the breach), and
//! the warehouse's pick list.

use super::{call, ingest, order, until_state, warehouses_and_stock};
use crate::helpers::{Backend, spawn_app};
use crate::inventory::inv;
use reqwest::Method;
use serde_json::json;

fn hours_ago(h: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::hours(h))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn orders_near_their_promise_are_listed_and_counted(backend: Backend) {
    let app = spawn_app(backend).await;
    // Unknown SKUs keep them from shipping.
    for (external, paid) in [("LATE", 25), ("CLOSE", 21), ("FRESH", 1)] {
        let mut o = order(external, "NOT-STOCKED", 1);
        o["paidAt"] = json!(hours_ago(paid));
        o["shipTo"]["name"] = json!(external);
        assert_eq!(ingest(&app, &o).await.status, 201);
    }
    app.run_background().await;
    let r = call(
        &app,
        Method::GET,
        "/v1/orders-at-risk",
        "/v1/orders-at-risk",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let risks = r.body["orders"].as_array().unwrap();
    let names: Vec<(&str, bool)> = risks
        .iter()
        .map(|o| {
            (
                o["externalId"].as_str().unwrap(),
                o["breached"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [("LATE", true), ("CLOSE", false)]);
    assert_eq!(risks[0]["promise"], "upload");
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "shipgate_orders_at_risk{channel=\"erp\",promise=\"upload\"} 1",
        "shipgate_orders_promise_breached{channel=\"erp\",promise=\"upload\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing");
    }
}

async fn a_pick_list_names_skus_locations_and_quantities(backend: Backend) {
    let app = spawn_app(backend).await;
    warehouses_and_stock(&app, &["PB-10K", "CABLE"], 10).await;
    for (sku, location) in [("PB-10K", "A-01-02"), ("CABLE", "B-07-01")] {
        let r = inv(
            &app,
            Method::PUT,
            &format!("/v1/inventory/skus/{sku}"),
            "/v1/inventory/skus/{sku}",
            Some(&json!({"name": sku, "attributes": {"locations": {"US-EAST": location}}})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let mut ids = Vec::new();
    for (external, sku, qty) in [
        ("P-1", "PB-10K", 2),
        ("P-2", "PB-10K", 1),
        ("P-3", "CABLE", 4),
    ] {
        let mut o = order(external, sku, qty);
        o["shipTo"]["name"] = json!(external);
        let id = ingest(&app, &o).await.body["order"]["orderId"]
            .as_str()
            .unwrap()
            .to_owned();
        until_state(&app, &id, "WAYBILL_CREATED").await;
        ids.push(id);
    }
    let res = app
        .client
        .post(format!("{}/v1/pick-lists", app.address))
        .bearer_auth(&app.key)
        .json(&json!({"warehouse": "US-EAST", "orders": ids}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let text = crate::helpers::pdf::text(&res.bytes().await.unwrap());
    let a = text.find("A-01-02").expect("location A");
    let b = text.find("B-07-01").expect("location B");
    assert!(a < b, "walking order: {text}");
    assert!(text.contains("PB-10K") && text.contains("CABLE"), "{text}");
    assert!(text.contains("#P-1, #P-2"), "{text}");
    let r = call(
        &app,
        Method::POST,
        "/v1/pick-lists",
        "/v1/pick-lists",
        Some(&json!({"warehouse": "US-EAST", "orders": ["nope"]})),
    )
    .await;
    assert_eq!(r.status, 404);
}

crate::on_both_databases!(
    orders_near_their_promise_are_listed_and_counted,
    a_pick_list_names_skus_locations_and_quantities,
);
