//! Requests to MyDHL API.

use crate::http::{Auth, Context, Method, Operation, OutboundRequest};
use crate::money;
use crate::{Address, Shipment};
use rust_decimal::Decimal;
use serde_json::{Value, json};

fn details(a: &Address) -> Value {
    let mut postal = json!({
        "postalCode": a.postal_code.clone().unwrap_or_default(),
        "cityName": a.city,
        "countryCode": a.country,
        "addressLine1": a.street1,
    });
    if let Some(line2) = &a.street2 {
        postal["addressLine2"] = json!(line2);
    }
    if let Some(state) = &a.state {
        postal["provinceCode"] = json!(state);
    }
    json!({
        "postalAddress": postal,
        "contactInformation": {
            "phone": a.phone.clone().unwrap_or_else(|| "0".into()),
            "companyName": a.company.clone().unwrap_or_else(|| a.name.clone()),
            "fullName": a.name,
            "email": a.email,
        },
    })
}

/// Grams as kilograms with three decimals.
fn kg(grams: u64) -> f64 {
    grams as f64 / 1000.0
}

/// A declared value in the currency's minor units (validation admits only decimal text).
fn amount(s: &str, currency: &str) -> Decimal {
    money::round(money::parse(s).unwrap_or_default(), currency)
}

pub fn create(s: &Shipment, cx: &Context<super::DhlExpressCredentials>) -> OutboundRequest {
    let packages: Vec<Value> = s
        .parcels
        .iter()
        .map(|p| {
            let mut pkg = json!({
                "weight": kg(u64::from(p.weight_grams)),
                "customerReferences": [{"value": s.reference_number, "typeCode": "CU"}],
            });
            if let (Some(l), Some(w), Some(h)) = (p.length_cm, p.width_cm, p.height_cm) {
                pkg["dimensions"] =
                    json!({"length": l.ceil(), "width": w.ceil(), "height": h.ceil()});
            }
            pkg
        })
        .collect();
    let mut content = json!({
        "packages": packages,
        "isCustomsDeclarable": s.customs.is_some(),
        "description": s.customs.as_ref().and_then(|c| c.items.first()).map_or("Goods", |i| i.description.as_str()),
        "unitOfMeasurement": "metric",
        "incoterm": s.customs.as_ref().and_then(|c| c.incoterm.clone()).unwrap_or_else(|| "DAP".into()),
    });
    if let Some(customs) = &s.customs {
        let total: Decimal = customs
            .items
            .iter()
            .map(|i| amount(&i.unit_value, &customs.currency) * Decimal::from(i.quantity))
            .sum();
        let items: Vec<Value> = customs
            .items
            .iter()
            .enumerate()
            .map(|(n, i)| {
                let grams = i.line_weight_grams();
                let mut item = json!({
                    "number": n + 1,
                    "description": i.description,
                    "price": money::to_json(amount(&i.unit_value, &customs.currency)),
                    "quantity": {"value": i.quantity, "unitOfMeasurement": "PCS"},
                    "exportReasonType": "permanent",
                    "manufacturerCountry": i.origin_country.clone().unwrap_or_else(|| s.shipper.country.clone()),
                    "weight": {"netValue": kg(grams), "grossValue": kg(grams)},
                });
                if let Some(hs) = &i.hs_code {
                    item["commodityCodes"] = json!([{"typeCode": "outbound", "value": hs}]);
                }
                item
            })
            .collect();
        content["declaredValue"] = money::to_json(money::round(total, &customs.currency));
        content["declaredValueCurrency"] = json!(customs.currency);
        content["exportDeclaration"] = json!({
            "lineItems": items,
            "invoice": {"number": s.reference_number, "date": cx.today.format("%Y-%m-%d").to_string()},
        });
    }
    OutboundRequest::new(Operation::Create, Method::POST, "/shipments")
        .auth(Auth::Basic)
        .header("Message-Reference", s.idempotency_key.clone())
        .json(json!({
            "plannedShippingDateAndTime": format!("{}T12:00:00 GMT+00:00", cx.today.format("%Y-%m-%d")),
            "pickup": {"isRequested": false},
            "productCode": s.service,
            "accounts": [{"typeCode": "shipper", "number": cx.credentials.account_number}],
            "customerReferences": [{"value": s.reference_number, "typeCode": "CU"}],
            "outputImageProperties": {
                "encodingFormat": "pdf",
                "imageOptions": [{"typeCode": "label", "templateName": "ECOM26_84_001", "isRequested": true}],
            },
            "customerDetails": {
                "shipperDetails": details(&s.shipper),
                "receiverDetails": details(&s.consignee),
            },
            "content": content,
        }))
}

pub fn track(number: &str) -> OutboundRequest {
    OutboundRequest::new(
        Operation::Track,
        Method::GET,
        format!("/shipments/{number}/tracking"),
    )
    .auth(Auth::Basic)
    .query("trackingView", "all-checkpoints")
    .query("levelOfDetail", "all")
}
