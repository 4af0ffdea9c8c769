//! Allocations: reserve stock for an order by the allocation rule, then commit it (the waybill
//! is created) or release it (cancelled, or expired).

use super::catalog::{check_code, check_country};
use super::error::invalid;
use super::event_types::ALLOCATION_CREATED;
use super::movements::{Change, apply};
use super::plan::{Candidate, plan};
use super::{
    Allocation, AllocationRequest, AllocationState, Area, InventoryError, InventoryService, Item,
    MovementKind, Reservation, WarehousePlan,
};
use crate::events::{self, NewEvent};
use crate::fields::FieldError;
use crate::geo::PostcodeRange;
use crate::store::{Dialect, now_millis, rfc3339_millis};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, HashMap};

/// How near a warehouse is to a destination: 3 serves its postcode, 2 its state, 1 its country.
fn nearness(
    serves: &[Area],
    own_country: &str,
    country: &str,
    state: Option<&str>,
    postal: Option<&str>,
) -> u8 {
    let mut best = u8::from(own_country == country);
    for area in serves.iter().filter(|a| a.country == country) {
        let by_postcode = postal.is_some_and(|p| {
            area.postcode_ranges
                .iter()
                .filter_map(|r| PostcodeRange::parse(r))
                .any(|r| r.contains(p))
        });
        let by_state = state.is_some_and(|s| area.states.iter().any(|a| a.eq_ignore_ascii_case(s)));
        best = best.max(if by_postcode {
            3
        } else if by_state {
            2
        } else {
            1
        });
    }
    best
}

