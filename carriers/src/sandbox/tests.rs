use super::*;
use crate::{Address, Parcel};

fn address(name: &str, country: &str) -> Address {
    Address {
        name: name.into(),
        company: None,
        phone: None,
        email: None,
        street1: "1 Main St".into(),
        street2: None,
        city: "Los Angeles".into(),
        state: Some("CA".into()),
        postal_code: Some("90001".into()),
        country: country.into(),
    }
}

fn shipment(reference: &str, service: &str, grams: &[u32]) -> Shipment {
    Shipment {
        reference_number: reference.into(),
        idempotency_key: format!("key-{reference}"),
        service: service.into(),
        shipper: address("Seller", "US"),
        consignee: address("Buyer", "US"),
        parcels: grams
            .iter()
            .map(|&g| Parcel {
                weight_grams: g,
                length_cm: None,
                width_cm: None,
                height_cm: None,
            })
            .collect(),
        customs: None,
    }
}

#[test]
fn check_digit_matches_gs1_examples() {
    // GS1's worked example: 629104150021 -> check digit 3.
    assert_eq!(check_digit("629104150021"), Some(3));
    assert_eq!(check_digit("12a"), None);
}

#[test]
fn numbers_are_unique_and_self_checking() {
    let source = numbers::SerialSource::default();
    let a = numbers::waybill_number("SBX", source.next());
    let b = numbers::waybill_number("SBX", source.next());
    assert_ne!(a, b);
    assert!(is_valid_number(&a), "{a}");
    let mut tampered: Vec<char> = a.chars().collect();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == '0' { '1' } else { '0' };
    assert!(!is_valid_number(&tampered.into_iter().collect::<String>()));
}

#[test]
fn quote_is_deterministic_by_service_and_weight() {
    let one = quote(&shipment("R", SERVICE_EXPRESS, &[1200]));
    assert_eq!(one.amount, "25.10"); // 12.50 + 3 x 4.20
    assert_eq!(one, quote(&shipment("R", SERVICE_EXPRESS, &[1200])));
    let two = quote(&shipment("R", SERVICE_LINEHAUL_US, &[400, 400]));
    assert_eq!(two.amount, "12.00"); // 6.80 + 2 x 2.10 (800 g) + 1.00 for the second parcel
}

#[tokio::test]
async fn timeout_trigger_creates_then_fails_and_lookup_finds_it() {
    let carrier = SandboxCarrier::new(SandboxConfig::default());
    let s = shipment("PO-SANDBOX_TIMEOUT-1", SERVICE_EXPRESS, &[500]);
    let err = carrier.create(&s).await.unwrap_err();
    assert!(err.is_ambiguous());
    let found = carrier
        .lookup_by_reference(&s.idempotency_key)
        .await
        .unwrap();
    assert!(found.is_some_and(|c| is_valid_number(&c.waybill_number)));
}

#[tokio::test]
async fn reject_trigger_creates_nothing() {
    let carrier = SandboxCarrier::new(SandboxConfig::default());
    let s = shipment("PO-SANDBOX_REJECT", SERVICE_EXPRESS, &[500]);
    let err = carrier.create(&s).await.unwrap_err();
    assert!(matches!(err, CarrierError::Rejected { ref code, .. } if code == "SBX-4001"));
    assert_eq!(carrier.shipment_count(), 0);
    assert_eq!(
        carrier
            .lookup_by_reference(&s.idempotency_key)
            .await
            .unwrap(),
        None
    );
}
