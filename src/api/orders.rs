//! `/v1/orders`: ingest (one or a batch of up to 500), list, one order with its history, the
//! actions people take on an order, its labels, and the tenant's merge setting.

use crate::api::auth::AuthKey;
use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, TimedBody};
use crate::auth::Scope;
use crate::fields::FieldError;
use crate::orders::gateway::GatewayError;
use crate::orders::{Action, OrderFilter, OrderInput, OrderState, OrdersService};
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

/// The most orders one batch may carry.
pub const MAX_BATCH: usize = 500;

/// An order from JSON, each problem named by its path under `at`.
fn order_from(value: Value, at: &str) -> Result<OrderInput, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            at.trim_end_matches('.').to_owned()
        } else {
            format!("{at}{path}")
        };
        FieldError::new(
            if field.is_empty() {
                "body".into()
            } else {
                field
            },
            e.into_inner().to_string(),
        )
    })
}

pub async fn ingest(
    key: AuthKey,
    orders: web::Data<OrdersService>,
    body: TimedBody,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::OrdersWrite)?;
    let value: Value = crate::api::extract::parse(&body.0)?;
    let batch = value.get("orders").is_some();
    let items = match value {
        Value::Object(mut fields) if batch => {
            if fields.len() > 1 {
                return Err(ApiError::Validation(vec![FieldError::new(
                    "body",
                    "a batch has only `orders`",
                )]));
            }
            match fields.remove("orders") {
                Some(Value::Array(list)) if (1..=MAX_BATCH).contains(&list.len()) => list,
                _ => {
                    return Err(ApiError::Validation(vec![FieldError::new(
                        "orders",
                        format!("must be a list of 1-{MAX_BATCH} orders"),
                    )]));
                }
            }
        }
        one @ Value::Object(_) => vec![one],
        _ => {
            return Err(ApiError::InvalidJson(
                "expected an order or {\"orders\": [...]}".into(),
            ));
        }
    };
    let mut inputs = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = if batch {
            format!("orders[{i}].")
        } else {
            String::new()
        };
        match order_from(item, &at) {
            Ok(o) => inputs.push(o),
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let results = orders.ingest(&tenant.id, inputs, batch).await?;
    if batch {
        let count = |o: &str| {
            results
                .iter()
                .filter(|r| serde_json::to_value(r.outcome).ok() == Some(json!(o)))
                .count()
        };
        return Ok(HttpResponse::Ok().json(json!({
            "status": 1,
            "created": count("created"),
            "updated": count("updated"),
            "unchanged": count("unchanged"),
            "stale": count("stale"),
            "results": results,
        })));
    }
    let one = &results[0];
    let answer = json!({ "status": 1, "order": one });
    Ok(match one.outcome {
        crate::orders::Outcome::Created => HttpResponse::Created().json(answer),
        _ => HttpResponse::Ok().json(answer),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    channel: Option<String>,
    shop: Option<String>,
    created_from: Option<String>,
    created_to: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list(
    key: AuthKey,
    orders: web::Data<OrdersService>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::OrdersRead)?;
    let q = query.into_inner();
    let mut problems = Vec::new();
    let state = q.state.as_deref().map(|s| match OrderState::parse(s) {
        Some(st) => st.as_str().to_owned(),
        None => {
            problems.push(FieldError::new("state", "is not an order state"));
            String::new()
        }
    });
    let mut time = |field: &str, v: Option<String>| {
        v.and_then(|t| match chrono::DateTime::parse_from_rfc3339(&t) {
            Ok(t) => Some(t.timestamp_millis()),
            Err(_) => {
                problems.push(FieldError::new(field, "must be an RFC 3339 time"));
                None
            }
        })
    };
    let from_ms = time("createdFrom", q.created_from);
    let to_ms = time("createdTo", q.created_to);
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        problems.push(FieldError::new("limit", "must be from 1 to 500"));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let page = orders
        .list(
            &tenant.id,
            OrderFilter {
                state,
                channel: q.channel.map(|c| c.to_ascii_lowercase()),
                shop: q.shop,
                from_ms,
                to_ms,
                before_id: q.cursor,
                limit,
            },
        )
        .await?;
    let next = (page.len() as i64 == limit)
        .then(|| page.last().map(|o| o.id.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({ "status": 1, "orders": page, "nextCursor": next })))
}

pub async fn get(
    key: AuthKey,
    orders: web::Data<OrdersService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::OrdersRead)?;
    let mut order = orders.get(&tenant.id, &id).await?;
    order["status"] = json!(1);
    Ok(HttpResponse::Ok().json(order))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionBody {
    action: String,
    reason: Option<String>,
    warehouse: Option<String>,
}

pub async fn act(
    key: AuthKey,
    orders: web::Data<OrdersService>,
    id: web::Path<String>,
    ApiJson(body): ApiJson<ActionBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::OrdersWrite)?;
    let reason = body.reason.filter(|r| !r.trim().is_empty());
    if reason.as_ref().is_some_and(|r| r.len() > 500) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "reason",
            "must be at most 500 characters",
        )]));
    }
    let action = match body.action.as_str() {
        "release" => Action::Release,
        "hold" => Action::Hold { detail: reason },
        "cancel" => Action::Cancel { reason },
        "refund" => Action::Refund { reason },
        "authorize_return" => Action::AuthorizeReturn { reason },
        "receive_return" => match body.warehouse {
            Some(warehouse) => Action::ReceiveReturn { warehouse },
            None => {
                return Err(ApiError::Validation(vec![FieldError::new(
                    "warehouse",
                    "is required to receive a return",
                )]));
            }
        },
        "restock" => Action::Restock,
        "write_off" => Action::WriteOff { reason },
        _ => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "action",
                "must be one of release, hold, cancel, refund, authorize_return, receive_return, restock, write_off",
            )]));
        }
    };
    let order_id = orders.resolve(&tenant.id, &id).await?.id;
    let state = orders.act(&tenant.id, &order_id, action).await?;
    Ok(HttpResponse::Ok().json(json!({
        "status": 1,
        "orderId": order_id,
        "state": state.as_str().to_ascii_uppercase(),
    })))
}

