//! The gateway's waybill events post to the ledger (and received orders are remembered, for
//! matching payments to them): a created waybill posts its charge (the
//! seller owes it; shipgate owes the carrier its quoted cost), a cancelled one reverses it.
//!
//! Transfer ids come from the waybill (`wb:{number}:charge`, `wb:{number}:reversal`), and the
//! consumer's position moves in the transaction that posts, so replaying every event from the
//! beginning, or a crash between posting and moving on, posts nothing twice.

use super::error::FinanceError;
use super::post::post_on;
use super::{AccountKind, TransferKind, TransferRequest, accounts, money};
use crate::events::{Consumer, Event};
use crate::store::sql::{self, Arg};
use crate::store::{Dialect, StoreError};
use serde_json::Value;
use sqlx::AnyConnection;
use std::collections::HashSet;

/// The seller's shipping charges not yet paid (an asset).
pub fn receivable(currency: &str) -> String {
    format!("accounts_receivable.shipping:{currency}")
}

/// What is owed to a carrier for the shipments it carries (a liability).
pub fn carrier_payable(carrier: &str, currency: &str) -> String {
    format!("accounts_payable.carrier.{carrier}:{currency}")
}

pub struct LedgerFeed {
    dialect: Dialect,
}

impl LedgerFeed {
    pub const NAME: &'static str = "finance.ledger";

    pub fn new(dialect: Dialect) -> Self {
        Self { dialect }
    }
}

fn store(e: FinanceError) -> StoreError {
    match e {
        FinanceError::Store(s) => s,
        other => StoreError::decode(other.to_string()),
    }
}

#[async_trait::async_trait]
impl Consumer for LedgerFeed {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn wants(&self) -> Option<&str> {
        Some("event_type IN ('waybill.created', 'waybill.cancelled', 'order.received')")
    }

    async fn handle(&self, conn: &mut AnyConnection, event: &Event) -> Result<(), StoreError> {
        let mut charges = Charges::default();
        self.take(conn, event, &mut charges).await?;
        self.flush(conn, &mut charges).await
    }

    /// The batch's charges are posted together (one posting per tenant, until a cancellation,
    /// which may reverse one of them, comes).
    async fn handle_batch(
        &self,
        conn: &mut AnyConnection,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let mut charges = Charges::default();
        for event in events {
            self.take(conn, event, &mut charges).await?;
        }
        self.flush(conn, &mut charges).await
    }
}

/// Charges waiting to be posted, by tenant in first-seen order, the accounts known to exist,
/// and the received orders and created waybills waiting to be remembered (written together at
/// the flush).
#[derive(Default)]
struct Charges {
    waiting: Vec<(String, Vec<TransferRequest>)>,
    ensured: HashSet<(String, String)>,
    orders: Vec<[Arg; 5]>,
    shipments: Vec<[Arg; 8]>,
}

impl LedgerFeed {
    /// Handles one event; a charge waits in `charges` for [`Self::flush`].
    async fn take(
        &self,
        conn: &mut AnyConnection,
        event: &Event,
        charges: &mut Charges,
    ) -> Result<(), StoreError> {
        let created = match event.event_type.as_str() {
            "waybill.created" => true,
            "waybill.cancelled" => false,
            "order.received" => {
                charges.orders.extend(received_order(event)?);
                return Ok(());
            }
            _ => return Ok(()),
        };
        let body: Value = serde_json::from_str(&event.payload).map_err(StoreError::decode)?;
        let w = &body["waybill"];
        let (Some(number), Some(carrier)) = (w["waybillNumber"].as_str(), w["carrier"].as_str())
        else {
            return Ok(());
        };
        let tenant = event.tenant_id.as_str();
        if created {
            charges.shipments.push(shipment_row(tenant, w, "created"));
            let (Some(amount), Some(currency)) =
                (w["chargeAmount"].as_str(), w["chargeCurrency"].as_str())
            else {
                // No quote from the carrier: nothing known to post until its invoice.
                return Ok(());
            };
            let Some(minor) = money::to_minor(amount, currency) else {
                tracing::warn!(waybill = number, amount, currency, "charge not postable");
                return Ok(());
            };
            let currency = currency.to_ascii_uppercase();
            let charge = charge(conn, tenant, number, carrier, &currency, minor, charges)
                .await
                .map_err(store)?;
            if let Some(request) = charge {
                match charges.waiting.iter_mut().find(|(t, _)| t == tenant) {
                    Some((_, requests)) => requests.push(request),
                    None => charges.waiting.push((tenant.to_owned(), vec![request])),
                }
            }
            Ok(())
        } else {
            // The charge it reverses, and the waybill as created, may be waiting.
            self.flush(conn, charges).await?;
            remember_shipments(
                conn,
                self.dialect,
                vec![shipment_row(tenant, w, "cancelled")],
            )
            .await?;
            self.reverse_charge(conn, tenant, number)
                .await
                .map_err(store)
        }
    }

