//! One create attempt, run to completion on its own task: the carrier call (or, when an
//! earlier attempt may have created the shipment, the lookup first), then the record.

use super::WaybillError;
use super::service::{Mode, Outcome, WaybillService, WaybillView};
use crate::labels::LabelError;
use crate::store::StoreError;
use crate::store::now_millis;
use crate::store::waybills::Claim;
use carriers::{CarrierClient, CarrierError, Created, Shipment};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// The answer while a reference's shipment may or may not exist at the carrier.
fn state_unknown(carrier: &str, retry_after_secs: Option<u64>) -> WaybillError {
    WaybillError::ShipmentStateUnknown {
        message: format!(
            "an earlier attempt may have created this shipment and {carrier} cannot confirm \
             either way yet; retry later"
        ),
        retry_after_secs,
    }
}

impl WaybillService {
    /// Runs one attempt to completion on its own task, so a client that hangs up mid-call cannot
    /// leave a shipment created at the carrier but unrecorded here.
    pub(super) async fn attempt(
        &self,
        claim: Claim,
        mode: Mode,
        carrier: Arc<dyn CarrierClient>,
        shipment: Shipment,
        channel: &str,
        budget_end: Instant,
    ) -> Result<Outcome, WaybillError> {
        let this = self.clone();
        let channel = channel.to_owned();
        let task_claim = claim.clone();
        let task = tokio::spawn(
            async move {
                this.run_attempt(task_claim, mode, carrier, shipment, channel, budget_end)
                    .await
            }
            .in_current_span(),
        );
        match task.await {
            Ok(result) => result,
            Err(join_error) => {
                // The adapter died mid-call: whether the carrier acted is unknown.
                self.db.mark_unknown(&claim).await?;
                Err(join_error.into())
            }
        }
    }

