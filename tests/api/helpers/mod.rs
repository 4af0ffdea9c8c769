//! `spawn_app`: the real server on port 0 over a fresh SQLite file or a fresh PostgreSQL
//! database, with typed helpers. Every response a helper sees is checked against the OpenAPI
//! document in `schemas/`, so the contract cannot drift silently.
#![allow(dead_code)]

pub mod contract;
pub mod pdf;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shipgate::settings::Settings;
use shipgate::startup::Application;
use shipgate::store::Db;
use sqlx::{Connection, Executor};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: Db,
    pub sandbox: Arc<carriers::sandbox::SandboxCarrier>,
    pub key: String,
    pub tenant_id: String,
    pub database_url: String,
    pub tracking: shipgate::tracking::TrackingService,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// The Redis server the test command started (`TEST_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .expect("TEST_REDIS_URL is not set: run the suite with scripts/test.sh, which starts Redis")
}

/// The PostgreSQL server the test command started (`TEST_POSTGRES_URL`, a maintenance database).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").expect(
        "TEST_POSTGRES_URL is not set: run the suite with scripts/test.sh, which starts PostgreSQL",
    )
}

/// A new, empty database on the test PostgreSQL server.
pub async fn fresh_postgres_database() -> String {
    let admin = postgres_admin_url();
    sqlx::any::install_default_drivers();
    let name = format!("sg_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("connect to TEST_POSTGRES_URL");
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create test database");
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

pub fn test_settings(backend_url: String) -> Settings {
    let mut s = Settings {
        listen: "127.0.0.1:0".into(),
        database_url: backend_url,
        database_pool_size: 8,
        ..Settings::default()
    };
    s.http.workers = 2;
    s.carriers.sandbox.slow_ms = 400;
    s
}

/// Sandbox parcels move at 200,000× (the 73-hour journey takes about 1.3 s) and are polled often.
pub fn fast_sandbox(s: &mut Settings) {
    s.carriers.sandbox.clock_speed = 200_000.0;
    let p = &mut s.tracking.polling;
    p.tick_ms = 100;
    p.first_ms = 50;
    p.moving_ms = 150;
    p.out_for_delivery_ms = 100;
    p.delivered_grace_ms = 60_000;
    p.rate_per_second = 1000;
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    carriers::http::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("shipgate.db").display()),
        Backend::Postgres => fresh_postgres_database().await,
    };
    let mut settings = test_settings(url);
    tweak(&mut settings);
    let database_url = settings.database_url.clone();
    let app = Application::build(settings).await.expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = app.db.clone();
    let sandbox = app.sandbox.clone().expect("sandbox enabled");
    let tracking = app.tracking.clone();
    tokio::spawn(app.run_until_stopped());
    let (tenant, key) = shipgate::auth::create_key(&db, "acme").await.expect("key");
    TestApp {
        address,
        client: reqwest::Client::new(),
        db,
        sandbox,
        key,
        tenant_id: tenant.id,
        database_url,
        tracking,
        _dir: dir,
    }
}

impl TestApp {
    pub async fn new_key(&self, tenant: &str) -> String {
        shipgate::auth::create_key(&self.db, tenant)
            .await
            .expect("key")
            .1
    }

    /// Sends a request and checks the answer against the contract for `template`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        template: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.address));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.expect("request");
        let reply = Reply::read(res).await;
        contract::check(
            method.as_str(),
            template,
            reply.status.as_u16(),
            &reply.body,
        );
        reply
    }

    pub async fn create(&self, body: &Value) -> Reply {
        self.create_as(&self.key, body).await
    }

    pub async fn create_as(&self, key: &str, body: &Value) -> Reply {
        self.call(
            Method::POST,
            "/v1/waybills",
            "/v1/waybills",
            Some(key),
            Some(body),
        )
        .await
    }

    pub async fn get_waybill(&self, key: &str, number: &str) -> Reply {
        self.call(
            Method::GET,
            &format!("/v1/waybills/{number}"),
            "/v1/waybills/{number}",
            Some(key),
            None,
        )
        .await
    }

    pub async fn by_reference(&self, key: &str, reference: &str) -> Reply {
        self.call(
            Method::GET,
            &format!("/v1/waybills?referenceNumber={reference}"),
            "/v1/waybills",
            Some(key),
            None,
        )
        .await
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        use sqlx::Row;
        sqlx::query(sql)
            .fetch_one(&self.db.pool)
            .await
            .expect("count")
            .get::<i64, _>(0)
    }

    /// Forces the state and lease of a reference's claim, as another instance would leave it.
    pub async fn set_claim(&self, reference: &str, state: &str, lease_until: i64) {
        sqlx::query("UPDATE waybills SET state = $1, lease_until = $2 WHERE reference_number = $3")
            .bind(state)
            .bind(lease_until)
            .bind(reference)
            .execute(&self.db.pool)
            .await
            .expect("set claim");
    }

    pub async fn charges(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM charges").await
    }
}

impl Reply {
    pub async fn read(res: reqwest::Response) -> Self {
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {status} {text}"));
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn error_code(&self) -> &str {
        self.body["errorCode"].as_str().unwrap_or("")
    }

    pub fn waybill_number(&self) -> &str {
        self.body["waybillNumber"].as_str().unwrap_or("")
    }
}

/// A valid cross-border request (CN -> US) on the sandbox express channel.
pub fn waybill_request(reference: &str) -> Value {
    json!({
        "referenceNumber": reference,
        "channel": "SANDBOX_EXPRESS",
        "shipper": {"name": "Li Wei", "company": "Shenzhen Export Co", "phone": "+86 755 8888 1234",
                    "street1": "88 Keji Road", "city": "Shenzhen", "state": "Guangdong",
                    "postalCode": "518057", "country": "CN"},
        "consignee": {"name": "Jane Doe", "phone": "+1 213 555 0147", "street1": "742 Evergreen Terrace",
                      "city": "Los Angeles", "state": "CA", "postalCode": "90001", "country": "US"},
        "parcels": [{"weightGrams": 1200, "lengthCm": null, "widthCm": null, "heightCm": null}],
        "customs": {"currency": "USD", "incoterm": "DDU",
                    "items": [{"description": "Cotton T-shirt", "hsCode": "610910", "quantity": 2,
                               "unitValue": "9.90", "weightGrams": 300, "originCountry": "CN"}]},
        "labelEncoding": "url"
    })
}

/// Generates one test per database backend from an `async fn(Backend)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}