    /// Posts the waiting charges and remembers the waiting orders.
    async fn flush(
        &self,
        conn: &mut AnyConnection,
        charges: &mut Charges,
    ) -> Result<(), StoreError> {
        remember_orders(conn, self.dialect, std::mem::take(&mut charges.orders)).await?;
        remember_shipments(conn, self.dialect, std::mem::take(&mut charges.shipments)).await?;
        for (tenant, requests) in std::mem::take(&mut charges.waiting) {
            self.post_logged(conn, &tenant, requests)
                .await
                .map_err(store)?;
        }
        Ok(())
    }
}

/// A waybill as finance remembers it (tenant, number, tracking number, carrier, quoted amount
/// and currency, declared weight, `state`) from the event's `waybill`, which names its number.
fn shipment_row(tenant: &str, w: &Value, state: &str) -> [Arg; 8] {
    let quoted = match (w["chargeAmount"].as_str(), w["chargeCurrency"].as_str()) {
        (Some(a), Some(c)) => money::to_minor(a, c).map(|m| (m, c.to_ascii_uppercase())),
        _ => None,
    };
    let text = |k: &str| w[k].as_str().map(str::to_owned);
    [
        Arg::Text(tenant.to_owned()),
        Arg::Text(text("waybillNumber").unwrap_or_default()),
        Arg::OptText(text("trackingNumber")),
        Arg::Text(text("carrier").unwrap_or_default()),
        Arg::OptInt(quoted.as_ref().map(|q| q.0)),
        Arg::OptText(quoted.map(|q| q.1)),
        Arg::OptInt(w["declaredWeightGrams"].as_i64()),
        Arg::Text(state.to_owned()),
    ]
}

/// Finance's own view of the tenant's waybills, which carrier invoices are matched against: one
/// statement per 500 (a waybill named twice is written as it was last; one already remembered
/// takes the new state, and keeps its tracking number when the new one has none).
async fn remember_shipments(
    conn: &mut AnyConnection,
    dialect: Dialect,
    rows: Vec<[Arg; 8]>,
) -> Result<(), StoreError> {
    let key = |r: &[Arg; 8]| match (&r[0], &r[1]) {
        (Arg::Text(t), Arg::Text(n)) => (t.clone(), n.clone()),
        _ => Default::default(),
    };
    // One statement may not update a row twice: the last of a number stands.
    let mut seen = HashSet::new();
    let mut rows: Vec<[Arg; 8]> = rows
        .into_iter()
        .rev()
        .filter(|r| seen.insert(key(r)))
        .collect();
    rows.reverse();
    insert_rows(conn, dialect, rows, |values| {
        format!(
            "INSERT INTO fin_shipments (tenant_id, waybill_number, tracking_number, carrier, \
             quoted_amount, quoted_currency, declared_weight_grams, state) VALUES {values} \
             ON CONFLICT (tenant_id, waybill_number) DO UPDATE SET state = excluded.state, \
             tracking_number = COALESCE(excluded.tracking_number, fin_shipments.tracking_number)"
        )
    })
    .await
}

