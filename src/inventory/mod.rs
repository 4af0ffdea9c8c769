//! The inventory service: a tenant's SKUs and warehouses, stock per SKU and warehouse kept as
//! append-only movements, and allocations that reserve stock for an order.
//!
//! It owns the `inv_*` tables and reaches nothing else's; every change appends its events to
//! the outbox (`events`) in the same transaction. Stock rows carry running counters, changed
//! only by the statement that appends the movement explaining them, so
//! `on_hand = Σ on_hand_delta` and `reserved = Σ active reservations` hold at every commit
//! ([`InventoryService::verify`] checks both). See docs/inventory.md.

mod allocate;
pub mod ats;
mod batch;
mod catalog;
pub mod channels;
mod close;
mod error;
mod movements;
pub mod plan;
mod reserve;
mod settle;
mod verify;

pub use catalog::{NewSku, NewWarehouse};

pub use error::InventoryError;

use crate::store::Db;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Event types inventory publishes (and tenants may subscribe webhooks to).
pub mod event_types {
    pub const STOCK_CHANGED: &str = "inventory.stock_changed";
    pub const LOW_STOCK: &str = "inventory.low_stock";
    pub const ALLOCATION_CREATED: &str = "inventory.allocation_created";
    pub const ALLOCATION_RELEASED: &str = "inventory.allocation_released";
    pub const ALLOCATION_COMMITTED: &str = "inventory.allocation_committed";
    pub const AVAILABLE_TO_SELL: &str = "inventory.available_to_sell";
    pub const ALL: [&str; 6] = [
        STOCK_CHANGED,
        LOW_STOCK,
        ALLOCATION_CREATED,
        ALLOCATION_RELEASED,
        ALLOCATION_COMMITTED,
        AVAILABLE_TO_SELL,
    ];
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sku {
    pub sku: String,
    pub name: Option<String>,
    pub attributes: serde_json::Value,
    pub low_stock_threshold: Option<i64>,
    pub created_at: String,
}

/// An area a warehouse serves, in the return rule's terms.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Area {
    pub country: String,
    #[serde(default)]
    pub states: Vec<String>,
    /// Inclusive prefix ranges (`"900-961"`) or single prefixes.
    #[serde(default)]
    pub postcode_ranges: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Warehouse {
    pub code: String,
    pub name: Option<String>,
    pub country: String,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub priority: i64,
    pub serves: Vec<Area>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<WarehouseAddress>,
    pub created_at: String,
}

/// The street address a warehouse ships from (the shipper of its waybills).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarehouseAddress {
    pub name: String,
    #[serde(default)]
    pub company: Option<String>,
    pub phone: String,
    pub street1: String,
    #[serde(default)]
    pub street2: Option<String>,
    pub city: String,
}

/// Stock of one SKU in one warehouse.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StockLevel {
    pub sku: String,
    pub warehouse: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub safety_stock: i64,
    /// on hand − reserved − safety stock (may be negative when safety stock exceeds the rest).
    pub available: i64,
}

impl StockLevel {
    fn new(sku: String, warehouse: String, on_hand: i64, reserved: i64, safety: i64) -> Self {
        Self {
            sku,
            warehouse,
            on_hand,
            reserved,
            safety_stock: safety,
            available: on_hand - reserved - safety,
        }
    }
}

/// What a movement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MovementKind {
    Receive,
    Adjust,
    Reserve,
    Release,
    Commit,
    Restock,
}

impl MovementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receive => "RECEIVE",
            Self::Adjust => "ADJUST",
            Self::Reserve => "RESERVE",
            Self::Release => "RELEASE",
            Self::Commit => "COMMIT",
            Self::Restock => "RESTOCK",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Receive,
            Self::Adjust,
            Self::Reserve,
            Self::Release,
            Self::Commit,
            Self::Restock,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Movement {
    pub id: String,
    pub sku: String,
    pub warehouse: String,
    #[serde(rename = "type")]
    pub kind: MovementKind,
    pub on_hand_delta: i64,
    pub reserved_delta: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub created_at: String,
}

/// A movement asked for through the API (receive, adjust after a count, restock a return).
#[derive(Debug, Clone)]
pub struct MovementRequest {
    pub kind: MovementKind,
    pub sku: String,
    pub warehouse: String,
    /// Receive and restock: units in. Adjust: the counted on-hand quantity.
    pub quantity: i64,
    pub reason: Option<String>,
    pub request_id: Option<String>,
}

/// Where an allocation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AllocationState {
    Active,
    Released,
    Committed,
}

impl AllocationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Released => "released",
            Self::Committed => "committed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "released" => Self::Released,
            "committed" => Self::Committed,
            _ => Self::Active,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub reservation_id: String,
    pub sku: String,
    pub quantity: i64,
    /// ACTIVE, RELEASED or COMMITTED.
    pub state: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WarehousePlan {
    pub warehouse: String,
    pub lines: Vec<Reservation>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Allocation {
    pub allocation_id: String,
    pub state: AllocationState,
    pub warehouses: Vec<WarehousePlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: String,
}

/// A line of an allocation request: a SKU, or a channel's identifier mapped to one.
#[derive(Debug, Clone)]
pub enum Item {
    Sku(String),
    Channel { channel: String, identifier: String },
}

#[derive(Debug, Clone)]
pub struct AllocationRequest {
    /// The caller's id: the same id again returns the first allocation.
    pub allocation_id: String,
    pub lines: Vec<(Item, i64)>,
    pub country: String,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// Released on its own after this long unless committed (`None`: the configured default).
    pub expires_in: Option<Duration>,
}

#[derive(Clone)]
pub struct InventoryService {
    db: Db,
    /// How long an allocation holds its reservations by default (`None`: until released).
    default_expiry: Option<Duration>,
    /// Whether channel URLs may be on loopback or private networks (tests, closed networks).
    allow_private_channels: bool,
    /// Places allocations in batches; started with the first one.
    batcher: Arc<OnceLock<batch::Batcher>>,
}

impl InventoryService {
    pub fn new(db: Db, default_expiry: Option<Duration>) -> Self {
        Self {
            db,
            default_expiry,
            allow_private_channels: false,
            batcher: Arc::default(),
        }
    }

    pub fn allowing_private_channels(mut self, allow: bool) -> Self {
        self.allow_private_channels = allow;
        self
    }
}

/// Commit (the stock left with a waybill) or release (the order was cancelled, or expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Close {
    Release,
    Commit,
}

impl Close {
    fn kind(self) -> MovementKind {
        match self {
            Self::Release => MovementKind::Release,
            Self::Commit => MovementKind::Commit,
        }
    }

    fn reservation_state(self) -> &'static str {
        match self {
            Self::Release => "released",
            Self::Commit => "committed",
        }
    }

    fn event(self) -> &'static str {
        match self {
            Self::Release => event_types::ALLOCATION_RELEASED,
            Self::Commit => event_types::ALLOCATION_COMMITTED,
        }
    }
}

/// An allocation to close: its active reservations (in one warehouse, if named), with a note
/// (the release's reason, or the commit's reference) kept as the allocation's reason.
#[derive(Debug, Clone)]
pub struct Closing {
    pub tenant: String,
    pub id: String,
    pub warehouse: Option<String>,
    pub note: Option<String>,
}
