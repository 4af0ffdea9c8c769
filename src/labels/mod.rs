//! Label documents: shipgate always serves labels as PDF. Carriers' PDFs are kept, their images
//! are placed on a page, and where a carrier prints nothing (the sandbox, SF Express routing
//! data) shipgate renders its own label from a layout in `label_templates/`.

mod drawing;
mod error;
pub mod fit;
mod font;
pub mod layout;
pub mod merge;
pub mod render;
pub mod returns;

pub use drawing::Drawing;
pub use error::LabelError;

use carriers::{Created, Label, LabelFormat, Shipment};
use layout::Layout;
use printpdf::{
    Mm, Op, PdfDocument, PdfPage, PdfSaveOptions, Pt, Px, RawImage, XObjectRotation,
    XObjectTransform,
};
use render::LabelData;
use returns::Warehouse;
use std::sync::Arc;

/// Renders shipgate's own labels: one layout, compiled at start, and the return warehouses.
#[derive(Clone)]
pub struct Labeler {
    layout: Arc<Layout>,
    warehouses: Arc<Vec<Warehouse>>,
    unicode: Arc<render::UnicodeFont>,
}

impl Labeler {
    pub fn new(layout: Layout, warehouses: Vec<Warehouse>) -> Result<Self, LabelError> {
        Ok(Self {
            layout: Arc::new(layout),
            warehouses: Arc::new(warehouses),
            unicode: Arc::new(render::UnicodeFont::load()?),
        })
    }

    /// The sender / return block: the nearest return warehouse for the destination, or the
    /// shipper where the platform has none in that country.
    pub fn sender(&self, s: &Shipment) -> Vec<String> {
        let c = &s.consignee;
        let serving = returns::choose(
            &self.warehouses,
            &c.country,
            c.state.as_deref(),
            c.postal_code.as_deref(),
        )
        .filter(|w| w.country == c.country);
        match serving {
            Some(w) => w.lines(),
            None => address_lines(&s.shipper),
        }
    }

    pub fn data(&self, s: &Shipment, created: &Created, channel: &str, date: &str) -> LabelData {
        let n = s.parcels.len();
        let routing = |key: &str| {
            created
                .routing
                .as_ref()
                .and_then(|r| r.get(key))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let customs = s
            .customs
            .as_ref()
            .map(|c| {
                let total: f64 = c
                    .items
                    .iter()
                    .map(|i| i.unit_value.parse::<f64>().unwrap_or(0.0) * f64::from(i.quantity))
                    .sum();
                let contents: Vec<String> = c
                    .items
                    .iter()
                    .map(|i| match &i.hs_code {
                        Some(hs) => format!("{} x{} HS {hs}", i.description, i.quantity),
                        None => format!("{} x{}", i.description, i.quantity),
                    })
                    .collect();
                vec![
                    format!(
                        "CUSTOMS  VALUE {total:.2} {}  {}",
                        c.currency,
                        c.incoterm.as_deref().unwrap_or("")
                    ),
                    format!("CONTENTS {}", contents.join("; ")),
                ]
            })
            .unwrap_or_default();
        LabelData {
            waybill_number: created.waybill_number.clone(),
            reference: s.reference_number.clone(),
            service: channel.to_owned(),
            date: date.to_owned(),
            sender: self.sender(s),
            consignee: address_lines(&s.consignee),
            pieces: s
                .parcels
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    format!(
                        "{:.2} KG   {}/{n}",
                        f64::from(p.weight_grams) / 1000.0,
                        i + 1
                    )
                })
                .collect(),
            customs,
            route_code: routing("destRouteLabel"),
            product: routing("proName"),
            qr: routing("twoDimensionCode"),
        }
    }

    pub fn render(&self, data: &LabelData) -> Result<Label, LabelError> {
        Ok(Label {
            format: LabelFormat::Pdf,
            content: render::render(&self.layout, data, Some(&self.unicode))?,
        })
    }
}

fn address_lines(a: &carriers::Address) -> Vec<String> {
    let mut lines = vec![a.name.clone()];
    lines.extend(a.company.clone());
    lines.push(a.street1.clone());
    lines.extend(a.street2.clone());
    lines.push(
        [
            Some(a.city.as_str()),
            a.state.as_deref(),
            a.postal_code.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" "),
    );
    lines.push(a.country.clone());
    lines
}

/// A 4x6 in label page, in points.
const PAGE_W: f32 = 288.0;
const PAGE_H: f32 = 432.0;

