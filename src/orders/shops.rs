//! The tenants' sales-channel shops: where to pull orders from, with what credentials (kept
//! out of answers and logs), how often and from where the cursor stands.

use super::{OrderError, OrdersService};
use crate::fields::FieldError;
use crate::store::{now_millis, rfc3339_millis};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// A shop's credentials; `Debug` never shows them.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credentials {
    /// Shopify: the Admin API access token.
    #[serde(default)]
    pub access_token: Option<SecretString>,
    /// Shopify: the app's client secret, which signs its webhooks.
    #[serde(default)]
    pub webhook_secret: Option<SecretString>,
    /// Amazon: the Login-with-Amazon client and refresh token.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
    /// Amazon: where access tokens come from (default Login with Amazon's).
    #[serde(default)]
    pub token_url: Option<String>,
    #[serde(default)]
    pub marketplace_ids: Vec<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials([REDACTED])")
    }
}

impl Credentials {
    fn stored(&self) -> serde_json::Value {
        let secret = |s: &Option<SecretString>| s.as_ref().map(|s| s.expose_secret().to_owned());
        serde_json::json!({
            "accessToken": secret(&self.access_token),
            "webhookSecret": secret(&self.webhook_secret),
            "clientId": self.client_id,
            "clientSecret": secret(&self.client_secret),
            "refreshToken": secret(&self.refresh_token),
            "tokenUrl": self.token_url,
            "marketplaceIds": self.marketplace_ids,
        })
    }

    /// Which credentials are set (for answers): names only.
    fn set(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        for (name, present) in [
            ("accessToken", self.access_token.is_some()),
            ("webhookSecret", self.webhook_secret.is_some()),
            ("clientId", self.client_id.is_some()),
            ("clientSecret", self.client_secret.is_some()),
            ("refreshToken", self.refresh_token.is_some()),
        ] {
            if present {
                set.push(name);
            }
        }
        set
    }
}

#[derive(Debug, Clone)]
pub struct Shop {
    pub id: String,
    pub tenant_id: String,
    pub channel: String,
    pub shop: String,
    pub base_url: String,
    pub credentials: Credentials,
    pub pull_interval_secs: i64,
    pub overlap_secs: i64,
    pub cursor_ms: i64,
}

/// A shop as the API shows it (no secret).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopView {
    pub id: String,
    pub channel: String,
    pub shop: String,
    pub base_url: String,
    pub credentials_set: Vec<&'static str>,
    pub pull_interval_secs: i64,
    pub overlap_secs: i64,
    pub cursor: String,
    pub next_pull_at: Option<String>,
    pub last_pull_at: Option<String>,
    pub last_error: Option<String>,
    /// Where the channel sends its order webhooks (Shopify).
    pub webhook_path: String,
}

pub struct NewShop {
    pub channel: String,
    pub shop: String,
    pub base_url: Option<String>,
    pub credentials: Credentials,
    pub pull_interval_secs: i64,
    pub overlap_secs: i64,
    /// Pull orders updated from this time on (epoch ms; default: a day ago).
    pub start_ms: Option<i64>,
}

pub const CHANNELS: [&str; 3] = ["shopify", "amazon", "taobao"];

const COLUMNS: &str = "id, tenant_id, channel, shop, base_url, credentials, pull_interval_secs, \
    overlap_secs, cursor_ms, next_pull_at_ms, last_pull_at_ms, last_error";

pub(crate) fn shop_from(r: &sqlx::any::AnyRow) -> Shop {
    Shop {
        id: r.get(0),
        tenant_id: r.get(1),
        channel: r.get(2),
        shop: r.get(3),
        base_url: r.get(4),
        credentials: serde_json::from_str(&r.get::<String, _>(5)).unwrap_or_default(),
        pull_interval_secs: r.get(6),
        overlap_secs: r.get(7),
        cursor_ms: r.get(8),
    }
}

fn view(r: &sqlx::any::AnyRow) -> ShopView {
    let s = shop_from(r);
    ShopView {
        webhook_path: format!("/v1/channel-webhooks/{}/{}", s.channel, s.id),
        credentials_set: s.credentials.set(),
        id: s.id,
        channel: s.channel,
        shop: s.shop,
        base_url: s.base_url,
        pull_interval_secs: s.pull_interval_secs,
        overlap_secs: s.overlap_secs,
        cursor: rfc3339_millis(s.cursor_ms),
        next_pull_at: r.get::<Option<i64>, _>(9).map(rfc3339_millis),
        last_pull_at: r.get::<Option<i64>, _>(10).map(rfc3339_millis),
        last_error: r.get(11),
    }
}