    async fn run_attempt(
        &self,
        claim: Claim,
        mode: Mode,
        carrier: Arc<dyn CarrierClient>,
        shipment: Shipment,
        channel: String,
        budget_end: Instant,
    ) -> Result<Outcome, WaybillError> {
        let remaining = || budget_end.saturating_duration_since(Instant::now());
        if let Mode::Recover { since_ms } = mode {
            let found = tokio::time::timeout(remaining(), carrier.lookup_by_reference(&claim.id))
                .await
                .unwrap_or_else(|_| Err(CarrierError::Timeout("lookup by reference".into())));
            match found {
                Ok(Some(created)) if created.label.is_some() || !carrier.id().prints_labels() => {
                    tracing::info!(
                        reference = %shipment.reference_number,
                        waybill = %created.waybill_number,
                        "adopted a shipment the carrier created in an earlier attempt"
                    );
                    return self
                        .finish(&claim, created, carrier.id().as_str(), channel, &shipment)
                        .await;
                }
                // Found, but the lookup returns neither the carrier's label nor its charge:
                // void it and create again, so the waybill ends with both.
                Ok(Some(found)) => {
                    let voided =
                        tokio::time::timeout(remaining(), carrier.cancel(&found.waybill_number))
                            .await
                            .unwrap_or_else(|_| Err(CarrierError::Timeout("void".into())));
                    match voided {
                        Ok(()) => tracing::info!(
                            reference = %shipment.reference_number,
                            waybill = %found.waybill_number,
                            "voided a shipment an earlier attempt created (its label cannot be \
                             recovered); creating it again"
                        ),
                        Err(e) if e.is_ambiguous() => {
                            self.db.mark_unknown(&claim).await?;
                            return Err(state_unknown(carrier.id().as_str(), Some(5)));
                        }
                        // Not voidable (already tendered, no void API): keep it, saying the
                        // label is unavailable rather than printing one the carrier refuses.
                        Err(e) => {
                            tracing::warn!(
                                reference = %shipment.reference_number,
                                waybill = %found.waybill_number,
                                error = %e,
                                "adopted a shipment whose label cannot be recovered or voided"
                            );
                            return self
                                .record(&claim, found, carrier.id().as_str(), channel, &shipment)
                                .await;
                        }
                    }
                }
                Ok(None) => {
                    // Carriers' lookups lag behind label creation: "not found" right after the
                    // failure is not trusted until the carrier's grace period has passed.
                    let grace = self
                        .lookup_grace
                        .get(&carrier.id())
                        .copied()
                        .unwrap_or_default();
                    let trusted_at = since_ms.saturating_add(grace.as_millis() as i64);
                    let wait_ms = trusted_at - now_millis();
                    if wait_ms > 0 {
                        self.db.mark_unknown(&claim).await?;
                        let secs = (wait_ms as u64).div_ceil(1000).max(1);
                        return Err(state_unknown(carrier.id().as_str(), Some(secs)));
                    }
                }
                Err(e) => {
                    tracing::warn!(carrier = %carrier.id(), error = %e, "lookup by reference failed");
                    self.db.mark_unknown(&claim).await?;
                    return Err(state_unknown(carrier.id().as_str(), None));
                }
            }
        }
        let started = Instant::now();
        let result = tokio::time::timeout(remaining(), carrier.create(&shipment))
            .await
            .unwrap_or_else(|_| Err(CarrierError::Timeout("no answer within the budget".into())));
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(created) => {
                tracing::info!(
                    carrier = %carrier.id(),
                    reference = %shipment.reference_number,
                    waybill = %created.waybill_number,
                    consignee = ?shipment.consignee,
                    elapsed_ms,
                    "carrier created shipment"
                );
                self.finish(&claim, created, carrier.id().as_str(), channel, &shipment)
                    .await
            }
            Err(e) if e.is_ambiguous() => {
                tracing::warn!(carrier = %carrier.id(), error = %e, elapsed_ms, "ambiguous carrier failure");
                self.db.mark_unknown(&claim).await?;
                Err(e.into())
            }
            Err(e) => {
                tracing::info!(carrier = %carrier.id(), error = %e, elapsed_ms, "carrier refused");
                self.db.release(&claim).await?;
                Err(e.into())
            }
        }
    }

    async fn finish(
        &self,
        claim: &Claim,
        created: Created,
        carrier: &str,
        channel: String,
        shipment: &Shipment,
    ) -> Result<Outcome, WaybillError> {
        let created = self
            .with_pdf_label(created, carrier, &channel, shipment)
            .await;
        self.record(claim, created, carrier, channel, shipment)
            .await
    }

    /// Records the shipment with whatever label it has (none: `LABEL_NOT_AVAILABLE` later).
    pub(super) async fn record(
        &self,
        claim: &Claim,
        created: Created,
        carrier: &str,
        channel: String,
        shipment: &Shipment,
    ) -> Result<Outcome, WaybillError> {
        let finished = match self
            .db
            .finish_created(claim, &created, self.first_poll.map(|p| p.at(now_millis())))
            .await
        {
            Err(StoreError::Sql(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                self.db.mark_unknown(claim).await?;
                return Err(WaybillError::Carrier(CarrierError::BadResponse(format!(
                    "{carrier} returned waybill number {} that is already recorded",
                    created.waybill_number
                ))));
            }
            other => other?,
        };
        let Some(created_at) = finished else {
            return Err(WaybillError::Inconsistent(
                "the create attempt lost its claim before it could record the waybill".into(),
            ));
        };
        Ok(Outcome::Created(WaybillView {
            id: claim.id.clone(),
            state: "created",
            label_format: created.label.as_ref().map(|l| l.format.as_str().to_owned()),
            waybill_number: created.waybill_number,
            reference_number: shipment.reference_number.clone(),
            carrier: carrier.to_owned(),
            channel,
            tracking_number: created.tracking_number,
            charge: created.charge,
            created_at,
        }))
    }

    /// The label to store: the carrier's (an image placed on a PDF page), or shipgate's own when
    /// the carrier printed none. Drawing is CPU work, kept off the request threads. A label
    /// that cannot be made is logged, never a reason to lose the created shipment.
    async fn with_pdf_label(
        &self,
        mut created: Created,
        carrier: &str,
        channel: &str,
        shipment: &Shipment,
    ) -> Created {
        let labeler = self.labeler.clone();
        let carrier_label = created.label.take();
        let own = carrier_label.is_none().then(|| {
            let today = time::OffsetDateTime::now_utc().date().to_string();
            labeler.data(shipment, &created, channel, &today)
        });
        let made = self
            .drawing
            .run(move || match (carrier_label, own) {
            (Some(label), _) => Ok(crate::labels::as_pdf(label).unwrap_or_else(|(label, e)| {
                tracing::warn!(error = %e, "carrier label image kept as sent: not placed on a PDF page");
                label
            })),
            (None, Some(data)) => labeler.render(&data),
            (None, None) => Err(LabelError::Render("nothing to render".into())),
            })
            .await
            .unwrap_or_else(|| Err(LabelError::Render("the rendering task failed".into())));
        match made {
            Ok(label) => created.label = Some(label),
            Err(e) => tracing::error!(carrier, error = %e, "no label could be made"),
        }
        created
    }
}
