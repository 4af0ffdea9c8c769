//! The orders service as this instance runs it: its gateway (this process's, or another
//! instance's over HTTP with the service key), and its background step.

use crate::inventory::InventoryService;
use crate::orders::OrdersService;
use crate::orders::gateway::{Gateway, Http, InProcess};
use crate::settings::Settings;
use crate::store::Db;
use crate::waybills::WaybillService;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn orders(
    settings: &Settings,
    db: &Db,
    inventory: &InventoryService,
    waybills: &WaybillService,
) -> anyhow::Result<OrdersService> {
    let o = &settings.orders;
    let gateway: Arc<dyn Gateway> = match (o.gateway_url.trim(), &o.gateway_service_key) {
        ("", _) => Arc::new(InProcess::new(db.clone(), waybills.clone())),
        (url, Some(key)) => Arc::new(Http::new(
            url,
            key.clone(),
            Duration::from_millis(o.gateway_timeout_ms),
        )?),
        (_, None) => {
            anyhow::bail!("orders.gateway_service_key is required with orders.gateway_url")
        }
    };
    OrdersService::new(db.clone(), inventory.clone(), gateway, o.clone())
}

/// The bus the consumers take their events from: the broker's consumer groups with
/// `events.kafka.consume`, else the outbox table.
pub(super) fn consumer_bus(
    settings: &Settings,
    db: &Db,
    outbox: &crate::events::DbBus,
    idle: Duration,
) -> Arc<dyn crate::events::EventBus> {
    match &settings.events.kafka {
        Some(kafka) if kafka.consume => {
            Arc::new(crate::events::kafka::KafkaBus::new(db.clone(), kafka, idle))
        }
        _ => Arc::new(outbox.clone()),
    }
}

/// The marketplaces' order-message subscriptions (`orders.subscriptions`).
pub(super) fn subscriptions(
    settings: &Settings,
    orders: &OrdersService,
) -> anyhow::Result<Vec<Arc<crate::orders::subscribe::Subscription>>> {
    settings
        .orders
        .subscriptions
        .iter()
        .map(|s| crate::orders::subscribe::Subscription::new(orders.clone(), s))
        .collect()
}
