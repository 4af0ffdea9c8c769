//! Middleware around every request: a request id per request (echoed as `X-Request-Id`, on
//! every log line of the request, in every error body), panics turned into a `500 INTERNAL`
//! envelope that carries the id instead of a dropped connection, request metrics, and
//! `Connection: close` while the instance drains.

use crate::api::error::ApiError;
use crate::lifecycle::Draining;
use crate::request_id;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

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
    let outcome = request_id::scope(request_id.clone(), call.instrument(span.clone())).await;
    let mut response = match outcome {
        Ok(Ok(res)) => res.map_into_boxed_body(),
        Ok(Err(err)) => ServiceResponse::new(stand_in(method, uri), err.error_response()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            let res = request_id::sync_scope(request_id.clone(), || {
                span.in_scope(|| ApiError::internal(format!("panic: {what}")).error_response())
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

/// While draining, every response asks the client to reconnect (to the instance that stays).
pub async fn close_when_draining(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let draining = req
        .app_data::<web::Data<Draining>>()
        .is_some_and(|d| d.is_set());
    let mut res = next.call(req).await?;
    if draining {
        res.response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(res)
}

pub async fn method_not_allowed() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
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
