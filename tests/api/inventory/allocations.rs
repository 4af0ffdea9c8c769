//! Allocations: the rule, idempotency on the caller's id, commit, release and expiry, and
//! channel identifiers.

use super::{allocate, assert_invariants, inv, level, put_sku, receive, set_up};
use crate::helpers::{Backend, spawn_app};
use reqwest::Method;
use serde_json::json;

fn warehouses(r: &crate::helpers::Reply) -> Vec<(String, i64)> {
    r.body["allocation"]["warehouses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["warehouse"].as_str().unwrap().to_owned(),
                w["lines"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["quantity"].as_i64().unwrap())
                    .sum(),
            )
        })
        .collect()
}

async fn the_rule_prefers_one_warehouse_then_priority_then_nearness(backend: Backend) {
    let app = spawn_app(backend).await;
    set_up(&app, "PB-10K").await;
    put_sku(&app, "CABLE").await;
    receive(&app, "PB-10K", "SZ", 3).await;
    receive(&app, "PB-10K", "US-EAST", 5).await;
    receive(&app, "PB-10K", "US-WEST", 5).await;
    receive(&app, "CABLE", "US-WEST", 5).await;
    // Only US-WEST has both lines: it fills the order alone although SZ has better priority.
    let r = allocate(
        &app,
        "o-1",
        json!([{"sku": "PB-10K", "quantity": 1}, {"sku": "CABLE", "quantity": 1}]),
        "NY",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(warehouses(&r), [("US-WEST".to_owned(), 2)]);
    // SZ (priority 1) fills 2 alone.
    let r = allocate(&app, "o-2", json!([{"sku": "PB-10K", "quantity": 2}]), "CA").await;
    assert_eq!(warehouses(&r), [("SZ".to_owned(), 2)]);
    // SZ has 1 left: of the two priority-2 warehouses the one serving New York wins ...
    let r = allocate(&app, "o-3", json!([{"sku": "PB-10K", "quantity": 2}]), "NY").await;
    assert_eq!(warehouses(&r), [("US-EAST".to_owned(), 2)]);
    // ... and for California the western one.
    let r = allocate(&app, "o-4", json!([{"sku": "PB-10K", "quantity": 2}]), "CA").await;
    assert_eq!(warehouses(&r), [("US-WEST".to_owned(), 2)]);
    // 6 units: no warehouse has them (SZ 1, EAST 3, WEST 2): it takes all three.
    let r = allocate(&app, "o-5", json!([{"sku": "PB-10K", "quantity": 6}]), "CA").await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(warehouses(&r).len(), 3);
    let r = allocate(&app, "o-6", json!([{"sku": "PB-10K", "quantity": 1}]), "CA").await;
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (409, "INSUFFICIENT_STOCK")
    );
    assert!(
        r.body["details"][0]["errorMsg"]
            .as_str()
            .unwrap()
            .contains("0 available"),
        "{}",
        r.body
    );
    assert_invariants(&app).await;
}

async fn an_allocation_is_idempotent_and_committed_or_released_once(backend: Backend) {
    let app = spawn_app(backend).await;
    set_up(&app, "PB-10K").await;
    receive(&app, "PB-10K", "US-EAST", 10).await;
    let lines = json!([{"sku": "PB-10K", "quantity": 4}]);
    let first = allocate(&app, "order-9", lines.clone(), "NY").await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = allocate(&app, "order-9", lines, "NY").await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["allocation"], first.body["allocation"]);
    assert_eq!(
        level(&app, "PB-10K", "US-EAST").await,
        (10, 4, 6),
        "one reservation, not two"
    );
    let other = allocate(
        &app,
        "order-9",
        json!([{"sku": "PB-10K", "quantity": 5}]),
        "NY",
    )
    .await;
    assert_eq!(
        (other.status.as_u16(), other.error_code()),
        (409, "ID_CONFLICT")
    );

    let commit = |id: &'static str| {
        let path = format!("/v1/inventory/allocations/{id}/commit");
        let app = &app;
        async move {
            inv(
                app,
                Method::POST,
                &path,
                "/v1/inventory/allocations/{id}/commit",
                None,
            )
            .await
        }
    };
    let r = commit("order-9").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["allocation"]["state"], "COMMITTED");
    assert_eq!(
        level(&app, "PB-10K", "US-EAST").await,
        (6, 0, 6),
        "committed stock left"
    );
    assert_eq!(
        commit("order-9").await.status,
        200,
        "committing again changes nothing"
    );
    assert_eq!(level(&app, "PB-10K", "US-EAST").await, (6, 0, 6));
    let r = inv(
        &app,
        Method::POST,
        "/v1/inventory/allocations/order-9/release",
        "/v1/inventory/allocations/{id}/release",
        Some(&json!({"reason": "cancelled"})),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (409, "ALLOCATION_NOT_ACTIVE")
    );

    allocate(
        &app,
        "order-10",
        json!([{"sku": "PB-10K", "quantity": 2}]),
        "NY",
    )
    .await;
    for _ in 0..2 {
        let r = inv(
            &app,
            Method::POST,
            "/v1/inventory/allocations/order-10/release",
            "/v1/inventory/allocations/{id}/release",
            Some(&json!({"reason": "cancelled"})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["allocation"]["state"], "RELEASED");
        assert_eq!(r.body["allocation"]["reason"], "cancelled");
    }
    assert_eq!(level(&app, "PB-10K", "US-EAST").await, (6, 0, 6));
    let r = commit("order-10").await;
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (409, "ALLOCATION_NOT_ACTIVE")
    );
    let r = inv(
        &app,
        Method::GET,
        "/v1/inventory/allocations/nope",
        "/v1/inventory/allocations/{id}",
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    assert_invariants(&app).await;
}