impl OrdersService {
    /// Connects (or reconnects) a shop; its cursor is kept when it exists.
    pub async fn put_shop(&self, tenant: &str, new: NewShop) -> Result<ShopView, OrderError> {
        let mut problems = Vec::new();
        if !CHANNELS.contains(&new.channel.as_str()) {
            problems.push(FieldError::new(
                "channel",
                "must be shopify, amazon or taobao",
            ));
        }
        if new.shop.is_empty() || new.shop.len() > 128 {
            problems.push(FieldError::new("shop", "must be 1-128 characters"));
        }
        if !(60..=86_400).contains(&new.pull_interval_secs) {
            problems.push(FieldError::new(
                "pullIntervalSecs",
                "must be from 60 to 86400",
            ));
        }
        if !(0..=86_400).contains(&new.overlap_secs) {
            problems.push(FieldError::new("overlapSecs", "must be from 0 to 86400"));
        }
        let c = &new.credentials;
        match new.channel.as_str() {
            "shopify" if c.access_token.is_none() => {
                problems.push(FieldError::new(
                    "credentials.accessToken",
                    "is required for shopify",
                ));
            }
            "amazon"
                if c.client_id.is_none()
                    || c.client_secret.is_none()
                    || c.refresh_token.is_none() =>
            {
                problems.push(FieldError::new(
                    "credentials",
                    "amazon needs clientId, clientSecret and refreshToken",
                ));
            }
            "taobao"
                if c.client_id.is_none()
                    || c.client_secret.is_none()
                    || c.access_token.is_none() =>
            {
                problems.push(FieldError::new(
                    "credentials",
                    "taobao needs clientId (app key), clientSecret (app secret) and accessToken \
                     (session key)",
                ));
            }
            "amazon" if c.marketplace_ids.is_empty() => {
                problems.push(FieldError::new(
                    "credentials.marketplaceIds",
                    "name at least one marketplace",
                ));
            }
            _ => {}
        }
        let base = new
            .base_url
            .clone()
            .unwrap_or_else(|| match new.channel.as_str() {
                "shopify" => format!("https://{}", new.shop),
                "taobao" => super::connectors::taobao::DEFAULT_BASE_URL.into(),
                _ => "https://sellingpartnerapi-na.amazon.com".into(),
            });
        let urls = [
            Some(("baseUrl", base.as_str())),
            c.token_url.as_deref().map(|u| ("credentials.tokenUrl", u)),
        ];
        for (field, u) in urls.into_iter().flatten() {
            match url::Url::parse(u) {
                Ok(p)
                    if p.scheme() == "https"
                        || (self.settings.allow_private_channels && p.scheme() == "http") => {}
                _ => problems.push(FieldError::new(field, "must be an https URL")),
            }
        }
        if !problems.is_empty() {
            return Err(OrderError::Validation(problems));
        }
        let now = now_millis();
        let start = new.start_ms.unwrap_or(now - 86_400_000);
        self.db
            .write(
                sqlx::query(
                    "INSERT INTO ord_shops (id, tenant_id, channel, shop, base_url, credentials, \
                     pull_interval_secs, overlap_secs, cursor_ms, next_pull_at_ms, created_at_ms, \
                     updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10) \
                     ON CONFLICT (tenant_id, channel, shop) DO UPDATE SET base_url = excluded.base_url, \
                     credentials = excluded.credentials, pull_interval_secs = excluded.pull_interval_secs, \
                     overlap_secs = excluded.overlap_secs, next_pull_at_ms = excluded.next_pull_at_ms, \
                     last_error = NULL, updated_at_ms = excluded.updated_at_ms",
                )
                .bind(format!("shop_{}", uuid::Uuid::now_v7().simple()))
                .bind(tenant.to_owned())
                .bind(new.channel.clone())
                .bind(new.shop.clone())
                .bind(base)
                .bind(new.credentials.stored().to_string())
                .bind(new.pull_interval_secs)
                .bind(new.overlap_secs)
                .bind(start)
                .bind(now),
            )
            .await?;
        self.shops(tenant)
            .await?
            .into_iter()
            .find(|s| s.channel == new.channel && s.shop == new.shop)
            .ok_or_else(|| OrderError::NotFound("the shop was not stored".into()))
    }

    pub async fn shops(&self, tenant: &str) -> Result<Vec<ShopView>, OrderError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM ord_shops WHERE tenant_id = $1 ORDER BY channel, shop"
        )))
        .bind(tenant)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.iter().map(view).collect())
    }

    pub(crate) async fn shop_by_id(&self, id: &str) -> Result<Option<Shop>, OrderError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM ord_shops WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.as_ref().map(shop_from))
    }

    /// Asks for the shop's next pull now (a pull already under way elsewhere may overlap it:
    /// the natural key makes the repeats no-ops).
    pub async fn pull_soon(
        &self,
        tenant: &str,
        channel: &str,
        shop: &str,
    ) -> Result<ShopView, OrderError> {
        self.db
            .write(
                sqlx::query(
                    "UPDATE ord_shops SET next_pull_at_ms = $1 WHERE tenant_id = $2 \
                     AND channel = $3 AND shop = $4",
                )
                .bind(now_millis())
                .bind(tenant.to_owned())
                .bind(channel.to_owned())
                .bind(shop.to_owned()),
            )
            .await?;
        self.shops(tenant)
            .await?
            .into_iter()
            .find(|s| s.channel == channel && s.shop == shop)
            .ok_or_else(|| OrderError::NotFound(format!("no {channel} shop `{shop}`")))
    }
}
