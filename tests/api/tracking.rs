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

    /// A sandbox push signed Standard Webhooks style.
    async fn push_sandbox(
        &self,
        id: &str,
        timestamp: i64,
        body: &Value,
        secret: &str,
    ) -> crate::helpers::Reply {
        let raw = serde_json::to_vec(body).unwrap();
        let signature =
            carriers::signing::standard_webhooks_sign(secret.as_bytes(), id, timestamp, &raw);
        let res = self
            .client
            .post(format!("{}/v1/callbacks/sandbox", self.address))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(raw)
            .send()
            .await
            .unwrap();
        let reply = crate::helpers::Reply::read(res).await;
        crate::helpers::contract::check(
            "POST",
            "/v1/callbacks/{carrier}",
            reply.status.as_u16(),
            &reply.body,
        );
        reply
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

async fn sandbox_parcels_move_and_are_tracked_by_every_number(backend: Backend) {
    crate::needs!(Redis);
    let app = spawn_app_with(backend, |s| {
        crate::helpers::fast_sandbox(s);
        // The first poll comes late enough for the first query to see the creation alone, even
        // on a loaded machine.
        s.tracking.polling.first_ms = 1000;
        s.redis_url = Some(redis_url());
    })
    .await;
    let number = app.created("TRK-MOVE-1", "SANDBOX_LINEHAUL_US").await;

    // The first event exists at once: the creation, at the shipper's place.
    let first = app.tracking(&app.key, &number).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["referenceNumber"], "TRK-MOVE-1");
    assert_eq!(first.body["events"][0]["statusCode"], "CREATED");
    assert_eq!(first.body["events"][0]["trackingStatus"], "INFO_RECEIVED");
    assert_eq!(first.body["events"][0]["country"], "CN");

    // The poller asks the sandbox; the timeline reaches delivery through the cache.
    let done = app.wait_for_status(&number, "DELIVERED").await;
    let codes = codes(&done);
    assert_eq!(codes.first().map(String::as_str), Some("01"), "{codes:?}");
    assert_eq!(
        codes.last().map(String::as_str),
        Some("CREATED"),
        "{codes:?}"
    );
    for expected in ["PU", "DP", "LD", "LA", "CC", "LM", "03", "10", "07", "OF"] {
        assert!(
            codes.iter().any(|c| c == expected),
            "{expected} missing: {codes:?}"
        );
    }
    // USPS pre-advice never shows, before or after acceptance.
    assert!(!codes.iter().any(|c| c == "GX" || c == "MA"), "{codes:?}");
    // Newest first, each with its local offset and zone.
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            chrono::DateTime::parse_from_rfc3339(e["occurredAtUtc"].as_str().unwrap()).unwrap()
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "not newest first");
    let pickup = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["statusCode"] == "PU")
        .unwrap();
    assert_eq!(pickup["timezone"], "Asia/Shanghai");
    assert!(
        pickup["occurredAt"].as_str().unwrap().ends_with("+08:00"),
        "{pickup}"
    );
    assert_eq!(done["events"][0]["timezone"], "America/Los_Angeles");
    assert_eq!(done["events"][0]["carrier"], "USPS");

    // Last mile: normalized from the sandbox's "United States Postal Service".
    assert_eq!(done["lastMileCarrier"], "USPS");
    let last_mile_number = done["lastMileTrackingNumber"].as_str().unwrap().to_owned();
    assert_eq!(last_mile_number.len(), 22);
    let lm = app.last_mile(&number).await;
    assert_eq!(lm.status, 200);
    assert_eq!(lm.body["lastMileCarrier"], "USPS");
    assert_eq!(lm.body["lastMileTrackingNumber"], last_mile_number.as_str());
    assert_eq!(lm.body["lastMileCarrierRecognized"], true);

    // The same answer by reference and by last-mile number.
    for other in ["TRK-MOVE-1", last_mile_number.as_str()] {
        let r = app.tracking(&app.key, other).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, done, "by {other}");
    }

    // Batch: found and not found, in order.
    let batch = app
        .call(
            Method::POST,
            "/v1/tracking/query",
            "/v1/tracking/query",
            Some(&app.key),
            Some(&json!({"numbers": [number, "NO-SUCH-NUMBER", last_mile_number]})),
        )
        .await;
    assert_eq!(batch.status, 200, "{}", batch.body);
    let results = batch.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["found"], true);
    assert_eq!(results[0]["tracking"]["trackingStatus"], "DELIVERED");
    assert_eq!(results[1]["found"], false);
    assert_eq!(results[1]["errorCode"], "NOT_FOUND");
    assert_eq!(results[2]["tracking"]["waybillNumber"], number.as_str());
    let too_many: Vec<String> = (0..41).map(|i| format!("N{i}")).collect();
    let r = app
        .call(
            Method::POST,
            "/v1/tracking/query",
            "/v1/tracking/query",
            Some(&app.key),
            Some(&json!({"numbers": too_many})),
        )
        .await;
    assert_eq!(r.error_code(), "VALIDATION_FAILED");

    // Another tenant sees nothing.
    let other = app.new_key("globex").await;
    let r = app.tracking(&other, &number).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "NOT_FOUND");
}

