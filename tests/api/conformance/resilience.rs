//! Carriers that fail: tokens refreshed once, refused credentials, timeouts resolved by lookup, the breaker, hanging carriers, rate limits, SF's duplicate order.

use super::*;

#[tokio::test]
async fn tokens_are_fetched_once_and_refreshed_once_on_a_401() {
    for case in cases() {
        let Some(token_path) = case.token_path else {
            continue;
        };
        let server = MockServer::start().await;
        (case.mount)(&server).await;
        // The first create is refused as if the token had been revoked; the retry succeeds.
        Mock::given(method("POST"))
            .and(path(case.create_path))
            .respond_with(ResponseTemplate::new(401).set_body_string("{}"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        mount_create_ok(&case, &server).await;
        let app = app_for(&case, &server, |_| {}).await;

        let replies = futures_util::future::join_all((0..8).map(|i| {
            let body = request(&case, &format!("PO-CONF-TOKEN-{i}"));
            let app = &app;
            async move { app.create(&body).await }
        }))
        .await;
        for r in &replies {
            assert_eq!(r.status, 201, "{}: {}", case.carrier, r.body);
        }
        // Eight concurrent first calls share one token; the 401 costs exactly one refresh.
        assert_eq!(
            requests_to(&server, token_path).await.len(),
            2,
            "{}",
            case.carrier
        );
    }
}

#[tokio::test]
async fn refused_credentials_are_a_distinct_error() {
    for case in cases() {
        let Some(token_path) = case.token_path else {
            continue;
        };
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(token_path))
            .respond_with(
                ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client"})),
            )
            .mount(&server)
            .await;
        let app = app_for(&case, &server, |_| {}).await;
        let r = app.create(&request(&case, "PO-CONF-AUTH")).await;
        assert_eq!(r.status, 502, "{}", r.body);
        assert_eq!(r.error_code(), "CARRIER_AUTH_FAILED", "{}", case.carrier);
    }
}

#[tokio::test]
async fn a_timeout_is_resolved_by_lookup_without_a_second_shipment() {
    // FedEx and UPS lookups return no label: their recovery voids and creates again
    // (`recovery::an_adopted_shipment_ends_with_the_carriers_label_and_charge`).
    for case in cases()
        .into_iter()
        .filter(|c| !matches!(c.carrier, "fedex" | "ups"))
    {
        let server = MockServer::start().await;
        (case.mount)(&server).await;
        // The carrier creates the shipment but answers too late for us.
        mount_slow_create(&case, &server).await;
        let app = app_for(&case, &server, |c| c.timeout_ms = 300).await;
        let started = std::time::Instant::now();
        let r = app.create(&request(&case, "PO-CONF-TIMEOUT")).await;
        assert_eq!(r.status, 504, "{}: {}", case.carrier, r.body);
        assert_eq!(r.error_code(), "CARRIER_TIMEOUT");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "answered within the 3 s promise"
        );

        let retried = app.create(&request(&case, "PO-CONF-TIMEOUT")).await;
        if case.lookup {
            assert_eq!(retried.status, 201, "{}: {}", case.carrier, retried.body);
            assert_eq!(app.charges().await, 1);
        } else {
            // Without a lookup the state cannot be settled: refuse rather than ship twice.
            assert_eq!(retried.status, 409, "{}: {}", case.carrier, retried.body);
            assert_eq!(retried.error_code(), "SHIPMENT_STATE_UNKNOWN");
        }
        let creates = create_calls(&server, &case).await;
        assert_eq!(creates, 1, "{}: one shipment only", case.carrier);
    }
}

#[tokio::test]
async fn the_breaker_opens_while_a_carrier_is_down() {
    for case in cases() {
        let server = MockServer::start().await;
        (case.mount)(&server).await;
        Mock::given(method("POST"))
            .and(path(case.create_path))
            .respond_with(ResponseTemplate::new(503).set_body_string("down"))
            .mount(&server)
            .await;
        let app = app_for(&case, &server, |c| {
            c.breaker_failures = 3;
            c.breaker_open_ms = 60_000;
        })
        .await;
        for i in 0..3 {
            let r = app
                .create(&request(&case, &format!("PO-CONF-DOWN-{i}")))
                .await;
            assert_eq!(r.status, 502, "{}: {}", case.carrier, r.body);
        }
        let calls = create_calls(&server, &case).await;
        let r = app.create(&request(&case, "PO-CONF-DOWN-X")).await;
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.error_code(), "CARRIER_UNAVAILABLE");
        assert_eq!(
            create_calls(&server, &case).await,
            calls,
            "refused without calling"
        );
    }
}

