//! Carrier pushes: signatures, replays, order and deduplication, and FedEx and SF Express in their own formats.

use super::*;

async fn pushes_are_authenticated_deduplicated_and_ordered(backend: Backend) {
    crate::needs!(Redis);
    let app = spawn_app_with(backend, |s| {
        pushes(s);
        s.redis_url = Some(redis_url());
    })
    .await;
    let number = app.created("TRK-PUSH-1", "SANDBOX_LINEHAUL_US").await;
    let before = app.tracking(&app.key, &number).await;
    assert_eq!(before.body["trackingStatus"], "INFO_RECEIVED");

    let pu_at = later(1, 8);
    let picked_up = json!({"waybillNumber": number, "events": [event("PU", &pu_at)]});
    // Wrong secret: refused, nothing stored.
    let r = app
        .push_sandbox("evt-1", now(), &picked_up, "not-the-secret")
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "CALLBACK_UNAUTHORIZED");
    // Correctly signed but 400 s old: refused.
    let r = app
        .push_sandbox("evt-1", now() - 400, &picked_up, SECRET)
        .await;
    assert_eq!(r.status, 401);
    assert!(
        r.body["errorMsg"].as_str().unwrap().contains("300"),
        "{}",
        r.body
    );
    assert_eq!(app.event_rows().await, 0);

    let r = app.push_sandbox("evt-1", now(), &picked_up, SECRET).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["accepted"], 1);
    // The cached answer changed with the push: no stale answer.
    let after = app.tracking(&app.key, &number).await;
    assert_eq!(after.body["trackingStatus"], "PICKED_UP");
    assert_eq!(after.body["events"][0]["occurredAt"], pu_at.as_str());

    // The same delivery again: refused, no duplicate event.
    let r = app.push_sandbox("evt-1", now(), &picked_up, SECRET).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.error_code(), "CALLBACK_REPLAYED");
    // The same event under a new delivery id: taken, counted as a duplicate.
    let r = app.push_sandbox("evt-2", now(), &picked_up, SECRET).await;
    assert_eq!(
        (r.body["accepted"].as_u64(), r.body["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(app.event_rows().await, 1);

    // Delivered, then an older scan arrives late: the timeline is sorted by time and the
    // terminal status stays.
    let delivered = json!({"waybillNumber": number, "lastMile": {"carrier": "美国邮政",
        "trackingNumber": "9400111899223344556677", "events": [
            event("GX", &later(2, -8)),
            event("MA", &later(3, -8)),
            event("01", &later(10, -8))]}});
    assert_eq!(
        app.push_sandbox("evt-3", now(), &delivered, SECRET)
            .await
            .status,
        200
    );
    let late = json!({"waybillNumber": number, "events": [event("LA", &later(4, -8))],
        "lastMile": {"carrier": "USPS", "trackingNumber": "9400111899223344556677",
                     "events": [event("03", &later(5, -8))]}});
    assert_eq!(
        app.push_sandbox("evt-4", now(), &late, SECRET).await.status,
        200
    );
    let t = app.tracking(&app.key, &number).await;
    assert_eq!(t.body["trackingStatus"], "DELIVERED", "{}", t.body);
    assert_eq!(codes(&t.body), ["01", "03", "LA", "PU", "CREATED"]);
    // Last mile from the push, by its Chinese name; GX/MA hidden.
    assert_eq!(t.body["lastMileCarrier"], "USPS");
    let by_last_mile = app.tracking(&app.key, "9400111899223344556677").await;
    assert_eq!(by_last_mile.body, t.body);

    // A name outside the table is kept as reported and flagged.
    let other = app.created("TRK-PUSH-2", "SANDBOX_LINEHAUL_US").await;
    let pigeon = json!({"waybillNumber": other, "lastMile": {"carrier": " Pigeon Post ",
        "trackingNumber": "PP-1", "events": []}});
    assert_eq!(
        app.push_sandbox("evt-5", now(), &pigeon, SECRET)
            .await
            .status,
        200
    );
    let lm = app.last_mile(&other).await;
    assert_eq!(lm.body["lastMileCarrier"], "Pigeon Post");
    assert_eq!(lm.body["lastMileCarrierRecognized"], false);

    // Cancelled: the cached answer says so at once.
    assert_eq!(
        app.tracking(&app.key, &other).await.body["trackingStatus"],
        "INFO_RECEIVED"
    );
    let r = app
        .call(
            Method::POST,
            &format!("/v1/waybills/{other}/cancel"),
            "/v1/waybills/{number}/cancel",
            Some(&app.key),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.tracking(&app.key, &other).await.body["trackingStatus"],
        "CANCELLED"
    );

    // Unreadable and unknown.
    let r = app
        .push_sandbox("evt-6", now(), &json!({"waybill": 1}), SECRET)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "INVALID_REQUEST");
    let res = app
        .client
        .post(format!("{}/v1/callbacks/pigeon", app.address))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fedex_and_sf_express_pushes_in_their_own_formats() {
    use hmac::{KeyInit, Mac};
    let app = spawn_app_with(Backend::Sqlite, pushes).await;
    insert_created(&app, "fedex", "738488882438", "TRK-FDX").await;
    insert_created(&app, "sf_express", "444003077898", "TRK-SF").await;

    // FedEx: the Track API's result shape, HMAC-SHA256 of the body in fdx-signature.
    let body = fixture("fedex", "tracking_response.json");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let signature = hex::encode(mac.finalize().into_bytes());
    // `fdx-timestamp` is not signed: an old one does not refuse a push, a fresh one does not
    // let a replay through (the delivery id is the body's digest).
    let send = |sig: String| {
        let stamp = if sig == signature {
            now() - 3600
        } else {
            now()
        };
        app.client
            .post(format!("{}/v1/callbacks/fedex", app.address))
            .header("content-type", "application/json")
            .header("fdx-signature", sig)
            .header("fdx-timestamp", stamp.to_string())
            .body(body.clone())
            .send()
    };
    let bad = crate::helpers::Reply::read(send("00".repeat(32)).await.unwrap()).await;
    assert_eq!(bad.status, 401);
    let ok = crate::helpers::Reply::read(send(signature.clone()).await.unwrap()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body["accepted"].as_u64().unwrap() >= 10, "{}", ok.body);
    let t = app.tracking(&app.key, "TRK-FDX").await;
    assert_eq!(t.body["trackingStatus"], "DELIVERED", "{}", t.body);
    let replay = app
        .client
        .post(format!("{}/v1/callbacks/fedex", app.address))
        .header("content-type", "application/json")
        .header("fdx-signature", signature.clone())
        .header("fdx-timestamp", now().to_string())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let replay = crate::helpers::Reply::read(replay).await;
    assert_eq!(replay.error_code(), "CALLBACK_REPLAYED");

    // SF Express: route push XML in a form, verifyCode = Base64(MD5(xml + checkword)); the
    // answer is SF's XML envelope.
    let accepted = later(1, 8);
    let accept_time = accepted[..19].replace('T', " ");
    let xml = format!(
        r#"<Request service="RoutePushService" lang="zh-CN"><Body><WaybillRoute id="7001" mailno="444003077898" orderid="TRK-SF" acceptTime="{accept_time}" acceptAddress="深圳市" remark="顺丰速运 已收取快件" opCode="50"/></Body></Request>"#
    );
    let xml = xml.as_str();
    let form = |verify: &str| {
        serde_urlencoded::to_string([("content", xml), ("verifyCode", verify)]).unwrap()
    };
    let post = |body: String| {
        app.client
            .post(format!("{}/v1/callbacks/sf_express", app.address))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let res = post(form("wrong")).await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("<Head>ERR</Head>"));
    let good = carriers::sf_express::verify_code(xml, SECRET);
    let res = post(form(&good)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("<Head>OK</Head>"));
    let t = app.tracking(&app.key, "444003077898").await;
    assert_eq!(t.body["trackingStatus"], "PICKED_UP");
    assert_eq!(t.body["events"][0]["occurredAt"], accepted.as_str());
    assert_eq!(t.body["events"][0]["timezone"], "Asia/Shanghai");
    let res = post(form(&good)).await.unwrap();
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("code=\"4003\""));
}

on_both_databases!(pushes_are_authenticated_deduplicated_and_ordered);

/// Hardening: the sandbox callback speaks Standard Webhooks, so a push signed by the official
/// library with a `whsec_` secret (the specification's form: the key is the decoded part) is
/// taken, and one signed with the secret's text is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_signed_by_the_official_standard_webhooks_library_are_taken() {
    crate::needs!(StandardWebhooks);
    const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.tracking.polling.enabled = false;
        s.tracking.callbacks.insert(
            CarrierId::Sandbox,
            CallbackSettings {
                secret: WHSEC.into(),
            },
        );
    })
    .await;
    let number = app.created("TRK-SW-1", "SANDBOX_LINEHAUL_US").await;
    let body = serde_json::to_vec(
        &json!({"waybillNumber": number, "events": [event("PU", &later(1, 8))]}),
    )
    .unwrap();
    let timestamp = now().to_string();
    let send = |id: &'static str, signature: String| {
        let (app, body, timestamp) = (&app, body.clone(), timestamp.clone());
        async move {
            app.client
                .post(format!("{}/v1/callbacks/sandbox", app.address))
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", timestamp)
                .header("webhook-signature", signature)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let signed = crate::helpers::standard_webhooks(&["sign", WHSEC, "msg_sw_1", &timestamp], &body);
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let signature = String::from_utf8(signed.stdout).unwrap().trim().to_owned();
    assert_eq!(send("msg_sw_1", signature).await, 200);
    let t = app.tracking(&app.key, &number).await;
    assert_eq!(t.body["trackingStatus"], "PICKED_UP", "{}", t.body);

    // Keyed with the text of the secret instead: refused.
    let wrong = carriers::signing::standard_webhooks_sign(
        WHSEC.as_bytes(),
        "msg_sw_2",
        timestamp.parse().unwrap(),
        &body,
    );
    assert_eq!(send("msg_sw_2", wrong).await, 401);
}

