//! Drawing a label: text in the PDF base fonts (WinAnsi: Latin with accents), the waybill number
//! as Code128 vector bars sized in whole printer dots, rules, and an optional QR code.

pub use super::font::UnicodeFont;
use super::layout::{Block, Field, Layout};
use super::{LabelError, fit};
use printpdf::{
    BuiltinFont, Color, FontId, Line, LinePoint, Mm, Op, PaintMode, PdfDocument, PdfFontHandle,
    PdfPage, PdfSaveOptions, Point, Pt, Rect, Rgb, TextItem, WindingOrder,
};

/// Bars are whole dots of a 203 dpi thermal printer, so scanners see clean edges.
const DOT_PT: f32 = 72.0 / 203.0;
const MM_PT: f32 = 72.0 / 25.4;

/// Everything a label shows, already formatted.
#[derive(Debug, Clone, Default)]
pub struct LabelData {
    pub waybill_number: String,
    pub reference: String,
    pub service: String,
    pub date: String,
    pub sender: Vec<String>,
    pub consignee: Vec<String>,
    /// One entry a parcel: each parcel gets its own page (`1.20 KG  1/2`).
    pub pieces: Vec<String>,
    pub customs: Vec<String>,
    pub route_code: Option<String>,
    pub product: Option<String>,
    pub qr: Option<String>,
}

impl LabelData {
    fn field(&self, f: Field, page: usize) -> Vec<String> {
        let one = |s: &str| {
            if s.is_empty() {
                vec![]
            } else {
                vec![s.to_owned()]
            }
        };
        match f {
            Field::Sender => self.sender.clone(),
            Field::Consignee => self.consignee.clone(),
            Field::Service => one(&self.service),
            Field::Date => one(&self.date),
            Field::Reference => one(&format!("REF {}", self.reference)),
            Field::WeightPieces => self.pieces.get(page).cloned().into_iter().collect(),
            Field::Customs => self.customs.clone(),
            Field::RouteCode => self.route_code.iter().cloned().collect(),
            Field::Product => self.product.iter().cloned().collect(),
            Field::WaybillNumber => one(&self.waybill_number),
        }
    }
}

fn black() -> Color {
    Color::Rgb(Rgb {
        r: 0.0,
        g: 0.0,
        b: 0.0,
        icc_profile: None,
    })
}

/// True when the PDF base fonts (WinAnsi encoding) can show every character.
pub fn win_ansi(s: &str) -> bool {
    s.chars().all(|c| {
        matches!(c, ' '..='~' | '\u{a0}'..='\u{ff}') || "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ".contains(c)
    })
}

/// The font of a line: the base font when it can show it, else the embedded Unicode font.
fn font(s: &str, bold: bool, unicode: Option<&FontId>) -> PdfFontHandle {
    match unicode {
        Some(id) if !win_ansi(s) => PdfFontHandle::External(id.clone()),
        _ => PdfFontHandle::Builtin(if bold {
            BuiltinFont::HelveticaBold
        } else {
            BuiltinFont::Helvetica
        }),
    }
}

fn text(ops: &mut Vec<Op>, s: &str, x_pt: f32, y_pt: f32, size: f32, bold: bool) {
    text_in(
        ops,
        s,
        Point {
            x: Pt(x_pt),
            y: Pt(y_pt),
        },
        size,
        bold,
        None,
    );
}

fn text_in(
    ops: &mut Vec<Op>,
    s: &str,
    pos: Point,
    size: f32,
    bold: bool,
    unicode: Option<&FontId>,
) {
    ops.extend([
        Op::StartTextSection,
        Op::SetFont {
            font: font(s, bold, unicode),
            size: Pt(size),
        },
        Op::SetTextCursor { pos },
        Op::ShowText {
            items: vec![TextItem::Text(s.to_owned())],
        },
        Op::EndTextSection,
    ]);
}

