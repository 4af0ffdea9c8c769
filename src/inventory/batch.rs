//! Allocations placed in batches: every allocation request waiting when a worker is free goes
//! into one transaction of a few statements (see [`super::reserve`]), planned one after another
//! on the figures read once, so concurrent requests share their round trips and their commit.
//! Each request still gets its own answer: placed, refused (its claim is taken back), or
//! already claimed (the caller answers it as a repeat).

use super::allocate::nearness;
use super::event_types::{ALLOCATION_CREATED, LOW_STOCK, STOCK_CHANGED};
use super::plan::{Candidate, plan};
use super::reserve::{self, Claim, StockRow, Writes};
use super::{
    Allocation, AllocationState, InventoryError, Movement, MovementKind, Reservation, StockLevel,
    WarehousePlan,
};
use crate::events;
use crate::fields::FieldError;
use crate::store::{Db, now_millis, rfc3339_millis};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Most requests taken from the queue at once.
const MAX_REQUESTS: usize = 64;
/// Most lines in one transaction (bounds the statements' bound values under the databases'
/// limits: SQLite's 32,766).
const MAX_LINES: usize = 800;

/// An allocation to place.
#[derive(Clone)]
pub(super) struct Request {
    pub claim: Claim,
    /// Distinct SKUs and their quantities.
    pub lines: Vec<(String, i64)>,
    /// (field, SKU) of every line, to name the unknown ones.
    pub fields: Vec<(String, String)>,
    /// Country, state, postal code.
    pub destination: (String, Option<String>, Option<String>),
}

/// How a request ended.
pub(super) enum Placed {
    New(Allocation),
    /// Its id was claimed before (or by a request ahead of it in the batch).
    Claimed,
}

type Reply = oneshot::Sender<Result<Placed, InventoryError>>;

#[derive(Clone)]
pub(super) struct Batcher {
    queue: mpsc::Sender<(Request, Reply)>,
}

impl Batcher {
    /// Starts `workers` workers placing batches on `db`, on a thread of their own (as the
    /// SQLite writer is): the hand-offs of every batch do not queue behind the HTTP workers' or
    /// the background jobs' tasks, and the batcher outlives any one HTTP worker. They end with
    /// the last handle.
    pub fn spawn(db: Db, workers: usize) -> Self {
        let (queue, rx) = mpsc::channel(4 * MAX_REQUESTS);
        let rx = Arc::new(Mutex::new(rx));
        let all = futures_util::future::join_all(
            (0..workers.max(1)).map(move |_| work(db.clone(), rx.clone())),
        );
        crate::store::writer::on_own_thread("allocations", async move {
            all.await;
        });
        Self { queue }
    }

