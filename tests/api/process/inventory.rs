//! SIGKILL in the middle of an allocation load: every acknowledged allocation is there with its
//! reservations, whatever was in flight settles to one allocation when retried, and no
//! reservation is left without its allocation and movement (`shipgate inventory verify`).

use super::*;

async fn call(
    client: &reqwest::Client,
    address: &str,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let res = client
        .request(method, format!("{address}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn allocation(id: &str) -> Value {
    serde_json::json!({"allocationId": id, "lines": [{"sku": "KILL-1", "quantity": 1}],
                       "destination": {"country": "US", "state": "CA"}})
}

/// Allocates until the server dies: (acknowledged ids, ids sent but not answered).
async fn allocate_until_killed(
    address: &str,
    key: &str,
    clients: usize,
    acked: Arc<Mutex<Vec<String>>>,
) -> (Vec<String>, Vec<String>) {
    let unanswered = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (acked, unanswered) = (acked.clone(), unanswered.clone());
            let (address, key) = (address.to_owned(), key.to_owned());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 0.. {
                    let id = format!("kill-{c}-{i}");
                    let res = client
                        .post(format!("{address}/v1/inventory/allocations"))
                        .bearer_auth(&key)
                        .json(&allocation(&id))
                        .send()
                        .await;
                    let answered = match res {
                        Ok(res) if res.status().as_u16() == 201 => {
                            res.json::<Value>().await.is_ok()
                        }
                        _ => false,
                    };
                    if answered {
                        acked.lock().unwrap().push(id);
                    } else {
                        unanswered.lock().unwrap().push(id);
                        return;
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

async fn sigkill_mid_allocations_loses_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("s.db").display()),
        Backend::Postgres => crate::helpers::fresh_postgres_database().await,
    };
    let key = create_key(&url, dir.path(), "acme");
    let env = [("SHIPGATE_RATE_LIMITS__ENABLED", "false")];
    let mut server = Server::start(&url, dir.path(), "first.log", &env);
    let client = reqwest::Client::new();
    let address = server.address.clone();
    for (code, state) in [("SZ", "GD"), ("US-EAST", "NY"), ("US-WEST", "CA")] {
        let (status, body) = call(
            &client,
            &address,
            &key,
            reqwest::Method::PUT,
            &format!("/v1/inventory/warehouses/{code}"),
            serde_json::json!({"country": if code == "SZ" { "CN" } else { "US" }, "state": state}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    call(
        &client,
        &address,
        &key,
        reqwest::Method::PUT,
        "/v1/inventory/skus/KILL-1",
        serde_json::json!({}),
    )
    .await;
    for code in ["SZ", "US-EAST", "US-WEST"] {
        let (status, _) = call(&client, &address, &key, reqwest::Method::POST, "/v1/inventory/movements",
            serde_json::json!({"type": "RECEIVE", "sku": "KILL-1", "warehouse": code, "quantity": 100_000})).await;
        assert_eq!(status, 201);
    }

    let progress = Arc::new(Mutex::new(Vec::new()));
    let load = tokio::spawn({
        let (address, key, progress) = (address.clone(), key.clone(), progress.clone());
        async move { allocate_until_killed(&address, &key, 8, progress).await }
    });
    // Killed in the middle of the load, once it is well under way (a loaded machine is slow).
    let deadline = Instant::now() + Duration::from_secs(30);
    while progress.lock().unwrap().len() < 40 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill();
    let (acked, unanswered) = load.await.unwrap();
    assert!(
        acked.len() > 20,
        "the load made too little progress: {}",
        acked.len()
    );

    let restarted = Server::start(&url, dir.path(), "second.log", &env);
    for id in &acked {
        let (status, body) = call(
            &client,
            &restarted.address,
            &key,
            reqwest::Method::GET,
            &format!("/v1/inventory/allocations/{id}"),
            Value::Null,
        )
        .await;
        assert_eq!(status, 200, "acknowledged {id} lost");
        assert_eq!(body["allocation"]["state"], "ACTIVE");
        assert_eq!(
            body["allocation"]["warehouses"][0]["lines"][0]["quantity"],
            1
        );
    }
    // What was in flight at the kill is either there or not at all: a retry makes it once.
    for id in &unanswered {
        let (status, body) = call(
            &client,
            &restarted.address,
            &key,
            reqwest::Method::POST,
            "/v1/inventory/allocations",
            allocation(id),
        )
        .await;
        assert!(status == 200 || status == 201, "{id}: {status} {body}");
    }
    let settled = (acked.len() + unanswered.len()) as i64;
    let (_, sku) = call(
        &client,
        &restarted.address,
        &key,
        reqwest::Method::GET,
        "/v1/inventory/skus/KILL-1",
        Value::Null,
    )
    .await;
    assert_eq!(
        sku["totals"]["reserved"], settled,
        "one unit reserved per allocation, none orphaned"
    );
    assert_eq!(sku["totals"]["onHand"], 300_000);

    let out = shipgate(&url, dir.path())
        .args(["inventory", "verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_allocations_loses_nothing_on_sqlite() {
    sigkill_mid_allocations_loses_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_allocations_loses_nothing_on_postgres() {
    crate::needs!(Postgres);
    sigkill_mid_allocations_loses_nothing(Backend::Postgres).await;
}
