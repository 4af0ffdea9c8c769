//! `/v1/inventory/...`: SKUs, warehouses, channel identifier mappings, stock and movements.
//! Allocations are in `inventory_allocations`.

use crate::api::auth::AuthKey;
use crate::api::error::ApiError;
use crate::api::extract::ApiJson;
use crate::auth::Scope;
use crate::fields::FieldError;
use crate::inventory::{Area, InventoryError, InventoryService, MovementKind, MovementRequest};
use crate::inventory::{NewSku, NewWarehouse, WarehouseAddress};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

/// A whole number from a JSON value, or the field's problem (non-integers and strings are
/// refused here so the answer names the field).
pub(super) fn whole(field: &str, value: &Value, min: i64) -> Result<i64, FieldError> {
    match value.as_i64() {
        Some(n) if n >= min && n <= 1_000_000_000 => Ok(n),
        _ => Err(FieldError::new(
            field,
            format!("must be a whole number from {min} to 1000000000"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkuBody {
    name: Option<String>,
    attributes: Option<Value>,
    low_stock_threshold: Option<Value>,
}

pub async fn put_sku(
    key: AuthKey,
    inventory: web::Data<InventoryService>,
    sku: web::Path<String>,
    ApiJson(body): ApiJson<SkuBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::InventoryWrite)?;
    let threshold = body
        .low_stock_threshold
        .as_ref()
        .map(|v| whole("lowStockThreshold", v, 0))
        .transpose()
        .map_err(|e| ApiError::Validation(vec![e]))?;
    let sku = inventory
        .put_sku(
            &tenant.id,
            NewSku {
                sku: sku.into_inner(),
                name: body.name,
                attributes: body.attributes,
                low_stock_threshold: threshold,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "sku": sku })))
}

/// A SKU with its stock per warehouse and in total.
pub async fn get_sku(
    key: AuthKey,
    inventory: web::Data<InventoryService>,
    sku: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::InventoryRead)?;
    let definition = inventory.sku(&tenant.id, &sku).await?;
    let stock = inventory.stock(&tenant.id, &sku).await?;
    let total = |f: fn(&crate::inventory::StockLevel) -> i64| stock.iter().map(f).sum::<i64>();
    Ok(HttpResponse::Ok().json(json!({
        "status": 1,
        "sku": definition,
        "stock": stock,
        "totals": {
            "onHand": total(|s| s.on_hand),
            "reserved": total(|s| s.reserved),
            "safetyStock": total(|s| s.safety_stock),
            "available": total(|s| s.available.max(0)),
        },
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarehouseBody {
    name: Option<String>,
    country: String,
    state: Option<String>,
    postal_code: Option<String>,
    priority: Option<Value>,
    #[serde(default)]
    serves: Vec<Area>,
    address: Option<WarehouseAddress>,
}

pub async fn put_warehouse(
    key: AuthKey,
    inventory: web::Data<InventoryService>,
    code: web::Path<String>,
    ApiJson(body): ApiJson<WarehouseBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::InventoryWrite)?;
    let priority = body
        .priority
        .as_ref()
        .map(|v| whole("priority", v, 0))
        .transpose()
        .map_err(|e| ApiError::Validation(vec![e]))?
        .unwrap_or(100);
    let warehouse = inventory
        .put_warehouse(
            &tenant.id,
            NewWarehouse {
                code: code.into_inner(),
                name: body.name,
                country: body.country,
                state: body.state,
                postal_code: body.postal_code,
                priority,
                serves: body.serves,
                address: body.address,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "warehouse": warehouse })))
}

pub async fn list_warehouses(
    key: AuthKey,
    inventory: web::Data<InventoryService>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::InventoryRead)?;
    let warehouses = inventory.warehouses(&tenant.id).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "warehouses": warehouses })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingBody {
    sku: String,
}

pub async fn put_mapping(
    key: AuthKey,
    inventory: web::Data<InventoryService>,
    path: web::Path<(String, String)>,
    ApiJson(body): ApiJson<MappingBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::InventoryWrite)?;
    let (channel, identifier) = path.into_inner();
    inventory
        .map_identifier(&tenant.id, &channel, &identifier, &body.sku)
        .await?;
    Ok(HttpResponse::Ok().json(
        json!({ "status": 1, "channel": channel, "identifier": identifier, "sku": body.sku }),
    ))
}