/// All labels of an order as one PDF (a label-station key may print them).
pub async fn labels(
    key: AuthKey,
    orders: web::Data<OrdersService>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::LabelsRead)?;
    let numbers = orders.waybills_of(&tenant.id, &id).await?;
    if numbers.is_empty() {
        return Err(ApiError::LabelNotAvailable(format!(
            "order `{id}` has no waybill yet"
        )));
    }
    let pdf = orders
        .labels(&tenant.id, &numbers)
        .await
        .map_err(|e| match e {
            GatewayError::Unavailable(m) => ApiError::Unavailable(m),
            GatewayError::Rejected { message, .. } => ApiError::LabelNotAvailable(message),
        })?;
    Ok(crate::api::labels::document("pdf", pdf, false))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsBody {
    merge: bool,
    merge_window_secs: Option<i64>,
}

pub async fn get_settings(
    key: AuthKey,
    orders: web::Data<OrdersService>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::OrdersRead)?;
    let (merge, window) = orders.merge_setting(&tenant.id).await?;
    Ok(HttpResponse::Ok().json(json!({"status": 1, "merge": merge, "mergeWindowSecs": window})))
}

pub async fn put_settings(
    key: AuthKey,
    orders: web::Data<OrdersService>,
    ApiJson(body): ApiJson<SettingsBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::OrdersWrite)?;
    let window = body.merge_window_secs.unwrap_or(300);
    if !(0..=86_400).contains(&window) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "mergeWindowSecs",
            "must be from 0 to 86400",
        )]));
    }
    orders.set_merge(&tenant.id, body.merge, window).await?;
    Ok(HttpResponse::Ok()
        .json(json!({"status": 1, "merge": body.merge, "mergeWindowSecs": window})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskQuery {
    limit: Option<i64>,
}

/// Paid orders near (or past) a platform's promise, soonest deadline first.
pub async fn at_risk(
    key: AuthKey,
    orders: web::Data<OrdersService>,
    query: web::Query<RiskQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::OrdersRead)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "limit",
            "must be from 1 to 1000",
        )]));
    }
    let risks = orders.at_risk(Some(&tenant.id), limit).await?;
    Ok(HttpResponse::Ok().json(json!({"status": 1, "orders": risks})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PickListBody {
    warehouse: String,
    orders: Vec<String>,
}

/// A warehouse's pick list (PDF) for a set of orders.
pub async fn pick_list(
    key: AuthKey,
    orders: web::Data<OrdersService>,
    ApiJson(body): ApiJson<PickListBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::OrdersRead)?;
    if body.orders.is_empty() || body.orders.len() > 500 {
        return Err(ApiError::Validation(vec![FieldError::new(
            "orders",
            "must name 1-500 orders",
        )]));
    }
    let picks = orders
        .picks(&tenant.id, &body.warehouse, &body.orders)
        .await?;
    let date = crate::store::now_rfc3339();
    let warehouse = body.warehouse.clone();
    let pdf = tokio::task::spawn_blocking(move || {
        crate::orders::picklist::render(&warehouse, &date[..10], &picks)
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header(("Content-Disposition", "inline; filename=\"pick-list.pdf\""))
        .body(pdf))
}
