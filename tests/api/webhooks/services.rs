//! The services' events reach tenants' webhook endpoints: the same signatures, retries and
//! order (per aggregate) as the gateway's own pushes, once per event and endpoint.

use super::*;
use crate::inventory::{allocate, receive, set_up};
use sqlx::Row;

async fn inventory_events_are_pushed_to_subscribed_endpoints(backend: Backend) {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let tracking_only = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&tracking_only)
        .await;
    let app = spawn_app_with(backend, fast).await;
    let r = app
        .add_endpoint(
            &app.key,
            &receiver.uri(),
            Some(&[
                "inventory.stock_changed",
                "inventory.low_stock",
                "inventory.allocation_created",
            ]),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    app.add_endpoint(&app.key, &tracking_only.uri(), Some(&["tracking.updated"]))
        .await;

    set_up(&app, "PB-10K").await;
    receive(&app, "PB-10K", "SZ", 3).await;
    receive(&app, "PB-10K", "US-EAST", 1).await;
    assert_eq!(
        allocate(&app, "o-1", json!([{"sku": "PB-10K", "quantity": 2}]), "CA")
            .await
            .status,
        201
    );
    let released = app
        .call(
            Method::POST,
            "/v1/inventory/allocations/o-1/release",
            "/v1/inventory/allocations/{id}/release",
            Some(&app.key),
            None,
        )
        .await;
    assert_eq!(released.status, 200);
    app.wait_for("the events to become deliveries", 30, || async {
        (app.deliveries("").await.len() >= 6).then_some(())
    })
    .await;
    app.outbox_settled().await;

    // The subscribed types, each once (the first pushes failed and were retried under the same
    // id), in outbox order per aggregate; allocation_released was not subscribed.
    let outbox =
        sqlx::query("SELECT event_id, event_type, aggregate FROM numbered_events ORDER BY seq")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    let expected: Vec<String> = outbox
        .iter()
        .filter(|r| r.get::<String, _>(1) != "inventory.allocation_released")
        .map(|r| r.get(0))
        .collect();
    let pushes = received(&receiver, &secret).await;
    let mut delivered: Vec<String> = Vec::new();
    for p in &pushes {
        if !delivered.contains(&p.id) {
            delivered.push(p.id.clone());
        }
    }
    assert_eq!(
        pushes.len(),
        expected.len() + 2,
        "two failed attempts, then each event once"
    );
    let aggregate_of: HashMap<String, String> =
        outbox.iter().map(|r| (r.get(0), r.get(2))).collect();
    for aggregate in ["sku:PB-10K", "allocation:o-1"] {
        let of = |ids: &[String]| -> Vec<String> {
            ids.iter()
                .filter(|id| aggregate_of[*id] == aggregate)
                .cloned()
                .collect()
        };
        assert_eq!(
            of(&delivered),
            of(&expected),
            "{aggregate}: pushed in outbox order"
        );
    }
    let mut sorted_expected = expected.clone();
    sorted_expected.sort();
    delivered.sort();
    assert_eq!(delivered, sorted_expected);
    let low = pushes
        .iter()
        .find(|p| p.body["type"] == "inventory.low_stock")
        .expect("low stock pushed");
    assert_eq!(low.body["data"]["stock"]["available"], 1);
    assert!(
        tracking_only.received_requests().await.unwrap().is_empty(),
        "an endpoint gets only the types it subscribed to"
    );
    // The log shows them, without a waybill and with what they are about.
    let log = app.deliveries("").await;
    assert!(log.iter().all(|d| d["waybillNumber"].is_null()));
    assert!(log.iter().any(|d| d["aggregate"] == "allocation:o-1"));
    assert!(log.iter().all(|d| d["state"] == "delivered"));

    // Handing the events over again (a consumer replay) makes no second delivery.
    sqlx::query("UPDATE event_consumers SET position = 0")
        .execute(&app.db.pool)
        .await
        .unwrap();
    app.run_background().await;
    assert_eq!(
        app.deliveries("").await.len(),
        log.len(),
        "one delivery per event and endpoint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_events_are_pushed_to_subscribed_endpoints_on_sqlite() {
    inventory_events_are_pushed_to_subscribed_endpoints(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_events_are_pushed_to_subscribed_endpoints_on_postgres() {
    crate::needs!(Postgres);
    inventory_events_are_pushed_to_subscribed_endpoints(Backend::Postgres).await;
}

/// The gateway's own changes reach the services' bus the same way: a waybill created, its
/// tracking events (as tracking shows them), its last mile, a waybill cancelled — in order per
/// waybill.
async fn the_gateway_publishes_its_waybill_and_tracking_events(backend: Backend) {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let app = spawn_app_with(backend, fast).await;
    app.add_endpoint(&app.key, &receiver.uri(), None).await;
    let tracking = app.journey("BUS-1").await;
    let r = app.create(&waybill_request("BUS-2")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let cancelled = app
        .call(
            Method::POST,
            &format!("/v1/waybills/{}/cancel", r.waybill_number()),
            "/v1/waybills/{number}/cancel",
            Some(&app.key),
            None,
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    // Insert order: on PostgreSQL the newest events may not be numbered (`seq`) yet.
    let rows = sqlx::query("SELECT event_type, aggregate, payload FROM events ORDER BY id")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    let of = |reference: &str| -> Vec<(String, Value)> {
        rows.iter()
            .map(|r| {
                let body: Value = serde_json::from_str(&r.get::<String, _>(2)).unwrap();
                (r.get::<String, _>(0), body)
            })
            .filter(|(_, b)| b["waybill"]["referenceNumber"] == reference)
            .collect()
    };
    let first = of("BUS-1");
    assert_eq!(first[0].0, "waybill.created");
    assert_eq!(
        first[0].1["waybill"]["waybillNumber"],
        tracking["waybillNumber"]
    );
    assert!(first[0].1["eventId"].as_str().unwrap().starts_with("evt_"));
    let codes: Vec<&str> = first
        .iter()
        .filter(|(t, _)| t == "tracking.updated")
        .map(|(_, b)| b["event"]["statusCode"].as_str().unwrap())
        .collect();
    let shown: Vec<&str> = tracking["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["statusCode"].as_str().unwrap())
        .collect();
    for code in &codes {
        assert!(
            shown.contains(code),
            "{code} published but not shown: {shown:?}"
        );
    }
    assert!(codes.len() >= 4, "{codes:?}");
    assert!(first.iter().any(|(t, _)| t == "last_mile.assigned"));
    let aggregates: HashSet<&str> = rows
        .iter()
        .filter(|r| {
            let body: Value = serde_json::from_str(&r.get::<String, _>(2)).unwrap();
            body["waybill"]["referenceNumber"] == "BUS-1"
        })
        .map(|r| r.try_get::<&str, _>(1).unwrap())
        .collect();
    assert_eq!(aggregates.len(), 1, "one aggregate per waybill");
    let second: Vec<String> = of("BUS-2").into_iter().map(|(t, _)| t).collect();
    assert_eq!(second.first().map(String::as_str), Some("waybill.created"));
    assert_eq!(second.last().map(String::as_str), Some("waybill.cancelled"));
    // Each tracking event is one delivery: the trigger made it, the bus did not add another.
    app.run_background().await;
    let published = rows
        .iter()
        .filter(|r| r.get::<String, _>(0) == "tracking.updated")
        .count();
    let pushed = app
        .deliveries("")
        .await
        .iter()
        .filter(|d| d["eventType"] == "tracking.updated")
        .count();
    assert_eq!(pushed, published);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_publishes_its_waybill_and_tracking_events_on_sqlite() {
    the_gateway_publishes_its_waybill_and_tracking_events(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_publishes_its_waybill_and_tracking_events_on_postgres() {
    crate::needs!(Postgres);
    the_gateway_publishes_its_waybill_and_tracking_events(Backend::Postgres).await;
}
