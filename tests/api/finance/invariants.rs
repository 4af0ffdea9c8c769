//! The ledger's invariants under concurrent random posting: several workers (several instances
//! on PostgreSQL) post random batches — one-phase, pending, posts and voids of earlier holds,
//! linked chains, transfers across currencies that must fail — and afterwards every account's
//! counters equal its transfers, no limited account is beyond its limit, debits equal credits
//! in every currency, and every transfer reported created is stored.

use super::{assert_ledger_holds, batch, open};
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_on};
use futures_util::future::join_all;
use serde_json::{Value, json};

const ACCOUNTS: [(&str, &str, Option<&str>); 5] = [
    ("cash", "asset", Some("creditsMustNotExceedDebits")),
    ("equity", "equity", None),
    ("revenue", "revenue", None),
    ("fees", "expense", None),
    ("payable", "liability", Some("debitsMustNotExceedCredits")),
];

/// A small deterministic generator (xorshift), seeded per worker.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn account(&mut self) -> String {
        let (name, ..) = ACCOUNTS[self.below(ACCOUNTS.len() as u64) as usize];
        let currency = if self.below(10) == 0 { "JPY" } else { "USD" };
        format!("{name}:{currency}")
    }
}

/// One worker's batches; how many transfers it was told were created.
async fn worker(app: &TestApp, seed: u64, batches: usize) -> usize {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut holds: Vec<String> = Vec::new();
    let mut created = 0;
    for b in 0..batches {
        let mut transfers: Vec<Value> = Vec::new();
        for i in 0..20 {
            let id = format!("w{seed}-b{b}-t{i}");
            let roll = rng.below(10);
            let mut t = if roll < 2 && !holds.is_empty() {
                let pending = holds.swap_remove(rng.below(holds.len() as u64) as usize);
                let kind = if rng.below(2) == 0 {
                    "post_pending"
                } else {
                    "void_pending"
                };
                json!({"id": id, "kind": kind, "pendingId": pending})
            } else {
                let (debit, mut credit) = (rng.account(), rng.account());
                if credit == debit {
                    credit = if debit.starts_with("equity") {
                        "cash:USD".into()
                    } else {
                        "equity:USD".into()
                    };
                }
                let mut t = json!({"id": id, "debitAccount": debit, "creditAccount": credit,
                                   "amount": 1 + rng.below(500)});
                if roll < 4 {
                    t["kind"] = json!("pending");
                    holds.push(id.clone());
                }
                t
            };
            // Some chains of two or three.
            if i < 19 && rng.below(5) == 0 {
                t["linked"] = json!(true);
            }
            transfers.push(t);
        }
        let r = batch(app, Value::Array(transfers)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        created += r.body["results"]
            .as_array()
            .expect("results")
            .iter()
            .filter(|x| x["result"] == "created")
            .count();
    }
    created
}

async fn random_posting_keeps_the_ledger(apps: &[&TestApp], workers: usize) {
    let first = apps[0];
    for currency in ["USD", "JPY"] {
        for (name, kind, limit) in ACCOUNTS {
            let r = open(first, &format!("{name}:{currency}"), currency, kind, limit).await;
            assert_eq!(r.status, 201, "{}", r.body);
        }
    }
    // Fund cash and payable so limited accounts have room to move.
    let funding = batch(
        first,
        json!([
            {"id": "seed-usd", "debitAccount": "cash:USD", "creditAccount": "equity:USD", "amount": 50_000},
            {"id": "seed-jpy", "debitAccount": "cash:JPY", "creditAccount": "equity:JPY", "amount": 50_000},
            {"id": "seed-pay", "debitAccount": "fees:USD", "creditAccount": "payable:USD", "amount": 20_000},
        ]),
    )
    .await;
    assert_eq!(funding.status, 200);
    let created: usize =
        join_all((0..workers).map(|w| worker(apps[w % apps.len()], w as u64 + 1, 8)))
            .await
            .into_iter()
            .sum();
    assert!(created > 100, "most random transfers post: {created}");
    let stored = first.count("SELECT COUNT(*) FROM fin_transfers").await;
    assert_eq!(
        stored,
        created as i64 + 3,
        "every created transfer is stored, once"
    );
    let refused_across = first
        .count("SELECT COUNT(*) FROM fin_transfers WHERE currency NOT IN ('USD', 'JPY')")
        .await;
    assert_eq!(refused_across, 0);
    assert_ledger_holds(first).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_concurrent_posting_keeps_the_ledger_on_sqlite() {
    let app = spawn_app(Backend::Sqlite).await;
    random_posting_keeps_the_ledger(&[&app], 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_concurrent_posting_by_three_instances_keeps_the_ledger_on_postgres() {
    crate::needs!(Postgres);
    let first = spawn_app(Backend::Postgres).await;
    let url = first.database_url.clone();
    let second = spawn_app_on(Backend::Postgres, url.clone(), |_| {}).await;
    let third = spawn_app_on(Backend::Postgres, url, |_| {}).await;
    random_posting_keeps_the_ledger(&[&first, &second, &third], 9).await;
}
