//! One statement for many callers: each caller submits its job and awaits its own answer; the
//! jobs that queue while earlier batches run go to the database together, as one multi-row
//! statement. With nothing running a job goes at once (no added wait); under load the batches
//! grow by themselves.

use super::StoreError;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Semaphore, oneshot};

type Reply<R> = oneshot::Sender<Result<R, StoreError>>;

struct Waiting<J, R> {
    id: u64,
    job: J,
    reply: Reply<R>,
}

struct Inner<J, R> {
    queue: Mutex<VecDeque<Waiting<J, R>>>,
    /// Batches running at once; the jobs that arrive meanwhile wait for the next.
    running: Arc<Semaphore>,
    next: AtomicU64,
    /// Most jobs in one batch.
    most: usize,
}

pub(crate) struct Coalescer<J, R> {
    inner: Arc<Inner<J, R>>,
}

impl<J, R> Clone for Coalescer<J, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<J, R> Inner<J, R> {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Waiting<J, R>>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Takes a caller's job back out of the queue when the caller goes away before any batch took
/// it: a job whose caller stopped waiting is never run later by another batch.
struct Unqueue<'a, J, R> {
    inner: &'a Inner<J, R>,
    id: u64,
}

impl<J, R> Drop for Unqueue<'_, J, R> {
    fn drop(&mut self) {
        self.inner.queue().retain(|w| w.id != self.id);
    }
}

impl<J: Send + 'static, R: Send + 'static> Coalescer<J, R> {
    /// At most `most` jobs per batch, `side_by_side` batches at once.
    pub(crate) fn new(most: usize, side_by_side: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                queue: Mutex::new(VecDeque::new()),
                running: Arc::new(Semaphore::new(side_by_side.max(1))),
                next: AtomicU64::new(0),
                most: most.max(1),
            }),
        }
    }

    /// Runs `job` in a batch and answers its result. `run` makes a batch's future from its jobs
    /// (this caller's among them, in the order they came) and answers one result per job, in
    /// that order; it is called only when this caller is the one to send the next batch. The
    /// batch runs on a task of its own, so a caller that stops waiting cancels no other's job.
    pub(crate) async fn submit<F, Fut>(&self, job: J, run: F) -> Result<R, StoreError>
    where
        F: FnOnce(Vec<J>) -> Fut,
        Fut: Future<Output = Vec<Result<R, StoreError>>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        self.inner.queue().push_back(Waiting { id, job, reply });
        let unqueue = Unqueue {
            inner: &self.inner,
            id,
        };
        // The semaphore is never closed: a permit always comes.
        let permit = self.inner.running.clone().acquire_owned().await.ok();
        let taken: Vec<Waiting<J, R>> = {
            let mut queue = self.inner.queue();
            let n = queue.len().min(self.inner.most);
            queue.drain(..n).collect()
        };
        // From here this caller's job is in a batch (this one or another's).
        drop(unqueue);
        if !taken.is_empty() {
            let (jobs, replies): (Vec<J>, Vec<Reply<R>>) =
                taken.into_iter().map(|w| (w.job, w.reply)).unzip();
            let work = run(jobs);
            tokio::spawn(async move {
                let results = work.await;
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
                drop(permit);
            });
        }
        // A batch that died without answering (a bug or a panic) leaves its callers an error
        // they may retry, as for a crashed writer.
        answer
            .await
            .unwrap_or(Err(StoreError::Sql(sqlx::Error::WorkerCrashed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Jobs sent while a batch runs go out together in the next; each caller gets its own
    /// answer.
    #[tokio::test]
    async fn jobs_queued_behind_a_running_batch_go_out_as_one() {
        let c: Coalescer<u32, u32> = Coalescer::new(64, 1);
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(tokio::sync::Notify::new());
        let run = |sizes: Arc<Mutex<Vec<usize>>>, gate: Option<Arc<tokio::sync::Notify>>| {
            move |jobs: Vec<u32>| async move {
                sizes.lock().unwrap().push(jobs.len());
                if let Some(gate) = gate {
                    gate.notified().await;
                }
                jobs.into_iter().map(|j| Ok(j * 10)).collect()
            }
        };
        // The first job holds the only batch slot until the gate opens.
        let first = {
            let (c, sizes, gate) = (c.clone(), sizes.clone(), gate.clone());
            tokio::spawn(async move { c.submit(1, run(sizes, Some(gate))).await })
        };
        while sizes.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let rest: Vec<_> = (2..=6)
            .map(|j| {
                let (c, sizes) = (c.clone(), sizes.clone());
                tokio::spawn(async move { c.submit(j, run(sizes, None)).await })
            })
            .collect();
        while c.inner.queue().len() < 5 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        gate.notify_one();
        assert_eq!(first.await.unwrap().unwrap(), 10);
        for (j, r) in (2..=6).zip(rest) {
            assert_eq!(r.await.unwrap().unwrap(), j * 10);
        }
        assert_eq!(*sizes.lock().unwrap(), vec![1, 5]);
    }

    /// A caller that stops waiting before its job was taken leaves nothing behind to run.
    #[tokio::test]
    async fn a_job_whose_caller_left_is_not_run() {
        let c: Coalescer<u32, u32> = Coalescer::new(64, 1);
        let permit = c.inner.running.clone().acquire_owned().await.unwrap();
        let ran = Arc::new(Mutex::new(Vec::new()));
        let waiting = {
            let (c, ran) = (c.clone(), ran.clone());
            tokio::spawn(async move {
                c.submit(7, move |jobs: Vec<u32>| async move {
                    ran.lock().unwrap().extend(jobs.iter().copied());
                    jobs.into_iter().map(Ok).collect()
                })
                .await
            })
        };
        while c.inner.queue().is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        waiting.abort();
        let _ = waiting.await;
        assert!(c.inner.queue().is_empty());
        drop(permit);
        let ran_next = ran.clone();
        let answer = c
            .submit(8, move |jobs: Vec<u32>| async move {
                ran_next.lock().unwrap().extend(jobs.iter().copied());
                jobs.into_iter().map(Ok).collect()
            })
            .await
            .unwrap();
        assert_eq!(answer, 8);
        assert_eq!(*ran.lock().unwrap(), vec![8]);
    }
}
