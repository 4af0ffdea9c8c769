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

#[test]
fn parcels_move_on_the_configured_clock() {
    use super::timeline::{JOURNEY_HOURS, progress, usps_number};
    use crate::TrackingStatus;
    let created = chrono::DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z")
        .unwrap()
        .to_utc();
    let hours = |h: f64| created + chrono::Duration::milliseconds((h * 3_600_000.0) as i64);

    let early = progress("SBX1", created, hours(1.0), 1.0);
    assert!(early.events.is_empty() && early.last_mile.is_none());

    let half = progress("SBX1", created, hours(20.0), 1.0);
    let codes: Vec<_> = half.events.iter().map(|e| e.status_code.as_str()).collect();
    assert_eq!(codes, ["PU", "DP", "LD"]);
    assert!(half.last_mile.is_none());
    assert_eq!(half.events[0].timezone.as_deref(), Some("Asia/Shanghai"));
    assert_eq!(
        half.events[0].occurred_at.offset().local_minus_utc(),
        8 * 3600
    );

    // 3600x: each journey hour is a second; the whole journey is over after JOURNEY_HOURS s.
    let done = progress(
        "SBX1",
        created,
        created + chrono::Duration::seconds(JOURNEY_HOURS as i64),
        3600.0,
    );
    let last_mile = done.last_mile.expect("handed over to USPS");
    assert_eq!(last_mile.tracking_number, usps_number("SBX1"));
    assert_eq!(last_mile.tracking_number.len(), 22);
    assert_ne!(usps_number("SBX1"), usps_number("SBX2"));
    let usps: Vec<_> = last_mile
        .events
        .iter()
        .map(|e| e.status_code.as_str())
        .collect();
    assert_eq!(usps, ["GX", "MA", "03", "10", "07", "OF", "01"]);
    assert_eq!(
        last_mile.events.last().unwrap().status,
        TrackingStatus::Delivered
    );
    assert_eq!(
        last_mile.events.last().unwrap().timezone.as_deref(),
        Some("America/Los_Angeles")
    );
}

/// Hardening: the sandbox remembers only the newest shipments, so a long create load cannot
/// grow the process without bound; the newest are still found by reference.
#[tokio::test]
async fn remembered_shipments_are_bounded() {
    let sandbox = SandboxCarrier::new(SandboxConfig {
        remembered: 3,
        ..SandboxConfig::default()
    });
    for i in 0..10 {
        let s = shipment(&format!("PO-MEM-{i}"), SERVICE_EXPRESS, &[500]);
        sandbox.create(&s).await.unwrap();
    }
    assert_eq!(sandbox.shipment_count(), 3);
    assert!(
        sandbox
            .lookup_by_reference("key-PO-MEM-9")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        sandbox
            .lookup_by_reference("key-PO-MEM-0")
            .await
            .unwrap()
            .is_none()
    );
}
