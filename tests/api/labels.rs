//! shipgate's own labels through HTTP: rendered at create, stored once, scannable. Every label
//! is turned into an image (pdftoppm) and its barcode read by a real barcode reader (zbarimg).

use crate::helpers::{Backend, TestApp, spawn_app, waybill_request};
use base64::Engine;
use reqwest::Method;
use serde_json::json;

async fn pdf(app: &TestApp, number: &str) -> Vec<u8> {
    let res = app
        .client
        .get(format!("{}/v1/waybills/{number}/label", app.address))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    res.bytes().await.unwrap().to_vec()
}

/// Text of the PDF and the Code128 barcodes on its pages.
fn read(pdf: &[u8]) -> (String, Vec<String>) {
    (
        crate::helpers::pdf::text(pdf),
        crate::helpers::pdf::barcodes(pdf, 200, Some("code128")),
    )
}

#[tokio::test]
async fn a_sandbox_label_is_ready_at_create_and_scans_as_the_waybill_number() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut body = waybill_request("PO-LABEL-1");
    body["labelEncoding"] = json!("base64");
    let created = app.create(&body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let number = created.waybill_number().to_owned();
    assert_eq!(created.body["label"]["format"], "pdf");
    assert_eq!(
        created.body["label"]["url"],
        format!("/v1/waybills/{number}/label")
    );

    let document = pdf(&app, &number).await;
    let inline = base64::engine::general_purpose::STANDARD
        .decode(created.body["label"]["base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        inline, document,
        "the create answer carries the stored label"
    );
    let b64 = app
        .call(
            Method::GET,
            "/v1/waybills/PO-LABEL-1/label?encoding=base64",
            "/v1/waybills/{number}/label",
            Some(&app.key),
            None,
        )
        .await;
    assert_eq!(b64.body["labelBase64"], created.body["label"]["base64"]);

    let (text, codes) = read(&document);
    assert_eq!(
        codes,
        vec![number.clone()],
        "the barcode decodes to the waybill number"
    );
    for want in [
        "Jane Doe",
        "742 Evergreen Terrace",
        "Los Angeles",
        "PO-LABEL-1",
        "SANDBOX_EXPRESS",
        "Returns US-West",
        "Cotton T-shirt",
        "610910",
        "1/1",
    ] {
        assert!(
            text.contains(want),
            "`{want}` missing from the label:\n{text}"
        );
    }
    assert!(
        !text.contains("Shenzhen Export"),
        "the seller is not the return address on a US label"
    );
    assert!(document.len() < 60_000, "label is {} bytes", document.len());
}

#[tokio::test]
async fn accented_names_multi_parcel_pages_and_the_shipper_where_no_warehouse_serves() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut body = waybill_request("PO-LABEL-BR");
    body["consignee"] = json!({"name": "Jürgen Müller", "street1": "Avenida Paulista 1000", "city": "São Paulo",
                               "state": "SP", "postalCode": "01310-100", "country": "BR"});
    body["parcels"] = json!([{"weightGrams": 1200}, {"weightGrams": 800}]);
    let created = app.create(&body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let number = created.waybill_number().to_owned();
    let (text, codes) = read(&pdf(&app, &number).await);
    assert_eq!(
        codes,
        vec![number.clone(), number],
        "one page a parcel, each scannable"
    );
    for want in [
        "Jürgen Müller",
        "São Paulo",
        "1.20 KG",
        "1/2",
        "0.80 KG",
        "2/2",
        "Shenzhen Export Co",
    ] {
        assert!(
            text.contains(want),
            "`{want}` missing from the label:\n{text}"
        );
    }
}

#[tokio::test]
async fn the_east_coast_goes_to_the_east_warehouse() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut body = waybill_request("PO-LABEL-NY");
    body["consignee"]["state"] = json!("NY");
    body["consignee"]["postalCode"] = json!("10001");
    body["consignee"]["city"] = json!("New York");
    let created = app.create(&body).await;
    let (text, _) = read(&pdf(&app, created.waybill_number()).await);
    assert!(text.contains("Returns US-East"), "{text}");
    assert!(!text.contains("Returns US-West"), "{text}");
}

