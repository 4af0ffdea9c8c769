use crate::CarrierClient;
use std::collections::HashMap;
use std::sync::Arc;

/// The carriers this gateway instance talks to, by id.
#[derive(Clone, Default)]
pub struct Registry {
    carriers: HashMap<&'static str, Arc<dyn CarrierClient>>,
}

impl Registry {
    pub fn insert(&mut self, carrier: Arc<dyn CarrierClient>) {
        self.carriers.insert(carrier.id(), carrier);
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn CarrierClient>> {
        self.carriers.get(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.carriers.keys().copied()
    }
}
