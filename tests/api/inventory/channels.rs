//! Available-to-sell pushed to a Shopify shop (a mock speaking its inventory levels API):
//! coalesced, retried through rate limits and outages, never lost, never stale.

use super::{allocate, inv, receive, set_up};
use crate::helpers::{Backend, TestApp, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SET: &str = "/admin/api/2025-07/inventory_levels/set.json";

/// The shop: rate-limited once, down once, then taking every level.
async fn shop() -> MockServer {
    let shop = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SET))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0.2"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&shop)
        .await;
    Mock::given(method("POST"))
        .and(path(SET))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&shop)
        .await;
    Mock::given(method("POST"))
        .and(path(SET))
        .and(header("X-Shopify-Access-Token", "shpat_0123456789abcdef"))
        .respond_with(|req: &wiremock::Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            ResponseTemplate::new(200).set_body_json(json!({"inventory_level": {
                "inventory_item_id": body["inventory_item_id"], "location_id": body["location_id"],
                "available": body["available"], "updated_at": "2026-12-02T04:40:00-05:00",
                "admin_graphql_api_id": "gid://shopify/InventoryLevel/655441491?inventory_item_id=808950810"}}))
        })
        .with_priority(3)
        .mount(&shop)
        .await;
    shop
}

/// The levels the shop took (answered 200), in order.
async fn taken(shop: &MockServer) -> Vec<Value> {
    let mut levels = Vec::new();
    let requests = shop.received_requests().await.unwrap();
    // The first two were refused (429, then 503); the rest were taken.
    for req in requests.iter().skip(2) {
        levels.push(serde_json::from_slice::<Value>(&req.body).unwrap());
    }
    levels
}

async fn connect(app: &TestApp, shop: &MockServer) -> crate::helpers::Reply {
    inv(app, Method::PUT, "/v1/inventory/channels/shopify-main", "/v1/inventory/channels/{channel}",
        Some(&json!({"platform": "shopify", "baseUrl": shop.uri(), "accessToken": "shpat_0123456789abcdef",
                     "locationId": "655441491", "warehouses": ["SZ", "US-EAST"], "buffer": 2, "cap": 100}))).await
}

async fn settled(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM inv_ats_pending").await
}

async fn available_to_sell_reaches_the_shop(backend: Backend) {
    let shop = shop().await;
    let app = spawn_app_with(backend, |s| {
        s.inventory.allow_private_channels = true;
        s.inventory.channel_coalesce_ms = 50;
    })
    .await;
    set_up(&app, "PB-10K").await;
    receive(&app, "PB-10K", "SZ", 10).await;
    receive(&app, "PB-10K", "US-EAST", 5).await;
    receive(&app, "PB-10K", "US-WEST", 50).await;
    let r = inv(
        &app,
        Method::PUT,
        "/v1/inventory/sku-mappings/shopify-main/808950810",
        "/v1/inventory/sku-mappings/{channel}/{identifier}",
        Some(&json!({"sku": "PB-10K"})),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = connect(&app, &shop).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["channel"].get("accessToken").is_none(),
        "the token is never shown"
    );
    assert_eq!(
        allocate(&app, "o-1", json!([{"sku": "PB-10K", "quantity": 3}]), "NY")
            .await
            .status,
        201
    );

    // Through a 429 (its Retry-After honoured) and a 503, the shop gets the level: SZ and
    // US-EAST count (US-WEST does not), less 3 reserved, less the buffer of 2.
    app.wait_for("the level to reach the shop", 30, || async {
        (taken(&shop)
            .await
            .last()
            .is_some_and(|l| l["available"] == 10)
            && settled(&app).await == 0)
            .then_some(())
    })
    .await;
    let last = taken(&shop).await.pop().unwrap();
    assert_eq!(
        last,
        json!({"location_id": 655441491u64, "inventory_item_id": 808950810u64, "available": 10})
    );

    // A burst of changes is one push, of the level after the last one.
    let before = taken(&shop).await.len();
    for _ in 0..5 {
        receive(&app, "PB-10K", "SZ", 1).await;
    }
    app.wait_for("the burst to be pushed", 30, || async {
        (settled(&app).await == 0 && taken(&shop).await.len() > before).then_some(())
    })
    .await;
    let after = taken(&shop).await;
    assert_eq!(after.len(), before + 1, "five changes, one push");
    assert_eq!(after.last().unwrap()["available"], 15);
    // A change of a warehouse the channel does not count pushes nothing.
    receive(&app, "PB-10K", "US-WEST", 7).await;
    app.run_background().await;
    app.run_background().await;
    assert_eq!(taken(&shop).await.len(), before + 1);

    // Every level taken is an event (and so a webhook for who subscribes).
    let pushed = app
        .count("SELECT COUNT(*) FROM events WHERE event_type = 'inventory.available_to_sell'")
        .await;
    assert_eq!(pushed, 2);
    let r = inv(
        &app,
        Method::GET,
        "/v1/inventory/channels",
        "/v1/inventory/channels",
        None,
    )
    .await;
    assert_eq!(r.body["channels"][0]["buffer"], 2);
    assert!(!r.body.to_string().contains("shpat_"), "{}", r.body);
}

async fn channel_connections_are_checked(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    set_up(&app, "PB-10K").await;
    let put = |body: Value| {
        let app = &app;
        async move {
            inv(
                app,
                Method::PUT,
                "/v1/inventory/channels/shop",
                "/v1/inventory/channels/{channel}",
                Some(&body),
            )
            .await
        }
    };
    let base = json!({"platform": "shopify", "baseUrl": "https://example.myshopify.com",
                      "accessToken": "shpat_x", "locationId": "1"});
    assert_eq!(put(base.clone()).await.status, 200);
    let mut bad = base.clone();
    bad["baseUrl"] = json!("http://127.0.0.1:9/");
    let r = put(bad).await;
    assert_eq!(
        (r.status.as_u16(), r.body["details"][0]["field"].as_str()),
        (400, Some("baseUrl")),
        "{}",
        r.body
    );
    let mut bad = base.clone();
    bad["locationId"] = json!("gid://shopify/Location/1");
    bad["buffer"] = json!(-1);
    let r = put(bad).await;
    let fields: Vec<_> = r.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["buffer"], "numbers are checked first: {}", r.body);
    let mut bad = base;
    bad["warehouses"] = json!(["MARS"]);
    let r = put(bad).await;
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (400, "UNKNOWN_WAREHOUSE")
    );
}

crate::on_both_databases!(
    available_to_sell_reaches_the_shop,
    channel_connections_are_checked
);
