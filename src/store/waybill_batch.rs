//! The two writes of every waybill create, a reference's claim and its record as created (with
//! its label), merged on PostgreSQL across concurrent creates into one statement per batch
//! (see [`super::coalesce`]): one statement and one commit for many, where each was its own.
//! Each create still gets its own answer, the same as its single statement would give: a batch
//! that fails is run again one statement per job, so a job's own error (a waybill number
//! already recorded) reaches only its caller.
//!
//! SQLite's single writer already commits the writes waiting for it together, and merging
//! their statements as well made creates slower there (measured: 1,190 → 1,000 new waybills/s),
//! so on SQLite each create sends its own statements.

use super::coalesce::Coalescer;
use super::sql::{Arg, list, statement};
use super::waybills::{STORE_LABEL_CONFLICT, mark_set};
use super::{Db, Dialect, StoreError};
use sqlx::Row;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most creates in one batch, and batches of each kind running at once.
const MOST: usize = 64;
const SIDE_BY_SIDE: usize = 2;

/// A reference's claim by a first attempt.
pub(super) struct ClaimJob {
    pub id: String,
    pub tenant_id: String,
    pub reference_number: String,
    pub fingerprint: String,
    pub channel: String,
    pub carrier: String,
    pub request_json: String,
    pub lease_until: i64,
    pub now: String,
}

/// A waybill marked created with its label: the arguments of `MARK_CREATED` ($1–$9), then the
/// label's format and content.
pub(super) struct MarkJob {
    /// The waybill's row id ($6).
    pub id: String,
    pub args: Vec<Arg>,
    pub format: String,
    pub content: Vec<u8>,
}

/// The batches of one database.
#[derive(Clone)]
pub(super) struct Batches {
    claims: Coalescer<ClaimJob, bool>,
    marks: Coalescer<MarkJob, bool>,
    /// Batches that failed and were run again one statement per job.
    fallbacks: Arc<AtomicU64>,
}

impl Batches {
    pub(super) fn new() -> Self {
        Self {
            claims: Coalescer::new(MOST, SIDE_BY_SIDE),
            marks: Coalescer::new(MOST, SIDE_BY_SIDE),
            fallbacks: Arc::default(),
        }
    }
}

const CLAIM_COLUMNS: &str = "INSERT INTO waybills (id, tenant_id, reference_number, fingerprint, \
     state, lease_until, attempts, channel, carrier, request_json, claimed_at, updated_at) VALUES";
const CLAIM_CONFLICT: &str = "ON CONFLICT (tenant_id, reference_number) DO NOTHING";

/// `($a, …, 'pending', $e, 1, …, $i, $i)`: one claimed row, its nine values from `$first`.
fn claim_row(first: usize) -> String {
    let p = |k: usize| format!("${}", first + k);
    format!(
        "({}, {}, {}, {}, 'pending', {}, 1, {}, {}, {}, {}, {})",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6),
        p(7),
        p(8),
        p(8)
    )
}

fn claim_args(j: &ClaimJob) -> [Arg; 9] {
    [
        Arg::Text(j.id.clone()),
        Arg::Text(j.tenant_id.clone()),
        Arg::Text(j.reference_number.clone()),
        Arg::Text(j.fingerprint.clone()),
        Arg::Int(j.lease_until),
        Arg::Text(j.channel.clone()),
        Arg::Text(j.carrier.clone()),
        Arg::Text(j.request_json.clone()),
        Arg::Text(j.now.clone()),
    ]
}

impl Db {
    /// How many merged batches of waybill writes failed and were run again one statement per
    /// create (a create's own error, such as a waybill number already recorded, does that).
    pub fn waybill_batch_fallbacks(&self) -> u64 {
        self.batches.fallbacks.load(Ordering::Relaxed)
    }

    /// Claims a reference (true: this job's row went in; false: the reference has a row).
    pub(super) async fn claim(&self, job: ClaimJob) -> Result<bool, StoreError> {
        if self.dialect == Dialect::Sqlite {
            return self.claim_one(&job).await;
        }
        let db = self.clone();
        self.batches
            .claims
            .submit(job, move |jobs| async move { db.claim_batch(jobs).await })
            .await
    }

    /// Records a created waybill with its label (true: this attempt still owned it).
    pub(super) async fn mark_with_label(&self, job: MarkJob) -> Result<bool, StoreError> {
        if self.dialect == Dialect::Sqlite {
            return self.mark_one(job).await;
        }
        let db = self.clone();
        self.batches
            .marks
            .submit(job, move |jobs| async move { db.mark_batch(jobs).await })
            .await
    }

