//! Taobao / Tmall through the Taobao Open Platform (TOP) REST router: `POST {base}/router/rest`
//! with the system parameters (`method`, `app_key`, `session`, `timestamp` in Beijing time,
//! `v=2.0`, `format=json`, `sign_method=hmac-sha256`) and `sign`, the upper-case hex HMAC-SHA256
//! (key: the app secret) of every other parameter's name and value, sorted by name.
//!
//! - One trade: `taobao.trade.fullinfo.get` (what the thin order messages point at).
//! - A window: `taobao.trades.sold.increment.get` by modification time, paged with `has_next`.
//! - Tracking written back: `taobao.logistics.offline.send` (`tid`, `out_sid`, `company_code`).
//!
//! A shop's credentials: `clientId` is the app key, `clientSecret` the app secret, and
//! `accessToken` the seller's session key. Trade ids (`tid`, `oid`) are 64-bit and kept as text;
//! money is in yuan as decimal strings; times are `yyyy-MM-dd HH:mm:ss` in Beijing time.

use super::{ChannelError, Connector, Fulfilment, Page, send_json, text};
use crate::orders::shops::Shop;
use crate::orders::{Buyer, LineInput, OrderInput, ShipTo};
use chrono::{FixedOffset, NaiveDateTime, TimeZone};
use secrecy::ExposeSecret;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://eco.taobao.com";

/// The trade fields asked for (the sub-orders and the receiver included).
const FIELDS: &str = "tid,status,type,created,modified,pay_time,payment,buyer_nick,\
receiver_name,receiver_state,receiver_city,receiver_district,receiver_town,receiver_address,\
receiver_zip,receiver_mobile,receiver_phone,receiver_country,orders";

/// Trade states that mean the trade will not ship.
const CLOSED: [&str; 2] = ["TRADE_CLOSED", "TRADE_CLOSED_BY_TAOBAO"];

/// States of a trade, or of a sub-order, that has left already.
const SENT: [&str; 3] = [
    "WAIT_BUYER_CONFIRM_GOODS",
    "TRADE_BUYER_SIGNED",
    "TRADE_FINISHED",
];

/// Trade states not paid yet: the trade comes again when it is (its modification time moved).
const UNPAID: [&str; 4] = [
    "TRADE_NO_CREATE_PAY",
    "WAIT_BUYER_PAY",
    "PAY_PENDING",
    "WAIT_PRE_AUTH_CONFIRM",
];

pub struct Taobao {
    pub client: reqwest::Client,
}

fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"))
}

