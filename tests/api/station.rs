//! The label station page in a real browser (Debian's Chromium, driven by playwright-core from
//! tests/e2e/station.mjs): scan, show, print, an unknown number's error, batch printing; and the
//! API reference page (tests/e2e/docs.mjs).

use crate::helpers::{Backend, spawn_app, waybill_request};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_scan_print_and_batch_at_the_station() {
    let app = spawn_app(Backend::Sqlite).await;
    let first = app
        .create(&waybill_request("PO-STATION-1"))
        .await
        .waybill_number()
        .to_owned();
    let second = app
        .create(&waybill_request("PO-STATION-2"))
        .await
        .waybill_number()
        .to_owned();
    let page = reqwest::get(format!("{}/station", app.address))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);

    let dir = format!("{}/tests/e2e", env!("CARGO_MANIFEST_DIR"));
    let (address, key) = (app.address.clone(), app.key.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(&dir)
            .args(["station.mjs", &address, &key, &first, &second])
            .output()
            .expect("node is needed; scripts/test.sh installs chromium and playwright-core")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "station e2e failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("station: ok"));
}

/// The API reference at `/docs`, rendered in Chromium from `/openapi.json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reference_renders_every_operation() {
    let app = spawn_app(Backend::Sqlite).await;
    let page = reqwest::get(format!("{}/docs", app.address)).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'self'")
    );
    let dir = format!("{}/tests/e2e", env!("CARGO_MANIFEST_DIR"));
    let address = app.address.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(&dir)
            .args(["docs.mjs", &address])
            .output()
            .expect("node is needed; scripts/test.sh installs chromium and playwright-core")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "docs e2e failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("docs: ok"), "{stdout}");
}
