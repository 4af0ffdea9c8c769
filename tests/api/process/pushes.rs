//! Webhook pushes from the real binary: deliveries across a SIGKILL and a SIGTERM, and no proxy
//! from the environment.

use super::*;
use std::collections::HashMap;

/// Moving parcels (the sandbox's journey in about a second) and a quick webhook worker.
const FAST_PUSHES: &[(&str, &str)] = &[
    ("SHIPGATE_CARRIERS__SANDBOX__CLOCK_SPEED", "200000"),
    ("SHIPGATE_TRACKING__POLLING__TICK_MS", "100"),
    ("SHIPGATE_TRACKING__POLLING__FIRST_MS", "50"),
    ("SHIPGATE_TRACKING__POLLING__MOVING_MS", "150"),
    ("SHIPGATE_TRACKING__POLLING__OUT_FOR_DELIVERY_MS", "100"),
    ("SHIPGATE_TRACKING__POLLING__RATE_PER_SECOND", "1000"),
    // A poll claimed by an instance that was killed before it finished comes due again after
    // this (60 s by default, longer than the tests wait for the next instance to deliver).
    ("SHIPGATE_TRACKING__POLLING__LEASE_MS", "3000"),
    ("SHIPGATE_WEBHOOKS__POLL_INTERVAL_MS", "50"),
    // Well above the receiver's 1.2 s hold, also on a loaded machine (the lease is 2 × this + 1 s).
    ("SHIPGATE_WEBHOOKS__TIMEOUT_MS", "3000"),
    ("SHIPGATE_WEBHOOKS__INITIAL_BACKOFF_MS", "50"),
    ("SHIPGATE_WEBHOOKS__MAX_BACKOFF_MS", "200"),
    ("SHIPGATE_SHUTDOWN__DRAIN_DELAY_MS", "200"),
    ("SHIPGATE_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
    // The receivers listen on ephemeral ports.
    ("SHIPGATE_WEBHOOKS__ALLOWED_PORTS", "[]"),
];

/// The receiver holds its first request for `hold`, then answers every request at once.
async fn holding_receiver(hold: Duration) -> wiremock::MockServer {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(hold))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    receiver
}

