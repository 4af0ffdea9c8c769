//! The orders service: orders from every sales channel (the API, pull connectors, channel
//! webhooks), deduplicated on (channel, shop, external id) with versions, allocated through the
//! inventory service, shipped through the gateway (one [`gateway::Gateway`] whether it runs in
//! this process or elsewhere) and moved along by the gateway's tracking events.
//!
//! It owns the `ord_*` tables and reaches nothing else's; every transition appends its event
//! to the outbox in the same transaction. See docs/orders.md.

pub mod connectors;
mod error;
pub mod gateway;
mod ingest;
mod ingest_many;
mod input;
mod marking;
pub mod payments;
pub mod picklist;
mod plan;
mod process;
pub mod pull;
mod query;
pub mod rules;
mod ship;
pub mod shops;
mod sla;
pub mod subscribe;
pub mod tracking;
mod transitions;
mod writeback;

pub use error::OrderError;
pub use ingest::{Ingested, Outcome};
pub use input::{Buyer, LineInput, OrderInput, ShipTo};
pub use query::{OrderFilter, OrderSummary};
pub use sla::AtRisk;
pub use transitions::Action;

use crate::inventory::InventoryService;
use crate::settings::OrdersSettings;
use crate::store::Db;
use serde::Serialize;
use std::sync::Arc;

/// Event types the orders service publishes (and tenants may subscribe webhooks to).
pub mod event_types {
    pub const RECEIVED: &str = "order.received";
    pub const UPDATED: &str = "order.updated";
    pub const HELD: &str = "order.held";
    pub const ALLOCATED: &str = "order.allocated";
    pub const WAYBILL_CREATED: &str = "order.waybill_created";
    pub const SHIPPED: &str = "order.shipped";
    pub const DELIVERED: &str = "order.delivered";
    pub const EXCEPTION: &str = "order.exception";
    pub const CANCELLED: &str = "order.cancelled";
    pub const REFUNDED: &str = "order.refunded";
    pub const RETURN_UPDATED: &str = "order.return_updated";
    pub const ALL: [&str; 11] = [
        RECEIVED,
        UPDATED,
        HELD,
        ALLOCATED,
        WAYBILL_CREATED,
        SHIPPED,
        DELIVERED,
        EXCEPTION,
        CANCELLED,
        REFUNDED,
        RETURN_UPDATED,
    ];
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderState {
    Received,
    OnHold,
    Allocated,
    WaybillCreated,
    Shipped,
    Exception,
    Delivered,
    Cancelled,
    Refunded,
    ReturnAuthorized,
    ReturnReceived,
    Restocked,
    WrittenOff,
}

impl OrderState {
    pub const ALL: [OrderState; 13] = [
        Self::Received,
        Self::OnHold,
        Self::Allocated,
        Self::WaybillCreated,
        Self::Shipped,
        Self::Exception,
        Self::Delivered,
        Self::Cancelled,
        Self::Refunded,
        Self::ReturnAuthorized,
        Self::ReturnReceived,
        Self::Restocked,
        Self::WrittenOff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::OnHold => "on_hold",
            Self::Allocated => "allocated",
            Self::WaybillCreated => "waybill_created",
            Self::Shipped => "shipped",
            Self::Exception => "exception",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
            Self::ReturnAuthorized => "return_authorized",
            Self::ReturnReceived => "return_received",
            Self::Restocked => "restocked",
            Self::WrittenOff => "written_off",
        }
    }

    /// From the stored form or the public one (`ON_HOLD`, `on_hold`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
    }

    /// Before the first carrier scan: the order may still be cancelled.
    pub fn before_shipment(self) -> bool {
        matches!(
            self,
            Self::Received | Self::OnHold | Self::Allocated | Self::WaybillCreated
        )
    }
}

/// Why an order is on hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldReason {
    UnknownSku,
    UnmappedSku,
    NoStock,
    Unroutable,
    AddressProblem,
    PossibleDuplicate,
    GatewayRejected,
    Manual,
}

impl HoldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownSku => "UNKNOWN_SKU",
            Self::UnmappedSku => "UNMAPPED_SKU",
            Self::NoStock => "NO_STOCK",
            Self::Unroutable => "UNROUTABLE",
            Self::AddressProblem => "ADDRESS_PROBLEM",
            Self::PossibleDuplicate => "POSSIBLE_DUPLICATE",
            Self::GatewayRejected => "GATEWAY_REJECTED",
            Self::Manual => "MANUAL",
        }
    }
}

/// The orders service. Cheap to clone.
#[derive(Clone)]
pub struct OrdersService {
    db: Db,
    inventory: InventoryService,
    gateway: Arc<dyn gateway::Gateway>,
    connectors: pull::Connectors,
    settings: Arc<OrdersSettings>,
    /// The (channel, promise) gauges set so far, set back to zero when cleared.
    sampled: Arc<std::sync::Mutex<std::collections::BTreeSet<(String, &'static str)>>>,
}

impl OrdersService {
    pub fn new(
        db: Db,
        inventory: InventoryService,
        gateway: Arc<dyn gateway::Gateway>,
        settings: OrdersSettings,
    ) -> anyhow::Result<Self> {
        let connectors = pull::Connectors::new(
            std::time::Duration::from_millis(settings.gateway_timeout_ms),
            settings.allow_private_channels,
        )?;
        Ok(Self {
            db,
            inventory,
            gateway,
            connectors,
            settings: Arc::new(settings),
            sampled: Arc::default(),
        })
    }

    pub fn settings(&self) -> &OrdersSettings {
        &self.settings
    }

    /// The labels of an order's waybills as one PDF, through the gateway.
    pub async fn labels(
        &self,
        tenant: &str,
        numbers: &[String],
    ) -> Result<Vec<u8>, gateway::GatewayError> {
        self.gateway.labels(tenant, numbers).await
    }
}

/// The aggregate of an order's events.
pub(crate) fn aggregate(order_id: &str) -> String {
    format!("order:{order_id}")
}
