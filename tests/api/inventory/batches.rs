//! Concurrent allocations are placed in shared batches, yet each gets its own answer: repeats
//! of one id answer with the first allocation, an id used with other lines is refused, a
//! refusal (no stock, unknown SKU, another tenant's SKU) leaves the others placed and its id
//! free for a later try.

use super::{assert_invariants, level, receive, set_up};
use crate::helpers::{Backend, Reply, TestApp, spawn_app, spawn_app_with};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

async fn allocate_as(app: &TestApp, key: &str, id: &str, sku: &str, quantity: i64) -> Reply {
    let body = json!({"allocationId": id, "lines": [{"sku": sku, "quantity": quantity}],
                      "destination": {"country": "US", "state": "NY"}});
    app.call(
        Method::POST,
        "/v1/inventory/allocations",
        "/v1/inventory/allocations",
        Some(key),
        Some(&body),
    )
    .await
}

async fn batches(apps: &[&TestApp]) {
    let first = apps[0];
    set_up(first, "BAT-1").await;
    assert_eq!(receive(first, "BAT-1", "US-EAST", 8).await.status, 201);
    let stranger = first.new_key("another-tenant").await;
    // (instance, key, id, sku, quantity)
    let mut asks: Vec<(usize, String, String, &str, i64)> = Vec::new();
    for i in 0..5 {
        for copy in 0..2 {
            asks.push((i + copy, first.key.clone(), format!("a-{i}"), "BAT-1", 1));
        }
    }
    asks.push((0, first.key.clone(), "x".into(), "BAT-1", 1));
    asks.push((1, first.key.clone(), "x".into(), "BAT-1", 2));
    asks.push((0, first.key.clone(), "big".into(), "BAT-1", 9));
    asks.push((1, first.key.clone(), "ghost".into(), "NOPE", 1));
    asks.push((2, stranger.clone(), "theirs".into(), "BAT-1", 1));
    let answers: Vec<Reply> = join_all(
        asks.iter()
            .map(|(at, key, id, sku, qty)| allocate_as(apps[at % apps.len()], key, id, sku, *qty)),
    )
    .await;
    let by_id = |id: &str| -> Vec<&Reply> {
        asks.iter()
            .zip(&answers)
            .filter(|(a, _)| a.2 == id)
            .map(|(_, r)| r)
            .collect()
    };
    for i in 0..5 {
        let pair = by_id(&format!("a-{i}"));
        let mut statuses: Vec<u16> = pair.iter().map(|r| r.status.as_u16()).collect();
        statuses.sort();
        assert_eq!(
            statuses,
            [200, 201],
            "a-{i}: {:?}",
            pair.iter().map(|r| &r.body).collect::<Vec<_>>()
        );
        assert_eq!(pair[0].body["allocation"], pair[1].body["allocation"]);
    }
    let x = by_id("x");
    let mut codes: Vec<(u16, String)> = x
        .iter()
        .map(|r| (r.status.as_u16(), r.error_code().to_owned()))
        .collect();
    codes.sort();
    assert_eq!(codes[0].0, 201, "{codes:?}");
    assert_eq!(codes[1], (409, "ID_CONFLICT".to_owned()), "{codes:?}");
    let x_won: i64 = x
        .iter()
        .find(|r| r.status == 201)
        .map(|r| allocated(&r.body))
        .unwrap_or_default();
    let code = |id: &str| {
        let r = by_id(id)[0];
        (r.status.as_u16(), r.error_code().to_owned())
    };
    assert_eq!(code("big"), (409, "INSUFFICIENT_STOCK".to_owned()));
    assert_eq!(code("ghost"), (400, "UNKNOWN_SKU".to_owned()));
    assert_eq!(
        code("theirs"),
        (400, "UNKNOWN_SKU".to_owned()),
        "another tenant does not see this tenant's SKU"
    );
    assert_eq!(
        level(first, "BAT-1", "US-EAST").await,
        (8, 5 + x_won, 3 - x_won)
    );
    // The refused ids were not kept: with stock they are placed now.
    assert_eq!(receive(first, "BAT-1", "US-EAST", 10).await.status, 201);
    let again = allocate_as(apps[apps.len() - 1], &first.key, "big", "BAT-1", 9).await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_invariants(first).await;
}

/// Units the answer reserved.
fn allocated(body: &Value) -> i64 {
    body["allocation"]["warehouses"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|w| w["lines"].as_array().into_iter().flatten())
        .filter_map(|l| l["quantity"].as_i64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_allocations_each_get_their_own_answer_on_sqlite() {
    let app = spawn_app(Backend::Sqlite).await;
    batches(&[&app]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_allocations_each_get_their_own_answer_across_instances_on_postgres() {
    crate::needs!(Postgres);
    let first = spawn_app(Backend::Postgres).await;
    let url = first.database_url.clone();
    let second = spawn_app_with(Backend::Postgres, |s| s.database_url = url.clone()).await;
    let third = spawn_app_with(Backend::Postgres, |s| s.database_url = url).await;
    batches(&[&first, &second, &third]).await;
}
