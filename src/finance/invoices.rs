//! Carrier invoice reconciliation: a carrier's invoice file, read by a configured column layout,
//! grouped per tracking number, matched to the waybill it bills and classified against what
//! was quoted and declared. Bad rows are reported by line number; the good ones import in one
//! transaction (all of them or none).

use super::FinanceService;
use super::error::{FinanceError, TransferError};
use super::money;
use crate::settings::InvoiceLayout;
use crate::store::{StoreError, now_millis};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Classifications, in the order they are tried.
pub mod class {
    pub const UNKNOWN_TRACKING_NUMBER: &str = "unknown_tracking_number";
    pub const BILLED_AFTER_VOID: &str = "billed_after_void";
    pub const BILLED_TWICE: &str = "billed_twice";
    pub const WEIGHT_DIFFERS: &str = "weight_differs";
    pub const SURCHARGE_NOT_QUOTED: &str = "surcharge_not_quoted";
    pub const AMOUNT_OFF: &str = "amount_off";
    pub const AS_QUOTED: &str = "as_quoted";
    /// Charges of the invoice itself (no tracking number): listed, not disputable.
    pub const INVOICE_CHARGE: &str = "invoice_charge";
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct BadRow {
    pub line: u64,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ChargeRow {
    pub description: String,
    pub classification: String,
    pub amount: i64,
}

/// One row of the file, read.
#[derive(Debug, Clone)]
pub(super) struct Charge {
    pub line: u64,
    pub invoice_number: String,
    pub invoice_date: chrono::NaiveDate,
    pub currency: String,
    pub tracking: String,
    pub amount: i64,
    pub category: String,
    pub class: String,
    pub description: String,
    pub weight_grams: Option<i64>,
}

fn cell(r: &csv::StringRecord, col: Option<usize>) -> String {
    col.and_then(|c| r.get(c.checked_sub(1)?))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

fn grams(value: &str, unit: &str) -> Option<i64> {
    let v: Decimal = value.parse().ok()?;
    let per = match unit.to_ascii_uppercase().as_str() {
        "L" | "LB" | "LBS" => Decimal::new(45_359_237, 5),
        "K" | "KG" | "KGS" => Decimal::from(1000),
        "O" | "OZ" => Decimal::new(28_349_523_125, 9),
        "G" => Decimal::ONE,
        _ => return None,
    };
    let g = (v * per).round();
    i64::try_from(g).ok().filter(|g| *g > 0)
}

/// Reads the file's rows by `layout`; each row that cannot be read is named by its line.
pub(super) fn read(layout: &InvoiceLayout, file: &[u8]) -> (Vec<Charge>, Vec<BadRow>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(file);
    let (mut rows, mut bad) = (Vec::new(), Vec::new());
    for (i, record) in reader.records().enumerate() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(i as u64 + 1, |p| p.line());
                bad.push(BadRow {
                    line,
                    error: format!("not CSV: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(i as u64 + 1, |p| p.line());
        if i < layout.header_rows || record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let mut fail = |error: String| bad.push(BadRow { line, error });
        let number = cell(&record, Some(layout.invoice_number));
        let currency = cell(&record, Some(layout.currency));
        let amount = cell(&record, Some(layout.amount));
        let date = cell(&record, Some(layout.invoice_date));
        let Some(cur) = money::currency(&currency) else {
            fail(format!(
                "column {}: `{currency}` is not a currency",
                layout.currency
            ));
            continue;
        };
        let Ok(date) = chrono::NaiveDate::parse_from_str(&date, &layout.date_format) else {
            fail(format!(
                "column {}: `{date}` is not a date ({})",
                layout.invoice_date, layout.date_format
            ));
            continue;
        };
        if number.is_empty() {
            fail(format!(
                "column {}: no invoice number",
                layout.invoice_number
            ));
            continue;
        }
        let Some(minor) =
            money::to_minor(if amount.is_empty() { "0" } else { &amount }, cur.code())
        else {
            fail(format!(
                "column {}: `{amount}` is not an amount",
                layout.amount
            ));
            continue;
        };
        let unit = match cell(&record, layout.billed_weight_unit) {
            u if u.is_empty() => layout.default_weight_unit.clone(),
            u => u,
        };
        rows.push(Charge {
            line,
            invoice_number: number,
            invoice_date: date,
            currency: cur.code().to_owned(),
            tracking: cell(&record, Some(layout.tracking_number)),
            amount: minor,
            category: cell(&record, layout.charge_category),
            class: cell(&record, layout.charge_classification),
            description: cell(&record, layout.charge_description),
            weight_grams: layout
                .billed_weight
                .and_then(|_| grams(&cell(&record, layout.billed_weight), &unit)),
        });
    }
    // One invoice per file: rows of another invoice number are refused, by line.
    if let Some(first) = rows.first().map(|r| r.invoice_number.clone()) {
        rows.retain(|r| {
            let same = r.invoice_number == first;
            if !same {
                bad.push(BadRow {
                    line: r.line,
                    error: format!("belongs to invoice {}, not {first}", r.invoice_number),
                });
            }
            same
        });
    }
    bad.sort_by_key(|b| b.line);
    (rows, bad)
}

/// A waybill as finance knows it from the gateway's events.
#[derive(Debug, Clone)]
pub(super) struct Known {
    pub waybill: String,
    pub quoted: Option<(i64, String)>,
    pub declared_grams: Option<i64>,
    pub cancelled: bool,
}

/// A billed tracking number, classified.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceLine {
    pub line: u64,
    pub tracking_number: String,
    pub waybill_number: Option<String>,
    pub billed: i64,
    /// In the invoice's currency (converted when the quote was in another).
    pub quoted: Option<i64>,
    pub currency: String,
    pub billed_weight_grams: Option<i64>,
    pub declared_weight_grams: Option<i64>,
    pub classification: String,
    pub detail: String,
    pub charges: Vec<ChargeRow>,
    /// For a disputable line: the last day the carrier takes a dispute.
    pub dispute_deadline: Option<String>,
    /// open, accepted, disputed, won, lost.
    pub resolution: String,
}

impl FinanceService {
    /// Classifies one tracking number's rows.
    pub(super) async fn classify(
        &self,
        tenant: &str,
        layout: &InvoiceLayout,
        rows: &[&Charge],
        known: Option<&Known>,
        billed_before: bool,
    ) -> InvoiceLine {
        let first = rows[0];
        let billed: i64 = rows.iter().map(|r| r.amount).sum();
        let weight = rows.iter().filter_map(|r| r.weight_grams).max();
        let charges: Vec<ChargeRow> = rows
            .iter()
            .map(|r| ChargeRow {
                description: r.description.clone(),
                classification: r.class.clone(),
                amount: r.amount,
            })
            .collect();
        let mut line = InvoiceLine {
            line: first.line,
            tracking_number: first.tracking.clone(),
            waybill_number: known.map(|k| k.waybill.clone()),
            billed,
            quoted: None,
            currency: first.currency.clone(),
            billed_weight_grams: weight,
            declared_weight_grams: known.and_then(|k| k.declared_grams),
            classification: String::new(),
            detail: String::new(),
            charges,
            dispute_deadline: None,
            resolution: "open".into(),
        };
        if let Some((amount, cur)) = known.and_then(|k| k.quoted.clone()) {
            line.quoted = if cur == first.currency {
                Some(amount)
            } else {
                let on = first.invoice_date.to_string();
                self.convert(tenant, amount, &cur, &first.currency, Some(&on))
                    .await
                    .ok()
                    .map(|c| c.amount)
            };
        }
        let not_adjustment = |r: &&&Charge| !layout.adjustment_categories.contains(&r.category);
        let mut seen = HashSet::new();
        let repeated = rows.iter().filter(not_adjustment).any(|r| {
            r.amount != 0 && !seen.insert((&r.category, &r.class, &r.description, r.amount))
        });
        let surcharges: i64 = rows
            .iter()
            .filter(|r| layout.surcharge_classes.contains(&r.class) && r.amount > 0)
            .map(|r| r.amount)
            .sum();
        let tolerance = layout.amount_tolerance_minor;
        let m = |v: i64| money::to_decimal(v, &first.currency);
        let (class, detail) = match known {
            None => (
                class::UNKNOWN_TRACKING_NUMBER,
                "no waybill has this tracking number".to_owned(),
            ),
            Some(k) if k.cancelled => (
                class::BILLED_AFTER_VOID,
                format!("waybill {} was voided", k.waybill),
            ),
            Some(_) if repeated || (billed_before && rows.iter().any(|r| not_adjustment(&r))) => (
                class::BILLED_TWICE,
                if repeated {
                    "the same charge appears twice".into()
                } else {
                    "billed on an earlier invoice".into()
                },
            ),
            Some(k) if matches!((weight, k.declared_grams), (Some(b), Some(d)) if b * 100 > d * i64::from(100 + layout.weight_tolerance_percent)) => {
                (
                    class::WEIGHT_DIFFERS,
                    format!(
                        "billed {} g, declared {} g",
                        weight.unwrap_or(0),
                        k.declared_grams.unwrap_or(0)
                    ),
                )
            }
            Some(_) => match line.quoted {
                Some(q) if surcharges != 0 && billed > q + tolerance => (
                    class::SURCHARGE_NOT_QUOTED,
                    format!("surcharges of {} on a quote of {}", m(surcharges), m(q)),
                ),
                Some(q) if (billed - q).abs() > tolerance => (
                    class::AMOUNT_OFF,
                    format!("billed {}, quoted {}", m(billed), m(q)),
                ),
                Some(_) => (class::AS_QUOTED, String::new()),
                None => (class::AMOUNT_OFF, "no quote to compare with".to_owned()),
            },
        };
        line.classification = class.into();
        line.detail = detail;
        if class != class::AS_QUOTED {
            line.dispute_deadline = Some(
                (first.invoice_date + chrono::Duration::days(layout.dispute_window_days))
                    .to_string(),
            );
        }
        line
    }

    /// What finance knows of these tracking numbers, and which were billed before.
    pub(super) async fn known(
        &self,
        tenant: &str,
        tracking: &[&str],
    ) -> Result<(HashMap<String, Known>, HashSet<String>), FinanceError> {
        let mut known = HashMap::new();
        let mut before = HashSet::new();
        for chunk in tracking.chunks(500) {
            let list = crate::store::sql::list(2, chunk.len());
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT tracking_number, waybill_number, quoted_amount, quoted_currency, \
                 declared_weight_grams, state FROM fin_shipments WHERE tenant_id = $1 \
                 AND tracking_number IN ({list}) ORDER BY state DESC"
            )))
            .bind(tenant);
            for t in chunk {
                q = q.bind(*t);
            }
            for r in q.fetch_all(&self.db.pool).await.map_err(StoreError::from)? {
                let amount: Option<i64> = r.get(2);
                let currency: Option<String> = r.get(3);
                // A live waybill wins over a voided one with the same number (reused numbers).
                known.entry(r.get::<String, _>(0)).or_insert(Known {
                    waybill: r.get(1),
                    quoted: amount.zip(currency),
                    declared_grams: r.get(4),
                    cancelled: r.get::<String, _>(5) == "cancelled",
                });
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT DISTINCT tracking_number FROM fin_invoice_lines WHERE tenant_id = $1 \
                 AND tracking_number IN ({list})"
            )))
            .bind(tenant);
            for t in chunk {
                q = q.bind(*t);
            }
            for r in q.fetch_all(&self.db.pool).await.map_err(StoreError::from)? {
                before.insert(r.get::<String, _>(0));
            }
        }
        Ok((known, before))
    }
}