impl InventoryService {
    /// Reserves stock for `req` by the allocation rule. The same allocation id again answers
    /// with the first allocation (`false`: nothing new); with other lines it is refused.
    pub async fn allocate(
        &self,
        tenant: &str,
        req: AllocationRequest,
    ) -> Result<(Allocation, bool), InventoryError> {
        check_code("allocationId", &req.allocation_id)?;
        check_country("destination.country", &req.country)?;
        if req.lines.is_empty() || req.lines.len() > 500 {
            return Err(invalid("lines", "must have 1-500 lines"));
        }
        let mut problems = Vec::new();
        let mut unmapped = Vec::new();
        let mut skus: Vec<(String, String)> = Vec::new();
        let mut wanted: BTreeMap<String, i64> = BTreeMap::new();
        for (i, (item, qty)) in req.lines.iter().enumerate() {
            if !(1..=1_000_000_000).contains(qty) {
                problems.push(FieldError::new(
                    format!("lines[{i}].quantity"),
                    "must be a whole number from 1 to 1000000000",
                ));
            }
            let sku = match item {
                Item::Sku(sku) => {
                    check_code(&format!("lines[{i}].sku"), sku)?;
                    sku.clone()
                }
                Item::Channel {
                    channel,
                    identifier,
                } => match self.mapped_sku(tenant, channel, identifier).await? {
                    Some(sku) => sku,
                    None => {
                        unmapped.push(FieldError::new(
                            format!("lines[{i}].identifier"),
                            format!("`{identifier}` of channel `{channel}` is mapped to no SKU"),
                        ));
                        continue;
                    }
                },
            };
            skus.push((format!("lines[{i}].sku"), sku.clone()));
            *wanted.entry(sku).or_default() += qty;
        }
        if !problems.is_empty() {
            return Err(InventoryError::Validation(problems));
        }
        if !unmapped.is_empty() {
            return Err(InventoryError::UnmappedIdentifier(unmapped));
        }
        self.known_skus(tenant, &skus).await?;
        let expires_at = req
            .expires_in
            .or(self.default_expiry)
            .map(|d| now_millis() + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4));
        let candidates: Vec<Candidate> = self
            .warehouses(tenant)
            .await?
            .into_iter()
            .map(|w| Candidate {
                nearness: nearness(
                    &w.serves,
                    &w.country,
                    &req.country,
                    req.state.as_deref(),
                    req.postal_code.as_deref(),
                ),
                code: w.code,
                priority: w.priority,
            })
            .collect();
        let lines: Vec<(String, i64)> = wanted.into_iter().collect();
        let request = serde_json::json!({
            "lines": lines.iter().map(|(s, q)| serde_json::json!({"sku": s, "quantity": q})).collect::<Vec<_>>(),
            "destination": {"country": req.country, "state": req.state, "postalCode": req.postal_code},
        });
        let fingerprint = hex::encode(Sha256::digest(request.to_string().as_bytes()));
        let (tenant, dialect, id) = (tenant.to_owned(), self.db.dialect, req.allocation_id);
        let created_at = now_millis();
        self.db
            .transact(move |conn| {
                Box::pin(async move {
                    let claimed = sqlx::query(
                        "INSERT INTO inv_allocations (tenant_id, id, fingerprint, state, plan, \
                         expires_at_ms, created_at_ms) VALUES ($1, $2, $3, 'active', $4, $5, $6) \
                         ON CONFLICT (tenant_id, id) DO NOTHING",
                    )
                    .bind(&tenant)
                    .bind(&id)
                    .bind(&fingerprint)
                    .bind(request.to_string())
                    .bind(expires_at)
                    .bind(created_at)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if claimed == 0 {
                        let first: String = sqlx::query(
                            "SELECT fingerprint FROM inv_allocations WHERE tenant_id = $1 AND id = $2",
                        )
                        .bind(&tenant)
                        .bind(&id)
                        .fetch_one(&mut *conn)
                        .await?
                        .get(0);
                        if first != fingerprint {
                            return Err(InventoryError::IdConflict(format!(
                                "allocationId `{id}` was used with other lines or destination"
                            )));
                        }
                        return Ok((load(conn, &tenant, &id).await?, false));
                    }
                    let mut available = HashMap::new();
                    for (sku, _) in &lines {
                        for (warehouse, free) in lock_sku(conn, dialect, &tenant, sku).await? {
                            available.insert((sku.clone(), warehouse), free);
                        }
                    }
                    let chosen = plan(&lines, &candidates, &available).map_err(|short| {
                        InventoryError::InsufficientStock(
                            short
                                .into_iter()
                                .map(|(sku, asked, have)| {
                                    FieldError::new(
                                        format!("lines[sku={sku}].quantity"),
                                        format!("{asked} asked, {have} available in all warehouses"),
                                    )
                                })
                                .collect(),
                        )
                    })?;
                    let now = now_millis();
                    let mut warehouses = Vec::with_capacity(chosen.len());
                    for (warehouse, take) in &chosen {
                        let mut reserved = Vec::with_capacity(take.len());
                        for (sku, qty) in take {
                            let rid = format!("res_{}", uuid::Uuid::now_v7().simple());
                            sqlx::query(
                                "INSERT INTO inv_reservations (id, tenant_id, allocation_id, sku, \
                                 warehouse, quantity, state, created_at_ms) \
                                 VALUES ($1, $2, $3, $4, $5, $6, 'active', $7)",
                            )
                            .bind(&rid)
                            .bind(&tenant)
                            .bind(&id)
                            .bind(sku)
                            .bind(warehouse)
                            .bind(qty)
                            .bind(now)
                            .execute(&mut *conn)
                            .await?;
                            apply(
                                conn,
                                Change {
                                    tenant: &tenant,
                                    sku,
                                    warehouse,
                                    kind: MovementKind::Reserve,
                                    on_hand: 0,
                                    reserved: *qty,
                                    reservation_id: Some(&rid),
                                    reason: None,
                                    request_id: None,
                                },
                            )
                            .await?;
                            reserved.push(Reservation {
                                reservation_id: rid,
                                sku: sku.clone(),
                                quantity: *qty,
                                state: "ACTIVE".into(),
                            });
                        }
                        reserved.sort_by(|a, b| (&a.sku, &a.reservation_id).cmp(&(&b.sku, &b.reservation_id)));
                        warehouses.push(WarehousePlan {
                            warehouse: warehouse.clone(),
                            lines: reserved,
                        });
                    }
                    // As `load` reads it back: by warehouse, then SKU.
                    warehouses.sort_by(|a, b| a.warehouse.cmp(&b.warehouse));
                    let allocation = Allocation {
                        allocation_id: id.clone(),
                        state: AllocationState::Active,
                        warehouses,
                        expires_at: expires_at.map(rfc3339_millis),
                        reason: None,
                        created_at: rfc3339_millis(created_at),
                    };
                    publish(conn, &tenant, ALLOCATION_CREATED, &allocation).await?;
                    Ok((allocation, true))
                })
            })
            .await
    }

    pub async fn allocation(&self, tenant: &str, id: &str) -> Result<Allocation, InventoryError> {
        let mut conn = self.db.pool.acquire().await?;
        load(&mut conn, tenant, id).await
    }
}