    pub async fn place(&self, request: Request) -> Result<Placed, InventoryError> {
        let (reply, answer) = oneshot::channel();
        let stopped =
            || InventoryError::Store(crate::store::StoreError::decode("allocations stopped"));
        self.queue
            .send((request, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn work(db: Db, rx: Arc<Mutex<mpsc::Receiver<(Request, Reply)>>>) {
    let mut taken = Vec::with_capacity(MAX_REQUESTS);
    loop {
        if rx.lock().await.recv_many(&mut taken, MAX_REQUESTS).await == 0 {
            return;
        }
        while !taken.is_empty() {
            let mut lines = 0;
            let n = taken
                .iter()
                .take_while(|(r, _)| {
                    lines += r.lines.len();
                    lines <= MAX_LINES
                })
                .count()
                .max(1);
            let (requests, replies): (Vec<Request>, Vec<Reply>) = taken.drain(..n).unzip();
            match place_batch(&db, requests).await {
                Ok(results) => {
                    for (reply, result) in replies.into_iter().zip(results) {
                        let _ = reply.send(result);
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    for reply in replies {
                        let failed = crate::store::StoreError::decode(message.clone());
                        let _ = reply.send(Err(InventoryError::Store(failed)));
                    }
                }
            }
        }
    }
}

async fn place_batch(
    db: &Db,
    requests: Vec<Request>,
) -> Result<Vec<Result<Placed, InventoryError>>, InventoryError> {
    let dialect = db.dialect;
    db.transact(move |conn| {
        Box::pin(async move {
            let mut order: Vec<usize> = (0..requests.len()).collect();
            order.sort_by(|&a, &b| {
                let (a, b) = (&requests[a].claim, &requests[b].claim);
                (&a.tenant, &a.id).cmp(&(&b.tenant, &b.id))
            });
            order.dedup_by(|b, a| {
                let (a, b) = (&requests[*a].claim, &requests[*b].claim);
                (&a.tenant, &a.id) == (&b.tenant, &b.id)
            });
            let claims: Vec<&Claim> = order.iter().map(|&i| &requests[i].claim).collect();
            let new = reserve::claim(conn, &claims).await?;
            let mut first = HashSet::new();
            let placing: Vec<bool> = requests
                .iter()
                .map(|r| {
                    let key = (r.claim.tenant.clone(), r.claim.id.clone());
                    new.contains(&key) && first.insert(key)
                })
                .collect();
            let mut skus: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for r in requests
                .iter()
                .zip(&placing)
                .filter(|(_, p)| **p)
                .map(|(r, _)| r)
            {
                let names = skus.entry(r.claim.tenant.clone()).or_default();
                names.extend(r.lines.iter().map(|(sku, _)| sku.clone()));
            }
            let stock = match skus.is_empty() {
                true => Vec::new(),
                false => {
                    for names in skus.values_mut() {
                        names.sort();
                        names.dedup();
                    }
                    reserve::read_stock(conn, dialect, &skus).await?
                }
            };
            let mut ledger = Ledger::new(&stock);
            let mut results = Vec::with_capacity(requests.len());
            for (r, placing) in requests.iter().zip(placing) {
                if !placing {
                    results.push(Ok(Placed::Claimed));
                    continue;
                }
                let mut unknown = Vec::new();
                for (field, sku) in &r.fields {
                    if !ledger.holds(&r.claim.tenant, sku)
                        && !reserve::sku_exists(conn, &r.claim.tenant, sku).await?
                    {
                        unknown.push(FieldError::new(field, format!("no SKU `{sku}` is defined")));
                    }
                }
                let placed = match unknown.is_empty() {
                    true => ledger.place(r),
                    false => Err(InventoryError::UnknownSku(unknown)),
                };
                if placed.is_err() {
                    ledger
                        .writes
                        .unclaim
                        .push((r.claim.tenant.clone(), r.claim.id.clone()));
                }
                results.push(placed.map(Placed::New));
            }
            if !reserve::write(conn, dialect, ledger.writes, ledger.now).await? {
                return Err(InventoryError::WouldGoNegative(
                    "a reservation would leave available stock negative".into(),
                ));
            }
            Ok(results)
        })
    })
    .await
}

/// The batch's stock as it is planned: what each row has left, and the writes so far.
struct Ledger<'a> {
    /// (tenant, SKU, warehouse) → the row and what the batch took of it so far.
    rows: HashMap<(String, String, String), (&'a StockRow, i64)>,
    writes: Writes,
    now: i64,
}

impl<'a> Ledger<'a> {
    fn new(stock: &'a [StockRow]) -> Self {
        Self {
            rows: stock
                .iter()
                .map(|r| {
                    (
                        (r.tenant.clone(), r.sku.clone(), r.warehouse.clone()),
                        (r, 0),
                    )
                })
                .collect(),
            writes: Writes::default(),
            now: now_millis(),
        }
    }

    /// Whether the tenant has stock rows of the SKU (then it is defined).
    fn holds(&self, tenant: &str, sku: &str) -> bool {
        self.rows.keys().any(|(t, s, _)| *t == tenant && *s == sku)
    }

    /// Plans `r` on what is left and records its writes.
    fn place(&mut self, r: &Request) -> Result<Allocation, InventoryError> {
        let tenant = r.claim.tenant.as_str();
        let (country, state, postal) = &r.destination;
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut available = HashMap::new();
        for ((t, sku, warehouse), (row, taken)) in &self.rows {
            if t != tenant || !r.lines.iter().any(|(s, _)| s == sku) {
                continue;
            }
            if !candidates.iter().any(|c| c.code == *warehouse) {
                candidates.push(Candidate {
                    nearness: nearness(
                        &row.serves,
                        &row.country,
                        country,
                        state.as_deref(),
                        postal.as_deref(),
                    ),
                    code: warehouse.clone(),
                    priority: row.priority,
                });
            }
            let free = row.on_hand - row.reserved - taken - row.safety;
            available.insert((sku.clone(), warehouse.clone()), free);
        }
        candidates.sort_by(|a, b| a.code.cmp(&b.code));
        let chosen = plan(&r.lines, &candidates, &available).map_err(|short| {
            InventoryError::InsufficientStock(
                short
                    .into_iter()
                    .map(|(sku, asked, have)| {
                        FieldError::new(
                            format!("lines[sku={sku}].quantity"),
                            format!("{asked} asked, {have} available in all warehouses"),
                        )
                    })
                    .collect(),
            )
        })?;
        let mut warehouses = Vec::with_capacity(chosen.len());
        for (warehouse, take) in &chosen {
            let mut lines = Vec::with_capacity(take.len());
            for (sku, qty) in take {
                lines.push(self.reserve(r, sku, warehouse, *qty)?);
            }
            lines.sort_by(|a, b| (&a.sku, &a.reservation_id).cmp(&(&b.sku, &b.reservation_id)));
            warehouses.push(WarehousePlan {
                warehouse: warehouse.clone(),
                lines,
            });
        }
        // As `load` reads it back: by warehouse, then SKU.
        warehouses.sort_by(|a, b| a.warehouse.cmp(&b.warehouse));
        let allocation = Allocation {
            allocation_id: r.claim.id.clone(),
            state: AllocationState::Active,
            warehouses,
            expires_at: r.claim.expires_at.map(rfc3339_millis),
            reason: None,
            created_at: rfc3339_millis(r.claim.created_at),
        };
        let aggregate = format!("allocation:{}", r.claim.id);
        self.publish(
            tenant,
            ALLOCATION_CREATED,
            aggregate,
            json!({ "allocation": allocation }),
        );
        Ok(allocation)
    }

    /// Takes `qty` of `sku` at `warehouse` for `r`: the reservation, its counter, movement and
    /// events.
    fn reserve(
        &mut self,
        r: &Request,
        sku: &str,
        warehouse: &str,
        qty: i64,
    ) -> Result<Reservation, InventoryError> {
        let tenant = r.claim.tenant.as_str();
        let key = (tenant.to_owned(), sku.to_owned(), warehouse.to_owned());
        let Some((row, taken)) = self.rows.get_mut(&key) else {
            return Err(InventoryError::WouldGoNegative(format!(
                "no stock row of {sku} at {warehouse}"
            )));
        };
        let before = row.on_hand - row.reserved - *taken - row.safety;
        *taken += qty;
        let level = StockLevel::new(
            sku.to_owned(),
            warehouse.to_owned(),
            row.on_hand,
            row.reserved + *taken,
            row.safety,
        );
        let threshold = row.low_stock_threshold;
        let rid = format!("res_{}", uuid::Uuid::now_v7().simple());
        let movement = Movement {
            id: format!("mov_{}", uuid::Uuid::now_v7().simple()),
            sku: sku.to_owned(),
            warehouse: warehouse.to_owned(),
            kind: MovementKind::Reserve,
            on_hand_delta: 0,
            reserved_delta: qty,
            reservation_id: Some(rid.clone()),
            reason: None,
            request_id: None,
            created_at: rfc3339_millis(self.now),
        };
        let w = &mut self.writes;
        let (t, s, wh) = (tenant.to_owned(), sku.to_owned(), warehouse.to_owned());
        w.reservations.push((
            rid.clone(),
            t.clone(),
            r.claim.id.clone(),
            s.clone(),
            wh.clone(),
            qty,
        ));
        *w.counters
            .entry((t.clone(), s.clone(), wh.clone()))
            .or_default() += qty;
        w.movements
            .push((t, movement.id.clone(), s, wh, qty, rid.clone()));
        let aggregate = format!("sku:{sku}");
        self.publish(
            tenant,
            STOCK_CHANGED,
            aggregate.clone(),
            json!({ "stock": level, "movement": movement }),
        );
        if let Some(t) = threshold
            && level.available <= t
            && before > t
        {
            self.publish(
                tenant,
                LOW_STOCK,
                aggregate,
                json!({ "stock": level, "lowStockThreshold": t }),
            );
        }
        Ok(Reservation {
            reservation_id: rid,
            sku: sku.to_owned(),
            quantity: qty,
            state: "ACTIVE".into(),
        })
    }

    fn publish(
        &mut self,
        tenant: &str,
        event_type: &'static str,
        aggregate: String,
        payload: serde_json::Value,
    ) {
        let id = events::new_id();
        let body = events::envelope(&id, event_type, self.now, payload);
        self.writes
            .events
            .push((id, tenant.to_owned(), event_type, aggregate, body));
    }
}