#[tokio::test]
async fn a_hanging_carrier_times_out_opens_the_breaker_and_recovers() {
    let case = fedex();
    let server = MockServer::start().await;
    (case.mount)(&server).await;
    // The carrier accepts connections and never answers in time.
    Mock::given(method("POST"))
        .and(path(case.create_path))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let app = app_for(&case, &server, |c| {
        c.timeout_ms = 400;
        c.breaker_failures = 2;
        c.breaker_open_ms = 1500;
    })
    .await;
    for i in 0..2 {
        let started = std::time::Instant::now();
        let r = app.create(&request(&case, &format!("PO-HANG-{i}"))).await;
        assert_eq!(r.status, 504, "{}", r.body);
        assert_eq!(r.error_code(), "CARRIER_TIMEOUT");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    // Open: refused at once, without calling the carrier.
    let calls = create_calls(&server, &case).await;
    let started = std::time::Instant::now();
    let r = app.create(&request(&case, "PO-HANG-OPEN")).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.error_code(), "CARRIER_UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_millis(300));
    assert_eq!(create_calls(&server, &case).await, calls);

    // The carrier recovers; after the open period one trial goes through and closes it.
    server.reset().await;
    (case.mount)(&server).await;
    mount_create_ok(&case, &server).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let r = app.create(&request(&case, "PO-HANG-BACK-1")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = app.create(&request(&case, "PO-HANG-BACK-2")).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn the_rate_limit_makes_callers_wait_up_to_a_bound() {
    for case in cases() {
        let server = MockServer::start().await;
        (case.mount)(&server).await;
        mount_create_ok(&case, &server).await;
        let case = &case;
        let send_four = |app: TestApp, prefix: &'static str| async move {
            futures_util::future::join_all((0..4).map(|i| {
                let body = request(case, &format!("{prefix}-{i}"));
                let app = &app;
                async move { app.create(&body).await.status.as_u16() }
            }))
            .await
        };
        // 20 per second, burst 1, wait up to 1 s: four calls all get their turn.
        let patient = app_for(case, &server, |c| {
            c.rate_per_second = 20;
            c.rate_burst = 1;
            c.rate_max_wait_ms = 1000;
        })
        .await;
        let statuses = send_four(patient, "PO-CONF-RATE").await;
        assert!(
            statuses.iter().all(|s| *s == 201),
            "{}: {statuses:?}",
            case.carrier
        );
        // 1 per second, burst 1, no waiting: the calls beyond the quota are refused.
        let strict = app_for(case, &server, |c| {
            c.rate_per_second = 1;
            c.rate_burst = 1;
            c.rate_max_wait_ms = 1;
        })
        .await;
        let statuses = send_four(strict, "PO-CONF-RATE-STRICT").await;
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses.iter().filter(|s| **s != 201).all(|s| *s == 503),
            "{statuses:?}"
        );
    }
}

#[tokio::test]
async fn an_sf_duplicate_order_is_adopted_not_refused() {
    // SF refuses an order id it has seen (8016): the order exists, so it is looked up and used.
    let case = sf();
    let server = MockServer::start().await;
    (case.mount)(&server).await;
    Mock::given(method("POST"))
        .and(path(case.create_path))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?><Response><Head>ERR</Head>\
             <ERROR code=\"8016\">重复下单</ERROR></Response>",
        ))
        .mount(&server)
        .await;
    let app = app_for(&case, &server, |_| {}).await;
    let r = app.create(&request(&case, "PO-SF-DUP")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["trackingNumber"], case.tracking_number);
    assert_eq!(create_calls(&server, &case).await, 1);
    assert_eq!(app.charges().await, 1);
}
