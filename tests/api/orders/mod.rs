//! The orders service through HTTP: ingest and dedupe, holds, shipping through the gateway
//! (in this process and across the network), tracking, merge and split, cancel and returns.

mod channels;
mod flow;
mod holds;
mod ingest;
mod messages;
mod promises;
mod pull_edges;
mod remote;

use crate::helpers::{Reply, TestApp};
use crate::inventory::{inv, put_sku, receive};
use reqwest::Method;
use serde_json::{Value, json};

pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    template: &str,
    body: Option<&Value>,
) -> Reply {
    app.call(method, path, template, Some(&app.key), body).await
}

/// Two warehouses with street addresses (Shenzhen, and US-East serving the east coast) and
/// the SKUs named, with `stock` units of each in US-East.
pub async fn warehouses_and_stock(app: &TestApp, skus: &[&str], stock: i64) {
    for (code, country, state, postal, priority, serves) in [
        ("SZ", "CN", "GD", "518000", 5, json!([])),
        (
            "US-EAST",
            "US",
            "NJ",
            "07102",
            1,
            json!([{"country": "US", "states": ["NY", "NJ"]}]),
        ),
    ] {
        let r = inv(
            app,
            Method::PUT,
            &format!("/v1/inventory/warehouses/{code}"),
            "/v1/inventory/warehouses/{code}",
            Some(
                &json!({"name": code, "country": country, "state": state, "postalCode": postal,
                "priority": priority, "serves": serves,
                "address": {"name": format!("{code} warehouse"), "phone": "+1 555 0100",
                            "street1": "1 Dock Rd", "city": "Newark"}}),
            ),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    for sku in skus {
        put_sku(app, sku).await;
        if stock > 0 {
            let r = receive(app, sku, "US-EAST", stock).await;
            assert_eq!(r.status, 201, "{}", r.body);
        }
    }
}

/// An ERP order to New Jersey.
pub fn order(external_id: &str, sku: &str, quantity: i64) -> Value {
    json!({
        "channel": "erp", "shop": "main", "externalId": external_id, "orderNumber": format!("#{external_id}"),
        "currency": "USD", "total": "19.80", "serviceLevel": "standard",
        "placedAt": "2026-12-01T10:00:00Z", "paidAt": "2026-12-01T10:01:00Z",
        "buyer": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "shipTo": {"name": "Ada Lovelace", "street1": "12 Elm St", "city": "Newark", "state": "NJ",
                   "postalCode": "07102", "country": "US", "phone": "+1 973 555 0101"},
        "lines": [{"sku": sku, "quantity": quantity, "unitPrice": "9.90", "title": "Power bank",
                   "weightGrams": 300}]
    })
}

pub async fn ingest(app: &TestApp, body: &Value) -> Reply {
    call(app, Method::POST, "/v1/orders", "/v1/orders", Some(body)).await
}

pub async fn get_order(app: &TestApp, id: &str) -> Reply {
    let r = call(
        app,
        Method::GET,
        &format!("/v1/orders/{id}"),
        "/v1/orders/{id}",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r
}

pub async fn act(app: &TestApp, id: &str, body: Value) -> Reply {
    call(
        app,
        Method::POST,
        &format!("/v1/orders/{id}/actions"),
        "/v1/orders/{id}/actions",
        Some(&body),
    )
    .await
}

/// Runs the background work until the order is in `state`.
pub async fn until_state(app: &TestApp, id: &str, state: &str) -> Value {
    until_state_in(app, id, &[state]).await
}

/// Runs the background work until the order is in one of `states` (a live server's sandbox
/// may carry an order past the one a test waits for between two looks).
pub async fn until_state_in(app: &TestApp, id: &str, states: &[&str]) -> Value {
    let seen = std::sync::Mutex::new(Value::Null);
    let state = states.join(" or ");
    let what = format!("order {id} to be {state}");
    let wait = app.wait_for(&what, 3600, || async {
        let r = get_order(app, id).await;
        *seen.lock().unwrap() = r.body.clone();
        let now = r.body["order"]["state"].as_str().unwrap_or_default();
        states.contains(&now).then_some(r.body)
    });
    match tokio::time::timeout(std::time::Duration::from_secs(30), wait).await {
        Ok(body) => body,
        Err(_) => panic!(
            "timed out after 30 s waiting for order {id} to be {state}; last seen: {}",
            seen.lock().unwrap()
        ),
    }
}

pub async fn on_hand(app: &TestApp, sku: &str, warehouse: &str) -> i64 {
    crate::inventory::level(app, sku, warehouse).await.0
}

/// The create request the gateway stored for a reference.
pub async fn gateway_request(app: &TestApp, reference: &str) -> Value {
    use sqlx::Row;
    let stored: String =
        sqlx::query("SELECT request_json FROM waybills WHERE reference_number = $1")
            .bind(reference)
            .fetch_one(&app.db.pool)
            .await
            .unwrap()
            .get(0);
    serde_json::from_str(&stored).unwrap()
}
