//! The statements of a batch of allocations, each one round trip whatever the batch's size:
//! claim the ids, read (and on PostgreSQL lock) the SKUs' stock rows with what the allocation
//! rule needs of their warehouses, then every write — reservations, counters, movements,
//! events, and the claims of the allocations that could not be placed taken back — as one
//! data-modifying statement on PostgreSQL and one multi-statement execution on SQLite. Under
//! the row locks a round trip costs more than the rows it carries, so batching them is what
//! lifts reservations per second.

use super::Area;
use crate::store::Dialect;
use crate::store::sql::{Arg, dialect_of, grouped_in, rows_at, statement};
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, HashSet};

/// An allocation id to claim.
#[derive(Clone)]
pub(super) struct Claim {
    pub tenant: String,
    pub id: String,
    pub fingerprint: String,
    pub plan: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

/// Inserts the claims (sorted by tenant and id, so concurrent batches wait on each other in one
/// order); the (tenant, id) of the ones that were new.
pub(super) async fn claim(
    conn: &mut AnyConnection,
    claims: &[&Claim],
) -> Result<HashSet<(String, String)>, sqlx::Error> {
    let mut args = Vec::with_capacity(claims.len() * 7);
    for c in claims {
        args.extend([
            Arg::Text(c.tenant.clone()),
            Arg::Text(c.id.clone()),
            Arg::Text(c.fingerprint.clone()),
            Arg::Text("active".into()),
            Arg::Text(c.plan.clone()),
            Arg::OptInt(c.expires_at),
            Arg::Int(c.created_at),
        ]);
    }
    let sql = format!(
        "INSERT INTO inv_allocations (tenant_id, id, fingerprint, state, plan, expires_at_ms, \
         created_at_ms) VALUES {} ON CONFLICT (tenant_id, id) DO NOTHING RETURNING tenant_id, id",
        rows_at(1, claims.len(), 7)
    );
    Ok(statement(dialect_of(conn), &sql, args)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// A stock row of a SKU being allocated, with its warehouse as the rule sees it.
pub(super) struct StockRow {
    pub tenant: String,
    pub sku: String,
    pub warehouse: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub safety: i64,
    pub low_stock_threshold: Option<i64>,
    pub priority: i64,
    pub country: String,
    pub serves: Vec<Area>,
}

/// The stock rows of the SKUs of each tenant in (tenant, SKU, warehouse) order, locked on
/// PostgreSQL in that order (so two batches cannot deadlock).
pub(super) async fn read_stock(
    conn: &mut AnyConnection,
    dialect: Dialect,
    skus: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<StockRow>, sqlx::Error> {
    let (wheres, args) = grouped_in(skus, "st.tenant_id", "st.sku");
    let lock = match dialect {
        Dialect::Postgres => " FOR UPDATE OF st",
        Dialect::Sqlite => "",
    };
    let sql = format!(
        "SELECT st.tenant_id, st.sku, st.warehouse, st.on_hand, st.reserved, st.safety, \
         s.low_stock_threshold, w.priority, w.country, w.serves FROM inv_stock st \
         JOIN inv_skus s ON s.tenant_id = st.tenant_id AND s.sku = st.sku \
         JOIN inv_warehouses w ON w.tenant_id = st.tenant_id AND w.code = st.warehouse \
         WHERE {} ORDER BY st.tenant_id, st.sku, st.warehouse{lock}",
        wheres
    );
    Ok(statement(dialect, &sql, args)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(|r| StockRow {
            tenant: r.get(0),
            sku: r.get(1),
            warehouse: r.get(2),
            on_hand: r.get(3),
            reserved: r.get(4),
            safety: r.get(5),
            low_stock_threshold: r.get(6),
            priority: r.get(7),
            country: r.get(8),
            serves: serde_json::from_str(&r.get::<String, _>(9)).unwrap_or_default(),
        })
        .collect())
}

/// Whether the tenant has defined the SKU.
pub(super) async fn sku_exists(
    conn: &mut AnyConnection,
    tenant: &str,
    sku: &str,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("SELECT 1 FROM inv_skus WHERE tenant_id = $1 AND sku = $2")
            .bind(tenant)
            .bind(sku)
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
}

/// Every write of a batch, as rows.
#[derive(Default)]
pub(super) struct Writes {
    /// (id, tenant, allocation, sku, warehouse, quantity)
    pub reservations: Vec<(String, String, String, String, String, i64)>,
    /// (tenant, sku, warehouse) → reserved added.
    pub counters: BTreeMap<(String, String, String), i64>,
    /// (tenant, id, sku, warehouse, quantity, reservation)
    pub movements: Vec<(String, String, String, String, i64, String)>,
    /// (event id, tenant, type, aggregate, body)
    pub events: Vec<(String, String, &'static str, String, String)>,
    /// (tenant, id) of claims to take back.
    pub unclaim: Vec<(String, String)>,
}

/// Makes the batch's writes in one round trip; refused (and the caller's transaction then
/// undoes it all) when a counter would leave available stock negative.
pub(super) async fn write(
    conn: &mut AnyConnection,
    dialect: Dialect,
    w: Writes,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let mut args = vec![Arg::Int(now)];
    let (n_res, n_cnt, n_mov, n_evt, n_del) = (
        w.reservations.len(),
        w.counters.len(),
        w.movements.len(),
        w.events.len(),
        w.unclaim.len(),
    );
    if n_res + n_evt + n_del == 0 {
        return Ok(true);
    }
    let res_at = args.len() + 1;
    for (id, tenant, allocation, sku, warehouse, qty) in w.reservations {
        args.extend([
            Arg::Text(id),
            Arg::Text(tenant),
            Arg::Text(allocation),
            Arg::Text(sku),
            Arg::Text(warehouse),
            Arg::Int(qty),
            Arg::Text("active".into()),
        ]);
    }
    let cnt_at = args.len() + 1;
    for ((tenant, sku, warehouse), qty) in w.counters {
        args.extend([
            Arg::Text(tenant),
            Arg::Text(sku),
            Arg::Text(warehouse),
            Arg::Int(qty),
        ]);
    }
    let mov_at = args.len() + 1;
    for (tenant, id, sku, warehouse, qty, reservation) in w.movements {
        args.extend([
            Arg::Text(tenant),
            Arg::Text(id),
            Arg::Text(sku),
            Arg::Text(warehouse),
            Arg::Text("RESERVE".into()),
            Arg::Int(qty),
            Arg::Text(reservation),
        ]);
    }
    let evt_at = args.len() + 1;
    for (id, tenant, event_type, aggregate, body) in w.events {
        args.extend([
            Arg::Text(id),
            Arg::Text(tenant),
            Arg::Text(event_type.into()),
            Arg::Text(aggregate),
            Arg::Text(body),
        ]);
    }
    let del_at = args.len() + 1;
    for (tenant, id) in w.unclaim {
        args.extend([Arg::Text(tenant), Arg::Text(id)]);
    }
    let mut inserts = Vec::new();
    if n_res > 0 {
        inserts.push(format!(
            "INSERT INTO inv_reservations (id, tenant_id, allocation_id, sku, warehouse, \
             quantity, state, created_at_ms) SELECT v.*, $1 FROM (VALUES {}) AS v",
            rows_at(res_at, n_res, 7)
        ));
        inserts.push(format!(
            "INSERT INTO inv_movements (tenant_id, id, sku, warehouse, kind, on_hand_delta, \
             reserved_delta, reservation_id, created_at_ms) \
             SELECT v.column1, v.column2, v.column3, v.column4, v.column5, 0, v.column6, \
             v.column7, $1 FROM (VALUES {}) AS v",
            rows_at(mov_at, n_mov, 7)
        ));
    }
    if n_evt > 0 {
        inserts.push(format!(
            "INSERT INTO events (event_id, tenant_id, event_type, aggregate, payload, \
             created_at_ms) SELECT v.*, $1 FROM (VALUES {}) AS v",
            rows_at(evt_at, n_evt, 5)
        ));
    }
    let moved = match dialect {
        Dialect::Postgres => {
            let mut parts: Vec<String> = inserts
                .into_iter()
                .enumerate()
                .map(|(i, sql)| format!("w{i} AS ({sql})"))
                .collect();
            if n_del > 0 {
                parts.push(format!(
                    "unclaimed AS (DELETE FROM inv_allocations a USING (VALUES {}) AS v (t, i) \
                     WHERE a.tenant_id = v.t AND a.id = v.i)",
                    rows_at(del_at, n_del, 2)
                ));
            }
            let counted = if n_cnt > 0 {
                parts.push(format!(
                    "moved AS (UPDATE inv_stock st SET reserved = st.reserved + v.q, \
                     updated_at_ms = $1 FROM (VALUES {}) AS v (t, sku, warehouse, q) \
                     WHERE st.tenant_id = v.t AND st.sku = v.sku AND st.warehouse = v.warehouse \
                     AND st.on_hand - st.reserved - v.q - st.safety >= 0 RETURNING 1)",
                    rows_at(cnt_at, n_cnt, 4)
                ));
                "SELECT COUNT(*) FROM moved"
            } else {
                "SELECT CAST(0 AS BIGINT)"
            };
            let sql = format!("WITH {} {counted}", parts.join(", "));
            let row = statement(dialect, &sql, args).fetch_one(&mut *conn).await?;
            usize::try_from(row.get::<i64, _>(0)).unwrap_or(0)
        }
        Dialect::Sqlite => {
            let mut statements = inserts;
            statements.extend((0..n_cnt).map(|i| {
                let p = cnt_at + 4 * i;
                format!(
                    "UPDATE inv_stock SET reserved = reserved + ${q}, updated_at_ms = $1 \
                     WHERE tenant_id = ${p} AND sku = ${s} AND warehouse = ${w} \
                     AND on_hand - reserved - ${q} - safety >= 0",
                    s = p + 1,
                    w = p + 2,
                    q = p + 3,
                )
            }));
            statements.extend((0..n_del).map(|i| {
                let p = del_at + 2 * i;
                format!(
                    "DELETE FROM inv_allocations WHERE tenant_id = ${p} AND id = ${}",
                    p + 1
                )
            }));
            let done = statement(dialect, &statements.join("; "), args)
                .execute(&mut *conn)
                .await?;
            // Every statement's rows: the counters are the ones that can fall short.
            usize::try_from(done.rows_affected())
                .unwrap_or(0)
                .saturating_sub(n_res + n_mov + n_evt + n_del)
        }
    };
    Ok(moved == n_cnt)
}
