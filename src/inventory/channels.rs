//! Sales-channel connections: where available-to-sell is pushed (a Shopify shop and location),
//! which warehouses count, and what is held back.

use super::catalog::{check_code, check_warehouse_code};
use super::error::invalid;
use super::{InventoryError, InventoryService};
use crate::fields::FieldError;
use crate::store::{now_millis, now_rfc3339};
use serde::Serialize;
use sqlx::Row;

/// Platforms whose inventory API is spoken.
pub const PLATFORMS: [&str; 1] = ["shopify"];

pub struct NewChannel {
    pub channel: String,
    pub platform: String,
    /// The shop's base URL (`https://example.myshopify.com`).
    pub base_url: String,
    pub api_version: Option<String>,
    pub access_token: String,
    pub location_id: String,
    /// Warehouses whose stock counts; empty: every warehouse.
    pub warehouses: Vec<String>,
    /// Units held back from what is pushed.
    pub buffer: i64,
    /// At most this many are pushed.
    pub cap: Option<i64>,
}

/// A connection as shown: never its access token.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub channel: String,
    pub platform: String,
    pub base_url: String,
    pub api_version: String,
    pub location_id: String,
    pub warehouses: Vec<String>,
    pub buffer: i64,
    pub cap: Option<i64>,
    pub created_at: String,
}

const DEFAULT_API_VERSION: &str = "2025-07";

impl InventoryService {
    /// Creates or replaces a channel connection, and schedules a push of every SKU mapped to it.
    pub async fn put_channel(
        &self,
        tenant: &str,
        new: NewChannel,
    ) -> Result<Channel, InventoryError> {
        check_code("channel", &new.channel)?;
        let mut problems = Vec::new();
        if !PLATFORMS.contains(&new.platform.as_str()) {
            problems.push(FieldError::new("platform", "must be shopify"));
        }
        match reqwest::Url::parse(&new.base_url) {
            Ok(url)
                if url.scheme() == "https"
                    || (self.allow_private_channels && url.scheme() == "http") =>
            {
                if !self.allow_private_channels
                    && let Some(why) = crate::outbound::refused_host(&url)
                {
                    problems.push(FieldError::new("baseUrl", why));
                }
            }
            _ => problems.push(FieldError::new("baseUrl", "must be an https URL")),
        }
        let version = new
            .api_version
            .clone()
            .unwrap_or_else(|| DEFAULT_API_VERSION.into());
        if !(version.len() == 7
            && version.as_bytes()[4] == b'-'
            && version.bytes().filter(u8::is_ascii_digit).count() == 6)
        {
            problems.push(FieldError::new("apiVersion", "must look like 2025-07"));
        }
        if new.access_token.trim().is_empty() || new.access_token.len() > 512 {
            problems.push(FieldError::new("accessToken", "must be 1-512 characters"));
        }
        if new.location_id.is_empty()
            || new.location_id.len() > 20
            || !new.location_id.bytes().all(|b| b.is_ascii_digit())
        {
            problems.push(FieldError::new(
                "locationId",
                "must be the shop's numeric location id",
            ));
        }
        if new.buffer < 0 {
            problems.push(FieldError::new("buffer", "must be 0 or more"));
        }
        if new.cap.is_some_and(|c| c < 0) {
            problems.push(FieldError::new("cap", "must be 0 or more"));
        }
        if !problems.is_empty() {
            return Err(InventoryError::Validation(problems));
        }
        for (i, code) in new.warehouses.iter().enumerate() {
            let field = format!("warehouses[{i}]");
            check_warehouse_code(&field, code)?;
            self.known_warehouse(tenant, &field, code).await?;
        }
        if new.base_url.len() > 300 {
            return Err(invalid("baseUrl", "must be at most 300 characters"));
        }
        let warehouses = serde_json::to_string(&new.warehouses).unwrap_or_else(|_| "[]".into());
        self.db
            .write_group(vec![
                sqlx::query(
                    "INSERT INTO inv_channels (tenant_id, channel, platform, base_url, api_version, \
                     access_token, location_id, warehouses, buffer, cap, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (tenant_id, channel) DO UPDATE SET platform = excluded.platform, \
                     base_url = excluded.base_url, api_version = excluded.api_version, \
                     access_token = excluded.access_token, location_id = excluded.location_id, \
                     warehouses = excluded.warehouses, buffer = excluded.buffer, cap = excluded.cap",
                )
                .bind(tenant.to_owned())
                .bind(new.channel.clone())
                .bind(new.platform)
                .bind(new.base_url.trim_end_matches('/').to_owned())
                .bind(version)
                .bind(new.access_token)
                .bind(new.location_id)
                .bind(warehouses)
                .bind(new.buffer)
                .bind(new.cap)
                .bind(now_rfc3339()),
                // What the channel shows may be stale under the new rules: push every mapped SKU.
                sqlx::query(
                    "INSERT INTO inv_ats_pending (tenant_id, channel, sku, due_at_ms, version, \
                     attempts) SELECT DISTINCT a.tenant_id, a.channel, a.sku, $3, 1, 0 \
                     FROM inv_sku_aliases a WHERE a.tenant_id = $1 AND a.channel = $2 \
                     ON CONFLICT (tenant_id, channel, sku) DO UPDATE \
                     SET version = inv_ats_pending.version + 1",
                )
                .bind(tenant.to_owned())
                .bind(new.channel.clone())
                .bind(now_millis()),
            ])
            .await?;
        self.channels(tenant)
            .await?
            .into_iter()
            .find(|c| c.channel == new.channel)
            .ok_or_else(|| InventoryError::NotFound(format!("no channel `{}`", new.channel)))
    }

    pub async fn channels(&self, tenant: &str) -> Result<Vec<Channel>, InventoryError> {
        let rows = sqlx::query(
            "SELECT channel, platform, base_url, api_version, location_id, warehouses, buffer, \
             cap, created_at FROM inv_channels WHERE tenant_id = $1 ORDER BY channel",
        )
        .bind(tenant)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let warehouses: String = r.get(5);
                Channel {
                    channel: r.get(0),
                    platform: r.get(1),
                    base_url: r.get(2),
                    api_version: r.get(3),
                    location_id: r.get(4),
                    warehouses: serde_json::from_str(&warehouses).unwrap_or_default(),
                    buffer: r.get(6),
                    cap: r.get(7),
                    created_at: r.get(8),
                }
            })
            .collect())
    }
}
