//! Label rendering on one core: `cargo bench --bench labels`.
//! Target: >= 2,000 labels/s (<= 500 us a label) and < 60 KB a label.

use carriers::{Address, Created, Customs, CustomsItem, Parcel, Shipment};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shipgate::labels::{Labeler, layout};
use std::hint::black_box;

fn shipment() -> Shipment {
    let address = |name: &str, city: &str, state: &str, zip: &str, country: &str| Address {
        name: name.into(),
        company: Some("Shenzhen Export Co".into()),
        phone: Some("+86 755 8888 1234".into()),
        email: None,
        street1: "742 Evergreen Terrace".into(),
        street2: Some("Suite 300".into()),
        city: city.into(),
        state: Some(state.into()),
        postal_code: Some(zip.into()),
        country: country.into(),
    };
    Shipment {
        reference_number: "PO-20261123-0001".into(),
        idempotency_key: "0192f0c1a2b34c5d8e9f000000000001".into(),
        service: "EXPRESS".into(),
        shipper: address("Li Wei", "Shenzhen", "GD", "518057", "CN"),
        consignee: address("Jürgen Müller", "Los Angeles", "CA", "90001", "US"),
        parcels: vec![Parcel {
            weight_grams: 1200,
            length_cm: None,
            width_cm: None,
            height_cm: None,
        }],
        customs: Some(Customs {
            currency: "USD".into(),
            incoterm: Some("DDU".into()),
            items: vec![CustomsItem {
                description: "Cotton T-shirt".into(),
                hs_code: Some("610910".into()),
                quantity: 2,
                unit_value: "9.90".into(),
                weight_grams: Some(300),
                origin_country: Some("CN".into()),
            }],
        }),
    }
}

fn labels(c: &mut Criterion) {
    let layouts = layout::load(None).expect("built-in layouts");
    let labeler = Labeler::new(
        layouts["4x6"].clone(),
        shipgate::settings::Settings::default().returns.warehouses,
    )
    .expect("labeler");
    let s = shipment();
    let created = Created::new("SBX17954086907661483", "SBX17954086907661483");
    let data = labeler.data(&s, &created, "SANDBOX_EXPRESS", "2026-11-23");
    let size = labeler.render(&data).expect("render").content.len();
    println!("label size: {size} bytes");
    assert!(size < 60_000, "label is {size} bytes");

    let mut chinese = s.clone();
    chinese.consignee.name = "张伟".into();
    chinese.consignee.street1 = "福田区新洲十一街万基商务大厦26楼".into();
    chinese.consignee.city = "深圳市".into();
    let chinese_data = labeler.data(&chinese, &created, "SF_EXPRESS_STANDARD", "2026-11-23");
    let chinese_size = labeler.render(&chinese_data).expect("render").content.len();
    println!("label size with Chinese text (embedded subset font): {chinese_size} bytes");
    assert!(chinese_size < 60_000, "label is {chinese_size} bytes");

    let mut group = c.benchmark_group("labels");
    group.throughput(Throughput::Elements(1));
    group.bench_function("render_4x6", |b| {
        b.iter(|| labeler.render(black_box(&data)).expect("render"))
    });
    group.bench_function("data_and_render_4x6", |b| {
        b.iter(|| {
            let data = labeler.data(black_box(&s), &created, "SANDBOX_EXPRESS", "2026-11-23");
            labeler.render(&data).expect("render")
        })
    });
    group.bench_function("render_4x6_chinese", |b| {
        b.iter(|| labeler.render(black_box(&chinese_data)).expect("render"))
    });
    group.finish();
}

criterion_group!(benches, labels);
criterion_main!(benches);
