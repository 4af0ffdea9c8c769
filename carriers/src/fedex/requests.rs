//! Requests to FedEx, built from the canonical shipment.

use crate::http::{Auth, Context, Method, Operation, OutboundRequest};
use crate::money;
use crate::{Address, Shipment};
use rust_decimal::Decimal;
use serde_json::{Value, json};

fn party(a: &Address) -> Value {
    let mut street_lines = vec![a.street1.clone()];
    street_lines.extend(a.street2.clone());
    json!({
        "contact": {
            "personName": a.name,
            "companyName": a.company,
            "phoneNumber": a.phone.clone().unwrap_or_default(),
            "emailAddress": a.email,
        },
        "address": {
            "streetLines": street_lines,
            "city": a.city,
            "stateOrProvinceCode": a.state,
            "postalCode": a.postal_code,
            "countryCode": a.country,
        },
    })
}

/// Grams as kilograms with three decimals.
fn kg(grams: u64) -> f64 {
    grams as f64 / 1000.0
}

pub fn create(s: &Shipment, cx: &Context<super::FedexCredentials>) -> OutboundRequest {
    let account = &cx.credentials.account_number;
    let packages: Vec<Value> = s
        .parcels
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut item = json!({
                "sequenceNumber": i + 1,
                "weight": {"units": "KG", "value": kg(u64::from(p.weight_grams))},
                "customerReferences": [
                    {"customerReferenceType": "CUSTOMER_REFERENCE", "value": s.reference_number},
                    // Our idempotency key, searchable with Track by References (PURCHASE_ORDER).
                    {"customerReferenceType": "P_O_NUMBER", "value": s.idempotency_key},
                ],
            });
            if let (Some(l), Some(w), Some(h)) = (p.length_cm, p.width_cm, p.height_cm) {
                item["dimensions"] = json!({
                    "length": l.ceil() as u32, "width": w.ceil() as u32, "height": h.ceil() as u32, "units": "CM"
                });
            }
            item
        })
        .collect();
    let mut shipment = json!({
        "shipper": party(&s.shipper),
        "recipients": [party(&s.consignee)],
        "shipDatestamp": cx.today.format("%Y-%m-%d").to_string(),
        "serviceType": s.service,
        "packagingType": "YOUR_PACKAGING",
        "pickupType": "USE_SCHEDULED_PICKUP",
        "blockInsightVisibility": false,
        "shippingChargesPayment": {"paymentType": "SENDER"},
        "labelSpecification": {
            "imageType": "PDF",
            "labelStockType": "STOCK_4X6",
            "labelFormatType": "COMMON2D",
            "labelOrder": "SHIPPING_LABEL_FIRST",
        },
        "rateRequestType": ["ACCOUNT"],
        "totalPackageCount": s.parcels.len(),
        "requestedPackageLineItems": packages,
    });
    if let Some(customs) = &s.customs {
        let commodities: Vec<Value> = customs
            .items
            .iter()
            .map(|item| {
                // Validation admits only decimal text here; the rounding keeps minor units.
                let unit = money::round(
                    money::parse(&item.unit_value).unwrap_or_default(),
                    &customs.currency,
                );
                json!({
                    "description": item.description,
                    "harmonizedCode": item.hs_code,
                    "countryOfManufacture": item.origin_country.clone().unwrap_or_else(|| s.shipper.country.clone()),
                    "quantity": item.quantity,
                    "quantityUnits": "PCS",
                    "numberOfPieces": 1,
                    "unitPrice": {"amount": money::to_json(unit), "currency": customs.currency},
                    "customsValue": {
                        "amount": money::to_json(money::round(unit * Decimal::from(item.quantity), &customs.currency)),
                        "currency": customs.currency,
                    },
                    "weight": {"units": "KG", "value": kg(item.line_weight_grams())},
                })
            })
            .collect();
        shipment["customsClearanceDetail"] = json!({
            "dutiesPayment": {"paymentType": "RECIPIENT"},
            "isDocumentOnly": false,
            "commercialInvoice": {
                "termsOfSale": customs.incoterm,
                "customerReferences": [{"customerReferenceType": "CUSTOMER_REFERENCE", "value": s.reference_number}],
            },
            "commodities": commodities,
        });
    }
    OutboundRequest::new(Operation::Create, Method::POST, "/ship/v1/shipments")
        .auth(Auth::Bearer)
        .header("X-locale", "en_US")
        .json(json!({
            "labelResponseOptions": "LABEL",
            "accountNumber": {"value": account},
            "requestedShipment": shipment,
        }))
}

pub fn lookup(key: &str, cx: &Context<super::FedexCredentials>) -> OutboundRequest {
    let begin = cx.today - chrono::Days::new(30);
    OutboundRequest::new(
        Operation::Lookup,
        Method::POST,
        "/track/v1/referencenumbers",
    )
    .auth(Auth::Bearer)
    .json(json!({
        "referencesInformation": {
            "type": "PURCHASE_ORDER",
            "value": key,
            "accountNumber": cx.credentials.account_number,
            "shipDateBegin": begin.format("%Y-%m-%d").to_string(),
            "shipDateEnd": (cx.today + chrono::Days::new(1)).format("%Y-%m-%d").to_string(),
        },
        "includeDetailedScans": false,
    }))
}

pub fn cancel(number: &str, cx: &Context<super::FedexCredentials>) -> OutboundRequest {
    OutboundRequest::new(Operation::Cancel, Method::PUT, "/ship/v1/shipments/cancel")
        .auth(Auth::Bearer)
        .json(json!({
            "accountNumber": {"value": cx.credentials.account_number},
            "trackingNumber": number,
            "deletionControl": "DELETE_ALL_PACKAGES",
        }))
}

pub fn track(number: &str) -> OutboundRequest {
    OutboundRequest::new(Operation::Track, Method::POST, "/track/v1/trackingnumbers")
        .auth(Auth::Bearer)
        .json(json!({
            "includeDetailedScans": true,
            "trackingInfo": [{"trackingNumberInfo": {"trackingNumber": number}}],
        }))
}
