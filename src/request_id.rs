//! The id of the request a task is serving: set by the HTTP layer for each request, read by
//! whatever logs or answers on its behalf (error bodies carry it as `requestId`).

use std::future::Future;

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being served on this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `fut` as the work of request `id`.
pub async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    CURRENT.scope(id, fut).await
}

/// Runs `f` as the work of request `id` (synchronous code, e.g. building a panic answer).
pub fn sync_scope<R>(id: String, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(id, f)
}
