//! `spawn_app`: the real server on port 0 over a fresh SQLite file or a fresh PostgreSQL
//! database, with typed helpers. Every response a helper sees is checked against the OpenAPI
//! document in `schemas/`, so the contract cannot drift silently.
#![allow(dead_code)]

pub mod contract;
pub mod pdf;
mod servers;

pub use servers::{Server, standard_webhooks};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shipgate::settings::Settings;
use shipgate::startup::{Application, Background, BackgroundJobs, Step};
use shipgate::store::Db;
use shipgate::store::tenants::{Mode, Tenant};
use sqlx::{Connection, Executor};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A key made the way `shipgate keys create --create-tenant` makes it.
pub async fn create_key(db: &Db, tenant: &str, mode: Mode, scopes: &str) -> (Tenant, String) {
    let created = shipgate::auth::keys::create_key(
        db,
        &shipgate::auth::KeyRequest {
            tenant,
            mode,
            scopes: shipgate::auth::Scopes::parse(scopes).expect("scopes"),
            description: None,
            create_tenant: true,
        },
    )
    .await
    .expect("key");
    (created.record.tenant, created.secret)
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
    /// The app's background work, for the test to run (`None`: it runs on its own).
    pub jobs: Option<BackgroundJobs>,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// Returns from the test (with a message) when a server it needs is not there.
#[macro_export]
macro_rules! needs {
    ($($server:ident),+ $(,)?) => {
        $(
            if let Some(why) = $crate::helpers::Server::$server.missing() {
                // The test command sets this: there a missing server is a failure, not a skip.
                assert!(
                    std::env::var_os("TEST_REQUIRE_SERVERS").is_none(),
                    "{why}"
                );
                eprintln!("skipped: {why}");
                return;
            }
        )+
    };
}

/// The Redis server the test command started (`TEST_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .expect("TEST_REDIS_URL is not set: run the suite with scripts/test.sh, which starts Redis")
}

/// The broker the test command started (`TEST_KAFKA_BROKERS`, `host:port`).
pub fn kafka_brokers() -> String {
    std::env::var("TEST_KAFKA_BROKERS").expect(
        "TEST_KAFKA_BROKERS is not set: run the suite with scripts/test.sh, which starts the broker",
    )
}

/// The PostgreSQL server the test command started (`TEST_POSTGRES_URL`, a maintenance database).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").expect(
        "TEST_POSTGRES_URL is not set: run the suite with scripts/test.sh, which starts PostgreSQL",
    )
}

/// The single number `sql` answers on `pool` (a count, a position).
pub async fn count_in(pool: &sqlx::AnyPool, sql: &'static str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_one(pool)
        .await
        .expect(sql)
        .get::<i64, _>(0)
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
    // Tests present bad keys on purpose, all from loopback.
    s.rate_limits.failed_auth_burst = 10_000;
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

/// The app with its background work (poller, webhook worker) run only by the test, through
/// [`TestApp::run_background`] and [`TestApp::wait_for`].
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(backend, tweak, Background::OnDemand).await
}

/// The app with its background work running on its own, as in a server: for what must be
/// tested in real time (rate limits over time, concurrent delivery slots).
pub async fn spawn_live_app_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(backend, tweak, Background::Spawned).await
}

/// A second instance on the database of another (`database_url`), as a deployment that runs
/// services apart shares one database.
pub async fn spawn_app_on(
    backend: Backend,
    database_url: String,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_on(backend, Some(database_url), tweak, Background::OnDemand).await
}

async fn spawn(
    backend: Backend,
    tweak: impl FnOnce(&mut Settings),
    background: Background,
) -> TestApp {
    spawn_on(backend, None, tweak, background).await
}

