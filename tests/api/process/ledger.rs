//! SIGKILL in the middle of posting: every acknowledged transfer is there, a batch in flight at
//! the kill posts once when retried (never twice, never half a batch), the waybill charges the
//! ledger feed was posting are each there exactly once after the restart, and
//! `shipgate ledger verify` finds every account equal to its transfers.

use super::*;

fn transfers(batch: &str) -> Value {
    let list: Vec<Value> = (0..20)
        .map(|i| {
            serde_json::json!({"id": format!("{batch}-{i}"), "debitAccount": "cash:USD",
                               "creditAccount": "equity:USD", "amount": 1 + i, "linked": i % 5 != 4})
        })
        .collect();
    serde_json::json!({ "transfers": list })
}

async fn post_until_killed(
    address: String,
    key: String,
    c: usize,
    acked: Arc<Mutex<Vec<String>>>,
) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut unanswered = Vec::new();
    for i in 0.. {
        let batch = format!("k{c}-{i}");
        let res = client
            .post(format!("{address}/v1/ledger/transfer-batches"))
            .bearer_auth(&key)
            .json(&transfers(&batch))
            .send()
            .await;
        let answered = match res {
            Ok(r) if r.status().as_u16() == 200 => r.json::<Value>().await.is_ok(),
            _ => false,
        };
        if answered {
            acked.lock().unwrap().push(batch);
        } else {
            unanswered.push(batch);
            break;
        }
        // Waybills too, so the ledger feed is posting charges when the kill comes.
        let _ = client
            .post(format!("{address}/v1/waybills"))
            .bearer_auth(&key)
            .json(&waybill_request(&format!("LEDGER-{c}-{i}")))
            .send()
            .await;
    }
    unanswered
}

async fn sigkill_mid_posting_posts_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("s.db").display()),
        Backend::Postgres => crate::helpers::fresh_postgres_database().await,
    };
    let key = create_key(&url, dir.path(), "acme");
    let env = [("SHIPGATE_RATE_LIMITS__ENABLED", "false")];
    let mut server = Server::start(&url, dir.path(), "first.log", &env);
    let client = reqwest::Client::new();
    for (id, kind) in [("cash:USD", "asset"), ("equity:USD", "equity")] {
        let r = client
            .put(format!("{}/v1/ledger/accounts/{id}", server.address))
            .bearer_auth(&key)
            .json(&serde_json::json!({"currency": "USD", "kind": kind}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let acked = Arc::new(Mutex::new(Vec::new()));
    let load: Vec<_> = (0..4)
        .map(|c| {
            tokio::spawn(post_until_killed(
                server.address.clone(),
                key.clone(),
                c,
                acked.clone(),
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill();
    let mut unanswered = Vec::new();
    for t in load {
        unanswered.extend(t.await.unwrap());
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 10,
        "the load made too little progress: {}",
        acked.len()
    );

    let restarted = Server::start(&url, dir.path(), "second.log", &env);
    for batch in &acked {
        let r = client
            .get(format!(
                "{}/v1/ledger/transfers/{batch}-19",
                restarted.address
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "acknowledged {batch} lost");
    }
    for batch in &unanswered {
        let r = client
            .post(format!("{}/v1/ledger/transfer-batches", restarted.address))
            .bearer_auth(&key)
            .json(&transfers(batch))
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        let results = body["results"].as_array().expect("results");
        let kinds: std::collections::HashSet<&str> = results
            .iter()
            .filter_map(|x| x["result"].as_str())
            .collect();
        assert!(
            kinds.len() == 1 && !kinds.contains("failed"),
            "{batch}: all or nothing, once: {body}"
        );
    }
    let expected: i64 = (acked.len() + unanswered.len()) as i64 * (1..=20).sum::<i64>();
    let cash = client
        .get(format!("{}/v1/ledger/accounts/cash:USD", restarted.address))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(cash["account"]["balance"], expected, "every batch once");

    // The feed catches up after the restart: one charge per created waybill.
    let started = Instant::now();
    loop {
        let out = shipgate(&url, dir.path())
            .args(["ledger", "verify"])
            .output()
            .unwrap();
        let charges = client
            .get(format!(
                "{}/v1/ledger/accounts/accounts_receivable.shipping:USD",
                restarted.address
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let mut created = 0i64;
        let mut quoted = 0i64;
        for c in 0..4 {
            for i in 0..1000 {
                let r = client
                    .get(format!(
                        "{}/v1/waybills?referenceNumber=LEDGER-{c}-{i}",
                        restarted.address
                    ))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap();
                if r.status().as_u16() != 200 {
                    break;
                }
                let w: Value = r.json().await.unwrap();
                if let Some(amount) = w["charge"]["amount"].as_str() {
                    created += 1;
                    quoted += shipgate::finance::money::to_minor(amount, "USD").unwrap();
                }
            }
        }
        if charges["account"]["balance"] == quoted && out.status.success() {
            assert!(created > 0);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "receivable {} != {quoted} quoted over {created} waybills; verify: {}",
            charges["account"]["balance"],
            String::from_utf8_lossy(&out.stdout)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_posting_posts_everything_once_on_sqlite() {
    sigkill_mid_posting_posts_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_posting_posts_everything_once_on_postgres() {
    crate::needs!(Postgres);
    sigkill_mid_posting_posts_once(Backend::Postgres).await;
}
