//! `/v1/inventory/allocations`: reserve stock for an order, then commit or release it.

use crate::api::auth::AuthKey;
use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, TimedBody, parse};
use crate::api::inventory::whole;
use crate::auth::Scope;
use crate::fields::FieldError;
use crate::inventory::{AllocationRequest, InventoryService, Item};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Line {
    sku: Option<String>,
    channel: Option<String>,
    identifier: Option<String>,
    quantity: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    country: String,
    state: Option<String>,
    postal_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllocationBody {
    allocation_id: String,
    lines: Vec<Line>,
    destination: Destination,
    expires_in_secs: Option<Value>,
}

pub async fn create(
    key: AuthKey,
    inventory: web::Data<InventoryService>,
    ApiJson(body): ApiJson<AllocationBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::InventoryWrite)?;
    let mut problems = Vec::new();
    let mut lines = Vec::with_capacity(body.lines.len());
    for (i, line) in body.lines.into_iter().enumerate() {
        let item = match (line.sku, line.channel, line.identifier) {
            (Some(sku), None, None) => Some(Item::Sku(sku)),
            (None, Some(channel), Some(identifier)) => Some(Item::Channel {
                channel,
                identifier,
            }),
            _ => {
                problems.push(FieldError::new(
                    format!("lines[{i}]"),
                    "needs either `sku`, or `channel` and `identifier`",
                ));
                None
            }
        };
        let qty = whole(&format!("lines[{i}].quantity"), &line.quantity, 1)
            .map_err(|e| problems.push(e))
            .ok();
        if let (Some(item), Some(qty)) = (item, qty) {
            lines.push((item, qty));
        }
    }
    let expires_in = body
        .expires_in_secs
        .as_ref()
        .map(|v| whole("expiresInSecs", v, 1))
        .transpose()
        .map_err(|e| problems.push(e))
        .ok()
        .flatten()
        .map(|s| Duration::from_secs(s.unsigned_abs()));
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let (allocation, new) = inventory
        .allocate(
            &tenant.id,
            AllocationRequest {
                allocation_id: body.allocation_id,
                lines,
                country: body.destination.country,
                state: body.destination.state,
                postal_code: body.destination.postal_code,
                expires_in,
            },
        )
        .await?;
    let answer = json!({ "status": 1, "allocation": allocation });
    Ok(if new {
        HttpResponse::Created().json(answer)
    } else {
        HttpResponse::Ok().json(answer)
    })
}

pub async fn get(
    key: AuthKey,
    inventory: web::Data<InventoryService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::InventoryRead)?;
    let allocation = inventory.allocation(&tenant.id, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "allocation": allocation })))
}

/// An optional JSON body: empty means `{}`.
fn optional<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse(body)
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommitBody {
    warehouse: Option<String>,
    reference: Option<String>,
}

pub async fn commit(
    key: AuthKey,
    inventory: web::Data<InventoryService>,
    id: web::Path<String>,
    TimedBody(raw): TimedBody,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::InventoryWrite)?;
    let body: CommitBody = optional(&raw)?;
    let allocation = inventory
        .commit(&tenant.id, &id, body.warehouse, body.reference)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "allocation": allocation })))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseBody {
    reason: Option<String>,
}

pub async fn release(
    key: AuthKey,
    inventory: web::Data<InventoryService>,
    id: web::Path<String>,
    TimedBody(raw): TimedBody,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::InventoryWrite)?;
    let body: ReleaseBody = optional(&raw)?;
    let allocation = inventory.release(&tenant.id, &id, body.reason).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "allocation": allocation })))
}
