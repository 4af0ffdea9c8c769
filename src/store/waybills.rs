//! The waybill table is also the idempotency ledger: the unique (tenant_id, reference_number)
//! row is claimed before any carrier call, so only one attempt per reference can be in flight.

use super::sql::{Arg, statement};
use super::waybill_batch::{ClaimJob, MarkJob};
use super::{Db, Dialect, now_millis, now_rfc3339};
use crate::store::error::StoreError;
use carriers::Created;
use sqlx::Row;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// An attempt owns the reference until `lease_until`.
    Pending,
    /// The last attempt ended ambiguously: the carrier may hold the shipment.
    Unknown,
    Created,
    /// Voided at the carrier after it was created.
    Cancelled,
}

impl TryFrom<String> for State {
    type Error = StoreError;

    fn try_from(s: String) -> Result<Self, StoreError> {
        Self::parse(&s)
    }
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Unknown => "unknown",
            Self::Created => "created",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(Self::Pending),
            "unknown" => Ok(Self::Unknown),
            "created" => Ok(Self::Created),
            "cancelled" => Ok(Self::Cancelled),
            other => Err(StoreError::decode(format!("unknown waybill state {other}"))),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WaybillRow {
    pub id: String,
    pub reference_number: String,
    pub fingerprint: String,
    #[sqlx(try_from = "String")]
    pub state: State,
    pub lease_until: i64,
    pub attempts: i64,
    /// When an attempt on this reference first ended ambiguously (epoch ms).
    pub unknown_since_ms: Option<i64>,
    pub channel: String,
    pub carrier: String,
    pub waybill_number: Option<String>,
    pub tracking_number: Option<String>,
    pub created_at: Option<String>,
    pub charge_amount: Option<String>,
    pub charge_currency: Option<String>,
    pub label_format: Option<String>,
}

/// The row, its charge and its label's format; a macro so that queries stay `&'static str`.
macro_rules! select_row {
    ($where:literal) => {
        concat!(
            "SELECT w.id, w.reference_number, w.fingerprint, w.state, w.lease_until, \
             w.attempts, w.unknown_since_ms, w.channel, w.carrier, w.waybill_number, w.tracking_number, \
             w.created_at, c.amount AS charge_amount, c.currency AS charge_currency, \
             l.format AS label_format FROM waybills w \
             LEFT JOIN charges c ON c.waybill_id = w.id \
             LEFT JOIN labels l ON l.waybill_id = w.id WHERE ",
            $where
        )
    };
}

/// What marking a waybill created sets, each column with the number of its value among
/// `MARK_CREATED`'s arguments ($1 number, $2 tracking number, $3/$4 the charge, $5 now,
/// $8 routing, $9 the next poll; $6/$7 are the claim).
const MARKED: [(&str, usize); 8] = [
    ("waybill_number", 1),
    ("tracking_number", 2),
    ("quoted_amount", 3),
    ("quoted_currency", 4),
    ("created_at", 5),
    ("updated_at", 5),
    ("routing_json", 8),
    ("next_poll_at", 9),
];

/// The `SET` list of marking a waybill created, each value named by `value(n)`.
pub(super) fn mark_set(value: impl Fn(usize) -> String) -> String {
    std::iter::once("state = 'created'".to_owned())
        .chain(
            MARKED
                .iter()
                .map(|(column, n)| format!("{column} = {}", value(*n))),
        )
        .collect::<Vec<_>>()
        .join(", ")
}

/// Marks a pending attempt's waybill created, only if the attempt still owns it (by the claim,
/// $6 id and $7 attempt).
static MARK_CREATED: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE waybills SET {} WHERE id = $6 AND attempts = $7 AND state = 'pending'",
        mark_set(|n| format!("${n}"))
    )
});

/// A label stored again for the same waybill replaces the one before.
pub(super) const STORE_LABEL_CONFLICT: &str = "ON CONFLICT (waybill_id) DO UPDATE SET \
     format = excluded.format, content = excluded.content, created_at = excluded.created_at";

/// What a new attempt writes when it claims a reference.
pub struct NewClaim<'a> {
    pub tenant_id: &'a str,
    pub reference_number: &'a str,
    pub fingerprint: &'a str,
    pub channel: &'a str,
    pub carrier: &'a str,
    pub request_json: &'a str,
    pub lease_until: i64,
}

/// The attempt that owns a claimed row: `attempts` at the time of the claim fences off an
/// attempt whose lease ran out and was taken over.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: String,
    pub attempt: i64,
}

