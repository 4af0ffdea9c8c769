//! `/v1/order-shops`: the sales-channel shops orders are pulled from (credentials in, never
//! out), a pull asked for now; and `/v1/channel-webhooks/{channel}/{id}`, where a shop's channel
//! pushes its order webhooks (authenticated by the channel's signature, not an API key).

use crate::api::auth::AuthKey;
use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, TimedBody};
use crate::auth::Scope;
use crate::fields::FieldError;
use crate::orders::OrdersService;
use crate::orders::pull::{WebhookOutcome, WebhookRefusal};
use crate::orders::shops::{Credentials, NewShop};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShopBody {
    base_url: Option<String>,
    credentials: Credentials,
    pull_interval_secs: Option<i64>,
    overlap_secs: Option<i64>,
    start_at: Option<String>,
}

pub async fn put(
    key: AuthKey,
    orders: web::Data<OrdersService>,
    path: web::Path<(String, String)>,
    ApiJson(body): ApiJson<ShopBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::OrdersWrite)?;
    let (channel, shop) = path.into_inner();
    let start_ms = match body
        .start_at
        .as_deref()
        .map(chrono::DateTime::parse_from_rfc3339)
    {
        None => None,
        Some(Ok(t)) => Some(t.timestamp_millis()),
        Some(Err(_)) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "startAt",
                "must be an RFC 3339 time",
            )]));
        }
    };
    let view = orders
        .put_shop(
            &tenant.id,
            NewShop {
                channel: channel.to_ascii_lowercase(),
                shop,
                base_url: body.base_url,
                credentials: body.credentials,
                pull_interval_secs: body.pull_interval_secs.unwrap_or(900),
                overlap_secs: body.overlap_secs.unwrap_or(300),
                start_ms,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(json!({"status": 1, "shop": view})))
}

pub async fn list(
    key: AuthKey,
    orders: web::Data<OrdersService>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::OrdersRead)?;
    let shops = orders.shops(&tenant.id).await?;
    Ok(HttpResponse::Ok().json(json!({"status": 1, "shops": shops})))
}

pub async fn pull(
    key: AuthKey,
    orders: web::Data<OrdersService>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::OrdersWrite)?;
    let (channel, shop) = path.into_inner();
    let view = orders
        .pull_soon(&tenant.id, &channel.to_ascii_lowercase(), &shop)
        .await?;
    Ok(HttpResponse::Accepted().json(json!({"status": 1, "shop": view})))
}

/// A header under its `X-` name or without the prefix (both are sent).
fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .or_else(|| req.headers().get(name.trim_start_matches("X-")))
        .and_then(|v| v.to_str().ok())
}

pub async fn webhook(
    req: HttpRequest,
    orders: web::Data<OrdersService>,
    path: web::Path<(String, String)>,
    body: TimedBody,
) -> Result<HttpResponse, ApiError> {
    let (channel, id) = path.into_inner();
    let signature = header(&req, "X-Shopify-Hmac-Sha256").unwrap_or("");
    let topic = header(&req, "X-Shopify-Topic").unwrap_or("");
    match orders
        .webhook(&channel, &id, topic, &body.0, signature)
        .await
    {
        Ok(outcome) => Ok(HttpResponse::Ok().json(json!({
            "status": 1,
            "outcome": if outcome == WebhookOutcome::Ingested { "ingested" } else { "ignored" },
        }))),
        Err(WebhookRefusal::Unauthorized) => Err(ApiError::CallbackUnauthorized(
            "unknown shop, or the signature does not verify".into(),
        )),
        Err(WebhookRefusal::Malformed(m)) => Err(ApiError::InvalidJson(m)),
        Err(WebhookRefusal::Store(e)) => Err(e.into()),
    }
}
