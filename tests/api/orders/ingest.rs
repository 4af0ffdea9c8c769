//! Ingest: one order or a batch, deduplicated with versions; bad input; look-alikes held.

use super::{act, call, get_order, ingest, order};
use crate::helpers::{Backend, spawn_app};
use reqwest::Method;
use serde_json::json;

async fn the_same_order_is_one_order_with_versions(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = ingest(&app, &order("PO-1", "PB-10K", 2)).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["order"]["outcome"], "created");
    let id = first.body["order"]["orderId"].as_str().unwrap().to_owned();

    // The same content again (whitespace, case and amount form aside) is a no-op.
    let mut again = order("PO-1", "PB-10K", 2);
    again["externalId"] = json!(" PO-1 ");
    again["total"] = json!("19.8");
    again["channel"] = json!("ERP");
    let r = ingest(&app, &again).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["order"]["outcome"], "unchanged");
    assert_eq!(r.body["order"]["orderId"], id.as_str());

    // Changed and newer: version 2. Changed but older than what is stored: ignored.
    let mut changed = order("PO-1", "PB-10K", 3);
    changed["updatedAt"] = json!("2026-12-01T12:00:00Z");
    let r = ingest(&app, &changed).await;
    assert_eq!(r.body["order"]["outcome"], "updated", "{}", r.body);
    assert_eq!(r.body["order"]["version"], 2);
    let mut older = order("PO-1", "PB-10K", 4);
    older["updatedAt"] = json!("2026-12-01T11:00:00Z");
    let r = ingest(&app, &older).await;
    assert_eq!(r.body["order"]["outcome"], "stale", "{}", r.body);

    let detail = get_order(&app, &id).await;
    assert_eq!(detail.body["order"]["version"], 2);
    assert_eq!(detail.body["versions"].as_array().unwrap().len(), 2);
    assert_eq!(detail.body["content"]["lines"][0]["quantity"], 3);
    let types: Vec<&str> = detail.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["order.received", "order.updated"]);

    // A batch: one known (unchanged), two new, one of them twice in the same batch.
    let batch = json!({"orders": [changed, order("PO-2", "PB-10K", 1), order("PO-3", "PB-10K", 1),
                                   order("PO-3", "PB-10K", 1)]});
    let r = ingest(&app, &batch).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["created"].as_i64(), r.body["unchanged"].as_i64()),
        (Some(2), Some(2)),
        "{}",
        r.body
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM ord_orders").await, 3);

    // Listing by state, channel and page.
    let r = call(
        &app,
        Method::GET,
        "/v1/orders?channel=erp&limit=2",
        "/v1/orders",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["orders"].as_array().unwrap().len(), 2);
    let cursor = r.body["nextCursor"].as_str().unwrap().to_owned();
    let r = call(
        &app,
        Method::GET,
        &format!("/v1/orders?channel=erp&limit=2&cursor={cursor}"),
        "/v1/orders",
        None,
    )
    .await;
    assert_eq!(r.body["orders"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["nextCursor"], serde_json::Value::Null);
    let r = call(
        &app,
        Method::GET,
        "/v1/orders?state=delivered",
        "/v1/orders",
        None,
    )
    .await;
    assert_eq!(r.body["orders"].as_array().unwrap().len(), 0);
    // By external id too.
    assert_eq!(
        get_order(&app, "PO-1").await.body["order"]["id"],
        id.as_str()
    );
}