fn filled(x: f32, y: f32, w: f32, h: f32) -> Op {
    Op::DrawRectangle {
        rectangle: Rect {
            x: Pt(x),
            y: Pt(y),
            width: Pt(w),
            height: Pt(h),
            mode: Some(PaintMode::Fill),
            winding_order: Some(WindingOrder::NonZero),
        },
    }
}

/// Helvetica's average advance is about half the size: enough to centre a number.
fn approx_width(s: &str, size: f32) -> f32 {
    s.chars().count() as f32 * size * 0.55
}

fn barcode(
    ops: &mut Vec<Op>,
    number: &str,
    x: f32,
    top: f32,
    height: f32,
    max_width: f32,
    text_size: f32,
) -> Result<(), LabelError> {
    // Code Set B covers letters and digits; `Ɓ` selects it.
    let modules = barcoders::sym::code128::Code128::new(format!("Ɓ{number}"))
        .map_err(|e| LabelError::Render(format!("barcode for {number}: {e}")))?
        .encode();
    let dots = ((max_width / DOT_PT) / modules.len() as f32)
        .floor()
        .clamp(1.0, 4.0);
    let module = dots * DOT_PT;
    let width = module * modules.len() as f32;
    let left = x + (max_width - width).max(0.0) / 2.0;
    let bottom = top - height;
    // Runs of dark modules become one bar each.
    let mut i = 0;
    while i < modules.len() {
        if modules[i] == 1 {
            let start = i;
            while i < modules.len() && modules[i] == 1 {
                i += 1;
            }
            ops.push(filled(
                left + start as f32 * module,
                bottom,
                (i - start) as f32 * module,
                height,
            ));
        } else {
            i += 1;
        }
    }
    let text_x = x + (max_width - approx_width(number, text_size)).max(0.0) / 2.0;
    text(
        ops,
        number,
        text_x,
        bottom - text_size - 1.0,
        text_size,
        true,
    );
    Ok(())
}

fn qr(ops: &mut Vec<Op>, data: &str, x: f32, top: f32, size: f32) -> Result<(), LabelError> {
    let code = qrcode::QrCode::new(data.as_bytes())
        .map_err(|e| LabelError::Render(format!("QR code: {e}")))?;
    let n = code.width();
    let cell = size / n as f32;
    for (i, color) in code.to_colors().into_iter().enumerate() {
        if color == qrcode::Color::Dark {
            let (col, row) = (i % n, i / n);
            ops.push(filled(
                x + col as f32 * cell,
                top - (row + 1) as f32 * cell,
                cell,
                cell,
            ));
        }
    }
    Ok(())
}

/// Points of room to the right of `x_mm`: the block's own width, else to 3 mm from the edge.
fn room_pt(page_w_pt: f32, x_mm: f32, max_width_mm: Option<f32>) -> f32 {
    let to_edge = page_w_pt - (x_mm + 3.0) * MM_PT;
    max_width_mm.map_or(to_edge, |m| (m * MM_PT).min(to_edge))
}

/// The label as a PDF: one page a parcel. The Unicode font is embedded (as a subset of the
/// characters that need it) only when some text does.
pub fn render(
    layout: &Layout,
    data: &LabelData,
    unicode: Option<&UnicodeFont>,
) -> Result<Vec<u8>, LabelError> {
    let mut doc = PdfDocument::new(&format!("Label {}", data.waybill_number));
    let unicode_lines: Vec<String> = (0..data.pieces.len().max(1))
        .flat_map(|page| all_fields().map(move |f| data.field(f, page)))
        .flatten()
        .filter(|line| !win_ansi(line))
        .collect();
    let font_id = match unicode {
        Some(font) if !unicode_lines.is_empty() => {
            let subset = font.subset(unicode_lines.iter().flat_map(|l| l.chars()))?;
            let id = doc.add_font(&subset);
            if let Some(f) = doc.resources.fonts.map.get_mut(&id) {
                // Already a subset: embedded as it is, not subset again.
                f.meta.embedding_mode = printpdf::FontEmbeddingMode::Full;
                f.meta.requires_subsetting = false;
            }
            Some(id)
        }
        _ => None,
    };
    let pages = (0..data.pieces.len().max(1))
        .map(|page| {
            let ops = page_ops(layout, data, page, font_id.as_ref())?;
            Ok(PdfPage::new(Mm(layout.width_mm), Mm(layout.height_mm), ops))
        })
        .collect::<Result<Vec<_>, LabelError>>()?;
    let mut warnings = Vec::new();
    Ok(doc.with_pages(pages).save(
        &PdfSaveOptions {
            // A label is a few kilobytes of drawing operators and a font subset of a few dozen
            // glyphs: compressing them costs more time than the bytes it saves are worth.
            optimize: false,
            ..PdfSaveOptions::default()
        },
        &mut warnings,
    ))
}

