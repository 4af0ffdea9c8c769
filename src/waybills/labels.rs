//! Labels of created waybills: one stored document, or many merged into one PDF for printing.

use super::{WaybillError, WaybillService};
use crate::fields::FieldError;
use crate::labels::LabelError;

/// Most labels in one batch.
pub const MAX_BATCH: usize = 200;

impl WaybillService {
    /// The labels of `numbers` (waybill or reference numbers) as one PDF, in the order given.
    /// Every number that has no PDF label is named in the error.
    pub async fn label_batch(
        &self,
        tenant_id: &str,
        numbers: &[String],
    ) -> Result<Vec<u8>, WaybillError> {
        if numbers.is_empty() || numbers.len() > MAX_BATCH {
            return Err(WaybillError::Validation(vec![FieldError::new(
                "numbers",
                format!("must hold 1 to {MAX_BATCH} waybill or reference numbers"),
            )]));
        }
        let mut documents = Vec::with_capacity(numbers.len());
        let mut missing = Vec::new();
        for (i, number) in numbers.iter().enumerate() {
            let field = format!("numbers[{i}]");
            match self.label(tenant_id, number).await {
                Ok((format, content)) if format == "pdf" => documents.push(content),
                Ok((format, _)) => missing.push(FieldError::new(
                    field,
                    format!("`{number}` has a {format} label, not a PDF"),
                )),
                Err(WaybillError::NotFound(_)) => {
                    missing.push(FieldError::new(field, format!("no waybill `{number}`")));
                }
                Err(WaybillError::LabelNotAvailable(_)) => missing.push(FieldError::new(
                    field,
                    format!("waybill `{number}` has no stored label"),
                )),
                Err(e) => return Err(e),
            }
        }
        if !missing.is_empty() {
            return Err(WaybillError::NotFoundItems(missing));
        }
        let merged = self
            .drawing
            .run(move || crate::labels::merge::merge(&documents))
            .await
            .ok_or_else(|| LabelError::Merge("the merging task failed".into()))??;
        Ok(merged)
    }
}
