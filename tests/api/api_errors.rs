//! The error envelope and the contract: every failure a client can cause is a clear 4xx in the
//! `{status: 0, errorCode, errorMsg}` envelope, and responses match schemas/openapi.json.

use crate::helpers::{Backend, Reply, spawn_app, waybill_request};
use reqwest::Method;
use serde_json::json;

async fn raw_post(app: &crate::helpers::TestApp, content_type: &str, body: Vec<u8>) -> Reply {
    let res = app
        .client
        .post(format!("{}/v1/waybills", app.address))
        .bearer_auth(&app.key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let reply = Reply::read(res).await;
    crate::helpers::contract::check("POST", "/v1/waybills", reply.status.as_u16(), &reply.body);
    reply
}

#[tokio::test]
async fn every_v1_route_needs_a_valid_key() {
    let app = spawn_app(Backend::Sqlite).await;
    let body = waybill_request("PO-AUTH");
    for key in [None, Some("sg_not-a-real-key"), Some("wrong-format")] {
        let r = app
            .call(
                Method::POST,
                "/v1/waybills",
                "/v1/waybills",
                key,
                Some(&body),
            )
            .await;
        assert_eq!(r.status, 401, "{key:?}");
        assert_eq!(r.error_code(), "UNAUTHORIZED");
        let r = app
            .call(
                Method::GET,
                "/v1/waybills/X",
                "/v1/waybills/{number}",
                key,
                None,
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let basic = app
        .client
        .get(format!("{}/v1/waybills/X", app.address))
        .header("authorization", format!("Basic {}", app.key))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    assert_eq!(app.sandbox.create_calls(), 0);
}

#[tokio::test]
async fn validation_reports_every_field() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut body = waybill_request("PO-BAD");
    body["consignee"]["country"] = json!("USA");
    body["consignee"]["postalCode"] = json!("ABCDE");
    body["parcels"][0]["weightGrams"] = json!(0);
    body["customs"]["items"][0]["quantity"] = json!(0);
    body["customs"]["items"][0]["unitValue"] = json!("ten");
    body["customs"]["currency"] = json!("XYZ");
    let r = app.create(&body).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "VALIDATION_FAILED");
    let fields: Vec<&str> = r.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for want in [
        "consignee.country",
        "parcels[0].weightGrams",
        "customs.currency",
        "customs.items[0].quantity",
        "customs.items[0].unitValue",
    ] {
        assert!(fields.contains(&want), "{want} missing from {fields:?}");
    }
    let mut domestic_missing_postcode = waybill_request("PO-BAD-2");
    domestic_missing_postcode["consignee"]["postalCode"] = json!(null);
    let r = app.create(&domestic_missing_postcode).await;
    assert_eq!(r.body["details"][0]["field"], "consignee.postalCode");
    assert_eq!(app.count("SELECT COUNT(*) FROM waybills").await, 0);
}

#[tokio::test]
async fn customs_are_required_across_borders() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut body = waybill_request("PO-NO-CUSTOMS");
    body.as_object_mut().unwrap().remove("customs");
    let r = app.create(&body).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["details"][0]["field"], "customs");
}

#[tokio::test]
async fn unknown_channel_is_a_400() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut body = waybill_request("PO-CHAN");
    body["channel"] = json!("PIGEON_POST");
    let r = app.create(&body).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "UNKNOWN_CHANNEL");
    assert!(r.body["errorMsg"].as_str().unwrap().contains("PIGEON_POST"));
}

#[tokio::test]
async fn malformed_bodies_are_named() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = raw_post(&app, "application/json", b"{\"referenceNumber\": ".to_vec()).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "INVALID_JSON");

    let mut typed = waybill_request("PO-TYPE");
    typed["parcels"][0]["weightGrams"] = json!("heavy");
    let r = raw_post(
        &app,
        "application/json",
        serde_json::to_vec(&typed).unwrap(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "INVALID_JSON");
    assert!(
        r.body["errorMsg"]
            .as_str()
            .unwrap()
            .contains("parcels[0].weightGrams"),
        "{}",
        r.body
    );

    let r = raw_post(&app, "text/plain", b"{}".to_vec()).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "INVALID_CONTENT_TYPE");

    let big = format!(
        "{{\"referenceNumber\": \"{}\"}}",
        "x".repeat(1024 * 1024 + 10)
    );
    let r = raw_post(&app, "application/json", big.into_bytes()).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_envelope() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = Reply::read(
        app.client
            .get(format!("{}/v2/nothing", app.address))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["status"], 0);
    let r = Reply::read(
        app.client
            .delete(format!("{}/v1/waybills/X", app.address))
            .bearer_auth(&app.key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.error_code(), "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn health_and_request_ids() {
    let app = spawn_app(Backend::Sqlite).await;
    let live = app.call(Method::GET, "/livez", "/livez", None, None).await;
    assert_eq!(live.status, 200);
    let ready = app
        .call(Method::GET, "/readyz", "/readyz", None, None)
        .await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["database"], "ok");
    assert!(live.headers.contains_key("x-request-id"));

    let echoed = app
        .client
        .get(format!("{}/livez", app.address))
        .header("x-request-id", "erp-trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "erp-trace-42");
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = spawn_app(Backend::Sqlite).await;
    app.db.pool.close().await;
    let r = app
        .call(Method::GET, "/readyz", "/readyz", None, None)
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.error_code(), "SERVICE_UNAVAILABLE");
    // Hardening: the database's own error text is not shown to whoever asks.
    assert_eq!(r.body["errorMsg"], "database not ready", "{}", r.body);
}

#[tokio::test]
async fn the_contract_is_served_and_catches_drift() {
    let app = spawn_app(Backend::Sqlite).await;
    let served: serde_json::Value = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(&served, crate::helpers::contract::document());
    assert_eq!(served["openapi"], "3.1.0");

    // The checker itself must be able to fail: a waybill missing its number, an extra field,
    // and an error without a code all violate the contract.
    let created = app.create(&waybill_request("PO-DRIFT")).await;
    let mut drifted = created.body.clone();
    drifted.as_object_mut().unwrap().remove("waybillNumber");
    assert!(
        !crate::helpers::contract::violations("POST", "/v1/waybills", 201, &drifted).is_empty()
    );
    let mut extra = created.body.clone();
    extra["surprise"] = json!(true);
    assert!(!crate::helpers::contract::violations("POST", "/v1/waybills", 201, &extra).is_empty());
    let bad_error = json!({"status": 0, "errorMsg": "x"});
    assert!(
        !crate::helpers::contract::violations("GET", "/v1/waybills/{number}", 404, &bad_error)
            .is_empty()
    );
}