pub async fn get_mapping(
    key: AuthKey,
    inventory: web::Data<InventoryService>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::InventoryRead)?;
    let (channel, identifier) = path.into_inner();
    let sku = inventory
        .mapped_sku(&tenant.id, &channel, &identifier)
        .await?
        .ok_or_else(|| {
            InventoryError::Unmapped(format!(
                "`{identifier}` of channel `{channel}` is mapped to no SKU"
            ))
        })?;
    Ok(HttpResponse::Ok()
        .json(json!({ "status": 1, "channel": channel, "identifier": identifier, "sku": sku })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MovementBody {
    #[serde(rename = "type")]
    kind: String,
    sku: String,
    warehouse: String,
    quantity: Value,
    reason: Option<String>,
    request_id: Option<String>,
}

/// Receive, adjust after a count (`quantity` is the counted on-hand), or restock a return.
pub async fn record_movement(
    key: AuthKey,
    inventory: web::Data<InventoryService>,
    ApiJson(body): ApiJson<MovementBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::InventoryWrite)?;
    let mut problems = Vec::new();
    let kind = match MovementKind::parse(&body.kind) {
        Some(k @ (MovementKind::Receive | MovementKind::Adjust | MovementKind::Restock)) => Some(k),
        _ => {
            problems.push(FieldError::new(
                "type",
                "must be RECEIVE, ADJUST or RESTOCK",
            ));
            None
        }
    };
    let min = i64::from(kind != Some(MovementKind::Adjust));
    let quantity = whole("quantity", &body.quantity, min)
        .map_err(|e| problems.push(e))
        .ok();
    let (Some(kind), Some(quantity)) = (kind, quantity) else {
        return Err(ApiError::Validation(problems));
    };
    let (movement, stock, new) = inventory
        .record(
            &tenant.id,
            MovementRequest {
                kind,
                sku: body.sku,
                warehouse: body.warehouse,
                quantity,
                reason: body.reason,
                request_id: body.request_id,
            },
        )
        .await?;
    let answer = json!({ "status": 1, "movement": movement, "stock": stock });
    Ok(if new {
        HttpResponse::Created().json(answer)
    } else {
        HttpResponse::Ok().json(answer)
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MovementFilter {
    sku: String,
    warehouse: Option<String>,
    limit: Option<u32>,
}

pub async fn list_movements(
    key: AuthKey,
    inventory: web::Data<InventoryService>,
    query: web::Query<MovementFilter>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::InventoryRead)?;
    let q = query.into_inner();
    let movements = inventory
        .movements(
            &tenant.id,
            &q.sku,
            q.warehouse.as_deref(),
            q.limit.unwrap_or(100),
        )
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "movements": movements })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SafetyBody {
    safety_stock: Value,
}

pub async fn put_safety_stock(
    key: AuthKey,
    inventory: web::Data<InventoryService>,
    path: web::Path<(String, String)>,
    ApiJson(body): ApiJson<SafetyBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::InventoryWrite)?;
    let (sku, warehouse) = path.into_inner();
    let quantity =
        whole("safetyStock", &body.safety_stock, 0).map_err(|e| ApiError::Validation(vec![e]))?;
    let stock = inventory
        .set_safety_stock(&tenant.id, &sku, &warehouse, quantity)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "stock": stock })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelBody {
    platform: String,
    base_url: String,
    api_version: Option<String>,
    access_token: String,
    location_id: String,
    #[serde(default)]
    warehouses: Vec<String>,
    buffer: Option<Value>,
    cap: Option<Value>,
}

/// Connects a sales channel for available-to-sell pushes (the access token is never shown).
pub async fn put_channel(
    key: AuthKey,
    inventory: web::Data<InventoryService>,
    channel: web::Path<String>,
    ApiJson(body): ApiJson<ChannelBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::InventoryWrite)?;
    let mut problems = Vec::new();
    let mut number = |field: &str, v: &Option<Value>| {
        v.as_ref()
            .map(|v| whole(field, v, 0))
            .transpose()
            .map_err(|e| problems.push(e))
            .ok()
            .flatten()
    };
    let (buffer, cap) = (number("buffer", &body.buffer), number("cap", &body.cap));
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let channel = inventory
        .put_channel(
            &tenant.id,
            crate::inventory::channels::NewChannel {
                channel: channel.into_inner(),
                platform: body.platform,
                base_url: body.base_url,
                api_version: body.api_version,
                access_token: body.access_token,
                location_id: body.location_id,
                warehouses: body.warehouses,
                buffer: buffer.unwrap_or(0),
                cap,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "channel": channel })))
}

pub async fn list_channels(
    key: AuthKey,
    inventory: web::Data<InventoryService>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::InventoryRead)?;
    let channels = inventory.channels(&tenant.id).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "channels": channels })))
}
