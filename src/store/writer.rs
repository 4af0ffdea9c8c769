//! Group commit for SQLite.
//!
//! SQLite has one writer and, with `synchronous = FULL`, one fsync per commit: committing each
//! statement on its own caps throughput at the disk's fsync rate. The writer task takes every
//! write statement waiting in its queue, runs them in one transaction and commits once, so under
//! load many requests share one fsync; a statement's result is released only after the commit.
//! Each queued statement is a whole unit of work (statement-level atomicity), so a failing one
//! does not affect the others in its batch.
//!
//! PostgreSQL does group commit itself; there writes go straight to the pool.

use sqlx::any::{AnyArguments, AnyQueryResult, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyPool};
use tokio::sync::{mpsc, oneshot};

pub type WriteQuery = Query<'static, Any, AnyArguments>;

/// What a write statement gives back.
pub enum Outcome {
    Done(AnyQueryResult),
    Row(Option<AnyRow>),
    Rows(Vec<AnyRow>),
    Group(Vec<AnyQueryResult>),
    Unit(UnitResult),
}

/// What a unit of work gives back: its value, or its error (and then its writes are undone).
pub type UnitResult = Result<Box<dyn std::any::Any + Send>, Box<dyn std::any::Any + Send>>;

/// A unit of work: reads and writes on the writer's connection that must see each other and
/// commit or roll back together (reserving stock: read what is available, then take it).
pub type Unit = Box<
    dyn for<'c> FnOnce(
            &'c mut sqlx::AnyConnection,
        ) -> futures_util::future::BoxFuture<'c, UnitResult>
        + Send,
>;

enum Want {
    Execute,
    FetchOptional,
    FetchAll,
    /// Several statements, in order, in one batch.
    Group(Vec<WriteQuery>),
    /// A unit of work under a savepoint of the batch's transaction.
    Unit(Unit),
}

struct Job {
    query: Option<WriteQuery>,
    want: Want,
    reply: oneshot::Sender<Result<Outcome, sqlx::Error>>,
}

/// Largest number of statements committed together.
const MAX_BATCH: usize = 256;

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer on `pool` (a single-connection pool), on a thread of its own: its
    /// statements go one after another to SQLite's connection thread, and the wake-ups of that
    /// ping-pong do not queue behind the instance's other tasks (they share the main thread).
    /// It ends when the last handle is dropped.
    ///
    /// `checkpoints` (another connection) checkpoints the WAL beside the writer, at most every
    /// [`CHECKPOINT_EVERY`] while writes are committed, one checkpoint at a time: the writer's
    /// connection has its automatic checkpoints off, so its commits never wait for one.
    pub fn spawn(pool: AnyPool, checkpoints: AnyPool) -> Self {
        let (jobs, rx) = mpsc::channel(4 * MAX_BATCH);
        on_own_thread("sqlite-writer", run(pool, rx, checkpoints));
        Self { jobs }
    }

    pub async fn execute(&self, query: WriteQuery) -> Result<AnyQueryResult, sqlx::Error> {
        match self.submit(query, Want::Execute).await? {
            Outcome::Done(done) => Ok(done),
            _ => Err(sqlx::Error::Protocol("writer: expected a result".into())),
        }
    }

    pub async fn fetch_optional(&self, query: WriteQuery) -> Result<Option<AnyRow>, sqlx::Error> {
        match self.submit(query, Want::FetchOptional).await? {
            Outcome::Row(row) => Ok(row),
            _ => Err(sqlx::Error::Protocol("writer: expected a row".into())),
        }
    }

    pub async fn fetch_all(&self, query: WriteQuery) -> Result<Vec<AnyRow>, sqlx::Error> {
        match self.submit(query, Want::FetchAll).await? {
            Outcome::Rows(rows) => Ok(rows),
            _ => Err(sqlx::Error::Protocol("writer: expected rows".into())),
        }
    }

    /// Runs the statements in order in the next batch (one commit); their results in order.
    pub async fn execute_group(
        &self,
        queries: Vec<WriteQuery>,
    ) -> Result<Vec<AnyQueryResult>, sqlx::Error> {
        match self.send(None, Want::Group(queries)).await? {
            Outcome::Group(done) => Ok(done),
            _ => Err(sqlx::Error::Protocol("writer: expected results".into())),
        }
    }

    /// Runs the unit of work in the next batch, under a savepoint: its writes are kept when it
    /// returns `Ok` and undone when it returns `Err`; either comes back after the batch commits.
    pub async fn run_unit(&self, unit: Unit) -> Result<UnitResult, sqlx::Error> {
        match self.send(None, Want::Unit(unit)).await? {
            Outcome::Unit(result) => Ok(result),
            _ => Err(sqlx::Error::Protocol(
                "writer: expected a unit's result".into(),
            )),
        }
    }

    async fn submit(&self, query: WriteQuery, want: Want) -> Result<Outcome, sqlx::Error> {
        self.send(Some(query), want).await
    }

    async fn send(&self, query: Option<WriteQuery>, want: Want) -> Result<Outcome, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { query, want, reply })
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        answer.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

