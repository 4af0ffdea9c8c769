use super::*;
use serde_json::json;

fn request(value: serde_json::Value) -> CreateWaybillRequest {
    serde_json::from_value(value).unwrap()
}

fn base() -> serde_json::Value {
    json!({
        "referenceNumber": "PO-1",
        "channel": "sandbox_express",
        "shipper": {"name": "Seller", "phone": "+86 755 1234", "street1": "1 Road", "city": "Shenzhen",
                    "postalCode": "518000", "country": "cn"},
        "consignee": {"name": "Buyer", "street1": "2 St", "city": "Los Angeles", "state": "ca",
                      "postalCode": "90001", "country": "US"},
        "parcels": [{"weightGrams": 1200, "lengthCm": null}],
        "customs": {"currency": "usd", "items": [{"description": "T-shirt", "hsCode": "6109.10",
                    "quantity": 2, "unitValue": "9.90"}]}
    })
}

fn fields(v: serde_json::Value) -> Vec<String> {
    validate(&request(v))
        .unwrap_err()
        .into_iter()
        .map(|f| f.field)
        .collect()
}

#[test]
fn a_valid_request_is_normalized() {
    let v = validate(&request(base())).unwrap();
    assert_eq!(v.channel, "SANDBOX_EXPRESS");
    assert_eq!(v.shipper.country, "CN");
    assert_eq!(v.consignee.state.as_deref(), Some("CA"));
    let customs = v.customs.unwrap();
    assert_eq!(customs.currency, "USD");
    assert_eq!(customs.items[0].hs_code.as_deref(), Some("610910"));
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let mut v = base();
    v["consignee"]["country"] = json!("XX");
    v["consignee"]["postalCode"] = json!(null);
    v["parcels"][0]["weightGrams"] = json!(0);
    v["customs"]["currency"] = json!("ABC");
    v["customs"]["items"][0]["quantity"] = json!(-1);
    v["customs"]["items"][0]["unitValue"] = json!("9.999");
    let got = fields(v);
    for want in [
        "consignee.country",
        "parcels[0].weightGrams",
        "customs.currency",
        "customs.items[0].quantity",
        "customs.items[0].unitValue",
    ] {
        assert!(got.iter().any(|f| f == want), "missing {want} in {got:?}");
    }
}

#[test]
fn postal_codes_follow_the_country() {
    let mut v = base();
    v["consignee"]["postalCode"] = json!("9000");
    assert_eq!(fields(v.clone()), vec!["consignee.postalCode"]);
    v["consignee"]["postalCode"] = json!("90001-1234");
    assert!(validate(&request(v.clone())).is_ok());
    // Hong Kong has no postal codes: none is required.
    v["consignee"] =
        json!({"name": "B", "street1": "1 Queen's Rd", "city": "Hong Kong", "country": "HK"});
    assert!(validate(&request(v)).is_ok());
}

#[test]
fn customs_are_required_only_across_borders() {
    let mut v = base();
    v.as_object_mut().unwrap().remove("customs");
    assert_eq!(fields(v.clone()), vec!["customs"]);
    v["shipper"]["country"] = json!("US");
    v["shipper"]["state"] = json!("NY");
    v["shipper"]["postalCode"] = json!("10001");
    assert!(validate(&request(v)).is_ok());
}

#[test]
fn consignee_phone_and_dimensions_are_optional_but_checked_when_given() {
    let mut v = base();
    v["consignee"]["phone"] = json!("");
    v["parcels"][0]["lengthCm"] = json!(0);
    assert!(validate(&request(v.clone())).is_ok());
    v["parcels"][0]["widthCm"] = json!(-3);
    v["consignee"]["phone"] = json!("call me");
    assert_eq!(fields(v), vec!["consignee.phone", "parcels[0].widthCm"]);
}

#[test]
fn lengths_and_reference_characters_are_bounded() {
    let mut v = base();
    v["referenceNumber"] = json!("has space");
    v["consignee"]["name"] = json!("x".repeat(101));
    assert_eq!(fields(v), vec!["referenceNumber", "consignee.name"]);
}
