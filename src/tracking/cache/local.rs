//! Answers in process memory, for deployments without Redis (one instance).

use super::Lookup;
use bytes::Bytes;
use std::time::Duration;

pub struct LocalCache(moka::future::Cache<String, (i64, Bytes)>);

impl LocalCache {
    pub(super) fn new(capacity: u64, ttl: Duration) -> Self {
        Self(
            moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        )
    }

    pub(super) async fn get(&self, key: &str) -> Lookup {
        match self.0.get(key).await {
            Some((_, body)) => Lookup::Hit(body),
            None => Lookup::Miss,
        }
    }

    pub(super) async fn get_many(&self, keys: &[String]) -> Vec<Option<Bytes>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.0.get(k).await.map(|(_, b)| b));
        }
        out
    }

    /// Writes the answer under each key unless a newer version is there.
    pub(super) async fn put(&self, keys: &[String], version: i64, body: &Bytes) {
        for k in keys {
            let body = body.clone();
            self.0
                .entry(k.clone())
                .and_compute_with(|cur| async move {
                    match cur {
                        Some(e) if e.value().0 > version => moka::ops::compute::Op::Nop,
                        _ => moka::ops::compute::Op::Put((version, body)),
                    }
                })
                .await;
        }
    }
}
