//! The pick list of a warehouse for a set of orders: every SKU to pick, where it lies (the
//! SKU's `locations.<warehouse>` or `location` attribute) and how many, in walking order, with
//! the orders each serves. A PDF for the warehouse staff (A4, base fonts; characters outside
//! WinAnsi print as `?`).

use super::process::ShipmentLine;
use super::{OrderError, OrdersService};
use printpdf::{
    BuiltinFont, Mm, Op, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, TextItem,
};
use sqlx::Row;
use std::collections::BTreeMap;

/// One row of a pick list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub location: String,
    pub sku: String,
    pub quantity: i64,
    /// The orders' numbers (or external ids).
    pub orders: Vec<String>,
}

const ROWS_PER_PAGE: usize = 40;

impl OrdersService {
    /// What to pick in `warehouse` for `orders` (ids or external ids), in walking order.
    pub async fn picks(
        &self,
        tenant: &str,
        warehouse: &str,
        orders: &[String],
    ) -> Result<Vec<Pick>, OrderError> {
        let mut by_sku: BTreeMap<String, (i64, Vec<String>)> = BTreeMap::new();
        for key in orders {
            let order = self.resolve(tenant, key).await?;
            let name = order.order_number.unwrap_or(order.external_id);
            let id = order.id;
            let rows = sqlx::query(
                "SELECT s.lines FROM ord_shipments s JOIN ord_shipment_orders so ON so.shipment_id = s.id \
                 WHERE so.order_id = $1 AND s.warehouse = $2 AND s.state IN ('open', 'pending', 'created')",
            )
            .bind(&id)
            .bind(warehouse)
            .fetch_all(&self.db.pool)
            .await?;
            for row in rows {
                let lines: Vec<ShipmentLine> =
                    serde_json::from_str(&row.get::<String, _>(0)).unwrap_or_default();
                for l in lines.into_iter().filter(|l| l.order_id == id) {
                    let entry = by_sku.entry(l.sku).or_default();
                    entry.0 += l.quantity;
                    if !entry.1.contains(&name) {
                        entry.1.push(name.clone());
                    }
                }
            }
        }
        let mut picks = Vec::with_capacity(by_sku.len());
        for (sku, (quantity, orders)) in by_sku {
            let attrs = self.inventory.sku(tenant, &sku).await?.attributes;
            let location = attrs["locations"][warehouse]
                .as_str()
                .or(attrs["location"].as_str())
                .unwrap_or("-")
                .to_owned();
            picks.push(Pick {
                location,
                sku,
                quantity,
                orders,
            });
        }
        picks.sort_by(|a, b| (&a.location, &a.sku).cmp(&(&b.location, &b.sku)));
        Ok(picks)
    }
}

fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if crate::labels::render::win_ansi(&c.to_string()) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn text(ops: &mut Vec<Op>, s: &str, x_mm: f32, y_mm: f32, size: f32, bold: bool) {
    let mm = 72.0 / 25.4;
    ops.extend([
        Op::StartTextSection,
        Op::SetFont {
            font: PdfFontHandle::Builtin(if bold {
                BuiltinFont::HelveticaBold
            } else {
                BuiltinFont::Helvetica
            }),
            size: Pt(size),
        },
        Op::SetTextCursor {
            pos: Point {
                x: Pt(x_mm * mm),
                y: Pt(y_mm * mm),
            },
        },
        Op::ShowText {
            items: vec![TextItem::Text(printable(s))],
        },
        Op::EndTextSection,
    ]);
}

/// The pick list as a PDF: a header on every page, then location, SKU, quantity and orders.
pub fn render(warehouse: &str, date: &str, picks: &[Pick]) -> Vec<u8> {
    let mut doc = PdfDocument::new(&format!("Pick list {warehouse}"));
    let chunks: Vec<&[Pick]> = if picks.is_empty() {
        vec![&[]]
    } else {
        picks.chunks(ROWS_PER_PAGE).collect()
    };
    let total = chunks.len();
    let pages = chunks
        .into_iter()
        .enumerate()
        .map(|(n, rows)| {
            let mut ops = Vec::new();
            text(
                &mut ops,
                &format!("PICK LIST  {warehouse}"),
                15.0,
                280.0,
                16.0,
                true,
            );
            text(
                &mut ops,
                &format!("{date}   page {}/{total}   {} SKUs", n + 1, picks.len()),
                15.0,
                272.0,
                9.0,
                false,
            );
            for (x, head) in [
                (15.0, "LOCATION"),
                (50.0, "SKU"),
                (110.0, "QTY"),
                (125.0, "ORDERS"),
            ] {
                text(&mut ops, head, x, 262.0, 9.0, true);
            }
            for (i, p) in rows.iter().enumerate() {
                let y = 255.0 - 6.0 * i as f32;
                text(&mut ops, &p.location, 15.0, y, 10.0, false);
                text(&mut ops, &p.sku, 50.0, y, 10.0, true);
                text(&mut ops, &p.quantity.to_string(), 110.0, y, 10.0, true);
                let mut orders = p.orders.join(", ");
                if orders.len() > 60 {
                    orders = format!(
                        "{}… ({})",
                        orders.chars().take(55).collect::<String>(),
                        p.orders.len()
                    );
                }
                text(&mut ops, &orders, 125.0, y, 8.0, false);
            }
            PdfPage::new(Mm(210.0), Mm(297.0), ops)
        })
        .collect();
    let mut warnings = Vec::new();
    doc.with_pages(pages)
        .save(&PdfSaveOptions::default(), &mut warnings)
}
