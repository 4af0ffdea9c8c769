//! Every carrier through the same flows: create with its label, cancel, and its own error codes kept.

use super::*;

#[tokio::test]
async fn create_label_and_cancel() {
    for case in cases() {
        let server = MockServer::start().await;
        (case.mount)(&server).await;
        mount_create_ok(&case, &server).await;
        let app = app_for(&case, &server, |_| {}).await;

        let created = app.create(&request(&case, "PO-CONF-1")).await;
        assert_eq!(created.status, 201, "{}: {}", case.carrier, created.body);
        assert_eq!(
            created.body["trackingNumber"], case.tracking_number,
            "{}",
            case.carrier
        );
        assert_eq!(created.body["carrier"], case.carrier);
        let number = created.waybill_number().to_owned();
        assert_eq!(created.body["label"]["format"], "pdf", "{}", case.carrier);
        let (content_type, pdf) = label_bytes(&app, &number).await;
        assert_eq!(content_type, "application/pdf");
        assert!(
            pdf.starts_with(b"%PDF-"),
            "{}: label is not a PDF",
            case.carrier
        );
        let b64 = app
            .call(
                Method::GET,
                &format!("/v1/waybills/{number}/label?encoding=base64"),
                "/v1/waybills/{number}/label",
                Some(&app.key),
                None,
            )
            .await;
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.body["labelBase64"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, pdf, "base64 and PDF forms are the same label");
        if case.label_scans_as_number {
            let codes = crate::helpers::pdf::barcodes(&pdf, 300, None);
            assert!(
                codes.iter().any(|c| c.contains(case.tracking_number)),
                "{}: no barcode carries {} in {codes:?}",
                case.carrier,
                case.tracking_number
            );
        }
        if case.own_label {
            // Printed from SF's routing data: the destination route code and product name.
            let text = crate::helpers::pdf::text(&pdf);
            assert!(text.contains("755W-755BF"), "{text}");
            assert!(text.contains(case.tracking_number), "{text}");
            assert_eq!(
                app.count(
                    "SELECT COUNT(*) FROM waybills WHERE routing_json LIKE '%destRouteLabel%'"
                )
                .await,
                1
            );
        }

        let metrics = app
            .client
            .get(format!("{}/metrics", app.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let line = format!(
            "carrier=\"{}\",operation=\"create\",outcome=\"ok\"",
            case.carrier
        );
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("shipgate_carrier_requests_total") && l.contains(&line)),
            "{}: no create metric in\n{metrics}",
            case.carrier
        );

        let cancelled = app
            .call(
                Method::POST,
                &format!("/v1/waybills/{number}/cancel"),
                "/v1/waybills/{number}/cancel",
                Some(&app.key),
                None,
            )
            .await;
        assert_eq!(cancelled.status, 200, "{}", cancelled.body);
        assert_eq!(cancelled.body["state"], "cancelled");
        let again = app.get_waybill(&app.key, &number).await;
        assert_eq!(again.body["state"], "cancelled");
        assert_eq!(app.charges().await, 1);
    }
}

#[tokio::test]
async fn carrier_errors_keep_the_carriers_code() {
    for case in cases() {
        let server = MockServer::start().await;
        (case.mount)(&server).await;
        let (status, code, file, public_code) = case.create_error;
        Mock::given(method("POST"))
            .and(path(case.create_path))
            .respond_with(json_fixture_with(status, case.carrier, file))
            .mount(&server)
            .await;
        let app = app_for(&case, &server, |_| {}).await;
        let r = app.create(&request(&case, "PO-CONF-ERR")).await;
        assert_eq!(r.status, 502, "{}: {}", case.carrier, r.body);
        assert_eq!(r.error_code(), public_code, "{}", case.carrier);
        if public_code == "CARRIER_REJECTED" {
            assert_eq!(r.body["carrierErrorCode"], code, "{}", case.carrier);
            assert!(!r.body["carrierErrorMsg"].as_str().unwrap_or("").is_empty());
        } else {
            // Refused credentials name the carrier, never its answer's details (hardening:
            // those are logged for operators).
            let msg = r.body["errorMsg"].as_str().unwrap();
            assert!(msg.contains(case.carrier), "{}", r.body);
            assert!(!msg.contains(code), "{}", r.body);
        }
        assert_eq!(
            app.count("SELECT COUNT(*) FROM waybills").await,
            0,
            "a rejection keeps nothing"
        );

        // An unreadable body names the carrier instead of failing obscurely.
        server.reset().await;
        (case.mount)(&server).await;
        Mock::given(method("POST"))
            .and(path(case.create_path))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"))
            .mount(&server)
            .await;
        let r = app.create(&request(&case, "PO-CONF-GARBAGE")).await;
        assert_eq!(r.status, 502, "{}", r.body);
        assert_eq!(r.error_code(), "CARRIER_BAD_RESPONSE");
        let msg = r.body["errorMsg"].as_str().unwrap();
        assert!(msg.contains(case.carrier), "{}", r.body);
        // What the parser said about the carrier's bytes is for the log.
        assert!(!msg.contains("HTTP") && !msg.contains("line"), "{}", r.body);
    }
}

/// Hardening: customs lines whose weight × quantity would wrap 32 bits (the DHL Express and
/// FedEx requests carry line weights) are refused with the field named, and the largest line
/// allowed goes to the carrier with its exact weight.
#[tokio::test]
async fn heavy_customs_lines_never_overflow() {
    for case in [fedex(), dhl()] {
        let server = MockServer::start().await;
        (case.mount)(&server).await;
        mount_create_ok(&case, &server).await;
        let app = app_for(&case, &server, |_| {}).await;
        let mut req = request(&case, "PO-HEAVY-1");
        req["customs"]["items"][0]["weightGrams"] = json!(1_000_000);
        req["customs"]["items"][0]["quantity"] = json!(100_000);
        let r = app.create(&req).await;
        assert_eq!(r.status, 400, "{}: {}", case.carrier, r.body);
        assert_eq!(
            r.body["details"][0]["field"],
            "customs.items[0].weightGrams"
        );
        assert_eq!(create_calls(&server, &case).await, 0);

        let mut req = request(&case, "PO-HEAVY-2");
        req["customs"]["items"][0]["weightGrams"] = json!(100_000);
        req["customs"]["items"][0]["quantity"] = json!(100);
        let r = app.create(&req).await;
        assert_eq!(r.status, 201, "{}: {}", case.carrier, r.body);
        let sent = requests_to(&server, case.create_path).await;
        let body = String::from_utf8_lossy(&sent[0].body).into_owned();
        assert!(
            body.contains("10000"),
            "{}: 10,000 kg in {body}",
            case.carrier
        );
    }
}
