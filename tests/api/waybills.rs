//! POST/GET /v1/waybills through HTTP on SQLite and PostgreSQL: the idempotency rules, the
//! ambiguous-failure recovery, billing and tenant isolation.

use crate::helpers::{Backend, spawn_app, waybill_request};
use futures_util::future::join_all;
use serde_json::json;

async fn create_then_replay(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = waybill_request("PO-20261123-0001");

    let first = app.create(&body).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["status"], 1);
    assert_eq!(first.body["replayed"], false);
    let number = first.waybill_number().to_owned();
    assert!(carriers::sandbox::is_valid_number(&number), "{number}");
    assert_eq!(
        first.body["charge"],
        json!({"amount": "25.10", "currency": "USD"})
    );

    let again = app.create(&body).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["replayed"], true);
    assert_eq!(again.waybill_number(), number);
    assert_eq!(again.body["createdAt"], first.body["createdAt"]);

    assert_eq!(
        app.sandbox.create_calls(),
        1,
        "a replay must not call the carrier"
    );
    assert_eq!(app.charges().await, 1, "a replay must not bill again");
}

async fn allowed_random_fields_do_not_make_a_payload_different(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = waybill_request("PO-RANDOM-1");
    let first = app.create(&body).await;
    assert_eq!(first.status, 201);

    let mut varied = body.clone();
    varied["consignee"]["phone"] = json!("+1 000 555 9999");
    varied["parcels"][0]["lengthCm"] = json!(30);
    varied["parcels"][0]["widthCm"] = json!(20);
    varied["labelEncoding"] = json!("base64");
    let replay = app.create(&varied).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(replay.waybill_number(), first.waybill_number());

    let mut different = body.clone();
    different["consignee"]["postalCode"] = json!("90002");
    let conflict = app.create(&different).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.error_code(), "REFERENCE_CONFLICT");
    assert_eq!(app.sandbox.create_calls(), 1);
    assert_eq!(app.charges().await, 1);
}

