//! The servers and tools a test needs beyond the process, and whether the test command provided
//! them (`needs!`).

/// Servers a test needs beyond the process: the test command starts them (and installs their
/// binaries); a plain `cargo test` without them skips such tests with a message (`needs!`).
#[derive(Debug, Clone, Copy)]
pub enum Server {
    /// The PostgreSQL server of the test command (`TEST_POSTGRES_URL`).
    Postgres,
    /// The Redis server of the test command (`TEST_REDIS_URL`).
    Redis,
    /// `redis-server` on the PATH (for tests that start and stop their own Redis).
    RedisBinary,
    /// PostgreSQL's server binaries (for tests that start and stop their own PostgreSQL).
    PostgresBinaries,
    /// Python with the official Standard Webhooks library (`STANDARDWEBHOOKS_PYTHON`).
    StandardWebhooks,
    /// The Kafka-protocol broker of the test command (`TEST_KAFKA_BROKERS`).
    Kafka,
    /// The test command's second broker, which signs clients in with SASL SCRAM-SHA-512
    /// (`TEST_KAFKA_SCRAM_BROKERS`, `TEST_KAFKA_SCRAM_USER`, `TEST_KAFKA_SCRAM_PASSWORD`).
    KafkaScram,
    /// The Redis Cluster of the test command (`TEST_REDIS_CLUSTER_URL`).
    RedisCluster,
}

impl Server {
    /// Why the server is not there, if it is not.
    pub fn missing(self) -> Option<&'static str> {
        let env = |name| std::env::var_os(name).is_none_or(|v| v.is_empty());
        match self {
            Self::Postgres if env("TEST_POSTGRES_URL") => {
                Some("TEST_POSTGRES_URL is not set (scripts/test.sh starts PostgreSQL)")
            }
            Self::Redis if env("TEST_REDIS_URL") => {
                Some("TEST_REDIS_URL is not set (scripts/test.sh starts Redis)")
            }
            Self::RedisBinary if !on_path("redis-server") => {
                Some("redis-server is not installed (scripts/test.sh installs it)")
            }
            Self::PostgresBinaries
                if !std::path::Path::new("/usr/lib/postgresql/15/bin/pg_ctl").exists() =>
            {
                Some("PostgreSQL 15 server binaries are not installed")
            }
            Self::Kafka if env("TEST_KAFKA_BROKERS") => {
                Some("TEST_KAFKA_BROKERS is not set (scripts/test.sh starts the broker)")
            }
            Self::KafkaScram if env("TEST_KAFKA_SCRAM_BROKERS") => Some(
                "TEST_KAFKA_SCRAM_BROKERS is not set (scripts/test.sh starts the SCRAM broker)",
            ),
            Self::RedisCluster if env("TEST_REDIS_CLUSTER_URL") => {
                Some("TEST_REDIS_CLUSTER_URL is not set (scripts/test.sh starts the cluster)")
            }
            Self::StandardWebhooks if env("STANDARDWEBHOOKS_PYTHON") => {
                Some("STANDARDWEBHOOKS_PYTHON is not set (scripts/test.sh installs the library)")
            }
            _ => None,
        }
    }
}

/// Runs the official Standard Webhooks library (tests/e2e/standardwebhooks_check.py): `sign`
/// gives the `webhook-signature` of a message, `verify` whether one verifies.
pub fn standard_webhooks(args: &[&str], body: &[u8]) -> std::process::Output {
    use std::io::Write;
    let python = std::env::var("STANDARDWEBHOOKS_PYTHON").expect("needs!(StandardWebhooks)");
    let script = format!(
        "{}/tests/e2e/standardwebhooks_check.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut child = std::process::Command::new(python)
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .expect("body written");
    child.wait_with_output().expect("python ends")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
