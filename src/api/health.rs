use crate::error::ApiError;
use crate::store::Db;
use actix_web::{HttpResponse, web};
use serde_json::json;

/// Liveness: the process serves requests.
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": 1 }))
}

/// Readiness: the database answers.
pub async fn readyz(db: web::Data<Db>) -> Result<HttpResponse, ApiError> {
    db.ping()
        .await
        .map_err(|e| ApiError::Unavailable(format!("database not ready: {e}")))?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "database": "ok" })))
}

/// Unknown paths get the same envelope as every other error.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such endpoint".into()))
}

/// Prometheus metrics: HTTP requests, carrier calls (carrier, operation, outcome, latency).
pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::telemetry::prometheus().render())
}
