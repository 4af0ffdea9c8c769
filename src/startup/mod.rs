//! Builds the application: storage, carriers, services, background work, and the server with
//! every route (listed once, in `routes`).

mod background;
mod carrier_setup;
mod routes;
mod services;

pub use background::{Background, BackgroundJobs, Step};
pub use carrier_setup::check;

use carrier_setup::http_carrier;

use crate::api::error::ApiError;
use crate::api::extract::{BodyTimeout, MaxBody};
use crate::api::{self, middleware};
use crate::auth::Auth;
use crate::lifecycle::Draining;
use crate::settings::Settings;
use crate::store::Db;
use crate::telemetry;
use crate::tracking::schedule::FirstPoll;
use crate::tracking::{PushConfig, TrackingService};
use crate::waybills::{Channel, WaybillService};
use crate::webhooks::WebhookService;
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::web::{self, PayloadConfig, QueryConfig};
use actix_web::{App, HttpServer};
use carriers::Registry;
use carriers::sandbox::{SandboxCarrier, SandboxConfig};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

pub struct Application {
    port: u16,
    server: Server,
    /// Set on SIGTERM: `/readyz` answers 503 and responses close their connections.
    pub draining: Draining,
    shutdown: crate::settings::ShutdownSettings,
    pub db: Db,
    /// The in-process sandbox carrier, when enabled (tests read its call counters).
    pub sandbox: Option<Arc<SandboxCarrier>>,
    pub tracking: TrackingService,
    _poller: Option<AbortOnDrop>,
    _sampler: Option<AbortOnDrop>,
    /// The internal services' background tasks (expiry, event consumers).
    _services: Vec<AbortOnDrop>,
    /// The background work, also runnable one step at a time (`Background::OnDemand`).
    pub jobs: BackgroundJobs,
    /// The webhook delivery worker; on SIGTERM its current batch finishes (bounded).
    webhooks: Option<AbortOnDrop>,
}