/// Writes `rows` with one statement per 500 of them: `insert` makes the statement around its
/// `VALUES` list.
async fn insert_rows<const N: usize>(
    conn: &mut AnyConnection,
    dialect: Dialect,
    rows: Vec<[Arg; N]>,
    insert: impl Fn(String) -> String,
) -> Result<(), StoreError> {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<[Arg; N]> = rows.by_ref().take(500).collect();
        let query = insert(sql::rows(chunk.len(), N));
        sql::statement(dialect, &query, chunk.into_iter().flatten().collect())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A received order as finance remembers it (tenant, id, external id, number, channel).
fn received_order(event: &Event) -> Result<Option<[Arg; 5]>, StoreError> {
    let body: Value = serde_json::from_str(&event.payload).map_err(StoreError::decode)?;
    let o = &body["order"];
    let (Some(id), Some(external), Some(channel)) = (
        o["id"].as_str(),
        o["externalId"].as_str(),
        o["channel"].as_str(),
    ) else {
        return Ok(None);
    };
    Ok(Some([
        Arg::Text(event.tenant_id.clone()),
        Arg::Text(id.to_owned()),
        Arg::Text(external.to_owned()),
        Arg::OptText(o["orderNumber"].as_str().map(str::to_owned)),
        Arg::Text(channel.to_owned()),
    ]))
}

/// Finance's own view of the tenant's orders, which payments are matched against: one statement
/// per 500 orders (an order already remembered is left as it is).
async fn remember_orders(
    conn: &mut AnyConnection,
    dialect: Dialect,
    orders: Vec<[Arg; 5]>,
) -> Result<(), StoreError> {
    insert_rows(conn, dialect, orders, |values| {
        format!(
            "INSERT INTO fin_orders (tenant_id, order_id, external_id, order_number, channel) \
             VALUES {values} ON CONFLICT (tenant_id, order_id) DO NOTHING"
        )
    })
    .await
}

/// The charge of a created waybill (its accounts made if new); `None` for a zero quote.
async fn charge(
    conn: &mut AnyConnection,
    tenant: &str,
    number: &str,
    carrier: &str,
    currency: &str,
    minor: i64,
    charges: &mut Charges,
) -> Result<Option<TransferRequest>, FinanceError> {
    if minor <= 0 {
        return Ok(None);
    }
    let debit = receivable(currency);
    let credit = carrier_payable(carrier, currency);
    for (id, kind, name) in [
        (
            &debit,
            AccountKind::Asset,
            "Shipping charges receivable from the seller".to_owned(),
        ),
        (
            &credit,
            AccountKind::Liability,
            format!("Owed to {carrier} for shipments"),
        ),
    ] {
        if charges.ensured.insert((tenant.to_owned(), id.clone())) {
            accounts::ensure_plain(conn, tenant, id, currency, kind, &name).await?;
        }
    }
    Ok(Some(TransferRequest {
        id: format!("wb:{number}:charge"),
        debit_account: Some(debit),
        credit_account: Some(credit),
        amount: minor,
        currency: Some(currency.to_owned()),
        code: "shipping_charge".into(),
        kind: Some(TransferKind::Single),
        reference: Some(number.to_owned()),
        ..TransferRequest::default()
    }))
}

impl LedgerFeed {
    async fn reverse_charge(
        &self,
        conn: &mut AnyConnection,
        tenant: &str,
        number: &str,
    ) -> Result<(), FinanceError> {
        let charge_id = format!("wb:{number}:charge");
        let Some(charge) = super::transfers::load(conn, tenant, &[charge_id.as_str()])
            .await?
            .remove(&charge_id)
        else {
            return Ok(());
        };
        let t = charge.transfer;
        let request = TransferRequest {
            id: format!("wb:{number}:reversal"),
            debit_account: Some(t.credit_account),
            credit_account: Some(t.debit_account),
            amount: t.amount,
            currency: Some(t.currency),
            code: "shipping_charge_reversal".into(),
            kind: Some(TransferKind::Single),
            reference: Some(number.to_owned()),
            ..TransferRequest::default()
        };
        self.post_logged(conn, tenant, vec![request]).await
    }

    /// Posts transfers; a refusal (which replaying cannot change) is logged, not retried.
    async fn post_logged(
        &self,
        conn: &mut AnyConnection,
        tenant: &str,
        requests: Vec<TransferRequest>,
    ) -> Result<(), FinanceError> {
        let ids: Vec<String> = requests.iter().map(|r| r.id.clone()).collect();
        let outcomes = post_on(conn, self.dialect, tenant, requests).await?;
        for (id, outcome) in ids.iter().zip(outcomes) {
            if let Some(e) = outcome.error() {
                tracing::warn!(transfer = %id, code = e.code, error = %e, "ledger refused a transfer");
            }
        }
        Ok(())
    }
}
