//! Importing an invoice (read, group, classify, store), reading it back (JSON or CSV), and
//! settling its lines: accepting one posts what the carrier billed beyond the quote; disputing
//! one holds that amount as a pending transfer until the dispute is won (voided) or lost
//! (posted).

use super::error::{FinanceError, TransferError};
use super::invoices::{self, BadRow, ChargeRow, InvoiceLine, class};
use super::post::post_on;
use super::{AccountKind, FinanceService, TransferKind, TransferRequest, accounts};
use crate::fields::FieldError;
use crate::settings::InvoiceLayout;
use crate::store::StoreError;
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    pub id: String,
    pub carrier: String,
    pub invoice_number: String,
    pub invoice_date: String,
    pub currency: String,
    /// The billed rows summed, minor units.
    pub total: i64,
    pub lines: i64,
    pub classifications: BTreeMap<String, i64>,
    pub bad_rows: Vec<BadRow>,
}

/// What to do with a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Accept,
    Dispute,
    Won,
    Lost,
}

const LINE_COLUMNS: &str = "line, tracking_number, waybill_number, billed, quoted, currency, \
     billed_weight_grams, declared_weight_grams, classification, detail, charges, \
     dispute_deadline, resolution";

fn line_row(r: &sqlx::any::AnyRow) -> InvoiceLine {
    let charges: String = r.get(10);
    InvoiceLine {
        line: r.get::<i64, _>(0) as u64,
        tracking_number: r.get(1),
        waybill_number: r.get(2),
        billed: r.get(3),
        quoted: r.get(4),
        currency: r.get(5),
        billed_weight_grams: r.get(6),
        declared_weight_grams: r.get(7),
        classification: r.get(8),
        detail: r.get(9),
        charges: serde_json::from_str::<Vec<ChargeRow>>(&charges).unwrap_or_default(),
        dispute_deadline: r.get(11),
        resolution: r.get(12),
    }
}

impl FinanceService {
    /// Imports `carrier`'s invoice file read by `layout`.
    pub async fn import_invoice(
        &self,
        tenant: &str,
        carrier: &str,
        layout: &InvoiceLayout,
        file: &[u8],
    ) -> Result<(Invoice, Vec<InvoiceLine>), FinanceError> {
        let (rows, bad_rows) = invoices::read(layout, file);
        let Some(first) = rows.first() else {
            return Err(FinanceError::Validation(
                bad_rows
                    .iter()
                    .map(|b| FieldError::new(format!("line {}", b.line), b.error.clone()))
                    .chain(std::iter::once(FieldError::new(
                        "file",
                        "no charge row could be read",
                    )))
                    .collect(),
            ));
        };
        let mut groups: BTreeMap<&str, Vec<&invoices::Charge>> = BTreeMap::new();
        for r in &rows {
            groups.entry(r.tracking.as_str()).or_default().push(r);
        }
        let tracking: Vec<&str> = groups.keys().copied().filter(|t| !t.is_empty()).collect();
        let (known, before) = self.known(tenant, &tracking).await?;
        let mut lines = Vec::with_capacity(groups.len());
        for (t, group) in &groups {
            if t.is_empty() {
                for r in group {
                    lines.push(InvoiceLine {
                        line: r.line,
                        tracking_number: String::new(),
                        waybill_number: None,
                        billed: r.amount,
                        quoted: None,
                        currency: r.currency.clone(),
                        billed_weight_grams: None,
                        declared_weight_grams: None,
                        classification: class::INVOICE_CHARGE.into(),
                        detail: r.description.clone(),
                        charges: Vec::new(),
                        dispute_deadline: None,
                        resolution: "open".into(),
                    });
                }
                continue;
            }
            let line = self
                .classify(tenant, layout, group, known.get(*t), before.contains(*t))
                .await;
            lines.push(line);
        }
        lines.sort_by_key(|l| l.line);
        let invoice = Invoice {
            id: format!("inv_{}", uuid::Uuid::now_v7().simple()),
            carrier: carrier.to_owned(),
            invoice_number: first.invoice_number.clone(),
            invoice_date: first.invoice_date.to_string(),
            currency: first.currency.clone(),
            total: rows.iter().map(|r| r.amount).sum(),
            lines: lines.len() as i64,
            classifications: invoices::tally(&lines),
            bad_rows,
        };
        let (t, i, l) = (tenant.to_owned(), invoice.clone(), lines.clone());
        self.db
            .transact(move |conn| Box::pin(async move { invoices::store(conn, &t, &i, &l).await }))
            .await?;
        Ok((invoice, lines))
    }

