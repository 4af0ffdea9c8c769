//! The processor's first half: a received order is checked, allocated through the inventory
//! service, routed by the shipping rules and given its shipments (one per warehouse, merged
//! with another order's open shipment to the same consignee when the tenant merges).

use super::event_types::HELD;
use super::ingest::order_event;
use super::plan::Plan;
use super::rules::{Facts, route};
use super::{HoldReason, OrderError, OrderInput, OrdersService};
use crate::inventory::{AllocationRequest, AllocationState, InventoryError, Item};
use crate::store::now_millis;
use crate::store::sql::{Arg, statement};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sqlx::Row;
use std::collections::HashMap;
use std::sync::Mutex;

/// SKU attributes by tenant and SKU, read once per processor step.
type Attributes = HashMap<(String, String), Value>;

/// A line of a shipment: what of which order it carries.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ShipmentLine {
    pub order_id: String,
    pub sku: String,
    pub quantity: i64,
    pub unit_weight_grams: u64,
    pub unit_price: String,
    pub currency: String,
    pub title: Option<String>,
    pub hs_code: Option<String>,
    pub origin_country: Option<String>,
}

/// Orders planned at once by one processor step. Plans to one consignee still take turns where
/// they merge (`store_plan`: PostgreSQL's advisory lock, SQLite's single writer), and their
/// allocations share the inventory service's batches (as many as the batcher takes at once).
const PLANNING: usize = 64;

/// How long a claimed order or shipment is left to the instance that claimed it.
pub(crate) const CLAIM_MS: i64 = 60_000;

pub(super) struct Loaded {
    pub(super) state: String,
    pub(super) version: i64,
    pub(super) order: OrderInput,
    pub(super) allocation_id: Option<String>,
    pub(super) allocation_seq: i64,
    pub(super) consignee_key: String,
}

impl OrdersService {
    /// One step of the processor: due orders planned, due shipments sent; how many of each.
    pub async fn run_once(&self) -> (usize, usize) {
        let planned = self.plan_step().await;
        let sent = self.send_step().await;
        (planned, sent)
    }