impl Db {
    /// Claims the reference for a first attempt. `None` when the reference already has a row.
    pub async fn claim_reference(&self, c: &NewClaim<'_>) -> Result<Option<Claim>, StoreError> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let job = ClaimJob {
            id: id.clone(),
            tenant_id: c.tenant_id.to_owned(),
            reference_number: c.reference_number.to_owned(),
            fingerprint: c.fingerprint.to_owned(),
            channel: c.channel.to_owned(),
            carrier: c.carrier.to_owned(),
            request_json: c.request_json.to_owned(),
            lease_until: c.lease_until,
            now: now_rfc3339(),
        };
        let inserted = self.claim(job).await?;
        Ok(inserted.then_some(Claim { id, attempt: 1 }))
    }

    /// Takes over a row whose last attempt ended ambiguously or whose owner's lease ran out.
    pub async fn take_over(
        &self,
        row: &WaybillRow,
        now_ms: i64,
        lease_until: i64,
    ) -> Result<Option<Claim>, StoreError> {
        let query = sqlx::query(
            "UPDATE waybills SET state = 'pending', lease_until = $1, attempts = attempts + 1, \
             updated_at = $2 WHERE id = $3 AND attempts = $4 \
             AND (state = 'unknown' OR (state = 'pending' AND lease_until < $5))",
        )
        .bind(lease_until)
        .bind(now_rfc3339())
        .bind(&row.id)
        .bind(row.attempts)
        .bind(now_ms);
        let done = self.write(query).await?;
        Ok((done.rows_affected() == 1).then(|| Claim {
            id: row.id.clone(),
            attempt: row.attempts + 1,
        }))
    }

    /// Records the carrier's shipment; the database's trigger writes its one charge in the same
    /// statement. Returns the creation time, or `None` when the claim was lost to another attempt.
    pub async fn finish_created(
        &self,
        claim: &Claim,
        created: &Created,
        next_poll_at: Option<i64>,
    ) -> Result<Option<String>, StoreError> {
        let now = now_rfc3339();
        // The label is stored in the same unit that marks the waybill created, and only if this
        // attempt still owns the reference: a stale attempt (its lease ran out and another took
        // over) never replaces the winner's label. In directory storage the file is written and
        // synced first under this attempt's own name, so attempts never share a file; the row
        // records only the format, and a stale attempt's file is removed.
        let mut written = None;
        let label = match &created.label {
            Some(label) => {
                let content = match self.label_file(&claim.id, claim.attempt, label.format.as_str())
                {
                    Some(path) => {
                        write_durably(path.clone(), label.content.clone()).await?;
                        written = Some(path);
                        Vec::new()
                    }
                    None => label.content.clone(),
                };
                Some((label.format.as_str(), content))
            }
            None => None,
        };
        let owned = self
            .record_created(claim, created, next_poll_at, label, &now)
            .await?;
        if !owned && let Some(path) = written {
            let _ = tokio::fs::remove_file(path).await;
        }
        Ok(owned.then_some(now))
    }

    /// The statement(s) of `finish_created`; true when this attempt owned the reference.
    async fn record_created(
        &self,
        claim: &Claim,
        created: &Created,
        next_poll_at: Option<i64>,
        label: Option<(&str, Vec<u8>)>,
        now: &str,
    ) -> Result<bool, StoreError> {
        let args = vec![
            Arg::Text(created.waybill_number.clone()),
            Arg::Text(created.tracking_number.clone()),
            Arg::OptText(created.charge.as_ref().map(|c| c.amount.clone())),
            Arg::OptText(created.charge.as_ref().map(|c| c.currency.clone())),
            Arg::Text(now.to_owned()),
            Arg::Text(claim.id.clone()),
            Arg::Int(claim.attempt),
            Arg::OptText(created.routing.as_ref().map(|r| r.to_string())),
            Arg::OptInt(next_poll_at),
        ];
        let Some((format, content)) = label else {
            let done = self
                .write(statement(self.dialect, &MARK_CREATED, args))
                .await?;
            return Ok(done.rows_affected() == 1);
        };
        self.mark_with_label(MarkJob {
            id: claim.id.clone(),
            args,
            format: format.to_owned(),
            content,
        })
        .await
    }

    /// The statement(s) of one waybill marked created with its label (`MARK_CREATED`'s
    /// arguments, then the label's): true when the attempt owned the reference.
    pub(super) async fn record_label_one(
        &self,
        mut args: Vec<Arg>,
        format: String,
        content: Vec<u8>,
    ) -> Result<bool, StoreError> {
        args.extend([Arg::Text(format), Arg::Bytes(content)]);
        let store_label = "INSERT INTO labels (waybill_id, format, content, created_at) \
             SELECT id, $10, $11, $5 FROM";
        let (mark, on_conflict) = (MARK_CREATED.as_str(), STORE_LABEL_CONFLICT);
        let sql = match self.dialect {
            // One statement: one round trip, one commit.
            Dialect::Postgres => {
                format!("WITH owned AS ({mark} RETURNING id) {store_label} owned {on_conflict}")
            }
            // Both statements in one text, one trip to the writer's connection (its thread);
            // the label only where the update before it made this attempt's waybill created.
            Dialect::Sqlite => format!(
                "{mark}; {store_label} waybills WHERE id = $6 AND attempts = $7 \
                 AND state = 'created' AND updated_at = $5 {on_conflict}"
            ),
        };
        let done = self.write(statement(self.dialect, &sql, args)).await?;
        // The changes of the statement(s), not of their triggers: on SQLite two when this
        // attempt owned the reference (the update's and the label's), none when it did not.
        Ok(done.rows_affected() > 0)
    }

    /// Marks the attempt's outcome as unknown so the next request asks the carrier first.
    pub async fn mark_unknown(&self, claim: &Claim) -> Result<(), StoreError> {
        self.write(
            sqlx::query(
                "UPDATE waybills SET state = 'unknown', updated_at = $1, \
                 unknown_since_ms = COALESCE(unknown_since_ms, $2) \
                 WHERE id = $3 AND attempts = $4 AND state = 'pending'",
            )
            .bind(now_rfc3339())
            .bind(now_millis())
            .bind(&claim.id)
            .bind(claim.attempt),
        )
        .await
        .map(drop)
    }

    /// Gives the reference back after a definite failure: nothing exists at the carrier.
    pub async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        self.write(
            sqlx::query(
                "DELETE FROM waybills WHERE id = $1 AND attempts = $2 AND state = 'pending'",
            )
            .bind(&claim.id)
            .bind(claim.attempt),
        )
        .await
        .map(drop)
    }

    pub async fn waybill_by_reference(
        &self,
        tenant_id: &str,
        reference: &str,
    ) -> Result<Option<WaybillRow>, StoreError> {
        Ok(
            sqlx::query_as(select_row!("w.tenant_id = $1 AND w.reference_number = $2"))
                .bind(tenant_id)
                .bind(reference)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Marks a created waybill cancelled; false if it was not in the created state.
    pub async fn mark_cancelled(&self, id: &str) -> Result<bool, StoreError> {
        let now = now_rfc3339();
        let query = sqlx::query(
            "UPDATE waybills SET state = 'cancelled', cancelled_at = $1, updated_at = $1, \
             tracking_version = tracking_version + 1, next_poll_at = NULL \
             WHERE id = $2 AND state = 'created'",
        )
        .bind(&now)
        .bind(id);
        Ok(self.write(query).await?.rows_affected() == 1)
    }

    /// The stored label of a waybill: format and content.
    pub async fn label(&self, waybill_id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let row = sqlx::query(
            "SELECT l.format, l.content, w.attempts FROM labels l \
             JOIN waybills w ON w.id = l.waybill_id WHERE l.waybill_id = $1",
        )
        .bind(waybill_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let (format, content, attempt): (String, Vec<u8>, i64) = (
            row.try_get("format")?,
            row.try_get("content")?,
            row.try_get("attempts")?,
        );
        match self.label_file(waybill_id, attempt, &format) {
            Some(path) if content.is_empty() => {
                let content = match tokio::fs::read(&path).await {
                    Ok(c) => c,
                    // Written before labels were kept per attempt.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        let legacy = path.with_file_name(format!("{waybill_id}.{format}"));
                        tokio::fs::read(legacy).await?
                    }
                    Err(e) => return Err(e.into()),
                };
                Ok(Some((format, content)))
            }
            _ => Ok(Some((format, content))),
        }
    }

    /// The label file of one create attempt (attempts never share a file).
    fn label_file(
        &self,
        waybill_id: &str,
        attempt: i64,
        format: &str,
    ) -> Option<std::path::PathBuf> {
        // Row ids are hex (uuid simple form): safe as file names.
        let dir = self.label_dir.as_ref()?;
        Some(dir.join(format!("{waybill_id}-{attempt}.{format}")))
    }

    /// A created waybill of this tenant, by waybill number or reference number.
    pub async fn created_waybill(
        &self,
        tenant_id: &str,
        number: &str,
    ) -> Result<Option<WaybillRow>, StoreError> {
        // A number that is one waybill's number and another's reference is the waybill
        // number's (as in tracking queries).
        Ok(sqlx::query_as(select_row!(
            "w.tenant_id = $1 AND w.state IN ('created', 'cancelled') \
             AND (w.waybill_number = $2 OR w.reference_number = $2) \
             ORDER BY CASE WHEN w.waybill_number = $2 THEN 0 ELSE 1 END LIMIT 1"
        ))
        .bind(tenant_id)
        .bind(number)
        .fetch_optional(&self.pool)
        .await?)
    }
}

/// Writes a file so that it survives a crash once this returns: temp file, fsync, rename.
async fn write_durably(path: std::path::PathBuf, content: Vec<u8>) -> Result<(), StoreError> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        // A temporary name of this write alone: concurrent writers never share one.
        let tmp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&content)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok::<_, std::io::Error>(())
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(())
}
