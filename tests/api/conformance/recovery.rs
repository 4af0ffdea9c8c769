//! Shipments recovered after an ambiguous failure (hardening 3): an adopted FedEx or UPS
//! shipment ends with the carrier's own label and charge (the found one, whose label a lookup
//! cannot return, is voided and created again), and a "not found" right after the failure is
//! not trusted until the carrier's grace period has passed.

use super::*;

fn printing_cases() -> Vec<Case> {
    vec![fedex(), ups()]
}

#[tokio::test]
async fn an_adopted_shipment_ends_with_the_carriers_label_and_charge() {
    for case in printing_cases() {
        let server = MockServer::start().await;
        (case.mount)(&server).await;
        mount_slow_create(&case, &server).await;
        let app = app_for(&case, &server, |c| c.timeout_ms = 300).await;
        let r = app.create(&request(&case, "PO-ADOPT-1")).await;
        assert_eq!(r.status, 504, "{}: {}", case.carrier, r.body);

        // The carrier answers again; its lookup finds the shipment the first attempt made.
        server.reset().await;
        (case.mount)(&server).await;
        mount_create_ok(&case, &server).await;
        let retried = app.create(&request(&case, "PO-ADOPT-1")).await;
        assert_eq!(retried.status, 201, "{}: {}", case.carrier, retried.body);
        assert!(
            retried.body["charge"]["amount"].is_string(),
            "{}: a known charge: {}",
            case.carrier,
            retried.body
        );
        let voids = server
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.url.path().contains("cancel"))
            .count();
        assert_eq!(voids, 1, "{}: the found shipment is voided", case.carrier);
        assert_eq!(create_calls(&server, &case).await, 1, "{}", case.carrier);
        let (_, pdf) = label_bytes(&app, retried.waybill_number()).await;
        // shipgate's own label prints the channel; the carrier's is its image.
        let text = crate::helpers::pdf::text(&pdf);
        assert!(
            !text.contains(case.channel),
            "{}: shipgate's own label instead of the carrier's: {text}",
            case.carrier
        );
        if case.label_scans_as_number {
            let codes = crate::helpers::pdf::barcodes(&pdf, 300, None);
            assert!(
                codes.iter().any(|c| c.contains(case.tracking_number)),
                "{codes:?}"
            );
        }
        assert_eq!(app.charges().await, 1);
    }
}

#[tokio::test]
async fn a_not_found_right_after_the_failure_is_not_trusted_until_the_grace_ends() {
    let case = fedex();
    let server = MockServer::start().await;
    (case.mount)(&server).await;
    mount_slow_create(&case, &server).await;
    let app = app_for(&case, &server, |c| c.timeout_ms = 300).await;
    let r = app.create(&request(&case, "PO-GRACE-1")).await;
    assert_eq!(r.status, 504, "{}", r.body);

    // FedEx's lookup does not find it (yet): the retry is told to come back.
    server.reset().await;
    answer(
        &server,
        "POST",
        "/oauth/token",
        "fedex",
        "oauth_token_response.json",
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/track/v1/referencenumbers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "transactionId": "624deea6-b709-470c-8c39-4b5511281492",
            "output": {"completeTrackResults": [{
                "trackingNumber": "PO-GRACE-1",
                "trackResults": [{"error": {
                    "code": "TRACKING.REFERENCENUMBER.NOTFOUND",
                    "message": "Reference number cannot be found. Please correct the reference number and try again."
                }}]
            }]}
        })))
        .mount(&server)
        .await;
    mount_create_ok(&case, &server).await;
    let retried = app.create(&request(&case, "PO-GRACE-1")).await;
    assert_eq!(retried.status, 409, "{}", retried.body);
    assert_eq!(retried.error_code(), "SHIPMENT_STATE_UNKNOWN");
    let wait: u64 = retried.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=120).contains(&wait), "Retry-After {wait}");
    assert_eq!(
        create_calls(&server, &case).await,
        0,
        "nothing created meanwhile"
    );

    // Once the grace period is over, "not found" is believed and the shipment created.
    sqlx::query("UPDATE waybills SET unknown_since_ms = unknown_since_ms - 121000")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let created = app.create(&request(&case, "PO-GRACE-1")).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(create_calls(&server, &case).await, 1);
}
