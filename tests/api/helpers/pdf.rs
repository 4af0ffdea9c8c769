//! Reading labels back as a person's tools would: the text (pdftotext) and the barcodes
//! (pdftoppm, then zbarimg). scripts/test.sh installs poppler-utils and zbar-tools.

use std::process::Command;

fn saved(pdf: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("label.pdf");
    std::fs::write(&file, pdf).unwrap();
    (dir, file)
}

pub fn text(pdf: &[u8]) -> String {
    let (_dir, file) = saved(pdf);
    let out = Command::new("pdftotext")
        .arg("-layout")
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed by scripts/test.sh");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every barcode, page by page, read from images at `dpi`; `only` limits zbarimg to one
/// symbology (`code128`).
pub fn barcodes(pdf: &[u8], dpi: u32, only: Option<&str>) -> Vec<String> {
    let (dir, file) = saved(pdf);
    let rendered = Command::new("pdftoppm")
        .args(["-r", &dpi.to_string(), "-png"])
        .arg(&file)
        .arg(dir.path().join("page"))
        .status()
        .unwrap();
    assert!(rendered.success());
    let mut pages: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    pages.sort();
    let mut args = vec!["--quiet".to_owned(), "--raw".to_owned()];
    if let Some(symbology) = only {
        args.extend(["-Sdisable".to_owned(), format!("-S{symbology}.enable")]);
    }
    let mut codes = Vec::new();
    for page in pages {
        let out = Command::new("zbarimg")
            .args(&args)
            .arg(&page)
            .output()
            .expect("zbarimg (zbar-tools) is installed by scripts/test.sh");
        codes.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_owned),
        );
    }
    codes
}
