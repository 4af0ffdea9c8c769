//! The orders service with the gateway across the network: the same waybill through the
//! gateway's HTTP API with the service key, and a gateway that answers 503 retried with the
//! same reference.

use super::{ingest, order, until_state, warehouses_and_stock};
use crate::helpers::{Backend, spawn_app_with};
use secrecy::SecretString;
use serde_json::json;
use shipgate::settings::Service;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SERVICE_KEY: &str = "svc-0123456789abcdef0123456789abcdef";

async fn orders_reach_a_remote_gateway_with_the_service_key(backend: Backend) {
    let gateway = spawn_app_with(backend, |s| {
        s.services = vec![Service::Gateway];
        s.service_key = Some(SecretString::from(SERVICE_KEY));
    })
    .await;
    let url = gateway.address.clone();
    // The orders instance shares the gateway's database here (tenants and keys are common);
    // it reaches the gateway's waybills only through HTTP.
    let database = gateway.database_url.clone();
    let orders = crate::helpers::spawn_app_on(backend, database, |s| {
        s.services = vec![Service::Inventory, Service::Orders];
        s.orders.gateway_url = url;
        s.orders.gateway_service_key = Some(SecretString::from(SERVICE_KEY));
    })
    .await;
    warehouses_and_stock(&orders, &["PB-10K"], 5).await;
    let id = ingest(&orders, &order("PO-R", "PB-10K", 1)).await.body["order"]["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = until_state(&orders, &id, "WAYBILL_CREATED").await;
    let reference = done["shipments"][0]["referenceNumber"].as_str().unwrap();
    let w = gateway.by_reference(&orders.key, reference).await;
    assert_eq!(w.status, 200, "{}", w.body);
    assert_eq!(
        w.body["waybillNumber"],
        done["shipments"][0]["waybillNumber"]
    );

    // A wrong service key, or a tenant that does not exist, is refused.
    for (key, tenant) in [
        (
            "svc-wrong-wrong-wrong-wrong-wrong-wrong",
            orders.tenant_id.as_str(),
        ),
        (SERVICE_KEY, "no-such-tenant"),
    ] {
        let r = gateway
            .client
            .get(format!(
                "{}/v1/waybills?referenceNumber={reference}",
                gateway.address
            ))
            .bearer_auth(key)
            .header("Shipgate-Tenant", tenant)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    // A service key reaches waybills, not keys.
    let r = gateway
        .client
        .get(format!("{}/v1/keys", gateway.address))
        .bearer_auth(SERVICE_KEY)
        .header("Shipgate-Tenant", orders.tenant_id.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

async fn a_gateway_answering_503_is_retried_with_the_same_reference(backend: Backend) {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/waybills"))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"status": 0, "errorCode": "SERVICE_UNAVAILABLE", "errorMsg": "draining"}),
        ))
        .up_to_n_times(2)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/waybills"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "status": 1, "waybillNumber": "SB123", "referenceNumber": "x", "carrier": "SANDBOX",
            "channel": "SANDBOX_EXPRESS", "trackingNumber": "SB123"})))
        .mount(&mock)
        .await;
    let app = spawn_app_with(backend, |s| {
        s.orders.gateway_url = mock.uri();
        s.orders.gateway_service_key = Some(SecretString::from(SERVICE_KEY));
        s.orders.retry_initial_ms = 10;
    })
    .await;
    warehouses_and_stock(&app, &["PB-10K"], 5).await;
    let id = ingest(&app, &order("PO-503", "PB-10K", 1)).await.body["order"]["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = until_state(&app, &id, "WAYBILL_CREATED").await;
    assert_eq!(done["shipments"][0]["waybillNumber"], "SB123");
    assert_eq!(done["shipments"][0]["attempts"], 3);
    let calls = mock.received_requests().await.unwrap();
    assert_eq!(calls.len(), 3);
    let references: Vec<String> = calls
        .iter()
        .map(|c| {
            assert_eq!(
                c.headers.get("shipgate-tenant").unwrap(),
                app.tenant_id.as_str()
            );
            assert_eq!(
                c.headers.get("authorization").unwrap().to_str().unwrap(),
                format!("Bearer {SERVICE_KEY}")
            );
            serde_json::from_slice::<serde_json::Value>(&c.body).unwrap()["referenceNumber"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        references.iter().all(|r| r == &references[0]),
        "{references:?}"
    );
}

crate::on_both_databases!(
    orders_reach_a_remote_gateway_with_the_service_key,
    a_gateway_answering_503_is_retried_with_the_same_reference,
);
