//! The sandbox carrier: simulated in-process, no network, no credentials.
//!
//! It issues real-looking waybill numbers (a prefix, a 16-digit serial and a GS1 mod-10 check
//! digit), quotes a deterministic price, remembers shipments by the gateway's idempotency key so
//! they can be looked up again, and fails on purpose when a trigger word appears in the reference
//! number or the consignee's name:
//!
//! | trigger          | behaviour                                                                  |
//! |------------------|----------------------------------------------------------------------------|
//! | `SANDBOX_REJECT` | definite rejection `SBX-4001` (nothing is created)                         |
//! | `SANDBOX_TIMEOUT`| creates the shipment, then answers with a timeout (the ambiguous failure)  |
//! | `SANDBOX_SLOW`   | answers after `slow` (1.5 s by default)                                    |
//! | `SANDBOX_DOWN`   | the carrier cannot be reached (nothing is created)                         |
//! | `SANDBOX_PANIC`  | the adapter panics, as a bug would                                         |

mod numbers;
pub mod push;
pub mod timeline;

use crate::{CarrierClient, CarrierError, Charge, Created, Shipment};
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use numbers::{check_digit, is_valid_number};

/// Services the sandbox offers; the gateway's channel table maps public channels onto them.
pub const SERVICE_EXPRESS: &str = "EXPRESS";
pub const SERVICE_LINEHAUL_US: &str = "LINEHAUL_US";

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// How long `SANDBOX_SLOW` takes to answer.
    pub slow: Duration,
    /// How fast parcels move: 1.0 is real time, 3600 makes a journey hour last one second.
    pub clock_speed: f64,
    /// Shipments remembered for lookups by reference (the newest; a lookup follows an
    /// ambiguous failure within seconds), so memory stays bounded under any create load.
    pub remembered: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            slow: Duration::from_millis(1500),
            clock_speed: 1.0,
            remembered: 10_000,
        }
    }
}

/// Shipments by idempotency key, the oldest forgotten past the bound.
#[derive(Default)]
struct Remembered {
    by_key: HashMap<String, Created>,
    order: VecDeque<String>,
}

pub struct SandboxCarrier {
    config: SandboxConfig,
    serials: numbers::SerialSource,
    shipments: Mutex<Remembered>,
    create_calls: AtomicU64,
    lookup_calls: AtomicU64,
    track_calls: AtomicU64,
}

impl SandboxCarrier {
    pub fn new(config: SandboxConfig) -> Self {
        Self {
            config,
            serials: numbers::SerialSource::default(),
            shipments: Mutex::new(Remembered::default()),
            create_calls: AtomicU64::new(0),
            lookup_calls: AtomicU64::new(0),
            track_calls: AtomicU64::new(0),
        }
    }

    /// How many create calls reached this carrier (what a real carrier would bill for).
    pub fn create_calls(&self) -> u64 {
        self.create_calls.load(Ordering::SeqCst)
    }

    pub fn lookup_calls(&self) -> u64 {
        self.lookup_calls.load(Ordering::SeqCst)
    }

    /// How many tracking requests reached this carrier.
    pub fn track_calls(&self) -> u64 {
        self.track_calls.load(Ordering::SeqCst)
    }

    /// How many shipments exist at the carrier.
    pub fn shipment_count(&self) -> usize {
        self.lock().by_key.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Remembered> {
        // A poisoned map is still a consistent map: entries are inserted whole.
        self.shipments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn create_now(&self, shipment: &Shipment) -> Result<Created, CarrierError> {
        let prefix = match shipment.service.as_str() {
            SERVICE_EXPRESS => "SBX",
            SERVICE_LINEHAUL_US => "SBL",
            other => {
                return Err(CarrierError::Rejected {
                    code: "SBX-4004".into(),
                    message: format!("unknown service code {other}"),
                });
            }
        };
        let number = numbers::waybill_number(prefix, self.serials.next());
        let created = Created {
            charge: Some(quote(shipment)),
            ..Created::new(number.clone(), number)
        };
        let mut remembered = self.lock();
        let key = shipment.idempotency_key.clone();
        if remembered
            .by_key
            .insert(key.clone(), created.clone())
            .is_none()
        {
            remembered.order.push_back(key);
        }
        while remembered.order.len() > self.config.remembered.max(1) {
            if let Some(oldest) = remembered.order.pop_front() {
                remembered.by_key.remove(&oldest);
            }
        }
        Ok(created)
    }
}

fn trigger(shipment: &Shipment, word: &str) -> bool {
    shipment.reference_number.contains(word) || shipment.consignee.name.contains(word)
}

/// Deterministic price: a base fee per service, a rate per started 500 g, and a fee per extra parcel.
pub fn quote(shipment: &Shipment) -> Charge {
    let (base, per_half_kg) = match shipment.service.as_str() {
        SERVICE_LINEHAUL_US => (680_u64, 210_u64),
        _ => (1250, 420),
    };
    let half_kgs = shipment.total_weight_grams().div_ceil(500).max(1);
    let extra_parcels = shipment.parcels.len().saturating_sub(1) as u64;
    let cents = base + per_half_kg * half_kgs + 100 * extra_parcels;
    Charge {
        amount: format!("{}.{:02}", cents / 100, cents % 100),
        currency: "USD".into(),
    }
}

#[async_trait]
impl CarrierClient for SandboxCarrier {
    fn id(&self) -> crate::CarrierId {
        crate::CarrierId::Sandbox
    }

    async fn create(&self, shipment: &Shipment) -> Result<Created, CarrierError> {
        if trigger(shipment, "SANDBOX_DOWN") {
            return Err(CarrierError::Unavailable(
                "sandbox: connection refused".into(),
            ));
        }
        self.create_calls.fetch_add(1, Ordering::SeqCst);
        if trigger(shipment, "SANDBOX_PANIC") {
            panic!("sandbox: simulated adapter bug");
        }
        if trigger(shipment, "SANDBOX_REJECT") {
            return Err(CarrierError::Rejected {
                code: "SBX-4001".into(),
                message: "Consignee address could not be validated".into(),
            });
        }
        if trigger(shipment, "SANDBOX_SLOW") {
            tokio::time::sleep(self.config.slow).await;
        }
        let created = self.create_now(shipment)?;
        if trigger(shipment, "SANDBOX_TIMEOUT") {
            return Err(CarrierError::Timeout(
                "sandbox: no answer after the shipment was created".into(),
            ));
        }
        Ok(created)
    }

    async fn lookup_by_reference(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<Created>, CarrierError> {
        self.lookup_calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.lock().by_key.get(idempotency_key).cloned())
    }

    async fn track_shipment(
        &self,
        number: &str,
        created_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<crate::TrackingUpdate, CarrierError> {
        self.track_calls.fetch_add(1, Ordering::SeqCst);
        if !is_valid_number(number) {
            return Err(CarrierError::Rejected {
                code: "SBX-4040".into(),
                message: format!("no shipment {number}"),
            });
        }
        Ok(timeline::progress(
            number,
            created_at,
            chrono::Utc::now(),
            self.config.clock_speed,
        ))
    }
}

#[cfg(test)]
mod tests;
