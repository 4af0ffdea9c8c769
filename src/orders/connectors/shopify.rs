//! Shopify Admin REST: `GET /admin/api/2025-07/orders.json` filtered by `updated_at` and paged by
//! the `Link` header, the `orders/create` / `orders/updated` webhooks (signed with
//! `X-Shopify-Hmac-Sha256`), and tracking written back as a fulfillment of the order's open
//! fulfillment orders. Money comes as decimal strings; ids may exceed 2^53 and are kept as text.

use super::{ChannelError, Connector, Fulfilment, Page, send_json, text};
use crate::orders::shops::Shop;
use crate::orders::{Buyer, LineInput, OrderInput, ShipTo};
use base64::Engine;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::time::Duration;

pub const API_VERSION: &str = "2025-07";

pub struct Shopify {
    pub client: reqwest::Client,
}

/// Whether `header` (base64 HMAC-SHA256 of the raw body with the app's secret) signs `body`.
pub fn verify_webhook(secret: &str, body: &[u8], header: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .is_ok_and(|sig| carriers::signing::hmac_sha256_verify(secret.as_bytes(), body, &sig))
}

fn token(shop: &Shop) -> Result<String, ChannelError> {
    shop.credentials
        .access_token
        .as_ref()
        .map(|t| t.expose_secret().to_owned())
        .ok_or_else(|| ChannelError::Refused("the shop has no access token".into()))
}

/// The URL of `rel="next"` in a `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

/// `X-Shopify-Shop-Api-Call-Limit: 39/40`: a nearly full bucket leaks two calls a second.
fn pause(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get("x-shopify-shop-api-call-limit")?
        .to_str()
        .ok()?;
    let (used, max) = v.split_once('/')?;
    let (used, max): (u32, u32) = (used.trim().parse().ok()?, max.trim().parse().ok()?);
    (used + 2 >= max).then(|| Duration::from_millis(500 * u64::from(used + 2 - max + 1)))
}

/// Whether every line of the order left already (`fulfillment_status` `fulfilled`, or the older
/// `restocked`): shipped by the shop itself or by an earlier write-back, nothing to ship here.
pub fn fulfilled(o: &Value) -> bool {
    matches!(
        o["fulfillment_status"].as_str(),
        Some("fulfilled" | "restocked")
    )
}