/// Stores the invoice and its lines on the caller's transaction; `INVOICE_EXISTS` when the
/// carrier's invoice number was imported before.
pub(super) async fn store(
    conn: &mut AnyConnection,
    tenant: &str,
    invoice: &super::invoice_lines::Invoice,
    lines: &[InvoiceLine],
) -> Result<(), FinanceError> {
    let inserted = sqlx::query(
        "INSERT INTO fin_invoices (tenant_id, id, carrier, invoice_number, invoice_date, currency, \
         total, lines, bad_rows, imported_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (tenant_id, carrier, invoice_number) DO NOTHING",
    )
    .bind(tenant)
    .bind(&invoice.id)
    .bind(&invoice.carrier)
    .bind(&invoice.invoice_number)
    .bind(&invoice.invoice_date)
    .bind(&invoice.currency)
    .bind(invoice.total)
    .bind(lines.len() as i64)
    .bind(serde_json::to_string(&invoice.bad_rows).unwrap_or_default())
    .bind(now_millis())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(FinanceError::Transfer(TransferError::conflict(
            "INVOICE_EXISTS",
            format!(
                "{} invoice {} was imported before",
                invoice.carrier, invoice.invoice_number
            ),
        )));
    }
    const FIELDS: usize = 15;
    for chunk in lines.chunks(100) {
        let values = crate::store::sql::rows(chunk.len(), FIELDS);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO fin_invoice_lines (tenant_id, invoice_id, line, tracking_number, \
             waybill_number, billed, quoted, currency, billed_weight_grams, declared_weight_grams, \
             classification, detail, charges, dispute_deadline, resolution) VALUES {values}"
        )));
        for l in chunk {
            q = q
                .bind(tenant)
                .bind(&invoice.id)
                .bind(l.line as i64)
                .bind(&l.tracking_number)
                .bind(&l.waybill_number)
                .bind(l.billed)
                .bind(l.quoted)
                .bind(&l.currency)
                .bind(l.billed_weight_grams)
                .bind(l.declared_weight_grams)
                .bind(&l.classification)
                .bind(&l.detail)
                .bind(serde_json::to_string(&l.charges).unwrap_or_default())
                .bind(&l.dispute_deadline)
                .bind(&l.resolution);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Counts per classification.
pub(super) fn tally(lines: &[InvoiceLine]) -> BTreeMap<String, i64> {
    let mut t = BTreeMap::new();
    for l in lines {
        *t.entry(l.classification.clone()).or_default() += 1;
    }
    t
}
