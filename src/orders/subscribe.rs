//! Order messages by subscription: a marketplace's broker delivers thin messages that name a
//! trade (`taobao_trade_TradeCreate`, `…BuyerPay`, `…Close`, refunds); each names the trade that
//! changed, the trade is read whole from the marketplace, and ingested like a pulled page (the
//! natural key and the content hash make repeats no-ops, a closed trade cancels its order).
//!
//! The consumer joins the group the marketplace assigned, with the SASL user it handed out, and
//! commits offsets only after the batch's trades were ingested: a batch whose trades could not
//! be read (the marketplace down, a call limit) is read again; a message that names no trade is
//! counted and passed over, so one bad message never blocks the topic.

use super::connectors::{ChannelError, Page};
use super::{OrderError, OrdersService};
use crate::settings::OrderSubscription;
use crate::store::StoreError;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::Message;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// How many trades a marketplace read is retried for before the batch is left for later.
const READ_TRIES: u32 = 3;
/// After the first message, how long each further one of a batch is waited for.
const TOP_UP_WAIT: Duration = Duration::from_millis(5);

/// What a message says: the marketplace's topic and the trade it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeMessage {
    pub topic: String,
    pub tid: String,
}

/// Reads a Taobao/Tmall message-service message: `{"topic": "taobao_trade_TradeCreate",
/// "content": "{\"tid\": 192364827791084, …}", …}`, `content` a JSON string (or an object).
/// Ids are 64-bit integers, read exactly (never through a float). `None`: no trade named.
pub fn parse_tmc(payload: &[u8]) -> Option<TradeMessage> {
    let message: Value = serde_json::from_slice(payload).ok()?;
    let message = if message["message"].is_object() {
        &message["message"]
    } else {
        &message
    };
    let content = match &message["content"] {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        v @ Value::Object(_) => v.clone(),
        _ => return None,
    };
    let tid = match &content["tid"] {
        Value::Number(n) if n.is_u64() => n.to_string(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.clone(),
        _ => return None,
    };
    Some(TradeMessage {
        topic: message["topic"].as_str().unwrap_or_default().to_owned(),
        tid,
    })
}

pub struct Subscription {
    orders: OrdersService,
    consumer: Arc<StreamConsumer>,
    shop: String,
    topic: String,
}

impl Subscription {
    pub fn new(orders: OrdersService, settings: &OrderSubscription) -> anyhow::Result<Arc<Self>> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &settings.brokers)
            .set("client.id", "shipgate-orders")
            .set("group.id", &settings.group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest");
        if let Some(sasl) = &settings.sasl {
            crate::events::kafka::sasl_config(&mut config, sasl);
        }
        let consumer: StreamConsumer = config
            .create()
            .map_err(|e| anyhow::anyhow!("orders.subscriptions ({}): {e}", settings.topic))?;
        consumer
            .subscribe(&[settings.topic.as_str()])
            .map_err(|e| anyhow::anyhow!("orders.subscriptions ({}): {e}", settings.topic))?;
        Ok(Arc::new(Self {
            orders,
            consumer: Arc::new(consumer),
            shop: settings.shop.clone(),
            topic: settings.topic.clone(),
        }))
    }

    /// Takes up to `max` messages (waiting at most `wait` for the first), ingests the trades they
    /// name and commits; how many messages were taken.
    pub async fn run_once(&self, max: usize, wait: Duration) -> Result<usize, OrderError> {
        let mut tids: Vec<String> = Vec::new();
        let mut spans = crate::events::kafka::Spans::default();
        let mut taken = 0;
        let mut wait = wait;
        while taken < max.max(1) {
            let Ok(message) = tokio::time::timeout(wait, self.consumer.recv()).await else {
                break;
            };
            let message = message.map_err(StoreError::decode)?;
            let (partition, offset) = (message.partition(), message.offset());
            spans.note(message.topic(), partition, offset);
            taken += 1;
            wait = TOP_UP_WAIT;
            match message.payload().and_then(parse_tmc) {
                Some(m) => {
                    metrics::counter!("shipgate_order_messages_total", "topic" => m.topic.clone())
                        .increment(1);
                    if !tids.contains(&m.tid) {
                        tids.push(m.tid);
                    }
                }
                None => {
                    metrics::counter!("shipgate_order_messages_skipped_total").increment(1);
                    tracing::warn!(topic = %self.topic, partition, offset,
                        "an order message names no trade: passed over");
                }
            }
        }
        if taken == 0 {
            return Ok(0);
        }
        match self.ingest(&tids).await {
            Ok(()) => {
                // Ingested: a commit that fails only means the messages come again (and change
                // nothing).
                if let Err(e) = spans.commit(&self.consumer).await {
                    tracing::warn!(topic = %self.topic, error = %e, "committing order message offsets");
                }
                Ok(taken)
            }
            Err(e) => {
                spans.rewind(&self.consumer).await;
                Err(e)
            }
        }
    }

    /// Reads each trade whole and ingests them as one page.
    async fn ingest(&self, tids: &[String]) -> Result<(), OrderError> {
        if tids.is_empty() {
            return Ok(());
        }
        let shop =
            self.orders.shop_by_id(&self.shop).await?.ok_or_else(|| {
                OrderError::NotFound(format!("shop {} is not connected", self.shop))
            })?;
        let mut page = Page::default();
        for tid in tids {
            let mut tries = 0;
            let read = loop {
                tries += 1;
                match self.orders.connectors.taobao.trade(&shop, tid).await {
                    Ok(read) => break Some(read),
                    Err(ChannelError::Refused(why)) => {
                        // This trade will not read (gone, not the shop's): the others still go in.
                        let why = format!("trade {tid}: {why}");
                        tracing::warn!(shop = %shop.id, %why, "an order message's trade");
                        self.orders.note_shop_error(&shop.id, &why).await?;
                        break None;
                    }
                    Err(ChannelError::RateLimited(wait)) if tries < READ_TRIES => {
                        tokio::time::sleep(wait.min(Duration::from_secs(5))).await;
                    }
                    Err(ChannelError::Unavailable(_)) if tries < READ_TRIES => {
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(tries))).await;
                    }
                    Err(e) => return Err(OrderError::GatewayUnavailable(e.to_string())),
                }
            };
            if let Some(read) = read {
                page.orders.extend(read.orders);
                page.cancelled.extend(read.cancelled);
            }
        }
        self.orders
            .take_page(&shop, page.orders, page.cancelled)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_trade_a_message_names() {
        let content = r#"{"buyer_nick":"b","payment":"120.00","oid":9223372036854775807,"tid":9223372036854775807,"type":"guarantee_trade","seller_nick":"s"}"#;
        let message = serde_json::json!({"topic": "taobao_trade_TradeCreate", "content": content,
            "id": 1, "user_nick": "s"});
        let m = parse_tmc(message.to_string().as_bytes()).expect("a trade");
        assert_eq!(m.topic, "taobao_trade_TradeCreate");
        assert_eq!(m.tid, "9223372036854775807", "exact above 2^53");
        let object = serde_json::json!({"topic": "taobao_refund_RefundCreated",
            "content": {"tid": "192364827791084", "refund_id": 7}});
        assert_eq!(
            parse_tmc(object.to_string().as_bytes()).map(|m| m.tid),
            Some("192364827791084".into())
        );
        for bad in [
            &b"not json"[..],
            br#"{"topic":"taobao_trade_TradeCreate","content":"{}"}"#,
            br#"{"topic":"t","content":"{\"tid\":1.5}"}"#,
            br#"{"topic":"t","content":"{\"tid\":\"12a\"}"}"#,
            br#"{"topic":"t"}"#,
        ] {
            assert_eq!(parse_tmc(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
