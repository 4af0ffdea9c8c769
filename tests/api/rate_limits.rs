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
