//! Webhook deliveries of the services' events: a consumer of the event bus that writes one
//! delivery per subscribed endpoint, in the transaction that moves its position (so an event
//! becomes its deliveries exactly once). From there the worker sends them like any other
//! delivery: signed, retried, dead-lettered, replayable, in order per aggregate.

use crate::events::{Consumer, Event, tenants_of};
use crate::store::{Dialect, StoreError};
use sqlx::AnyConnection;

pub struct FanOut {
    dialect: Dialect,
    /// The services' events of tenants with an endpoint ([`Consumer::wants`]).
    wants: String,
}

impl FanOut {
    pub fn new(dialect: Dialect) -> Self {
        let types: Vec<&str> = crate::inventory::event_types::ALL
            .iter()
            .chain(crate::orders::event_types::ALL.iter())
            .copied()
            .collect();
        let wants = format!(
            "{} AND tenant_id IN (SELECT tenant_id FROM webhook_endpoints \
             WHERE deleted_at IS NULL)",
            crate::events::of_types(&types)
        );
        Self { dialect, wants }
    }
}

/// Inserts the deliveries of one event; `$n` as bound in [`FanOut::handle`].
macro_rules! fan_out {
    ($new_id:literal) => {
        concat!(
            "INSERT INTO webhook_deliveries (id, endpoint_id, tenant_id, waybill_id, sequence, \
             event_type, event_id, aggregate, payload, state, attempts, next_attempt_at, \
             window_start, created_at) \
             SELECT ",
            $new_id,
            ", e.id, e.tenant_id, NULL, $1, $2, $3, $4, $5, 'pending', 0, 0, $6, $6 \
             FROM webhook_endpoints e WHERE e.tenant_id = $7 AND e.deleted_at IS NULL \
             AND e.event_types LIKE $8 \
             ON CONFLICT (event_id, endpoint_id) WHERE event_id IS NOT NULL DO NOTHING"
        )
    };
}

#[async_trait::async_trait]
impl Consumer for FanOut {
    fn name(&self) -> &str {
        "webhooks.fan_out"
    }

    fn wants(&self) -> Option<&str> {
        Some(&self.wants)
    }

    /// Reads once per tenant of the batch which types its endpoints want, and writes deliveries
    /// only for those events.
    async fn handle_batch(
        &self,
        conn: &mut AnyConnection,
        events: &[Event],
    ) -> Result<(), StoreError> {
        use sqlx::Row;
        let service_event = |e: &Event| super::service_event(&e.event_type);
        let mut wanted: Vec<(String, String)> = Vec::new();
        for tenant in tenants_of(events, service_event) {
            let rows = sqlx::query(
                "SELECT event_types FROM webhook_endpoints WHERE tenant_id = $1 \
                 AND deleted_at IS NULL",
            )
            .bind(tenant)
            .fetch_all(&mut *conn)
            .await?;
            for r in rows {
                let types: String = r.get(0);
                for t in types.split(',').filter(|t| !t.is_empty()) {
                    wanted.push((tenant.to_owned(), t.to_owned()));
                }
            }
        }
        for event in events.iter().filter(|e| {
            service_event(e)
                && wanted
                    .iter()
                    .any(|(t, ty)| *t == e.tenant_id && *ty == e.event_type)
        }) {
            self.handle(conn, event).await?;
        }
        Ok(())
    }

    async fn handle(&self, conn: &mut AnyConnection, event: &Event) -> Result<(), StoreError> {
        // The gateway's own events (tracking, last mile) become deliveries by triggers when
        // they are stored; here only the services' events.
        if !super::service_event(&event.event_type) {
            return Ok(());
        }
        // The pushed `data` is the event's body without its envelope (the push has its own).
        let mut data: serde_json::Value =
            serde_json::from_str(&event.payload).map_err(StoreError::decode)?;
        if let Some(fields) = data.as_object_mut() {
            for envelope in ["eventId", "type", "createdAt"] {
                fields.remove(envelope);
            }
        }
        let sql = match self.dialect {
            Dialect::Postgres => fan_out!("'whd_' || replace(gen_random_uuid()::TEXT, '-', '')"),
            Dialect::Sqlite => fan_out!("'whd_' || lower(hex(randomblob(16)))"),
        };
        sqlx::query(sql)
            .bind(event.seq)
            .bind(&event.event_type)
            .bind(&event.id)
            .bind(&event.aggregate)
            .bind(data.to_string())
            .bind(event.created_at_ms)
            .bind(&event.tenant_id)
            .bind(format!("%,{},%", event.event_type))
            .execute(conn)
            .await?;
        Ok(())
    }
}
