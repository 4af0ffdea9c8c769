//! Reading orders: a page of them by state, channel, shop and time; one with its versions,
//! lines, shipments (waybills and labels) and events; a tenant's merge setting.

use super::{OrderError, OrdersService, aggregate};
use crate::store::rfc3339_millis;
use crate::store::sql::{Arg, statement};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;

#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub state: Option<String>,
    pub channel: Option<String>,
    pub shop: Option<String>,
    /// Created at or after / before (epoch ms).
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only orders created before this one (the page's cursor: the last id of the page).
    pub before_id: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSummary {
    pub id: String,
    pub channel: String,
    pub shop: String,
    pub external_id: String,
    pub order_number: Option<String>,
    pub version: i64,
    pub state: String,
    pub hold_reason: Option<String>,
    pub hold_detail: Option<String>,
    pub duplicate_of: Option<String>,
    pub placed_at: String,
    pub paid_at: Option<String>,
    /// What the payment provider last said (`paid`, `partially_refunded`, `refunded`,
    /// `disputed`), through the finance service; null until it said anything.
    pub payment_status: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str = "id, channel, shop, external_id, version, state, hold_reason, hold_detail, \
    duplicate_of, placed_at_ms, paid_at_ms, created_at_ms, updated_at_ms, body, payment_status";

fn summary(r: &sqlx::any::AnyRow) -> OrderSummary {
    let body: String = r.get(13);
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    OrderSummary {
        id: r.get(0),
        channel: r.get(1),
        shop: r.get(2),
        external_id: r.get(3),
        order_number: body["orderNumber"].as_str().map(str::to_owned),
        version: r.get(4),
        state: r.get::<String, _>(5).to_ascii_uppercase(),
        hold_reason: r.get(6),
        hold_detail: r.get(7),
        duplicate_of: r.get(8),
        placed_at: rfc3339_millis(r.get(9)),
        paid_at: r.get::<Option<i64>, _>(10).map(rfc3339_millis),
        payment_status: r.get(14),
        created_at: rfc3339_millis(r.get(11)),
        updated_at: rfc3339_millis(r.get(12)),
    }
}

impl OrdersService {
    /// A page of the tenant's orders, newest first.
    pub async fn list(
        &self,
        tenant: &str,
        f: OrderFilter,
    ) -> Result<Vec<OrderSummary>, OrderError> {
        // Only the filters given, so the planner sees which index serves them (with
        // `$n IS NULL OR …` it scanned every order of the tenant, newest first, for a state).
        let mut wheres = vec!["tenant_id = $1".to_owned()];
        let mut args = vec![Arg::Text(tenant.to_owned())];
        let mut and = |column: &str, op: &str, arg: Option<Arg>| {
            if let Some(arg) = arg {
                args.push(arg);
                wheres.push(format!("{column} {op} ${}", args.len()));
            }
        };
        and("state", "=", f.state.map(Arg::Text));
        and("channel", "=", f.channel.map(Arg::Text));
        and("shop", "=", f.shop.map(Arg::Text));
        and("created_at_ms", ">=", f.from_ms.map(Arg::Int));
        and("created_at_ms", "<", f.to_ms.map(Arg::Int));
        and("id", "<", f.before_id.map(Arg::Text));
        args.push(Arg::Int(f.limit));
        let sql = format!(
            "SELECT {COLUMNS} FROM ord_orders WHERE {} ORDER BY id DESC LIMIT ${}",
            wheres.join(" AND "),
            args.len()
        );
        let rows = statement(self.db.dialect, &sql, args)
            .fetch_all(&self.db.pool)
            .await?;
        Ok(rows.iter().map(summary).collect())
    }

    /// One order (by id, or by its channel's external id or order number) with its versions,
    /// lines, shipments and events.
    pub async fn get(&self, tenant: &str, key: &str) -> Result<Value, OrderError> {
        let row = self.row(tenant, key).await?;
        let order = summary(&row);
        let body: Value = serde_json::from_str(&row.get::<String, _>(13)).unwrap_or(Value::Null);
        let versions = sqlx::query(
            "SELECT version, content_hash, source_updated_at_ms, received_at_ms FROM ord_versions \
             WHERE order_id = $1 ORDER BY version",
        )
        .bind(&order.id)
        .fetch_all(&self.db.pool)
        .await?
        .iter()
        .map(|r| {
            json!({"version": r.get::<i64, _>(0), "contentHash": r.get::<String, _>(1),
                   "sourceUpdatedAt": r.get::<Option<i64>, _>(2).map(rfc3339_millis),
                   "receivedAt": rfc3339_millis(r.get(3))})
        })
        .collect::<Vec<_>>();
        let shipments = self.shipments_of(&order.id).await?;
        let events =
            crate::events::of_aggregate(&self.db, tenant, &aggregate(&order.id), 500).await?;
        Ok(
            json!({"order": order, "content": body, "versions": versions,
                  "shipments": shipments, "events": events}),
        )
    }

    async fn by_external(&self, tenant: &str, key: &str) -> Result<sqlx::any::AnyRow, OrderError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM ord_orders WHERE tenant_id = $1 AND external_id = $2 \
             ORDER BY id LIMIT 2"
        )))
        .bind(tenant)
        .bind(key)
        .fetch_all(&self.db.pool)
        .await?;
        match rows.len() {
            1 => Ok(rows.into_iter().next().unwrap_or_else(|| unreachable!())),
            0 => Err(OrderError::NotFound(format!("no order `{key}`"))),
            _ => Err(OrderError::NotFound(format!(
                "`{key}` is the external id of orders of several shops; use the order id"
            ))),
        }
    }

    /// The shipments of an order, with their waybills and label links.
    pub async fn shipments_of(&self, order: &str) -> Result<Vec<Value>, OrderError> {
        let rows = sqlx::query(
            "SELECT s.id, s.warehouse, s.channel, s.state, s.lines, s.waybill_number, \
             s.tracking_number, s.carrier, s.tracking_status, s.attempts, s.last_error \
             FROM ord_shipments s JOIN ord_shipment_orders so ON so.shipment_id = s.id \
             WHERE so.order_id = $1 ORDER BY s.created_at_ms, s.id",
        )
        .bind(order)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let lines: Value = serde_json::from_str(&r.get::<String, _>(4)).unwrap_or(Value::Null);
                let number: Option<String> = r.get(5);
                json!({"shipmentId": r.get::<String, _>(0), "referenceNumber": r.get::<String, _>(0),
                       "warehouse": r.get::<String, _>(1), "channel": r.get::<String, _>(2),
                       "state": r.get::<String, _>(3).to_ascii_uppercase(), "lines": lines,
                       "waybillNumber": number, "trackingNumber": r.get::<Option<String>, _>(6),
                       "carrier": r.get::<Option<String>, _>(7),
                       "trackingStatus": r.get::<Option<String>, _>(8),
                       "labelUrl": number.as_ref().map(|n| format!("/v1/waybills/{n}/label")),
                       "attempts": r.get::<i64, _>(9), "lastError": r.get::<Option<String>, _>(10)})
            })
            .collect())
    }

    /// The order `key` names (its id, or its external id when unique): its id and summary.
    pub async fn resolve(&self, tenant: &str, key: &str) -> Result<OrderSummary, OrderError> {
        Ok(summary(&self.row(tenant, key).await?))
    }

    /// The stored row of the order `key` names.
    async fn row(&self, tenant: &str, key: &str) -> Result<sqlx::any::AnyRow, OrderError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM ord_orders WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant)
        .bind(key)
        .fetch_optional(&self.db.pool)
        .await?;
        match row {
            Some(r) => Ok(r),
            None => self.by_external(tenant, key).await,
        }
    }

    /// The waybill numbers of an order's created shipments (the label station prints them).
    pub async fn waybills_of(&self, tenant: &str, key: &str) -> Result<Vec<String>, OrderError> {
        let order = self.resolve(tenant, key).await?;
        let numbers = sqlx::query(
            "SELECT s.waybill_number FROM ord_shipments s JOIN ord_shipment_orders so \
             ON so.shipment_id = s.id WHERE so.order_id = $1 AND s.state = 'created' \
             ORDER BY s.created_at_ms, s.id",
        )
        .bind(&order.id)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(numbers.iter().filter_map(|r| r.get(0)).collect())
    }

    /// Whether (and with what window) the tenant merges orders to one consignee.
    pub async fn merge_setting(&self, tenant: &str) -> Result<(bool, i64), OrderError> {
        let row = sqlx::query(
            "SELECT merge, merge_window_secs FROM ord_tenant_settings WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.map_or((false, 300), |r| (r.get::<i64, _>(0) == 1, r.get(1))))
    }

    pub async fn set_merge(
        &self,
        tenant: &str,
        merge: bool,
        window_secs: i64,
    ) -> Result<(), OrderError> {
        self.db
            .write(
                sqlx::query(
                    "INSERT INTO ord_tenant_settings (tenant_id, merge, merge_window_secs, updated_at_ms) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE SET \
                     merge = excluded.merge, merge_window_secs = excluded.merge_window_secs, \
                     updated_at_ms = excluded.updated_at_ms",
                )
                .bind(tenant.to_owned())
                .bind(i64::from(merge))
                .bind(window_secs)
                .bind(crate::store::now_millis()),
            )
            .await?;
        Ok(())
    }
}