async fn unclaimed_reservations_expire(backend: Backend) {
    let app = spawn_app(backend).await;
    set_up(&app, "PB-10K").await;
    receive(&app, "PB-10K", "SZ", 3).await;
    let r = inv(
        &app,
        Method::POST,
        "/v1/inventory/allocations",
        "/v1/inventory/allocations",
        Some(
            &json!({"allocationId": "cart-1", "lines": [{"sku": "PB-10K", "quantity": 3}],
                     "destination": {"country": "US"}, "expiresInSecs": 1}),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body["allocation"]["expiresAt"].is_string());
    assert_eq!(level(&app, "PB-10K", "SZ").await, (3, 3, 0));
    app.wait_for("the allocation to expire", 20, || async {
        let r = inv(
            &app,
            Method::GET,
            "/v1/inventory/allocations/cart-1",
            "/v1/inventory/allocations/{id}",
            None,
        )
        .await;
        (r.body["allocation"]["state"] == "RELEASED").then_some(r)
    })
    .await;
    assert_eq!(level(&app, "PB-10K", "SZ").await, (3, 0, 3));
    assert_invariants(&app).await;
}

async fn channel_identifiers_map_to_skus(backend: Backend) {
    let app = spawn_app(backend).await;
    set_up(&app, "PB-10K").await;
    receive(&app, "PB-10K", "SZ", 3).await;
    let r = inv(
        &app,
        Method::PUT,
        "/v1/inventory/sku-mappings/shopify/39072856",
        "/v1/inventory/sku-mappings/{channel}/{identifier}",
        Some(&json!({"sku": "PB-10K"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = inv(
        &app,
        Method::GET,
        "/v1/inventory/sku-mappings/shopify/39072856",
        "/v1/inventory/sku-mappings/{channel}/{identifier}",
        None,
    )
    .await;
    assert_eq!(r.body["sku"], "PB-10K");
    let r = inv(
        &app,
        Method::GET,
        "/v1/inventory/sku-mappings/amazon/B00X4WHP5E",
        "/v1/inventory/sku-mappings/{channel}/{identifier}",
        None,
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (404, "UNMAPPED_IDENTIFIER")
    );
    let r = allocate(
        &app,
        "o-1",
        json!([{"channel": "shopify", "identifier": "39072856", "quantity": 1}]),
        "CA",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.body["allocation"]["warehouses"][0]["lines"][0]["sku"],
        "PB-10K"
    );
    let r = allocate(
        &app,
        "o-2",
        json!([{"channel": "amazon", "identifier": "B00X4WHP5E", "quantity": 1}]),
        "CA",
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (400, "UNMAPPED_IDENTIFIER")
    );
    assert_eq!(r.body["details"][0]["field"], "lines[0].identifier");
    let r = inv(
        &app,
        Method::PUT,
        "/v1/inventory/sku-mappings/amazon/B00X4WHP5E",
        "/v1/inventory/sku-mappings/{channel}/{identifier}",
        Some(&json!({"sku": "NOPE"})),
    )
    .await;
    assert_eq!((r.status.as_u16(), r.error_code()), (400, "UNKNOWN_SKU"));
    let r = allocate(
        &app,
        "o-3",
        json!([{"sku": "PB-10K", "quantity": 0}, {"quantity": 1}]),
        "CA",
    )
    .await;
    assert_eq!(r.status, 400);
    let fields: Vec<_> = r.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["lines[0].quantity", "lines[1]"]);
}

crate::on_both_databases!(
    the_rule_prefers_one_warehouse_then_priority_then_nearness,
    an_allocation_is_idempotent_and_committed_or_released_once,
    unclaimed_reservations_expire,
    channel_identifiers_map_to_skus,
);
