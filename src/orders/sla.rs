//! The platforms' promises: the tracking number uploaded within `upload_hours` of payment
//! (the waybill created and written back), the parcel shipped within `ship_hours`. Orders are
//! at risk `warn_hours` before a deadline; they are listed, counted as gauges (per channel and
//! promise) and an alert rule fires on them before the breach (ops/prometheus/alerts.yml).

use super::{OrderError, OrdersService};
use crate::store::{now_millis, rfc3339_millis};
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AtRisk {
    pub id: String,
    pub channel: String,
    pub shop: String,
    pub external_id: String,
    pub state: String,
    pub paid_at: String,
    /// `upload` (tracking number) or `ship` (first carrier scan).
    pub promise: &'static str,
    pub deadline: String,
    pub breached: bool,
}

const HOUR_MS: i64 = 3_600_000;

impl OrdersService {
    /// Paid orders whose promise ends within its warning time (or has ended), soonest first;
    /// every tenant's when `tenant` is `None`.
    pub async fn at_risk(
        &self,
        tenant: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AtRisk>, OrderError> {
        let now = now_millis();
        let slas = std::iter::once(self.settings.sla_of("default"))
            .chain(self.settings.sla.values().copied());
        // The earliest payment time that can be at risk under any channel's promise.
        let horizon = slas
            .map(|s| i64::try_from(s.upload_hours.saturating_sub(s.warn_hours)).unwrap_or(0))
            .min()
            .unwrap_or(0);
        let rows = sqlx::query(
            "SELECT id, channel, shop, external_id, state, paid_at_ms, tenant_id FROM ord_orders \
             WHERE state IN ('received', 'on_hold', 'allocated', 'waybill_created') \
             AND paid_at_ms IS NOT NULL AND paid_at_ms <= $1 AND ($2 IS NULL OR tenant_id = $2) \
             ORDER BY paid_at_ms LIMIT $3",
        )
        .bind(now - horizon * HOUR_MS)
        .bind(tenant)
        .bind(limit.max(1) * 4)
        .fetch_all(&self.db.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let (channel, state, paid): (String, String, i64) = (r.get(1), r.get(4), r.get(5));
            let sla = self.settings.sla_of(&channel);
            let hours = |h: u64| i64::try_from(h).unwrap_or(i64::MAX / HOUR_MS / 2) * HOUR_MS;
            let (promise, deadline) = if state == "waybill_created" {
                ("ship", paid + hours(sla.ship_hours))
            } else {
                ("upload", paid + hours(sla.upload_hours))
            };
            if deadline - hours(sla.warn_hours) > now {
                continue;
            }
            out.push(AtRisk {
                id: r.get(0),
                channel,
                shop: r.get(2),
                external_id: r.get(3),
                state: state.to_ascii_uppercase(),
                paid_at: rfc3339_millis(paid),
                promise,
                deadline: rfc3339_millis(deadline),
                breached: deadline <= now,
            });
        }
        out.sort_by(|a, b| a.deadline.cmp(&b.deadline));
        out.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(out)
    }

    /// Sets `shipgate_orders_at_risk` and `shipgate_orders_promise_breached` per channel and
    /// promise (zero for those seen before and cleared since).
    pub async fn sample_promises(&self) {
        let risks = match self.at_risk(None, 100_000).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "sampling order promises failed");
                return;
            }
        };
        let mut counts: BTreeMap<(String, &'static str), (u64, u64)> = BTreeMap::new();
        for r in &risks {
            let c = counts.entry((r.channel.clone(), r.promise)).or_default();
            if r.breached {
                c.1 += 1;
            } else {
                c.0 += 1;
            }
        }
        let mut seen = self.sampled.lock().unwrap_or_else(|p| p.into_inner());
        for key in seen.iter() {
            counts.entry(key.clone()).or_default();
        }
        for ((channel, promise), (risk, breached)) in counts {
            metrics::gauge!("shipgate_orders_at_risk", "channel" => channel.clone(), "promise" => promise)
                .set(risk as f64);
            metrics::gauge!("shipgate_orders_promise_breached", "channel" => channel.clone(), "promise" => promise)
                .set(breached as f64);
            seen.insert((channel, promise));
        }
    }
}
