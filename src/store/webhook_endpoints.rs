//! Webhook endpoints: a tenant's subscriptions (URL, event types, secret). Deleting one cancels
//! what it still had to receive.

use super::{Db, StoreError, now_rfc3339};

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub created_at: String,
}

/// An endpoint as stored: event types as one `,type,type,` column.
#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: String,
    tenant_id: String,
    url: String,
    event_types: String,
    description: Option<String>,
    created_at: String,
}

impl From<EndpointRow> for Endpoint {
    fn from(r: EndpointRow) -> Self {
        Self {
            id: r.id,
            tenant_id: r.tenant_id,
            url: r.url,
            event_types: r
                .event_types
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            description: r.description,
            created_at: r.created_at,
        }
    }
}

impl Db {
    pub async fn insert_webhook_endpoint(
        &self,
        e: &Endpoint,
        secret: &str,
    ) -> Result<(), StoreError> {
        self.write(
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, description, \
                 secret, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(e.id.clone())
            .bind(e.tenant_id.clone())
            .bind(e.url.clone())
            .bind(format!(",{},", e.event_types.join(",")))
            .bind(e.description.clone())
            .bind(secret.to_owned())
            .bind(e.created_at.clone()),
        )
        .await
        .map(drop)
    }

    /// The tenant's endpoints that are not deleted, oldest first.
    pub async fn webhook_endpoints(&self, tenant_id: &str) -> Result<Vec<Endpoint>, StoreError> {
        let rows: Vec<EndpointRow> = sqlx::query_as(
            "SELECT id, tenant_id, url, event_types, description, created_at \
             FROM webhook_endpoints WHERE tenant_id = $1 AND deleted_at IS NULL \
             ORDER BY created_at, id",
        )
        .bind(tenant_id.to_owned())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Endpoint::from).collect())
    }

    /// Deletes an endpoint of the tenant; what it still had to receive (or had dead) is cancelled
    /// in the same unit. False when the tenant has no such endpoint.
    pub async fn delete_webhook_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let done = self
            .write_group(vec![
                sqlx::query(
                    "UPDATE webhook_endpoints SET deleted_at = $3 \
                     WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
                )
                .bind(id.to_owned())
                .bind(tenant_id.to_owned())
                .bind(now_rfc3339()),
                sqlx::query(
                    "UPDATE webhook_deliveries SET state = 'cancelled' \
                     WHERE endpoint_id = $1 AND tenant_id = $2 AND state IN ('pending', 'dead')",
                )
                .bind(id.to_owned())
                .bind(tenant_id.to_owned()),
            ])
            .await?;
        Ok(done[0].rows_affected() == 1)
    }
}
