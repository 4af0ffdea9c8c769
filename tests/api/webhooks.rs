//! Pushes to subscribers through HTTP: endpoints per tenant, the sandbox's moving parcels pushed
//! from the outbox with Standard Webhooks signatures, in order per waybill, through receivers
//! that fail, answer slowly, or are gone; dead letters and replays; two instances sharing the
//! outbox.

use crate::helpers::{Backend, TestApp, spawn_app_with, spawn_live_app_with, waybill_request};
use hmac::{KeyInit, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use shipgate::settings::Settings;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Parcels move through the whole journey in about a second (the poller asks the sandbox), and
/// the worker looks for deliveries often and retries quickly.
fn fast(s: &mut Settings) {
    crate::helpers::fast_sandbox(s);
    let w = &mut s.webhooks;
    w.poll_interval_ms = 20;
    w.initial_backoff_ms = 30;
    w.max_backoff_ms = 150;
    w.timeout_ms = 1000;
    // The receivers of these tests listen on loopback.
    w.allow_private_targets = true;
}

impl TestApp {
    async fn add_endpoint(
        &self,
        key: &str,
        url: &str,
        types: Option<&[&str]>,
    ) -> crate::helpers::Reply {
        let mut body = json!({ "url": url, "description": "ERP" });
        if let Some(t) = types {
            body["eventTypes"] = json!(t);
        }
        self.call(
            Method::POST,
            "/v1/webhook-endpoints",
            "/v1/webhook-endpoints",
            Some(key),
            Some(&body),
        )
        .await
    }

    async fn endpoints(&self, key: &str) -> crate::helpers::Reply {
        self.call(
            Method::GET,
            "/v1/webhook-endpoints",
            "/v1/webhook-endpoints",
            Some(key),
            None,
        )
        .await
    }

    async fn delete_endpoint(&self, key: &str, id: &str) -> crate::helpers::Reply {
        self.call(
            Method::DELETE,
            &format!("/v1/webhook-endpoints/{id}"),
            "/v1/webhook-endpoints/{id}",
            Some(key),
            None,
        )
        .await
    }

    async fn replay_delivery(&self, key: &str, id: &str) -> crate::helpers::Reply {
        self.call(
            Method::POST,
            &format!("/v1/webhook-deliveries/{id}/replay"),
            "/v1/webhook-deliveries/{id}/replay",
            Some(key),
            None,
        )
        .await
    }

    async fn deliveries(&self, query: &str) -> Vec<Value> {
        self.deliveries_as(&self.key, query).await
    }

    async fn deliveries_as(&self, key: &str, query: &str) -> Vec<Value> {
        let r = self
            .call(
                Method::GET,
                &format!("/v1/webhook-deliveries?limit=200{query}"),
                "/v1/webhook-deliveries",
                Some(key),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["deliveries"].as_array().unwrap().clone()
    }

    async fn delivery(&self, id: &str) -> crate::helpers::Reply {
        self.call(
            Method::GET,
            &format!("/v1/webhook-deliveries/{id}"),
            "/v1/webhook-deliveries/{id}",
            Some(&self.key),
            None,
        )
        .await
    }

    /// Creates a waybill on the sandbox line-haul channel and waits for its delivery.
    async fn journey(&self, reference: &str) -> Value {
        self.journey_as(&self.key, reference).await
    }

    async fn journey_as(&self, key: &str, reference: &str) -> Value {
        let mut req = waybill_request(reference);
        req["channel"] = json!("SANDBOX_LINEHAUL_US");
        let r = self.create_as(key, &req).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let number = r.waybill_number().to_owned();
        let what = format!("{number} to be delivered");
        self.wait_for(&what, 30, || async {
            let t = self
                .call(
                    Method::GET,
                    &format!("/v1/tracking/{number}"),
                    "/v1/tracking/{number}",
                    Some(key),
                    None,
                )
                .await;
            (t.body["trackingStatus"] == "DELIVERED").then_some(t.body)
        })
        .await
    }

    /// Waits until no delivery is pending (all delivered, dead or cancelled).
    async fn outbox_settled(&self) {
        self.wait_for("the outbox to settle", 30, || async {
            (self.deliveries("&state=pending").await.is_empty()).then_some(())
        })
        .await;
    }
}

/// A push as the receiver saw it, its signature checked with the endpoint's secret.
#[derive(Debug, Clone)]
struct Push {
    id: String,
    body: Value,
}

fn verified(req: &wiremock::Request, secret: &str) -> Push {
    use base64::Engine;
    let header = |n: &str| {
        req.headers
            .get(n)
            .unwrap_or_else(|| panic!("no {n} header"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let (id, ts, sig) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&req.body);
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    assert_eq!(sig, expected, "signature of {id}");
    let age = now_secs() - ts.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "timestamp {ts} is {age} s old");
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["eventId"], id.as_str(), "webhook-id is the event id");
    crate::helpers::contract::check_schema("WebhookPayload", &body);
    Push { id, body }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn received(server: &MockServer, secret: &str) -> Vec<Push> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| verified(r, secret))
        .collect()
}

/// Sequences in arrival order never go down (retries repeat one; the next waits for it).
fn assert_in_order(pushes: &[Push]) {
    let mut last: HashMap<String, i64> = HashMap::new();
    for p in pushes {
        let waybill = p.body["data"]["waybillNumber"].as_str().unwrap().to_owned();
        let seq = p.body["sequence"].as_i64().unwrap();
        let before = last.insert(waybill.clone(), seq).unwrap_or(i64::MIN);
        assert!(
            seq >= before,
            "{waybill}: sequence {seq} arrived after {before}"
        );
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn metrics(app: &TestApp) -> String {
    app.client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn endpoints_are_managed_per_tenant_and_the_secret_is_shown_once() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let r = app
        .add_endpoint(&app.key, "https://erp.example.com/hooks", None)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(r.body["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        r.body["eventTypes"],
        json!(["last_mile.assigned", "tracking.updated"])
    );

    let list = app.endpoints(&app.key).await;
    assert_eq!(list.body["endpoints"][0]["id"], id.as_str());
    assert!(
        !list.body.to_string().contains("whsec_"),
        "the secret is shown once"
    );

    // Bad input: named in the envelope.
    for (body, field) in [
        (json!({"url": "ftp://erp.example.com/x"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (json!({"url": "https://u:p@erp.example.com/"}), "url"),
        (
            json!({"url": "https://erp.example.com/", "eventTypes": ["parcel.lost"]}),
            "eventTypes[0]",
        ),
        (
            json!({"url": "https://erp.example.com/", "eventTypes": []}),
            "eventTypes",
        ),
        // The gateway's own network is out of reach by default.
        (json!({"url": "http://127.0.0.1:8080/hooks"}), "url"),
        (json!({"url": "http://169.254.169.254/latest"}), "url"),
        (json!({"url": "http://localhost/hooks"}), "url"),
        (json!({"url": "http://[fd00::1]/hooks"}), "url"),
    ] {
        let r = app
            .call(
                Method::POST,
                "/v1/webhook-endpoints",
                "/v1/webhook-endpoints",
                Some(&app.key),
                Some(&body),
            )
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.error_code(), "VALIDATION_FAILED");
        assert_eq!(r.body["details"][0]["field"], field, "{}", r.body);
    }

    // Another tenant neither sees nor deletes it.
    let other = app.new_key("globex").await;
    let list = app.endpoints(&other).await;
    assert_eq!(list.body["endpoints"], json!([]));
    let r = app.delete_endpoint(&other, &id).await;
    assert_eq!(r.status, 404);

    let r = app.delete_endpoint(&app.key, &id).await;
    assert_eq!((r.status.as_u16(), &r.body["deleted"]), (200, &json!(true)));
    let r = app.delete_endpoint(&app.key, &id).await;
    assert_eq!(r.status, 404);
    let r = app
        .call(
            Method::GET,
            "/v1/webhook-deliveries?state=lost",
            "/v1/webhook-deliveries",
            Some(&app.key),
            None,
        )
        .await;
    assert_eq!(r.error_code(), "VALIDATION_FAILED");
}

async fn events_are_pushed_signed_in_order_through_failures(backend: Backend) {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let app = spawn_app_with(backend, fast).await;
    let r = app
        .add_endpoint(&app.key, &format!("{}/hooks", receiver.uri()), None)
        .await;
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    // Only last-mile hand-overs for this one.
    let lm_only = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&lm_only)
        .await;
    let r = app
        .add_endpoint(&app.key, &lm_only.uri(), Some(&["last_mile.assigned"]))
        .await;
    let lm_secret = r.body["secret"].as_str().unwrap().to_owned();

    let tracking = app.journey("HOOK-1").await;
    app.outbox_settled().await;

    let pushes = received(&receiver, &secret).await;
    // The first delivery failed three times, then arrived: the same id every time.
    assert!(pushes.len() > 4, "{} pushes", pushes.len());
    assert!(pushes[..4].iter().all(|p| p.id == pushes[0].id));
    assert_in_order(&pushes);

    let unique: BTreeMap<i64, Push> = pushes
        .iter()
        .map(|p| (p.body["sequence"].as_i64().unwrap(), p.clone()))
        .collect();
    let ids: HashSet<&str> = unique.values().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), unique.len(), "one event id per sequence");

    // Every event tracking shows was pushed, once each, and nothing else (no USPS pre-advice).
    let mut shown: Vec<(String, String)> = tracking["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["statusCode"] != "CREATED")
        .map(|e| {
            (
                e["statusCode"].as_str().unwrap().to_owned(),
                e["occurredAtUtc"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut pushed: Vec<(String, String)> = unique
        .values()
        .filter(|p| p.body["type"] == "tracking.updated")
        .map(|p| {
            let e = &p.body["data"]["event"];
            (
                e["statusCode"].as_str().unwrap().to_owned(),
                e["occurredAtUtc"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    shown.sort();
    pushed.sort();
    assert_eq!(pushed, shown);
    assert!(
        !pushed
            .iter()
            .any(|(c, _)| ["GX", "MA", "80", "81"].contains(&c.as_str()))
    );

    // The hand-over is pushed once, before any event of the last-mile carrier.
    let handovers: Vec<&Push> = unique
        .values()
        .filter(|p| p.body["type"] == "last_mile.assigned")
        .collect();
    assert_eq!(handovers.len(), 1);
    let h = &handovers[0].body;
    assert_eq!(h["data"]["lastMileCarrier"], "USPS");
    assert_eq!(
        h["data"]["lastMileTrackingNumber"],
        tracking["lastMileTrackingNumber"]
    );
    let first_usps = unique
        .iter()
        .find(|(_, p)| p.body["data"]["event"]["carrier"] == "USPS")
        .map(|(s, _)| *s)
        .expect("USPS events pushed");
    assert!(h["sequence"].as_i64().unwrap() < first_usps);

    // The other endpoint got the hand-over alone.
    let lm = received(&lm_only, &lm_secret).await;
    assert_eq!(lm.len(), 1);
    assert_eq!(lm[0].id, handovers[0].id);

    // The delivery log tells the story.
    let log = app.deliveries("").await;
    assert!(log.iter().all(|d| d["state"] == "delivered"), "{log:?}");
    let first = log
        .iter()
        .find(|d| d["eventId"] == pushes[0].id.as_str() && d["attempts"] == 4)
        .expect("the first delivery took four attempts");
    let detail = app.delivery(first["id"].as_str().unwrap()).await;
    let statuses: Vec<i64> = detail.body["attemptLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["httpStatus"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, vec![500, 500, 500, 204]);
    assert_eq!(detail.body["lastHttpStatus"], 204);

    let text = metrics(&app).await;
    assert_eq!(metric(&text, "shipgate_webhook_outbox_depth"), 0.0);
    assert!(
        metric(
            &text,
            "shipgate_webhook_deliveries_total{outcome=\"delivered\"}"
        ) >= 1.0
    );

    // Past the retention period, delivered deliveries leave the log with their attempts.
    let attempts = app.count("SELECT COUNT(*) FROM webhook_attempts").await;
    assert!(attempts > log.len() as i64);
    let cutoff = shipgate::store::now_millis() + 1000;
    assert_eq!(app.db.prune_deliveries(cutoff, 10).await.unwrap(), 10);
    let pruned = app.db.prune_deliveries(cutoff, 10_000).await.unwrap();
    assert_eq!(pruned as usize + 10, log.len());
    assert!(app.deliveries("").await.is_empty());
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_attempts").await, 0);
}

#[tokio::test]
async fn events_are_pushed_signed_in_order_through_failures_on_sqlite() {
    events_are_pushed_signed_in_order_through_failures(Backend::Sqlite).await;
}

#[tokio::test]
async fn events_are_pushed_signed_in_order_through_failures_on_postgres() {
    crate::needs!(Postgres);
    events_are_pushed_signed_in_order_through_failures(Backend::Postgres).await;
}

#[tokio::test]
async fn slow_and_failing_receivers_are_retried_dead_lettered_and_replayed() {
    let receiver = MockServer::start().await;
    // Slower than the worker waits.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(1500)))
        .mount(&receiver)
        .await;
    let app = spawn_app_with(Backend::Sqlite, |s| {
        fast(s);
        s.webhooks.timeout_ms = 300;
        s.webhooks.retry_window_secs = 2;
    })
    .await;
    let r = app.add_endpoint(&app.key, &receiver.uri(), None).await;
    let (endpoint, secret) = (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["secret"].as_str().unwrap().to_owned(),
    );
    app.journey("HOOK-SLOW").await;

    // Timed out attempts are logged as such and retried.
    let first = app
        .wait_for("timed-out attempts", 10, || async {
            let log = app.deliveries("&state=pending").await;
            log.into_iter().find(|d| d["attempts"].as_i64() >= Some(2))
        })
        .await;
    let detail = app.delivery(first["id"].as_str().unwrap()).await;
    let error = detail.body["attemptLog"][0]["error"].as_str().unwrap();
    assert!(error.contains("no answer within 300 ms"), "{error}");

    // Now it answers 503: after the retry window everything is dead, nothing lost.
    receiver.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&receiver)
        .await;
    app.outbox_settled().await;
    let dead = app.deliveries("&state=dead").await;
    assert!(dead.len() > 5, "{} dead", dead.len());
    assert_eq!(dead.len(), app.deliveries("").await.len());
    let text = metrics(&app).await;
    assert_eq!(
        metric(&text, "shipgate_webhook_dead_letters"),
        dead.len() as f64
    );

    // The receiver is fixed: everything dead for the endpoint is sent again, in order.
    receiver.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let r = app
        .call(
            Method::POST,
            &format!("/v1/webhook-endpoints/{endpoint}/replay"),
            "/v1/webhook-endpoints/{id}/replay",
            Some(&app.key),
            None,
        )
        .await;
    assert_eq!(r.body["replayed"], dead.len());
    app.outbox_settled().await;
    let pushes = received(&receiver, &secret).await;
    assert_in_order(&pushes);
    let ids: HashSet<&str> = pushes.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), dead.len());
    assert_eq!(app.deliveries("&state=delivered").await.len(), dead.len());

    // One delivery sent again on request: the same event id arrives once more.
    let one = dead[0]["id"].as_str().unwrap();
    let r = app.replay_delivery(&app.key, one).await;
    assert_eq!(r.body["state"], "pending");
    app.outbox_settled().await;
    let again = received(&receiver, &secret).await;
    assert_eq!(again.len(), pushes.len() + 1);
    assert_eq!(
        again.last().unwrap().id,
        dead[0]["eventId"].as_str().unwrap()
    );

    // Another tenant cannot replay it.
    let other = app.new_key("globex").await;
    let r = app.replay_delivery(&other, one).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn pushes_never_reach_private_addresses_unless_allowed() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let app = spawn_app_with(Backend::Sqlite, |s| {
        fast(s);
        s.webhooks.allow_private_targets = false;
    })
    .await;
    // An endpoint on loopback (written while private targets were allowed, say).
    let endpoint = shipgate::store::webhook_endpoints::Endpoint {
        id: "whe_loopback".into(),
        tenant_id: app.tenant_id.clone(),
        url: receiver.uri(),
        event_types: vec!["tracking.updated".into()],
        description: None,
        created_at: shipgate::store::now_rfc3339(),
    };
    app.db
        .insert_webhook_endpoint(&endpoint, "whsec_dGVzdA==")
        .await
        .unwrap();
    app.journey("HOOK-PRIVATE").await;
    let refused = app
        .wait_for("refused attempts", 10, || async {
            let log = app.deliveries("&state=pending").await;
            log.into_iter().find(|d| d["attempts"].as_i64() >= Some(2))
        })
        .await;
    let error = refused["lastError"].as_str().unwrap();
    assert!(error.starts_with("target not allowed"), "{error}");
    assert!(
        receiver.received_requests().await.unwrap().is_empty(),
        "nothing reached the private address"
    );
}

#[tokio::test]
async fn a_slow_receiver_does_not_hold_up_the_others() {
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(1500)))
        .mount(&slow)
        .await;
    let fast_receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&fast_receiver)
        .await;
    let app = spawn_live_app_with(Backend::Sqlite, |s| {
        fast(s);
        s.webhooks.timeout_ms = 3000;
    })
    .await;
    let other = app.new_key("globex").await;
    app.add_endpoint(&app.key, &slow.uri(), None).await;
    app.add_endpoint(&other, &fast_receiver.uri(), None).await;
    let (_, _) = tokio::join!(
        app.journey("HOOK-SLOW-TENANT"),
        app.journey_as(&other, "HOOK-FAST-TENANT")
    );
    // The other tenant's pushes all arrive while the slow receiver has taken a few at most.
    let started = Instant::now();
    app.wait_for("the fast receiver's pushes", 10, || async {
        let pending = app.deliveries_as(&other, "&state=pending").await;
        pending.is_empty().then_some(())
    })
    .await;
    let fast_count = app.deliveries_as(&other, "&state=delivered").await.len();
    assert!(fast_count > 10, "{fast_count} delivered");
    let slow_done = app.deliveries("&state=delivered").await.len();
    let slow_total = app.deliveries("").await.len();
    assert!(
        slow_done < slow_total / 2,
        "{slow_done} of {slow_total} slow pushes done after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_receiver_that_is_gone_gets_everything_when_it_is_back() {
    // A port with nothing listening on it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let app = spawn_app_with(Backend::Sqlite, fast).await;
    let r = app
        .add_endpoint(&app.key, &format!("http://127.0.0.1:{port}/hooks"), None)
        .await;
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    app.journey("HOOK-GONE").await;
    let failing = app
        .wait_for("failed attempts", 10, || async {
            let log = app.deliveries("&state=pending").await;
            log.into_iter().find(|d| d["attempts"].as_i64() >= Some(3))
        })
        .await;
    assert_eq!(failing["lastError"], "could not connect");
    let total = app.deliveries("").await.len();

    // Back on the same address.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let receiver = MockServer::builder().listener(listener).start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    app.outbox_settled().await;
    let pushes = received(&receiver, &secret).await;
    assert_in_order(&pushes);
    let ids: HashSet<&str> = pushes.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), total);
    assert_eq!(app.deliveries("&state=delivered").await.len(), total);
}

#[tokio::test]
async fn instances_side_by_side_deliver_each_event_once() {
    crate::needs!(Postgres, Redis);
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(20)))
        .mount(&receiver)
        .await;
    // Side by side, instances share the tracking cache through Redis.
    let first = spawn_app_with(Backend::Postgres, |s| {
        fast(s);
        s.redis_url = Some(crate::helpers::redis_url());
    })
    .await;
    let url = first.database_url.clone();
    let second = spawn_app_with(Backend::Postgres, |s| {
        fast(s);
        s.database_url = url;
        s.redis_url = Some(crate::helpers::redis_url());
    })
    .await;
    let r = first.add_endpoint(&first.key, &receiver.uri(), None).await;
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let journeys: Vec<_> = (0..4)
        .map(|i| {
            let app = if i % 2 == 0 { &first } else { &second };
            async move {
                // Each instance's key belongs to the same tenant.
                app.journey(&format!("HOOK-TWO-{i}")).await
            }
        })
        .collect();
    futures_util::future::join_all(journeys).await;
    first.outbox_settled().await;
    let pushes = received(&receiver, &secret).await;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for p in &pushes {
        *seen.entry(p.id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(seen.len(), first.deliveries("&state=delivered").await.len());
    assert!(seen.len() > 40, "{} events", seen.len());
    assert_in_order(&pushes);
}
