//! shipgate's carrier seam: the canonical shipment model, the carrier trait and the carriers.
//!
//! Nothing here knows about HTTP servers or databases: the service crate validates input into a
//! [`Shipment`], routes it to a [`CarrierClient`] by channel, and stores what comes back.

pub mod breaker;
pub mod dhl_express;
pub mod error;
pub mod fedex;
pub mod http;
mod id;
pub mod model;
pub mod money;
pub mod push;
pub mod registry;
pub mod sandbox;
pub mod sf_express;
pub mod signing;
pub mod tracking;
pub mod ups;
pub mod usps;

pub use error::CarrierError;
pub use id::{CarrierId, UnknownCarrier};
pub use model::{
    Address, Charge, Created, Customs, CustomsItem, Label, LabelFormat, Parcel, Shipment,
};
pub use registry::{Registry, push_receiver, pushing_carriers};
pub use tracking::{LastMile, TrackingEvent, TrackingStatus, TrackingUpdate};

use async_trait::async_trait;

/// One carrier as the gateway sees it: create a shipment, find one again by our reference.
///
/// `idempotency_key` in [`Shipment`] is the gateway's own reference for one attempt chain; the
/// carrier stores it so that an ambiguous failure can be resolved with
/// [`CarrierClient::lookup_by_reference`] instead of creating a second shipment.
#[async_trait]
pub trait CarrierClient: Send + Sync + 'static {
    fn id(&self) -> CarrierId;

    /// Creates the shipment. An error that [`CarrierError::is_ambiguous`] may have created it.
    async fn create(&self, shipment: &Shipment) -> Result<Created, CarrierError>;

    /// Finds a shipment created earlier under `idempotency_key`.
    async fn lookup_by_reference(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<Created>, CarrierError>;

    /// Cancels (voids) a shipment by its waybill number.
    async fn cancel(&self, _waybill_number: &str) -> Result<(), CarrierError> {
        Err(CarrierError::NotSupported("cancel"))
    }

    /// The carrier's tracking events for a number.
    async fn track(&self, _number: &str) -> Result<Vec<TrackingEvent>, CarrierError> {
        Err(CarrierError::NotSupported("tracking"))
    }

    /// What the poller asks: the shipment's events and last-mile hand-over, if any. `created_at`
    /// is when the gateway created it (the sandbox moves its parcels from there).
    async fn track_shipment(
        &self,
        number: &str,
        _created_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<TrackingUpdate, CarrierError> {
        self.track(number).await.map(TrackingUpdate::from)
    }
}
