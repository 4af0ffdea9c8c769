//! Tenants and their API keys.
//!
//! An account is a live tenant row; its test data lives under a second row (mode `test`,
//! `account_id` pointing at the account). Everything scoped by `tenant_id` — waybills, webhook
//! endpoints, deliveries, cached answers — is therefore apart per mode.

use super::{Db, now_millis, now_rfc3339};
use crate::store::error::StoreError;
use sqlx::Row;
use sqlx::any::AnyRow;

/// Whether a key works on real shipments (`live`) or only on the sandbox (`test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Live => "live",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "test" => Some(Self::Test),
            "live" => Some(Self::Live),
            _ => None,
        }
    }
}

/// One account's data in one mode: the scope of every tenant-owned row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    /// The account's name (the same for both modes).
    pub name: String,
    pub mode: Mode,
}

/// A stored API key (never the key itself: its digest stays in the database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub tenant: Tenant,
    pub prefix: String,
    /// The key's SHA-256 digest (what the caches are keyed by; not the key).
    pub digest: String,
    /// `*` or space-separated scope names, as stored.
    pub scopes: String,
    pub description: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// The end of a rotated key's grace period (epoch ms).
    pub expires_at_ms: Option<i64>,
    pub replaced_by: Option<String>,
}

impl KeyRecord {
    /// Usable now: not revoked and, if rotated, within its grace period.
    pub fn active_at(&self, now_ms: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at_ms.is_none_or(|end| now_ms < end)
    }
}

/// What a new key is.
pub struct NewKey<'a> {
    pub tenant_id: &'a str,
    pub digest: &'a str,
    pub prefix: &'a str,
    pub scopes: &'a str,
    pub description: Option<&'a str>,
}

macro_rules! select_key {
    ($where:literal) => {
        concat!(
            "SELECT k.id, k.key_prefix, k.key_hash, k.scopes, k.description, k.created_at, k.revoked_at, \
             k.expires_at_ms, k.replaced_by, t.id AS tenant_id, t.mode, \
             COALESCE(a.name, t.name) AS account_name \
             FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
             LEFT JOIN tenants a ON a.id = t.account_id WHERE ",
            $where
        )
    };
}

fn key_record(row: &AnyRow) -> Result<KeyRecord, StoreError> {
    let mode: String = row.try_get("mode")?;
    Ok(KeyRecord {
        id: row.try_get("id")?,
        tenant: Tenant {
            id: row.try_get("tenant_id")?,
            name: row.try_get("account_name")?,
            mode: Mode::parse(&mode)
                .ok_or_else(|| StoreError::decode(format!("tenant mode `{mode}`")))?,
        },
        prefix: row.try_get("key_prefix")?,
        digest: row.try_get("key_hash")?,
        scopes: row.try_get("scopes")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
        expires_at_ms: row.try_get("expires_at_ms")?,
        replaced_by: row.try_get("replaced_by")?,
    })
}

