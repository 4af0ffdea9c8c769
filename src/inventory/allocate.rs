//! Allocations: reserve stock for an order by the allocation rule, then commit it (the waybill
//! is created) or release it (cancelled, or expired).

use super::batch::{Batcher, Placed, Request};
use super::catalog::{check_code, check_country};
use super::close::Held;
use super::error::invalid;
use super::reserve::Claim;
use super::{Allocation, AllocationRequest, Area, InventoryError, InventoryService, Item};
use crate::fields::FieldError;
use crate::geo::PostcodeRange;
use crate::store::{StoreError, now_millis};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;

/// How near a warehouse is to a destination: 3 serves its postcode, 2 its state, 1 its country.
pub(super) fn nearness(
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
        let expires_at = req
            .expires_in
            .or(self.default_expiry)
            .map(|d| now_millis() + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4));
        let lines: Vec<(String, i64)> = wanted.into_iter().collect();
        let request = serde_json::json!({
            "lines": lines.iter().map(|(s, q)| serde_json::json!({"sku": s, "quantity": q})).collect::<Vec<_>>(),
            "destination": {"country": req.country, "state": req.state, "postalCode": req.postal_code},
        });
        let fingerprint = hex::encode(Sha256::digest(request.to_string().as_bytes()));
        let id = req.allocation_id;
        let request = Request {
            claim: Claim {
                tenant: tenant.to_owned(),
                id: id.clone(),
                fingerprint: fingerprint.clone(),
                plan: request.to_string(),
                expires_at,
                created_at: now_millis(),
            },
            lines,
            fields: skus,
            destination: (req.country, req.state, req.postal_code),
        };
        // A claim taken back (its allocation refused) between our batch and the read of it is
        // claimed afresh.
        for _ in 0..3 {
            match self.batcher().place(request.clone()).await? {
                Placed::New(allocation) => return Ok((allocation, true)),
                Placed::Claimed => {
                    if let Some(first) = self.repeat(tenant, &id, &fingerprint).await? {
                        return Ok((first, false));
                    }
                }
            }
        }
        Err(InventoryError::Store(StoreError::decode(format!(
            "allocationId `{id}` kept being claimed and released; try again"
        ))))
    }

    /// The allocation a repeated id answers with (`None`: no longer claimed); refused when the
    /// id was used with other lines or destination.
    async fn repeat(
        &self,
        tenant: &str,
        id: &str,
        fingerprint: &str,
    ) -> Result<Option<Allocation>, InventoryError> {
        let mut conn = self.db.pool.acquire().await?;
        let first: Option<String> =
            sqlx::query("SELECT fingerprint FROM inv_allocations WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .map(|r| r.get(0));
        match first {
            None => Ok(None),
            Some(first) if first != fingerprint => Err(InventoryError::IdConflict(format!(
                "allocationId `{id}` was used with other lines or destination"
            ))),
            Some(_) => Ok(Some(load(&mut conn, tenant, id).await?)),
        }
    }

    fn batcher(&self) -> &Batcher {
        // One batch at a time on both databases, holding every request that waited meanwhile.
        // PostgreSQL ran four side by side: they were a third the size and queued on the same
        // stock rows' locks (docs/benchmarks.md, fifth measurement).
        self.batcher
            .get_or_init(|| Batcher::spawn(self.db.clone(), 1))
    }

    pub async fn allocation(&self, tenant: &str, id: &str) -> Result<Allocation, InventoryError> {
        let mut conn = self.db.pool.acquire().await?;
        load(&mut conn, tenant, id).await
    }
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
    let reservations = sqlx::query(
        "SELECT id, sku, warehouse, quantity, state FROM inv_reservations \
         WHERE tenant_id = $1 AND allocation_id = $2 ORDER BY warehouse, sku, id",
    )
    .bind(tenant)
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let held = Held {
        state: row.get(0),
        expires_at: row.get(1),
        created_at: row.get(2),
        reason: row.get(3),
        lines: reservations
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect(),
    };
    Ok(held.answer(id))
}
