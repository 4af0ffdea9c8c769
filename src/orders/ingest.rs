//! Ingest: one order or a batch, deduplicated on (channel, shop, external id). A repeated copy
//! is a no-op, a changed one (newer, different content) a new version, an older one is ignored;
//! a new order that looks like another channel's purchase is held for review.

use super::event_types::UPDATED;
use super::input::millis;
use super::{OrderError, OrderInput, OrdersService, aggregate};
use crate::events::{self, NewEvent};
use crate::store::sql::Arg;
use crate::store::{Dialect, now_millis};
use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A new order.
    Created,
    /// A new version of a known order.
    Updated,
    /// The same content again.
    Unchanged,
    /// An older copy than the one stored.
    Stale,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingested {
    pub order_id: String,
    pub external_id: String,
    pub version: i64,
    pub outcome: Outcome,
    pub state: String,
}

/// Appends an order's event.
pub(crate) async fn order_event(
    conn: &mut AnyConnection,
    tenant: &str,
    event_type: &'static str,
    order_id: &str,
    order: serde_json::Value,
) -> Result<(), OrderError> {
    events::append(
        conn,
        NewEvent::new(
            tenant,
            event_type,
            aggregate(order_id),
            json!({ "order": order }),
        ),
    )
    .await?;
    Ok(())
}

impl OrdersService {
    /// Ingests `orders` (checked first: one malformed order refuses the batch, naming its
    /// fields under `orders[i].` when `batch`) in one transaction.
    pub async fn ingest(
        &self,
        tenant: &str,
        orders: Vec<OrderInput>,
        batch: bool,
    ) -> Result<Vec<Ingested>, OrderError> {
        let mut valid = Vec::with_capacity(orders.len());
        let mut problems = Vec::new();
        for (i, order) in orders.into_iter().enumerate() {
            let at = if batch {
                format!("orders[{i}].")
            } else {
                String::new()
            };
            match order.normalize(&at) {
                Ok(o) => valid.push(o),
                Err(e) => problems.extend(e),
            }
        }
        if !problems.is_empty() {
            return Err(OrderError::Validation(problems));
        }
        // Repeats are answered from one read, outside the writer; only new and changed orders
        // are written (and looked at again there, under the lock).
        let known = self.known(tenant, &valid).await?;
        let mut answers: Vec<Option<Ingested>> = Vec::with_capacity(valid.len());
        let mut writes = Vec::new();
        for (i, order) in valid.into_iter().enumerate() {
            let key = (
                order.channel.clone(),
                order.shop.clone(),
                order.external_id.clone(),
            );
            match known.get(&key) {
                Some(k) if k.hash == order.content_hash() => {
                    answers.push(Some(k.answer(&order, Outcome::Unchanged)));
                }
                Some(k)
                    if matches!((order.updated_at.as_deref().and_then(millis), k.updated),
                        (Some(new), Some(old)) if new <= old) =>
                {
                    answers.push(Some(k.answer(&order, Outcome::Stale)));
                }
                known_order => {
                    answers.push(None);
                    writes.push((i, order, known_order.is_none()));
                }
            }
        }
        if writes.is_empty() {
            return Ok(answers.into_iter().flatten().collect());
        }
        let (tenant, dialect) = (tenant.to_owned(), self.db.dialect);
        let window = i64::try_from(self.settings.duplicate_window_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX / 4);
        let written = self
            .db
            .transact(move |conn| {
                Box::pin(async move {
                    // Orders not stored when read are created together (a key twice in the
                    // request: its first copy); the rest, and any created meanwhile, one by one
                    // after them, in the request's order.
                    let mut seen = HashSet::new();
                    let (fresh, mut rest): (Vec<_>, Vec<_>) =
                        writes.into_iter().partition(|(_, o, new)| {
                            *new && seen.insert((
                                o.channel.clone(),
                                o.shop.clone(),
                                o.external_id.clone(),
                            ))
                        });
                    let fresh = fresh.into_iter().map(|(i, o, _)| (i, o)).collect();
                    let (mut out, taken) =
                        super::ingest_many::create_many(conn, &tenant, fresh, window).await?;
                    rest.extend(taken.into_iter().map(|(i, o)| (i, o, false)));
                    rest.sort_by_key(|(i, ..)| *i);
                    for (i, order, _) in rest {
                        out.push((i, upsert(conn, dialect, &tenant, order, window).await?));
                    }
                    Ok::<_, OrderError>(out)
                })
            })
            .await?;
        for (i, ingested) in written {
            answers[i] = Some(ingested);
        }
        Ok(answers.into_iter().flatten().collect())
    }

