//! The tracking cache and the shared rate limits on a Redis Cluster (three masters with a replica
//! each): answers and their version keys share a slot, copies held in memory follow a push made
//! through another instance, a key's quota is shared, and a master failing over keeps queries
//! answered.

use super::*;
use redis::AsyncCommands;

fn on_cluster(url: &str) -> impl Fn(&mut Settings) + '_ {
    move |s: &mut Settings| {
        pushes(s);
        s.redis_url = Some(url.to_owned());
        s.redis_cluster = true;
    }
}

async fn cluster_conn(url: &str) -> redis::cluster_async::ClusterConnection {
    let nodes: Vec<&str> = url.split(',').collect();
    redis::cluster::ClusterClient::new(nodes)
        .expect("cluster client")
        .get_async_connection()
        .await
        .expect("cluster connection")
}

async fn slot(conn: &mut redis::cluster_async::ClusterConnection, key: &str) -> i64 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(conn)
        .await
        .expect("keyslot")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_and_quotas_live_on_the_cluster() {
    crate::needs!(RedisCluster);
    let url = std::env::var("TEST_REDIS_CLUSTER_URL").unwrap();
    let first = spawn_app_with(Backend::Sqlite, on_cluster(&url)).await;
    let database = first.database_url.clone();
    let second = spawn_app_with(Backend::Sqlite, |s| {
        on_cluster(&url)(s);
        s.database_url = database;
    })
    .await;
    let number = first.created("TRK-CLUSTER", "SANDBOX_LINEHAUL_US").await;
    let key = second.new_key("acme").await;
    for _ in 0..3 {
        let r = second.tracking(&key, &number).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["trackingStatus"], "INFO_RECEIVED");
    }
    // The answer is in the cluster, beside its version in one slot.
    let mut conn = cluster_conn(&url).await;
    let answer = shipgate::tracking::cache::key(&second.tenant_id, &number);
    let version = shipgate::tracking::cache::version_key(&answer);
    let stored: Option<Vec<u8>> = conn.get(&answer).await.expect("GET");
    assert!(stored.is_some(), "the answer is cached in the cluster");
    let v: Option<i64> = conn.get(&version).await.expect("GET version");
    assert!(v.is_some());
    assert_eq!(
        slot(&mut conn, &answer).await,
        slot(&mut conn, &version).await
    );

    // A push taken by the other instance reaches this one's copy.
    let body = json!({"waybillNumber": number, "events": [event("PU", &later(1, 8))]});
    assert_eq!(
        first
            .push_sandbox("cl-1", now(), &body, SECRET)
            .await
            .status,
        200
    );
    wait_until("the other instance to drop its old answer", 5, || async {
        let r = second.tracking(&key, &number).await;
        (r.body["trackingStatus"] == "PICKED_UP").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_a_keys_quota_through_the_cluster() {
    crate::needs!(RedisCluster);
    let url = std::env::var("TEST_REDIS_CLUSTER_URL").unwrap();
    let quota = |s: &mut Settings| {
        on_cluster(&url)(s);
        s.rate_limits.tenants.insert(
            "acme".into(),
            shipgate::settings::Quota {
                per_second: 1,
                burst: 4,
            },
        );
    };
    let first = spawn_app_with(Backend::Sqlite, quota).await;
    let database = first.database_url.clone();
    let second = spawn_app_with(Backend::Sqlite, |s| {
        quota(s);
        s.database_url = database;
    })
    .await;
    let (mut admitted, mut refused) = (0, 0);
    for i in 0..12 {
        let app = if i % 2 == 0 { &first } else { &second };
        match app
            .get_waybill(&first.key, "SBX-NONE")
            .await
            .status
            .as_u16()
        {
            404 => admitted += 1,
            429 => refused += 1,
            other => panic!("{other}"),
        }
    }
    assert!(
        (4..=5).contains(&admitted),
        "{admitted} admitted across both"
    );
    assert_eq!(admitted + refused, 12);
}

/// A cluster of this test's own (it kills one of its masters), stopped on drop.
struct OwnCluster {
    dir: tempfile::TempDir,
    url: String,
}

impl OwnCluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let scripts = format!("{}/scripts/lib", env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                ". {scripts}/services.sh && . {scripts}/redis_cluster.sh && \
                 redis_cluster_start \"$1\" >/dev/null && echo \"$TEST_REDIS_CLUSTER_URL\""
            ))
            .arg("cluster")
            .arg(dir.path())
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Self { dir, url }
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let scripts = format!("{}/scripts/lib", env!("CARGO_MANIFEST_DIR"));
        let _ = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                ". {scripts}/redis_cluster.sh && redis_cluster_stop \"$1\""
            ))
            .arg("cluster")
            .arg(self.dir.path())
            .status();
    }
}

