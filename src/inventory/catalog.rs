//! What stock is kept of and where: SKUs, warehouses, and channel identifiers mapped to SKUs.

use super::error::invalid;
use super::{Area, InventoryError, InventoryService, Sku, Warehouse, WarehouseAddress};
use crate::fields::FieldError;
use crate::geo::PostcodeRange;
use crate::store::now_rfc3339;
use crate::store::sql::{Arg, statement};
use sqlx::Row;
use std::collections::HashMap;

/// A SKU or channel identifier: 1–64 visible characters.
pub(super) fn check_code(field: &str, value: &str) -> Result<(), InventoryError> {
    if value.is_empty() || value.len() > 64 || value.chars().any(|c| c.is_control()) {
        return Err(invalid(
            field,
            "must be 1-64 characters without control characters",
        ));
    }
    Ok(())
}

/// A warehouse code: 1–32 of letters, digits, `-` and `_`.
pub(super) fn check_warehouse_code(field: &str, value: &str) -> Result<(), InventoryError> {
    if value.is_empty()
        || value.len() > 32
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(field, "must be 1-32 letters, digits, '-' or '_'"));
    }
    Ok(())
}

pub(super) fn check_country(field: &str, value: &str) -> Result<(), InventoryError> {
    if isocountry::CountryCode::for_alpha2(value).is_err() {
        return Err(invalid(field, "must be an ISO 3166-1 alpha-2 country code"));
    }
    Ok(())
}

pub struct NewSku {
    pub sku: String,
    pub name: Option<String>,
    pub attributes: Option<serde_json::Value>,
    pub low_stock_threshold: Option<i64>,
}

pub struct NewWarehouse {
    pub code: String,
    pub name: Option<String>,
    pub country: String,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub priority: i64,
    pub serves: Vec<Area>,
    pub address: Option<WarehouseAddress>,
}

impl InventoryService {
    /// Creates or replaces a SKU's definition (its stock is untouched).
    pub async fn put_sku(&self, tenant: &str, new: NewSku) -> Result<Sku, InventoryError> {
        check_code("sku", &new.sku)?;
        let attributes = new.attributes.unwrap_or_else(|| serde_json::json!({}));
        if !attributes.is_object() {
            return Err(invalid("attributes", "must be an object"));
        }
        if new.low_stock_threshold.is_some_and(|t| t < 0) {
            return Err(invalid("lowStockThreshold", "must be 0 or more"));
        }
        self.db
            .write(
                sqlx::query(
                    "INSERT INTO inv_skus (tenant_id, sku, name, attributes, \
                     low_stock_threshold, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (tenant_id, sku) DO UPDATE SET name = excluded.name, \
                     attributes = excluded.attributes, \
                     low_stock_threshold = excluded.low_stock_threshold",
                )
                .bind(tenant.to_owned())
                .bind(new.sku.clone())
                .bind(new.name)
                .bind(attributes.to_string())
                .bind(new.low_stock_threshold)
                .bind(now_rfc3339()),
            )
            .await?;
        self.sku(tenant, &new.sku).await
    }

    pub async fn sku(&self, tenant: &str, sku: &str) -> Result<Sku, InventoryError> {
        let row = sqlx::query(
            "SELECT sku, name, attributes, low_stock_threshold, created_at FROM inv_skus \
             WHERE tenant_id = $1 AND sku = $2",
        )
        .bind(tenant)
        .bind(sku)
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or_else(|| InventoryError::NotFound(format!("no SKU `{sku}`")))?;
        let attributes: String = row.get(2);
        Ok(Sku {
            sku: row.get(0),
            name: row.get(1),
            attributes: serde_json::from_str(&attributes).unwrap_or_default(),
            low_stock_threshold: row.get(3),
            created_at: row.get(4),
        })
    }