    /// Due orders planned (a batch at most); how many. A server runs this and [`Self::send_step`]
    /// side by side, so shipments are sent while the next orders are planned.
    pub async fn plan_step(&self) -> usize {
        self.plan_due().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "planning orders failed");
            0
        })
    }

    /// Due shipments sent to the gateway (a batch at most); how many.
    pub async fn send_step(&self) -> usize {
        self.send_due().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "sending shipments failed");
            0
        })
    }

    async fn plan_due(&self) -> Result<usize, OrderError> {
        let now = now_millis();
        // Claimed in one statement (the due time moved on: one instance plans each; on
        // PostgreSQL a row another instance claimed first no longer matches when re-checked).
        let claimed: Vec<(String, String)> = self
            .db
            .write_fetch_all(
                sqlx::query(
                    "UPDATE ord_orders SET next_attempt_at_ms = $1 WHERE id IN \
                     (SELECT id FROM ord_orders WHERE next_attempt_at_ms <= $2 \
                     AND state = 'received' ORDER BY next_attempt_at_ms LIMIT $3) \
                     AND next_attempt_at_ms <= $2 AND state = 'received' \
                     RETURNING tenant_id, id",
                )
                .bind(now + CLAIM_MS)
                .bind(now)
                .bind(i64::from(self.settings.batch)),
            )
            .await?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let done = claimed.len();
        if done == 0 {
            return Ok(0);
        }
        // What the step's orders need is read once for all of them: the orders, their SKUs'
        // attributes; each is then planned (allocations share the inventory's batches) and the
        // plans stored together.
        let ids: Vec<String> = claimed.iter().map(|(_, id)| id.clone()).collect();
        let mut loaded = self.load_many(&ids).await?;
        let attributes = Mutex::new(self.attributes_of(&claimed, &loaded).await?);
        let items: Vec<(String, String, Loaded)> = claimed
            .into_iter()
            .filter_map(|(tenant, id)| loaded.remove(&id).map(|o| (tenant, id, o)))
            .collect();
        let plans = Mutex::new(Vec::new());
        futures_util::stream::iter(items)
            .for_each_concurrent(PLANNING, |(tenant, id, o)| {
                let (plans, attributes) = (&plans, &attributes);
                async move {
                    match self.plan(&tenant, &id, o, attributes).await {
                        Ok(Some(plan)) => {
                            plans.lock().unwrap_or_else(|p| p.into_inner()).push(plan)
                        }
                        Ok(None) => {}
                        Err(e) => self.plan_later(&id, &e).await,
                    }
                }
            })
            .await;
        let plans = plans.into_inner().unwrap_or_else(|p| p.into_inner());
        self.store_all(plans).await;
        Ok(done)
    }

    /// An order whose planning failed is planned again after the first retry interval.
    pub(super) async fn plan_later(&self, id: &str, e: &OrderError) {
        tracing::warn!(order = %id, error = %e, "planning an order failed; retrying");
        let retry = now_millis() + i64::try_from(self.settings.retry_initial_ms).unwrap_or(1000);
        let _ = self
            .db
            .write(
                sqlx::query(
                    "UPDATE ord_orders SET next_attempt_at_ms = $1 \
                     WHERE id = $2 AND state = 'received'",
                )
                .bind(retry)
                .bind(id.to_owned()),
            )
            .await;
    }

    /// The orders of `ids` (one read).
    async fn load_many(&self, ids: &[String]) -> Result<HashMap<String, Loaded>, OrderError> {
        let sql = format!(
            "SELECT id, state, version, body, allocation_id, allocation_seq, consignee_key \
             FROM ord_orders WHERE id IN ({})",
            crate::store::sql::list(1, ids.len())
        );
        let args = ids.iter().map(|i| Arg::Text(i.clone())).collect();
        let mut loaded = HashMap::with_capacity(ids.len());
        for row in statement(self.db.dialect, &sql, args)
            .fetch_all(&self.db.pool)
            .await?
        {
            let body: String = row.get(3);
            let o = Loaded {
                state: row.get(1),
                version: row.get(2),
                order: serde_json::from_str(&body).map_err(crate::store::StoreError::decode)?,
                allocation_id: row.get(4),
                allocation_seq: row.get(5),
                consignee_key: row.get(6),
            };
            loaded.insert(row.get(0), o);
        }
        Ok(loaded)
    }

    /// The attributes of the SKUs the orders name, by tenant and SKU (one read per tenant).
    async fn attributes_of(
        &self,
        claimed: &[(String, String)],
        loaded: &HashMap<String, Loaded>,
    ) -> Result<Attributes, OrderError> {
        let mut named: HashMap<&str, Vec<String>> = HashMap::new();
        for (tenant, id) in claimed {
            if let Some(o) = loaded.get(id) {
                let skus = named.entry(tenant).or_default();
                skus.extend(o.order.lines.iter().filter_map(|l| l.sku.clone()));
            }
        }
        let mut attributes = HashMap::new();
        for (tenant, mut skus) in named {
            skus.sort_unstable();
            skus.dedup();
            for (sku, a) in self.inventory.attributes(tenant, &skus).await? {
                attributes.insert((tenant.to_owned(), sku), a);
            }
        }
        Ok(attributes)
    }

    /// Puts a received order on hold.
    pub(crate) async fn hold(
        &self,
        tenant: &str,
        id: &str,
        from: &'static str,
        reason: HoldReason,
        detail: String,
    ) -> Result<(), OrderError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.db
            .transact(move |conn| {
                Box::pin(async move {
                    let n = sqlx::query(
                        "UPDATE ord_orders SET state = 'on_hold', hold_reason = $1, \
                         hold_detail = $2, next_attempt_at_ms = NULL, updated_at_ms = $3 \
                         WHERE id = $4 AND state = $5",
                    )
                    .bind(reason.as_str())
                    .bind(&detail)
                    .bind(now_millis())
                    .bind(&id)
                    .bind(from)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if n > 0 {
                        order_event(
                            conn,
                            &tenant,
                            HELD,
                            &id,
                            json!({"id": id, "state": "ON_HOLD", "holdReason": reason.as_str(),
                                   "holdDetail": detail}),
                        )
                        .await?;
                    }
                    Ok::<_, OrderError>(())
                })
            })
            .await
    }

    /// Plans a claimed order: its plan to store, or `None` when nothing more is to be done now
    /// (held, or its allocation to be made afresh at the next step).
    async fn plan(
        &self,
        tenant: &str,
        id: &str,
        mut o: Loaded,
        attributes: &Mutex<Attributes>,
    ) -> Result<Option<Plan>, OrderError> {
        if o.state != "received" {
            return Ok(None);
        }
        if let Some(previous) = o.allocation_id.take() {
            self.release_quietly(tenant, &previous, "order planned again")
                .await?;
            self.db
                .write(
                    sqlx::query(
                        "UPDATE ord_orders SET allocation_id = NULL, \
                         allocation_seq = allocation_seq + 1 WHERE id = $1",
                    )
                    .bind(id.to_owned()),
                )
                .await?;
            o.allocation_seq += 1;
        }
        let to = &o.order.ship_to;
        let mut problems = Vec::new();
        if matches!(to.country.as_str(), "US" | "CA") && to.state.is_none() {
            problems.push("shipTo.state is required for this country");
        }
        if matches!(
            to.country.as_str(),
            "US" | "CA" | "GB" | "DE" | "FR" | "CN" | "JP" | "AU"
        ) && to.postal_code.is_none()
        {
            problems.push("shipTo.postalCode is required for this country");
        }
        if to.name.is_empty() || to.street1.is_empty() || to.city.is_empty() {
            problems.push("shipTo needs a name, street1 and city");
        }
        if !problems.is_empty() {
            let detail = problems.join("; ");
            return self
                .held(tenant, id, HoldReason::AddressProblem, detail)
                .await;
        }
        let lines = o
            .order
            .lines
            .iter()
            .map(|l| {
                let item = match (&l.sku, &l.identifier) {
                    (Some(sku), _) => Item::Sku(sku.clone()),
                    (None, Some(identifier)) => Item::Channel {
                        channel: o.order.channel.clone(),
                        identifier: identifier.clone(),
                    },
                    (None, None) => Item::Sku(String::new()),
                };
                (item, l.quantity)
            })
            .collect();
        let allocation_id = format!("{id}.{}", o.allocation_seq);
        let allocated = self
            .inventory
            .allocate(
                tenant,
                AllocationRequest {
                    allocation_id: allocation_id.clone(),
                    lines,
                    country: to.country.clone(),
                    state: to.state.clone(),
                    postal_code: to.postal_code.clone(),
                    expires_in: None,
                },
            )
            .await;
        let named =
            |fields: Vec<crate::fields::FieldError>| crate::fields::FieldError::describe(&fields);
        let allocation = match allocated {
            Ok((a, _)) => a,
            Err(InventoryError::UnknownSku(f)) => {
                return self
                    .held(tenant, id, HoldReason::UnknownSku, named(f))
                    .await;
            }
            Err(InventoryError::UnmappedIdentifier(f)) => {
                return self
                    .held(tenant, id, HoldReason::UnmappedSku, named(f))
                    .await;
            }
            Err(InventoryError::InsufficientStock(f)) => {
                return self.held(tenant, id, HoldReason::NoStock, named(f)).await;
            }
            Err(InventoryError::Validation(f)) => {
                return self
                    .held(tenant, id, HoldReason::AddressProblem, named(f))
                    .await;
            }
            Err(e) => return Err(e.into()),
        };
        if allocation.state != AllocationState::Active {
            // Expired or released since it was made: the next step allocates afresh.
            self.db
                .write(
                    sqlx::query(
                        "UPDATE ord_orders SET allocation_seq = allocation_seq + 1, \
                         next_attempt_at_ms = $1 WHERE id = $2 AND state = 'received'",
                    )
                    .bind(now_millis())
                    .bind(id.to_owned()),
                )
                .await?;
            return Ok(None);
        }
        // Route each warehouse's part.
        let mut known: HashMap<String, Value> = HashMap::new();
        let mut shipments = Vec::new();
        for part in &allocation.warehouses {
            let mut lines = Vec::new();
            for r in &part.lines {
                if !known.contains_key(&r.sku) {
                    let key = (tenant.to_owned(), r.sku.clone());
                    let cached = attributes
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&key)
                        .cloned();
                    let found = match cached {
                        Some(a) => a,
                        // A SKU mapped from a channel's identifier: read on its own.
                        None => self.inventory.sku(tenant, &r.sku).await?.attributes,
                    };
                    known.insert(r.sku.clone(), found);
                }
                let attrs = &known[&r.sku];
                let ordered = o
                    .order
                    .lines
                    .iter()
                    .find(|l| l.sku.as_deref() == Some(&r.sku));
                let weight = ordered
                    .and_then(|l| l.weight_grams)
                    .or_else(|| attrs.get("weightGrams").and_then(Value::as_u64))
                    .unwrap_or(self.settings.default_line_weight_grams)
                    .max(1);
                let ordered = ordered.or_else(|| {
                    // A line given by channel identifier: the first such line stands for it.
                    o.order.lines.iter().find(|l| l.sku.is_none())
                });
                lines.push(ShipmentLine {
                    order_id: id.to_owned(),
                    sku: r.sku.clone(),
                    quantity: r.quantity,
                    unit_weight_grams: weight,
                    unit_price: ordered.map_or_else(|| "0".into(), |l| l.unit_price.clone()),
                    currency: o.order.currency.clone(),
                    title: ordered.and_then(|l| l.title.clone()),
                    hs_code: ordered.and_then(|l| l.hs_code.clone()),
                    origin_country: ordered.and_then(|l| l.origin_country.clone()),
                });
            }
            let weight: u64 = lines
                .iter()
                .map(|l| l.unit_weight_grams * u64::try_from(l.quantity).unwrap_or(0))
                .sum();
            let facts = Facts {
                country: &to.country,
                state: to.state.as_deref(),
                service_level: o.order.service_level.as_deref(),
                weight_grams: weight,
                attributes: part.lines.iter().map(|r| &known[&r.sku]).collect(),
            };
            let Some(rule) = route(&self.settings.rules, &facts) else {
                self.release_quietly(tenant, &allocation_id, "no shipping rule")
                    .await?;
                let detail = format!(
                    "no shipping rule takes {weight} g from {} to {}",
                    part.warehouse, to.country
                );
                return self.held(tenant, id, HoldReason::Unroutable, detail).await;
            };
            shipments.push((
                part.warehouse.clone(),
                rule.channel.to_ascii_uppercase(),
                rule.max_parcel_grams,
                lines,
            ));
        }
        Ok(Some(Plan {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            loaded: o,
            allocation_id,
            shipments,
        }))
    }

    /// Holds a received order (see [`Self::hold`]); nothing more to plan.
    async fn held(
        &self,
        tenant: &str,
        id: &str,
        reason: HoldReason,
        detail: String,
    ) -> Result<Option<Plan>, OrderError> {
        self.hold(tenant, id, "received", reason, detail)
            .await
            .map(|()| None)
    }

    /// Releases an allocation; one already released, committed or unknown is left as it is.
    pub(crate) async fn release_quietly(
        &self,
        tenant: &str,
        allocation: &str,
        reason: &str,
    ) -> Result<(), OrderError> {
        match self
            .inventory
            .release(tenant, allocation, Some(reason.to_owned()))
            .await
        {
            Ok(_) | Err(InventoryError::NotActive(_)) | Err(InventoryError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
