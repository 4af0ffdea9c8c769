//! Keys through the API: test keys reach only the sandbox and test data, live keys never the
//! sandbox; scopes narrow a key (a label-station key only prints); keys are rotated and revoked
//! with `/v1/keys` and stop working at once on the instance that did it.

use crate::helpers::{Backend, TestApp, spawn_app, waybill_request};
use reqwest::Method;
use serde_json::{Value, json};
use shipgate::store::tenants::Mode;

async fn keys_call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> crate::helpers::Reply {
    let template = match path {
        p if p.ends_with("/rotate") => "/v1/keys/{id}/rotate",
        p if p.ends_with("/revoke") => "/v1/keys/{id}/revoke",
        _ => "/v1/keys",
    };
    app.call(method, path, template, Some(key), body).await
}

#[tokio::test]
async fn test_keys_reach_only_the_sandbox_and_live_keys_never_do() {
    let app = spawn_app(Backend::Sqlite).await;
    // The app's key is a test key: a real carrier's channel is refused before any carrier work.
    let mut fedex = waybill_request("PO-MODE-1");
    fedex["channel"] = json!("FEDEX_INTERNATIONAL_PRIORITY");
    let r = app.create(&fedex).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.error_code(), "KEY_MODE_MISMATCH");
    // Nothing was claimed: the reference is free for a live key.
    assert_eq!(app.count("SELECT COUNT(*) FROM waybills").await, 0);

    let live = app.new_key_with("acme", Mode::Live, "*").await;
    let r = app.create_as(&live, &waybill_request("PO-MODE-2")).await;
    assert_eq!(
        r.status, 403,
        "a live key never makes sandbox parcels: {}",
        r.body
    );
    assert_eq!(r.error_code(), "KEY_MODE_MISMATCH");

    // Test data is invisible to the same tenant's live keys, and the other way round.
    let created = app.create(&waybill_request("PO-MODE-3")).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let number = created.waybill_number().to_owned();
    assert_eq!(app.get_waybill(&app.key, &number).await.status, 200);
    assert_eq!(app.get_waybill(&live, &number).await.status, 404);
    assert_eq!(app.get_waybill(&live, "PO-MODE-3").await.status, 404);
    let tracking = app
        .call(
            Method::GET,
            &format!("/v1/tracking/{number}"),
            "/v1/tracking/{number}",
            Some(&live),
            None,
        )
        .await;
    assert_eq!(tracking.status, 404);
    let hook = json!({ "url": "https://hooks.example.com/shipgate" });
    let r = app
        .call(
            Method::POST,
            "/v1/webhook-endpoints",
            "/v1/webhook-endpoints",
            Some(&app.key),
            Some(&hook),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let listed = app
        .call(
            Method::GET,
            "/v1/webhook-endpoints",
            "/v1/webhook-endpoints",
            Some(&live),
            None,
        )
        .await;
    assert_eq!(
        listed.body["endpoints"].as_array().map(Vec::len),
        Some(0),
        "{}",
        listed.body
    );
}

#[tokio::test]
async fn a_label_station_key_prints_labels_and_does_nothing_else() {
    let app = spawn_app(Backend::Sqlite).await;
    let created = app.create(&waybill_request("PO-SCOPE-1")).await;
    let number = created.waybill_number().to_owned();
    let station = app.new_key_with("acme", Mode::Test, "labels:read").await;

    let label = app
        .client
        .get(format!("{}/v1/waybills/{number}/label", app.address))
        .bearer_auth(&station)
        .send()
        .await
        .unwrap();
    assert_eq!(label.status(), 200);
    let batch = app
        .client
        .post(format!("{}/v1/labels/batch", app.address))
        .bearer_auth(&station)
        .json(&json!({ "numbers": [number] }))
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), 200);
    assert!(batch.bytes().await.unwrap().starts_with(b"%PDF"));

    let denied: [(Method, String, &str, Option<Value>); 6] = [
        (
            Method::POST,
            "/v1/waybills".into(),
            "/v1/waybills",
            Some(waybill_request("PO-SCOPE-2")),
        ),
        (
            Method::GET,
            format!("/v1/waybills/{number}"),
            "/v1/waybills/{number}",
            None,
        ),
        (
            Method::POST,
            format!("/v1/waybills/{number}/cancel"),
            "/v1/waybills/{number}/cancel",
            None,
        ),
        (
            Method::GET,
            format!("/v1/tracking/{number}"),
            "/v1/tracking/{number}",
            None,
        ),
        (
            Method::GET,
            "/v1/webhook-endpoints".into(),
            "/v1/webhook-endpoints",
            None,
        ),
        (Method::GET, "/v1/keys".into(), "/v1/keys", None),
    ];
    for (method, path, template, body) in denied {
        let r = app
            .call(method, &path, template, Some(&station), body.as_ref())
            .await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert_eq!(r.error_code(), "INSUFFICIENT_SCOPE", "{path}");
    }
    // The refused calls changed nothing: one waybill, not cancelled.
    assert_eq!(app.count("SELECT COUNT(*) FROM waybills").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM waybills WHERE state = 'cancelled'")
            .await,
        0
    );
}

