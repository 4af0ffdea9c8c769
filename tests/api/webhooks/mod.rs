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

mod delivery;
mod fairness;
mod services;

/// Parcels move through the whole journey in about a second (the poller asks the sandbox), and
/// the worker looks for deliveries often and retries quickly.
pub fn fast(s: &mut Settings) {
    crate::helpers::fast_sandbox(s);
    let w = &mut s.webhooks;
    w.poll_interval_ms = 20;
    w.initial_backoff_ms = 30;
    w.max_backoff_ms = 150;
    w.timeout_ms = 1000;
    // The receivers of these tests listen on loopback, on ephemeral ports.
    w.allow_private_targets = true;
    w.allowed_ports = Vec::new();
}

impl TestApp {
    pub async fn add_endpoint(
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
        self.wait_for(&what, 60, || async {
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
    let schema = if body["type"]
        .as_str()
        .unwrap_or_default()
        .starts_with("inventory.")
    {
        "InventoryWebhookPayload"
    } else {
        "WebhookPayload"
    };
    crate::helpers::contract::check_schema(schema, &body);
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
    // The database's figures are sampled by the background work, not by a scrape.
    app.run_background().await;
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
    // Without a list, every type: the gateway's and the internal services'.
    let mut every: Vec<&str> = shipgate::webhooks::EVENT_TYPES.to_vec();
    every.sort_unstable();
    assert_eq!(r.body["eventTypes"], json!(every));
    assert!(every.contains(&"inventory.stock_changed"));

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