#[tokio::test]
async fn batch_printing_keeps_the_order_and_names_every_missing_number() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut numbers = Vec::new();
    for i in 0..3 {
        let r = app.create(&waybill_request(&format!("PO-BATCH-{i}"))).await;
        numbers.push(r.waybill_number().to_owned());
    }
    let other = app.new_key("globex").await;
    let theirs = app
        .create_as(&other, &waybill_request("PO-BATCH-THEIRS"))
        .await;

    // Order as asked, by waybill or reference number.
    let asked = json!({"numbers": [numbers[2], "PO-BATCH-0", numbers[1]]});
    let res = app
        .client
        .post(format!("{}/v1/labels/batch", app.address))
        .bearer_auth(&app.key)
        .json(&asked)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let merged = res.bytes().await.unwrap().to_vec();
    let (_, codes) = read(&merged);
    assert_eq!(
        codes,
        vec![numbers[2].clone(), numbers[0].clone(), numbers[1].clone()]
    );

    let b64 = app
        .call(
            Method::POST,
            "/v1/labels/batch?encoding=base64",
            "/v1/labels/batch",
            Some(&app.key),
            Some(&asked),
        )
        .await;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.body["labelBase64"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        read(&decoded).1,
        codes,
        "base64 and PDF forms print the same labels"
    );

    // Unknown and another tenant's numbers are reported, each by position; nothing is printed.
    let bad = json!({"numbers": [numbers[0], "NO-SUCH-NUMBER", theirs.waybill_number()]});
    let r = app
        .call(
            Method::POST,
            "/v1/labels/batch",
            "/v1/labels/batch",
            Some(&app.key),
            Some(&bad),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let fields: Vec<&str> = r.body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["numbers[1]", "numbers[2]"]);

    let too_many = json!({"numbers": vec!["X"; 201]});
    let r = app
        .call(
            Method::POST,
            "/v1/labels/batch",
            "/v1/labels/batch",
            Some(&app.key),
            Some(&too_many),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "VALIDATION_FAILED");
}

#[tokio::test]
async fn chinese_names_print_with_the_embedded_font_and_stay_small() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut body = waybill_request("PO-LABEL-CN");
    body["consignee"] = json!({"name": "张伟", "phone": "13800138000", "street1": "福田区新洲十一街万基商务大厦26楼",
                               "city": "深圳市", "state": "广东省", "postalCode": "518048", "country": "CN"});
    body.as_object_mut().unwrap().remove("customs");
    let created = app.create(&body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let number = created.waybill_number().to_owned();
    let document = pdf(&app, &number).await;
    let (text, codes) = read(&document);
    assert_eq!(codes, vec![number]);
    for want in [
        "张伟",
        "深圳市",
        "福田区新洲十一街万基商务大厦26楼",
        "广东省",
        "PO-LABEL-CN",
    ] {
        assert!(
            text.contains(want),
            "`{want}` missing from the label:\n{text}"
        );
    }
    assert!(
        document.len() < 60_000,
        "the subsetted font keeps the label small: {} bytes",
        document.len()
    );
}

#[tokio::test]
async fn labels_can_live_in_a_directory_instead_of_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let labels_dir = dir.path().join("labels");
    let app = crate::helpers::spawn_app_with(Backend::Sqlite, |s| {
        s.labels.storage = shipgate::settings::LabelStorage::Directory;
        s.labels.directory = labels_dir.display().to_string();
    })
    .await;
    let created = app.create(&waybill_request("PO-LABEL-DIR")).await;
    let number = created.waybill_number().to_owned();
    let document = pdf(&app, &number).await;
    assert_eq!(read(&document).1, vec![number]);
    let files: Vec<_> = std::fs::read_dir(&labels_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        std::fs::read(&files[0]).unwrap(),
        document,
        "served as stored"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM labels WHERE LENGTH(content) = 0")
            .await,
        1,
        "the database keeps only the label's format"
    );
}

