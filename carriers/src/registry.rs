use crate::push::PushReceiver;
use crate::{CarrierClient, CarrierId};
use std::collections::HashMap;
use std::sync::Arc;

/// The carriers this gateway instance talks to, by id.
#[derive(Clone, Default)]
pub struct Registry {
    carriers: HashMap<CarrierId, Arc<dyn CarrierClient>>,
}

impl Registry {
    pub fn insert(&mut self, carrier: Arc<dyn CarrierClient>) {
        self.carriers.insert(carrier.id(), carrier);
    }

    pub fn get(&self, id: CarrierId) -> Option<&Arc<dyn CarrierClient>> {
        self.carriers.get(&id)
    }

    pub fn ids(&self) -> impl Iterator<Item = CarrierId> + '_ {
        self.carriers.keys().copied()
    }
}

/// The push receiver of a carrier, if it pushes.
pub fn push_receiver(carrier: CarrierId) -> Option<&'static dyn PushReceiver> {
    match carrier {
        CarrierId::Sandbox => Some(&crate::sandbox::push::SandboxPush),
        CarrierId::Fedex => Some(&crate::fedex::push::FedexPush),
        CarrierId::SfExpress => Some(&crate::sf_express::push::SfPush),
        CarrierId::DhlExpress | CarrierId::Ups | CarrierId::Usps => None,
    }
}

/// Carriers whose pushes the gateway reads.
pub fn pushing_carriers() -> impl Iterator<Item = CarrierId> {
    CarrierId::ALL
        .into_iter()
        .filter(|c| push_receiver(*c).is_some())
}