    /// What is stored of these orders, by natural key (one query per channel and shop: the
    /// natural key's index answers it).
    async fn known(
        &self,
        tenant: &str,
        orders: &[OrderInput],
    ) -> Result<HashMap<(String, String, String), Known>, OrderError> {
        let mut shops: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
        for o in orders {
            shops
                .entry((o.channel.as_str(), o.shop.as_str()))
                .or_default()
                .push(o.external_id.as_str());
        }
        let mut known = HashMap::new();
        for ((channel, shop), mut ids) in shops {
            ids.sort_unstable();
            ids.dedup();
            // One look-up in the natural key's index per id. PostgreSQL may instead filter
            // an `IN` list against every order of the shop (after a bulk ingest its statistics
            // still say the shop has a handful of orders), so there each id is its own
            // look-up of the whole key.
            let sql = match self.db.dialect {
                Dialect::Sqlite => format!(
                    "SELECT external_id, id, version, content_hash, source_updated_at_ms, state \
                     FROM ord_orders WHERE tenant_id = $1 AND channel = $2 AND shop = $3 \
                     AND external_id IN ({})",
                    crate::store::sql::list(4, ids.len())
                ),
                Dialect::Postgres => format!(
                    "SELECT o.external_id, o.id, o.version, o.content_hash, \
                     o.source_updated_at_ms, o.state FROM (VALUES {}) AS v (external_id) \
                     CROSS JOIN LATERAL (SELECT * FROM ord_orders WHERE tenant_id = $1 \
                     AND channel = $2 AND shop = $3 AND external_id = v.external_id LIMIT 1) o",
                    crate::store::sql::rows_at(4, ids.len(), 1)
                ),
            };
            let mut args = vec![
                Arg::Text(tenant.to_owned()),
                Arg::Text(channel.to_owned()),
                Arg::Text(shop.to_owned()),
            ];
            args.extend(ids.iter().map(|id| Arg::Text((*id).to_owned())));
            let query = crate::store::sql::statement(self.db.dialect, &sql, args);
            for r in query.fetch_all(&self.db.pool).await? {
                known.insert(
                    (channel.to_owned(), shop.to_owned(), r.get(0)),
                    Known {
                        id: r.get(1),
                        version: r.get(2),
                        hash: r.get(3),
                        updated: r.get(4),
                        state: r.get(5),
                    },
                );
            }
        }
        Ok(known)
    }
}

/// A stored order, as far as ingest needs it.
struct Known {
    id: String,
    version: i64,
    hash: String,
    updated: Option<i64>,
    state: String,
}

impl Known {
    fn answer(&self, order: &OrderInput, outcome: Outcome) -> Ingested {
        Ingested {
            order_id: self.id.clone(),
            external_id: order.external_id.clone(),
            version: self.version,
            outcome,
            state: self.state.clone(),
        }
    }
}