/// Hardening: a create attempt that lost its reference (its lease ran out and another attempt
/// finished) cannot replace the winner's label — in the database or in directory storage —
/// and leaves no file behind.
async fn a_stale_attempt_never_replaces_the_winners_label(backend: Backend, directory: bool) {
    let dir = tempfile::tempdir().unwrap();
    let labels_dir = dir.path().join("labels");
    let app = crate::helpers::spawn_app_with(backend, |s| {
        if directory {
            s.labels.storage = shipgate::settings::LabelStorage::Directory;
            s.labels.directory = labels_dir.display().to_string();
        }
    })
    .await;
    let created = app.create(&waybill_request("PO-LABEL-STALE")).await;
    let number = created.waybill_number().to_owned();
    let winners = pdf(&app, &number).await;
    let (id, attempt): (String, i64) = sqlx::query_as(
        "SELECT id, attempts FROM waybills WHERE reference_number = 'PO-LABEL-STALE'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    // The earlier attempt comes back late with its own shipment and label.
    let mut late = carriers::Created::new("SBX00000000000000001", "SBX00000000000000001");
    late.label = Some(carriers::Label {
        format: carriers::LabelFormat::Pdf,
        content: b"%PDF-1.4 the stale attempt's label".to_vec(),
    });
    let stale = shipgate::store::waybills::Claim {
        id,
        attempt: attempt - 1,
    };
    let recorded = app.db.finish_created(&stale, &late, None).await.unwrap();
    assert!(
        recorded.is_none(),
        "the stale attempt does not own the reference"
    );
    assert_eq!(
        pdf(&app, &number).await,
        winners,
        "the winner's label stays"
    );
    assert_eq!(
        app.get_waybill(&app.key, &number).await.body["waybillNumber"],
        number.as_str()
    );
    if directory {
        let files = std::fs::read_dir(&labels_dir).unwrap().count();
        assert_eq!(files, 1, "the stale attempt's file is gone");
    }
}

async fn stale_label_in_the_database(backend: Backend) {
    a_stale_attempt_never_replaces_the_winners_label(backend, false).await;
}

async fn stale_label_in_a_directory(backend: Backend) {
    a_stale_attempt_never_replaces_the_winners_label(backend, true).await;
}

on_both_databases!(stale_label_in_the_database, stale_label_in_a_directory);

/// Hardening: shipgate's own labels keep every line on the page, with the longest values
/// validation allows (100-character names, companies, streets and cities) and the longest
/// channel code: text is set smaller to fit its room, then wrapped. Read back word by word with
/// the positions pdftotext reports.
#[tokio::test]
async fn the_longest_values_stay_on_the_label() {
    let app = spawn_app(Backend::Sqlite).await;
    let long = |stem: &str| {
        let mut s = String::new();
        while s.len() < 100 {
            s.push_str(stem);
            s.push(' ');
        }
        s.truncate(100);
        s.trim_end().to_owned()
    };
    let mut req = waybill_request("PO-LONGEST-VALUES-0123456789-0123456789-0123456789-0123456789");
    req["channel"] = json!("SANDBOX_LINEHAUL_US");
    req["consignee"]["name"] = json!(long("Maximilian"));
    req["consignee"]["company"] = json!(long("WWWWWWWWWW"));
    req["consignee"]["street1"] = json!(long("Boulevard"));
    req["consignee"]["city"] = json!(long("Springfield"));
    let created = app.create(&req).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let number = created.waybill_number().to_owned();
    let document = pdf(&app, &number).await;
    let words = crate::helpers::pdf::words(&document);
    let (page_width, _) = crate::helpers::pdf::page_size(&document);
    assert!(!words.is_empty());
    for (word, x_max) in &words {
        assert!(
            *x_max <= page_width,
            "`{word}` ends at {x_max} pt, beyond the page ({page_width} pt)"
        );
    }
    let text = crate::helpers::pdf::text(&document);
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for must in ["SANDBOX_LINEHAUL_US", "Maximilian", number.as_str()] {
        assert!(flat.contains(must), "{must} missing from:\n{text}");
    }
}
