//! BSP XML requests, written with quick-xml (which escapes attribute values).

use crate::http::{Context, Method, Operation, OutboundRequest};
use crate::{Address, Shipment};
use base64::Engine;
use md5::{Digest, Md5};
use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use secrecy::ExposeSecret;

/// `Base64(MD5(xml + checkword))`, SF's request signature.
pub fn verify_code(xml: &str, checkword: &str) -> String {
    let digest = Md5::digest(format!("{xml}{checkword}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// `<Request service=".." lang="en"><Head>customer code</Head><Body>{body}</Body></Request>`
fn envelope(service: &str, customer_code: &str, body: impl FnOnce(&mut Writer<Vec<u8>>)) -> String {
    let mut w = Writer::new(Vec::new());
    let mut request = BytesStart::new("Request");
    request.push_attribute(("service", service));
    request.push_attribute(("lang", "en"));
    // Writing to a Vec cannot fail.
    let _ = w.write_event(Event::Start(request));
    let _ = w.write_event(Event::Start(BytesStart::new("Head")));
    let _ = w.write_event(Event::Text(BytesText::new(customer_code)));
    let _ = w.write_event(Event::End(BytesEnd::new("Head")));
    let _ = w.write_event(Event::Start(BytesStart::new("Body")));
    body(&mut w);
    let _ = w.write_event(Event::End(BytesEnd::new("Body")));
    let _ = w.write_event(Event::End(BytesEnd::new("Request")));
    String::from_utf8_lossy(&w.into_inner()).into_owned()
}

fn signed(operation: Operation, xml: String, checkword: &str) -> OutboundRequest {
    let verify = verify_code(&xml, checkword);
    OutboundRequest::new(operation, Method::POST, "")
        .form(vec![("xml".into(), xml), ("verifyCode".into(), verify)])
}

fn party(order: &mut BytesStart, prefix: &str, a: &Address) {
    let mut attr = |name: &str, value: &str| {
        order.push_attribute((format!("{prefix}_{name}").as_str(), value));
    };
    attr("company", a.company.as_deref().unwrap_or(&a.name));
    attr("contact", &a.name);
    attr("tel", a.phone.as_deref().unwrap_or(""));
    attr("province", a.state.as_deref().unwrap_or(""));
    attr("city", &a.city);
    let street = match &a.street2 {
        Some(line2) => format!("{} {line2}", a.street1),
        None => a.street1.clone(),
    };
    attr("address", &street);
    attr("post_code", a.postal_code.as_deref().unwrap_or(""));
    attr("country", &a.country);
}

pub fn create(s: &Shipment, cx: &Context<super::SfExpressCredentials>) -> OutboundRequest {
    let c = cx.credentials;
    let grams = s.total_weight_grams();
    let xml = envelope("OrderService", &c.customer_code, |w| {
        let mut order = BytesStart::new("Order");
        // Our idempotency key is the order id SF deduplicates and searches by.
        order.push_attribute(("orderid", s.idempotency_key.as_str()));
        order.push_attribute(("express_type", s.service.as_str()));
        party(&mut order, "j", &s.shipper);
        party(&mut order, "d", &s.consignee);
        order.push_attribute(("parcel_quantity", s.parcels.len().to_string().as_str()));
        order.push_attribute((
            "cargo_total_weight",
            format!("{:.3}", grams as f64 / 1000.0).as_str(),
        ));
        order.push_attribute(("pay_method", "1"));
        order.push_attribute(("custid", c.account_number.as_str()));
        order.push_attribute(("remark", s.reference_number.as_str()));
        if let Some(customs) = &s.customs {
            order.push_attribute(("declared_value_currency", customs.currency.as_str()));
        }
        let _ = w.write_event(Event::Start(order));
        for item in s
            .customs
            .iter()
            .flat_map(|c| c.items.iter().map(move |i| (c, i)))
        {
            let (customs, item) = item;
            let mut cargo = BytesStart::new("Cargo");
            cargo.push_attribute(("name", item.description.as_str()));
            cargo.push_attribute(("count", item.quantity.to_string().as_str()));
            cargo.push_attribute(("unit", "pcs"));
            cargo.push_attribute(("amount", item.unit_value.as_str()));
            cargo.push_attribute(("currency", customs.currency.as_str()));
            if let Some(hs) = &item.hs_code {
                cargo.push_attribute(("hscode", hs.as_str()));
            }
            if let Some(origin) = &item.origin_country {
                cargo.push_attribute(("source_area", origin.as_str()));
            }
            let _ = w.write_event(Event::Empty(cargo));
        }
        let _ = w.write_event(Event::End(BytesEnd::new("Order")));
    });
    signed(Operation::Create, xml, c.checkword.expose_secret())
}

pub fn order_search(key: &str, cx: &Context<super::SfExpressCredentials>) -> OutboundRequest {
    let xml = envelope("OrderSearchService", &cx.credentials.customer_code, |w| {
        let mut search = BytesStart::new("OrderSearch");
        search.push_attribute(("orderid", key));
        let _ = w.write_event(Event::Empty(search));
    });
    signed(
        Operation::Lookup,
        xml,
        cx.credentials.checkword.expose_secret(),
    )
}

pub fn route(number: &str, cx: &Context<super::SfExpressCredentials>) -> OutboundRequest {
    let xml = envelope("RouteService", &cx.credentials.customer_code, |w| {
        let mut route = BytesStart::new("RouteRequest");
        route.push_attribute(("tracking_type", "1"));
        route.push_attribute(("method_type", "1"));
        route.push_attribute(("tracking_number", number));
        let _ = w.write_event(Event::Empty(route));
    });
    signed(
        Operation::Track,
        xml,
        cx.credentials.checkword.expose_secret(),
    )
}
