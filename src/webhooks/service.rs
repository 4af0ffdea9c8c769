//! The webhooks service: a tenant's endpoints (validation, the per-tenant quota, secrets shown
//! once), the delivery log and replays. Sending is the [`super::worker`]'s job.

use super::EVENT_TYPES;
use crate::fields::FieldError;
use crate::settings::WebhookSettings;
use crate::store::outbox::{Attempt, Delivery, DeliveryState};
use crate::store::webhook_endpoints::Endpoint;
use crate::store::{Db, StoreError, now_millis, now_rfc3339};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("request validation failed")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no randomness for a secret: {0}")]
    Random(#[from] getrandom::Error),
}

/// An endpoint as asked for.
pub struct NewEndpoint {
    pub url: String,
    /// All event types when absent.
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
}

/// Which deliveries of the log to show.
pub struct DeliveryFilter<'a> {
    pub endpoint_id: Option<&'a str>,
    pub state: Option<&'a str>,
    pub limit: Option<u32>,
}

#[derive(Clone)]
pub struct WebhookService {
    db: Db,
    settings: WebhookSettings,
}

fn invalid(field: &str, msg: impl Into<String>) -> WebhookError {
    WebhookError::Validation(vec![FieldError::new(field, msg)])
}

/// Endpoint and delivery ids are 1 to 64 characters.
fn check_id(field: &str, id: &str) -> Result<(), WebhookError> {
    if id.is_empty() || id.len() > 64 {
        return Err(invalid(field, "must be 1 to 64 characters"));
    }
    Ok(())
}

fn check_url(url: &str, allow_private: bool, ports: &[u16]) -> Result<(), String> {
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
    if !crate::outbound::port_allowed(&parsed, ports) {
        return Err(format!(
            "must use one of the allowed ports ({})",
            ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !allow_private && let Some(why) = crate::outbound::refused_host(&parsed) {
        return Err(format!("must reach a public address: {why}"));
    }
    Ok(())
}

impl WebhookService {
    pub fn new(db: Db, settings: WebhookSettings) -> Self {
        Self { db, settings }
    }

    /// Validates and stores a new endpoint; returns it with its secret (shown only now).
    pub async fn create_endpoint(
        &self,
        tenant_id: &str,
        req: NewEndpoint,
    ) -> Result<(Endpoint, String), WebhookError> {
        let mut errors = Vec::new();
        if let Err(e) = check_url(
            req.url.trim(),
            self.settings.allow_private_targets,
            &self.settings.allowed_ports,
        ) {
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
            return Err(WebhookError::Validation(errors));
        }
        let existing = self.db.webhook_endpoints(tenant_id).await?;
        if existing.len() >= self.settings.max_endpoints as usize {
            return Err(invalid(
                "url",
                format!(
                    "a tenant has at most {} webhook endpoints; delete one first",
                    self.settings.max_endpoints
                ),
            ));
        }
        let secret = super::new_secret()?;
        let endpoint = Endpoint {
            id: format!("whe_{}", uuid::Uuid::now_v7().simple()),
            tenant_id: tenant_id.to_owned(),
            url: req.url.trim().to_owned(),
            event_types: types,
            description: req.description,
            created_at: now_rfc3339(),
        };
        self.db.insert_webhook_endpoint(&endpoint, &secret).await?;
        Ok((endpoint, secret))
    }

    pub async fn endpoints(&self, tenant_id: &str) -> Result<Vec<Endpoint>, WebhookError> {
        Ok(self.db.webhook_endpoints(tenant_id).await?)
    }

    pub async fn delete_endpoint(&self, tenant_id: &str, id: &str) -> Result<(), WebhookError> {
        check_id("id", id)?;
        if !self.db.delete_webhook_endpoint(tenant_id, id).await? {
            return Err(WebhookError::NotFound(format!("no webhook endpoint {id}")));
        }
        Ok(())
    }

    /// Sends every dead delivery of the endpoint again; returns how many.
    pub async fn replay_dead(&self, tenant_id: &str, id: &str) -> Result<u64, WebhookError> {
        check_id("id", id)?;
        if !self
            .db
            .webhook_endpoints(tenant_id)
            .await?
            .iter()
            .any(|e| e.id == id)
        {
            return Err(WebhookError::NotFound(format!("no webhook endpoint {id}")));
        }
        Ok(self.db.replay_dead(tenant_id, id, now_millis()).await?)
    }

    /// The delivery log, newest first.
    pub async fn deliveries(
        &self,
        tenant_id: &str,
        filter: DeliveryFilter<'_>,
    ) -> Result<Vec<Delivery>, WebhookError> {
        let mut errors = Vec::new();
        let state = filter.state.map(DeliveryState::parse);
        if state == Some(None) {
            let names: Vec<&str> = DeliveryState::ALL.iter().map(|s| s.as_str()).collect();
            errors.push(FieldError::new(
                "state",
                format!("must be one of {}", names.join(", ")),
            ));
        }
        let limit = filter.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            errors.push(FieldError::new("limit", "must be between 1 and 200"));
        }
        if filter
            .endpoint_id
            .is_some_and(|e| e.is_empty() || e.len() > 64)
        {
            errors.push(FieldError::new("endpointId", "must be 1 to 64 characters"));
        }
        if !errors.is_empty() {
            return Err(WebhookError::Validation(errors));
        }
        Ok(self
            .db
            .webhook_deliveries(tenant_id, filter.endpoint_id, state.flatten(), limit)
            .await?)
    }

    /// One delivery with every attempt.
    pub async fn delivery(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<(Delivery, Vec<Attempt>), WebhookError> {
        check_id("id", id)?;
        self.db
            .webhook_delivery(tenant_id, id)
            .await?
            .ok_or_else(|| WebhookError::NotFound(format!("no webhook delivery {id}")))
    }

    /// Sends one delivery again (whatever its state, unless its endpoint was deleted).
    pub async fn replay(&self, tenant_id: &str, id: &str) -> Result<(), WebhookError> {
        check_id("id", id)?;
        if !self.db.replay_delivery(tenant_id, id, now_millis()).await? {
            return Err(WebhookError::NotFound(format!(
                "no webhook delivery {id} (or its endpoint was deleted)"
            )));
        }
        Ok(())
    }
}
