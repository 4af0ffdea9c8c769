//! Operators settle a reference stuck in "unknown" (a carrier without lookup by reference, a
//! client that never retried): either the carrier made the shipment (record its number, with
//! its label and charge when the operator has them) or it did not (free the reference, so the
//! client's next request creates it).

use super::WaybillError;
use crate::store::Db;
use crate::store::StoreError;
use crate::store::waybills::WaybillRow;
use carriers::{Charge, Created, Label};

/// What the operator found out at the carrier.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// No shipment exists: the reference is free again.
    NotCreated,
    /// The carrier made this shipment.
    Created {
        waybill_number: String,
        tracking_number: Option<String>,
        /// The carrier's label, if the operator has it (without one the waybill answers
        /// `LABEL_NOT_AVAILABLE` for its label: shipgate does not draw labels for carriers
        /// that print their own).
        label: Option<Label>,
        charge: Option<Charge>,
    },
}

/// How a resolution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Freed,
    Recorded { waybill_number: String },
}

/// Settles the unresolved reference `row` (lease: how long the resolution may hold it).
pub async fn resolve(
    db: &Db,
    row: &WaybillRow,
    resolution: Resolution,
    lease_ms: i64,
    first_poll_at: Option<i64>,
) -> Result<Resolved, WaybillError> {
    let nothing = || {
        WaybillError::NothingToResolve(format!(
            "reference `{}` is not unresolved: it was created, freed, or an attempt is running",
            row.reference_number
        ))
    };
    // Taken over as a retry would take it: only an unknown reference, or one whose attempt's
    // lease ran out.
    let now = crate::store::now_millis();
    let claim = db
        .take_over(row, now, now + lease_ms)
        .await?
        .ok_or_else(nothing)?;
    match resolution {
        Resolution::NotCreated => {
            db.release(&claim).await?;
            tracing::warn!(reference = %row.reference_number, "operator: no shipment exists; reference freed");
            Ok(Resolved::Freed)
        }
        Resolution::Created {
            waybill_number,
            tracking_number,
            label,
            charge,
        } => {
            let label = label.map(|l| crate::labels::as_pdf(l).unwrap_or_else(|(l, _)| l));
            let created = Created {
                tracking_number: tracking_number.unwrap_or_else(|| waybill_number.clone()),
                waybill_number: waybill_number.clone(),
                charge,
                label,
                routing: None,
            };
            match db.finish_created(&claim, &created, first_poll_at).await {
                Ok(Some(_)) => {
                    tracing::warn!(reference = %row.reference_number, waybill = %waybill_number, "operator: shipment recorded");
                    Ok(Resolved::Recorded { waybill_number })
                }
                Ok(None) => Err(nothing()),
                Err(StoreError::Sql(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                    db.mark_unknown(&claim).await?;
                    Err(WaybillError::Validation(vec![
                        crate::fields::FieldError::new(
                            "waybillNumber",
                            format!("waybill number `{waybill_number}` is already recorded"),
                        ),
                    ]))
                }
                Err(e) => {
                    db.mark_unknown(&claim).await?;
                    Err(e.into())
                }
            }
        }
    }
}