#[tokio::test]
async fn keys_are_made_rotated_and_revoked_through_the_api() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if backend == Backend::Postgres {
            needs!(Postgres);
        }
        let app = spawn_app(backend).await;
        // A key grants at most what it has, in its own mode.
        let made = keys_call(
            &app,
            Method::POST,
            "/v1/keys",
            &app.key,
            Some(&json!({ "scopes": ["labels:read", "keys:manage"], "description": "dock 3" })),
        )
        .await;
        assert_eq!(made.status, 201, "{}", made.body);
        assert_eq!(made.body["mode"], "test");
        assert_eq!(made.body["scopes"], json!(["labels:read", "keys:manage"]));
        let narrow = made.body["key"].as_str().unwrap().to_owned();
        let narrow_id = made.body["id"].as_str().unwrap().to_owned();
        let wider = json!({ "scopes": ["waybills:write"] });
        let r = keys_call(&app, Method::POST, "/v1/keys", &narrow, Some(&wider)).await;
        assert_eq!(
            (r.status.as_u16(), r.error_code()),
            (400, "INVALID_REQUEST"),
            "{}",
            r.body
        );
        let r = keys_call(
            &app,
            Method::POST,
            "/v1/keys",
            &app.key,
            Some(&json!({ "mode": "live" })),
        )
        .await;
        assert_eq!(
            (r.status.as_u16(), r.error_code()),
            (403, "KEY_MODE_MISMATCH")
        );

        // Rotation with a grace period: both keys work until it ends.
        let r = keys_call(
            &app,
            Method::POST,
            &format!("/v1/keys/{narrow_id}/rotate"),
            &app.key,
            Some(&json!({ "expiresInSeconds": 3600 })),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let successor = r.body["key"].as_str().unwrap().to_owned();
        assert_eq!(r.body["rotated"]["replacedBy"], r.body["id"]);
        assert_eq!(r.body["description"], "dock 3");
        assert!(r.body["rotated"]["expiresAt"].is_string());
        for k in [&narrow, &successor] {
            let r = keys_call(&app, Method::GET, "/v1/keys", k, None).await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
        // A key is rotated once.
        let again = keys_call(
            &app,
            Method::POST,
            &format!("/v1/keys/{narrow_id}/rotate"),
            &app.key,
            Some(&json!({})),
        )
        .await;
        assert_eq!(
            (again.status.as_u16(), again.error_code()),
            (409, "KEY_NOT_ACTIVE")
        );

        // Rotation without grace stops the old key at once; revocation likewise.
        let successor_id = r_id(&app, &successor).await;
        let r = keys_call(
            &app,
            Method::POST,
            &format!("/v1/keys/{successor_id}/rotate"),
            &app.key,
            Some(&json!({ "expiresInSeconds": 0 })),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let third = r.body["key"].as_str().unwrap().to_owned();
        let r = keys_call(&app, Method::GET, "/v1/keys", &successor, None).await;
        assert_eq!(
            r.status, 401,
            "a rotated key without grace stops at once: {}",
            r.body
        );
        let third_id = r_id(&app, &third).await;
        let r = keys_call(
            &app,
            Method::POST,
            &format!("/v1/keys/{third_id}/revoke"),
            &app.key,
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["active"], false);
        assert!(r.body["revokedAt"].is_string());
        assert_eq!(
            keys_call(&app, Method::GET, "/v1/keys", &third, None)
                .await
                .status,
            401
        );

        // Another tenant's key id is not found, and is left alone.
        let globex = app.new_key("globex").await;
        let r = keys_call(
            &app,
            Method::POST,
            &format!("/v1/keys/{narrow_id}/revoke"),
            &globex,
            None,
        )
        .await;
        assert_eq!(r.status, 404);
        assert_eq!(
            keys_call(&app, Method::GET, "/v1/keys", &narrow, None)
                .await
                .status,
            200
        );
        let listed = keys_call(&app, Method::GET, "/v1/keys", &app.key, None).await;
        let keys = listed.body["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 4, "{}", listed.body);
        assert!(
            keys.iter().all(|k| k.get("key").is_none()),
            "keys are shown only once"
        );
    }
}

/// The id of `key`, as the key itself lists it (keys:manage is kept through rotation).
async fn r_id(app: &TestApp, key: &str) -> String {
    let listed = keys_call(app, Method::GET, "/v1/keys", key, None).await;
    let prefix = &key[..9];
    listed.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["prefix"] == prefix)
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("{prefix} not in {}", listed.body))
}