    /// The attributes of those of `skus` the tenant defined, by SKU (one read).
    pub async fn attributes(
        &self,
        tenant: &str,
        skus: &[String],
    ) -> Result<HashMap<String, serde_json::Value>, InventoryError> {
        if skus.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT sku, attributes FROM inv_skus WHERE tenant_id = $1 AND sku IN ({})",
            crate::store::sql::list(2, skus.len())
        );
        let mut args = vec![Arg::Text(tenant.to_owned())];
        args.extend(skus.iter().map(|s| Arg::Text(s.clone())));
        Ok(statement(self.db.dialect, &sql, args)
            .fetch_all(&self.db.pool)
            .await?
            .into_iter()
            .map(|r| {
                let attributes: String = r.get(1);
                (
                    r.get(0),
                    serde_json::from_str(&attributes).unwrap_or_default(),
                )
            })
            .collect())
    }

    /// Creates or replaces a warehouse.
    pub async fn put_warehouse(
        &self,
        tenant: &str,
        new: NewWarehouse,
    ) -> Result<Warehouse, InventoryError> {
        check_warehouse_code("code", &new.code)?;
        let mut problems = Vec::new();
        let note = |problems: &mut Vec<FieldError>, r: Result<(), InventoryError>| {
            if let Err(InventoryError::Validation(d)) = r {
                problems.extend(d);
            }
        };
        note(&mut problems, check_country("country", &new.country));
        if !(0..=1_000_000).contains(&new.priority) {
            note(
                &mut problems,
                Err(invalid("priority", "must be between 0 and 1000000")),
            );
        }
        for (i, area) in new.serves.iter().enumerate() {
            note(
                &mut problems,
                check_country(&format!("serves[{i}].country"), &area.country),
            );
            for (j, r) in area.postcode_ranges.iter().enumerate() {
                if PostcodeRange::parse(r).is_none() {
                    problems.push(FieldError::new(
                        format!("serves[{i}].postcodeRanges[{j}]"),
                        "must be a range of digit prefixes like 900-961",
                    ));
                }
            }
        }
        if let Some(a) = &new.address {
            for (field, value) in [
                ("address.name", &a.name),
                ("address.phone", &a.phone),
                ("address.street1", &a.street1),
                ("address.city", &a.city),
            ] {
                if value.trim().is_empty() || value.len() > 200 {
                    problems.push(FieldError::new(field, "must be 1-200 characters"));
                }
            }
        }
        if !problems.is_empty() {
            return Err(InventoryError::Validation(problems));
        }
        let address = new
            .address
            .as_ref()
            .and_then(|a| serde_json::to_string(a).ok());
        let serves = serde_json::to_string(&new.serves).unwrap_or_else(|_| "[]".into());
        self.db
            .write(
                sqlx::query(
                    "INSERT INTO inv_warehouses (tenant_id, code, name, country, state, \
                     postal_code, priority, serves, created_at, address) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (tenant_id, code) DO UPDATE SET name = excluded.name, \
                     country = excluded.country, state = excluded.state, \
                     postal_code = excluded.postal_code, priority = excluded.priority, \
                     serves = excluded.serves, address = excluded.address",
                )
                .bind(tenant.to_owned())
                .bind(new.code.clone())
                .bind(new.name)
                .bind(new.country)
                .bind(new.state)
                .bind(new.postal_code)
                .bind(new.priority)
                .bind(serves)
                .bind(now_rfc3339())
                .bind(address),
            )
            .await?;
        self.warehouses(tenant)
            .await?
            .into_iter()
            .find(|w| w.code == new.code)
            .ok_or_else(|| InventoryError::NotFound(format!("no warehouse `{}`", new.code)))
    }

    pub async fn warehouses(&self, tenant: &str) -> Result<Vec<Warehouse>, InventoryError> {
        let rows = sqlx::query(
            "SELECT code, name, country, state, postal_code, priority, serves, created_at, address \
             FROM inv_warehouses WHERE tenant_id = $1 ORDER BY priority, code",
        )
        .bind(tenant)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let serves: String = r.get(6);
                Warehouse {
                    code: r.get(0),
                    name: r.get(1),
                    country: r.get(2),
                    state: r.get(3),
                    postal_code: r.get(4),
                    priority: r.get(5),
                    serves: serde_json::from_str(&serves).unwrap_or_default(),
                    created_at: r.get(7),
                    address: r
                        .get::<Option<String>, _>(8)
                        .and_then(|a| serde_json::from_str(&a).ok()),
                }
            })
            .collect())
    }

    /// Maps a channel's identifier (variant id, ASIN, listing id) to a SKU of the tenant.
    pub async fn map_identifier(
        &self,
        tenant: &str,
        channel: &str,
        identifier: &str,
        sku: &str,
    ) -> Result<(), InventoryError> {
        check_code("channel", channel)?;
        check_code("identifier", identifier)?;
        check_code("sku", sku)?;
        self.known_skus(tenant, &[("sku".into(), sku.to_owned())])
            .await?;
        self.db
            .write(
                sqlx::query(
                    "INSERT INTO inv_sku_aliases (tenant_id, channel, identifier, sku, \
                     created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (tenant_id, channel, identifier) DO UPDATE SET sku = excluded.sku",
                )
                .bind(tenant.to_owned())
                .bind(channel.to_owned())
                .bind(identifier.to_owned())
                .bind(sku.to_owned())
                .bind(now_rfc3339()),
            )
            .await?;
        Ok(())
    }

    /// The SKU a channel's identifier is mapped to, if any.
    pub async fn mapped_sku(
        &self,
        tenant: &str,
        channel: &str,
        identifier: &str,
    ) -> Result<Option<String>, InventoryError> {
        Ok(sqlx::query(
            "SELECT sku FROM inv_sku_aliases WHERE tenant_id = $1 AND channel = $2 \
             AND identifier = $3",
        )
        .bind(tenant)
        .bind(channel)
        .bind(identifier)
        .fetch_optional(&self.db.pool)
        .await?
        .map(|r| r.get(0)))
    }

    /// Refuses (naming each field) SKUs the tenant has not defined; `skus` is (field, sku).
    pub(super) async fn known_skus(
        &self,
        tenant: &str,
        skus: &[(String, String)],
    ) -> Result<(), InventoryError> {
        let mut unknown = Vec::new();
        for (field, sku) in skus {
            let found = sqlx::query("SELECT 1 FROM inv_skus WHERE tenant_id = $1 AND sku = $2")
                .bind(tenant)
                .bind(sku)
                .fetch_optional(&self.db.pool)
                .await?;
            if found.is_none() {
                unknown.push(FieldError::new(field, format!("no SKU `{sku}` is defined")));
            }
        }
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(InventoryError::UnknownSku(unknown))
        }
    }

    /// Refuses a warehouse the tenant has not defined.
    pub(super) async fn known_warehouse(
        &self,
        tenant: &str,
        field: &str,
        code: &str,
    ) -> Result<(), InventoryError> {
        let found = sqlx::query("SELECT 1 FROM inv_warehouses WHERE tenant_id = $1 AND code = $2")
            .bind(tenant)
            .bind(code)
            .fetch_optional(&self.db.pool)
            .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(InventoryError::UnknownWarehouse(vec![FieldError::new(
                field,
                format!("no warehouse `{code}` is defined"),
            )])),
        }
    }
}