fn all_fields() -> impl Iterator<Item = Field> + Clone {
    [
        Field::Sender,
        Field::Consignee,
        Field::Service,
        Field::Date,
        Field::Reference,
        Field::WeightPieces,
        Field::Customs,
        Field::RouteCode,
        Field::Product,
        Field::WaybillNumber,
    ]
    .into_iter()
}

fn page_ops(
    layout: &Layout,
    data: &LabelData,
    page: usize,
    unicode: Option<&FontId>,
) -> Result<Vec<Op>, LabelError> {
    let (w, h) = (layout.width_mm * MM_PT, layout.height_mm * MM_PT);
    let mut ops = vec![
        Op::SetFillColor { col: black() },
        Op::SetOutlineColor { col: black() },
    ];
    for block in &layout.blocks {
        match block {
            Block::Text {
                text: t,
                x_mm,
                y_mm,
                size_pt,
                bold,
                max_width_mm,
            } => {
                let room = room_pt(w, *x_mm, *max_width_mm);
                let (line, size) = fit::fit(t, *size_pt, room, *bold)
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                text(&mut ops, &line, x_mm * MM_PT, h - y_mm * MM_PT, size, *bold);
            }
            Block::Field {
                field,
                x_mm,
                y_mm,
                size_pt,
                bold,
                max_lines,
                max_width_mm,
            } => {
                let room = room_pt(w, *x_mm, *max_width_mm);
                // Each value line fits its room; a wrapped value takes the next line slots.
                let mut y = h - y_mm * MM_PT;
                let fitted = data
                    .field(*field, page)
                    .iter()
                    .flat_map(|line| fit::fit(line, *size_pt, room, *bold))
                    .take(*max_lines)
                    .collect::<Vec<_>>();
                for (n, (line, size)) in fitted.iter().enumerate() {
                    if n > 0 {
                        y -= size * 1.2;
                    }
                    let pos = Point {
                        x: Pt(x_mm * MM_PT),
                        y: Pt(y),
                    };
                    text_in(&mut ops, line, pos, *size, *bold, unicode);
                }
            }
            Block::Rule { y_mm } => {
                let y = h - y_mm * MM_PT;
                let point = |x: f32| LinePoint {
                    p: Point { x: Pt(x), y: Pt(y) },
                    bezier: false,
                };
                ops.push(Op::SetOutlineThickness { pt: Pt(1.0) });
                ops.push(Op::DrawLine {
                    line: Line {
                        points: vec![point(3.0 * MM_PT), point(w - 3.0 * MM_PT)],
                        is_closed: false,
                    },
                });
            }
            Block::Barcode {
                x_mm,
                y_mm,
                height_mm,
                max_width_mm,
                text_size_pt,
            } => barcode(
                &mut ops,
                &data.waybill_number,
                x_mm * MM_PT,
                h - y_mm * MM_PT,
                height_mm * MM_PT,
                max_width_mm * MM_PT,
                *text_size_pt,
            )?,
            Block::Qr {
                x_mm,
                y_mm,
                size_mm,
            } => {
                if let Some(q) = &data.qr {
                    qr(&mut ops, q, x_mm * MM_PT, h - y_mm * MM_PT, size_mm * MM_PT)?;
                }
            }
        }
    }
    Ok(ops)
}
