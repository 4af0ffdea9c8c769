//! New orders of a batch written together: one look-alike query for all of them, then the
//! orders, their first versions and their events each as one multi-row statement (per 500
//! orders), instead of five statements per order. An order another ingest created in the
//! meantime is left to the one-by-one path, which finds it.

use super::event_types::{HELD, RECEIVED};
use super::ingest::{Ingested, Outcome};
use super::input::millis;
use super::{HoldReason, OrderError, OrderInput, aggregate};
use crate::events::{self, NewEvent};
use crate::store::now_millis;
use crate::store::sql::{Arg, dialect_of, rows_at, statement};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use std::collections::{HashMap, HashSet};

/// Orders per statement (an order is 20 bound values: 10,000 a statement).
const CHUNK: usize = 500;

/// A new order as written.
struct Fresh {
    at: usize,
    order: OrderInput,
    id: String,
    hash: String,
    body: String,
    purchase: String,
    placed: i64,
    twin: Option<String>,
}

/// Creates `orders` ((position in the request, order), none known when read): the answers of
/// those created, and the orders that turned out to exist (created concurrently).
pub(super) async fn create_many(
    conn: &mut AnyConnection,
    tenant: &str,
    orders: Vec<(usize, OrderInput)>,
    window: i64,
) -> Result<(Vec<(usize, Ingested)>, Vec<(usize, OrderInput)>), OrderError> {
    let mut made = Vec::with_capacity(orders.len());
    let mut taken = Vec::new();
    let mut orders = orders.into_iter().peekable();
    // Look-alikes within the batch: earlier orders of the request with the same purchase key.
    let mut earlier: HashMap<String, Vec<(String, String, String, i64)>> = HashMap::new();
    while orders.peek().is_some() {
        let chunk: Vec<(usize, OrderInput)> = orders.by_ref().take(CHUNK).collect();
        let now = now_millis();
        let mut fresh = Vec::with_capacity(chunk.len());
        for (at, order) in chunk {
            let body = serde_json::to_string(&order).map_err(crate::store::StoreError::decode)?;
            fresh.push(Fresh {
                at,
                id: format!("ord_{}", uuid::Uuid::now_v7().simple()),
                hash: order.content_hash(),
                purchase: order.purchase_key(),
                placed: order.placed_at.as_deref().and_then(millis).unwrap_or(now),
                order,
                body,
                twin: None,
            });
        }
        look_alikes(conn, tenant, &mut fresh, window).await?;
        for f in &mut fresh {
            let near = earlier.entry(f.purchase.clone()).or_default();
            if f.twin.is_none() {
                f.twin = near
                    .iter()
                    .rev()
                    .find(|(_, channel, shop, placed)| {
                        (placed - f.placed).abs() <= window
                            && !(*channel == f.order.channel && *shop == f.order.shop)
                    })
                    .map(|(id, ..)| id.clone());
            }
            near.push((
                f.id.clone(),
                f.order.channel.clone(),
                f.order.shop.clone(),
                f.placed,
            ));
        }
        let inserted = insert_orders(conn, tenant, &fresh, now).await?;
        let (written, lost): (Vec<Fresh>, Vec<Fresh>) =
            fresh.into_iter().partition(|f| inserted.contains(&f.id));
        taken.extend(lost.into_iter().map(|f| (f.at, f.order)));
        if written.is_empty() {
            continue;
        }
        let mut args = Vec::with_capacity(written.len() * 7);
        for f in &written {
            args.extend([
                Arg::Text(f.id.clone()),
                Arg::Int(1),
                Arg::Text(tenant.to_owned()),
                Arg::Text(f.hash.clone()),
                Arg::Text(f.body.clone()),
                Arg::OptInt(f.order.updated_at.as_deref().and_then(millis)),
                Arg::Int(now),
            ]);
        }
        let sql = format!(
            "INSERT INTO ord_versions (order_id, version, tenant_id, content_hash, body, \
             source_updated_at_ms, received_at_ms) VALUES {}",
            rows_at(1, written.len(), 7)
        );
        statement(dialect_of(conn), &sql, args)
            .execute(&mut *conn)
            .await?;
        let mut published = Vec::with_capacity(written.len());
        for f in written {
            let (state, reason, detail) = hold_of(&f);
            let o = &f.order;
            let summary = json!({"id": f.id, "channel": o.channel, "shop": o.shop,
                "externalId": o.external_id, "orderNumber": o.order_number, "version": 1,
                "state": state, "holdReason": reason, "holdDetail": detail});
            let event = |event_type, order: &serde_json::Value| {
                NewEvent::new(
                    tenant,
                    event_type,
                    aggregate(&f.id),
                    json!({ "order": order }),
                )
            };
            published.push(event(RECEIVED, &summary));
            if f.twin.is_some() {
                published.push(event(HELD, &summary));
            }
            made.push((
                f.at,
                Ingested {
                    order_id: f.id,
                    external_id: f.order.external_id,
                    version: 1,
                    outcome: Outcome::Created,
                    state: state.into(),
                },
            ));
        }
        events::append_many(conn, published).await?;
    }
    Ok((made, taken))
}

