//! An order's life through the gateway: allocated, waybill and label, shipped and delivered by
//! the carrier's tracking; cancel before shipment; returns; merge and split.

use super::{
    act, call, gateway_request, get_order, ingest, on_hand, order, until_state, until_state_in,
    warehouses_and_stock,
};
use crate::helpers::{Backend, fast_sandbox, spawn_app, spawn_app_with, spawn_live_app_with};
use crate::inventory::{assert_invariants, receive};
use reqwest::Method;
use serde_json::{Value, json};

fn types(order: &Value) -> Vec<String> {
    order["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

async fn an_order_ships_through_the_gateway_and_tracking_delivers_it(backend: Backend) {
    let app = spawn_app_with(backend, fast_sandbox).await;
    warehouses_and_stock(&app, &["PB-10K"], 10).await;
    let r = ingest(&app, &order("PO-1", "PB-10K", 2)).await;
    let id = r.body["order"]["orderId"].as_str().unwrap().to_owned();
    let placed = until_state(&app, &id, "WAYBILL_CREATED").await;
    let shipment = &placed["shipments"][0];
    assert_eq!(placed["shipments"].as_array().unwrap().len(), 1);
    assert_eq!(shipment["state"], "CREATED");
    assert_eq!(shipment["warehouse"], "US-EAST");
    let reference = shipment["referenceNumber"].as_str().unwrap();
    let number = shipment["waybillNumber"].as_str().unwrap().to_owned();
    // The gateway knows the waybill by the shipment's reference; the stock left with it.
    let w = app.by_reference(&app.key, reference).await;
    assert_eq!(w.status, 200, "{}", w.body);
    assert_eq!(w.body["waybillNumber"], number.as_str());
    assert_eq!(on_hand(&app, "PB-10K", "US-EAST").await, 8);
    // The shipper is the warehouse.
    let request = gateway_request(&app, reference).await;
    assert_eq!(request["shipper"]["street1"], "1 Dock Rd", "{request}");

    // The label station prints an order's labels by its number.
    let res = app
        .client
        .get(format!("{}/v1/orders/PO-1/labels", app.address))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let pdf = res.bytes().await.unwrap();
    assert_eq!(
        lopdf::Document::load_mem(&pdf).unwrap().get_pages().len(),
        1
    );

    let delivered = until_state(&app, &id, "DELIVERED").await;
    let seen = types(&delivered);
    for t in [
        "order.received",
        "order.allocated",
        "order.waybill_created",
        "order.shipped",
        "order.delivered",
    ] {
        assert!(seen.iter().any(|s| s == t), "{t} missing in {seen:?}");
    }
    assert_eq!(delivered["shipments"][0]["trackingStatus"], "DELIVERED");
    // After delivery it cannot be cancelled; it can be returned and refunded.
    let r = act(&app, &id, json!({"action": "cancel"})).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.error_code(), "ILLEGAL_TRANSITION");
    let r = act(
        &app,
        &id,
        json!({"action": "receive_return", "warehouse": "SZ"}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    for (action, state) in [
        (
            json!({"action": "authorize_return", "reason": "damaged"}),
            "RETURN_AUTHORIZED",
        ),
        (
            json!({"action": "receive_return", "warehouse": "SZ"}),
            "RETURN_RECEIVED",
        ),
        (json!({"action": "restock"}), "RESTOCKED"),
        (json!({"action": "refund"}), "REFUNDED"),
    ] {
        let r = act(&app, &id, action).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["state"], state);
    }
    assert_eq!(on_hand(&app, "PB-10K", "SZ").await, 2);
    assert_invariants(&app).await;
}

async fn cancel_before_shipment_voids_the_waybill_and_returns_the_stock(backend: Backend) {
    let app = spawn_app(backend).await;
    warehouses_and_stock(&app, &["PB-10K"], 10).await;
    let id = ingest(&app, &order("PO-1", "PB-10K", 3)).await.body["order"]["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let placed = until_state(&app, &id, "WAYBILL_CREATED").await;
    let number = placed["shipments"][0]["waybillNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(on_hand(&app, "PB-10K", "US-EAST").await, 7);
    let r = act(
        &app,
        &id,
        json!({"action": "cancel", "reason": "buyer asked"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "CANCELLED");
    assert_eq!(on_hand(&app, "PB-10K", "US-EAST").await, 10);
    let w = app.get_waybill(&app.key, &number).await;
    assert_eq!(w.body["state"], "cancelled", "{}", w.body);
    let detail = get_order(&app, &id).await;
    assert_eq!(detail.body["shipments"][0]["state"], "VOIDED");

    // Cancelled before it was planned: nothing is allocated later.
    let id = ingest(&app, &order("PO-2", "PB-10K", 1)).await.body["order"]["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = act(&app, &id, json!({"action": "cancel"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.run_background().await;
    let detail = get_order(&app, &id).await;
    assert_eq!(detail.body["order"]["state"], "CANCELLED");
    assert!(detail.body["shipments"].as_array().unwrap().is_empty());
    let r = act(&app, &id, json!({"action": "refund"})).await;
    assert_eq!(r.body["state"], "REFUNDED", "{}", r.body);
    let r = act(&app, &id, json!({"action": "teleport"})).await;
    assert_eq!(r.status, 400);
    assert_invariants(&app).await;
}

async fn orders_merge_to_one_consignee_and_split_by_warehouse(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        // A loaded machine may see the gateway ask for a retry: retried soon, not after 16 s.
        s.orders.retry_initial_ms = 50;
        s.orders.retry_max_ms = 500;
    })
    .await;
    warehouses_and_stock(&app, &["PB-10K", "CABLE"], 10).await;
    // CABLE is only in Shenzhen: an order of both splits into two shipments.
    let r = crate::inventory::inv(
        &app,
        Method::PUT,
        "/v1/inventory/stock/CABLE/US-EAST",
        "/v1/inventory/stock/{sku}/{warehouse}",
        Some(&json!({"safetyStock": 10})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(receive(&app, "CABLE", "SZ", 5).await.status, 201);
    let mut both = order("PO-S", "PB-10K", 1);
    both["lines"] = json!([
        {"sku": "PB-10K", "quantity": 1, "unitPrice": "9.90", "weightGrams": 300},
        {"sku": "CABLE", "quantity": 2, "unitPrice": "4.95", "weightGrams": 50, "hsCode": "854442"}
    ]);
    let id = ingest(&app, &both).await.body["order"]["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let split = until_state(&app, &id, "WAYBILL_CREATED").await;
    let mut at: Vec<&str> = split["shipments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["warehouse"].as_str().unwrap())
        .collect();
    at.sort_unstable();
    assert_eq!(at, ["SZ", "US-EAST"]);

    // Merging on: two orders to one consignee (written differently) become one shipment.
    let r = call(
        &app,
        Method::PUT,
        "/v1/order-settings",
        "/v1/order-settings",
        Some(&json!({"merge": true, "mergeWindowSecs": 1})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let a = ingest(&app, &order("PO-A", "PB-10K", 1)).await.body["order"]["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut other = order("PO-B", "PB-10K", 1);
    other["shipTo"]["street1"] = json!("12 ELM ST.");
    other["buyer"]["email"] = json!("ada@example.org");
    let b = ingest(&app, &other).await.body["order"]["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let a_done = until_state(&app, &a, "WAYBILL_CREATED").await;
    let b_done = until_state(&app, &b, "WAYBILL_CREATED").await;
    let na = &a_done["shipments"][0]["waybillNumber"];
    assert!(na.is_string());
    assert_eq!(na, &b_done["shipments"][0]["waybillNumber"]);
    assert_eq!(a_done["shipments"][0]["lines"].as_array().unwrap().len(), 2);

    // A shipment over the channel's parcel limit (30 kg) travels as several parcels.
    let r = call(
        &app,
        Method::PUT,
        "/v1/order-settings",
        "/v1/order-settings",
        Some(&json!({"merge": false})),
    )
    .await;
    assert_eq!(r.status, 200);
    let mut heavy = order("PO-H", "PB-10K", 4);
    heavy["lines"][0]["weightGrams"] = json!(9000);
    heavy["shipTo"]["name"] = json!("Grace Hopper");
    let h = ingest(&app, &heavy).await.body["order"]["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = until_state(&app, &h, "WAYBILL_CREATED").await;
    let reference = done["shipments"][0]["referenceNumber"].as_str().unwrap();
    let request = gateway_request(&app, reference).await;
    let parcels = request["parcels"].as_array().expect("parcels");
    assert_eq!(parcels.len(), 2, "{request}");
    assert_invariants(&app).await;
}

/// A server plans and sends on its own (its planning and sending loops run side by side): orders
/// reach their waybills with nothing run on demand.
async fn a_server_ships_orders_on_its_own(backend: Backend) {
    let app = spawn_live_app_with(backend, |s| {
        fast_sandbox(s);
        s.orders.process_interval_ms = 20;
    })
    .await;
    warehouses_and_stock(&app, &["PB-10K"], 10).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut o = order(&format!("PO-LIVE-{i}"), "PB-10K", 1);
        // Another consignee each: three shipments, not one merged.
        o["shipTo"]["name"] = json!(format!("Buyer {i}"));
        let r = ingest(&app, &o).await;
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.body["order"]["orderId"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        // The fast sandbox may scan and deliver it before the test looks.
        let placed = until_state_in(&app, id, &["WAYBILL_CREATED", "SHIPPED", "DELIVERED"]).await;
        assert_eq!(placed["shipments"][0]["state"], "CREATED", "{placed}");
        let events: Vec<&str> = placed["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["type"].as_str())
            .collect();
        assert!(events.contains(&"order.waybill_created"), "{placed}");
    }
    assert_eq!(on_hand(&app, "PB-10K", "US-EAST").await, 7);
}

/// Shipments made in one step are marked as a batch: each order's stock committed once (the
/// split order's in both warehouses), each order moved on once, with one event.
async fn a_step_marks_many_shipments_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    warehouses_and_stock(&app, &["PB-10K", "CABLE"], 40).await;
    let r = crate::inventory::inv(
        &app,
        Method::PUT,
        "/v1/inventory/stock/CABLE/US-EAST",
        "/v1/inventory/stock/{sku}/{warehouse}",
        Some(&json!({"safetyStock": 40})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(receive(&app, "CABLE", "SZ", 5).await.status, 201);
    let mut orders = Vec::new();
    for i in 0..30 {
        let mut o = order(&format!("PO-MANY-{i}"), "PB-10K", 1);
        o["shipTo"]["name"] = json!(format!("Buyer {i}"));
        orders.push(o);
    }
    let mut split = order("PO-MANY-SPLIT", "PB-10K", 1);
    split["lines"] = json!([
        {"sku": "PB-10K", "quantity": 1, "unitPrice": "9.90", "weightGrams": 300},
        {"sku": "CABLE", "quantity": 2, "unitPrice": "4.95", "weightGrams": 50, "hsCode": "854442"}
    ]);
    orders.push(split);
    let r = call(
        &app,
        Method::POST,
        "/v1/orders",
        "/v1/orders",
        Some(&json!({"orders": orders})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ids: Vec<String> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 31, "{}", r.body);
    for id in &ids {
        let done = until_state(&app, id, "WAYBILL_CREATED").await;
        let made = done["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "order.waybill_created")
            .count();
        assert_eq!(made, 1, "{done}");
        for s in done["shipments"].as_array().unwrap() {
            assert_eq!(s["state"], "CREATED", "{done}");
        }
    }
    let (on_hand, reserved, _) = crate::inventory::level(&app, "PB-10K", "US-EAST").await;
    assert_eq!((on_hand, reserved), (40 - 31, 0));
    let (on_hand, reserved, _) = crate::inventory::level(&app, "CABLE", "SZ").await;
    assert_eq!((on_hand, reserved), (3, 0));
    assert_invariants(&app).await;
}

crate::on_both_databases!(
    a_server_ships_orders_on_its_own,
    a_step_marks_many_shipments_at_once,
    an_order_ships_through_the_gateway_and_tracking_delivers_it,
    cancel_before_shipment_voids_the_waybill_and_returns_the_stock,
    orders_merge_to_one_consignee_and_split_by_warehouse,
);