/// Locks a SKU's stock rows in warehouse order (PostgreSQL: every allocation locks in the same
/// order, so two cannot deadlock) and reads what each can give.
async fn lock_sku(
    conn: &mut AnyConnection,
    dialect: Dialect,
    tenant: &str,
    sku: &str,
) -> Result<Vec<(String, i64)>, InventoryError> {
    let sql = match dialect {
        Dialect::Postgres => {
            "SELECT warehouse, on_hand - reserved - safety FROM inv_stock \
             WHERE tenant_id = $1 AND sku = $2 ORDER BY warehouse FOR UPDATE"
        }
        Dialect::Sqlite => {
            "SELECT warehouse, on_hand - reserved - safety FROM inv_stock \
             WHERE tenant_id = $1 AND sku = $2 ORDER BY warehouse"
        }
    };
    Ok(sqlx::query(sql)
        .bind(tenant)
        .bind(sku)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

pub(super) async fn publish(
    conn: &mut AnyConnection,
    tenant: &str,
    event_type: &'static str,
    allocation: &Allocation,
) -> Result<(), InventoryError> {
    events::append(
        conn,
        NewEvent::new(
            tenant,
            event_type,
            format!("allocation:{}", allocation.allocation_id),
            serde_json::json!({ "allocation": allocation }),
        ),
    )
    .await?;
    Ok(())
}

/// An allocation as answered: its reservations grouped by warehouse.
pub(super) async fn load(
    conn: &mut AnyConnection,
    tenant: &str,
    id: &str,
) -> Result<Allocation, InventoryError> {
    let row = sqlx::query(
        "SELECT state, expires_at_ms, created_at_ms, reason FROM inv_allocations \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| InventoryError::NotFound(format!("no allocation `{id}`")))?;
    let state: String = row.get(0);
    let expires: Option<i64> = row.get(1);
    let reservations = sqlx::query(
        "SELECT id, sku, warehouse, quantity, state FROM inv_reservations \
         WHERE tenant_id = $1 AND allocation_id = $2 ORDER BY warehouse, sku, id",
    )
    .bind(tenant)
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let mut warehouses: Vec<WarehousePlan> = Vec::new();
    for r in reservations {
        let warehouse: String = r.get(2);
        let state: String = r.get(4);
        let line = Reservation {
            reservation_id: r.get(0),
            sku: r.get(1),
            quantity: r.get(3),
            state: state.to_uppercase(),
        };
        match warehouses.last_mut() {
            Some(w) if w.warehouse == warehouse => w.lines.push(line),
            _ => warehouses.push(WarehousePlan {
                warehouse,
                lines: vec![line],
            }),
        }
    }
    let state = AllocationState::parse(&state);
    Ok(Allocation {
        allocation_id: id.to_owned(),
        state,
        warehouses,
        expires_at: expires
            .filter(|_| state == AllocationState::Active)
            .map(rfc3339_millis),
        reason: row.get(3),
        created_at: rfc3339_millis(row.get(2)),
    })
}