/// State, hold reason and detail of a new order: held when it looks like another channel's or
/// shop's purchase.
fn hold_of(f: &Fresh) -> (&'static str, Option<&'static str>, Option<String>) {
    match &f.twin {
        Some(other) => (
            "on_hold",
            Some(HoldReason::PossibleDuplicate.as_str()),
            Some(format!("looks like the same purchase as order {other}")),
        ),
        None => ("received", None, None),
    }
}

/// Sets each order's `twin`: of the 50 stored orders with its purchase key placed nearest
/// within the window (bounded: a shop with many equal purchases does not make each new order
/// scan them all), one of another channel or shop.
async fn look_alikes(
    conn: &mut AnyConnection,
    tenant: &str,
    fresh: &mut [Fresh],
    window: i64,
) -> Result<(), OrderError> {
    let mut args = vec![Arg::Text(tenant.to_owned())];
    for (i, f) in fresh.iter().enumerate() {
        args.extend([
            Arg::Int(i64::try_from(i).unwrap_or(0)),
            Arg::Text(f.purchase.clone()),
            Arg::Int(f.placed.saturating_sub(window)),
            Arg::Int(f.placed.saturating_add(window)),
            Arg::Text(f.order.channel.clone()),
            Arg::Text(f.order.shop.clone()),
        ]);
    }
    let sql = format!(
        "SELECT v.column1, (SELECT id FROM (SELECT id, channel, shop FROM ord_orders \
         WHERE tenant_id = $1 AND purchase_key = v.column2 \
         AND placed_at_ms BETWEEN v.column3 AND v.column4 \
         ORDER BY placed_at_ms DESC LIMIT 50) near \
         WHERE NOT (channel = v.column5 AND shop = v.column6) LIMIT 1) \
         FROM (VALUES {}) AS v",
        rows_at(2, fresh.len(), 6)
    );
    for row in statement(dialect_of(conn), &sql, args)
        .fetch_all(&mut *conn)
        .await?
    {
        let (i, twin): (i64, Option<String>) = (row.get(0), row.get(1));
        if let Some(f) = usize::try_from(i).ok().and_then(|i| fresh.get_mut(i)) {
            f.twin = twin;
        }
    }
    Ok(())
}

/// Inserts the orders (those whose natural key exists already are skipped); the ids inserted.
async fn insert_orders(
    conn: &mut AnyConnection,
    tenant: &str,
    fresh: &[Fresh],
    now: i64,
) -> Result<HashSet<String>, OrderError> {
    let mut args = Vec::with_capacity(fresh.len() * 20);
    for f in fresh {
        let (state, reason, detail) = hold_of(f);
        let o = &f.order;
        args.extend([
            Arg::Text(f.id.clone()),
            Arg::Text(tenant.to_owned()),
            Arg::Text(o.channel.clone()),
            Arg::Text(o.shop.clone()),
            Arg::Text(o.external_id.clone()),
            Arg::Int(1),
            Arg::Text(f.hash.clone()),
            Arg::OptInt(o.updated_at.as_deref().and_then(millis)),
            Arg::Text(state.into()),
            Arg::OptText(reason.map(str::to_owned)),
            Arg::OptText(detail),
            Arg::OptText(f.twin.clone()),
            Arg::Text(f.body.clone()),
            Arg::Text(o.consignee_key()),
            Arg::Text(f.purchase.clone()),
            Arg::Int(f.placed),
            Arg::OptInt(o.paid_at.as_deref().and_then(millis)),
            Arg::OptInt(f.twin.is_none().then_some(now)),
            Arg::Int(now),
            Arg::Int(now),
        ]);
    }
    let sql = format!(
        "INSERT INTO ord_orders (id, tenant_id, channel, shop, external_id, version, \
         content_hash, source_updated_at_ms, state, hold_reason, hold_detail, duplicate_of, body, \
         consignee_key, purchase_key, placed_at_ms, paid_at_ms, next_attempt_at_ms, \
         created_at_ms, updated_at_ms) VALUES {} \
         ON CONFLICT (tenant_id, channel, shop, external_id) DO NOTHING RETURNING id",
        rows_at(1, fresh.len(), 20)
    );
    Ok(statement(dialect_of(conn), &sql, args)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect())
}
