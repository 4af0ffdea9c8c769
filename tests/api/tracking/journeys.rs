//! Sandbox parcels through the polling path: every number finds them, the poller keeps to the carrier's rate, instances side by side poll each parcel once, metrics.

use super::*;

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
        // Parcels stay on their way (a parcel found out for delivery is polled again soon).
        s.carriers.sandbox.clock_speed = 1.0;
        s.tracking.polling.rate_per_second = 20;
    })
    .await;
    let url = first.database_url.clone();
    let second = spawn_app_with(backend, |s| {
        crate::helpers::fast_sandbox(s);
        s.database_url = url;
        s.tracking.polling.first_ms = 300;
        s.tracking.polling.moving_ms = 3_600_000;
        // Parcels stay on their way (a parcel found out for delivery is polled again soon).
        s.carriers.sandbox.clock_speed = 1.0;
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
            ..Step::default()
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_readiness_the_pool_and_the_tracking_cache() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let number = app.created("TRK-METRICS", "SANDBOX_EXPRESS").await;
    assert_eq!(app.tracking(&app.key, &number).await.status, 200);
    app.run_background().await;
    let scrape = || async {
        app.client
            .get(format!("{}/metrics", app.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let text = scrape().await;
    let value_in = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let value = |name: &str| value_in(&text, name);
    assert_eq!(value("shipgate_ready "), Some(1.0), "{text}");
    assert!(
        value("shipgate_db_pool_connections{state=\"idle\"}").is_some(),
        "{text}"
    );
    assert!(
        value("shipgate_tracking_cache_requests_total{outcome=\"miss\"}").unwrap_or(0.0) >= 1.0
    );
    assert!(text.contains("shipgate_http_request_duration_seconds_bucket"));

    // Hardening: a scrape does no database work (readiness and the outbox are sampled in the
    // background), so scrapes cannot load the database: with the database gone, scrapes still
    // answer from the last sample, and the next sample sees it.
    app.db.pool.close().await;
    for _ in 0..20 {
        assert_eq!(value_in(&scrape().await, "shipgate_ready "), Some(1.0));
    }
    app.run_background().await;
    assert_eq!(value_in(&scrape().await, "shipgate_ready "), Some(0.0));
}

on_both_databases!(
    sandbox_parcels_move_and_are_tracked_by_every_number,
    instances_side_by_side_poll_each_parcel_once_per_round,
);

/// Hardening: a parcel that never reaches a final status is not polled for ever: past
/// `tracking.polling.max_age_days` its carrier is no longer asked, and its answer says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parcels_past_the_maximum_age_are_no_longer_polled() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        crate::helpers::fast_sandbox(s);
        s.tracking.polling.max_age_days = 90;
    })
    .await;
    let old = app.created("TRK-AGED", "SANDBOX_LINEHAUL_US").await;
    let young = app.created("TRK-YOUNG", "SANDBOX_LINEHAUL_US").await;
    let created = (chrono::Utc::now() - chrono::Duration::days(100)).to_rfc3339();
    sqlx::query("UPDATE waybills SET created_at = $1, next_poll_at = $2 WHERE waybill_number = $3")
        .bind(created)
        .bind(shipgate::store::now_millis())
        .bind(&old)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let calls = app.sandbox.track_calls();
    app.wait_for("the aged parcel to be left alone", 10, || async {
        let stopped: Option<i64> =
            sqlx::query_scalar("SELECT next_poll_at FROM waybills WHERE waybill_number = $1")
                .bind(&old)
                .fetch_one(&app.db.pool)
                .await
                .unwrap();
        let answer = app.tracking(&app.key, &old).await.body;
        let young_polled = app.sandbox.track_calls() > calls;
        (stopped.is_none() && answer["pollingStopped"] == true && young_polled).then_some(())
    })
    .await;
    // The young parcel was polled meanwhile; the aged one never was.
    let polled_old: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tracking_events e JOIN waybills w ON w.id = e.waybill_id \
         WHERE w.waybill_number = $1",
    )
    .bind(&old)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(polled_old, 0, "no events fetched for the aged parcel");
    let young_answer = app.tracking(&app.key, &young).await.body;
    assert!(
        young_answer.get("pollingStopped").is_none(),
        "{young_answer}"
    );
}
