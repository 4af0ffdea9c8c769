use crate::api::error::ApiError;
use crate::store::Db;
use actix_web::{HttpResponse, web};
use serde_json::json;

/// Liveness: the process serves requests.
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": 1 }))
}

/// Readiness: the database answers. The cache is reported but does not decide: without Redis
/// tracking queries are served from the database, so an instance stays ready.
pub async fn readyz(
    db: web::Data<Db>,
    tracking: web::Data<crate::tracking::TrackingService>,
    draining: web::Data<crate::lifecycle::Draining>,
) -> Result<HttpResponse, ApiError> {
    if draining.is_set() {
        return Err(ApiError::Unavailable(
            "shutting down: this instance takes no new work".into(),
        ));
    }
    db.ping().await.map_err(|e| {
        // The cause is for operators (logged with the request id), not for whoever asks.
        tracing::warn!(error = %e, "readiness: the database does not answer");
        ApiError::Unavailable("database not ready".into())
    })?;
    let state = tracking.cache_state().await.as_str();
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "database": "ok", "cache": state })))
}

/// Unknown paths get the same envelope as every other error.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such endpoint".into()))
}

/// Prometheus metrics: HTTP requests, carrier calls (carrier, operation, outcome, latency),
/// tracking, webhook deliveries, the database pool, and readiness and the outbox as sampled in
/// the background (`startup::BackgroundJobs`): a scrape does no database work, however often
/// it comes.
pub async fn metrics(
    db: web::Data<Db>,
    draining: web::Data<crate::lifecycle::Draining>,
) -> HttpResponse {
    if draining.is_set() {
        metrics::gauge!("shipgate_ready").set(0.0);
    }
    let (size, idle) = (db.pool.size(), db.pool.num_idle());
    metrics::gauge!("shipgate_db_pool_connections", "state" => "in_use")
        .set(f64::from(size) - idle as f64);
    metrics::gauge!("shipgate_db_pool_connections", "state" => "idle").set(idle as f64);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::telemetry::prometheus().render())
}

/// Readiness and the outbox figures, for `/metrics` (one sample: two cheap queries).
pub async fn sample_gauges(db: &Db, draining: &crate::lifecycle::Draining) {
    let ready = !draining.is_set() && db.ping().await.is_ok();
    metrics::gauge!("shipgate_ready").set(if ready { 1.0 } else { 0.0 });
    if let Ok(outbox) = db.outbox_stats().await {
        metrics::gauge!("shipgate_webhook_outbox_depth").set(outbox.pending as f64);
        let age = outbox
            .oldest_pending_created_at
            .map_or(0, |t| (crate::store::now_millis() - t).max(0));
        metrics::gauge!("shipgate_webhook_outbox_oldest_age_seconds").set(age as f64 / 1000.0);
        metrics::gauge!("shipgate_webhook_dead_letters").set(outbox.dead as f64);
    }
    if let Ok(consumers) = crate::events::lag(db).await {
        for (consumer, behind, age_ms) in consumers {
            metrics::gauge!("shipgate_events_behind", "consumer" => consumer.clone())
                .set(behind as f64);
            metrics::gauge!("shipgate_events_oldest_unhandled_age_seconds", "consumer" => consumer)
                .set(age_ms as f64 / 1000.0);
        }
    }
    if let Ok(stuck) = db.unresolved_stats().await {
        metrics::gauge!("shipgate_references_unresolved").set(stuck.count as f64);
        let age = stuck
            .oldest_ms
            .map_or(0, |t| (crate::store::now_millis() - t).max(0));
        metrics::gauge!("shipgate_references_unresolved_oldest_age_seconds")
            .set(age as f64 / 1000.0);
    }
}
