use super::{Db, now_rfc3339};
use crate::store::error::StoreError;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
}

impl Db {
    /// The tenant named `name`, created if it does not exist yet.
    pub async fn ensure_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        self.write(
            sqlx::query(
                "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(name)
            .bind(now_rfc3339()),
        )
        .await?;
        let row = sqlx::query("SELECT id, name FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(Tenant {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
        })
    }

    pub async fn insert_api_key(
        &self,
        tenant_id: &str,
        key_hash: &str,
        key_prefix: &str,
    ) -> Result<(), StoreError> {
        self.write(
            sqlx::query(
                "INSERT INTO api_keys (id, tenant_id, key_hash, key_prefix, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(tenant_id)
            .bind(key_hash)
            .bind(key_prefix)
            .bind(now_rfc3339()),
        )
        .await
        .map(drop)
    }

    pub async fn tenant_by_key_hash(&self, key_hash: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query(
            "SELECT t.id, t.name FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Tenant {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
            })
        })
        .transpose()
    }
}
