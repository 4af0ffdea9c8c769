//! Tracking through HTTP with a real Redis: queries by every kind of number, batch queries,
//! the sandbox's moving parcels (polling path), carrier pushes (signatures, replays, order),
//! the last mile and its normalization, USPS pre-advice suppression, Redis outages, polling
//! limits and polling by several instances.

use crate::helpers::{
    Backend, TestApp, redis_url, spawn_app_with, spawn_live_app_with, wait_until, wait_with,
    waybill_request,
};
use carriers::CarrierId;
use reqwest::Method;
use serde_json::{Value, json};
use shipgate::settings::{CallbackSettings, Settings};
use shipgate::startup::Step;
use std::time::{Duration, Instant};

mod cache;
mod cluster;
mod journeys;
mod pushes;

const SECRET: &str = "sandbox-push-secret";

fn pushes(s: &mut Settings) {
    s.tracking.polling.enabled = false;
    for carrier in [CarrierId::Sandbox, CarrierId::Fedex, CarrierId::SfExpress] {
        s.tracking.callbacks.insert(
            carrier,
            CallbackSettings {
                secret: SECRET.into(),
            },
        );
    }
}

impl TestApp {
    async fn tracking(&self, key: &str, number: &str) -> crate::helpers::Reply {
        self.call(
            Method::GET,
            &format!("/v1/tracking/{number}"),
            "/v1/tracking/{number}",
            Some(key),
            None,
        )
        .await
    }

    async fn last_mile(&self, number: &str) -> crate::helpers::Reply {
        self.call(
            Method::GET,
            &format!("/v1/waybills/{number}/last-mile"),
            "/v1/waybills/{number}/last-mile",
            Some(&self.key),
            None,
        )
        .await
    }

    /// Waits for the tracking of `number` to reach `status`.
    async fn wait_for_status(&self, number: &str, status: &str) -> Value {
        let what = format!("{number} to reach {status}");
        self.wait_for(&what, 15, || async {
            let r = self.tracking(&self.key, number).await;
            assert_eq!(r.status, 200, "{}", r.body);
            (r.body["trackingStatus"] == status).then_some(r.body)
        })
        .await
    }

    async fn created(&self, reference: &str, channel: &str) -> String {
        let mut req = waybill_request(reference);
        req["channel"] = json!(channel);
        let r = self.create(&req).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.waybill_number().to_owned()
    }

    async fn event_rows(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM tracking_events").await
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `hours` from now, as local time at `offset` hours east of UTC (RFC 3339).
fn later(hours: i64, offset: i32) -> String {
    let zone = chrono::FixedOffset::east_opt(offset * 3600).unwrap();
    (chrono::Utc::now() + chrono::Duration::hours(hours))
        .with_timezone(&zone)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

fn codes(body: &Value) -> Vec<String> {
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["statusCode"].as_str().unwrap().to_owned())
        .collect()
}

fn event(code: &str, at: &str) -> Value {
    json!({"code": code, "description": format!("event {code}"), "occurredAt": at,
           "city": "Los Angeles", "state": "CA", "postalCode": "90045", "country": "US"})
}

/// A waybill of an HTTP carrier, as if created through it (those creates are covered by the
/// carrier conformance suite).
async fn insert_created(app: &TestApp, carrier: &str, number: &str, reference: &str) {
    let now = shipgate::store::now_rfc3339();
    sqlx::query(
        "INSERT INTO waybills (id, tenant_id, reference_number, fingerprint, state, lease_until, \
         attempts, channel, carrier, request_json, waybill_number, tracking_number, claimed_at, \
         created_at, updated_at) VALUES ($1, $2, $3, 'x', 'created', 0, 1, 'X', $4, $5, $6, $6, \
         $7, $7, $7)",
    )
    .bind(uuid::Uuid::now_v7().simple().to_string())
    .bind(&app.tenant_id)
    .bind(reference)
    .bind(carrier)
    .bind(serde_json::to_string(&waybill_request(reference)).unwrap())
    .bind(number)
    .bind(&now)
    .execute(&app.db.pool)
    .await
    .unwrap();
}

fn fixture(carrier: &str, file: &str) -> Vec<u8> {
    std::fs::read(format!("carriers/tests/fixtures/{carrier}/{file}")).unwrap()
}