async fn pushes_are_authenticated_deduplicated_and_ordered(backend: Backend) {
    crate::needs!(Redis);
    let app = spawn_app_with(backend, |s| {
        pushes(s);
        s.redis_url = Some(redis_url());
    })
    .await;
    let number = app.created("TRK-PUSH-1", "SANDBOX_LINEHAUL_US").await;
    let before = app.tracking(&app.key, &number).await;
    assert_eq!(before.body["trackingStatus"], "INFO_RECEIVED");

    let pu_at = later(1, 8);
    let picked_up = json!({"waybillNumber": number, "events": [event("PU", &pu_at)]});
    // Wrong secret: refused, nothing stored.
    let r = app
        .push_sandbox("evt-1", now(), &picked_up, "not-the-secret")
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "CALLBACK_UNAUTHORIZED");
    // Correctly signed but 400 s old: refused.
    let r = app
        .push_sandbox("evt-1", now() - 400, &picked_up, SECRET)
        .await;
    assert_eq!(r.status, 401);
    assert!(
        r.body["errorMsg"].as_str().unwrap().contains("300"),
        "{}",
        r.body
    );
    assert_eq!(app.event_rows().await, 0);

    let r = app.push_sandbox("evt-1", now(), &picked_up, SECRET).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["accepted"], 1);
    // The cached answer changed with the push: no stale answer.
    let after = app.tracking(&app.key, &number).await;
    assert_eq!(after.body["trackingStatus"], "PICKED_UP");
    assert_eq!(after.body["events"][0]["occurredAt"], pu_at.as_str());

    // The same delivery again: refused, no duplicate event.
    let r = app.push_sandbox("evt-1", now(), &picked_up, SECRET).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.error_code(), "CALLBACK_REPLAYED");
    // The same event under a new delivery id: taken, counted as a duplicate.
    let r = app.push_sandbox("evt-2", now(), &picked_up, SECRET).await;
    assert_eq!(
        (r.body["accepted"].as_u64(), r.body["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(app.event_rows().await, 1);

    // Delivered, then an older scan arrives late: the timeline is sorted by time and the
    // terminal status stays.
    let delivered = json!({"waybillNumber": number, "lastMile": {"carrier": "美国邮政",
        "trackingNumber": "9400111899223344556677", "events": [
            event("GX", &later(2, -8)),
            event("MA", &later(3, -8)),
            event("01", &later(10, -8))]}});
    assert_eq!(
        app.push_sandbox("evt-3", now(), &delivered, SECRET)
            .await
            .status,
        200
    );
    let late = json!({"waybillNumber": number, "events": [event("LA", &later(4, -8))],
        "lastMile": {"carrier": "USPS", "trackingNumber": "9400111899223344556677",
                     "events": [event("03", &later(5, -8))]}});
    assert_eq!(
        app.push_sandbox("evt-4", now(), &late, SECRET).await.status,
        200
    );
    let t = app.tracking(&app.key, &number).await;
    assert_eq!(t.body["trackingStatus"], "DELIVERED", "{}", t.body);
    assert_eq!(codes(&t.body), ["01", "03", "LA", "PU", "CREATED"]);
    // Last mile from the push, by its Chinese name; GX/MA hidden.
    assert_eq!(t.body["lastMileCarrier"], "USPS");
    let by_last_mile = app.tracking(&app.key, "9400111899223344556677").await;
    assert_eq!(by_last_mile.body, t.body);

    // A name outside the table is kept as reported and flagged.
    let other = app.created("TRK-PUSH-2", "SANDBOX_LINEHAUL_US").await;
    let pigeon = json!({"waybillNumber": other, "lastMile": {"carrier": " Pigeon Post ",
        "trackingNumber": "PP-1", "events": []}});
    assert_eq!(
        app.push_sandbox("evt-5", now(), &pigeon, SECRET)
            .await
            .status,
        200
    );
    let lm = app.last_mile(&other).await;
    assert_eq!(lm.body["lastMileCarrier"], "Pigeon Post");
    assert_eq!(lm.body["lastMileCarrierRecognized"], false);

    // Cancelled: the cached answer says so at once.
    assert_eq!(
        app.tracking(&app.key, &other).await.body["trackingStatus"],
        "INFO_RECEIVED"
    );
    let r = app
        .call(
            Method::POST,
            &format!("/v1/waybills/{other}/cancel"),
            "/v1/waybills/{number}/cancel",
            Some(&app.key),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.tracking(&app.key, &other).await.body["trackingStatus"],
        "CANCELLED"
    );

    // Unreadable and unknown.
    let r = app
        .push_sandbox("evt-6", now(), &json!({"waybill": 1}), SECRET)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "INVALID_REQUEST");
    let res = app
        .client
        .post(format!("{}/v1/callbacks/pigeon", app.address))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fedex_and_sf_express_pushes_in_their_own_formats() {
    use hmac::{KeyInit, Mac};
    let app = spawn_app_with(Backend::Sqlite, pushes).await;
    insert_created(&app, "fedex", "738488882438", "TRK-FDX").await;
    insert_created(&app, "sf_express", "444003077898", "TRK-SF").await;

    // FedEx: the Track API's result shape, HMAC-SHA256 of the body in fdx-signature.
    let body = fixture("fedex", "tracking_response.json");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let signature = hex::encode(mac.finalize().into_bytes());
    let send = |sig: String| {
        app.client
            .post(format!("{}/v1/callbacks/fedex", app.address))
            .header("content-type", "application/json")
            .header("fdx-signature", sig)
            .body(body.clone())
            .send()
    };
    let bad = crate::helpers::Reply::read(send("00".repeat(32)).await.unwrap()).await;
    assert_eq!(bad.status, 401);
    let ok = crate::helpers::Reply::read(send(signature.clone()).await.unwrap()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body["accepted"].as_u64().unwrap() >= 10, "{}", ok.body);
    let t = app.tracking(&app.key, "TRK-FDX").await;
    assert_eq!(t.body["trackingStatus"], "DELIVERED", "{}", t.body);
    let replay = crate::helpers::Reply::read(send(signature).await.unwrap()).await;
    assert_eq!(replay.error_code(), "CALLBACK_REPLAYED");

    // SF Express: route push XML in a form, verifyCode = Base64(MD5(xml + checkword)); the
    // answer is SF's XML envelope.
    let accepted = later(1, 8);
    let accept_time = accepted[..19].replace('T', " ");
    let xml = format!(
        r#"<Request service="RoutePushService" lang="zh-CN"><Body><WaybillRoute id="7001" mailno="444003077898" orderid="TRK-SF" acceptTime="{accept_time}" acceptAddress="深圳市" remark="顺丰速运 已收取快件" opCode="50"/></Body></Request>"#
    );
    let xml = xml.as_str();
    let form = |verify: &str| {
        serde_urlencoded::to_string([("content", xml), ("verifyCode", verify)]).unwrap()
    };
    let post = |body: String| {
        app.client
            .post(format!("{}/v1/callbacks/sf_express", app.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let res = post(form("wrong")).await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("<Head>ERR</Head>"));
    let good = carriers::sf_express::verify_code(xml, SECRET);
    let res = post(form(&good)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("<Head>OK</Head>"));
    let t = app.tracking(&app.key, "444003077898").await;
    assert_eq!(t.body["trackingStatus"], "PICKED_UP");
    assert_eq!(t.body["events"][0]["occurredAt"], accepted.as_str());
    assert_eq!(t.body["events"][0]["timezone"], "Asia/Shanghai");
    let res = post(form(&good)).await.unwrap();
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("code=\"4003\""));
}

/// A private Redis this test may stop, freeze and restart.
struct OwnRedis {
    port: u16,
    dir: Option<tempfile::TempDir>,
    child: std::process::Child,
}

impl OwnRedis {
    fn start(port: u16, dir: tempfile::TempDir) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (installed by scripts/test.sh)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            port,
            dir: Some(dir),
            child,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn signal(&self, sig: &str) {
        std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    fn stop(mut self) -> (u16, tempfile::TempDir) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.port, self.dir.take().expect("directory"))
    }

    async fn get(&self, key: &str) -> Option<String> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut conn)
            .await
            .ok()?
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outages_fall_back_to_the_database_and_recover() {
    crate::needs!(RedisBinary);
    let redis = OwnRedis::start(free_port(), tempfile::tempdir().unwrap());
    let url = redis.url();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        pushes(s);
        s.redis_url = Some(url);
        s.tracking.redis_timeout_ms = 50;
        s.tracking.redis_breaker_open_ms = 300;
    })
    .await;
    let number = app.created("TRK-REDIS-1", "SANDBOX_LINEHAUL_US").await;
    let key = shipgate::tracking::cache::key(&app.tenant_id, &number);
    assert_eq!(app.tracking(&app.key, &number).await.status, 200);
    assert!(
        redis.get(&key).await.unwrap().contains("CREATED"),
        "filled on the miss"
    );

    // Frozen Redis (slow, not refusing): answers keep coming from the database, new events
    // included, each fast because the breaker stops asking Redis.
    redis.signal("-STOP");
    let push = |id: &'static str, code: &'static str, at: String| {
        let body = json!({"waybillNumber": number, "events": [event(code, &at)]});
        let app = &app;
        async move { app.push_sandbox(id, now(), &body, SECRET).await }
    };
    assert_eq!(push("r-1", "PU", later(1, 8)).await.status, 200);
    for _ in 0..20 {
        let started = Instant::now();
        let r = app.tracking(&app.key, &number).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["trackingStatus"], "PICKED_UP");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }
    // Back: Redis still holds the old answer; the missed write is repaired and Redis serves
    // the new one.
    redis.signal("-CONT");
    app.wait_for("the answer in Redis to be repaired", 10, || async {
        let _ = app.tracking(&app.key, &number).await;
        redis
            .get(&key)
            .await
            .is_some_and(|b| b.contains("PICKED_UP"))
            .then_some(())
    })
    .await;

    // Redis gone: still answered, from the database.
    let (port, dir) = redis.stop();
    assert_eq!(push("r-2", "LA", later(2, -8)).await.status, 200);
    for _ in 0..20 {
        let r = app.tracking(&app.key, &number).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["events"][0]["statusCode"], "LA");
    }
    // Redis restarted (empty): filled again on the next queries.
    let redis = OwnRedis::start(port, dir);
    app.wait_for("Redis to be used again", 10, || async {
        let r = app.tracking(&app.key, &number).await;
        assert_eq!(r.status, 200);
        redis
            .get(&key)
            .await
            .is_some_and(|b| b.contains("\"LA\""))
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_keeps_to_the_carrier_rate_limit() {
    let app = spawn_live_app_with(Backend::Sqlite, |s| {
        crate::helpers::fast_sandbox(s);
        s.tracking.polling.rate_per_second = 5;
        s.tracking.polling.moving_ms = 50;
        s.tracking.polling.first_ms = 1;
    })
    .await;
    for i in 0..12 {
        app.created(&format!("TRK-RATE-{i}"), "SANDBOX_EXPRESS")
            .await;
    }
    let start_calls = app.sandbox.track_calls();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = app.sandbox.track_calls() - start_calls;
    // 5 per second with no burst: at most 11 in 2 s (plus the one a round may be starting).
    assert!(
        (5..=12).contains(&calls),
        "{calls} tracking calls in 2 s at 5/s"
    );
}

async fn instances_side_by_side_poll_each_parcel_once_per_round(backend: Backend) {
    let first = spawn_app_with(backend, |s| {
        crate::helpers::fast_sandbox(s);
        s.tracking.polling.first_ms = 300;
        s.tracking.polling.moving_ms = 3_600_000;
        s.tracking.polling.rate_per_second = 20;
    })
    .await;
    let url = first.database_url.clone();
    let second = spawn_app_with(backend, |s| {
        crate::helpers::fast_sandbox(s);
        s.database_url = url;
        s.tracking.polling.first_ms = 300;
        s.tracking.polling.moving_ms = 3_600_000;
        s.tracking.polling.rate_per_second = 20;
    })
    .await;
    for i in 0..20 {
        first
            .created(&format!("TRK-TWO-{i}"), "SANDBOX_EXPRESS")
            .await;
    }
    let total = || first.sandbox.track_calls() + second.sandbox.track_calls();
    // Both instances run their rounds at the same time, as two servers' pollers do.
    let both = || async {
        let (a, b) = tokio::join!(first.run_background(), second.run_background());
        Step {
            polled: a.polled + b.polled,
            delivered: a.delivered + b.delivered,
        }
    };
    wait_with("every parcel's first poll", 10, both, || async {
        (total() >= 20).then_some(())
    })
    .await;
    // More rounds poll nothing again: each parcel's next poll is an hour away.
    for _ in 0..5 {
        assert_eq!(both().await.polled, 0);
    }
    assert_eq!(total(), 20, "a parcel was polled twice in one round");
    assert!(first.sandbox.track_calls() > 0 && second.sandbox.track_calls() > 0);
}

on_both_databases!(
    sandbox_parcels_move_and_are_tracked_by_every_number,
    pushes_are_authenticated_deduplicated_and_ordered,
    instances_side_by_side_poll_each_parcel_once_per_round,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_cached_in_another_instance_follow_a_push() {
    crate::needs!(Redis);
    // Two instances on one database and one Redis, each keeping answers in memory too: a push
    // taken by one is seen by the other (Redis invalidates the other's copy).
    let first = spawn_app_with(Backend::Sqlite, |s| {
        pushes(s);
        s.redis_url = Some(redis_url());
    })
    .await;
    let url = first.database_url.clone();
    let second = spawn_app_with(Backend::Sqlite, |s| {
        pushes(s);
        s.redis_url = Some(redis_url());
        s.database_url = url;
    })
    .await;
    let number = first.created("TRK-TWO-CACHES", "SANDBOX_LINEHAUL_US").await;
    let key = second.new_key("acme").await;
    for _ in 0..3 {
        let r = second.tracking(&key, &number).await;
        assert_eq!(r.body["trackingStatus"], "INFO_RECEIVED");
    }
    let body = json!({"waybillNumber": number, "events": [event("PU", &later(1, 8))]});
    assert_eq!(
        first
            .push_sandbox("two-1", now(), &body, SECRET)
            .await
            .status,
        200
    );
    // Redis's invalidation message reaches the other instance on its own time.
    wait_until("the other instance to drop its old answer", 2, || async {
        let r = second.tracking(&key, &number).await;
        (r.body["trackingStatus"] == "PICKED_UP").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_readiness_the_pool_and_the_tracking_cache() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let number = app.created("TRK-METRICS", "SANDBOX_EXPRESS").await;
    assert_eq!(app.tracking(&app.key, &number).await.status, 200);
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(value("shipgate_ready "), Some(1.0), "{text}");
    assert!(
        value("shipgate_db_pool_connections{state=\"idle\"}").is_some(),
        "{text}"
    );
    assert!(
        value("shipgate_tracking_cache_requests_total{outcome=\"miss\"}").unwrap_or(0.0) >= 1.0
    );
    assert!(text.contains("shipgate_http_request_duration_seconds_bucket"));
}
