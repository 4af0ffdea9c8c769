//! Amazon Selling Partner API, Orders v0: `getOrders` by `LastUpdatedAfter`/`Before` paged by
//! `NextToken`, then `getOrderItems` and `getOrderAddress` per order, called with an access
//! token from Login with Amazon (a refresh token exchanged, cached until it expires); tracking
//! written back with `confirmShipment`. Amounts are `{CurrencyCode, Amount}` with decimal
//! strings; an item's `ItemPrice` is for all its units.

use super::{ChannelError, Connector, Fulfilment, Page, send_json, text};
use crate::orders::shops::Shop;
use crate::orders::{Buyer, LineInput, OrderInput, ShipTo};
use rust_decimal::Decimal;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::str::FromStr;
use std::time::{Duration, Instant};

pub const TOKEN_URL: &str = "https://api.amazon.com/auth/o2/token";

pub struct Amazon {
    pub client: reqwest::Client,
    /// Access tokens by shop id, with when they stop being good.
    tokens: moka::future::Cache<String, (String, Instant)>,
}

impl Amazon {
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            tokens: moka::future::Cache::builder().max_capacity(10_000).build(),
        }
    }

    /// An access token from the shop's refresh token (reused until a minute before it expires).
    async fn token(&self, shop: &Shop) -> Result<String, ChannelError> {
        if let Some((token, until)) = self.tokens.get(&shop.id).await
            && Instant::now() < until
        {
            return Ok(token);
        }
        let c = &shop.credentials;
        let missing =
            || ChannelError::Refused("the shop lacks its Login-with-Amazon credentials".into());
        let form = [
            ("grant_type", "refresh_token".to_owned()),
            (
                "refresh_token",
                c.refresh_token
                    .as_ref()
                    .ok_or_else(missing)?
                    .expose_secret()
                    .to_owned(),
            ),
            ("client_id", c.client_id.clone().ok_or_else(missing)?),
            (
                "client_secret",
                c.client_secret
                    .as_ref()
                    .ok_or_else(missing)?
                    .expose_secret()
                    .to_owned(),
            ),
        ];
        let url = c.token_url.clone().unwrap_or_else(|| TOKEN_URL.into());
        let body =
            serde_urlencoded::to_string(form).map_err(|e| ChannelError::Refused(e.to_string()))?;
        let (answer, _) = send_json(
            self.client
                .post(url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body),
        )
        .await?;
        let token = answer["access_token"]
            .as_str()
            .ok_or_else(|| ChannelError::Refused("the token answer has no access_token".into()))?
            .to_owned();
        let secs = answer["expires_in"]
            .as_u64()
            .unwrap_or(3600)
            .saturating_sub(60);
        self.tokens
            .insert(
                shop.id.clone(),
                (token.clone(), Instant::now() + Duration::from_secs(secs)),
            )
            .await;
        Ok(token)
    }

    async fn get(
        &self,
        shop: &Shop,
        path_and_query: &str,
    ) -> Result<(Value, reqwest::header::HeaderMap), ChannelError> {
        let token = self.token(shop).await?;
        let url = format!("{}{path_and_query}", shop.base_url.trim_end_matches('/'));
        send_json(self.client.get(url).header("x-amz-access-token", token)).await
    }

    /// Every item of an order (getOrderItems pages by `NextToken` too).
    async fn items(&self, shop: &Shop, id: &str) -> Result<Vec<Value>, ChannelError> {
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut path = format!("/orders/v0/orders/{}/orderItems", enc(id));
            if let Some(t) = &next {
                path.push_str(&format!("?NextToken={}", enc(t)));
            }
            let (body, _) = self.get(shop, &path).await?;
            items.extend(
                body["payload"]["OrderItems"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            next = text(&body["payload"]["NextToken"]);
            if next.is_none() {
                return Ok(items);
            }
        }
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// How long `x-amzn-RateLimit-Limit` (requests per second) asks between calls, at most 2 s
/// (the burst covers the rest).
fn pause(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let rate: f64 = headers
        .get("x-amzn-ratelimit-limit")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (rate > 0.0 && rate.is_finite()).then(|| Duration::from_secs_f64((1.0 / rate).min(2.0)))
}

/// An Amazon order with its items and address in the channel-neutral form. An item names its
/// `SellerSKU` (mapped to the tenant's SKU by the SKU mappings for `amazon`).
pub fn to_order(shop: &str, o: &Value, items: &[Value], address: &Value) -> Option<OrderInput> {
    let a = if address.is_object() {
        address
    } else {
        &o["ShippingAddress"]
    };
    let lines = items
        .iter()
        .map(|i| {
            let qty = i["QuantityOrdered"].as_i64().unwrap_or(0);
            let total = text(&i["ItemPrice"]["Amount"])
                .and_then(|a| Decimal::from_str(&a).ok())
                .unwrap_or_default();
            let unit = if qty > 0 {
                (total / Decimal::from(qty)).round_dp(2)
            } else {
                total
            };
            LineInput {
                sku: None,
                identifier: text(&i["SellerSKU"]).or_else(|| text(&i["ASIN"])),
                title: text(&i["Title"]),
                quantity: qty,
                unit_price: unit.normalize().to_string(),
                weight_grams: None,
                hs_code: None,
                origin_country: None,
                external_line_id: text(&i["OrderItemId"]),
            }
        })
        .collect();
    let street2 = [text(&a["AddressLine2"]), text(&a["AddressLine3"])]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
    Some(OrderInput {
        channel: "amazon".into(),
        shop: shop.to_owned(),
        external_id: text(&o["AmazonOrderId"])?,
        order_number: text(&o["AmazonOrderId"]),
        updated_at: text(&o["LastUpdateDate"]),
        placed_at: text(&o["PurchaseDate"]),
        // Orders still pending payment are not taken (see `page`): the rest are paid.
        paid_at: text(&o["PurchaseDate"]),
        service_level: text(&o["ShipmentServiceLevelCategory"]).map(|s| s.to_ascii_lowercase()),
        currency: text(&o["OrderTotal"]["CurrencyCode"]).unwrap_or_default(),
        total: text(&o["OrderTotal"]["Amount"]).unwrap_or_else(|| "0".into()),
        buyer: Buyer {
            name: text(&o["BuyerInfo"]["BuyerName"]),
            email: text(&o["BuyerInfo"]["BuyerEmail"]),
            phone: None,
        },
        ship_to: ShipTo {
            name: text(&a["Name"]).unwrap_or_default(),
            company: text(&a["CompanyName"]),
            phone: text(&a["Phone"]),
            email: None,
            street1: text(&a["AddressLine1"]).unwrap_or_default(),
            street2: Some(street2).filter(|s| !s.is_empty()),
            city: text(&a["City"]).unwrap_or_default(),
            state: text(&a["StateOrRegion"]),
            postal_code: text(&a["PostalCode"]),
            country: text(&a["CountryCode"]).unwrap_or_default(),
        },
        lines,
    })
}

#[async_trait::async_trait]
impl Connector for Amazon {
    async fn page(
        &self,
        shop: &Shop,
        from_ms: i64,
        to_ms: i64,
        next: Option<String>,
    ) -> Result<Page, ChannelError> {
        let markets = shop.credentials.marketplace_ids.join(",");
        let path = match &next {
            Some(token) => format!(
                "/orders/v0/orders?MarketplaceIds={}&NextToken={}",
                enc(&markets),
                enc(token)
            ),
            None => format!(
                "/orders/v0/orders?MarketplaceIds={}&LastUpdatedAfter={}&LastUpdatedBefore={}",
                enc(&markets),
                enc(&super::rfc3339_ms(from_ms)),
                enc(&super::rfc3339_ms(to_ms))
            ),
        };
        let (body, headers) = self.get(shop, &path).await?;
        let orders = body["payload"]["Orders"]
            .as_array()
            .ok_or_else(|| ChannelError::Refused("no `payload.Orders` in the answer".into()))?;
        let mut page = Page {
            next: text(&body["payload"]["NextToken"]),
            pause: pause(&headers),
            ..Page::default()
        };
        for o in orders {
            let Some(id) = text(&o["AmazonOrderId"]) else {
                continue;
            };
            if o["OrderStatus"] == "Canceled" {
                page.cancelled.push(id.clone());
            }
            // FBA orders are Amazon's to ship; a pending one (payment not yet authorized) is not
            // ready to ship, and is pulled again when its status moves on (that updates it); a
            // shipped one (by the seller elsewhere, or confirmed after our waybill) has left.
            let skipped = matches!(
                o["OrderStatus"].as_str(),
                Some("Pending" | "PendingAvailability" | "Shipped" | "InvoiceUnconfirmed")
            );
            if o["FulfillmentChannel"] == "AFN" || skipped {
                continue;
            }
            let items = self.items(shop, &id).await?;
            // The buyer's address is restricted data: an application without that role is
            // refused it, and the order keeps what `getOrders` gave (city, region, postal code,
            // country), to be held for its address rather than stop the shop's pull.
            let address = match self
                .get(shop, &format!("/orders/v0/orders/{}/address", enc(&id)))
                .await
            {
                Ok((answer, _)) => answer["payload"]["ShippingAddress"].clone(),
                Err(ChannelError::Refused(why)) => {
                    tracing::warn!(shop = %shop.id, order = %id, error = %why,
                        "the order's address was refused; taking the order's own");
                    Value::Null
                }
                Err(e) => return Err(e),
            };
            if let Some(order) = to_order(&shop.shop, o, &items, &address) {
                page.orders.push(order);
            }
        }
        Ok(page)
    }

    async fn fulfil(&self, shop: &Shop, f: &Fulfilment) -> Result<(), ChannelError> {
        let token = self.token(shop).await?;
        let items: Vec<Value> = f
            .lines
            .iter()
            .map(|(id, qty)| json!({"orderItemId": id, "quantity": qty}))
            .collect();
        let request = json!({
            "marketplaceId": shop.credentials.marketplace_ids.first(),
            "packageDetail": {
                "packageReferenceId": "1",
                "carrierCode": f.carrier,
                "trackingNumber": f.tracking_number,
                "shipDate": super::rfc3339_ms(f.shipped_at_ms),
                "orderItems": items
            }
        });
        send_json(
            self.client
                .post(format!(
                    "{}/orders/v0/orders/{}/shipmentConfirmation",
                    shop.base_url.trim_end_matches('/'),
                    enc(&f.external_id)
                ))
                .header("x-amz-access-token", token)
                .json(&request),
        )
        .await?;
        Ok(())
    }
}
