//! Order messages by subscription: a marketplace's Taobao message-service messages on a broker
//! that signs clients in with SASL SCRAM-SHA-512, consumed with the topic, group, user name and
//! password from the configuration (the distributor guide's set-up); each names a trade, read
//! whole from the mock Taobao Open Platform and ingested once (repeats change nothing, a closed
//! trade cancels its order, a bad message is passed over). A wrong password takes nothing and
//! loses nothing.

use super::channels::{connect, fixture};
use super::{get_order, warehouses_and_stock};
use crate::helpers::{Backend, TestApp, spawn_app_on, spawn_app_with};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use shipgate::settings::{OrderSubscription, SaslSettings};
use std::time::Duration;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TID: &str = "192364827791084";
const CLOSED_TID: &str = "192364827791999";

/// The test command's SCRAM broker and its user.
fn scram() -> (String, SaslSettings) {
    let var = |name: &str| std::env::var(name).expect("needs!(KafkaScram)");
    let sasl = SaslSettings {
        mechanism: "SCRAM-SHA-512".into(),
        username: var("TEST_KAFKA_SCRAM_USER"),
        password: var("TEST_KAFKA_SCRAM_PASSWORD").into(),
    };
    (var("TEST_KAFKA_SCRAM_BROKERS"), sasl)
}

/// A client signed in as shipgate's subscriptions are.
fn client(brokers: &str, sasl: &SaslSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    shipgate::events::kafka::sasl_config(&mut config, sasl);
    config
}

