//! Label layouts: data files in `label_templates/`, read and checked once at start.

use super::LabelError;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The layouts that ship with shipgate (so a bare `cargo run` needs no files on disk).
const BUILT_IN: &[(&str, &str)] = &[
    ("4x6", include_str!("../../label_templates/4x6.toml")),
    (
        "100x150",
        include_str!("../../label_templates/100x150.toml"),
    ),
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub name: String,
    pub width_mm: f32,
    pub height_mm: f32,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Block {
    /// A fixed caption.
    Text {
        text: String,
        x_mm: f32,
        y_mm: f32,
        size_pt: f32,
        #[serde(default)]
        bold: bool,
        /// Room to the right of `x_mm`; to 3 mm from the label's edge when absent.
        max_width_mm: Option<f32>,
    },
    /// A value of the waybill, one or more lines.
    Field {
        field: Field,
        x_mm: f32,
        y_mm: f32,
        size_pt: f32,
        #[serde(default)]
        bold: bool,
        #[serde(default = "one")]
        max_lines: usize,
        /// Room to the right of `x_mm`; to 3 mm from the label's edge when absent.
        max_width_mm: Option<f32>,
    },
    /// A horizontal line across the label.
    Rule { y_mm: f32 },
    /// The waybill number as Code128, with the number printed under it.
    Barcode {
        x_mm: f32,
        y_mm: f32,
        height_mm: f32,
        max_width_mm: f32,
        text_size_pt: f32,
    },
    /// The carrier's two-dimension code (SF Express), when it gives one.
    Qr { x_mm: f32, y_mm: f32, size_mm: f32 },
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Sender,
    Consignee,
    Service,
    Date,
    Reference,
    WeightPieces,
    Customs,
    RouteCode,
    Product,
    WaybillNumber,
}

/// Every layout by name: the built-in ones, then `*.toml` files of `dir` (which may replace them).
pub fn load(dir: Option<&std::path::Path>) -> Result<BTreeMap<String, Layout>, LabelError> {
    let mut layouts = BTreeMap::new();
    for (file, text) in BUILT_IN {
        let layout =
            parse(text).map_err(|e| LabelError::Layout(format!("built-in layout {file}: {e}")))?;
        layouts.insert(layout.name.clone(), layout);
    }
    if let Some(dir) = dir.filter(|d| d.is_dir()) {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| LabelError::Layout(format!("{}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| LabelError::Layout(format!("{}: {e}", path.display())))?;
                let layout = parse(&text)
                    .map_err(|e| LabelError::Layout(format!("{}: {e}", path.display())))?;
                layouts.insert(layout.name.clone(), layout);
            }
        }
    }
    Ok(layouts)
}

pub fn parse(text: &str) -> Result<Layout, LabelError> {
    let layout: Layout = toml::from_str(text).map_err(|e| LabelError::Layout(e.to_string()))?;
    if !(50.0..=300.0).contains(&layout.width_mm) || !(50.0..=300.0).contains(&layout.height_mm) {
        return Err(LabelError::Layout(
            "width_mm and height_mm must be between 50 and 300".into(),
        ));
    }
    let inside =
        |x: f32, y: f32| x >= 0.0 && y >= 0.0 && x <= layout.width_mm && y <= layout.height_mm;
    for (i, block) in layout.blocks.iter().enumerate() {
        let ok = match block {
            Block::Text {
                x_mm,
                y_mm,
                size_pt,
                ..
            }
            | Block::Field {
                x_mm,
                y_mm,
                size_pt,
                ..
            } => inside(*x_mm, *y_mm) && *size_pt > 0.0,
            Block::Rule { y_mm } => inside(0.0, *y_mm),
            Block::Barcode {
                x_mm,
                y_mm,
                height_mm,
                max_width_mm,
                ..
            } => inside(x_mm + max_width_mm, y_mm + height_mm) && *height_mm > 0.0,
            Block::Qr {
                x_mm,
                y_mm,
                size_mm,
            } => inside(x_mm + size_mm, y_mm + size_mm),
        };
        if !ok {
            return Err(LabelError::Layout(format!(
                "blocks[{i}] lies outside the label or has no size"
            )));
        }
    }
    if !layout
        .blocks
        .iter()
        .any(|b| matches!(b, Block::Barcode { .. }))
    {
        return Err(LabelError::Layout("a layout needs a barcode block".into()));
    }
    Ok(layout)
}
