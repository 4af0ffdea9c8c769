//! `ApiJson<T>`: a JSON body extractor whose every failure is an [`ApiError`] naming the problem
//! (content type, size, syntax, or the path of a wrongly typed field).

use crate::api::error::ApiError;
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

pub struct ApiJson<T>(pub T);

/// The body size limit, for the error message (actix enforces it through `PayloadConfig`).
#[derive(Clone, Copy)]
pub struct MaxBody(pub usize);

/// How long a client may take to send a body (`http.body_timeout_ms`).
#[derive(Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

/// A request body read within [`BodyTimeout`] and [`MaxBody`]: a client that sends it too
/// slowly is answered instead of holding the connection.
pub struct TimedBody(pub Bytes);

impl FromRequest for TimedBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<MaxBody>().map_or(1024 * 1024, |m| m.0);
        let timeout = req
            .app_data::<BodyTimeout>()
            .map_or(std::time::Duration::from_secs(10), |t| t.0);
        let body = Bytes::from_request(req, payload);
        Box::pin(async move { read_within(body, limit, timeout).await.map(TimedBody) })
    }
}

/// Reads a body the handler chose to read (after checks that need no body), within
/// [`BodyTimeout`] and [`MaxBody`].
pub async fn read_body(
    req: &HttpRequest,
    payload: actix_web::web::Payload,
) -> Result<Bytes, ApiError> {
    TimedBody::from_request(req, &mut payload.into_inner())
        .await
        .map(|b| b.0)
}

async fn read_within(
    body: impl std::future::Future<Output = Result<Bytes, actix_web::Error>>,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(timeout, body).await {
        Err(_) => Err(ApiError::InvalidRequest(format!(
            "the request body did not arrive within {} ms",
            timeout.as_millis()
        ))),
        Ok(Err(e)) => Err(match e.as_error::<PayloadError>() {
            Some(PayloadError::Overflow) => ApiError::PayloadTooLarge(limit),
            _ => ApiError::InvalidRequest(format!("could not read the request body: {e}")),
        }),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            });
        let is_json = content_type
            .as_deref()
            .is_some_and(|ct| ct == "application/json" || ct.ends_with("+json"));
        let limit = req.app_data::<MaxBody>().map_or(1024 * 1024, |m| m.0);
        let timeout = req
            .app_data::<BodyTimeout>()
            .map_or(std::time::Duration::from_secs(10), |t| t.0);
        let body = Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::InvalidContentType(format!(
                    "Content-Type must be application/json, got {}",
                    content_type.as_deref().unwrap_or("none")
                )));
            }
            let bytes = read_within(body, limit, timeout).await?;
            parse(&bytes).map(ApiJson)
        })
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        ApiError::InvalidJson(if inner.is_data() && path != "." {
            format!("field `{path}`: {inner}")
        } else {
            format!("malformed JSON: {inner}")
        })
    })?;
    de.end()
        .map_err(|e| ApiError::InvalidJson(format!("malformed JSON: {e}")))?;
    Ok(value)
}