/// Hardening: at a line-haul hand-over the last-mile carrier's acceptance (USPS `03`) comes
/// after the parcel moved: its status reads IN_TRANSIT, never back to PICKED_UP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_never_moves_the_status_back() {
    let app = spawn_app_with(Backend::Sqlite, pushes).await;
    let number = app.created("TRK-HANDOVER", "SANDBOX_LINEHAUL_US").await;
    let moving = json!({"waybillNumber": number,
        "events": [event("PU", &later(1, 8)), event("LA", &later(6, -8))]});
    assert_eq!(
        app.push_sandbox("ho-1", now(), &moving, SECRET)
            .await
            .status,
        200
    );
    assert_eq!(
        app.tracking(&app.key, &number).await.body["trackingStatus"],
        "IN_TRANSIT"
    );
    let accepted = json!({"waybillNumber": number, "lastMile": {"carrier": "USPS",
        "trackingNumber": "9400111899223344550001", "events": [event("03", &later(8, -8))]}});
    assert_eq!(
        app.push_sandbox("ho-2", now(), &accepted, SECRET)
            .await
            .status,
        200
    );
    let t = app.tracking(&app.key, &number).await;
    assert_eq!(codes(&t.body)[0], "03", "{}", t.body);
    assert_eq!(t.body["events"][0]["trackingStatus"], "PICKED_UP");
    assert_eq!(t.body["trackingStatus"], "IN_TRANSIT", "{}", t.body);
}