async fn pushed(receiver: &wiremock::MockServer) -> Vec<Value> {
    receiver
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

async fn wait_pushes(receiver: &wiremock::MockServer, n: usize) {
    let started = Instant::now();
    while pushed(receiver).await.len() < n {
        assert!(started.elapsed() < Duration::from_secs(20), "no push came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// State and attempts of the delivery of a pushed event to `endpoint`, read from the database.
async fn delivery_state(url: &str, endpoint: &str, push: &Value) -> (String, i64) {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let row = sqlx::query(
        "SELECT d.state, d.attempts FROM webhook_deliveries d JOIN waybills w \
         ON w.id = d.waybill_id JOIN webhook_endpoints e ON e.id = d.endpoint_id \
         WHERE w.waybill_number = $1 AND d.sequence = $2 AND e.url = $3",
    )
    .bind(push["data"]["waybillNumber"].as_str().unwrap().to_owned())
    .bind(push["sequence"].as_i64().unwrap())
    .bind(endpoint.to_owned())
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    (row.get(0), row.get(1))
}

/// Subscribes `body`'s endpoint for the key's tenant.
async fn subscribe(client: &reqwest::Client, server: &Server, key: &str, body: Value) {
    let r = client
        .post(format!("{}/v1/webhook-endpoints", server.address))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

/// Creates a waybill on the sandbox line-haul channel (its parcel moves and is pushed).
async fn ship(client: &reqwest::Client, server: &Server, key: &str, reference: &str) {
    let mut req = waybill_request(reference);
    req["channel"] = "SANDBOX_LINEHAUL_US".into();
    let r = client
        .post(format!("{}/v1/waybills", server.address))
        .bearer_auth(key)
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

/// A JSON answer of `GET path` with the key.
async fn get_json(client: &reqwest::Client, server: &Server, key: &str, path: &str) -> Value {
    client
        .get(format!("{}{path}", server.address))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_deliveries_survive_sigkill_and_finish_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let key = create_key(&url, dir.path(), "acme");
    let receiver = holding_receiver(Duration::from_millis(1200)).await;
    let mut first = Server::start(&url, dir.path(), "first.log", FAST_PUSHES);
    let client = reqwest::Client::new();
    subscribe(
        &client,
        &first,
        &key,
        serde_json::json!({ "url": receiver.uri() }),
    )
    .await;
    ship(&client, &first, &key, "HOOK-KILL-1").await;

    // The first push is under way (the receiver holds it): the instance dies.
    wait_pushes(&receiver, 1).await;
    first.kill();
    let in_flight = pushed(&receiver).await[0].clone();
    assert_eq!(
        delivery_state(&url, &receiver.uri(), &in_flight).await.0,
        "pending"
    );

    // The next instance sends it again once its lease is over, then everything else.
    let mut second = Server::start(&url, dir.path(), "second.log", FAST_PUSHES);
    let started = Instant::now();
    let events = loop {
        let list = get_json(&client, &second, &key, "/v1/webhook-deliveries?limit=200").await;
        let list = list["deliveries"].as_array().unwrap().clone();
        let tracking = get_json(&client, &second, &key, "/v1/tracking/HOOK-KILL-1").await;
        if tracking["trackingStatus"] == "DELIVERED"
            && list.iter().all(|d| d["state"] == "delivered")
        {
            break list;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not all delivered: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let all = pushed(&receiver).await;
    let ids: HashMap<String, usize> = all.iter().fold(HashMap::new(), |mut m, p| {
        *m.entry(p["eventId"].as_str().unwrap().to_owned())
            .or_default() += 1;
        m
    });
    assert_eq!(ids.len(), events.len(), "every event arrived");
    assert_eq!(ids[in_flight["eventId"].as_str().unwrap()], 2, "sent again");
    assert_eq!(
        delivery_state(&url, &receiver.uri(), &in_flight).await,
        ("delivered".into(), 2)
    );

    // SIGTERM while a push is under way: it finishes, is recorded, and the process exits.
    receiver.reset().await;
    let receiver_hold = holding_receiver(Duration::from_millis(1200)).await;
    subscribe(
        &client,
        &second,
        &key,
        serde_json::json!({ "url": receiver_hold.uri(), "eventTypes": ["tracking.updated"] }),
    )
    .await;
    ship(&client, &second, &key, "HOOK-TERM-1").await;
    wait_pushes(&receiver_hold, 1).await;
    sigterm(&second);
    let status = wait_exit(&mut second, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    let held = pushed(&receiver_hold).await[0].clone();
    let log = std::fs::read_to_string(&second.log).unwrap();
    assert_eq!(
        delivery_state(&url, &receiver_hold.uri(), &held).await,
        ("delivered".into(), 1),
        "{log}"
    );
    assert!(log.contains("webhook worker stopped"), "{log}");
}

/// Hardening: a proxy named in the environment is not used for pushes (it would resolve the
/// target itself, past the address checks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_ignore_proxies_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let key = create_key(&url, dir.path(), "acme");
    let receiver = holding_receiver(Duration::ZERO).await;
    let proxy = holding_receiver(Duration::ZERO).await;
    let proxy_uri = proxy.uri();
    let proxied: Vec<(&str, &str)> = FAST_PUSHES
        .iter()
        .copied()
        .chain(
            ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"]
                .map(|k| (k, proxy_uri.as_str())),
        )
        .collect();
    let mut server = Server::start(&url, dir.path(), "proxy.log", &proxied);
    let client = reqwest::Client::new();
    subscribe(
        &client,
        &server,
        &key,
        serde_json::json!({ "url": receiver.uri() }),
    )
    .await;
    ship(&client, &server, &key, "HOOK-PROXY-1").await;
    wait_pushes(&receiver, 1).await;
    assert!(
        proxy
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "a push went through the proxy"
    );
    sigterm(&server);
    assert!(wait_exit(&mut server, Duration::from_secs(10)).success());
}
