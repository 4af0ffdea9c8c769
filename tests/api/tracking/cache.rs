//! The Redis cache: outages fall back to the database and recover; instances follow each other's pushes.

use super::*;

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

    /// The answer stored under `key`, unpacked.
    async fn get(&self, key: &str) -> Option<String> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let stored = redis::cmd("GET")
            .arg(key)
            .query_async::<Option<Vec<u8>>>(&mut conn)
            .await
            .ok()??;
        stored_answer(stored)
    }
}

/// An answer as Redis holds it (packed), as text.
fn stored_answer(stored: Vec<u8>) -> Option<String> {
    let body = shipgate::tracking::unpack_answer(stored.into())?;
    Some(String::from_utf8(body.to_vec()).expect("an answer is UTF-8"))
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
    // Hardening: until the missed answer is rewritten, batch queries too are answered from the
    // database, never from Redis's older copy.
    let batch = app
        .call(
            Method::POST,
            "/v1/tracking/query",
            "/v1/tracking/query",
            Some(&app.key),
            Some(&json!({ "numbers": [number] })),
        )
        .await;
    assert_eq!(
        batch.body["results"][0]["tracking"]["trackingStatus"], "PICKED_UP",
        "{}",
        batch.body
    );
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

/// Hardening: a tenant cannot switch the Redis cache off for everyone by choosing references
/// that name each other's keys (`R1` and `R1:v`), nor with a version key holding anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reference_can_break_the_cache_for_other_tenants() {
    crate::needs!(Redis);
    let app = spawn_app_with(Backend::Sqlite, |s| {
        pushes(s);
        s.redis_url = Some(redis_url());
    })
    .await;
    let r1 = app.created("R1", "SANDBOX_EXPRESS").await;
    let r1v = app.created("R1:v", "SANDBOX_EXPRESS").await;
    for number in ["R1", "R1:v", r1.as_str(), r1v.as_str()] {
        assert_eq!(app.tracking(&app.key, number).await.status, 200);
    }
    // A refresh of R1 (a cancel rewrites its answer) must not trip the cache.
    let cancelled = app
        .call(
            Method::POST,
            &format!("/v1/waybills/{r1}/cancel"),
            "/v1/waybills/{number}/cancel",
            Some(&app.key),
            None,
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let redis = redis::Client::open(redis_url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let reader = conn.clone();
    let get = |key: String| {
        let mut conn = reader.clone();
        async move {
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<Vec<u8>>>(&mut conn)
                .await
                .unwrap()
                .and_then(stored_answer)
        }
    };
    let r1_key = shipgate::tracking::cache::key(&app.tenant_id, "R1");
    assert!(
        get(r1_key).await.is_some_and(|b| b.contains("CANCELLED")),
        "the cancelled answer is in Redis"
    );

    // Another tenant's queries are still filled into and served from Redis.
    let other = app.new_key("globex").await;
    let mut req = waybill_request("GLOBEX-1");
    req["channel"] = json!("SANDBOX_EXPRESS");
    let theirs = app.create_as(&other, &req).await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    let number = theirs.waybill_number().to_owned();
    assert_eq!(app.tracking(&other, &number).await.status, 200);
    // globex's test data lives under its own row, whose account is globex.
    let tenant: String = sqlx::query_scalar(
        "SELECT t.id FROM tenants t JOIN tenants a ON a.id = t.account_id \
         WHERE a.name = 'globex' AND t.mode = 'test'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let their_key = shipgate::tracking::cache::key(&tenant, &number);
    assert!(get(their_key.clone()).await.is_some(), "filled in Redis");

    // A version key holding something that is not a number counts as absent.
    let _: () = redis::cmd("SET")
        .arg(shipgate::tracking::cache::version_key(&their_key))
        .arg("{\"not\":\"a version\"}")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(&their_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(app.tracking(&other, &number).await.status, 200);
    assert!(
        get(their_key).await.is_some(),
        "written over the bad version"
    );
}

/// Hardening: instances side by side without Redis never serve an answer, or a replay of a
/// created waybill, older than the configured bound (1 s by default) after another instance
/// stored a newer event or cancelled the waybill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_without_redis_never_serve_old_answers_for_long() {
    let first = spawn_app_with(Backend::Sqlite, pushes).await;
    let url = first.database_url.clone();
    let second = spawn_app_with(Backend::Sqlite, |s| {
        pushes(s);
        s.database_url = url;
    })
    .await;
    let key = second.new_key("acme").await;
    let number = first.created("TRK-STALE-1", "SANDBOX_LINEHAUL_US").await;
    assert_eq!(
        first.tracking(&first.key, &number).await.body["trackingStatus"],
        "INFO_RECEIVED"
    );
    let body = json!({"waybillNumber": number, "events": [event("PU", &later(1, 8))]});
    assert_eq!(
        second
            .push_sandbox("stale-1", now(), &body, SECRET)
            .await
            .status,
        200
    );
    wait_until("the first instance to see the pickup", 3, || async {
        let r = first.tracking(&first.key, &number).await;
        (r.body["trackingStatus"] == "PICKED_UP").then_some(())
    })
    .await;

    // A replay on the first instance follows a cancel made on the second.
    let mut req = waybill_request("TRK-STALE-2");
    req["channel"] = json!("SANDBOX_EXPRESS");
    assert_eq!(first.create(&req).await.status, 201);
    assert_eq!(first.create(&req).await.body["state"], "created");
    let cancelled = second
        .call(
            Method::POST,
            "/v1/waybills/TRK-STALE-2/cancel",
            "/v1/waybills/{number}/cancel",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    wait_until(
        "the first instance's replay to show the cancel",
        3,
        || async {
            let r = first.create(&req).await;
            (r.body["state"] == "cancelled").then_some(())
        },
    )
    .await;
}

fn shared_cache(url: &str, max_age: Duration) -> shipgate::tracking::cache::Cache {
    shipgate::tracking::cache::Cache::new(&shipgate::tracking::cache::CacheConfig {
        redis_url: Some(url.to_owned()),
        redis_cluster: false,
        client_cache_keys: 1000,
        ttl: Duration::from_secs(600),
        local_ttl: max_age,
        local_capacity: 100,
        timeout: Duration::from_secs(2),
        breaker_failures: 3,
        breaker_open: Duration::from_secs(1),
    })
    .unwrap()
}

/// Reliability: a read in flight while another instance writes can take Redis's invalidation
/// before its own answer lands in process memory, and so keep an old answer there. Such a copy
/// is served for `tracking.local_max_staleness_ms` at most, never until the key is written again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_missed_its_invalidation_is_not_served_for_long() {
    use shipgate::tracking::cache::{Lookup, key};
    crate::needs!(Redis);
    let max_age = Duration::from_millis(400);
    let reader = std::sync::Arc::new(shared_cache(&redis_url(), max_age));
    let writer = shared_cache(&redis_url(), max_age);
    let tenant = format!("race{}", uuid::Uuid::new_v4().simple());
    let keys: Vec<String> = (0..8).map(|i| key(&tenant, &format!("N{i}"))).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let (reader, keys, stop) = (reader.clone(), keys.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for k in &keys {
                        let _ = reader.get(k).await;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    let last = 60;
    for version in 1..=last {
        for (i, k) in keys.iter().enumerate() {
            let body = bytes::Bytes::from(format!("answer {version}"));
            writer
                .put_tracked(&format!("w{i}"), std::slice::from_ref(k), version, &body)
                .await;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    let expected = format!("answer {last}");
    let started = Instant::now();
    let stale = wait_until("every copy to show the last write", 10, || async {
        let mut stale = Vec::new();
        for k in &keys {
            match reader.get(k).await {
                Lookup::Hit(b) if b == expected.as_bytes() => {}
                Lookup::Hit(b) => stale.push(String::from_utf8_lossy(&b).into_owned()),
                _ => stale.push("no answer".into()),
            }
        }
        stale.is_empty().then_some(started.elapsed())
    })
    .await;
    assert!(
        stale <= max_age * 3,
        "a stale copy was served for {stale:?}"
    );
}
