//! Where labels are drawn and merged: a few threads of their own (one per core) that live as
//! long as the process. Drawing is CPU work that allocates a lot for a moment (fonts, pages);
//! on the async runtimes' blocking pools each burst could land on a new thread with a heap of
//! its own, and the process kept the memory of every such heap. Here there are as many heaps as
//! threads, and jobs wait in a queue instead of spawning more.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct Drawing {
    jobs: mpsc::Sender<Job>,
}

impl Drawing {
    /// Starts `threads` drawing threads (at least one).
    pub fn new(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            let started = std::thread::Builder::new()
                .name(format!("labels-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while taking a job, not while running it.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        let Ok(job) = job else { return };
                        // A panicking job loses its answer (the caller sees it), not the thread.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                });
            if let Err(e) = started {
                tracing::error!(error = %e, "cannot start a label drawing thread");
            }
        }
        Self { jobs }
    }

    /// One thread per core.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Runs `work` on a drawing thread; `None` when it panicked or no thread could take it.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(work());
        });
        self.jobs.send(job).ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_drawing_threads_and_survive_a_panic() {
        let drawing = Drawing::new(2);
        let name = drawing
            .run(|| std::thread::current().name().map(str::to_owned))
            .await;
        assert!(name.flatten().is_some_and(|n| n.starts_with("labels-")));
        assert_eq!(drawing.run(|| -> u8 { panic!("bad label") }).await, None);
        // Both threads still work after the panic.
        let (a, b) = tokio::join!(drawing.run(|| 1), drawing.run(|| 2));
        assert_eq!((a, b), (Some(1), Some(2)));
    }
}
