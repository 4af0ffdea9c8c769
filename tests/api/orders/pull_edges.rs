//! The pull connector's edge test: a mock Shopify whose orders are updated 1 ms apart while
//! the shop is pulled over 100 windows (filters of second precision, pages of 250, the next
//! window overlapping the last): every order arrives once, none is lost or doubled.

use super::call;
use super::channels::{connect, fixture};
use crate::helpers::{Backend, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[derive(Clone)]
struct Catalog {
    /// (id, updated at ms), in the order they were made.
    orders: Arc<Mutex<Vec<(u64, i64)>>>,
    template: Value,
    base: String,
}

fn ms(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.timestamp_millis())
}

impl Respond for Catalog {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let q: std::collections::HashMap<String, String> =
            req.url.query_pairs().into_owned().collect();
        let (min, max, offset) = match q.get("page_info") {
            Some(p) => {
                let v: Vec<i64> = p.split('_').filter_map(|x| x.parse().ok()).collect();
                (v[0], v[1], v[2] as usize)
            }
            None => (
                q.get("updated_at_min")
                    .and_then(|t| ms(t))
                    .unwrap_or(i64::MIN),
                q.get("updated_at_max")
                    .and_then(|t| ms(t))
                    .unwrap_or(i64::MAX),
                0,
            ),
        };
        let all = self.orders.lock().unwrap();
        let mut window: Vec<(u64, i64)> = all
            .iter()
            .copied()
            .filter(|(_, t)| *t >= min && *t <= max)
            .collect();
        window.sort_by_key(|(id, t)| (*t, *id));
        let page: Vec<Value> = window
            .iter()
            .skip(offset)
            .take(250)
            .map(|(id, t)| {
                let mut o = self.template.clone();
                o["id"] = json!(id);
                o["name"] = json!(format!("#{id}"));
                o["updated_at"] = json!(
                    chrono::DateTime::from_timestamp_millis(*t)
                        .unwrap()
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                );
                o
            })
            .collect();
        let mut answer = ResponseTemplate::new(200).set_body_json(json!({"orders": page}));
        if window.len() > offset + 250 {
            answer = answer.insert_header(
                "Link",
                format!("<{}/admin/api/2025-07/orders.json?page_info={min}_{max}_{}&limit=250>; rel=\"next\"", self.base, offset + 250),
            );
        }
        answer
    }
}

async fn orders_one_millisecond_apart_across_100_windows_arrive_once(backend: Backend) {
    let mock = MockServer::start().await;
    let list: Value = serde_json::from_str(&fixture(
        "shopify",
        "rest_2025-07_GET_orders_status_any.json",
    ))
    .unwrap();
    let catalog = Catalog {
        orders: Arc::default(),
        template: list["orders"][0].clone(),
        base: mock.uri(),
    };
    Mock::given(wiremock::matchers::path("/admin/api/2025-07/orders.json"))
        .respond_with(catalog.clone())
        .mount(&mock)
        .await;
    let app = spawn_app_with(backend, |s| {
        s.orders.allow_private_channels = true;
        s.orders.batch = 1;
    })
    .await;
    connect(
        &app,
        "shopify",
        "edge.myshopify.com",
        json!({
        "baseUrl": mock.uri(), "credentials": {"accessToken": "t"}, "overlapSecs": 1}),
    )
    .await;
    // Around each window's end, a burst of orders updated 1 ms apart: the pull's `to` falls
    // inside it, so orders land just before, at and just after every boundary.
    let burst = |orders: Arc<Mutex<Vec<(u64, i64)>>>, first: u64| {
        tokio::spawn(async move {
            let mut last = 0;
            for i in 0..24 {
                let now = chrono::Utc::now().timestamp_millis();
                let at = now.max(last + 1);
                last = at;
                orders.lock().unwrap().push((first + i, at));
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        })
    };
    let pull = || async {
        let r = call(
            &app,
            Method::POST,
            "/v1/order-shops/shopify/edge.myshopify.com/pull",
            "/v1/order-shops/{channel}/{shop}/pull",
            None,
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.body);
        app.jobs.as_ref().unwrap().pull_orders().await;
    };
    for window in 0..100u64 {
        let making = burst(
            catalog.orders.clone(),
            9_000_000_000_000_000_000 + window * 100,
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        pull().await;
        making.await.unwrap();
    }
    // Past the last order's second, one more window.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    pull().await;
    let made = catalog.orders.lock().unwrap().len() as i64;
    assert_eq!(made, 2400);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM ord_orders").await,
        made,
        "lost orders"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM ord_versions").await,
        made,
        "doubled orders"
    );
    let windows = mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.query().is_some_and(|q| q.contains("updated_at_min")))
        .count();
    assert!(windows >= 101, "{windows} windows");
}

crate::on_both_databases!(orders_one_millisecond_apart_across_100_windows_arrive_once);
