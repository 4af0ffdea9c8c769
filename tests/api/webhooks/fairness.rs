//! Deliveries under load and where pushes may go: a slow receiver holds only its own slots; two
//! instances deliver each event once; private addresses, translated addresses and other ports
//! refused.

use super::*;

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

/// Hardening: NAT64, 6to4, IPv4-compatible, site-local and 192.0.0.0/24 targets are refused, and
/// only the allowed ports (443 and 80 by default) take pushes, at subscription and at sending.
#[tokio::test]
async fn translated_addresses_and_other_ports_are_refused() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        fast(s);
        s.webhooks.allow_private_targets = false;
        s.webhooks.allowed_ports = vec![443, 80];
    })
    .await;
    for url in [
        "https://[64:ff9b::a9fe:a9fe]/hooks",
        "https://[64:ff9b:1::1]/hooks",
        "https://[2002:a9fe:a9fe::1]/hooks",
        "https://[::169.254.169.254]/hooks",
        "https://[fec0::1]/hooks",
        "https://192.0.0.10/hooks",
        "https://erp.example.com:6379/hooks",
        "http://erp.example.com:8080/hooks",
    ] {
        let r = app.add_endpoint(&app.key, url, None).await;
        assert_eq!(r.status, 400, "{url}: {}", r.body);
        assert_eq!(r.body["details"][0]["field"], "url", "{url}");
    }
    let ok = app
        .add_endpoint(&app.key, "https://erp.example.com/hooks", None)
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);

    // An endpoint stored before the port list was narrowed is not sent to either.
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    app.db
        .delete_webhook_endpoint(&app.tenant_id, ok.body["id"].as_str().unwrap())
        .await
        .unwrap();
    let endpoint = shipgate::store::webhook_endpoints::Endpoint {
        id: "whe_otherport".into(),
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
    app.journey("HOOK-PORT").await;
    let refused = app
        .wait_for("refused attempts", 10, || async {
            let log = app.deliveries("&state=pending").await;
            log.into_iter().find(|d| d["attempts"].as_i64() >= Some(1))
        })
        .await;
    let error = refused["lastError"].as_str().unwrap();
    assert!(error.contains("port"), "{error}");
    assert!(receiver.received_requests().await.unwrap().is_empty());
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
async fn instances_side_by_side_deliver_each_event_once() {
    crate::needs!(Postgres, Redis);
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(20)))
        .mount(&receiver)
        .await;
    // Side by side, instances share the tracking cache through Redis.
    // A receiver answer slower than the push timeout is retried (at least once, by design);
    // on a loaded machine 1 s is not enough to tell that from a duplicate.
    let first = spawn_app_with(Backend::Postgres, |s| {
        fast(s);
        s.webhooks.timeout_ms = 10_000;
        s.tracking.polling.lease_ms = 3_000;
        s.redis_url = Some(crate::helpers::redis_url());
    })
    .await;
    let url = first.database_url.clone();
    let second = spawn_app_with(Backend::Postgres, |s| {
        fast(s);
        s.webhooks.timeout_ms = 10_000;
        s.tracking.polling.lease_ms = 3_000;
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

/// Hardening: hundreds of waybills pushing to one endpoint whose receiver holds connections
/// open take at most `webhooks.max_in_flight_per_endpoint` of the slots; another tenant's
/// pushes go out meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_waybills_on_one_slow_endpoint_do_not_take_every_slot() {
    const SECRET: &str = "fairness-push-secret";
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&slow)
        .await;
    let fast_receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&fast_receiver)
        .await;
    let app = spawn_live_app_with(Backend::Sqlite, |s| {
        fast(s);
        s.tracking.polling.enabled = false;
        s.webhooks.batch = 16;
        s.webhooks.max_in_flight_per_endpoint = 4;
        s.webhooks.timeout_ms = 5000;
        s.tracking.callbacks.insert(
            carriers::CarrierId::Sandbox,
            shipgate::settings::CallbackSettings {
                secret: SECRET.into(),
            },
        );
    })
    .await;
    let other = app.new_key("globex").await;
    let slow_endpoint = app.add_endpoint(&app.key, &slow.uri(), None).await;
    let slow_id = slow_endpoint.body["id"].as_str().unwrap().to_owned();
    app.add_endpoint(&other, &fast_receiver.uri(), None).await;
    // One event pushed for each of many waybills: a delivery each.
    let ship = |key: String, reference: String| {
        let app = &app;
        async move {
            let mut req = waybill_request(&reference);
            req["channel"] = json!("SANDBOX_EXPRESS");
            let r = app.create_as(&key, &req).await;
            assert_eq!(r.status, 201, "{}", r.body);
            let body = json!({
                "waybillNumber": r.waybill_number(),
                "events": [{"code": "PU", "description": "picked up",
                            "occurredAt": chrono::Utc::now().to_rfc3339()}]
            });
            let id = format!("fair-{reference}");
            let pushed = app.push_sandbox(&id, now_secs(), &body, SECRET).await;
            assert_eq!(pushed.status, 200, "{}", pushed.body);
        }
    };
    for i in 0..200 {
        ship(app.key.clone(), format!("FAIR-SLOW-{i}")).await;
    }
    for i in 0..20 {
        ship(other.clone(), format!("FAIR-FAST-{i}")).await;
    }
    let most_in_flight = std::sync::atomic::AtomicI64::new(0);
    crate::helpers::wait_until("the other tenant's pushes", 15, || async {
        let in_flight: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = $1 \
             AND state = 'pending' AND leased_until > $2",
        )
        .bind(&slow_id)
        .bind(shipgate::store::now_millis())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        most_in_flight.fetch_max(in_flight, std::sync::atomic::Ordering::Relaxed);
        (app.deliveries_as(&other, "&state=delivered").await.len() == 20).then_some(())
    })
    .await;
    let most = most_in_flight.load(std::sync::atomic::Ordering::Relaxed);
    assert!(most <= 4, "{most} in flight to one endpoint");
    assert!(most > 0, "the slow endpoint had deliveries in flight");
    let slow_done = app.deliveries("&state=delivered").await.len();
    assert!(slow_done < 50, "{slow_done} slow pushes already done");
}