/// Carrier labels that come as images (UPS GIF/PNG) are placed on a 4x6 in PDF page; PDFs are
/// kept as the carrier made them.
/// A label that cannot be converted comes back unchanged with the reason.
pub fn as_pdf(label: Label) -> Result<Label, (Label, LabelError)> {
    match label.format {
        LabelFormat::Gif | LabelFormat::Png => match image_on_4x6(&label.content) {
            Ok(content) => Ok(Label {
                format: LabelFormat::Pdf,
                content,
            }),
            Err(e) => Err((label, e)),
        },
        LabelFormat::Pdf | LabelFormat::Zpl => Ok(label),
    }
}

/// The image scaled to fit a 4x6 in portrait page, centred; landscape images (UPS prints its
/// label sideways) are turned a quarter so they fill the page.
pub fn image_on_4x6(bytes: &[u8]) -> Result<Vec<u8>, LabelError> {
    let mut warnings = Vec::new();
    let image = RawImage::decode_from_bytes(bytes, &mut warnings).map_err(LabelError::Image)?;
    let (w, h) = (image.width as f32, image.height as f32);
    let landscape = w > h;
    // Resolution at which the image fits the page; points = pixels / dpi * 72.
    let dpi = if landscape {
        (h * 72.0 / PAGE_W).max(w * 72.0 / PAGE_H)
    } else {
        (w * 72.0 / PAGE_W).max(h * 72.0 / PAGE_H)
    };
    let (w_pt, h_pt) = (w / dpi * 72.0, h / dpi * 72.0);
    let mut doc = PdfDocument::new("shipgate label");
    let id = doc.add_image(&image);
    let transform = if landscape {
        XObjectTransform {
            rotate: Some(XObjectRotation {
                angle_ccw_degrees: -90.0,
                rotation_center_x: Px((w / 2.0) as usize),
                rotation_center_y: Px((h / 2.0) as usize),
            }),
            translate_x: Some(Pt(PAGE_W / 2.0 - w_pt / 2.0)),
            translate_y: Some(Pt(PAGE_H / 2.0 - h_pt / 2.0)),
            dpi: Some(dpi),
            ..Default::default()
        }
    } else {
        XObjectTransform {
            translate_x: Some(Pt((PAGE_W - w_pt) / 2.0)),
            translate_y: Some(Pt((PAGE_H - h_pt) / 2.0)),
            dpi: Some(dpi),
            ..Default::default()
        }
    };
    let page = PdfPage::new(
        Mm::from(Pt(PAGE_W)),
        Mm::from(Pt(PAGE_H)),
        vec![Op::UseXobject { id, transform }],
    );
    Ok(doc
        .with_pages(vec![page])
        .save(&PdfSaveOptions::default(), &mut warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn a_ups_gif_label_becomes_a_4x6_pdf() {
        let sample =
            include_str!("../../carriers/tests/fixtures/ups/create_shipment_response.json");
        let body: serde_json::Value = serde_json::from_str(sample).unwrap();
        let gif =
            base64::engine::general_purpose::STANDARD
                .decode(
                    body["ShipmentResponse"]["ShipmentResults"]["PackageResults"]["ShippingLabel"]
                        ["GraphicImage"]
                        .as_str()
                        .unwrap(),
                )
                .unwrap();
        let label = as_pdf(Label {
            format: LabelFormat::Gif,
            content: gif,
        })
        .unwrap();
        assert_eq!(label.format, LabelFormat::Pdf);
        assert!(label.content.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&label.content);
        std::fs::write(std::env::temp_dir().join("ups-label.pdf"), &label.content).unwrap();
        let media_box = text
            .split("MediaBox[")
            .nth(1)
            .and_then(|r| r.split(']').next())
            .unwrap();
        let dims: Vec<f32> = media_box
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(
            dims.iter().map(|d| d.round() as i32).collect::<Vec<_>>(),
            [0, 0, 288, 432]
        );
        assert!(text.contains("/Subtype/Image"), "no image in the page");
    }

    #[test]
    fn pdfs_are_kept_and_garbage_is_refused() {
        let pdf = Label {
            format: LabelFormat::Pdf,
            content: b"%PDF-1.4 x".to_vec(),
        };
        assert_eq!(as_pdf(pdf.clone()).unwrap(), pdf);
        assert!(
            as_pdf(Label {
                format: LabelFormat::Gif,
                content: b"nope".to_vec()
            })
            .is_err()
        );
    }
}