    async fn claim_one(&self, job: &ClaimJob) -> Result<bool, StoreError> {
        static ONE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!("{CLAIM_COLUMNS} {} {CLAIM_CONFLICT}", claim_row(1))
        });
        let done = self
            .write(statement(self.dialect, &ONE, claim_args(job).into()))
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_batch(&self, jobs: Vec<ClaimJob>) -> Vec<Result<bool, StoreError>> {
        if jobs.len() == 1 {
            return vec![self.claim_one(&jobs[0]).await];
        }
        // A reference twice in one batch: the first claim is the one that goes in.
        let mut named = HashSet::new();
        let first: Vec<bool> = jobs
            .iter()
            .map(|j| named.insert((j.tenant_id.as_str(), j.reference_number.as_str())))
            .collect();
        let going: Vec<&ClaimJob> = jobs
            .iter()
            .zip(&first)
            .filter(|(_, f)| **f)
            .map(|(j, _)| j)
            .collect();
        let rows: Vec<String> = (0..going.len()).map(|k| claim_row(1 + 9 * k)).collect();
        let sql = format!(
            "{CLAIM_COLUMNS} {} {CLAIM_CONFLICT} RETURNING id",
            rows.join(", ")
        );
        let args = going.iter().flat_map(|j| claim_args(j)).collect();
        match self
            .write_fetch_all(statement(self.dialect, &sql, args))
            .await
        {
            Ok(rows) => {
                let inserted: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
                jobs.iter()
                    .zip(first)
                    .map(|(j, first)| Ok(first && inserted.contains(&j.id)))
                    .collect()
            }
            Err(e) => {
                self.one_by_one(
                    jobs,
                    "claims",
                    e,
                    |j| async move { self.claim_one(&j).await },
                )
                .await
            }
        }
    }

    /// A batch that failed, run again one statement per job (and counted), so each job gets
    /// its own answer, its own error included.
    async fn one_by_one<J, F, Fut>(
        &self,
        jobs: Vec<J>,
        what: &str,
        error: StoreError,
        one: F,
    ) -> Vec<Result<bool, StoreError>>
    where
        F: Fn(J) -> Fut,
        Fut: std::future::Future<Output = Result<bool, StoreError>>,
    {
        tracing::debug!(%error, "a batch of {what} failed; running it one by one");
        self.batches.fallbacks.fetch_add(1, Ordering::Relaxed);
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            results.push(one(job).await);
        }
        results
    }

    async fn mark_one(&self, job: MarkJob) -> Result<bool, StoreError> {
        self.record_label_one(job.args, job.format, job.content)
            .await
    }

    async fn mark_batch(&self, jobs: Vec<MarkJob>) -> Vec<Result<bool, StoreError>> {
        if jobs.len() == 1 {
            let job = jobs.into_iter().next().expect("one job");
            return vec![self.mark_one(job).await];
        }
        let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
        match self.mark_batch_postgres(&jobs).await {
            Ok(owned) => ids.iter().map(|id| Ok(owned.contains(id))).collect(),
            Err(e) => {
                self.one_by_one(jobs, "created waybills", e, |j| self.mark_one(j))
                    .await
            }
        }
    }

    /// One statement: the rows updated where their attempt still owns them, their labels
    /// stored for exactly those, the ids answered.
    async fn mark_batch_postgres(&self, jobs: &[MarkJob]) -> Result<HashSet<String>, StoreError> {
        let rows: Vec<String> = (0..jobs.len())
            .map(|k| format!("({})", list(1 + 11 * k, 11)))
            .collect();
        // The values' columns are named by their numbers among `MARK_CREATED`'s arguments
        // (v.c1 the waybill number, …), then the label's (c10 format, c11 content).
        let names: Vec<String> = (1..=11).map(|n| format!("c{n}")).collect();
        let sql = format!(
            "WITH v ({}) AS (VALUES {}), \
             owned AS (UPDATE waybills w SET {} FROM v \
             WHERE w.id = v.c6 AND w.attempts = v.c7 AND w.state = 'pending' RETURNING w.id), \
             stored AS (INSERT INTO labels (waybill_id, format, content, created_at) \
             SELECT v.c6, v.c10, v.c11, v.c5 FROM v JOIN owned ON owned.id = v.c6 \
             {STORE_LABEL_CONFLICT}) \
             SELECT id FROM owned",
            names.join(", "),
            rows.join(", "),
            mark_set(|n| format!("v.c{n}"))
        );
        let rows = self
            .write_fetch_all(statement(self.dialect, &sql, mark_args(jobs)))
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

/// The values of a batch of marks, eleven per job in the order of `MarkJob`.
fn mark_args(jobs: &[MarkJob]) -> Vec<Arg> {
    jobs.iter()
        .flat_map(|j| {
            j.args
                .iter()
                .cloned()
                .chain([Arg::Text(j.format.clone()), Arg::Bytes(j.content.clone())])
        })
        .collect()
}
