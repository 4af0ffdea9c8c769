//! `shipgate unknown`: an operator lists references stuck in "unknown" and records the
//! shipment found at the carrier; the server then answers with it.

use super::{Server, shipgate};
use crate::helpers::waybill_request;

#[tokio::test]
async fn operators_list_and_resolve_stuck_references_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let key = super::create_key(&url, dir.path(), "acme");
    let server = Server::start(&url, dir.path(), "unknown.log", &[]);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/v1/waybills", server.address))
        .bearer_auth(&key)
        .json(&waybill_request("PO-SANDBOX_TIMEOUT-CLI"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);

    let out = shipgate(&url, dir.path())
        .args(["unknown", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("acme  PO-SANDBOX_TIMEOUT-CLI  sandbox"),
        "{listed}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let label = dir.path().join("label.pdf");
    std::fs::write(&label, b"%PDF-1.4\n% found at the carrier\n").unwrap();
    let out = shipgate(&url, dir.path())
        .args(["unknown", "resolve", "--tenant", "acme", "--mode", "test"])
        .args([
            "--reference",
            "PO-SANDBOX_TIMEOUT-CLI",
            "--waybill-number",
            "SBXCLI0000000001",
        ])
        .arg("--label-file")
        .arg(&label)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let w: serde_json::Value = client
        .get(format!(
            "{}/v1/waybills/PO-SANDBOX_TIMEOUT-CLI",
            server.address
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(w["waybillNumber"], "SBXCLI0000000001", "{w}");
    let out = shipgate(&url, dir.path())
        .args(["unknown", "list"])
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