/// A Shopify order (REST, any version since 2019; the webhook body is the same object) in the
/// channel-neutral form. Lines that need no shipping are left out; a line names the variant id
/// (mapped to the tenant's SKU by the inventory's SKU mappings for `shopify`).
pub fn to_order(shop: &str, o: &Value) -> Option<OrderInput> {
    let s = &o["shipping_address"];
    let opt = |v: &Value| text(v);
    let paid = matches!(
        o["financial_status"].as_str(),
        Some("paid" | "partially_paid" | "partially_refunded" | "refunded")
    );
    let name = opt(&s["name"]).or_else(|| {
        let full = format!(
            "{} {}",
            s["first_name"].as_str().unwrap_or(""),
            s["last_name"].as_str().unwrap_or("")
        );
        Some(full.trim().to_owned()).filter(|n| !n.is_empty())
    });
    // An order fulfilled in part (outside shipgate: its own write-back fulfils the whole
    // order) ships what is left to fulfil of each line.
    let partly = o["fulfillment_status"].as_str() == Some("partial");
    let lines = o["line_items"]
        .as_array()?
        .iter()
        .filter(|l| l["requires_shipping"] != Value::Bool(false))
        // What is left of the line after refunds and order edits removed units
        // (`current_quantity`, since 2023-01), else as ordered; a line with none left is not
        // shipped.
        .map(|l| {
            let left = l["current_quantity"].as_i64().or(l["quantity"].as_i64());
            let unfulfilled = l["fulfillable_quantity"].as_i64().filter(|_| partly);
            (l, unfulfilled.or(left))
        })
        .filter(|(_, quantity)| *quantity != Some(0))
        .map(|(l, quantity)| LineInput {
            sku: None,
            identifier: opt(&l["variant_id"]).or_else(|| opt(&l["sku"])),
            title: opt(&l["title"]),
            quantity: quantity.unwrap_or(0),
            unit_price: opt(&l["price"]).unwrap_or_else(|| "0".into()),
            weight_grams: l["grams"].as_u64().filter(|g| *g > 0),
            hs_code: None,
            origin_country: None,
            external_line_id: opt(&l["id"]),
        })
        .collect::<Vec<_>>();
    Some(OrderInput {
        channel: "shopify".into(),
        shop: shop.to_owned(),
        external_id: opt(&o["id"])?,
        order_number: opt(&o["name"]),
        updated_at: opt(&o["updated_at"]),
        placed_at: opt(&o["created_at"]),
        paid_at: if paid {
            opt(&o["processed_at"]).or_else(|| opt(&o["created_at"]))
        } else {
            None
        },
        service_level: o["shipping_lines"][0]["code"].as_str().map(str::to_owned),
        currency: opt(&o["currency"]).unwrap_or_default(),
        total: opt(&o["total_price"]).unwrap_or_else(|| "0".into()),
        buyer: Buyer {
            name: opt(&o["customer"]["first_name"]).map(|f| {
                format!("{f} {}", o["customer"]["last_name"].as_str().unwrap_or(""))
                    .trim()
                    .to_owned()
            }),
            email: opt(&o["email"]).or_else(|| opt(&o["contact_email"])),
            phone: opt(&o["phone"]),
        },
        ship_to: ShipTo {
            name: name.unwrap_or_default(),
            company: opt(&s["company"]),
            phone: opt(&s["phone"]),
            email: None,
            street1: opt(&s["address1"]).unwrap_or_default(),
            street2: opt(&s["address2"]),
            city: opt(&s["city"]).unwrap_or_default(),
            state: opt(&s["province_code"]),
            postal_code: opt(&s["zip"]),
            country: opt(&s["country_code"]).unwrap_or_default(),
        },
        lines,
    })
}

#[async_trait::async_trait]
impl Connector for Shopify {
    async fn page(
        &self,
        shop: &Shop,
        from_ms: i64,
        to_ms: i64,
        next: Option<String>,
    ) -> Result<Page, ChannelError> {
        let base = shop.base_url.trim_end_matches('/');
        let url = match next {
            // Later pages carry only `page_info` (Shopify refuses the filters with it).
            Some(url) if url.starts_with(base) => url,
            Some(_) => return Err(ChannelError::Refused("a next page on another host".into())),
            None => {
                // Second precision, widened outwards: the window's edges are never missed.
                let from = super::rfc3339_secs(from_ms.div_euclid(1000) * 1000);
                let to = super::rfc3339_secs((to_ms + 999).div_euclid(1000) * 1000);
                format!(
                    "{base}/admin/api/{API_VERSION}/orders.json?status=any&limit=250&updated_at_min={}&updated_at_max={}",
                    urlencode(&from),
                    urlencode(&to)
                )
            }
        };
        let (body, headers) = send_json(
            self.client
                .get(&url)
                .header("X-Shopify-Access-Token", token(shop)?),
        )
        .await?;
        let list = body["orders"]
            .as_array()
            .ok_or_else(|| ChannelError::Refused("no `orders` in the answer".into()))?;
        let mut page = Page {
            next: next_link(&headers),
            pause: pause(&headers),
            ..Page::default()
        };
        for o in list {
            if o["cancelled_at"].is_string()
                && let Some(id) = text(&o["id"])
            {
                page.cancelled.push(id);
            }
            if fulfilled(o) {
                continue;
            }
            if let Some(order) = to_order(&shop.shop, o) {
                page.orders.push(order);
            }
        }
        Ok(page)
    }

