//! The way to Redis the shared caches and limits use: one server (a reconnecting connection) or
//! a Redis Cluster (`redis_cluster`; `redis_url` then lists seed nodes separated by commas),
//! behind one connection type. In a cluster every multi-key script's keys share a hash tag, so
//! they live in one slot; a master that fails over is followed by refreshing the slot map.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use std::num::NonZeroUsize;
use std::time::Duration;

/// Where Redis is, before connecting.
pub enum RedisTarget {
    Single(redis::Client),
    Cluster(Vec<String>),
}

/// A live connection, cheap to clone.
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisTarget {
    /// `url` is one `redis://` URL, or with `cluster` any number of them separated by commas.
    pub fn new(url: &str, cluster: bool) -> anyhow::Result<Self> {
        if cluster {
            let nodes: Vec<String> = url
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect();
            if nodes.is_empty() {
                anyhow::bail!("redis_url: names no cluster node");
            }
            // Fails here, not on first use, for a URL that cannot be read.
            redis::cluster::ClusterClient::new(nodes.clone())
                .map_err(|e| anyhow::anyhow!("redis_url: {e}"))?;
            Ok(Self::Cluster(nodes))
        } else {
            Ok(Self::Single(
                redis::Client::open(url).map_err(|e| anyhow::anyhow!("redis_url: {e}"))?,
            ))
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Connects with `timeout` per connection and per answer. `cache`: keep up to that many
    /// marked reads in process memory, invalidated by Redis's push messages (RESP3).
    pub async fn connect(
        &self,
        timeout: Duration,
        cache: Option<NonZeroUsize>,
    ) -> redis::RedisResult<RedisConn> {
        let cache_config = cache.map(|keys| {
            redis::caching::CacheConfig::new()
                .set_mode(redis::caching::CacheMode::OptIn)
                .set_size(keys)
        });
        match self {
            Self::Single(client) => {
                let mut config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(200));
                if let Some(cache_config) = cache_config {
                    config = config.set_cache_config(cache_config);
                }
                Ok(RedisConn::Single(
                    ConnectionManager::new_with_config(client.clone(), config).await?,
                ))
            }
            Self::Cluster(nodes) => {
                let mut builder = redis::cluster::ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    // A failed-over master: its slots move, the map is read again.
                    .retries(2);
                if let Some(cache_config) = cache_config {
                    builder = builder
                        .use_protocol(redis::ProtocolVersion::RESP3)
                        .cache_config(cache_config);
                }
                Ok(RedisConn::Cluster(
                    builder.build()?.get_async_connection().await?,
                ))
            }
        }
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}
