//! A field-level validation problem (`consignee.postalCode`), the unit of every domain's
//! validation errors; the HTTP layer lists them under `details`.

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    pub field: String,
    pub error_msg: String,
}

impl FieldError {
    /// Problems as one line: `field: message; field: message`.
    pub fn describe(problems: &[FieldError]) -> String {
        problems
            .iter()
            .map(|f| format!("{}: {}", f.field, f.error_msg))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn new(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            error_msg: msg.into(),
        }
    }
}