/// The `host:port` of the master serving `slot`, from CLUSTER NODES.
async fn master_of(conn: &mut redis::cluster_async::ClusterConnection, slot: i64) -> String {
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(conn)
        .await
        .expect("nodes");
    nodes
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let master = fields.get(2)?.contains("master") && !fields[2].contains("fail");
            let serves = fields.iter().skip(8).any(|range| {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                matches!((a.parse::<i64>(), b.parse::<i64>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
            });
            (master && serves).then(|| fields[1].split('@').next().unwrap_or("").to_owned())
        })
        .expect("a master serves the slot")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_failing_over_keeps_queries_answered() {
    crate::needs!(RedisBinary);
    let cluster = OwnCluster::start();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        on_cluster(&cluster.url)(s);
        s.tracking.redis_timeout_ms = 200;
        s.tracking.redis_breaker_open_ms = 200;
    })
    .await;
    let number = app.created("TRK-FAILOVER", "SANDBOX_LINEHAUL_US").await;
    let key = app.new_key("acme").await;
    assert_eq!(app.tracking(&key, &number).await.status, 200);
    let mut conn = cluster_conn(&cluster.url).await;
    let answer = shipgate::tracking::cache::key(&app.tenant_id, &number);
    let slot = slot(&mut conn, &answer).await;
    let master = master_of(&mut conn, slot).await;
    let port = master.rsplit(':').next().unwrap().to_owned();
    // The master goes away without a word; its replica takes over after the node timeout.
    let _ = std::process::Command::new("redis-cli")
        .args(["-p", &port, "shutdown", "nosave"])
        .status();

    // Every query is answered meanwhile (from the database while the slot has no master).
    let body = json!({"waybillNumber": number, "events": [event("PU", &later(1, 8))]});
    assert_eq!(
        app.push_sandbox("fo-1", now(), &body, SECRET).await.status,
        200
    );
    let promoted = std::cell::Cell::new(false);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !promoted.get() {
        assert!(
            std::time::Instant::now() < deadline,
            "no replica took over the slot"
        );
        let r = app.tracking(&key, &number).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["trackingStatus"], "PICKED_UP", "never an old answer");
        let mut fresh = cluster_conn(&cluster.url).await;
        let owner = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async::<String>(&mut fresh)
            .await
            .unwrap_or_default();
        promoted.set(owner.lines().any(|l| {
            l.contains("master") && !l.contains("fail") && !l.contains(&master)
                && l.split_whitespace().skip(8).any(|r| {
                    let (a, b) = r.split_once('-').unwrap_or((r, r));
                    matches!((a.parse::<i64>(), b.parse::<i64>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
                })
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The new master serves the slot: the answer is written there again and read from it.
    app.wait_for("the answer back in the cluster", 30, || async {
        let mut conn = cluster_conn(&cluster.url).await;
        let stored: Vec<u8> = conn.get::<_, Option<Vec<u8>>>(&answer).await.ok()??;
        let stored = shipgate::tracking::unpack_answer(stored.into())?;
        let r = app.tracking(&key, &number).await;
        (String::from_utf8_lossy(&stored).contains("PICKED_UP")
            && r.body["trackingStatus"] == "PICKED_UP")
            .then_some(())
    })
    .await;
}
