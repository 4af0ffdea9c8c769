//! The pull connectors and channel webhooks against mock channels answering with the real
//! Shopify and Amazon payloads (tests/fixtures/channels): paging, rate limits, the access token,
//! the signed webhook, and tracking written back.

use super::{call, get_order, until_state, warehouses_and_stock};
use crate::helpers::{Backend, TestApp, spawn_app_with};
use crate::inventory::inv;
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub fn fixture(channel: &str, name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/channels/{channel}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub async fn map(app: &TestApp, channel: &str, identifier: &str, sku: &str) {
    let r = inv(
        app,
        Method::PUT,
        &format!("/v1/inventory/sku-mappings/{channel}/{identifier}"),
        "/v1/inventory/sku-mappings/{channel}/{identifier}",
        Some(&json!({"sku": sku})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

pub async fn connect(app: &TestApp, channel: &str, shop: &str, body: Value) -> Value {
    let r = call(
        app,
        Method::PUT,
        &format!("/v1/order-shops/{channel}/{shop}"),
        "/v1/order-shops/{channel}/{shop}",
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["shop"].clone()
}

async fn order_by_external(app: &TestApp, external: &str) -> Option<Value> {
    let r = app
        .client
        .get(format!("{}/v1/orders/{external}", app.address))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    (r.status() == 200).then_some(r.json().await.unwrap())
}

async fn shopify_orders_are_pulled_paged_and_written_back(backend: Backend) {
    let mock = MockServer::start().await;
    let mut list: Value = serde_json::from_str(&fixture(
        "shopify",
        "rest_2025-07_GET_orders_status_any.json",
    ))
    .unwrap();
    // An order the shop fulfilled itself is not shipped again.
    let mut fulfilled = list["orders"][0].clone();
    fulfilled["id"] = json!(450789470u64);
    fulfilled["fulfillment_status"] = json!("fulfilled");
    list["orders"].as_array_mut().unwrap().push(fulfilled);
    let legacy: Value =
        serde_json::from_str(&fixture("shopify", "rest_legacy_GET_order_450789469.json")).unwrap();
    let legacy = legacy.get("order").cloned().unwrap_or(legacy);
    let orders_path = "/admin/api/2025-07/orders.json";
    // The first call is refused with the rate limit; the puller waits and asks again.
    Mock::given(method("GET"))
        .and(path(orders_path))
        .and(query_param("status", "any"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path(orders_path))
        .and(query_param("status", "any"))
        .and(header("X-Shopify-Access-Token", "shpat_test"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(list)
                .insert_header("X-Shopify-Shop-Api-Call-Limit", "3/40")
                .insert_header(
                    "Link",
                    format!(
                        "<{}{orders_path}?page_info=p2&limit=250>; rel=\"next\"",
                        mock.uri()
                    ),
                ),
        )
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path(orders_path))
        .and(query_param("page_info", "p2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"orders": [legacy]})))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/admin/api/2025-07/orders/450789469/fulfillment_orders.json",
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"fulfillment_orders": [{"id": 1046000778, "status": "open"}]}),
            ),
        )
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/admin/api/2025-07/fulfillments.json"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"fulfillment": {"id": 1}})))
        .mount(&mock)
        .await;

    let app = spawn_app_with(backend, |s| s.orders.allow_private_channels = true).await;
    warehouses_and_stock(&app, &["IPOD-GREEN", "IPOD-RED", "IPOD-BLACK"], 5).await;
    for (variant, sku) in [
        ("39072856", "IPOD-GREEN"),
        ("49148385", "IPOD-RED"),
        ("457924702", "IPOD-BLACK"),
    ] {
        map(&app, "shopify", variant, sku).await;
    }
    let shop = connect(
        &app,
        "shopify",
        "bob.myshopify.com",
        json!({
        "baseUrl": mock.uri(), "credentials": {"accessToken": "shpat_test"},
        "startAt": "2008-01-01T00:00:00Z", "overlapSecs": 600}),
    )
    .await;
    // Credentials are never shown.
    assert!(!shop.to_string().contains("shpat_test"), "{shop}");
    assert_eq!(shop["credentialsSet"], json!(["accessToken"]));

    let order = app
        .wait_for("the Shopify order", 30, || async {
            order_by_external(&app, "450789469").await
        })
        .await;
    let id = order["order"]["id"].as_str().unwrap().to_owned();
    assert_eq!(order["order"]["channel"], "shopify");
    assert_eq!(order["order"]["orderNumber"], "#1001");
    assert_eq!(order["content"]["total"], "598.94");
    // Two of its three lines were refunded (`current_quantity` 0): only the third ships.
    let lines = order["content"]["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["identifier"], "49148385");
    assert_eq!(lines[0]["quantity"], 1);
    assert_eq!(order["content"]["shipTo"]["state"], "KY");
    let done = until_state(&app, &id, "WAYBILL_CREATED").await;
    let tracking = done["shipments"][0]["trackingNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(order_by_external(&app, "450789470").await.is_none());
    // The second page (an older copy of the same order) changed nothing; the cursor moved.
    assert_eq!(done["versions"].as_array().unwrap().len(), 1);
    let shops = call(
        &app,
        Method::GET,
        "/v1/order-shops",
        "/v1/order-shops",
        None,
    )
    .await;
    let cursor = shops.body["shops"][0]["cursor"].as_str().unwrap();
    assert!(cursor > "2026-01-01", "{}", shops.body);
    assert_eq!(shops.body["shops"][0]["lastError"], Value::Null);
    let gets = mock.received_requests().await.unwrap();
    assert!(gets.iter().filter(|r| r.url.path() == orders_path).count() >= 3);

    // Tracking is written back as a fulfillment of the open fulfillment order.
    let posted = app
        .wait_for("the fulfillment", 30, || async {
            let requests = mock.received_requests().await.unwrap();
            requests
                .into_iter()
                .find(|r| r.url.path() == "/admin/api/2025-07/fulfillments.json")
                .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        })
        .await;
    assert_eq!(
        posted["fulfillment"]["tracking_info"]["number"],
        tracking.as_str()
    );
    assert_eq!(
        posted["fulfillment"]["line_items_by_fulfillment_order"][0]["fulfillment_order_id"],
        "1046000778"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM ord_writebacks WHERE state = 'done'")
            .await,
        1
    );
}

fn sign(secret: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(carriers::signing::hmac_sha256(secret.as_bytes(), body))
}

async fn shopify_webhooks_are_verified_and_ingested(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.orders.allow_private_channels = true).await;
    let shop = connect(&app, "shopify", "johns-apparel.myshopify.com", json!({
        "baseUrl": "http://127.0.0.1:9", "credentials": {"accessToken": "t", "webhookSecret": "API_SECRET_KEY"}})).await;
    let url = format!("{}{}", app.address, shop["webhookPath"].as_str().unwrap());
    let post = |body: Vec<u8>, topic: &str, signature: String| {
        app.client
            .post(&url)
            .header("X-Shopify-Topic", topic)
            .header("X-Shopify-Hmac-Sha256", signature)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    // The worked example: `{}` signed with API_SECRET_KEY verifies (and is no order).
    let r = post(
        b"{}".to_vec(),
        "orders/create",
        "+ihUB5l+D7QrohDEi/6NcBcJRyKssyWqos13LmnsBbs=".into(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let body = fixture("shopify", "webhook_orders_create_sample_body.json").into_bytes();
    let good = sign("API_SECRET_KEY", &body);
    let r = post(body.clone(), "orders/create", sign("another secret", &body))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let r = post(tampered, "orders/create", good.clone()).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = post(body.clone(), "orders/create", good.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Again (Shopify retries): the same order.
    let r = post(body.clone(), "orders/updated", good.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = post(body.clone(), "products/update", good).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["outcome"], "ignored");
    // The id above 2^53 is kept exactly; the sample order was cancelled in the shop.
    let order = get_order(&app, "820982911946154508").await;
    assert_eq!(order.body["order"]["externalId"], "820982911946154508");
    assert_eq!(order.body["order"]["state"], "CANCELLED");
    assert_eq!(
        order.body["content"]["lines"][0]["identifier"],
        "SKU2006-001"
    );
    // An order the shop fulfilled itself is not taken.
    let mut fulfilled: Value = serde_json::from_slice(&body).unwrap();
    fulfilled["id"] = json!(820982911946154509u64);
    fulfilled["fulfillment_status"] = json!("fulfilled");
    let fulfilled = serde_json::to_vec(&fulfilled).unwrap();
    let r = post(
        fulfilled.clone(),
        "orders/updated",
        sign("API_SECRET_KEY", &fulfilled),
    )
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["outcome"], "ignored");
    assert_eq!(app.count("SELECT COUNT(*) FROM ord_orders").await, 1);
    let r = app
        .client
        .post(format!(
            "{}/v1/channel-webhooks/shopify/shop_nope",
            app.address
        ))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn amazon_orders_are_pulled_with_a_login_with_amazon_token(backend: Backend) {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/o2/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=Atzr%7Crefresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "Atza|access", "token_type": "bearer", "expires_in": 3600}),
        ))
        .mount(&mock)
        .await;
    let mut first: Value =
        serde_json::from_str(&fixture("amazon", "getOrders_sandbox_TEST_CASE_200.json")).unwrap();
    first["payload"]["NextToken"] = json!("page-2");
    // An order whose payment is not yet authorized is not ready to ship (nor priced yet).
    let mut pending = first["payload"]["Orders"][0].clone();
    pending["AmazonOrderId"] = json!("902-0000000-0000001");
    pending["OrderStatus"] = json!("Pending");
    pending.as_object_mut().unwrap().remove("OrderTotal");
    // One whose address the application may not read: it keeps what the list gave.
    let mut restricted = first["payload"]["Orders"][0].clone();
    restricted["AmazonOrderId"] = json!("902-0000000-0000002");
    restricted["ShippingAddress"] = json!({"City": "SEATTLE", "StateOrRegion": "WA",
        "PostalCode": "98121", "CountryCode": "US"});
    let orders = first["payload"]["Orders"].as_array_mut().unwrap();
    // One shipped already (by the seller elsewhere) is not shipped again.
    let mut shipped = orders[0].clone();
    shipped["AmazonOrderId"] = json!("902-0000000-0000003");
    shipped["OrderStatus"] = json!("Shipped");
    orders.push(pending);
    orders.push(restricted);
    orders.push(shipped);
    Mock::given(method("GET"))
        .and(path("/orders/v0/orders/902-0000000-0000002/address"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"errors": [{
            "code": "Unauthorized", "message": "Access to requested resource is denied.",
            "details": ""}]})))
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders/v0/orders"))
        .and(query_param("NextToken", "page-2"))
        .and(header("x-amz-access-token", "Atza|access"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"payload": {"Orders": []}})))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders/v0/orders"))
        .and(query_param("MarketplaceIds", "ATVPDKIKX0DER"))
        .and(header("x-amz-access-token", "Atza|access"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(first)
                .insert_header("x-amzn-RateLimit-Limit", "20"),
        )
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/orders/v0/orders/[^/]+/orderItems$"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("amazon", "getOrderItems_sandbox_TEST_CASE_200.json"),
            "application/json",
        ))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/orders/v0/orders/[^/]+/address$"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("amazon", "getOrderAddress_sandbox_TEST_CASE_200.json"),
            "application/json",
        ))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(
            r"^/orders/v0/orders/[^/]+/shipmentConfirmation$",
        ))
        .respond_with(ResponseTemplate::new(204))
        .mount(&mock)
        .await;

    let app = spawn_app_with(backend, |s| s.orders.allow_private_channels = true).await;
    warehouses_and_stock(&app, &["CARD-BOOK"], 5).await;
    map(&app, "amazon", "NABetaASINB00551Q3CS", "CARD-BOOK").await;
    connect(
        &app,
        "amazon",
        "A2SELLER",
        json!({
        "baseUrl": mock.uri(), "startAt": "1970-01-01T00:00:00Z",
        "credentials": {"clientId": "amzn1.application-oa2-client.x", "clientSecret": "s",
            "refreshToken": "Atzr|refresh", "tokenUrl": format!("{}/auth/o2/token", mock.uri()),
            "marketplaceIds": ["ATVPDKIKX0DER"]}}),
    )
    .await;
    for external in ["902-1845936-5435065", "902-8745147-1934268"] {
        let order = app
            .wait_for("the Amazon order", 30, || async {
                order_by_external(&app, external).await
            })
            .await;
        assert_eq!(order["content"]["total"], "11.01");
        assert_eq!(order["content"]["lines"][0]["unitPrice"], "10");
        assert_eq!(order["content"]["shipTo"]["city"], "SEATTLE");
        until_state(
            &app,
            order["order"]["id"].as_str().unwrap(),
            "WAYBILL_CREATED",
        )
        .await;
    }
    let confirmation = app
        .wait_for("the shipment confirmations", 30, || async {
            let requests = mock.received_requests().await.unwrap();
            let sent: Vec<Value> = requests
                .iter()
                .filter(|r| r.url.path().ends_with("/shipmentConfirmation"))
                .map(|r| serde_json::from_slice(&r.body).unwrap())
                .collect();
            (sent.len() == 2).then(|| sent[0].clone())
        })
        .await;
    assert_eq!(confirmation["marketplaceId"], "ATVPDKIKX0DER");
    assert_eq!(
        confirmation["packageDetail"]["orderItems"][0]["orderItemId"],
        "05015851154158"
    );
    assert!(
        confirmation["packageDetail"]["trackingNumber"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let requests = mock.received_requests().await.unwrap();
    let tokens = requests
        .iter()
        .filter(|r| r.url.path() == "/auth/o2/token")
        .count();
    assert_eq!(tokens, 1, "the access token is reused until it expires");
    assert!(requests.iter().any(|r| {
        r.url
            .query()
            .is_some_and(|q| q.contains("NextToken=page-2"))
    }));
    // The order without its address is kept, on hold for it.
    let restricted = order_by_external(&app, "902-0000000-0000002")
        .await
        .expect("the order whose address was refused");
    let held = until_state(&app, restricted["order"]["id"].as_str().unwrap(), "ON_HOLD").await;
    assert_eq!(held["order"]["holdReason"], "ADDRESS_PROBLEM", "{held}");
    assert_eq!(held["content"]["shipTo"]["postalCode"], "98121", "{held}");
    // The pending and shipped orders were left: neither taken nor asked about.
    for external in ["902-0000000-0000001", "902-0000000-0000003"] {
        assert!(
            order_by_external(&app, external).await.is_none(),
            "{external}"
        );
        assert!(
            !requests.iter().any(|r| r.url.path().contains(external)),
            "{external}"
        );
    }
}

crate::on_both_databases!(
    shopify_orders_are_pulled_paged_and_written_back,
    shopify_webhooks_are_verified_and_ingested,
    amazon_orders_are_pulled_with_a_login_with_amazon_token,
);
