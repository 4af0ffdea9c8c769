//! Webhook endpoints of a tenant (the secret is shown once, at creation), the delivery log,
//! and replays.

use crate::auth::AuthTenant;
use crate::error::{ApiError, FieldError};
use crate::extract::ApiJson;
use crate::settings::WebhookSettings;
use crate::store::webhooks::{Attempt, Delivery, Endpoint};
use crate::store::{Db, now_millis, now_rfc3339, rfc3339_millis as rfc3339};
use crate::webhooks::EVENT_TYPES;
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

fn check_url(url: &str, allow_private: bool) -> Result<(), String> {
    if url.len() > 2048 {
        return Err("must be at most 2048 characters".into());
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials".into());
    }
    if !allow_private && let Some(why) = crate::webhooks::targets::refused_host(&parsed) {
        return Err(format!("must reach a public address: {why}"));
    }
    Ok(())
}

fn check_id(field: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 64 {
        return Err(ApiError::Validation(vec![FieldError::new(
            field,
            "must be 1 to 64 characters",
        )]));
    }
    Ok(())
}

pub async fn create(
    tenant: AuthTenant,
    db: web::Data<Db>,
    settings: web::Data<WebhookSettings>,
    ApiJson(req): ApiJson<NewEndpoint>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    if let Err(e) = check_url(req.url.trim(), settings.allow_private_targets) {
        errors.push(FieldError::new("url", e));
    }
    let mut types = req
        .event_types
        .unwrap_or_else(|| EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect());
    if types.is_empty() {
        errors.push(FieldError::new(
            "eventTypes",
            format!("must name at least one of {}", EVENT_TYPES.join(", ")),
        ));
    }
    for (i, t) in types.iter().enumerate() {
        if !EVENT_TYPES.contains(&t.as_str()) {
            errors.push(FieldError::new(
                format!("eventTypes[{i}]"),
                format!("must be one of {}", EVENT_TYPES.join(", ")),
            ));
        }
    }
    types.sort();
    types.dedup();
    if req
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 256)
    {
        errors.push(FieldError::new(
            "description",
            "must be at most 256 characters",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let existing = db.webhook_endpoints(&tenant.0.id).await?;
    if existing.len() >= settings.max_endpoints as usize {
        return Err(ApiError::Validation(vec![FieldError::new(
            "url",
            format!(
                "a tenant has at most {} webhook endpoints; delete one first",
                settings.max_endpoints
            ),
        )]));
    }
    let secret = crate::webhooks::new_secret()
        .map_err(|e| ApiError::Internal(format!("no randomness for a secret: {e}")))?;
    let endpoint = Endpoint {
        id: format!("whe_{}", uuid::Uuid::now_v7().simple()),
        tenant_id: tenant.0.id.clone(),
        url: req.url.trim().to_owned(),
        event_types: types,
        description: req.description,
        created_at: now_rfc3339(),
    };
    db.insert_webhook_endpoint(&endpoint, &secret).await?;
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

pub async fn list(tenant: AuthTenant, db: web::Data<Db>) -> Result<HttpResponse, ApiError> {
    let endpoints = db.webhook_endpoints(&tenant.0.id).await?;
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
    tenant: AuthTenant,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_id("id", &id)?;
    if !db.delete_webhook_endpoint(&tenant.0.id, &id).await? {
        return Err(ApiError::NotFound(format!("no webhook endpoint {id}")));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": 1, "id": *id, "deleted": true })))
}

/// Sends every dead delivery of the endpoint again.
pub async fn replay_dead(
    tenant: AuthTenant,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_id("id", &id)?;
    if !db
        .webhook_endpoints(&tenant.0.id)
        .await?
        .iter()
        .any(|e| e.id == *id)
    {
        return Err(ApiError::NotFound(format!("no webhook endpoint {id}")));
    }
    let replayed = db.replay_dead(&tenant.0.id, &id, now_millis()).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": 1, "replayed": replayed })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveryFilter {
    endpoint_id: Option<String>,
    state: Option<String>,
    limit: Option<u32>,
}

const STATES: [&str; 4] = ["pending", "delivered", "dead", "cancelled"];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryAnswer<'a> {
    id: &'a str,
    endpoint_id: &'a str,
    event_id: String,
    event_type: &'a str,
    waybill_number: &'a str,
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
            event_id: crate::webhooks::event_id(&d.waybill_id, d.sequence),
            event_type: &d.event_type,
            waybill_number: &d.waybill_number,
            sequence: d.sequence,
            state: &d.state,
            attempts: d.attempts,
            next_attempt_at: (d.state == "pending").then(|| rfc3339(d.next_attempt_at)),
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
    tenant: AuthTenant,
    db: web::Data<Db>,
    filter: web::Query<DeliveryFilter>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    if let Some(state) = &filter.state
        && !STATES.contains(&state.as_str())
    {
        errors.push(FieldError::new(
            "state",
            format!("must be one of {}", STATES.join(", ")),
        ));
    }
    let limit = filter.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        errors.push(FieldError::new("limit", "must be between 1 and 200"));
    }
    if filter
        .endpoint_id
        .as_ref()
        .is_some_and(|e| e.is_empty() || e.len() > 64)
    {
        errors.push(FieldError::new("endpointId", "must be 1 to 64 characters"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let list = db
        .webhook_deliveries(
            &tenant.0.id,
            filter.endpoint_id.as_deref(),
            filter.state.as_deref(),
            limit,
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
    tenant: AuthTenant,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_id("id", &id)?;
    let Some((d, attempts)) = db.webhook_delivery(&tenant.0.id, &id).await? else {
        return Err(ApiError::NotFound(format!("no webhook delivery {id}")));
    };
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
    tenant: AuthTenant,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    check_id("id", &id)?;
    if !db.replay_delivery(&tenant.0.id, &id, now_millis()).await? {
        return Err(ApiError::NotFound(format!(
            "no webhook delivery {id} (or its endpoint was deleted)"
        )));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": 1, "id": *id, "state": "pending" })))
}
