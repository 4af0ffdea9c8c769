//! Closing allocations in a batch: a few statements per transaction whatever the batch's size,
//! each allocation still answered on its own. The rows are read (on PostgreSQL locked: the
//! allocations, then the stock rows, each in key order, so batches cannot deadlock), every
//! change is worked out in memory in the batch's order, then written with one statement per
//! table. Stock rows shared by many closes (a few SKUs sold all day) are held for a handful of
//! round trips a batch instead of one round trip set per allocation.

use super::event_types::{LOW_STOCK, STOCK_CHANGED};
use super::{
    Allocation, AllocationState, Close, Closing, InventoryError, Movement, Reservation, StockLevel,
    WarehousePlan,
};
use crate::events::{self, NewEvent};
use crate::store::sql::{Arg, dialect_of, grouped_in, list, rows_at, statement};
use crate::store::{Dialect, now_millis, rfc3339_millis};
use serde_json::json;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// An allocation as read: its row and its reservations (warehouse, SKU, id order).
pub(super) struct Held {
    pub state: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub reason: Option<String>,
    /// (id, SKU, warehouse, quantity, state)
    pub lines: Vec<(String, String, String, i64, String)>,
}

impl Held {
    /// The allocation as answered: its reservations grouped by warehouse.
    pub(super) fn answer(&self, id: &str) -> Allocation {
        let mut warehouses: Vec<WarehousePlan> = Vec::new();
        for (rid, sku, warehouse, qty, state) in &self.lines {
            let line = Reservation {
                reservation_id: rid.clone(),
                sku: sku.clone(),
                quantity: *qty,
                state: state.to_uppercase(),
            };
            match warehouses.last_mut() {
                Some(w) if w.warehouse == *warehouse => w.lines.push(line),
                _ => warehouses.push(WarehousePlan {
                    warehouse: warehouse.clone(),
                    lines: vec![line],
                }),
            }
        }
        let state = AllocationState::parse(&self.state);
        Allocation {
            allocation_id: id.to_owned(),
            state,
            warehouses,
            expires_at: self
                .expires_at
                .filter(|_| state == AllocationState::Active)
                .map(rfc3339_millis),
            reason: self.reason.clone(),
            created_at: rfc3339_millis(self.created_at),
        }
    }
}

/// A stock row as read, then as the batch leaves it: (on hand, reserved, safety, threshold).
type Stock = (i64, i64, i64, Option<i64>);
type Key = (String, String, String);