async fn spawn_on(
    backend: Backend,
    database_url: Option<String>,
    tweak: impl FnOnce(&mut Settings),
    background: Background,
) -> TestApp {
    carriers::http::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = match (backend, database_url) {
        (_, Some(url)) => url,
        (Backend::Sqlite, None) => format!("sqlite://{}", dir.path().join("shipgate.db").display()),
        (Backend::Postgres, None) => fresh_postgres_database().await,
    };
    let mut settings = test_settings(url);
    tweak(&mut settings);
    let database_url = settings.database_url.clone();
    let app = Application::build_with(settings, background)
        .await
        .expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = app.db.clone();
    let sandbox = app.sandbox.clone().expect("sandbox enabled");
    let tracking = app.tracking.clone();
    let jobs = (background == Background::OnDemand).then(|| app.jobs.clone());
    tokio::spawn(app.run_until_stopped());
    let (tenant, key) = create_key(&db, "acme", Mode::Test, "*").await;
    TestApp {
        address,
        client: reqwest::Client::new(),
        db,
        sandbox,
        key,
        tenant_id: tenant.id,
        database_url,
        tracking,
        jobs,
        _dir: dir,
    }
}

impl TestApp {
    /// One step of the app's background work: cache repairs, a poll round, a delivery batch
    /// (nothing for an app whose background work runs on its own).
    pub async fn run_background(&self) -> Step {
        match &self.jobs {
            Some(jobs) => jobs.run_once().await,
            None => Step::default(),
        }
    }

    /// The app's housekeeping (pruning), as a server runs it once a minute.
    pub async fn run_maintenance(&self) {
        self.jobs
            .as_ref()
            .expect("an on-demand app")
            .maintain()
            .await;
    }

    /// Runs the app's background work until `check` finds what it waits for; fails naming
    /// `what` after `secs`. Rests briefly only when a step found nothing to do (sandbox parcels
    /// and retry schedules move with the clock).
    pub async fn wait_for<T, F, Fut>(&self, what: &str, secs: u64, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        wait_with(what, secs, || self.run_background(), check).await
    }

    /// A sandbox push signed Standard Webhooks style.
    pub async fn push_sandbox(
        &self,
        id: &str,
        timestamp: i64,
        body: &Value,
        secret: &str,
    ) -> Reply {
        let raw = serde_json::to_vec(body).unwrap();
        let signature =
            carriers::signing::standard_webhooks_sign(secret.as_bytes(), id, timestamp, &raw);
        let res = self
            .client
            .post(format!("{}/v1/callbacks/sandbox", self.address))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(raw)
            .send()
            .await
            .unwrap();
        let reply = Reply::read(res).await;
        contract::check(
            "POST",
            "/v1/callbacks/{carrier}",
            reply.status.as_u16(),
            &reply.body,
        );
        reply
    }

    /// A test-mode key with every scope for `tenant` (made if new).
    pub async fn new_key(&self, tenant: &str) -> String {
        self.new_key_with(tenant, Mode::Test, "*").await
    }

    pub async fn new_key_with(&self, tenant: &str, mode: Mode, scopes: &str) -> String {
        create_key(&self.db, tenant, mode, scopes).await.1
    }

    /// Makes the app's key a live one of the same tenant (for real carriers' channels).
    pub async fn use_live_key(&mut self) {
        let (tenant, key) = create_key(&self.db, "acme", Mode::Live, "*").await;
        self.key = key;
        self.tenant_id = tenant.id;
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
        count_in(&self.db.pool, sql).await
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

/// Waits for `check` with nothing to drive (other processes, several apps driven by `step`);
/// fails naming `what` after `secs`.
pub async fn wait_until<T, F, Fut>(what: &str, secs: u64, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    wait_with(what, secs, || async { Step::default() }, check).await
}

/// The one wait loop: a step of work, then the check, until the deadline.
pub async fn wait_with<T, S, SFut, F, Fut>(what: &str, secs: u64, mut step: S, mut check: F) -> T
where
    S: FnMut() -> SFut,
    SFut: std::future::Future<Output = Step>,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let did = step().await;
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        // Idle: wait for the clock (sandbox journeys, retry schedules); busy: yield briefly
        // so apps driven side by side on a loaded machine all get their turn.
        let rest = if did == Step::default() { 20 } else { 2 };
        tokio::time::sleep(std::time::Duration::from_millis(rest)).await;
    }
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
                    $crate::needs!(Postgres);
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}
