//! Faults: PostgreSQL stopped in the middle of a create load. Requests fail cleanly (503 with a
//! code, never a 500 or a dropped connection), nothing acknowledged is lost, no waybill is left
//! half-written, and the service recovers by itself when the database is back.

use crate::helpers::{Backend, spawn_app_with, waybill_request};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A private PostgreSQL this test may stop and start (as the `postgres` user when run as root).
struct OwnPostgres {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

fn as_postgres(cmd: &Path) -> Command {
    let root = std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(cmd);
        c
    } else {
        Command::new(cmd)
    }
}

impl OwnPostgres {
    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL binaries (installed by scripts/test.sh)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("initdb");
        let dir = std::env::temp_dir().join(format!("sg-faults-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ok = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let pg = Self { dir, port, bin };
        pg.up();
        pg
    }

    fn up(&self) {
        let out = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "start", "-o"])
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1",
                self.port,
                self.dir.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops at once, as a crash would (no checkpoint, clients cut off).
    fn crash(&self) {
        let out = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_load_fails_cleanly_and_recovers() {
    crate::needs!(PostgresBinaries);
    let pg = OwnPostgres::start();
    let url = pg.url();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.database_url = url;
        s.rate_limits.enabled = false;
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(HashMap::<String, String>::new()));
    let refused = Arc::new(Mutex::new(Vec::<(u16, String)>::new()));
    let load: Vec<_> = (0..4)
        .map(|c| {
            let (stop, acked, refused) = (stop.clone(), acked.clone(), refused.clone());
            let (address, key) = (app.address.clone(), app.key.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let reference = format!("PO-PGDOWN-{c}-{i}");
                    let res = client
                        .post(format!("{address}/v1/waybills"))
                        .bearer_auth(&key)
                        .json(&waybill_request(&reference))
                        .send()
                        .await
                        .expect("the service answers while its database is away");
                    let status = res.status().as_u16();
                    let body: serde_json::Value = res.json().await.expect("a JSON envelope");
                    if status == 201 {
                        let number = body["waybillNumber"].as_str().unwrap().to_owned();
                        acked.lock().unwrap().insert(reference, number);
                    } else {
                        assert_eq!(body["status"], 0, "{body}");
                        let code = body["errorCode"].as_str().unwrap_or_default().to_owned();
                        refused.lock().unwrap().push((status, code));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before_crash = acked.lock().unwrap().len();
    assert!(
        before_crash > 10,
        "only {before_crash} waybills before the crash"
    );
    pg.crash();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = refused.lock().unwrap().len();
    assert!(
        during > 0,
        "nothing was refused while the database was down"
    );
    pg.up();
    // Recovery by itself: new waybills are created again.
    let deadline = Instant::now() + Duration::from_secs(20);
    let after_restart = acked.lock().unwrap().len();
    while acked.lock().unwrap().len() < after_restart + 10 {
        assert!(
            Instant::now() < deadline,
            "no recovery after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }

    // Every refusal was a clean 503 with a code.
    for (status, code) in refused.lock().unwrap().iter() {
        assert_eq!((*status, code.as_str()), (503, "SERVICE_UNAVAILABLE"));
    }
    // Nothing acknowledged was lost, and nothing is half-written: every created waybill has its
    // label and exactly one charge.
    let acked = acked.lock().unwrap().clone();
    for (reference, number) in &acked {
        let r = app.get_waybill(&app.key, reference).await;
        assert_eq!(r.status, 200, "{reference} was acknowledged and is gone");
        assert_eq!(r.waybill_number(), number);
    }
    let created = app
        .count("SELECT COUNT(*) FROM waybills WHERE state = 'created'")
        .await;
    assert!(created >= acked.len() as i64);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM waybills w WHERE w.state = 'created' \
             AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.waybill_id = w.id)"
        )
        .await,
        0
    );
    assert_eq!(app.charges().await, created);
}
