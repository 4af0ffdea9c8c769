//! Orders the system cannot place are kept on hold with their reason, never dropped, and go on
//! when released.

use super::{act, call, get_order, ingest, order, until_state, warehouses_and_stock};
use crate::helpers::{Backend, spawn_app_with};
use crate::inventory::{inv, receive};
use reqwest::Method;
use serde_json::json;
use shipgate::settings::ShippingRule;

async fn orders_that_cannot_be_placed_are_held_with_their_reason(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.orders.rules = vec![ShippingRule {
            channel: "SANDBOX_EXPRESS".into(),
            countries: vec!["US".into()],
            states: vec![],
            service_levels: vec![],
            min_weight_grams: None,
            max_weight_grams: None,
            without_attributes: vec![],
            with_attributes: vec![],
            max_parcel_grams: None,
        }];
    })
    .await;
    warehouses_and_stock(&app, &["PB-10K"], 1).await;
    let mut cases = Vec::new();
    cases.push((order("UNKNOWN", "NO-SUCH-SKU", 1), "UNKNOWN_SKU"));
    cases.push((order("SHORT", "PB-10K", 5), "NO_STOCK"));
    let mut abroad = order("ABROAD", "PB-10K", 1);
    abroad["shipTo"] = json!({"name": "Alan Turing", "street1": "1 Bletchley Rd", "city": "London",
                              "postalCode": "MK3 6EB", "country": "GB"});
    cases.push((abroad, "UNROUTABLE"));
    let mut no_state = order("NOSTATE", "PB-10K", 1);
    no_state["shipTo"].as_object_mut().unwrap().remove("state");
    cases.push((no_state, "ADDRESS_PROBLEM"));
    let mut unmapped = order("UNMAPPED", "PB-10K", 1);
    unmapped["lines"] = json!([{"identifier": "gid://shopify/ProductVariant/9", "quantity": 1, "unitPrice": "1.00"}]);
    cases.push((unmapped, "UNMAPPED_SKU"));
    let mut ids = Vec::new();
    for (o, reason) in cases {
        let r = ingest(&app, &o).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["order"]["orderId"].as_str().unwrap().to_owned();
        let held = until_state(&app, &id, "ON_HOLD").await;
        assert_eq!(held["order"]["holdReason"], reason, "{held}");
        assert!(
            held["order"]["holdDetail"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
        ids.push(id);
    }
    let r = call(
        &app,
        Method::GET,
        "/v1/orders?state=ON_HOLD",
        "/v1/orders",
        None,
    )
    .await;
    assert_eq!(r.body["orders"].as_array().unwrap().len(), 5, "{}", r.body);
    // Nothing is reserved for a held order.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM inv_reservations WHERE state = 'active'")
            .await,
        0
    );

    // Stock arrives; the short order is released and ships.
    assert_eq!(receive(&app, "PB-10K", "US-EAST", 10).await.status, 201);
    let r = act(&app, &ids[1], json!({"action": "release"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    until_state(&app, &ids[1], "WAYBILL_CREATED").await;
    // A person may hold a received order, and release it again.
    let id = ingest(&app, &order("MANUAL", "PB-10K", 1)).await.body["order"]["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = act(
        &app,
        &id,
        json!({"action": "hold", "reason": "fraud check"}),
    )
    .await;
    assert_eq!(r.body["state"], "ON_HOLD", "{}", r.body);
    app.run_background().await;
    let o = get_order(&app, &id).await;
    assert_eq!(o.body["order"]["holdReason"], "MANUAL");
    assert_eq!(o.body["order"]["holdDetail"], "fraud check");

    // A warehouse without a street address cannot be the shipper: the gateway is not asked,
    // and the shipment's order waits on hold with why.
    let r = inv(
        &app,
        Method::PUT,
        "/v1/inventory/warehouses/US-EAST",
        "/v1/inventory/warehouses/{code}",
        Some(
            &json!({"name": "US-EAST", "country": "US", "state": "NJ", "postalCode": "07102",
                     "priority": 1, "serves": [{"country": "US", "states": ["NY", "NJ"]}]}),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let waybills = app.count("SELECT COUNT(*) FROM waybills").await;
    let r = ingest(&app, &order("NOADDRESS", "PB-10K", 1)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["order"]["orderId"].as_str().unwrap().to_owned();
    let held = until_state(&app, &id, "ON_HOLD").await;
    assert_eq!(held["order"]["holdReason"], "GATEWAY_REJECTED", "{held}");
    let detail = held["order"]["holdDetail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("NO_SHIPPER_ADDRESS: warehouse US-EAST"),
        "{detail}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM waybills").await, waybills);
}

crate::on_both_databases!(orders_that_cannot_be_placed_are_held_with_their_reason);