/// Closes `items` in order on `conn` (inside the caller's transaction): each answered with its
/// allocation as closed, or why not (unknown, nothing active to close, stock that would go
/// negative); an error only when the database fails.
pub(super) async fn close_all(
    conn: &mut AnyConnection,
    how: Close,
    items: &[Closing],
) -> Result<Vec<Result<Allocation, InventoryError>>, InventoryError> {
    let dialect = dialect_of(conn);
    let lock = match dialect {
        Dialect::Postgres => " FOR UPDATE",
        Dialect::Sqlite => "",
    };
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in items {
        ids.entry(c.tenant.clone())
            .or_default()
            .insert(c.id.clone());
    }
    let (wheres, args) = grouped_in(&ids, "tenant_id", "id");
    let rows = statement(
        dialect,
        &format!(
            "SELECT tenant_id, id, state, expires_at_ms, created_at_ms, reason \
             FROM inv_allocations WHERE {wheres} ORDER BY tenant_id, id{lock}"
        ),
        args,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut held: HashMap<(String, String), Held> = HashMap::with_capacity(rows.len());
    for r in rows {
        held.insert(
            (r.get(0), r.get(1)),
            Held {
                state: r.get(2),
                expires_at: r.get(3),
                created_at: r.get(4),
                reason: r.get(5),
                lines: Vec::new(),
            },
        );
    }
    let (wheres, args) = grouped_in(&ids, "tenant_id", "allocation_id");
    let lines = statement(
        dialect,
        &format!(
            "SELECT tenant_id, allocation_id, id, sku, warehouse, quantity, state \
             FROM inv_reservations WHERE {wheres} ORDER BY tenant_id, allocation_id, warehouse, \
             sku, id"
        ),
        args,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut touched: BTreeSet<Key> = BTreeSet::new();
    for r in lines {
        if let Some(h) = held.get_mut(&(r.get(0), r.get(1))) {
            let line: (String, String, String, i64, String) =
                (r.get(2), r.get(3), r.get(4), r.get(5), r.get(6));
            if line.4 == "active" {
                touched.insert((r.get(0), line.1.clone(), line.2.clone()));
            }
            h.lines.push(line);
        }
    }
    let mut stock = read_stock(conn, dialect, &touched).await?;
    let mut batch = Batch::new(how);
    let mut answers = Vec::with_capacity(items.len());
    for c in items {
        let key = (c.tenant.clone(), c.id.clone());
        let answer = match held.get_mut(&key) {
            None => Err(InventoryError::NotFound(format!(
                "no allocation `{}`",
                c.id
            ))),
            Some(h) => batch.close(c, h, &mut stock),
        };
        answers.push(answer);
    }
    batch.write(conn, dialect, &stock).await?;
    Ok(answers)
}

/// The stock rows of `keys` (locked in key order on PostgreSQL) with their SKU's threshold.
async fn read_stock(
    conn: &mut AnyConnection,
    dialect: Dialect,
    keys: &BTreeSet<Key>,
) -> Result<BTreeMap<Key, Stock>, InventoryError> {
    if keys.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut args = Vec::with_capacity(keys.len() * 3);
    for (t, s, w) in keys {
        args.extend([
            Arg::Text(t.clone()),
            Arg::Text(s.clone()),
            Arg::Text(w.clone()),
        ]);
    }
    let lock = match dialect {
        Dialect::Postgres => " FOR UPDATE OF st",
        Dialect::Sqlite => "",
    };
    let sql = format!(
        "SELECT st.tenant_id, st.sku, st.warehouse, st.on_hand, st.reserved, st.safety, \
         s.low_stock_threshold FROM inv_stock st JOIN (VALUES {}) AS v \
         ON st.tenant_id = v.column1 AND st.sku = v.column2 AND st.warehouse = v.column3 \
         LEFT JOIN inv_skus s ON s.tenant_id = st.tenant_id AND s.sku = st.sku \
         ORDER BY st.tenant_id, st.sku, st.warehouse{lock}",
        rows_at(1, keys.len(), 3)
    );
    Ok(statement(dialect, &sql, args)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| {
            (
                (r.get(0), r.get(1), r.get(2)),
                (r.get(3), r.get(4), r.get(5), r.get(6)),
            )
        })
        .collect())
}

/// What a batch writes.
struct Batch {
    how: Close,
    now: i64,
    /// Reservation ids that close.
    reservations: Vec<String>,
    /// The stock rows changed.
    changed: BTreeSet<Key>,
    /// (tenant, movement)
    movements: Vec<(String, Movement)>,
    /// (tenant, id, state, reason) of each allocation closed, the last word per allocation.
    allocations: BTreeMap<(String, String), (String, Option<String>)>,
    events: Vec<NewEvent>,
}

impl Batch {
    fn new(how: Close) -> Self {
        Self {
            how,
            now: now_millis(),
            reservations: Vec::new(),
            changed: BTreeSet::new(),
            movements: Vec::new(),
            allocations: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    /// Closes one allocation in memory: its reservations, the stock they held, its state and
    /// events. Nothing of it changes when it is refused.
    fn close(
        &mut self,
        c: &Closing,
        h: &mut Held,
        stock: &mut BTreeMap<Key, Stock>,
    ) -> Result<Allocation, InventoryError> {
        let how = self.how;
        let active: Vec<usize> = (0..h.lines.len())
            .filter(|&i| {
                let (_, _, warehouse, _, state) = &h.lines[i];
                state == "active" && c.warehouse.as_ref().is_none_or(|w| w == warehouse)
            })
            .collect();
        if active.is_empty() {
            let done = match how {
                Close::Release => AllocationState::Released,
                Close::Commit => AllocationState::Committed,
            };
            let partly = how == Close::Commit && c.warehouse.is_some() && h.state != "released";
            if h.state == done.as_str() || partly {
                return Ok(h.answer(&c.id));
            }
            return Err(InventoryError::NotActive(format!(
                "allocation `{}` is {}",
                c.id, h.state
            )));
        }
        // Checked on a copy first: a refused close leaves the batch's figures as they were.
        let mut after = Vec::with_capacity(active.len());
        let mut trial: HashMap<Key, Stock> = HashMap::new();
        for &i in &active {
            let (_, sku, warehouse, qty, _) = &h.lines[i];
            let key = (c.tenant.clone(), sku.clone(), warehouse.clone());
            let row = match trial.get(&key).or_else(|| stock.get(&key)) {
                Some(row) => *row,
                None => return Err(negative(how, sku, warehouse)),
            };
            let on_hand = row.0 - if how == Close::Commit { *qty } else { 0 };
            let reserved = row.1 - qty;
            if on_hand < 0 || reserved < 0 || reserved > on_hand {
                return Err(negative(how, sku, warehouse));
            }
            let moved = (on_hand, reserved, row.2, row.3);
            trial.insert(key.clone(), moved);
            after.push((i, key, row, moved));
        }
        for (i, key, before, moved) in after {
            let line = &mut h.lines[i];
            line.4 = how.reservation_state().to_owned();
            let (rid, sku, warehouse, qty, _) = line.clone();
            stock.insert(key.clone(), moved);
            self.changed.insert(key);
            self.reservations.push(rid.clone());
            let level = StockLevel::new(sku.clone(), warehouse.clone(), moved.0, moved.1, moved.2);
            let movement = Movement {
                id: format!("mov_{}", uuid::Uuid::now_v7().simple()),
                sku: sku.clone(),
                warehouse,
                kind: how.kind(),
                on_hand_delta: moved.0 - before.0,
                reserved_delta: -qty,
                reservation_id: Some(rid),
                reason: c.note.clone(),
                request_id: None,
                created_at: rfc3339_millis(self.now),
            };
            let aggregate = format!("sku:{sku}");
            self.events.push(NewEvent::new(
                &c.tenant,
                STOCK_CHANGED,
                aggregate.clone(),
                json!({ "stock": level, "movement": movement }),
            ));
            let was = before.0 - before.1 - before.2;
            if let Some(t) = moved.3
                && level.available <= t
                && was > t
            {
                self.events.push(NewEvent::new(
                    &c.tenant,
                    LOW_STOCK,
                    aggregate,
                    json!({ "stock": level, "lowStockThreshold": t }),
                ));
            }
            self.movements.push((c.tenant.clone(), movement));
        }
        // Closed when nothing of it is active any more: committed if any of it left with a
        // waybill, else released.
        let states: Vec<&str> = h.lines.iter().map(|l| l.4.as_str()).collect();
        h.state = if states.contains(&"active") {
            "active"
        } else if states.contains(&"committed") {
            "committed"
        } else {
            "released"
        }
        .to_owned();
        if c.note.is_some() {
            h.reason.clone_from(&c.note);
        }
        self.allocations.insert(
            (c.tenant.clone(), c.id.clone()),
            (h.state.clone(), h.reason.clone()),
        );
        let allocation = h.answer(&c.id);
        self.events.push(NewEvent::new(
            &c.tenant,
            how.event(),
            format!("allocation:{}", c.id),
            json!({ "allocation": allocation }),
        ));
        Ok(allocation)
    }

    /// The batch's writes: a statement per table.
    async fn write(
        self,
        conn: &mut AnyConnection,
        dialect: Dialect,
        stock: &BTreeMap<Key, Stock>,
    ) -> Result<(), InventoryError> {
        if self.reservations.is_empty() {
            return Ok(());
        }
        let mut args = vec![Arg::Text(self.how.reservation_state().into())];
        args.extend(self.reservations.into_iter().map(Arg::Text));
        let n = args.len() - 1;
        statement(
            dialect,
            &format!(
                "UPDATE inv_reservations SET state = $1 WHERE state = 'active' AND id IN ({})",
                list(2, n)
            ),
            args,
        )
        .execute(&mut *conn)
        .await?;
        let mut args = vec![Arg::Int(self.now)];
        for key in &self.changed {
            let (on_hand, reserved, _, _) = stock[key];
            let (t, s, w) = key.clone();
            args.extend([
                Arg::Text(t),
                Arg::Text(s),
                Arg::Text(w),
                Arg::Int(on_hand),
                Arg::Int(reserved),
            ]);
        }
        statement(
            dialect,
            &format!(
                "UPDATE inv_stock SET on_hand = v.column4, reserved = v.column5, \
                 updated_at_ms = $1 FROM (VALUES {}) AS v WHERE inv_stock.tenant_id = v.column1 \
                 AND inv_stock.sku = v.column2 AND inv_stock.warehouse = v.column3",
                rows_at(2, self.changed.len(), 5)
            ),
            args,
        )
        .execute(&mut *conn)
        .await?;
        let mut args = Vec::with_capacity(self.movements.len() * 9);
        for (tenant, m) in &self.movements {
            args.extend([
                Arg::Text(tenant.clone()),
                Arg::Text(m.id.clone()),
                Arg::Text(m.sku.clone()),
                Arg::Text(m.warehouse.clone()),
                Arg::Text(m.kind.as_str().into()),
                Arg::Int(m.on_hand_delta),
                Arg::Int(m.reserved_delta),
                Arg::OptText(m.reservation_id.clone()),
                Arg::OptText(m.reason.clone()),
                Arg::Int(self.now),
            ]);
        }
        statement(
            dialect,
            &format!(
                "INSERT INTO inv_movements (tenant_id, id, sku, warehouse, kind, on_hand_delta, \
                 reserved_delta, reservation_id, reason, created_at_ms) VALUES {}",
                rows_at(1, self.movements.len(), 10)
            ),
            args,
        )
        .execute(&mut *conn)
        .await?;
        let mut args = vec![Arg::Int(self.now)];
        for ((tenant, id), (state, reason)) in &self.allocations {
            args.extend([
                Arg::Text(tenant.clone()),
                Arg::Text(id.clone()),
                Arg::Text(state.clone()),
                Arg::OptText(reason.clone()),
            ]);
        }
        statement(
            dialect,
            &format!(
                "UPDATE inv_allocations SET state = v.column3, reason = v.column4, \
                 closed_at_ms = $1 FROM (VALUES {}) AS v WHERE inv_allocations.tenant_id = \
                 v.column1 AND inv_allocations.id = v.column2",
                rows_at(2, self.allocations.len(), 4)
            ),
            args,
        )
        .execute(&mut *conn)
        .await?;
        events::append_many(conn, self.events).await?;
        Ok(())
    }
}

fn negative(how: Close, sku: &str, warehouse: &str) -> InventoryError {
    InventoryError::WouldGoNegative(format!(
        "{} of {sku} at {warehouse} would leave stock negative or below what is reserved",
        how.kind().as_str()
    ))
}