/// The listening socket with SO_REUSEPORT, so a new instance can bind the same port while the
/// old one still serves (the kernel spreads new connections over both).
fn reuse_port_listener(listen: &str) -> anyhow::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|e| anyhow::anyhow!("listen: `{listen}`: {e}"))?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| anyhow::anyhow!("listen: binding {listen}: {e}"))?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Stops a background task when the application is dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Application {
    /// The application with its background work (poller, webhook worker) running.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Background::Spawned).await
    }

    pub async fn build_with(settings: Settings, background: Background) -> anyhow::Result<Self> {
        check(&settings)?;
        telemetry::prometheus();
        let mut db = Db::connect(&settings.database_url, settings.database_pool_size).await?;
        if settings.labels.storage == crate::settings::LabelStorage::Directory {
            db = db.with_label_directory(settings.labels.directory.clone().into())?;
        }
        db.migrate().await?;

        let mut registry = Registry::default();
        let sandbox = settings.carriers.sandbox.enabled.then(|| {
            Arc::new(SandboxCarrier::new(SandboxConfig {
                slow: Duration::from_millis(settings.carriers.sandbox.slow_ms),
                clock_speed: settings.carriers.sandbox.clock_speed,
                ..SandboxConfig::default()
            }))
        });
        if let Some(s) = &sandbox {
            registry.insert(s.clone());
        }
        for (id, carrier) in settings.http_carriers() {
            if carrier.enabled {
                registry.insert(http_carrier(id, carrier)?);
            }
        }
        let registry_for_polling = registry.clone();
        let channels = settings
            .channels
            .iter()
            .map(|(code, c)| {
                (
                    code.clone(),
                    Channel {
                        carrier: c.carrier,
                        service: c.service.clone(),
                    },
                )
            })
            .collect();
        let layouts =
            crate::labels::layout::load(Some(std::path::Path::new(&settings.labels.templates_dir)))
                .map_err(|e| anyhow::anyhow!("labels.templates_dir: {e}"))?;
        let layout = layouts
            .get(&settings.labels.layout)
            .cloned()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "labels.layout: no layout `{}` (have: {})",
                    settings.labels.layout,
                    layouts.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
        let labeler = crate::labels::Labeler::new(layout, settings.returns.warehouses.clone())?;
        let waybills = WaybillService::new(
            db.clone(),
            registry,
            channels,
            Duration::from_millis(settings.idempotency.wait_ms),
            Duration::from_millis(settings.idempotency.lease_ms),
            settings.carrier_budget(),
            labeler,
        )
        .with_replay_cache(Duration::from_millis(settings.idempotency.replay_cache_ms))
        .with_lookup_grace(
            settings
                .http_carriers()
                .into_iter()
                .map(|(id, c)| (id, Duration::from_secs(c.lookup_grace_secs)))
                .collect(),
        )
        .with_first_poll(settings.tracking.polling.enabled.then_some(FirstPoll {
            after_ms: settings.tracking.polling.first_ms,
        }));
        let t = &settings.tracking;
        let cache = crate::tracking::cache::Cache::new(&crate::tracking::cache::CacheConfig {
            redis_url: settings.redis_url.clone().filter(|u| !u.trim().is_empty()),
            redis_cluster: settings.redis_cluster,
            client_cache_keys: t.redis_client_cache_keys,
            ttl: Duration::from_secs(t.cache_ttl_secs),
            local_ttl: Duration::from_millis(t.local_max_staleness_ms),
            local_capacity: t.local_cache_capacity,
            timeout: Duration::from_millis(t.redis_timeout_ms),
            breaker_failures: t.redis_breaker_failures,
            breaker_open: Duration::from_millis(t.redis_breaker_open_ms),
        })?;
        let aliases = crate::tracking::aliases::Aliases::new(&t.last_mile_carriers)
            .map_err(|e| anyhow::anyhow!("tracking.last_mile_carriers: {e}"))?;
        let pushes = PushConfig {
            secrets: t
                .callbacks
                .iter()
                .map(|(carrier, c)| (*carrier, c.secret.clone()))
                .collect(),
            max_skew_secs: t.callback_max_skew_secs,
        };
        let tracking = TrackingService::new(db.clone(), cache, aliases, pushes)
            .with_polling_max_age(
                t.polling
                    .enabled
                    .then(|| Duration::from_secs(t.polling.max_age_days.saturating_mul(86_400))),
            );
        let poller = t.polling.enabled.then(|| {
            crate::tracking::poller::Poller::new(
                tracking.clone(),
                registry_for_polling,
                t.polling.clone(),
            )
        });
        let draining = Draining::default();
        let mut auth = Auth::new(
            db.clone(),
            Duration::from_secs(settings.auth.cache_ttl_secs),
        )
        .with_rate_limits(settings.rate_limits.clone())
        .with_service_key(
            settings
                .service_key
                .as_ref()
                .map(secrecy::ExposeSecret::expose_secret),
        );
        if let Some(url) = settings
            .redis_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            && settings.rate_limits.enabled
        {
            auth = auth.with_shared_limits(url, settings.redis_cluster)?;
        }

        let worker = if settings.webhooks.enabled {
            Some(crate::webhooks::worker::Worker::new(
                db.clone(),
                settings.webhooks.clone(),
            )?)
        } else {
            None
        };
        let services = settings.services.clone();
        let runs = |s: crate::settings::Service| services.contains(&s);
        let inventory = crate::inventory::InventoryService::new(
            db.clone(),
            (settings.inventory.reservation_expiry_secs > 0)
                .then(|| Duration::from_secs(settings.inventory.reservation_expiry_secs)),
        )
        .allowing_private_channels(settings.inventory.allow_private_channels);
        let pusher = crate::inventory::ats::AtsPusher::new(
            db.clone(),
            Duration::from_millis(settings.inventory.channel_timeout_ms),
            settings.inventory.allow_private_channels,
        )?;
        let bus =
            crate::events::DbBus::new(db.clone(), Duration::from_millis(settings.events.lease_ms));
        let relay = match &settings.events.kafka {
            Some(kafka) if kafka.relay => {
                Some(crate::events::kafka::Relay::new(bus.clone(), kafka)?)
            }
            _ => None,
        };
        let idle = Duration::from_millis(settings.events.poll_interval_ms);
        let mut consumers = crate::events::ConsumerRunner::new(
            services::consumer_bus(&settings, &db, &bus, idle),
            settings.events.batch as usize,
            idle,
        );
        if runs(crate::settings::Service::Inventory) {
            consumers = consumers.with(std::sync::Arc::new(crate::inventory::ats::AtsFeed::new(
                Duration::from_millis(settings.inventory.channel_coalesce_ms),
            )));
        }
        let orders = services::orders(&settings, &db, &inventory, &waybills)?;
        if runs(crate::settings::Service::Orders) {
            consumers = consumers.with(std::sync::Arc::new(crate::orders::tracking::TrackingFeed));
            consumers = consumers.with(std::sync::Arc::new(crate::orders::payments::PaymentsFeed));
        }
        let finance = crate::finance::FinanceService::new(db.clone())
            .with_webhook_tolerance(settings.finance.payment_webhook_tolerance_secs)
            .with_invoice_layouts(settings.finance.invoice_layouts.clone())
            .with_paypal_api_base(&settings.finance.paypal_api_base);
        if runs(crate::settings::Service::Finance) {
            consumers = consumers.with(std::sync::Arc::new(crate::finance::feed::LedgerFeed::new(
                db.dialect,
            )));
        }
        if runs(crate::settings::Service::Gateway) {
            // Tenants' webhook endpoints get the services' events too.
            consumers = consumers.with(std::sync::Arc::new(crate::webhooks::fanout::FanOut::new(
                db.dialect,
            )));
        }
        let jobs = BackgroundJobs {
            subscriptions: if runs(crate::settings::Service::Orders) {
                services::subscriptions(&settings, &orders)?
            } else {
                Vec::new()
            },
            inventory: runs(crate::settings::Service::Inventory)
                .then(|| (inventory.clone(), pusher)),
            expiry_every: Duration::from_millis(settings.inventory.expiry_interval_ms.max(10)),
            orders: runs(crate::settings::Service::Orders).then(|| orders.clone()),
            finance: runs(crate::settings::Service::Finance).then(|| finance.clone()),
            orders_every: Duration::from_millis(settings.orders.process_interval_ms.max(1)),
            consumers,
            relay,
            event_retention_days: settings.events.retention_days,
            db: db.clone(),
            draining: draining.clone(),
            tracking: tracking.clone(),
            poller: if runs(crate::settings::Service::Gateway) {
                poller
            } else {
                None
            },
            worker: if runs(crate::settings::Service::Gateway) {
                worker
            } else {
                None
            },
            receipt_retention_days: settings.tracking.callback_receipt_retention_days,
        };
        let (poller_task, webhooks, sampler, service_tasks) = match background {
            Background::Spawned => {
                let (poller, webhooks, sampler) = jobs.spawn(&draining);
                (
                    poller,
                    webhooks,
                    Some(sampler),
                    jobs.spawn_services(&draining),
                )
            }
            Background::OnDemand => (None, None, None, Vec::new()),
        };

        let listener = reuse_port_listener(&settings.listen)?;
        let port = listener.local_addr()?.port();
        let max_body = settings.http.max_body_bytes;
        let body_timeout = Duration::from_millis(settings.http.body_timeout_ms);
        let (db_data, waybills, auth) = (
            web::Data::new(db.clone()),
            web::Data::new(waybills),
            web::Data::new(auth),
        );
        let draining_data = web::Data::new(draining.clone());
        let webhook_service =
            web::Data::new(WebhookService::new(db.clone(), settings.webhooks.clone()));
        let tracking_data = web::Data::new(tracking.clone());
        let inventory_data = web::Data::new(inventory);
        let orders_data = web::Data::new(orders);
        let finance_data = web::Data::new(finance);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(middleware::close_when_draining))
                .wrap(from_fn(middleware::request_context))
                .app_data(draining_data.clone())
                .app_data(db_data.clone())
                .app_data(waybills.clone())
                .app_data(auth.clone())
                .app_data(tracking_data.clone())
                .app_data(webhook_service.clone())
                .app_data(inventory_data.clone())
                .app_data(orders_data.clone())
                .app_data(finance_data.clone())
                .app_data(PayloadConfig::new(max_body))
                .app_data(MaxBody(max_body))
                .app_data(BodyTimeout(body_timeout))
                .app_data(QueryConfig::default().error_handler(|err, _| {
                    ApiError::InvalidRequest(format!("invalid query string: {err}")).into()
                }))
                .configure(|cfg| routes::configure(cfg, &services))
                .default_service(web::to(api::health::not_found))
        });
        let tls = match (&settings.tls.cert_path, &settings.tls.key_path) {
            (Some(cert), Some(key)) if !cert.trim().is_empty() && !key.trim().is_empty() => {
                Some(tls_config(cert, key)?)
            }
            _ => None,
        };
        let mut server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config)?,
            None => server.listen(listener)?,
        };
        server = server
            .disable_signals()
            .shutdown_timeout(settings.shutdown.timeout_ms.div_ceil(1000))
            .max_connections(settings.http.max_connections)
            // Headers too must arrive in time (the body has http.body_timeout_ms).
            .client_request_timeout(Duration::from_secs(5));
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        Ok(Self {
            port,
            server: server.run(),
            db,
            sandbox,
            tracking,
            _poller: poller_task,
            _sampler: sampler,
            _services: service_tasks,
            webhooks,
            jobs,
            draining,
            shutdown: settings.shutdown.clone(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Runs until SIGTERM or SIGINT, then drains: `/readyz` turns 503 at once, responses carry
    /// `Connection: close` for `shutdown.drain_delay_ms`, then the listener closes and in-flight
    /// requests get up to `shutdown.timeout_ms`.
    pub async fn run_until_signalled(mut self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let worker = self.webhooks.take();
        let timeout = Duration::from_millis(self.shutdown.timeout_ms);
        let (draining, shutdown) = (self.draining.clone(), self.shutdown.clone());
        actix_web::rt::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("cannot listen for SIGTERM/SIGINT");
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!(
                drain_delay_ms = shutdown.drain_delay_ms,
                timeout_ms = shutdown.timeout_ms,
                "shutting down: readiness off, draining connections"
            );
            draining.set();
            tokio::time::sleep(Duration::from_millis(shutdown.drain_delay_ms)).await;
            tracing::info!("listener closed; waiting for in-flight requests");
            handle.stop(true).await;
        });
        let result = self.server.await;
        if let Some(mut worker) = worker {
            // The worker saw the draining flag and stops after its current batch.
            if tokio::time::timeout(timeout, &mut worker.0).await.is_err() {
                tracing::warn!(
                    "webhook batch still running at the shutdown timeout; its deliveries come due again when their lease ends"
                );
            }
        }
        tracing::info!("shipgate stopped");
        result
    }
}

/// The rustls server configuration from PEM files (`tls.cert_path`, `tls.key_path`).
fn tls_config(cert: &str, key: &str) -> anyhow::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    carriers::http::install_crypto_provider();
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("tls.cert_path: {cert}: {e}"))?;
    if certs.is_empty() {
        anyhow::bail!("tls.cert_path: {cert}: no certificate in the file");
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("tls.key_path: {key}: {e}"))?;
    rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("tls: the key does not fit the certificate: {e}"))
}
