//! The create protocol on (tenant, referenceNumber):
//!
//! 1. claim the reference with an insert the database keeps unique, before calling any carrier;
//! 2. a duplicate finds the row: a different fingerprint is a conflict, a created waybill is a
//!    replay, a pending one is waited for (bounded), an unknown one is taken over;
//! 3. an attempt that takes over an unknown or abandoned row first asks the carrier for the
//!    shipment by our key and adopts it; only if the carrier has none does it create one;
//! 4. a definite carrier failure deletes the claim (nothing exists, the client may correct and
//!    retry); an ambiguous one leaves it `unknown`.

use super::WaybillError;
use super::fingerprint;
use super::validation::ValidRequest;
use crate::store::tenants::{Mode as KeyMode, Tenant};
use crate::store::waybills::{NewClaim, State, WaybillRow};
use crate::store::{Db, now_millis};
use crate::tracking::schedule::FirstPoll;
use carriers::{CarrierError, CarrierId, Charge, Registry, Shipment};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Channel {
    pub carrier: CarrierId,
    pub service: String,
}

/// Created waybills by (tenant, reference) with their fingerprint: a created waybill does not
/// change, so replays, the common duplicate, are answered without a database round trip.
type CreatedCache = moka::future::Cache<(String, String), Arc<(String, WaybillView)>>;

#[derive(Clone)]
pub struct WaybillService {
    pub(super) db: Db,
    pub(super) created: CreatedCache,
    pub(super) carriers: Registry,
    pub(super) channels: Arc<BTreeMap<String, Channel>>,
    pub(super) wait: Duration,
    pub(super) lease: Duration,
    pub(super) carrier_timeout: Duration,
    pub(super) labeler: crate::labels::Labeler,
    /// Where labels are drawn and merged: one thread per core.
    pub(super) drawing: crate::labels::Drawing,
    /// When set, new waybills get their first tracking poll scheduled.
    pub(super) first_poll: Option<FirstPoll>,
    /// Per carrier: how long a lookup's "not found" after an ambiguous failure is not trusted.
    pub(super) lookup_grace: Arc<BTreeMap<CarrierId, Duration>>,
}

/// A created waybill as the API shows it.
#[derive(Debug, Clone)]
pub struct WaybillView {
    /// Internal row id (labels are stored under it).
    pub id: String,
    pub state: &'static str,
    pub label_format: Option<String>,
    pub waybill_number: String,
    pub reference_number: String,
    pub carrier: String,
    pub channel: String,
    pub tracking_number: String,
    pub charge: Option<Charge>,
    pub created_at: String,
}

pub enum Outcome {
    Created(WaybillView),
    Replayed(WaybillView),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// First attempt: nothing can exist at the carrier yet.
    Fresh,
    /// An earlier attempt may have created the shipment: look it up before creating. `since_ms`
    /// is when the reference's state first became unknown.
    Recover { since_ms: i64 },
}

