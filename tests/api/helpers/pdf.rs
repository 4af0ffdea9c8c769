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

/// Every word of the document with the right edge of its box, in points (pdftotext -bbox).
pub fn words(pdf: &[u8]) -> Vec<(String, f32)> {
    let (_dir, file) = saved(pdf);
    let out = Command::new("pdftotext")
        .arg("-bbox")
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed by scripts/test.sh");
    let html = String::from_utf8_lossy(&out.stdout);
    html.lines()
        .filter_map(|l| {
            let l = l.trim();
            let x_max = l.split("xMax=\"").nth(1)?.split('"').next()?.parse().ok()?;
            let word = l.split('>').nth(1)?.split('<').next()?.to_owned();
            Some((word, x_max))
        })
        .collect()
}

/// Width and height of the first page, in points.
pub fn page_size(pdf: &[u8]) -> (f32, f32) {
    let (_dir, file) = saved(pdf);
    let out = Command::new("pdfinfo")
        .arg(&file)
        .output()
        .expect("pdfinfo");
    let info = String::from_utf8_lossy(&out.stdout);
    let line = info
        .lines()
        .find(|l| l.starts_with("Page size:"))
        .expect("a page size");
    let nums: Vec<f32> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}