    /// An imported invoice and its lines (of one classification, when asked).
    pub async fn invoice(
        &self,
        tenant: &str,
        id: &str,
        classification: Option<&str>,
    ) -> Result<(Invoice, Vec<InvoiceLine>), FinanceError> {
        let row = sqlx::query(
            "SELECT id, carrier, invoice_number, invoice_date, currency, total, lines, bad_rows \
             FROM fin_invoices WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.db.pool)
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| FinanceError::NotFound(format!("no invoice `{id}`")))?;
        let all = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LINE_COLUMNS} FROM fin_invoice_lines WHERE tenant_id = $1 AND invoice_id = $2 \
             ORDER BY line"
        )))
        .bind(tenant)
        .bind(id)
        .fetch_all(&self.db.pool)
        .await
        .map_err(StoreError::from)?;
        let all: Vec<InvoiceLine> = all.iter().map(line_row).collect();
        let bad: String = row.get(7);
        let invoice = Invoice {
            id: row.get(0),
            carrier: row.get(1),
            invoice_number: row.get(2),
            invoice_date: row.get(3),
            currency: row.get(4),
            total: row.get(5),
            lines: row.get(6),
            classifications: invoices::tally(&all),
            bad_rows: serde_json::from_str(&bad).unwrap_or_default(),
        };
        let lines = all
            .into_iter()
            .filter(|l| classification.is_none_or(|c| l.classification == c))
            .collect();
        Ok((invoice, lines))
    }

    /// Accepts, disputes, or closes a dispute of one line; the line as it is now.
    pub async fn settle_line(
        &self,
        tenant: &str,
        invoice_id: &str,
        line: i64,
        action: Settle,
    ) -> Result<InvoiceLine, FinanceError> {
        let (invoice, lines) = self.invoice(tenant, invoice_id, None).await?;
        let l = lines
            .into_iter()
            .find(|l| l.line as i64 == line)
            .ok_or_else(|| FinanceError::NotFound(format!("no line {line} in {invoice_id}")))?;
        let refuse =
            |m: String| FinanceError::Transfer(TransferError::conflict("LINE_NOT_OPEN", m));
        let allowed = match action {
            Settle::Accept | Settle::Dispute => l.resolution == "open",
            Settle::Won | Settle::Lost => l.resolution == "disputed",
        };
        if !allowed {
            return Err(refuse(format!("line {line} is {}", l.resolution)));
        }
        // What the carrier billed beyond what was quoted (all of it when nothing was).
        let excess = l.billed - l.quoted.unwrap_or(0);
        if action == Settle::Dispute && (excess <= 0 || l.classification == class::AS_QUOTED) {
            return Err(refuse(format!(
                "line {line} bills nothing beyond the quote"
            )));
        }
        let cur = l.currency.clone();
        let variance = format!("shipping_cost_variance:{cur}");
        let payable = format!("accounts_payable.carrier.{}:{cur}", invoice.carrier);
        let base = format!("inv:{invoice_id}:{line}");
        let request = |id: String, kind: TransferKind, amount: i64, pending: Option<String>| {
            let (debit, credit) = if amount >= 0 {
                (variance.clone(), payable.clone())
            } else {
                (payable.clone(), variance.clone())
            };
            TransferRequest {
                id,
                debit_account: pending.is_none().then_some(debit),
                credit_account: pending.is_none().then_some(credit),
                amount: amount.abs(),
                currency: Some(cur.clone()),
                code: "carrier_invoice".into(),
                kind: Some(kind),
                pending_id: pending,
                reference: Some(l.tracking_number.clone()),
                ..TransferRequest::default()
            }
        };
        let (resolution, transfer) = match action {
            Settle::Accept => (
                "accepted",
                (excess != 0)
                    .then(|| request(format!("{base}:accept"), TransferKind::Single, excess, None)),
            ),
            Settle::Dispute => (
                "disputed",
                Some(request(
                    format!("{base}:dispute"),
                    TransferKind::Pending,
                    excess,
                    None,
                )),
            ),
            Settle::Won => (
                "won",
                Some(request(
                    format!("{base}:won"),
                    TransferKind::VoidPending,
                    0,
                    Some(format!("{base}:dispute")),
                )),
            ),
            Settle::Lost => (
                "lost",
                Some(request(
                    format!("{base}:lost"),
                    TransferKind::PostPending,
                    0,
                    Some(format!("{base}:dispute")),
                )),
            ),
        };
        let (dialect, t, id) = (self.db.dialect, tenant.to_owned(), invoice_id.to_owned());
        let carrier = invoice.carrier.clone();
        self.db
            .transact(move |conn| {
                Box::pin(async move {
                    for (account, kind, name) in [
                        (
                            &variance,
                            AccountKind::Expense,
                            "Carrier bills beyond quotes".to_owned(),
                        ),
                        (
                            &payable,
                            AccountKind::Liability,
                            format!("Owed to {carrier} for shipments"),
                        ),
                    ] {
                        accounts::ensure_plain(conn, &t, account, &cur, kind, &name).await?;
                    }
                    if let Some(r) = transfer {
                        for outcome in post_on(conn, dialect, &t, vec![r]).await? {
                            if let Some(e) = outcome.error() {
                                return Err(FinanceError::Transfer(e.clone()));
                            }
                        }
                    }
                    sqlx::query(
                        "UPDATE fin_invoice_lines SET resolution = $1 WHERE tenant_id = $2 \
                         AND invoice_id = $3 AND line = $4",
                    )
                    .bind(resolution)
                    .bind(&t)
                    .bind(&id)
                    .bind(line)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        Ok(InvoiceLine {
            resolution: resolution.into(),
            ..l
        })
    }
}

/// An invoice's lines as CSV (for the carrier's dispute form or a spreadsheet).
pub fn lines_csv(invoice: &Invoice, lines: &[InvoiceLine]) -> String {
    let m = |v: i64| super::money::to_decimal(v, &invoice.currency);
    let mut out = String::from(
        "line,tracking_number,waybill_number,billed,quoted,currency,billed_weight_grams,declared_weight_grams,classification,detail,dispute_deadline,resolution\n",
    );
    for l in lines {
        let fields = [
            l.line.to_string(),
            l.tracking_number.clone(),
            l.waybill_number.clone().unwrap_or_default(),
            m(l.billed),
            l.quoted.map(m).unwrap_or_default(),
            l.currency.clone(),
            l.billed_weight_grams
                .map(|g| g.to_string())
                .unwrap_or_default(),
            l.declared_weight_grams
                .map(|g| g.to_string())
                .unwrap_or_default(),
            l.classification.clone(),
            l.detail.clone(),
            l.dispute_deadline.clone().unwrap_or_default(),
            l.resolution.clone(),
        ];
        let row: Vec<String> = fields
            .iter()
            .map(|f| super::reports::csv_field(f))
            .collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}