/// A new topic of two partitions on the SCRAM broker (tansu does not create topics on use).
async fn new_topic(brokers: &str, sasl: &SaslSettings) -> String {
    let topic = format!("tmc.{}", uuid::Uuid::new_v4().simple());
    let admin: AdminClient<DefaultClientContext> =
        client(brokers, sasl).create().expect("admin client");
    for made in admin
        .create_topics(
            [&NewTopic::new(&topic, 2, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("topic")
    {
        made.expect("topic created");
    }
    topic
}

fn subscription(
    shop: &Value,
    topic: &str,
    brokers: &str,
    sasl: &SaslSettings,
) -> OrderSubscription {
    OrderSubscription {
        shop: shop["id"].as_str().unwrap().to_owned(),
        brokers: brokers.to_owned(),
        topic: topic.to_owned(),
        group: format!("distributor-{}", uuid::Uuid::new_v4().simple()),
        format: "taobao_tmc".into(),
        sasl: Some(sasl.clone()),
    }
}

/// The mock Taobao Open Platform and a shop connected to it through the API.
async fn taobao_shop(api: &TestApp) -> (MockServer, Value) {
    let top = MockServer::start().await;
    answer_trade(&top, TID, "WAIT_SELLER_SEND_GOODS", 5).await;
    answer_trade(&top, CLOSED_TID, "WAIT_SELLER_SEND_GOODS", 5).await;
    warehouses_and_stock(api, &["TB-SKU-1"], 10).await;
    let shop = connect(
        api,
        "taobao",
        "sandbox_c_20",
        json!({"baseUrl": top.uri(), "credentials": {"clientId": "12497914",
            "clientSecret": "top-secret", "accessToken": "6100e0b-session"}}),
    )
    .await;
    (top, shop)
}

/// A TMC message as the marketplace delivers it: `content` is a JSON string.
fn message(topic: &str, tid: &str) -> String {
    let sample: Value = serde_json::from_str(&fixture(
        "taobao",
        "tmc_taobao_trade_TradeCreate_content_sandbox.json",
    ))
    .unwrap();
    let mut content = sample.to_string();
    content = content.replace(TID, tid);
    json!({"topic": topic, "content": content, "id": 1, "user_nick": "sandbox_c_20",
        "pub_app_key": "12497914", "pub_time": "2026-12-01 10:01:30"})
    .to_string()
}

/// The fixture's trade under `tid` in `status`.
fn trade(tid: &str, status: &str) -> String {
    fixture("taobao", "trade_fullinfo_get.json")
        .replace(TID, tid)
        .replace("WAIT_SELLER_SEND_GOODS", status)
}

async fn answer_trade(top: &MockServer, tid: &str, status: &str, priority: u8) {
    Mock::given(method("POST"))
        .and(path("/router/rest"))
        .and(body_string_contains("method=taobao.trade.fullinfo.get"))
        .and(body_string_contains(format!("tid={tid}")))
        .and(body_string_contains("sign_method=hmac-sha256"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(trade(tid, status), "application/json"),
        )
        .with_priority(priority)
        .mount(top)
        .await;
}

async fn publish(producer: &FutureProducer, topic: &str, payloads: &[String]) {
    for payload in payloads {
        producer
            .send(
                FutureRecord::<(), String>::to(topic).payload(payload),
                Duration::from_secs(10),
            )
            .await
            .expect("published");
    }
}

async fn taobao_orders(app: &TestApp) -> Vec<Value> {
    let r = super::call(
        app,
        reqwest::Method::GET,
        "/v1/orders?channel=taobao",
        "/v1/orders",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["orders"].as_array().cloned().unwrap_or_default()
}

async fn order_messages_are_ingested_once(backend: Backend) {
    needs!(KafkaScram);
    let (brokers, sasl) = scram();
    // The shop is connected through the API; the subscription names it.
    let api = spawn_app_with(backend, |s| s.orders.allow_private_channels = true).await;
    let (top, shop) = taobao_shop(&api).await;
    let topic = new_topic(&brokers, &sasl).await;
    let subscription = subscription(&shop, &topic, &brokers, &sasl);
    let app = spawn_app_on(backend, api.database_url.clone(), |s| {
        s.orders.allow_private_channels = true;
        s.orders.subscriptions = vec![subscription];
    })
    .await;

    let producer: FutureProducer = client(&brokers, &sasl).create().expect("producer");
    publish(
        &producer,
        &topic,
        &[
            message("taobao_trade_TradeCreate", TID),
            "not a message".into(),
            message("taobao_trade_TradeBuyerPay", TID),
            message("taobao_trade_TradeCreate", CLOSED_TID),
        ],
    )
    .await;
    let found = app
        .wait_for("both trades ingested", 60, || async {
            let orders = taobao_orders(&app).await;
            (orders.len() >= 2).then_some(orders)
        })
        .await;
    assert_eq!(
        found.len(),
        2,
        "one order a trade, however many messages: {found:?}"
    );
    let order = found
        .iter()
        .find(|o| o["externalId"] == TID)
        .expect("the trade's order");
    let detail = get_order(&app, order["id"].as_str().unwrap()).await.body;
    let content = &detail["content"];
    assert_eq!(content["currency"], "CNY");
    assert_eq!(content["total"], "120");
    assert_eq!(content["placedAt"], "2026-12-01T10:00:00+08:00");
    assert_eq!(content["lines"][0]["sku"], "TB-SKU-1");
    assert_eq!(content["lines"][0]["quantity"], 2);
    assert_eq!(content["lines"][0]["externalLineId"], TID);
    assert_eq!(content["shipTo"]["country"], "CN");
    assert_eq!(content["shipTo"]["city"], "杭州市");
    assert_eq!(
        content["shipTo"]["street1"],
        "西湖区 文新街道 文一西路969号"
    );
    assert_eq!(
        detail["versions"].as_array().map(Vec::len),
        Some(1),
        "the repeat changed nothing"
    );

    // The trade closes: its message cancels the order.
    answer_trade(&top, CLOSED_TID, "TRADE_CLOSED", 1).await;
    publish(
        &producer,
        &topic,
        &[message("taobao_trade_TradeClose", CLOSED_TID)],
    )
    .await;
    let closed = found
        .iter()
        .find(|o| o["externalId"] == CLOSED_TID)
        .and_then(|o| o["id"].as_str())
        .expect("the other order")
        .to_owned();
    app.wait_for("the closed trade's order cancelled", 60, || async {
        let r = get_order(&app, &closed).await;
        (r.body["order"]["state"] == "CANCELLED").then_some(())
    })
    .await;
    // Everything was committed: nothing comes again.
    assert_eq!(app.run_background().await.messages, 0);
}

#[tokio::test]
async fn sqlite_order_messages_are_ingested_once() {
    order_messages_are_ingested_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_order_messages_are_ingested_once() {
    needs!(Postgres);
    order_messages_are_ingested_once(Backend::Postgres).await;
}

/// A subscription whose password the broker refuses takes nothing; once the password is right,
/// the same group gets every message published meanwhile.
#[tokio::test]
async fn a_refused_password_takes_nothing_and_loses_nothing() {
    needs!(KafkaScram);
    let (brokers, sasl) = scram();
    let api = spawn_app_with(Backend::Sqlite, |s| s.orders.allow_private_channels = true).await;
    let (_top, shop) = taobao_shop(&api).await;
    let topic = new_topic(&brokers, &sasl).await;
    let wrong = SaslSettings {
        password: "not-the-password".to_owned().into(),
        ..sasl.clone()
    };
    // The broker checks passwords: a producer with the wrong one cannot publish.
    let mut refused = client(&brokers, &wrong);
    refused.set("message.timeout.ms", "3000");
    let refused: FutureProducer = refused.create().expect("producer");
    let sent = refused
        .send(
            FutureRecord::<(), String>::to(&topic)
                .payload(&message("taobao_trade_TradeCreate", TID)),
            Duration::from_secs(5),
        )
        .await;
    assert!(sent.is_err(), "published with a wrong password");

    let producer: FutureProducer = client(&brokers, &sasl).create().expect("producer");
    publish(
        &producer,
        &topic,
        &[message("taobao_trade_TradeCreate", TID)],
    )
    .await;
    let right = subscription(&shop, &topic, &brokers, &sasl);
    let mut refused_subscription = right.clone();
    refused_subscription.sasl = Some(wrong);
    let app = spawn_app_on(Backend::Sqlite, api.database_url.clone(), |s| {
        s.orders.allow_private_channels = true;
        s.orders.subscriptions = vec![refused_subscription];
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.run_background().await.messages, 0);
    }
    assert!(taobao_orders(&app).await.is_empty());
    drop(app);

    let app = spawn_app_on(Backend::Sqlite, api.database_url.clone(), |s| {
        s.orders.allow_private_channels = true;
        s.orders.subscriptions = vec![right];
    })
    .await;
    let found = app
        .wait_for("the trade ingested", 60, || async {
            let orders = taobao_orders(&app).await;
            (!orders.is_empty()).then_some(orders)
        })
        .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["externalId"], TID);
}