/// Hardening: a number that is one waybill's number and another's reference resolves to the
/// waybill number's, always; a pushed last-mile number two waybills have is refused, not guessed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_that_mean_two_things_resolve_deterministically_or_not_at_all() {
    let app = spawn_app_with(Backend::Sqlite, pushes).await;
    let first = app.created("TRK-TWO-MEANINGS", "SANDBOX_LINEHAUL_US").await;
    let second = app.created(&first, "SANDBOX_LINEHAUL_US").await;
    for _ in 0..3 {
        let w = app.get_waybill(&app.key, &first).await;
        assert_eq!(w.body["waybillNumber"], first.as_str(), "{}", w.body);
        let t = app.tracking(&app.key, &first).await;
        assert_eq!(t.body["waybillNumber"], first.as_str(), "{}", t.body);
    }
    let by_reference = app.tracking(&app.key, &second).await;
    assert_eq!(by_reference.body["referenceNumber"], first.as_str());

    // Both waybills hand over to USPS under the same last-mile number.
    let last_mile = "9400100000000000000001";
    for (n, number) in [&first, &second].into_iter().enumerate() {
        let hand_over = json!({"waybillNumber": number, "lastMile": {"carrier": "USPS",
            "trackingNumber": last_mile, "events": []}});
        let id = format!("lm-{n}");
        assert_eq!(
            app.push_sandbox(&id, now(), &hand_over, SECRET)
                .await
                .status,
            200
        );
    }
    let before = app.event_rows().await;
    let by_last_mile = json!({"waybillNumber": last_mile, "events": [event("LA", &later(6, -8))]});
    let r = app
        .push_sandbox("lm-amb", now(), &by_last_mile, SECRET)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["unknown"], 1, "{}", r.body);
    assert_eq!(r.body["accepted"], 0, "{}", r.body);
    assert_eq!(app.event_rows().await, before, "stored on neither waybill");
}
