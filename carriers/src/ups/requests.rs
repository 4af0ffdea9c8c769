//! Requests to UPS.

use super::version;
use crate::http::{Auth, Context, Method, Operation, OutboundRequest};
use crate::{Address, Shipment};
use serde_json::{Value, json};

fn party(a: &Address) -> Value {
    let mut lines = vec![a.street1.clone()];
    lines.extend(a.street2.clone());
    json!({
        "Name": a.company.clone().unwrap_or_else(|| a.name.clone()),
        "AttentionName": a.name,
        "Phone": {"Number": a.phone.clone().unwrap_or_default()},
        "Address": {
            "AddressLine": lines,
            "City": a.city,
            "StateProvinceCode": a.state.clone().unwrap_or_default(),
            "PostalCode": a.postal_code.clone().unwrap_or_default(),
            "CountryCode": a.country,
        },
    })
}

fn transaction_headers(req: OutboundRequest, id: &str) -> OutboundRequest {
    req.header("transId", id.chars().take(32).collect::<String>())
        .header("transactionSrc", "shipgate")
}

pub fn create(s: &Shipment, cx: &Context<super::UpsCredentials>) -> OutboundRequest {
    let account = &cx.credentials.account_number;
    let mut shipper = party(&s.shipper);
    shipper["ShipperNumber"] = json!(account);
    let packages: Vec<Value> = s
        .parcels
        .iter()
        .map(|p| {
            let mut pkg = json!({
                "Packaging": {"Code": "02"},
                "PackageWeight": {
                    "UnitOfMeasurement": {"Code": "KGS"},
                    "Weight": format!("{:.1}", (f64::from(p.weight_grams) / 1000.0).max(0.1)),
                },
                // Our idempotency key: Track by Reference finds the shipment with it.
                "ReferenceNumber": [{"Value": s.idempotency_key}],
            });
            if let (Some(l), Some(w), Some(h)) = (p.length_cm, p.width_cm, p.height_cm) {
                pkg["Dimensions"] = json!({
                    "UnitOfMeasurement": {"Code": "CM"},
                    "Length": format!("{l:.0}"), "Width": format!("{w:.0}"), "Height": format!("{h:.0}"),
                });
            }
            pkg
        })
        .collect();
    let description = s
        .customs
        .as_ref()
        .and_then(|c| c.items.first())
        .map_or_else(
            || "Goods".to_owned(),
            |i| i.description.chars().take(35).collect(),
        );
    let req = OutboundRequest::new(
        Operation::Create,
        Method::POST,
        format!("/api/shipments/{}/ship", version(cx.credentials)),
    )
    .auth(Auth::Bearer)
    .json(json!({
        "ShipmentRequest": {
            "Request": {
                "RequestOption": "nonvalidate",
                "TransactionReference": {"CustomerContext": s.reference_number},
            },
            "Shipment": {
                "Description": description,
                "Shipper": shipper,
                "ShipTo": party(&s.consignee),
                "ShipFrom": party(&s.shipper),
                "PaymentInformation": {
                    "ShipmentCharge": {"Type": "01", "BillShipper": {"AccountNumber": account}},
                },
                "Service": {"Code": s.service},
                "Package": packages,
            },
            "LabelSpecification": {
                "LabelImageFormat": {"Code": "GIF"},
                "LabelStockSize": {"Height": "6", "Width": "4"},
            },
        },
    }));
    transaction_headers(req, &s.idempotency_key)
}

pub fn lookup(key: &str, cx: &Context<super::UpsCredentials>) -> OutboundRequest {
    let from = cx.today - chrono::Days::new(30);
    let req = OutboundRequest::new(
        Operation::Lookup,
        Method::GET,
        format!("/api/track/v1/reference/details/{key}"),
    )
    .auth(Auth::Bearer)
    .query("locale", "en_US")
    .query("fromPickUpDate", from.format("%Y%m%d").to_string())
    .query("toPickUpDate", cx.today.format("%Y%m%d").to_string())
    .query("refNumType", "SmallPackage");
    transaction_headers(req, key)
}

pub fn void(number: &str, cx: &Context<super::UpsCredentials>) -> OutboundRequest {
    let req = OutboundRequest::new(
        Operation::Cancel,
        Method::DELETE,
        format!(
            "/api/shipments/{}/void/cancel/{number}",
            version(cx.credentials)
        ),
    )
    .auth(Auth::Bearer);
    transaction_headers(req, number)
}

pub fn track(number: &str) -> OutboundRequest {
    let req = OutboundRequest::new(
        Operation::Track,
        Method::GET,
        format!("/api/track/v1/details/{number}"),
    )
    .auth(Auth::Bearer)
    .query("locale", "en_US")
    .query("returnSignature", "false");
    transaction_headers(req, number)
}