async fn malformed_orders_are_refused_with_field_details(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut bad = order("PO-9", "PB-10K", 0);
    bad["currency"] = json!("XXY");
    bad["shipTo"]["country"] = json!("ZZ");
    bad["lines"][0]["unitPrice"] = json!("1.234");
    let r = ingest(&app, &json!({"orders": [order("PO-8", "PB-10K", 1), bad]})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_code(), "VALIDATION_FAILED");
    let fields: Vec<&str> = r.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for f in [
        "orders[1].currency",
        "orders[1].shipTo.country",
        "orders[1].lines[0].quantity",
    ] {
        assert!(fields.contains(&f), "{f} missing in {fields:?}");
    }
    // Nothing of a refused batch is stored.
    assert_eq!(app.count("SELECT COUNT(*) FROM ord_orders").await, 0);
    let mut missing = order("PO-7", "PB-10K", 1);
    missing.as_object_mut().unwrap().remove("shipTo");
    let r = ingest(&app, &missing).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["details"][0]["errorMsg"]
            .as_str()
            .unwrap()
            .contains("shipTo"),
        "{}",
        r.body
    );
    let r = ingest(&app, &json!({"orders": []})).await;
    assert_eq!(r.status, 400);
    let r = ingest(&app, &json!([1, 2])).await;
    assert_eq!(r.status, 400);
    // A key without the orders scopes.
    let key = app
        .new_key_with(
            "acme",
            shipgate::store::tenants::Mode::Test,
            "inventory:read",
        )
        .await;
    let r = app
        .call(
            Method::POST,
            "/v1/orders",
            "/v1/orders",
            Some(&key),
            Some(&order("PO-6", "X", 1)),
        )
        .await;
    assert_eq!(r.status, 403);
}

async fn look_alike_orders_across_channels_are_held_for_review(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = ingest(&app, &order("PO-1", "PB-10K", 2)).await;
    let mut twin = order("1001", "PB-10K", 2);
    twin["channel"] = json!("shopify");
    twin["shop"] = json!("acme.myshopify.com");
    twin["placedAt"] = json!("2026-12-01T10:20:00Z");
    let r = ingest(&app, &twin).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["order"]["state"], "on_hold");
    let id = r.body["order"]["orderId"].as_str().unwrap().to_owned();
    let detail = get_order(&app, &id).await;
    assert_eq!(detail.body["order"]["holdReason"], "POSSIBLE_DUPLICATE");
    assert_eq!(
        detail.body["order"]["duplicateOf"],
        first.body["order"]["orderId"]
    );

    // In one batch: a new order, its look-alike from another shop, a newer copy of the first.
    let mut a = order("PO-9", "PB-10K", 5);
    a["buyer"]["email"] = json!("grace@example.com");
    a["total"] = json!("49.50");
    let mut b = a.clone();
    b["channel"] = json!("shopify");
    b["shop"] = json!("acme.myshopify.com");
    b["externalId"] = json!("2002");
    let mut newer = a.clone();
    newer["updatedAt"] = json!("2026-12-01T12:00:00Z");
    newer["lines"][0]["quantity"] = json!(6);
    let r = ingest(&app, &json!({"orders": [a, b, newer]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let results = &r.body["results"];
    let outcomes: Vec<(&str, &str, i64)> = (0..3)
        .map(|i| {
            let o = &results[i];
            (
                o["outcome"].as_str().unwrap(),
                o["state"].as_str().unwrap(),
                o["version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("created", "received", 1),
            ("created", "on_hold", 1),
            ("updated", "received", 2)
        ],
        "{}",
        r.body
    );
    assert_eq!(results[0]["orderId"], results[2]["orderId"]);
    let held = get_order(&app, results[1]["orderId"].as_str().unwrap()).await;
    assert_eq!(held.body["order"]["duplicateOf"], results[0]["orderId"]);

    // Released by a person, it goes on (and is not flagged again).
    let r = act(&app, &id, json!({"action": "release"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "RECEIVED");
    let r = act(&app, &id, json!({"action": "release"})).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.error_code(), "ILLEGAL_TRANSITION");
}

async fn concurrent_copies_of_one_order_make_one_order(backend: Backend) {
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut o = order("PO-RACE", "PB-10K", 1);
            o["updatedAt"] = json!("2026-12-01T11:00:00Z");
            if i % 2 == 1 {
                o["updatedAt"] = json!("2026-12-01T12:00:00Z");
                o["lines"][0]["quantity"] = json!(2);
            }
            ingest(&app, &o).await.status.as_u16()
        }));
    }
    for t in tasks {
        let status = t.await.unwrap();
        assert!(status == 200 || status == 201, "{status}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM ord_orders").await, 1);
    // At most the two contents, each once.
    let versions = app.count("SELECT COUNT(*) FROM ord_versions").await;
    assert!((1..=2).contains(&versions), "{versions}");
}

crate::on_both_databases!(
    the_same_order_is_one_order_with_versions,
    malformed_orders_are_refused_with_field_details,
    look_alike_orders_across_channels_are_held_for_review,
    concurrent_copies_of_one_order_make_one_order,
);