/// Runs `work` on a thread named `name` with a runtime of its own (else, if no runtime can be
/// made, on the caller's): its wake-ups do not queue behind the instance's other tasks.
pub(crate) fn on_own_thread(
    name: &str,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => {
            let started = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || runtime.block_on(work));
            if let Err(e) = started {
                tracing::error!(error = %e, thread = name, "cannot start a thread");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, thread = name, "no runtime for a thread; sharing the caller's");
            tokio::spawn(work);
        }
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Job>, checkpoints: AnyPool) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut checkpoint: Option<tokio::task::JoinHandle<()>> = None;
    let mut last_checkpoint = std::time::Instant::now();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let resting = checkpoint.as_ref().is_none_or(|c| c.is_finished());
        if resting && last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
            last_checkpoint = std::time::Instant::now();
            checkpoint = Some(tokio::spawn(checkpoint_wal(checkpoints.clone())));
        }
        match run_batch(&pool, batch.drain(..)).await {
            Ok(answers) => {
                for (reply, result) in answers {
                    let _ = reply.send(result);
                }
            }
            Err((replies, e)) => {
                let message = e.to_string();
                for reply in replies {
                    let failed = sqlx::Error::Protocol(format!("commit failed: {message}"));
                    let _ = reply.send(Err(failed));
                }
            }
        }
    }
}

/// How often, at most, the WAL is checkpointed while writes come in. SQLite's own threshold (1,000
/// pages) is reached about as often under a steady write load; when writes stop, the last
/// connection to close checkpoints what is left.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Copies the WAL's committed pages into the database file without waiting for readers or the
/// writer (`PASSIVE`); the writer starts the WAL over once it was copied whole.
pub(super) async fn checkpoint_wal(pool: AnyPool) {
    let started = std::time::Instant::now();
    match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_optional(&pool)
        .await
    {
        Ok(_) => metrics::histogram!("shipgate_sqlite_checkpoint_seconds")
            .record(started.elapsed().as_secs_f64()),
        Err(e) => tracing::warn!(error = %e, "checkpointing the SQLite WAL failed"),
    }
}

type Reply = oneshot::Sender<Result<Outcome, sqlx::Error>>;

/// Runs the batch in one transaction; on a failed begin or commit nothing was written and every
/// job's reply comes back with the error.
async fn run_batch(
    pool: &AnyPool,
    jobs: impl Iterator<Item = Job>,
) -> Result<Vec<(Reply, Result<Outcome, sqlx::Error>)>, (Vec<Reply>, sqlx::Error)> {
    use sqlx::Executor;
    let jobs: Vec<Job> = jobs.collect();
    let started = std::time::Instant::now();
    metrics::counter!("shipgate_sqlite_writer_jobs_total").increment(jobs.len() as u64);
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(e) => return Err((jobs.into_iter().map(|j| j.reply).collect(), e)),
    };
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        let result = match (job.want, job.query) {
            (Want::Execute, Some(q)) => tx.execute(q).await.map(Outcome::Done),
            (Want::FetchOptional, Some(q)) => tx.fetch_optional(q).await.map(Outcome::Row),
            (Want::FetchAll, Some(q)) => tx.fetch_all(q).await.map(Outcome::Rows),
            (Want::Group(queries), _) => run_group(&mut tx, queries).await,
            (Want::Unit(unit), _) => run_unit(&mut tx, unit).await,
            (_, None) => Err(sqlx::Error::Protocol(
                "writer: a job without a query".into(),
            )),
        };
        answers.push((job.reply, result));
    }
    let committed = tx.commit().await;
    // How long the writer was busy with the batch, begin to commit: its sum over time is the
    // writer's utilization, the one resource every SQLite write shares.
    metrics::histogram!("shipgate_sqlite_writer_batch_seconds")
        .record(started.elapsed().as_secs_f64());
    match committed {
        Ok(()) => Ok(answers),
        Err(e) => Err((answers.into_iter().map(|(reply, _)| reply).collect(), e)),
    }
}

/// The statements of one group, in order, in the batch's transaction. No savepoint (two more
/// round trips to the connection per group): a group is built so that each statement is whole
/// on its own and a failure leaves a prefix that a retry completes (see `TrackingService::ingest`).
async fn run_group(
    tx: &mut sqlx::Transaction<'static, Any>,
    queries: Vec<WriteQuery>,
) -> Result<Outcome, sqlx::Error> {
    use sqlx::Executor;
    let mut done = Vec::with_capacity(queries.len());
    for q in queries {
        done.push(tx.as_mut().execute(q).await?);
    }
    Ok(Outcome::Group(done))
}

/// A unit of work under a savepoint: released when the unit succeeds, rolled back when it fails.
async fn run_unit(
    tx: &mut sqlx::Transaction<'static, Any>,
    unit: Unit,
) -> Result<Outcome, sqlx::Error> {
    use sqlx::Connection;
    let mut savepoint = tx.as_mut().begin().await?;
    let result = unit(savepoint.as_mut()).await;
    match result {
        Ok(_) => savepoint.commit().await?,
        Err(_) => savepoint.rollback().await?,
    }
    Ok(Outcome::Unit(result))
}
