//! The inventory service through HTTP: SKUs, warehouses, movements, allocations, their bad
//! input, the race for the last units, and the events every change writes.

mod allocations;
mod batches;
mod channels;
mod events;
mod race;
mod stock;

use crate::helpers::{Reply, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

/// Every inventory call, checked against the contract.
pub async fn inv(
    app: &TestApp,
    method: Method,
    path: &str,
    template: &str,
    body: Option<&Value>,
) -> Reply {
    app.call(method, path, template, Some(&app.key), body).await
}

/// Three warehouses: Shenzhen (priority 1), US-East and US-West (priority 2, serving their
/// coasts), and one SKU.
pub async fn set_up(app: &TestApp, sku: &str) {
    for (code, country, priority, serves) in [
        ("SZ", "CN", 1, json!([])),
        (
            "US-EAST",
            "US",
            2,
            json!([{"country": "US", "states": ["NY", "NJ"], "postcodeRanges": ["010-299"]}]),
        ),
        (
            "US-WEST",
            "US",
            2,
            json!([{"country": "US", "states": ["CA"], "postcodeRanges": ["900-961"]}]),
        ),
    ] {
        let r = inv(
            app,
            Method::PUT,
            &format!("/v1/inventory/warehouses/{code}"),
            "/v1/inventory/warehouses/{code}",
            Some(
                &json!({"name": code, "country": country, "priority": priority, "serves": serves}),
            ),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    put_sku(app, sku).await;
}

pub async fn put_sku(app: &TestApp, sku: &str) {
    let r = inv(
        app,
        Method::PUT,
        &format!("/v1/inventory/skus/{sku}"),
        "/v1/inventory/skus/{sku}",
        Some(&json!({"name": "Power bank", "attributes": {"battery": "UN3481"}, "lowStockThreshold": 2})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

pub async fn receive(app: &TestApp, sku: &str, warehouse: &str, quantity: i64) -> Reply {
    inv(
        app,
        Method::POST,
        "/v1/inventory/movements",
        "/v1/inventory/movements",
        Some(&json!({"type": "RECEIVE", "sku": sku, "warehouse": warehouse, "quantity": quantity})),
    )
    .await
}

pub async fn allocate(app: &TestApp, id: &str, lines: Value, state: &str) -> Reply {
    inv(
        app,
        Method::POST,
        "/v1/inventory/allocations",
        "/v1/inventory/allocations",
        Some(&json!({"allocationId": id, "lines": lines,
                     "destination": {"country": "US", "state": state}})),
    )
    .await
}

/// (on hand, reserved, available) of a SKU in a warehouse.
pub async fn level(app: &TestApp, sku: &str, warehouse: &str) -> (i64, i64, i64) {
    let r = inv(
        app,
        Method::GET,
        &format!("/v1/inventory/skus/{sku}"),
        "/v1/inventory/skus/{sku}",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["stock"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["warehouse"] == warehouse)
        .map_or((0, 0, 0), |s| {
            (
                s["onHand"].as_i64().unwrap(),
                s["reserved"].as_i64().unwrap(),
                s["available"].as_i64().unwrap(),
            )
        })
}

/// The invariants hold: on hand = Σ movements, reserved = Σ active reservations.
pub async fn assert_invariants(app: &TestApp) {
    let broken = shipgate::inventory::InventoryService::new(app.db.clone(), None)
        .verify()
        .await
        .expect("verify");
    assert!(
        broken.is_empty(),
        "invariants broken:\n{}",
        broken.join("\n")
    );
}
