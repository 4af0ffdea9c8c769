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
    pub fn spawn(pool: AnyPool) -> Self {
        let (jobs, rx) = mpsc::channel(4 * MAX_BATCH);
        on_own_thread("sqlite-writer", run(pool, rx));
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

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
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

type Reply = oneshot::Sender<Result<Outcome, sqlx::Error>>;

/// Runs the batch in one transaction; on a failed begin or commit nothing was written and every
/// job's reply comes back with the error.
async fn run_batch(
    pool: &AnyPool,
    jobs: impl Iterator<Item = Job>,
) -> Result<Vec<(Reply, Result<Outcome, sqlx::Error>)>, (Vec<Reply>, sqlx::Error)> {
    use sqlx::Executor;
    let jobs: Vec<Job> = jobs.collect();
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
    match tx.commit().await {
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
