//! The real binary as an operator runs it: the CLI, configuration errors, logs, and a SIGKILL in
//! the middle of a create load (nothing acknowledged is lost, no reference gets two waybills).

use crate::helpers::{Backend, waybill_request};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod events;
mod inventory;
mod keys;
mod ledger;
mod pushes;
mod releases;
mod unknown;

const BIN: &str = env!("CARGO_BIN_EXE_shipgate");

fn shipgate(database_url: &str, dir: &Path) -> Command {
    // The test's own HTTP clients (rustls without a built-in provider) need one installed.
    carriers::http::install_crypto_provider();
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SHIPGATE_DATABASE_URL", database_url)
        .env("SHIPGATE_LISTEN", "127.0.0.1:0");
    cmd
}

fn create_key(database_url: &str, dir: &Path, tenant: &str) -> String {
    let out = shipgate(database_url, dir)
        .args(["keys", "create", "--tenant", tenant, "--create-tenant"])
        .output()
        .expect("run keys create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout.lines().last().unwrap().trim().to_owned()
}

struct Server {
    child: Child,
    log: PathBuf,
    address: String,
}

impl Server {
    fn start(database_url: &str, dir: &Path, log_name: &str, extra: &[(&str, &str)]) -> Self {
        let log = dir.join(log_name);
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = shipgate(database_url, dir);
        cmd.envs(extra.iter().copied())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let mut server = Self {
            child: cmd.spawn().expect("start shipgate"),
            log,
            address: String::new(),
        };
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&server.log).unwrap_or_default();
            if let Some(port) = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| v["message"] == "shipgate listening")
                .and_then(|v| v["port"].as_u64())
            {
                server.address = format!("http://127.0.0.1:{port}");
                return server;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "server did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn keys_create_prints_the_key_last_and_migrate_is_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    for _ in 0..2 {
        let out = shipgate(&url, dir.path()).arg("migrate").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let key = create_key(&url, dir.path(), "acme");
    assert!(key.starts_with("sg_") && key.len() == 51, "{key}");
    let second = create_key(&url, dir.path(), "acme");
    assert_ne!(key, second, "every call makes a new key");

    let no_tenant = shipgate(&url, dir.path())
        .args(["keys", "create"])
        .output()
        .unwrap();
    assert!(!no_tenant.status.success());
}

#[test]
fn invalid_configuration_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let cases: [(&str, &str, &str); 4] = [
        (
            "SHIPGATE_IDEMPOTENCY__WAIT_MS",
            "soon",
            "idempotency.wait_ms",
        ),
        ("SHIPGATE_LISTEN", "not-an-address", "listen"),
        ("SHIPGATE_DATABASE_URL", "mysql://x", "database_url"),
        ("SHIPGATE_COLOUR", "blue", "colour"),
    ];
    for (var, value, key) in cases {
        let out = shipgate(&url, dir.path())
            .env(var, value)
            .arg("serve")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{var}: {stderr}");
    }
    let toml = dir.path().join("bad.toml");
    std::fs::write(&toml, "[http]\nmax_body_bytes = \"big\"\n").unwrap();
    let out = shipgate(&url, dir.path())
        .env("SHIPGATE_CONFIG", &toml)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http.max_body_bytes"));

    // Hardening: real account numbers, CRIDs and MIDs are digits, set this way by every
    // docker-compose deployment; they start the binary and stay text.
    let out = shipgate(&url, dir.path())
        .env("SHIPGATE_CARRIERS__FEDEX__ACCOUNT_NUMBER", "740561073")
        .env("SHIPGATE_CARRIERS__USPS__CRID", "56982563")
        .env("SHIPGATE_CARRIERS__USPS__MID", "0901234567")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sigterm(server: &Server) {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(server: &mut Server, within: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < within, "still running after {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
