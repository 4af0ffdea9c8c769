use super::*;
use crate::TrackingStatus;
use crate::http::{Adapter, Body, Context, RawResponse};

fn fixture(name: &str) -> RawResponse {
    let path = format!(
        "{}/tests/fixtures/sf_express/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    RawResponse {
        status: 200,
        content_type: None,
        body: std::fs::read(&path).unwrap().into(),
    }
}

#[test]
fn verify_code_is_base64_of_md5() {
    // MD5("abc") = 900150983cd24fb0d6963f7d28e17f72
    assert_eq!(verify_code("ab", "c"), "kAFQmDzST7DWlj99KOF/cg==");
}

#[test]
fn create_request_is_signed_xml_with_chinese_intact() {
    let creds = SfExpressCredentials {
        customer_code: "SLKJ2019".into(),
        checkword: "fc34c561a34f".into(),
        account_number: "7551234567".into(),
    };
    let cx = Context {
        credentials: &creds,
        today: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
    };
    let mut shipment = crate::fedex::tests::shipment();
    shipment.service = "1".into();
    shipment.shipper.name = "虾哥".into();
    shipment.shipper.city = "深圳市".into();
    shipment.consignee.street1 = "742 \"Evergreen\" & <Terrace>".into();
    let req = SfExpress.build_create(&shipment, &cx).unwrap();
    let Body::Form(fields) = req.body else {
        panic!("form body")
    };
    let xml = &fields.iter().find(|(k, _)| k == "xml").unwrap().1;
    let verify = &fields.iter().find(|(k, _)| k == "verifyCode").unwrap().1;
    assert_eq!(verify, &verify_code(xml, "fc34c561a34f"));
    insta::assert_snapshot!("sf_create_request", xml);
    // It reads back as the sample request does: same element and attribute names.
    let sample = String::from_utf8(fixture("create_shipment_request.xml").body.to_vec()).unwrap();
    for attr in [
        "orderid",
        "express_type",
        "j_contact",
        "j_tel",
        "j_address",
        "d_contact",
        "d_address",
        "custid",
        "pay_method",
        "parcel_quantity",
    ] {
        // The sample writes `custid =`: attribute spacing varies, names do not.
        assert!(
            sample.contains(attr) && xml.contains(&format!("{attr}=")),
            "{attr}"
        );
    }
    assert!(
        xml.contains("虾哥") && xml.contains("深圳市"),
        "Chinese text kept"
    );
    assert!(
        xml.contains("&amp;") && xml.contains("&lt;Terrace&gt;"),
        "values escaped"
    );
}

#[test]
fn created_reads_mailno_and_routing_data() {
    let created = SfExpress
        .parse_create(&fixture("create_shipment_response.xml"))
        .unwrap();
    assert_eq!(created.waybill_number, "SF7444404156506");
    assert!(created.label.is_none(), "SF returns no label image");
    let routing = created.routing.unwrap();
    assert_eq!(routing["destRouteLabel"], "755W-755BF");
    assert_eq!(routing["proName"], "顺丰标快");
    assert!(
        routing["twoDimensionCode"]
            .as_str()
            .unwrap()
            .starts_with("MMM=")
    );
}

#[test]
fn err_envelopes_carry_sf_code_and_chinese_message() {
    let res = fixture("create_shipment_error_response.xml");
    let (code, msg) = SfExpress.error_in_success(&res).unwrap();
    assert_eq!(code, "4001");
    assert_eq!(msg, "系统发生数据错误或运行时异常");
    assert!(
        SfExpress
            .error_in_success(&fixture("create_shipment_response.xml"))
            .is_none()
    );
    assert_eq!(SfExpress.parse_lookup(&res).unwrap(), None);
}

#[test]
fn routes_are_china_local_time_single_quoted_attributes() {
    let events = SfExpress
        .parse_track(&fixture("tracking_response.xml"))
        .unwrap();
    assert_eq!(events.len(), 7);
    let first = events.last().unwrap();
    assert_eq!(first.status, TrackingStatus::PickedUp);
    assert_eq!(first.occurred_at.to_rfc3339(), "2019-07-26T11:25:59+08:00");
    assert_eq!(first.timezone.as_deref(), Some("Asia/Shanghai"));
    assert_eq!(first.city.as_deref(), Some("上海市"));
    assert!(events.iter().all(|e| e.status != TrackingStatus::Unknown));
}