async fn upsert(
    conn: &mut AnyConnection,
    dialect: Dialect,
    tenant: &str,
    order: OrderInput,
    window: i64,
) -> Result<Ingested, OrderError> {
    let hash = order.content_hash();
    let updated = order.updated_at.as_deref().and_then(millis);
    let now = now_millis();
    let body = serde_json::to_string(&order).map_err(crate::store::StoreError::decode)?;
    let lock = match dialect {
        Dialect::Postgres => " FOR UPDATE",
        Dialect::Sqlite => "",
    };
    // Twice at most: a concurrent ingest may insert the order between the look and the insert.
    for _ in 0..2 {
        if let Some(found) = update(conn, lock, tenant, &order, &hash, updated, &body, now).await? {
            return Ok(found);
        }
        let (made, _) =
            super::ingest_many::create_many(conn, tenant, vec![(0, order.clone())], window).await?;
        if let Some((_, made)) = made.into_iter().next() {
            return Ok(made);
        }
    }
    Err(OrderError::Store(crate::store::StoreError::decode(
        "the order was neither found nor created",
    )))
}

/// A new version of a known order, or what the known order is; `None` if it is not known.
#[allow(clippy::too_many_arguments)]
async fn update(
    conn: &mut AnyConnection,
    lock: &str,
    tenant: &str,
    order: &OrderInput,
    hash: &str,
    updated: Option<i64>,
    body: &str,
    now: i64,
) -> Result<Option<Ingested>, OrderError> {
    let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, version, content_hash, source_updated_at_ms, state FROM ord_orders \
         WHERE tenant_id = $1 AND channel = $2 AND shop = $3 AND external_id = $4{lock}"
    )))
    .bind(tenant)
    .bind(&order.channel)
    .bind(&order.shop)
    .bind(&order.external_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = existing else {
        return Ok(None);
    };
    let (id, version, stored_hash, stored_updated, state): (
        String,
        i64,
        String,
        Option<i64>,
        String,
    ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    let mut answer = Ingested {
        order_id: id.clone(),
        external_id: order.external_id.clone(),
        version,
        outcome: Outcome::Unchanged,
        state: state.clone(),
    };
    if stored_hash == hash {
        return Ok(Some(answer));
    }
    if let (Some(new), Some(old)) = (updated, stored_updated)
        && new <= old
    {
        answer.outcome = Outcome::Stale;
        return Ok(Some(answer));
    }
    let version = version + 1;
    sqlx::query(
        "INSERT INTO ord_versions (order_id, version, tenant_id, content_hash, body, \
         source_updated_at_ms, received_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(version)
    .bind(tenant)
    .bind(hash)
    .bind(body)
    .bind(updated)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    // Not yet allocated: the new version is planned afresh. Later the version is kept, and
    // the shipment already on its way is not changed (docs/orders.md).
    let replan = matches!(state.as_str(), "received" | "on_hold");
    sqlx::query(
        "UPDATE ord_orders SET version = $1, content_hash = $2, source_updated_at_ms = $3, \
         body = $4, consignee_key = $5, purchase_key = $6, paid_at_ms = COALESCE($7, paid_at_ms), \
         state = CASE WHEN $8 = 1 THEN 'received' ELSE state END, \
         hold_reason = CASE WHEN $8 = 1 THEN NULL ELSE hold_reason END, \
         hold_detail = CASE WHEN $8 = 1 THEN NULL ELSE hold_detail END, \
         next_attempt_at_ms = CASE WHEN $8 = 1 THEN $9 ELSE next_attempt_at_ms END, \
         updated_at_ms = $9 WHERE id = $10",
    )
    .bind(version)
    .bind(hash)
    .bind(updated)
    .bind(body)
    .bind(order.consignee_key())
    .bind(order.purchase_key())
    .bind(order.paid_at.as_deref().and_then(millis))
    .bind(i64::from(replan))
    .bind(now)
    .bind(&id)
    .execute(&mut *conn)
    .await?;
    answer.version = version;
    answer.outcome = Outcome::Updated;
    if replan {
        answer.state = "received".into();
    }
    order_event(
        conn,
        tenant,
        UPDATED,
        &id,
        json!({"id": id, "channel": order.channel, "shop": order.shop,
               "externalId": order.external_id, "version": version, "state": answer.state,
               "replanned": replan}),
    )
    .await?;
    Ok(Some(answer))
}
