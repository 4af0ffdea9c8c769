//! Batch printing: many label PDFs (ours and carriers') merged into one, pages in order.

use super::LabelError;
use lopdf::{Dictionary, Document, Object, ObjectId};

/// Attributes a page may inherit from its `Pages` ancestors (PDF 32000-1, 7.7.3.4).
const INHERITED: &[&[u8]] = &[b"Resources", b"MediaBox", b"CropBox", b"Rotate"];

pub fn merge(documents: &[Vec<u8>]) -> Result<Vec<u8>, LabelError> {
    let mut out = Document::with_version("1.5");
    let pages_id = out.new_object_id();
    let mut kids = Vec::new();
    for (n, bytes) in documents.iter().enumerate() {
        let mut doc = Document::load_mem(bytes)
            .map_err(|e| LabelError::Merge(format!("label {n} is not a readable PDF: {e}")))?;
        doc.renumber_objects_with(out.max_id + 1);
        out.max_id = doc.max_id;
        let pages: Vec<ObjectId> = doc.get_pages().into_values().collect();
        for &page in &pages {
            let inherited = inherited_attributes(&doc, page);
            if let Some(Object::Dictionary(dict)) = doc.objects.get_mut(&page) {
                for (key, value) in inherited {
                    if !dict.has(&key) {
                        dict.set(key, value);
                    }
                }
                dict.set("Parent", pages_id);
            }
            kids.push(Object::Reference(page));
        }
        for (id, object) in doc.objects {
            let structural = matches!(object.type_name(), Ok(b"Catalog" | b"Pages"));
            if !structural {
                out.objects.insert(id, object);
            }
        }
    }
    if kids.is_empty() {
        return Err(LabelError::Merge("no pages to print".into()));
    }
    let count = kids.len() as i64;
    out.objects.insert(
        pages_id,
        Object::Dictionary(Dictionary::from_iter([
            ("Type", Object::Name(b"Pages".to_vec())),
            ("Kids", Object::Array(kids)),
            ("Count", Object::Integer(count)),
        ])),
    );
    let catalog = out.add_object(Dictionary::from_iter([
        ("Type", Object::Name(b"Catalog".to_vec())),
        ("Pages", Object::Reference(pages_id)),
    ]));
    out.trailer.set("Root", catalog);
    out.compress();
    let mut bytes = Vec::new();
    out.save_to(&mut bytes)
        .map_err(|e| LabelError::Merge(format!("writing the merged PDF: {e}")))?;
    Ok(bytes)
}

/// The inheritable attributes the page does not set itself, from the nearest ancestor.
fn inherited_attributes(doc: &Document, page: ObjectId) -> Vec<(Vec<u8>, Object)> {
    let mut found: Vec<(Vec<u8>, Object)> = Vec::new();
    let mut current = doc.get_dictionary(page).ok();
    let mut depth = 0;
    while let Some(dict) = current {
        for key in INHERITED {
            if let Ok(value) = dict.get(key)
                && !found.iter().any(|(k, _)| k.as_slice() == *key)
            {
                found.push((key.to_vec(), value.clone()));
            }
        }
        depth += 1;
        current = match dict.get(b"Parent") {
            Ok(Object::Reference(parent)) if depth < 32 => doc.get_dictionary(*parent).ok(),
            _ => None,
        };
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_keep_their_order_and_count() {
        let fedex =
            include_str!("../../carriers/tests/fixtures/fedex/create_shipment_response.json");
        let v: serde_json::Value = serde_json::from_str(fedex).unwrap();
        use base64::Engine;
        let carrier_pdf = base64::engine::general_purpose::STANDARD
            .decode(
                v["output"]["transactionShipments"][0]["pieceResponses"][0]["packageDocuments"][0]
                    ["encodedLabel"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let ours = crate::labels::render::render(
            &crate::labels::layout::load(None).unwrap()["4x6"],
            &crate::labels::render::LabelData {
                waybill_number: "SBX1".into(),
                pieces: vec!["1/2".into(), "2/2".into()],
                ..Default::default()
            },
            None,
        )
        .unwrap();
        let merged = merge(&[ours.clone(), carrier_pdf.clone(), ours]).unwrap();
        let doc = Document::load_mem(&merged).unwrap();
        let expected = 2 + Document::load_mem(&carrier_pdf).unwrap().get_pages().len() + 2;
        assert_eq!(doc.get_pages().len(), expected);
        assert!(merge(&[b"not a pdf".to_vec()]).is_err());
    }
}
