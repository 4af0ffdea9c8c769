//! Pushes delivered signed and in order through receivers that fail, answer slowly or are gone; dead letters and replays.

use super::*;

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
        .wait_for("timed-out attempts", 30, || async {
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

/// Every push verifies with the official Standard Webhooks library and the endpoint's secret.
#[tokio::test]
async fn pushes_verify_with_the_official_standard_webhooks_library() {
    crate::needs!(StandardWebhooks);
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let app = spawn_app_with(Backend::Sqlite, fast).await;
    let r = app.add_endpoint(&app.key, &receiver.uri(), None).await;
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    app.journey("HOOK-OFFICIAL").await;
    app.outbox_settled().await;
    let requests = receiver.received_requests().await.unwrap();
    assert!(requests.len() > 4, "{} pushes", requests.len());
    for req in &requests {
        let header = |n: &str| req.headers.get(n).unwrap().to_str().unwrap().to_owned();
        let (id, ts, sig) = (
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
        );
        let out =
            crate::helpers::standard_webhooks(&["verify", &secret, &id, &ts, &sig], &req.body);
        assert!(
            out.status.success(),
            "{id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The library refuses what is not ours.
        let tampered =
            crate::helpers::standard_webhooks(&["verify", &secret, &id, &ts, &sig], b"{}");
        assert!(!tampered.status.success());
    }
}

/// Hardening: dead deliveries and push receipts do not stay for ever: past their retention
/// they are pruned with the delivered ones; younger ones stay.
async fn old_dead_deliveries_and_push_receipts_are_pruned(backend: Backend) {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let app = spawn_app_with(backend, |s| {
        fast(s);
        s.tracking.callbacks.insert(
            carriers::CarrierId::Sandbox,
            shipgate::settings::CallbackSettings {
                secret: "pruning-secret".into(),
            },
        );
    })
    .await;
    app.add_endpoint(&app.key, &receiver.uri(), None).await;
    app.journey("HOOK-PRUNE").await;
    app.outbox_settled().await;
    let total = app.count("SELECT COUNT(*) FROM webhook_deliveries").await;
    assert!(total > 4, "{total}");
    // Age some deliveries past the retention (30 days): half of them dead.
    let old = shipgate::store::now_millis() - 31 * 86_400_000;
    sqlx::query(
        "UPDATE webhook_deliveries SET created_at = $1, \
         state = CASE WHEN sequence % 2 = 0 THEN 'dead' ELSE state END \
         WHERE id IN (SELECT id FROM webhook_deliveries ORDER BY sequence LIMIT 4)",
    )
    .bind(old)
    .execute(&app.db.pool)
    .await
    .unwrap();
    assert!(
        app.count("SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'dead'")
            .await
            > 0
    );
    // Two push receipts, one of them old.
    for id in ["receipt-old", "receipt-new"] {
        app.db
            .write(shipgate::store::Db::record_receipt(
                "sandbox",
                id,
                shipgate::store::now_millis(),
            ))
            .await
            .unwrap();
    }
    sqlx::query("UPDATE callback_receipts SET received_at = $1 WHERE delivery_id = 'receipt-old'")
        .bind(old)
        .execute(&app.db.pool)
        .await
        .unwrap();

    app.run_maintenance().await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM webhook_deliveries").await,
        total - 4,
        "the four old ones, dead or delivered, are gone"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM callback_receipts WHERE delivery_id LIKE 'receipt-%'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM callback_receipts WHERE delivery_id = 'receipt-new'")
            .await,
        1
    );
}

on_both_databases!(old_dead_deliveries_and_push_receipts_are_pruned);
