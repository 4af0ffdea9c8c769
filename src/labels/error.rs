//! What can go wrong with label documents, by stage.

#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// A layout file that cannot be read or does not describe a label.
    #[error("layout: {0}")]
    Layout(String),
    /// Drawing a label: font, barcode, QR code, PDF.
    #[error("rendering: {0}")]
    Render(String),
    /// A carrier's image label that cannot be placed on a page.
    #[error("image label: {0}")]
    Image(String),
    /// Joining labels into one document.
    #[error("merging: {0}")]
    Merge(String),
    /// The configured return warehouses.
    #[error("{0}")]
    Warehouses(String),
}
