//! The processor's first half: a received order is checked, allocated through the inventory
//! service, routed by the shipping rules and given its shipments (one per warehouse, merged
//! with another order's open shipment to the same consignee when the tenant merges).

use super::event_types::HELD;
use super::ingest::order_event;
use super::rules::{Facts, route};
use super::{HoldReason, OrderError, OrderInput, OrdersService};
use crate::inventory::{AllocationRequest, AllocationState, InventoryError, Item};
use crate::store::now_millis;
use futures_util::StreamExt;
use serde_json::{Value, json};
use sqlx::Row;
use std::collections::HashMap;

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
/// allocations share the inventory service's batches.
const PLANNING: usize = 16;

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
        futures_util::stream::iter(claimed)
            .for_each_concurrent(PLANNING, |(tenant, id)| async move {
                if let Err(e) = self.plan(&tenant, &id).await {
                    tracing::warn!(order = %id, error = %e, "planning an order failed; retrying");
                    let retry = now_millis()
                        + i64::try_from(self.settings.retry_initial_ms).unwrap_or(1000);
                    let _ = self
                        .db
                        .write(
                            sqlx::query(
                                "UPDATE ord_orders SET next_attempt_at_ms = $1 \
                                 WHERE id = $2 AND state = 'received'",
                            )
                            .bind(retry)
                            .bind(id),
                        )
                        .await;
                }
            })
            .await;
        Ok(done)
    }

    async fn load(&self, id: &str) -> Result<Loaded, OrderError> {
        let row = sqlx::query(
            "SELECT state, version, body, allocation_id, allocation_seq, consignee_key \
             FROM ord_orders WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or_else(|| OrderError::NotFound(format!("no order `{id}`")))?;
        let body: String = row.get(2);
        Ok(Loaded {
            state: row.get(0),
            version: row.get(1),
            order: serde_json::from_str(&body).map_err(crate::store::StoreError::decode)?,
            allocation_id: row.get(3),
            allocation_seq: row.get(4),
            consignee_key: row.get(5),
        })
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

    async fn plan(&self, tenant: &str, id: &str) -> Result<(), OrderError> {
        let mut o = self.load(id).await?;
        if o.state != "received" {
            return Ok(());
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
                .hold(tenant, id, "received", HoldReason::AddressProblem, detail)
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
                    .hold(tenant, id, "received", HoldReason::UnknownSku, named(f))
                    .await;
            }
            Err(InventoryError::UnmappedIdentifier(f)) => {
                return self
                    .hold(tenant, id, "received", HoldReason::UnmappedSku, named(f))
                    .await;
            }
            Err(InventoryError::InsufficientStock(f)) => {
                return self
                    .hold(tenant, id, "received", HoldReason::NoStock, named(f))
                    .await;
            }
            Err(InventoryError::Validation(f)) => {
                return self
                    .hold(tenant, id, "received", HoldReason::AddressProblem, named(f))
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
            return Ok(());
        }
        // Route each warehouse's part.
        let mut attributes: HashMap<String, Value> = HashMap::new();
        let mut shipments = Vec::new();
        for part in &allocation.warehouses {
            let mut lines = Vec::new();
            for r in &part.lines {
                if !attributes.contains_key(&r.sku) {
                    let sku = self.inventory.sku(tenant, &r.sku).await?;
                    attributes.insert(r.sku.clone(), sku.attributes);
                }
                let attrs = &attributes[&r.sku];
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
                attributes: part.lines.iter().map(|r| &attributes[&r.sku]).collect(),
            };
            let Some(rule) = route(&self.settings.rules, &facts) else {
                self.release_quietly(tenant, &allocation_id, "no shipping rule")
                    .await?;
                let detail = format!(
                    "no shipping rule takes {weight} g from {} to {}",
                    part.warehouse, to.country
                );
                return self
                    .hold(tenant, id, "received", HoldReason::Unroutable, detail)
                    .await;
            };
            shipments.push((
                part.warehouse.clone(),
                rule.channel.to_ascii_uppercase(),
                rule.max_parcel_grams,
                lines,
            ));
        }
        self.store_plan(tenant, id, o, allocation_id, shipments)
            .await
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
