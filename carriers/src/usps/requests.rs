//! Requests to USPS.

use crate::http::{Auth, Context, Method, Operation, OutboundRequest};
use crate::{Address, CarrierError, Shipment};
use serde_json::{Value, json};

/// Used when the platform leaves parcel dimensions empty (inches).
const DEFAULT_DIMENSIONS_IN: (f64, f64, f64) = (6.0, 4.0, 2.0);

fn address(a: &Address) -> Value {
    let (first, last) = match a.name.trim().rsplit_once(' ') {
        Some((first, last)) => (first.to_owned(), last.to_owned()),
        None => (a.name.clone(), String::new()),
    };
    let zip = a.postal_code.clone().unwrap_or_default();
    let (zip5, plus4) = match zip.split_once('-') {
        Some((z, p)) => (z.to_owned(), Some(p.to_owned())),
        None => (zip, None),
    };
    let mut v = json!({
        "streetAddress": a.street1,
        "city": a.city,
        "state": a.state.clone().unwrap_or_default(),
        "ZIPCode": zip5,
        "firstName": first,
        "lastName": last,
        "ignoreBadAddress": false,
    });
    if let Some(line2) = &a.street2 {
        v["secondaryAddress"] = json!(line2);
    }
    if let Some(p) = plus4 {
        v["ZIPPlus4"] = json!(p);
    }
    if let Some(firm) = &a.company {
        v["firm"] = json!(firm);
    }
    if let Some(phone) = &a.phone {
        v["phone"] = json!(
            phone
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
        );
    }
    v
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub fn create(
    s: &Shipment,
    cx: &Context<super::UspsCredentials>,
) -> Result<OutboundRequest, CarrierError> {
    if s.shipper.country != "US" || s.consignee.country != "US" {
        return Err(CarrierError::Rejected {
            code: "DOMESTIC_ONLY".into(),
            message: "USPS labels here are for domestic US shipments".into(),
        });
    }
    let [parcel] = s.parcels.as_slice() else {
        return Err(CarrierError::Rejected {
            code: "ONE_PARCEL_PER_LABEL".into(),
            message: "a USPS label carries exactly one parcel".into(),
        });
    };
    let cm_to_in = |cm: f64| round2(cm / 2.54);
    let (length, width, height) = match (parcel.length_cm, parcel.width_cm, parcel.height_cm) {
        (Some(l), Some(w), Some(h)) => (cm_to_in(l), cm_to_in(w), cm_to_in(h)),
        _ => DEFAULT_DIMENSIONS_IN,
    };
    let from = address(&s.shipper);
    Ok(
        OutboundRequest::new(Operation::Create, Method::POST, "/labels/v3/label")
            .auth(Auth::BearerWithPayment)
            .json(json!({
                "imageInfo": {"imageType": "PDF", "labelType": "4X6LABEL", "receiptOption": "NONE"},
                "toAddress": address(&s.consignee),
                "fromAddress": from,
                "senderAddress": from,
                "packageDescription": {
                    "mailClass": s.service,
                    "rateIndicator": "SP",
                    "processingCategory": "MACHINABLE",
                    "destinationEntryFacilityType": "NONE",
                    "weightUOM": "lb",
                    "weight": round2(f64::from(parcel.weight_grams) / 453.592).max(0.01),
                    "dimensionsUOM": "in",
                    "length": length,
                    "width": width,
                    "height": height,
                    "mailingDate": cx.today.format("%Y-%m-%d").to_string(),
                    "customerReference": [
                        {"referenceNumber": s.reference_number, "printReferenceNumber": true},
                    ],
                },
            })),
    )
}

pub fn payment_authorization(c: &super::UspsCredentials) -> OutboundRequest {
    let role = |name: &str| {
        json!({
            "roleName": name, "CRID": c.crid, "MID": c.mid, "manifestMID": c.mid,
            "accountType": "EPS", "accountNumber": c.account_number,
        })
    };
    OutboundRequest::new(
        Operation::PaymentToken,
        Method::POST,
        "/payments/v3/payment-authorization",
    )
    .auth(Auth::Bearer)
    .json(json!({"roles": [role("PAYER"), role("LABEL_OWNER")]}))
}

pub fn cancel(number: &str) -> OutboundRequest {
    OutboundRequest::new(
        Operation::Cancel,
        Method::DELETE,
        format!("/labels/v3/label/{number}"),
    )
    .auth(Auth::BearerWithPayment)
}

pub fn track(number: &str) -> OutboundRequest {
    OutboundRequest::new(
        Operation::Track,
        Method::GET,
        format!("/tracking/v3/tracking/{number}"),
    )
    .auth(Auth::Bearer)
    .query("expand", "DETAIL")
}
