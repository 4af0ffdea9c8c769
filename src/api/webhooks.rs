//! `/v1/webhook-endpoints` and `/v1/webhook-deliveries`: parse, call the webhooks service,
//! render.

use crate::api::auth::AuthKey;
use crate::api::error::ApiError;
use crate::api::extract::ApiJson;
use crate::auth::Scope;
use crate::store::outbox::{Attempt, Delivery, DeliveryState};
use crate::store::rfc3339_millis as rfc3339;
use crate::store::webhook_endpoints::Endpoint;
use crate::webhooks::service::{self, WebhookService};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewEndpoint {
    url: String,
    event_types: Option<Vec<String>>,
    description: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EndpointAnswer<'a> {
    id: &'a str,
    url: &'a str,
    event_types: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    created_at: &'a str,
}

impl<'a> From<&'a Endpoint> for EndpointAnswer<'a> {
    fn from(e: &'a Endpoint) -> Self {
        Self {
            id: &e.id,
            url: &e.url,
            event_types: &e.event_types,
            description: e.description.as_deref(),
            created_at: &e.created_at,
        }
    }
}

pub async fn create(
    key: AuthKey,
    webhooks: web::Data<WebhookService>,
    ApiJson(req): ApiJson<NewEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::WebhooksManage)?;
    let (endpoint, secret) = webhooks
        .create_endpoint(
            &tenant.id,
            service::NewEndpoint {
                url: req.url,
                event_types: req.event_types,
                description: req.description,
            },
        )
        .await?;
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Created<'a> {
        status: u8,
        #[serde(flatten)]
        endpoint: EndpointAnswer<'a>,
        secret: &'a str,
    }
    Ok(HttpResponse::Created().json(Created {
        status: 1,
        endpoint: (&endpoint).into(),
        secret: &secret,
    }))
}

pub async fn list(
    key: AuthKey,
    webhooks: web::Data<WebhookService>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::WebhooksManage)?;
    let endpoints = webhooks.endpoints(&tenant.id).await?;
    #[derive(Serialize)]
    struct List<'a> {
        status: u8,
        endpoints: Vec<EndpointAnswer<'a>>,
    }
    Ok(HttpResponse::Ok().json(List {
        status: 1,
        endpoints: endpoints.iter().map(Into::into).collect(),
    }))
}

pub async fn delete(
    key: AuthKey,
    webhooks: web::Data<WebhookService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::WebhooksManage)?;
    webhooks.delete_endpoint(&tenant.id, &id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": 1, "id": *id, "deleted": true })))
}

/// Sends every dead delivery of the endpoint again.
pub async fn replay_dead(
    key: AuthKey,
    webhooks: web::Data<WebhookService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::WebhooksManage)?;
    let replayed = webhooks.replay_dead(&tenant.id, &id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": 1, "replayed": replayed })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveryFilter {
    endpoint_id: Option<String>,
    state: Option<String>,
    limit: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryAnswer<'a> {
    id: &'a str,
    endpoint_id: &'a str,
    event_id: String,
    event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    waybill_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aggregate: Option<&'a str>,
    sequence: i64,
    state: &'a str,
    attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_http_status: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_at: Option<String>,
}

impl<'a> From<&'a Delivery> for DeliveryAnswer<'a> {
    fn from(d: &'a Delivery) -> Self {
        Self {
            id: &d.id,
            endpoint_id: &d.endpoint_id,
            event_id: match (&d.service_event_id, &d.waybill_id) {
                (Some(id), _) => id.clone(),
                (None, Some(waybill)) => crate::webhooks::event_id(waybill, d.sequence),
                (None, None) => crate::webhooks::event_id(&d.id, d.sequence),
            },
            event_type: &d.event_type,
            waybill_number: d.waybill_id.as_ref().map(|_| d.waybill_number.as_str()),
            aggregate: d.aggregate.as_deref(),
            sequence: d.sequence,
            state: d.state.as_str(),
            attempts: d.attempts,
            next_attempt_at: (d.state == DeliveryState::Pending)
                .then(|| rfc3339(d.next_attempt_at)),
            created_at: rfc3339(d.created_at),
            last_attempt_at: d.last_attempt_at.map(rfc3339),
            last_http_status: d.last_status,
            last_error: d.last_error.as_deref(),
            delivered_at: d.delivered_at.map(rfc3339),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AttemptAnswer<'a> {
    attempt: i64,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_status: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    duration_ms: i64,
}

impl<'a> From<&'a Attempt> for AttemptAnswer<'a> {
    fn from(a: &'a Attempt) -> Self {
        Self {
            attempt: a.attempt,
            at: rfc3339(a.at),
            http_status: a.http_status,
            error: a.error.as_deref(),
            duration_ms: a.duration_ms,
        }
    }
}

/// The delivery log, newest first.
pub async fn deliveries(
    key: AuthKey,
    webhooks: web::Data<WebhookService>,
    filter: web::Query<DeliveryFilter>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::WebhooksManage)?;
    let list = webhooks
        .deliveries(
            &tenant.id,
            service::DeliveryFilter {
                endpoint_id: filter.endpoint_id.as_deref(),
                state: filter.state.as_deref(),
                limit: filter.limit,
            },
        )
        .await?;
    #[derive(Serialize)]
    struct List<'a> {
        status: u8,
        deliveries: Vec<DeliveryAnswer<'a>>,
    }
    Ok(HttpResponse::Ok().json(List {
        status: 1,
        deliveries: list.iter().map(Into::into).collect(),
    }))
}

/// One delivery with every attempt.
pub async fn delivery(
    key: AuthKey,
    webhooks: web::Data<WebhookService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::WebhooksManage)?;
    let (d, attempts) = webhooks.delivery(&tenant.id, &id).await?;
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct One<'a> {
        status: u8,
        #[serde(flatten)]
        delivery: DeliveryAnswer<'a>,
        attempt_log: Vec<AttemptAnswer<'a>>,
    }
    Ok(HttpResponse::Ok().json(One {
        status: 1,
        delivery: (&d).into(),
        attempt_log: attempts.iter().map(Into::into).collect(),
    }))
}

/// Sends one delivery again (whatever its state, unless its endpoint was deleted).
pub async fn replay(
    key: AuthKey,
    webhooks: web::Data<WebhookService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::WebhooksManage)?;
    webhooks.replay(&tenant.id, &id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": 1, "id": *id, "state": "pending" })))
}