impl Db {
    /// The live row of the account named `name`, if it exists.
    pub async fn account(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let row =
            sqlx::query("SELECT id, name FROM tenants WHERE name = $1 AND account_id IS NULL")
                .bind(name.to_owned())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(Tenant {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                mode: Mode::Live,
            })
        })
        .transpose()
    }

    /// The tenant (an account in one mode) with this id, if it exists.
    pub async fn tenant_by_id(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query(
            "SELECT t.id, COALESCE(a.name, t.name) AS name, t.mode FROM tenants t \
             LEFT JOIN tenants a ON a.id = t.account_id WHERE t.id = $1",
        )
        .bind(id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            let mode: String = row.try_get("mode")?;
            Ok(Tenant {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                mode: Mode::parse(&mode)
                    .ok_or_else(|| StoreError::decode(format!("tenant mode `{mode}`")))?,
            })
        })
        .transpose()
    }

    /// The account named `name`, created if it does not exist yet.
    pub async fn ensure_account(&self, name: &str) -> Result<Tenant, StoreError> {
        self.write(
            sqlx::query(
                "INSERT INTO tenants (id, name, created_at, mode) VALUES ($1, $2, $3, 'live') \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(name.to_owned())
            .bind(now_rfc3339()),
        )
        .await?;
        self.account(name).await?.ok_or_else(|| {
            StoreError::decode(format!(
                "`{name}` names an account's test data, not an account"
            ))
        })
    }

    /// The tenant row of `account` in `mode` (the test row is made on first use).
    pub async fn tenant_in_mode(&self, account: &Tenant, mode: Mode) -> Result<Tenant, StoreError> {
        if mode == Mode::Live {
            return Ok(account.clone());
        }
        let name = format!("{}/test", account.id);
        self.write(
            sqlx::query(
                "INSERT INTO tenants (id, name, created_at, mode, account_id) \
                 VALUES ($1, $2, $3, 'test', $4) ON CONFLICT (name) DO NOTHING",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(name.clone())
            .bind(now_rfc3339())
            .bind(account.id.clone()),
        )
        .await?;
        let row = sqlx::query("SELECT id FROM tenants WHERE name = $1 AND account_id = $2")
            .bind(name)
            .bind(account.id.clone())
            .fetch_one(&self.pool)
            .await?;
        Ok(Tenant {
            id: row.try_get("id")?,
            name: account.name.clone(),
            mode,
        })
    }

    /// Stores a new key and returns its id.
    pub async fn insert_api_key(&self, key: &NewKey<'_>) -> Result<String, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        self.write(Self::insert_key_query(&id, key)).await?;
        Ok(id)
    }

    fn insert_key_query(id: &str, key: &NewKey<'_>) -> super::writer::WriteQuery {
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, key_hash, key_prefix, created_at, scopes, \
             description) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.to_owned())
        .bind(key.tenant_id.to_owned())
        .bind(key.digest.to_owned())
        .bind(key.prefix.to_owned())
        .bind(now_rfc3339())
        .bind(key.scopes.to_owned())
        .bind(key.description.map(str::to_owned))
    }

    /// The key whose digest is `key_hash`, if it exists and is not revoked (a rotated key is
    /// returned with its `expires_at_ms`: whether it still works is the caller's check).
    pub async fn key_by_hash(&self, key_hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query(select_key!("k.key_hash = $1 AND k.revoked_at IS NULL"))
            .bind(key_hash.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_record).transpose()
    }

    /// One key by id; `tenant_id` limits it to one tenant row (the API), `None` to any (the CLI).
    pub async fn key(
        &self,
        id: &str,
        tenant_id: Option<&str>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query(select_key!(
            "k.id = $1 AND ($2 IS NULL OR k.tenant_id = $2)"
        ))
        .bind(id.to_owned())
        .bind(tenant_id.map(str::to_owned))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_record).transpose()
    }

    /// The keys of the given tenant rows, newest first.
    pub async fn keys_of(&self, tenant_ids: &[&str]) -> Result<Vec<KeyRecord>, StoreError> {
        let mut keys = Vec::new();
        for tenant_id in tenant_ids {
            let rows = sqlx::query(select_key!("k.tenant_id = $1 ORDER BY k.created_at DESC"))
                .bind((*tenant_id).to_owned())
                .fetch_all(&self.pool)
                .await?;
            for row in &rows {
                keys.push(key_record(row)?);
            }
        }
        Ok(keys)
    }

    /// The tenant rows of an account: live first, then test if it was ever used.
    pub async fn account_rows(&self, account: &Tenant) -> Result<Vec<Tenant>, StoreError> {
        let mut rows = vec![account.clone()];
        let test = sqlx::query("SELECT id FROM tenants WHERE account_id = $1 AND mode = 'test'")
            .bind(account.id.clone())
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = test {
            rows.push(Tenant {
                id: row.try_get("id")?,
                name: account.name.clone(),
                mode: Mode::Test,
            });
        }
        Ok(rows)
    }

    /// Revokes a key at once (a key revoked before stays as it was).
    pub async fn revoke_key(&self, id: &str) -> Result<(), StoreError> {
        self.write(
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id.to_owned())
                .bind(now_rfc3339()),
        )
        .await
        .map(drop)
    }

    /// Stores `new` as the successor of key `old_id`, which keeps working until `grace_ms` from
    /// now (or stops at once with 0). One commit; the old key must still be active and not
    /// rotated before (the new key is inserted only if the update marked it as the successor).
    pub async fn rotate_key(
        &self,
        old_id: &str,
        new: &NewKey<'_>,
        grace_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let new_id = uuid::Uuid::now_v7().to_string();
        let now = now_millis();
        let done = self
            .write_group(vec![
                sqlx::query(
                    "UPDATE api_keys SET replaced_by = $2, \
                     expires_at_ms = CASE WHEN expires_at_ms IS NULL OR expires_at_ms > $3 \
                     THEN $3 ELSE expires_at_ms END \
                     WHERE id = $1 AND revoked_at IS NULL AND replaced_by IS NULL \
                     AND (expires_at_ms IS NULL OR expires_at_ms > $4)",
                )
                .bind(old_id.to_owned())
                .bind(new_id.clone())
                .bind(now.saturating_add(grace_ms))
                .bind(now),
                sqlx::query(
                    "INSERT INTO api_keys (id, tenant_id, key_hash, key_prefix, created_at, \
                     scopes, description) SELECT $1, $2, $3, $4, $5, $6, $7 \
                     WHERE EXISTS (SELECT 1 FROM api_keys WHERE id = $8 AND replaced_by = $1)",
                )
                .bind(new_id.clone())
                .bind(new.tenant_id.to_owned())
                .bind(new.digest.to_owned())
                .bind(new.prefix.to_owned())
                .bind(now_rfc3339())
                .bind(new.scopes.to_owned())
                .bind(new.description.map(str::to_owned))
                .bind(old_id.to_owned()),
            ])
            .await?;
        Ok(done
            .get(1)
            .is_some_and(|r| r.rows_affected() == 1)
            .then_some(new_id))
    }
}