impl WaybillService {
    pub fn new(
        db: Db,
        carriers: Registry,
        channels: BTreeMap<String, Channel>,
        wait: Duration,
        lease: Duration,
        carrier_timeout: Duration,
        labeler: crate::labels::Labeler,
    ) -> Self {
        Self {
            db,
            created: moka::future::Cache::builder()
                .max_capacity(200_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
            carriers,
            channels: Arc::new(channels),
            wait,
            lease,
            carrier_timeout,
            labeler,
            drawing: crate::labels::Drawing::per_core(),
            first_poll: None,
            lookup_grace: Arc::default(),
        }
    }

    /// Schedules the first tracking poll of each new waybill.
    /// How long a created waybill is answered from this instance's memory: another instance
    /// may cancel it, so a replay here is never older than this.
    pub fn with_replay_cache(mut self, ttl: Duration) -> Self {
        self.created = moka::future::Cache::builder()
            .max_capacity(200_000)
            .time_to_live(ttl)
            .build();
        self
    }

    pub fn with_lookup_grace(mut self, grace: BTreeMap<CarrierId, Duration>) -> Self {
        self.lookup_grace = Arc::new(grace);
        self
    }

    pub fn with_first_poll(mut self, first_poll: Option<FirstPoll>) -> Self {
        self.first_poll = first_poll;
        self
    }

    /// Creates a waybill for `tenant`; a test tenant reaches only the sandbox carrier, a live
    /// one never does.
    pub async fn create(
        &self,
        tenant: &Tenant,
        req: ValidRequest,
    ) -> Result<Outcome, WaybillError> {
        let tenant_id = tenant.id.as_str();
        let channel = self
            .channels
            .get(&req.channel)
            .ok_or_else(|| WaybillError::UnknownChannel(req.channel.clone()))?;
        match (tenant.mode, channel.carrier == CarrierId::Sandbox) {
            (KeyMode::Test, false) => {
                return Err(WaybillError::ModeMismatch(format!(
                    "a test API key reaches only the sandbox carrier; channel `{}` needs a live key",
                    req.channel
                )));
            }
            (KeyMode::Live, true) => {
                return Err(WaybillError::ModeMismatch(format!(
                    "channel `{}` is the sandbox carrier's: it needs a test API key",
                    req.channel
                )));
            }
            _ => {}
        }
        let carrier = self
            .carriers
            .get(channel.carrier)
            .cloned()
            .ok_or_else(|| WaybillError::UnknownChannel(req.channel.clone()))?;
        let fingerprint = fingerprint(&req);
        let cache_key = (tenant_id.to_owned(), req.reference_number.clone());
        if let Some(hit) = self.created.get(&cache_key).await {
            return if hit.0 == fingerprint {
                Ok(Outcome::Replayed(hit.1.clone()))
            } else {
                Err(WaybillError::ReferenceConflict)
            };
        }
        let mut shipment = Shipment {
            reference_number: req.reference_number.clone(),
            idempotency_key: String::new(),
            service: channel.service.clone(),
            shipper: req.shipper,
            consignee: req.consignee,
            parcels: req.parcels,
            customs: req.customs,
        };
        let request_json = serde_json::to_string(&shipment)?;
        let lease_ms = self.lease.as_millis() as i64;
        let started = Instant::now();
        let deadline = started + self.wait;
        // The carrier part of this request ends here, whatever happened before it, so the
        // whole request stays under 3 s.
        let budget_end = started + self.carrier_timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            let now = now_millis();
            let new_claim = NewClaim {
                tenant_id,
                reference_number: &shipment.reference_number,
                fingerprint: &fingerprint,
                channel: &req.channel,
                carrier: carrier.id().as_str(),
                request_json: &request_json,
                lease_until: now + lease_ms,
            };
            // The insert is the arbiter: the database lets exactly one claim of a reference in.
            let claimed = match self.db.claim_reference(&new_claim).await? {
                Some(claim) => Some((claim, Mode::Fresh)),
                None => match self
                    .db
                    .waybill_by_reference(tenant_id, &shipment.reference_number)
                    .await?
                {
                    // Released by a failed attempt in between: claim it again at once.
                    None => continue,
                    Some(row) if row.fingerprint != fingerprint => {
                        return Err(WaybillError::ReferenceConflict);
                    }
                    Some(row) if matches!(row.state, State::Created | State::Cancelled) => {
                        let view = view(row)?;
                        self.remember(cache_key, fingerprint, &view).await;
                        return Ok(Outcome::Replayed(view));
                    }
                    // A takeover needs time for a lookup and a create; too late in this
                    // request, it is left for the client's retry.
                    Some(row)
                        if (row.state == State::Unknown || row.lease_until < now)
                            && budget_end.saturating_duration_since(Instant::now())
                                >= self.carrier_timeout / 2 =>
                    {
                        self.db
                            .take_over(&row, now, now + lease_ms)
                            .await?
                            .map(|claim| {
                                let since_ms = row.unknown_since_ms.unwrap_or(row.lease_until);
                                (claim, Mode::Recover { since_ms })
                            })
                    }
                    Some(_) => None,
                },
            };
            if let Some((claim, mode)) = claimed {
                shipment.idempotency_key = claim.id.clone();
                let outcome = self
                    .attempt(claim, mode, carrier, shipment, &req.channel, budget_end)
                    .await?;
                if let Outcome::Created(view) = &outcome {
                    self.remember(cache_key, fingerprint, view).await;
                }
                return Ok(outcome);
            }
            if Instant::now() + pause > deadline {
                return Err(WaybillError::ReferenceInProgress {
                    retry_after_secs: 1,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    async fn remember(&self, key: (String, String), fingerprint: String, view: &WaybillView) {
        self.created
            .insert(key, Arc::new((fingerprint, view.clone())))
            .await;
    }

    /// The stored label of a waybill (by waybill or reference number): format and content.
    pub async fn label(
        &self,
        tenant_id: &str,
        number: &str,
    ) -> Result<(String, Vec<u8>), WaybillError> {
        let waybill = self.find(tenant_id, number).await?;
        self.db.label(&waybill.id).await?.ok_or_else(|| {
            WaybillError::LabelNotAvailable(format!("waybill `{number}` has no stored label"))
        })
    }

    /// Voids a waybill at its carrier, then here. Cancelling twice is not an error.
    pub async fn cancel(&self, tenant_id: &str, number: &str) -> Result<WaybillView, WaybillError> {
        let mut waybill = self.find(tenant_id, number).await?;
        if waybill.state == "cancelled" {
            return Ok(waybill);
        }
        let carrier = waybill
            .carrier
            .parse::<CarrierId>()
            .ok()
            .and_then(|id| self.carriers.get(id))
            .cloned()
            .ok_or_else(|| {
                WaybillError::Carrier(CarrierError::Unavailable(format!(
                    "carrier `{}` is not enabled on this gateway",
                    waybill.carrier
                )))
            })?;
        let voided = tokio::time::timeout(
            self.carrier_timeout,
            carrier.cancel(&waybill.waybill_number),
        )
        .await
        .unwrap_or_else(|_| Err(CarrierError::Timeout("cancel".into())));
        match voided {
            Ok(()) => {}
            // Carriers without a void API bill only what is tendered: an unused label lapses.
            Err(CarrierError::NotSupported(_)) => tracing::warn!(
                carrier = %waybill.carrier,
                waybill = %waybill.waybill_number,
                "carrier has no void API; cancelled here only"
            ),
            Err(e) => return Err(e.into()),
        }
        self.db.mark_cancelled(&waybill.id).await?;
        self.created
            .invalidate(&(tenant_id.to_owned(), waybill.reference_number.clone()))
            .await;
        tracing::info!(waybill = %waybill.waybill_number, carrier = %waybill.carrier, "waybill cancelled");
        waybill.state = "cancelled";
        Ok(waybill)
    }

    /// Settles a reference of `tenant_id` stuck in "unknown" (see [`super::resolve`]).
    pub async fn resolve(
        &self,
        tenant_id: &str,
        reference: &str,
        resolution: super::resolve::Resolution,
    ) -> Result<super::resolve::Resolved, WaybillError> {
        let row = self
            .db
            .waybill_by_reference(tenant_id, reference)
            .await?
            .ok_or_else(|| WaybillError::NotFound(format!("no reference `{reference}`")))?;
        let first_poll = self.first_poll.map(|p| p.at(now_millis()));
        super::resolve::resolve(
            &self.db,
            &row,
            resolution,
            self.lease.as_millis() as i64,
            first_poll,
        )
        .await
    }

    /// A created waybill by waybill number or reference number.
    pub async fn find(&self, tenant_id: &str, number: &str) -> Result<WaybillView, WaybillError> {
        match self.db.created_waybill(tenant_id, number).await? {
            Some(row) => view(row),
            None => Err(WaybillError::NotFound(format!("no waybill `{number}`"))),
        }
    }
}

fn view(row: WaybillRow) -> Result<WaybillView, WaybillError> {
    let (Some(waybill_number), Some(created_at)) = (row.waybill_number, row.created_at) else {
        return Err(WaybillError::Inconsistent(format!(
            "created waybill {} has no number",
            row.id
        )));
    };
    Ok(WaybillView {
        id: row.id,
        state: if row.state == State::Cancelled {
            "cancelled"
        } else {
            "created"
        },
        label_format: row.label_format,
        tracking_number: row
            .tracking_number
            .unwrap_or_else(|| waybill_number.clone()),
        waybill_number,
        reference_number: row.reference_number,
        carrier: row.carrier,
        channel: row.channel,
        charge: match (row.charge_amount, row.charge_currency) {
            (Some(amount), Some(currency)) => Some(Charge { amount, currency }),
            _ => None,
        },
        created_at,
    })
}