/// `yyyy-MM-dd HH:mm:ss` in Beijing time, of epoch milliseconds.
pub fn top_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&beijing())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// RFC 3339 of a TOP time (`2026-12-01 10:00:00`, Beijing time).
fn rfc3339(v: &Value) -> Option<String> {
    let s = v.as_str()?.trim();
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok()?;
    let t = beijing().from_local_datetime(&naive).single()?;
    Some(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The `sign` of a request's parameters (every one but `sign`).
pub fn sign(secret: &str, params: &BTreeMap<String, String>) -> String {
    let mut text = String::new();
    for (k, v) in params {
        if k != "sign" {
            text.push_str(k);
            text.push_str(v);
        }
    }
    carriers::signing::hmac_sha256(secret.as_bytes(), text.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// A TOP error answer as a channel error: call limits wait, the platform's own failures are
/// retried, anything else (a bad session, a missing trade) is refused.
fn top_error(e: &Value) -> ChannelError {
    let code = e["code"].as_i64().unwrap_or(0);
    let sub = e["sub_code"].as_str().unwrap_or("");
    let msg = format!(
        "TOP {code} {}{}{}",
        e["msg"].as_str().unwrap_or(""),
        if sub.is_empty() { "" } else { ": " },
        e["sub_msg"].as_str().unwrap_or(sub)
    );
    if code == 7 || sub.starts_with("accesscontrol.limited") {
        // "This ban will last for 12 more seconds"
        let secs = e["sub_msg"]
            .as_str()
            .and_then(|m| m.split_whitespace().find_map(|w| w.parse::<u64>().ok()))
            .unwrap_or(1);
        return ChannelError::RateLimited(Duration::from_secs(secs.clamp(1, 3600)));
    }
    if code == 520 || sub.starts_with("isp.") || sub.ends_with("service-unavailable") {
        return ChannelError::Unavailable(msg);
    }
    ChannelError::Refused(msg)
}

impl Taobao {
    /// Calls `method` with `params` for `shop`; the answer's `{method}_response` object.
    async fn call(
        &self,
        shop: &Shop,
        method: &str,
        params: &[(&str, String)],
    ) -> Result<Value, ChannelError> {
        let c = &shop.credentials;
        let (Some(key), Some(secret), Some(session)) =
            (&c.client_id, &c.client_secret, &c.access_token)
        else {
            return Err(ChannelError::Refused(
                "the shop needs clientId (app key), clientSecret (app secret) and accessToken \
                 (session key)"
                    .into(),
            ));
        };
        let mut all: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        for (k, v) in [
            ("method", method.to_owned()),
            ("app_key", key.clone()),
            ("session", session.expose_secret().to_owned()),
            ("timestamp", top_time(crate::store::now_millis())),
            ("v", "2.0".into()),
            ("format", "json".into()),
            ("sign_method", "hmac-sha256".into()),
        ] {
            all.insert(k.into(), v);
        }
        let signature = sign(secret.expose_secret(), &all);
        all.insert("sign".into(), signature);
        let url = format!("{}/router/rest", shop.base_url.trim_end_matches('/'));
        let (body, _) = send_json(self.client.post(url).form(&all)).await?;
        if body["error_response"].is_object() {
            return Err(top_error(&body["error_response"]));
        }
        let key = format!(
            "{}_response",
            method.trim_start_matches("taobao.").replace('.', "_")
        );
        match body.get(&key) {
            Some(v) if v.is_object() => Ok(v.clone()),
            _ => Err(ChannelError::Refused(format!("no `{key}` in the answer"))),
        }
    }

    /// One trade by its id, as a page of one order (or of one cancellation).
    pub async fn trade(&self, shop: &Shop, tid: &str) -> Result<Page, ChannelError> {
        let answer = self
            .call(
                shop,
                "taobao.trade.fullinfo.get",
                &[("fields", FIELDS.into()), ("tid", tid.to_owned())],
            )
            .await?;
        let mut page = Page::default();
        take(&shop.shop, &answer["trade"], &mut page);
        Ok(page)
    }
}

/// Puts a trade on `page`: closed ones as cancelled, those to ship as orders.
fn take(shop: &str, trade: &Value, page: &mut Page) {
    let status = trade["status"].as_str().unwrap_or("");
    if CLOSED.contains(&status) {
        if let Some(tid) = text(&trade["tid"]) {
            page.cancelled.push(tid);
        }
    } else if !UNPAID.contains(&status)
        && !SENT.contains(&status)
        && let Some(order) = to_order(shop, trade)
    {
        page.orders.push(order);
    }
}

/// A TOP trade in the channel-neutral form. A sub-order's `outer_sku_id` (the seller's own code
/// for the SKU) is taken as the SKU; without one, its `sku_id` or item id is looked up in the
/// tenant's mappings for `taobao`. Refunded, closed and sent sub-orders (a trade sent in part by
/// the seller elsewhere) are left out.
pub fn to_order(shop: &str, t: &Value) -> Option<OrderInput> {
    let opt = |v: &Value| text(v);
    let lines = t["orders"]["order"]
        .as_array()?
        .iter()
        .filter(|o| {
            !matches!(
                o["refund_status"].as_str(),
                Some("SUCCESS" | "WAIT_SELLER_CONFIRM_GOODS" | "WAIT_BUYER_RETURN_GOODS")
            ) && !CLOSED.contains(&o["status"].as_str().unwrap_or(""))
                && !SENT.contains(&o["status"].as_str().unwrap_or(""))
        })
        .map(|o| {
            let sku = opt(&o["outer_sku_id"]).or_else(|| opt(&o["outer_iid"]));
            LineInput {
                identifier: if sku.is_none() {
                    opt(&o["sku_id"]).or_else(|| opt(&o["num_iid"]))
                } else {
                    None
                },
                sku,
                title: opt(&o["title"]),
                quantity: o["num"]
                    .as_i64()
                    .or_else(|| o["num"].as_str().and_then(|n| n.parse().ok()))
                    .unwrap_or(0),
                unit_price: opt(&o["price"]).unwrap_or_else(|| "0".into()),
                weight_grams: None,
                hs_code: None,
                origin_country: None,
                external_line_id: opt(&o["oid"]),
            }
        })
        .collect::<Vec<_>>();
    let street = ["receiver_district", "receiver_town", "receiver_address"]
        .iter()
        .filter_map(|k| opt(&t[*k]))
        .collect::<Vec<_>>()
        .join(" ");
    let tid = opt(&t["tid"])?;
    Some(OrderInput {
        channel: "taobao".into(),
        shop: shop.to_owned(),
        external_id: tid.clone(),
        order_number: Some(tid),
        updated_at: rfc3339(&t["modified"]),
        placed_at: rfc3339(&t["created"]),
        paid_at: rfc3339(&t["pay_time"]),
        service_level: None,
        currency: "CNY".into(),
        total: opt(&t["payment"]).unwrap_or_else(|| "0".into()),
        buyer: Buyer {
            name: opt(&t["buyer_nick"]),
            email: None,
            phone: None,
        },
        ship_to: ShipTo {
            name: opt(&t["receiver_name"]).unwrap_or_default(),
            company: None,
            phone: opt(&t["receiver_mobile"]).or_else(|| opt(&t["receiver_phone"])),
            email: None,
            street1: street,
            street2: None,
            city: opt(&t["receiver_city"]).unwrap_or_default(),
            state: opt(&t["receiver_state"]),
            postal_code: opt(&t["receiver_zip"]),
            // Mainland trades leave the country empty.
            country: opt(&t["receiver_country"])
                .filter(|c| c.len() == 2)
                .unwrap_or_else(|| "CN".into()),
        },
        lines,
    })
}

/// TOP's logistics company code for a carrier.
fn company_code(carrier: &str) -> String {
    match carrier.to_ascii_lowercase().as_str() {
        "sf" | "sf_express" | "sfexpress" => "SF".into(),
        "dhl" | "dhl_express" => "DHL".into(),
        "fedex" => "FEDEX".into(),
        "ups" => "UPS".into(),
        "usps" => "USPS".into(),
        other => other.to_ascii_uppercase(),
    }
}

#[async_trait::async_trait]
impl Connector for Taobao {
    async fn page(
        &self,
        shop: &Shop,
        from_ms: i64,
        to_ms: i64,
        next: Option<String>,
    ) -> Result<Page, ChannelError> {
        let page_no: u32 = next.as_deref().and_then(|n| n.parse().ok()).unwrap_or(1);
        // Second precision, widened outwards: the window's edges are never missed.
        let answer = self
            .call(
                shop,
                "taobao.trades.sold.increment.get",
                &[
                    ("fields", FIELDS.into()),
                    ("start_modified", top_time(from_ms.div_euclid(1000) * 1000)),
                    (
                        "end_modified",
                        top_time((to_ms + 999).div_euclid(1000) * 1000),
                    ),
                    ("page_no", page_no.to_string()),
                    ("page_size", "100".into()),
                    ("use_has_next", "true".into()),
                ],
            )
            .await?;
        let mut page = Page {
            next: (answer["has_next"] == Value::Bool(true)).then(|| (page_no + 1).to_string()),
            ..Page::default()
        };
        for trade in answer["trades"]["trade"].as_array().into_iter().flatten() {
            take(&shop.shop, trade, &mut page);
        }
        Ok(page)
    }

    async fn fulfil(&self, shop: &Shop, f: &Fulfilment) -> Result<(), ChannelError> {
        let answer = self
            .call(
                shop,
                "taobao.logistics.offline.send",
                &[
                    ("tid", f.external_id.clone()),
                    ("out_sid", f.tracking_number.clone()),
                    ("company_code", company_code(&f.carrier)),
                ],
            )
            .await?;
        match answer["shipping"]["is_success"] {
            Value::Bool(true) => Ok(()),
            _ => Err(ChannelError::Refused(format!(
                "the trade was not marked sent: {answer}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paid_trades_not_yet_sent_are_taken_to_ship() {
        let answer: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/channels/taobao/trade_fullinfo_get.json"
        ))
        .unwrap();
        let trade = &answer["trade_fullinfo_get_response"]["trade"];
        let page_of = |status: &str| {
            let mut t = trade.clone();
            t["status"] = Value::from(status);
            let mut page = Page::default();
            take("shop", &t, &mut page);
            (page.orders.len(), page.cancelled)
        };
        assert_eq!(page_of("WAIT_SELLER_SEND_GOODS"), (1, vec![]));
        assert_eq!(page_of("SELLER_CONSIGNED_PART"), (1, vec![]));
        // Sent in part: the sub-orders sent already are left out.
        let mut t = trade.clone();
        t["status"] = Value::from("SELLER_CONSIGNED_PART");
        let mut sent = t["orders"]["order"][0].clone();
        sent["status"] = Value::from("WAIT_BUYER_CONFIRM_GOODS");
        sent["outer_sku_id"] = Value::from("TB-SKU-SENT");
        t["orders"]["order"].as_array_mut().unwrap().push(sent);
        let order = to_order("shop", &t).unwrap();
        let skus: Vec<_> = order.lines.iter().map(|l| l.sku.as_deref()).collect();
        assert_eq!(skus, [Some("TB-SKU-1")]);
        for status in [
            "WAIT_BUYER_PAY",
            "WAIT_BUYER_CONFIRM_GOODS",
            "TRADE_FINISHED",
        ] {
            assert_eq!(page_of(status), (0, vec![]), "{status}");
        }
        assert_eq!(
            page_of("TRADE_CLOSED_BY_TAOBAO"),
            (0, vec!["192364827791084".to_owned()])
        );
    }

    #[test]
    fn signs_sorted_names_and_values_with_the_app_secret() {
        let params: BTreeMap<String, String> = [("b", "2"), ("a", "1"), ("sign", "x")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let expected: String = carriers::signing::hmac_sha256(b"secret", b"a1b2")
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert_eq!(sign("secret", &params), expected);
        assert_eq!(expected.len(), 64);
    }

    #[test]
    fn times_are_beijing_time() {
        assert_eq!(top_time(0), "1970-01-01 08:00:00");
        assert_eq!(
            rfc3339(&Value::from("2026-12-01 10:00:00")).as_deref(),
            Some("2026-12-01T10:00:00+08:00")
        );
        assert_eq!(rfc3339(&Value::from("yesterday")), None);
    }

    #[test]
    fn call_limits_wait_and_bad_sessions_are_refused() {
        let limited = serde_json::json!({"code": 7, "msg": "App Call Limited",
            "sub_code": "accesscontrol.limited-by-app-access-count",
            "sub_msg": "This ban will last for 12 more seconds"});
        assert!(matches!(
            top_error(&limited),
            ChannelError::RateLimited(d) if d == Duration::from_secs(12)
        ));
        let session = serde_json::json!({"code": 27, "msg": "Invalid session"});
        assert!(matches!(top_error(&session), ChannelError::Refused(_)));
        let down = serde_json::json!({"code": 15, "msg": "Remote service error",
            "sub_code": "isp.trade-service-unavailable"});
        assert!(matches!(top_error(&down), ChannelError::Unavailable(_)));
    }
}