    async fn fulfil(&self, shop: &Shop, f: &Fulfilment) -> Result<(), ChannelError> {
        let base = shop.base_url.trim_end_matches('/');
        let token = token(shop)?;
        let (body, _) = send_json(
            self.client
                .get(format!(
                    "{base}/admin/api/{API_VERSION}/orders/{}/fulfillment_orders.json",
                    f.external_id
                ))
                .header("X-Shopify-Access-Token", &token),
        )
        .await?;
        let open: Vec<Value> = body["fulfillment_orders"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|fo| matches!(fo["status"].as_str(), Some("open" | "in_progress")))
            .filter_map(|fo| text(&fo["id"]).map(|id| json!({ "fulfillment_order_id": id })))
            .collect();
        if open.is_empty() {
            // Fulfilled already (by an earlier write-back, or in the shop).
            return Ok(());
        }
        let request = json!({"fulfillment": {
            "line_items_by_fulfillment_order": open,
            "tracking_info": {"number": f.tracking_number, "company": f.carrier},
            "notify_customer": true
        }});
        send_json(
            self.client
                .post(format!("{base}/admin/api/{API_VERSION}/fulfillments.json"))
                .header("X-Shopify-Access-Token", &token)
                .json(&request),
        )
        .await?;
        Ok(())
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worked_hmac_example_verifies() {
        assert!(verify_webhook(
            "API_SECRET_KEY",
            b"{}",
            "+ihUB5l+D7QrohDEi/6NcBcJRyKssyWqos13LmnsBbs="
        ));
        assert!(!verify_webhook(
            "API_SECRET_KEY",
            b"{ }",
            "+ihUB5l+D7QrohDEi/6NcBcJRyKssyWqos13LmnsBbs="
        ));
        assert!(!verify_webhook(
            "other",
            b"{}",
            "+ihUB5l+D7QrohDEi/6NcBcJRyKssyWqos13LmnsBbs="
        ));
        assert!(!verify_webhook("API_SECRET_KEY", b"{}", "not base64"));
    }

    #[test]
    fn units_removed_by_refunds_and_edits_are_not_shipped() {
        let o = json!({"id": 1, "currency": "USD", "total_price": "3.00",
            "shipping_address": {"name": "A B", "address1": "1 Main St", "city": "Louisville",
                                 "province_code": "KY", "zip": "40202", "country_code": "US"},
            "line_items": [
                {"id": 10, "variant_id": 100, "quantity": 2, "current_quantity": 1, "price": "1.00"},
                {"id": 11, "variant_id": 101, "quantity": 1, "current_quantity": 0, "price": "1.00"},
                {"id": 12, "variant_id": 102, "quantity": 3, "price": "1.00"},
                {"id": 13, "variant_id": 103, "quantity": 1, "price": "1.00",
                 "requires_shipping": false}]});
        let lines_of = |o: &Value| -> Vec<(Option<String>, i64)> {
            let order = to_order("s.myshopify.com", o).unwrap();
            order
                .lines
                .into_iter()
                .map(|l| (l.identifier, l.quantity))
                .collect()
        };
        let id = |s: &str| Some(s.to_owned());
        assert_eq!(lines_of(&o), [(id("100"), 1), (id("102"), 3)]);
        // Fulfilled in part elsewhere: what is left to fulfil ships.
        let mut partly = o.clone();
        partly["fulfillment_status"] = json!("partial");
        partly["line_items"][0]["fulfillable_quantity"] = json!(0);
        partly["line_items"][2]["fulfillable_quantity"] = json!(2);
        assert_eq!(lines_of(&partly), [(id("102"), 2)]);
    }

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            "<https://s.myshopify.com/admin/api/2025-07/orders.json?page_info=abc&limit=250>; rel=\"previous\", <https://s.myshopify.com/admin/api/2025-07/orders.json?page_info=def&limit=250>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://s.myshopify.com/admin/api/2025-07/orders.json?page_info=def&limit=250")
        );
        h.insert("x-shopify-shop-api-call-limit", "39/40".parse().unwrap());
        assert!(pause(&h).is_some());
        h.insert("x-shopify-shop-api-call-limit", "3/40".parse().unwrap());
        assert!(pause(&h).is_none());
    }
}
