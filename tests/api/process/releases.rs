//! SIGTERM and SIGKILL of the real binary: nothing acknowledged lost, draining, an instance swap under load, webhook deliveries across a kill.

use super::*;

/// Creates waybills from several clients until the server dies; returns the acknowledged
/// (reference -> waybill number) and the references that got no answer.
async fn load_until_killed(
    address: &str,
    key: &str,
    clients: usize,
) -> (HashMap<String, String>, Vec<String>) {
    let acked = Arc::new(Mutex::new(HashMap::new()));
    let unanswered = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (acked, unanswered) = (acked.clone(), unanswered.clone());
            let (address, key) = (address.to_owned(), key.to_owned());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 0.. {
                    let reference = format!("PO-CRASH-{c}-{i}");
                    let res = client
                        .post(format!("{address}/v1/waybills"))
                        .bearer_auth(&key)
                        .json(&waybill_request(&reference))
                        .send()
                        .await;
                    let Ok(res) = res else {
                        unanswered.lock().unwrap().push(reference);
                        return;
                    };
                    let ok = res.status().is_success();
                    match res.json::<Value>().await {
                        Ok(body) if ok => {
                            let number = body["waybillNumber"].as_str().unwrap().to_owned();
                            acked.lock().unwrap().insert(reference, number);
                        }
                        _ => {
                            unanswered.lock().unwrap().push(reference);
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let unanswered = unanswered.lock().unwrap().clone();
    (acked, unanswered)
}

async fn sigkill_mid_load_loses_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("s.db").display()),
        Backend::Postgres => crate::helpers::fresh_postgres_database().await,
    };
    carriers::http::install_crypto_provider();
    let key = create_key(&url, dir.path(), "acme");
    // A short lease so that claims of the killed process are taken over within the test.
    let env = [("SHIPGATE_IDEMPOTENCY__LEASE_MS", "3000")];
    let mut server = Server::start(&url, dir.path(), "first.log", &env);

    let address = server.address.clone();
    let load = tokio::spawn({
        let key = key.clone();
        async move { load_until_killed(&address, &key, 8).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    let (acked, unanswered) = load.await.unwrap();
    assert!(
        acked.len() > 20,
        "the load made too little progress: {}",
        acked.len()
    );
    eprintln!(
        "{} acknowledged, {} unanswered at the kill",
        acked.len(),
        unanswered.len()
    );

    let restarted = Server::start(&url, dir.path(), "second.log", &env);
    let client = reqwest::Client::new();
    for (reference, number) in &acked {
        let body: Value = client
            .get(format!("{}/v1/waybills/{reference}", restarted.address))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            body["waybillNumber"],
            number.as_str(),
            "acknowledged {reference} lost"
        );
    }
    // Whatever was in flight settles to exactly one waybill when the client retries.
    for reference in &unanswered {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let res = client
                .post(format!("{}/v1/waybills", restarted.address))
                .bearer_auth(&key)
                .json(&waybill_request(reference))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            if status == 200 || status == 201 {
                break;
            }
            assert_eq!(status, 409, "{reference}: {}", res.text().await.unwrap());
            assert!(Instant::now() < deadline, "{reference} never settled");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let db = shipgate::store::Db::connect(&url, 1).await.unwrap();
    let count = |sql: &'static str| {
        let pool = db.pool.clone();
        async move {
            use sqlx::Row;
            sqlx::query(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
                .get::<i64, _>(0)
        }
    };
    let settled = (acked.len() + unanswered.len()) as i64;
    assert_eq!(
        count("SELECT COUNT(*) FROM waybills WHERE state = 'created'").await,
        settled
    );
    assert_eq!(
        count("SELECT COUNT(DISTINCT waybill_number) FROM waybills").await,
        settled
    );
    assert_eq!(count("SELECT COUNT(*) FROM charges").await, settled);

    // Personal data never reaches the logs in full; request ids always do.
    let logs = std::fs::read_to_string(&server.log).unwrap()
        + &std::fs::read_to_string(&restarted.log).unwrap();
    for secret in [
        "+1 213 555 0147",
        "742 Evergreen Terrace",
        "+86 755 8888 1234",
        "88 Keji Road",
    ] {
        assert!(!logs.contains(secret), "`{secret}` leaked into the logs");
    }
    assert!(logs.contains("\"request_id\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_load_loses_nothing_on_sqlite() {
    sigkill_mid_load_loses_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_load_loses_nothing_on_postgres() {
    crate::needs!(Postgres);
    sigkill_mid_load_loses_nothing(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readiness_off_and_finishes_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let key = create_key(&url, dir.path(), "acme");
    let mut server = Server::start(
        &url,
        dir.path(),
        "server.log",
        &[
            ("SHIPGATE_SHUTDOWN__DRAIN_DELAY_MS", "1500"),
            ("SHIPGATE_CARRIERS__SANDBOX__SLOW_MS", "1200"),
        ],
    );
    let client = reqwest::Client::new();
    let slow = {
        let (client, address, key) = (client.clone(), server.address.clone(), key.clone());
        tokio::spawn(async move {
            client
                .post(format!("{address}/v1/waybills"))
                .bearer_auth(key)
                .json(&waybill_request("PO-SANDBOX_SLOW-DRAIN"))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        client
            .get(format!("{}/readyz", server.address))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    sigterm(&server);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Not ready any more, still serving, and asking clients to reconnect elsewhere.
    let ready = client
        .get(format!("{}/readyz", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["errorCode"], "SERVICE_UNAVAILABLE");
    let live = client
        .get(format!("{}/livez", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(live.headers()["connection"], "close");

    // The request that was in flight when the signal came completes.
    assert_eq!(slow.await.unwrap().unwrap(), 201);
    let status = wait_exit(&mut server, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("shipgate stopped"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_instance_takes_over_the_port_with_no_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let key = create_key(&url, dir.path(), "acme");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let listen = format!("127.0.0.1:{port}");
    let env = [
        ("SHIPGATE_LISTEN", listen.as_str()),
        ("SHIPGATE_SHUTDOWN__DRAIN_DELAY_MS", "1000"),
        // The load comes from one key faster than its default quota.
        ("SHIPGATE_RATE_LIMITS__ENABLED", "false"),
    ];
    let mut old = Server::start(&url, dir.path(), "old.log", &env);
    let address = old.address.clone();
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{address}/v1/waybills"))
        .bearer_auth(&key)
        .json(&waybill_request("PO-SWAP-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // Continuous load from 8 clients: reads of the waybill and its tracking.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counts = Arc::new(Mutex::new((0_u64, Vec::<String>::new())));
    let load: Vec<_> = (0..8)
        .map(|i| {
            let (stop, counts) = (stop.clone(), counts.clone());
            let (address, key) = (address.clone(), key.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let path = if i % 2 == 0 { "waybills" } else { "tracking" };
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let res = client
                        .get(format!("{address}/v1/{path}/PO-SWAP-1"))
                        .bearer_auth(&key)
                        .send()
                        .await;
                    let mut c = counts.lock().unwrap();
                    match res {
                        Ok(r) if r.status() == 200 => c.0 += 1,
                        Ok(r) => c.1.push(format!("status {}", r.status())),
                        Err(e) => c.1.push(format!("{e:?}")),
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    // The new release binds the same port beside the old one, then the old one is told to go.
    let _new = Server::start(&url, dir.path(), "new.log", &env);
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigterm(&old);
    let status = wait_exit(&mut old, Duration::from_secs(15));
    assert!(status.success(), "{status}");
    let before = counts.lock().unwrap().0;
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    let (ok, failed) = counts.lock().unwrap().clone();
    assert!(
        failed.is_empty(),
        "{} failed requests: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        ok > before && before > 100,
        "ok {ok}, before the old one left {before}"
    );
}
