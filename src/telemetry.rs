//! Structured logs with a request id per request, echoed as `X-Request-Id`; panics become a
//! `500 INTERNAL` envelope that carries the request id instead of a dropped connection.

use crate::error::ApiError;
use crate::settings::{LogFormat, LogSettings};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::time::Instant;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT_REQUEST_ID: String;
}

/// The id of the request being served on this task, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST_ID.try_with(Clone::clone).ok()
}

/// Installs the global subscriber; a second call (tests) keeps the first.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// The process-wide Prometheus recorder (installed on first use; tests build several apps in
/// one process and share it).
pub fn prometheus() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
            .map(|b| b.build_recorder())
            .unwrap_or_else(|_| {
                metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder()
            });
        let handle = recorder.handle();
        // Another recorder may already be installed (embedding); this handle then stays empty.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Accepts a caller's id when it is short and printable, so ids can be followed across services.
fn request_id_from(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let request_id = request_id_from(&req);
    // The request cannot be cloned here (actix still routes it); a panic answer carries a stand-in.
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path(),
    );
    let started = Instant::now();
    let call = AssertUnwindSafe(next.call(req)).catch_unwind();
    let outcome = CURRENT_REQUEST_ID
        .scope(request_id.clone(), call.instrument(span.clone()))
        .await;
    let mut response = match outcome {
        Ok(Ok(res)) => res.map_into_boxed_body(),
        Ok(Err(err)) => ServiceResponse::new(stand_in(method, uri), err.error_response()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            let res = CURRENT_REQUEST_ID.sync_scope(request_id.clone(), || {
                span.in_scope(|| ApiError::Internal(format!("panic: {what}")).error_response())
            });
            ServiceResponse::new(stand_in(method, uri), res)
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let status = response.status().as_u16().to_string();
    metrics::counter!("shipgate_http_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("shipgate_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request completed"
        );
    });
    Ok(response)
}

fn stand_in(method: actix_web::http::Method, uri: actix_web::http::Uri) -> actix_web::HttpRequest {
    actix_web::test::TestRequest::default()
        .method(method)
        .uri(&uri.to_string())
        .to_http_request()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test, web};

    async fn boom() -> HttpResponse {
        panic!("handler bug")
    }

    #[actix_web::test]
    async fn a_panic_becomes_an_internal_error_with_the_request_id() {
        let app = test::init_service(
            App::new()
                .wrap(from_fn(request_context))
                .route("/boom", web::get().to(boom)),
        )
        .await;
        let req = test::TestRequest::get()
            .uri("/boom")
            .insert_header(("x-request-id", "req-123"))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), 500);
        assert_eq!(res.headers().get("x-request-id").unwrap(), "req-123");
        let body: serde_json::Value = test::read_body_json(res).await;
        assert_eq!(body["status"], 0);
        assert_eq!(body["errorCode"], "INTERNAL");
        assert_eq!(body["requestId"], "req-123");
    }

    #[actix_web::test]
    async fn an_unusable_incoming_id_is_replaced() {
        let app = test::init_service(
            App::new()
                .wrap(from_fn(request_context))
                .route("/ok", web::get().to(HttpResponse::Ok)),
        )
        .await;
        let req = test::TestRequest::get()
            .uri("/ok")
            .insert_header(("x-request-id", "has spaces and {json}"))
            .to_request();
        let res = test::call_service(&app, req).await;
        let id = res.headers().get("x-request-id").unwrap().to_str().unwrap();
        assert_eq!(id.len(), 36, "{id}");
    }
}
