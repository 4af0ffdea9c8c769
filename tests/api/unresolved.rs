//! References stuck in "unknown" (hardening 4): listed, resolved either way through the API,
//! counted for the alert; scopes and tenants hold.

use crate::helpers::{Backend, TestApp, spawn_app};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use shipgate::store::tenants::Mode;

async fn stuck(app: &TestApp, reference: &str) {
    // The sandbox makes the shipment, then answers with a timeout: the ambiguous failure.
    let r = app
        .create(&crate::helpers::waybill_request(reference))
        .await;
    assert_eq!(r.status, 504, "{}", r.body);
}

async fn list(app: &TestApp, key: &str, query: &str) -> crate::helpers::Reply {
    app.call(
        Method::GET,
        &format!("/v1/unknown-attempts{query}"),
        "/v1/unknown-attempts",
        Some(key),
        None,
    )
    .await
}

async fn resolve(app: &TestApp, key: &str, reference: &str, body: &Value) -> crate::helpers::Reply {
    app.call(
        Method::POST,
        &format!("/v1/unknown-attempts/{reference}/resolve"),
        "/v1/unknown-attempts/{reference}/resolve",
        Some(key),
        Some(body),
    )
    .await
}

async fn unresolved_gauge(app: &TestApp) -> String {
    app.run_background().await;
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("shipgate_references_unresolved "))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn stuck_references_are_listed_and_resolved_either_way() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if backend == Backend::Postgres {
            needs!(Postgres);
        }
        let app = spawn_app(backend).await;
        stuck(&app, "PO-SANDBOX_TIMEOUT-OPS1").await;
        stuck(&app, "PO-SANDBOX_TIMEOUT-OPS2").await;

        let listed = list(&app, &app.key, "").await;
        assert_eq!(listed.status, 200, "{}", listed.body);
        let refs: Vec<&str> = listed.body["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["referenceNumber"].as_str().unwrap())
            .collect();
        assert_eq!(refs, ["PO-SANDBOX_TIMEOUT-OPS1", "PO-SANDBOX_TIMEOUT-OPS2"]);
        assert_eq!(listed.body["attempts"][0]["carrier"], "sandbox");
        let old = list(&app, &app.key, "?olderThanSeconds=3600").await;
        assert_eq!(old.body["attempts"], json!([]), "none is an hour old");
        assert_eq!(
            unresolved_gauge(&app).await,
            "shipgate_references_unresolved 2"
        );

        // Others cannot see or settle them: another tenant, a key without the scope.
        let globex = app.new_key("globex").await;
        assert_eq!(list(&app, &globex, "").await.body["attempts"], json!([]));
        let freed = json!({ "outcome": "notCreated" });
        let r = resolve(&app, &globex, "PO-SANDBOX_TIMEOUT-OPS2", &freed).await;
        assert_eq!(r.status, 404, "{}", r.body);
        let station = app.new_key_with("acme", Mode::Test, "labels:read").await;
        let r = resolve(&app, &station, "PO-SANDBOX_TIMEOUT-OPS2", &freed).await;
        assert_eq!(r.error_code(), "INSUFFICIENT_SCOPE");
        let r = resolve(
            &app,
            &app.key,
            "PO-SANDBOX_TIMEOUT-OPS2",
            &json!({"outcome": "maybe"}),
        )
        .await;
        assert_eq!(
            (r.status.as_u16(), r.error_code()),
            (400, "VALIDATION_FAILED")
        );
        let r = resolve(
            &app,
            &app.key,
            "PO-SANDBOX_TIMEOUT-OPS1",
            &json!({"outcome": "created"}),
        )
        .await;
        assert_eq!(r.body["details"][0]["field"], "waybillNumber", "{}", r.body);

        // The operator found the shipment at the carrier: its number, label and charge.
        let pdf = b"%PDF-1.4\n% the carrier's label\n".to_vec();
        let found = json!({
            "outcome": "created",
            "waybillNumber": "SBXOPS0000000001",
            "label": {"format": "pdf", "base64": base64::engine::general_purpose::STANDARD.encode(&pdf)},
            "charge": {"amount": "12.30", "currency": "USD"}
        });
        let r = resolve(&app, &app.key, "PO-SANDBOX_TIMEOUT-OPS1", &found).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["outcome"], "created");
        let w = app.get_waybill(&app.key, "PO-SANDBOX_TIMEOUT-OPS1").await;
        assert_eq!(w.status, 200, "{}", w.body);
        assert_eq!(w.body["waybillNumber"], "SBXOPS0000000001");
        assert_eq!(w.body["charge"]["amount"], "12.30");
        let label = app
            .client
            .get(format!(
                "{}/v1/waybills/SBXOPS0000000001/label",
                app.address
            ))
            .bearer_auth(&app.key)
            .send()
            .await
            .unwrap();
        assert_eq!(label.bytes().await.unwrap().to_vec(), pdf);
        let again = resolve(&app, &app.key, "PO-SANDBOX_TIMEOUT-OPS1", &found).await;
        assert_eq!(
            (again.status.as_u16(), again.error_code()),
            (409, "NOTHING_TO_RESOLVE")
        );

        // The other never reached the carrier: the reference is freed.
        let r = resolve(&app, &app.key, "PO-SANDBOX_TIMEOUT-OPS2", &freed).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(list(&app, &app.key, "").await.body["attempts"], json!([]));
        assert_eq!(
            app.count(
                "SELECT COUNT(*) FROM waybills WHERE reference_number = 'PO-SANDBOX_TIMEOUT-OPS2'"
            )
            .await,
            0
        );
        assert_eq!(
            unresolved_gauge(&app).await,
            "shipgate_references_unresolved 0"
        );
    }
}
