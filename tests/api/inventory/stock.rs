//! Stock as movements: receive, count, restock, safety stock, and what is refused.

use super::{assert_invariants, inv, level, put_sku, receive, set_up};
use crate::helpers::{Backend, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::json;

async fn movement(app: &crate::helpers::TestApp, body: serde_json::Value) -> crate::helpers::Reply {
    inv(
        app,
        Method::POST,
        "/v1/inventory/movements",
        "/v1/inventory/movements",
        Some(&body),
    )
    .await
}

async fn movements_explain_the_stock(backend: Backend) {
    let app = spawn_app(backend).await;
    set_up(&app, "PB-10K").await;
    let r = receive(&app, "PB-10K", "US-EAST", 12).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["stock"]["onHand"], 12);
    assert_eq!(r.body["movement"]["type"], "RECEIVE");

    // A count finds 9: the adjustment is the difference, with its reason.
    let r = movement(
        &app,
        json!({"type": "ADJUST", "sku": "PB-10K", "warehouse": "US-EAST",
        "quantity": 9, "reason": "cycle count"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["movement"]["onHandDelta"], -3);
    assert_eq!(r.body["stock"]["onHand"], 9);

    // A return comes back; the same request id again is the same movement.
    let restock = json!({"type": "RESTOCK", "sku": "PB-10K", "warehouse": "US-EAST",
        "quantity": 1, "reason": "RMA-7", "requestId": "rma-7"});
    let first = movement(&app, restock.clone()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = movement(&app, restock).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["movement"]["id"], first.body["movement"]["id"]);
    assert_eq!(again.body["stock"]["onHand"], 10);
    let other = movement(
        &app,
        json!({"type": "RECEIVE", "sku": "PB-10K", "warehouse": "US-EAST",
        "quantity": 1, "requestId": "rma-7"}),
    )
    .await;
    assert_eq!(other.status, 409);
    assert_eq!(other.error_code(), "ID_CONFLICT");

    // Safety stock is held back from what is available.
    let r = inv(
        &app,
        Method::PUT,
        "/v1/inventory/stock/PB-10K/US-EAST",
        "/v1/inventory/stock/{sku}/{warehouse}",
        Some(&json!({"safetyStock": 3})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(level(&app, "PB-10K", "US-EAST").await, (10, 0, 7));

    let r = inv(
        &app,
        Method::GET,
        "/v1/inventory/movements?sku=PB-10K&warehouse=US-EAST",
        "/v1/inventory/movements",
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    let kinds: Vec<_> = r.body["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["RESTOCK", "ADJUST", "RECEIVE"]);
    let total: i64 = r.body["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["onHandDelta"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 10, "on hand is the sum of the movements");
    assert_invariants(&app).await;
}

async fn bad_input_is_refused_with_details(backend: Backend) {
    let app = spawn_app(backend).await;
    set_up(&app, "PB-10K").await;
    receive(&app, "PB-10K", "SZ", 5).await;
    for (quantity, why) in [
        (json!(-1), "negative"),
        (json!(2.5), "fraction"),
        (json!("3"), "text"),
        (json!(0), "zero"),
    ] {
        let r = movement(
            &app,
            json!({"type": "RECEIVE", "sku": "PB-10K", "warehouse": "SZ", "quantity": quantity}),
        )
        .await;
        assert_eq!(r.status, 400, "{why}: {}", r.body);
        assert_eq!(r.error_code(), "VALIDATION_FAILED", "{why}");
        assert_eq!(r.body["details"][0]["field"], "quantity", "{why}");
    }
    let r = movement(
        &app,
        json!({"type": "RECEIVE", "sku": "NOPE", "warehouse": "SZ", "quantity": 1}),
    )
    .await;
    assert_eq!((r.status.as_u16(), r.error_code()), (400, "UNKNOWN_SKU"));
    assert_eq!(r.body["details"][0]["field"], "sku");
    let r = movement(
        &app,
        json!({"type": "RECEIVE", "sku": "PB-10K", "warehouse": "MARS", "quantity": 1}),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (400, "UNKNOWN_WAREHOUSE")
    );
    assert_eq!(r.body["details"][0]["field"], "warehouse");
    let r = movement(
        &app,
        json!({"type": "ADJUST", "sku": "PB-10K", "warehouse": "SZ", "quantity": 1}),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.body["details"][0]["field"].as_str()),
        (400, Some("reason"))
    );
    let r = movement(
        &app,
        json!({"type": "RESERVE", "sku": "PB-10K", "warehouse": "SZ", "quantity": 1}),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.body["details"][0]["field"].as_str()),
        (400, Some("type"))
    );

    // Counting fewer than are reserved would leave reservations without stock.
    let r = super::allocate(
        &app,
        "order-1",
        json!([{"sku": "PB-10K", "quantity": 4}]),
        "NY",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = movement(
        &app,
        json!({"type": "ADJUST", "sku": "PB-10K", "warehouse": "SZ",
        "quantity": 3, "reason": "count"}),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (409, "STOCK_WOULD_GO_NEGATIVE")
    );
    assert_eq!(level(&app, "PB-10K", "SZ").await, (5, 4, 1));

    let r = inv(
        &app,
        Method::PUT,
        "/v1/inventory/warehouses/BAD",
        "/v1/inventory/warehouses/{code}",
        Some(&json!({"country": "XX", "serves": [{"country": "US", "postcodeRanges": ["9a"]}]})),
    )
    .await;
    assert_eq!(r.status, 400);
    let fields: Vec<_> = r.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["country", "serves[0].postcodeRanges[0]"]);
    assert_invariants(&app).await;
}

async fn keys_need_the_inventory_scopes(backend: Backend) {
    let app = spawn_app(backend).await;
    put_sku(&app, "PB-10K").await;
    let reader = app
        .new_key_with(
            "acme",
            shipgate::store::tenants::Mode::Test,
            "inventory:read",
        )
        .await;
    let r = app
        .call(
            Method::GET,
            "/v1/inventory/skus/PB-10K",
            "/v1/inventory/skus/{sku}",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .call(
            Method::PUT,
            "/v1/inventory/skus/PB-10K",
            "/v1/inventory/skus/{sku}",
            Some(&reader),
            Some(&json!({})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (403, "INSUFFICIENT_SCOPE")
    );
    // Another tenant sees none of it.
    let other = app.new_key("globex").await;
    let r = app
        .call(
            Method::GET,
            "/v1/inventory/skus/PB-10K",
            "/v1/inventory/skus/{sku}",
            Some(&other),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
}

/// An instance runs only the services it is told to: their routes and no others.
async fn an_instance_runs_the_services_it_is_given(backend: Backend) {
    use shipgate::settings::Service;
    let inventory_only = spawn_app_with(backend, |s| s.services = vec![Service::Inventory]).await;
    put_sku(&inventory_only, "PB-10K").await;
    let r = inventory_only
        .client
        .post(format!("{}/v1/waybills", inventory_only.address))
        .bearer_auth(&inventory_only.key)
        .json(&crate::helpers::waybill_request("R-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let gateway_only = spawn_app_with(backend, |s| s.services = vec![Service::Gateway]).await;
    let r = gateway_only
        .client
        .get(format!("{}/v1/inventory/warehouses", gateway_only.address))
        .bearer_auth(&gateway_only.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

crate::on_both_databases!(
    movements_explain_the_stock,
    bad_input_is_refused_with_details,
    keys_need_the_inventory_scopes,
    an_instance_runs_the_services_it_is_given,
);