async fn concurrent_duplicates_make_one_carrier_call(backend: Backend) {
    let app = spawn_app(backend).await;
    // SANDBOX_SLOW keeps the first call open while the other 49 arrive.
    let body = waybill_request("PO-SANDBOX_SLOW-50");
    let replies = join_all((0..50).map(|_| app.create(&body))).await;

    let created: Vec<_> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(created.len(), 1, "exactly one request creates");
    let number = created[0].waybill_number();
    for r in &replies {
        match r.status.as_u16() {
            201 | 200 => assert_eq!(r.waybill_number(), number),
            409 => {
                assert_eq!(r.error_code(), "REFERENCE_IN_PROGRESS");
                assert!(r.headers.contains_key("retry-after"));
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(app.sandbox.create_calls(), 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM waybills").await, 1);
    assert_eq!(app.charges().await, 1);
}

async fn concurrent_distinct_references_all_succeed(backend: Backend) {
    let app = spawn_app(backend).await;
    let bodies: Vec<_> = (0..50)
        .map(|i| waybill_request(&format!("PO-MANY-{i}")))
        .collect();
    let replies = join_all(bodies.iter().map(|b| app.create(b))).await;
    for r in &replies {
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let mut numbers: Vec<_> = replies
        .iter()
        .map(|r| r.waybill_number().to_owned())
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 50);
    assert_eq!(app.charges().await, 50);
}

async fn a_rejection_creates_nothing_and_the_reference_stays_usable(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut body = waybill_request("PO-REJECT-1");
    body["consignee"]["name"] = json!("SANDBOX_REJECT Jane");
    let rejected = app.create(&body).await;
    assert_eq!(rejected.status, 502);
    assert_eq!(rejected.error_code(), "CARRIER_REJECTED");
    assert_eq!(rejected.body["carrierErrorCode"], "SBX-4001");
    assert!(
        rejected.body["carrierErrorMsg"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM waybills").await, 0);
    assert_eq!(app.charges().await, 0);

    // The client corrects the payload and retries the same reference.
    body["consignee"]["name"] = json!("Jane Doe");
    let fixed = app.create(&body).await;
    assert_eq!(fixed.status, 201, "{}", fixed.body);
    assert_eq!(app.charges().await, 1);
}

async fn an_unreachable_carrier_creates_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let down = app.create(&waybill_request("PO-SANDBOX_DOWN-1")).await;
    assert_eq!(down.status, 503);
    assert_eq!(down.error_code(), "CARRIER_UNAVAILABLE");
    assert_eq!(app.count("SELECT COUNT(*) FROM waybills").await, 0);
}

async fn an_ambiguous_failure_is_resolved_by_lookup_not_a_second_create(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = waybill_request("PO-SANDBOX_TIMEOUT-1");
    let timed_out = app.create(&body).await;
    assert_eq!(timed_out.status, 504);
    assert_eq!(timed_out.error_code(), "CARRIER_TIMEOUT");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM waybills WHERE state = 'unknown'")
            .await,
        1
    );
    assert_eq!(app.charges().await, 0);
    assert_eq!(app.sandbox.shipment_count(), 1, "the carrier did create it");

    let retried = app.create(&body).await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(
        app.sandbox.create_calls(),
        1,
        "no second shipment at the carrier"
    );
    assert_eq!(
        app.sandbox.lookup_calls(),
        1,
        "asked the carrier by reference first"
    );
    assert_eq!(app.sandbox.shipment_count(), 1);
    assert_eq!(app.charges().await, 1);

    let third = app.create(&body).await;
    assert_eq!(third.status, 200);
    assert_eq!(third.waybill_number(), retried.waybill_number());
}

async fn a_panicking_adapter_answers_500_and_leaves_the_reference_unknown(backend: Backend) {
    // The reference is left for the next request to settle with the carrier.
    let app = spawn_app(backend).await;
    let body = waybill_request("PO-SANDBOX_PANIC-1");
    let crashed = app.create(&body).await;
    assert_eq!(crashed.status, 500);
    assert_eq!(crashed.error_code(), "INTERNAL");
    let request_id = crashed.headers["x-request-id"].to_str().unwrap();
    assert_eq!(crashed.body["requestId"], request_id);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM waybills WHERE state = 'unknown'")
            .await,
        1
    );
    assert_eq!(app.sandbox.shipment_count(), 0);
}

async fn a_stale_claim_is_waited_for_then_taken_over(backend: Backend) {
    let app = crate::helpers::spawn_app_with(backend, |s| s.idempotency.wait_ms = 300).await;
    let body = waybill_request("PO-SANDBOX_TIMEOUT-STALE");
    assert_eq!(app.create(&body).await.status, 504);

    // As if another instance were still working on it: duplicates wait, then get 409.
    let far = shipgate::store::now_millis() + 60_000;
    app.set_claim("PO-SANDBOX_TIMEOUT-STALE", "pending", far)
        .await;
    let busy = app.create(&body).await;
    assert_eq!(busy.status, 409);
    assert_eq!(busy.error_code(), "REFERENCE_IN_PROGRESS");
    assert_eq!(busy.headers["retry-after"], "1");

    // As if that instance had died: once the lease is over, the next request takes over,
    // finds the shipment at the carrier and adopts it.
    app.set_claim("PO-SANDBOX_TIMEOUT-STALE", "pending", 0)
        .await;
    let adopted = app.create(&body).await;
    assert_eq!(adopted.status, 201, "{}", adopted.body);
    assert_eq!(app.sandbox.create_calls(), 1);
    assert_eq!(app.charges().await, 1);
}

async fn lookups_by_number_and_reference(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create(&waybill_request("PO-LOOKUP-1")).await;
    let number = created.waybill_number().to_owned();

    let by_number = app.get_waybill(&app.key, &number).await;
    assert_eq!(by_number.status, 200);
    assert_eq!(by_number.body["referenceNumber"], "PO-LOOKUP-1");
    let by_ref_path = app.get_waybill(&app.key, "PO-LOOKUP-1").await;
    assert_eq!(by_ref_path.waybill_number(), number);
    let by_query = app.by_reference(&app.key, "PO-LOOKUP-1").await;
    assert_eq!(by_query.status, 200);
    assert_eq!(by_query.waybill_number(), number);

    let missing = app.by_reference(&app.key, "PO-NOPE").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_code(), "NOT_FOUND");
    let no_param = app
        .call(
            reqwest::Method::GET,
            "/v1/waybills",
            "/v1/waybills",
            Some(&app.key),
            None,
        )
        .await;
    assert_eq!(no_param.status, 400);
}

async fn tenants_never_see_each_other(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.new_key("globex").await;
    let mine = app.create(&waybill_request("PO-SHARED-REF")).await;
    let number = mine.waybill_number().to_owned();

    assert_eq!(app.get_waybill(&other, &number).await.status, 404);
    assert_eq!(app.get_waybill(&other, "PO-SHARED-REF").await.status, 404);
    assert_eq!(app.by_reference(&other, "PO-SHARED-REF").await.status, 404);

    // The same reference is a different waybill for another tenant, not a replay.
    let theirs = app
        .create_as(&other, &waybill_request("PO-SHARED-REF"))
        .await;
    assert_eq!(theirs.status, 201);
    assert_ne!(theirs.waybill_number(), number);
    assert_eq!(app.get_waybill(&app.key, &number).await.status, 200);
}

/// Concurrent creates' writes (on PostgreSQL one statement per batch of claims and one per
/// batch of records; on SQLite one each): each create gets its own answer. A reference claimed twice in a batch goes in
/// once; an attempt that lost its claim records nothing; a waybill number already recorded
/// fails only the create that brought it.
async fn batched_claims_and_records_answer_each_create(backend: Backend) {
    use carriers::{Charge, Created, Label, LabelFormat};
    use shipgate::store::waybills::{Claim, NewClaim};
    let app = spawn_app(backend).await;
    let db = &app.db;
    let lease = shipgate::store::now_millis() + 60_000;
    // 30 references, the last ten asked for twice.
    let refs: Vec<String> = (0..30)
        .chain(20..30)
        .map(|i| format!("PO-BATCH-{i}"))
        .collect();
    let tenant = app.tenant_id.as_str();
    let claims = join_all(refs.iter().map(|r| async move {
        db.claim_reference(&NewClaim {
            tenant_id: tenant,
            reference_number: r,
            fingerprint: "fp",
            channel: "SANDBOX",
            carrier: "sandbox",
            request_json: "{}",
            lease_until: lease,
        })
        .await
    }))
    .await;
    let claims: Vec<Option<Claim>> = claims.into_iter().map(|c| c.expect("claim")).collect();
    for i in 0..20 {
        assert!(claims[i].is_some(), "{} is claimed", refs[i]);
    }
    for i in 20..30 {
        let twice = [&claims[i], &claims[i + 10]];
        assert_eq!(
            twice.iter().filter(|c| c.is_some()).count(),
            1,
            "{}",
            refs[i]
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM waybills").await, 30);
    let mut claims: Vec<Claim> = claims.into_iter().flatten().collect();
    assert_eq!(claims.len(), 30);

    // Five attempts lose their claim to another (its lease ran out and it was taken over).
    for claim in &mut claims[..5] {
        let row = sqlx::query("UPDATE waybills SET attempts = attempts + 1 WHERE id = $1")
            .bind(&claim.id)
            .execute(&db.pool)
            .await;
        row.expect("take over");
    }
    let created = |n: usize| {
        let mut c = Created::new(format!("SB-BATCH-{n}"), format!("TN-BATCH-{n}"));
        c.charge = Some(Charge {
            amount: format!("{n}.50"),
            currency: "USD".into(),
        });
        c.label = Some(Label {
            format: LabelFormat::Pdf,
            content: format!("%PDF label {n}").into_bytes(),
        });
        c
    };
    let finished = join_all(
        claims[..25]
            .iter()
            .enumerate()
            .map(|(n, claim)| async move { db.finish_created(claim, &created(n), None).await }),
    )
    .await;
    for (n, f) in finished.iter().enumerate() {
        let f = f.as_ref().expect("record");
        assert_eq!(f.is_some(), n >= 5, "attempt {n} owned its claim");
    }
    // Answered by the merged statements themselves, not by running them again one by one.
    assert_eq!(db.waybill_batch_fallbacks(), 0);
    // The last five, one of them bringing a number already recorded.
    let finished = join_all(
        claims[25..]
            .iter()
            .enumerate()
            .map(|(k, claim)| async move {
                let n = if k == 2 { 7 } else { 25 + k };
                db.finish_created(claim, &created(n), None).await
            }),
    )
    .await;
    for (k, f) in finished.iter().enumerate() {
        match (k, f) {
            (2, Err(shipgate::store::StoreError::Sql(sqlx::Error::Database(e)))) => {
                assert!(e.is_unique_violation(), "{e}")
            }
            (2, other) => panic!("a number already recorded: {other:?}"),
            (_, f) => assert!(f.as_ref().expect("record").is_some()),
        }
    }
    // 20 + 4 created, each with its label, its charge and its one event.
    let n = app
        .count("SELECT COUNT(*) FROM waybills WHERE state = 'created'")
        .await;
    assert_eq!(n, 24);
    assert_eq!(app.count("SELECT COUNT(*) FROM labels").await, 24);
    assert_eq!(app.charges().await, 24);
    let events = "SELECT COUNT(*) FROM events WHERE event_type = 'waybill.created'";
    assert_eq!(app.count(events).await, 24);
    let label = db
        .label(&claims[9].id)
        .await
        .expect("label")
        .expect("stored");
    assert_eq!(label, ("pdf".to_owned(), b"%PDF label 9".to_vec()));
    let row = sqlx::query("SELECT waybill_number, quoted_amount FROM waybills WHERE id = $1")
        .bind(&claims[9].id)
        .fetch_one(&db.pool)
        .await
        .expect("row");
    use sqlx::Row;
    assert_eq!(row.get::<String, _>(0), "SB-BATCH-9");
    assert_eq!(row.get::<String, _>(1), "9.50");
    assert_eq!(app.count("SELECT COUNT(*) FROM labels l JOIN waybills w ON w.id = l.waybill_id WHERE w.state <> 'created'").await, 0);
}

on_both_databases!(
    create_then_replay,
    allowed_random_fields_do_not_make_a_payload_different,
    concurrent_duplicates_make_one_carrier_call,
    concurrent_distinct_references_all_succeed,
    a_rejection_creates_nothing_and_the_reference_stays_usable,
    an_unreachable_carrier_creates_nothing,
    an_ambiguous_failure_is_resolved_by_lookup_not_a_second_create,
    a_panicking_adapter_answers_500_and_leaves_the_reference_unknown,
    a_stale_claim_is_waited_for_then_taken_over,
    lookups_by_number_and_reference,
    tenants_never_see_each_other,
    batched_claims_and_records_answer_each_create,
);
