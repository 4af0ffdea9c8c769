//! No oversell: 100 concurrent orders for the last 10 units in 3 warehouses.

use super::{assert_invariants, level, receive, set_up};
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};
use futures_util::future::join_all;
use serde_json::json;

async fn race(apps: &[&TestApp]) {
    let first = apps[0];
    set_up(first, "LAST-10").await;
    for (warehouse, units) in [("SZ", 3), ("US-EAST", 3), ("US-WEST", 4)] {
        assert_eq!(
            receive(first, "LAST-10", warehouse, units).await.status,
            201
        );
    }
    let states = ["NY", "CA", "TX", "NJ"];
    let answers = join_all((0..100).map(|i| {
        let app = apps[i % apps.len()];
        async move {
            super::allocate(
                app,
                &format!("race-{i}"),
                json!([{"sku": "LAST-10", "quantity": 1}]),
                states[i % states.len()],
            )
            .await
        }
    }))
    .await;
    let won = answers.iter().filter(|r| r.status == 201).count();
    let refused = answers
        .iter()
        .filter(|r| r.status == 409 && r.error_code() == "INSUFFICIENT_STOCK")
        .count();
    assert_eq!(won, 10, "exactly the last 10 units are allocated");
    assert_eq!(
        refused,
        90,
        "every other order is refused: {:?}",
        answers
            .iter()
            .filter(|r| r.status != 201 && r.status != 409)
            .map(|r| &r.body)
            .collect::<Vec<_>>()
    );
    let mut reserved = 0;
    for warehouse in ["SZ", "US-EAST", "US-WEST"] {
        let (on_hand, held, available) = level(first, "LAST-10", warehouse).await;
        assert_eq!(available, 0, "{warehouse} gave everything it had");
        assert!(held <= on_hand);
        reserved += held;
    }
    assert_eq!(reserved, 10);
    assert_invariants(first).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_units_are_never_oversold_on_sqlite() {
    let app = spawn_app(Backend::Sqlite).await;
    race(&[&app]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_units_are_never_oversold_by_instances_side_by_side_on_postgres() {
    crate::needs!(Postgres);
    let first = spawn_app(Backend::Postgres).await;
    let url = first.database_url.clone();
    let second = spawn_app_with(Backend::Postgres, |s| s.database_url = url.clone()).await;
    let third = spawn_app_with(Backend::Postgres, |s| s.database_url = url).await;
    race(&[&first, &second, &third]).await;
}
