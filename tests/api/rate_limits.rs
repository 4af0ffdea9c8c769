//! Per-key rate limits: `429 RATE_LIMITED` with `Retry-After`, before any work; per-tenant quotas.

use crate::helpers::{Backend, spawn_app_with, waybill_request};
use reqwest::Method;
use shipgate::settings::Quota;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_over_their_quota_get_429_before_any_work() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits.per_second = 1000;
        s.rate_limits.burst = 1000;
        s.rate_limits.tenants.insert(
            "acme".into(),
            Quota {
                per_second: 1,
                burst: 3,
            },
        );
    })
    .await;
    // acme's key: three at once, then refused.
    for i in 0..3 {
        let r = app.create(&waybill_request(&format!("RL-{i}"))).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = app.create(&waybill_request("RL-OVER")).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.error_code(), "RATE_LIMITED");
    assert_eq!(r.body["status"], 0);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // Refused before any work: nothing was claimed or created for it.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM waybills WHERE reference_number = 'RL-OVER'")
            .await,
        0
    );
    assert_eq!(app.sandbox.create_calls(), 3);
    // Reads count too.
    let r = app
        .call(
            Method::GET,
            "/v1/waybills/RL-0",
            "/v1/waybills/{number}",
            Some(&app.key),
            None,
        )
        .await;
    assert_eq!(r.status, 429);

    // Another tenant's key has its own (default) quota.
    let other = app.new_key("globex").await;
    for i in 0..5 {
        let r = app
            .create_as(&other, &waybill_request(&format!("RL-G-{i}")))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }

    // The bucket refills: one request a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = app.create(&waybill_request("RL-LATER")).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

fn bad_key(n: u32) -> String {
    format!("sg_{n:048x}")
}

/// Hardening: an address that keeps presenting bad keys is refused before any hashing or
/// database work once its failure budget is spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_keys_is_refused_before_any_work() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits.failed_auth_per_second = 1;
        s.rate_limits.failed_auth_burst = 3;
    })
    .await;
    for n in 0..3 {
        let r = app.get_waybill(&bad_key(n), "SBX1").await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let r = app.get_waybill(&bad_key(99), "SBX1").await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.error_code(), "RATE_LIMITED");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // Refused before the database: with it gone, the answer is the same.
    app.db.pool.close().await;
    assert_eq!(app.get_waybill(&bad_key(100), "SBX1").await.status, 429);
}

/// Hardening: a key looked up once and found unknown is refused again without a database query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_keys_are_remembered() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    assert_eq!(app.get_waybill(&bad_key(1), "SBX1").await.status, 401);
    app.db.pool.close().await;
    let again = app.get_waybill(&bad_key(1), "SBX1").await;
    assert_eq!(again.status, 401, "{}", again.body);
    // A key never seen needs the database, which is gone.
    let fresh = app
        .client
        .get(format!("{}/v1/waybills/SBX1", app.address))
        .bearer_auth(bad_key(2))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 503);
}

/// Hardening: a client that sends headers and then holds the body back is answered when
/// `http.body_timeout_ms` runs out, instead of holding the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_comes_is_answered_in_time() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.http.body_timeout_ms = 300;
        // A carrier that can sign: its pushes' bodies are read (within the timeout).
        s.tracking.callbacks.insert(
            carriers::CarrierId::Sandbox,
            shipgate::settings::CallbackSettings {
                secret: "sandbox-secret".into(),
            },
        );
    })
    .await;
    let host = app.address.trim_start_matches("http://").to_owned();
    for path in ["/v1/callbacks/sandbox", "/v1/waybills"] {
        let mut conn = tokio::net::TcpStream::connect(&host).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
            app.key
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut answer))
            .await
            .expect("answered before the client gave up")
            .unwrap();
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 400"), "{path}: {text}");
        assert!(
            text.contains("did not arrive within 300 ms"),
            "{path}: {text}"
        );
    }
}

/// Hardening: a push to a path no configured carrier can sign is refused before its body is
/// read: a client announcing a large body and sending none is answered at once, not after the
/// body timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_no_carrier_can_sign_are_refused_before_the_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(Backend::Sqlite, |s| s.http.body_timeout_ms = 20_000).await;
    let host = app.address.trim_start_matches("http://").to_owned();
    // FedEx pushes but has no secret configured here; `nobody` is no carrier.
    for (path, status) in [
        ("/v1/callbacks/fedex", "401"),
        ("/v1/callbacks/nobody", "404"),
    ] {
        let mut conn = tokio::net::TcpStream::connect(&host).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: 1000000\r\n\r\n{{"
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        // Half the body timeout: an answer within it was not waiting for the body.
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut answer))
            .await
            .expect("answered without waiting for the body")
            .unwrap();
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status}")),
            "{path}: {text}"
        );
    }
}

/// Hardening: with Redis, a key's quota is shared by every instance: two instances side by side
/// together admit no more than the quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_a_keys_quota_through_redis() {
    crate::needs!(Redis);
    let quota = |s: &mut shipgate::settings::Settings| {
        s.redis_url = Some(crate::helpers::redis_url());
        s.rate_limits.tenants.insert(
            "acme".into(),
            Quota {
                per_second: 1,
                burst: 4,
            },
        );
    };
    let first = spawn_app_with(Backend::Sqlite, quota).await;
    let url = first.database_url.clone();
    let second = spawn_app_with(Backend::Sqlite, |s| {
        quota(s);
        s.database_url = url;
    })
    .await;
    let mut admitted = 0;
    let mut refused = 0;
    for i in 0..12 {
        let app = if i % 2 == 0 { &first } else { &second };
        let r = app.get_waybill(&first.key, "SBX-NONE").await;
        match r.status.as_u16() {
            404 => admitted += 1,
            429 => refused += 1,
            other => panic!("{other}: {}", r.body),
        }
    }
    // The burst of 4, plus at most one more the second that passes may refill.
    assert!(
        (4..=5).contains(&admitted),
        "{admitted} admitted across both"
    );
    assert_eq!(admitted + refused, 12);
}
