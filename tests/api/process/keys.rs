//! `shipgate keys`: an unknown tenant is refused unless asked for, keys have a mode and scopes,
//! and a key rotated or revoked on the command line stops working at a server.

use super::{Server, shipgate};
use std::path::Path;

fn keys(url: &str, dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = shipgate(url, dir)
        .arg("keys")
        .args(args)
        .output()
        .expect("run keys");
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn last_line(stdout: &str) -> String {
    stdout.lines().last().unwrap().trim().to_owned()
}

/// The id of the key whose listed line starts with the key's visible prefix.
fn key_id(url: &str, dir: &Path, tenant: &str, key: &str) -> String {
    let (ok, list, err) = keys(url, dir, &["list", "--tenant", tenant]);
    assert!(ok, "{err}");
    list.lines()
        .find(|l| l.contains(&key[..9]))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{key} not in:\n{list}"))
        .to_owned()
}

async fn status_of(server: &Server, key: &str, path: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}{path}", server.address))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn keys_have_modes_and_scopes_and_stop_when_rotated_or_revoked_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());

    // A typo in a tenant's name does not silently make a new tenant.
    let (ok, _, err) = keys(&url, dir.path(), &["create", "--tenant", "acme"]);
    assert!(!ok, "an unknown tenant must be refused");
    assert!(err.contains("--create-tenant"), "{err}");
    let (ok, out, err) = keys(
        &url,
        dir.path(),
        &["create", "--tenant", "acme", "--create-tenant"],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("test mode"),
        "keys are test keys unless asked: {out}"
    );
    let test_key = last_line(&out);
    // Now the tenant exists: no flag needed.
    let (ok, out, err) = keys(
        &url,
        dir.path(),
        &[
            "create",
            "--tenant",
            "acme",
            "--mode",
            "live",
            "--scopes",
            "labels:read",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("live mode"), "{out}");
    let station_key = last_line(&out);
    let (ok, _, err) = keys(
        &url,
        dir.path(),
        &["create", "--tenant", "acme", "--scopes", "labels:write"],
    );
    assert!(!ok && err.contains("labels:write"), "{err}");

    let (ok, list, _) = keys(&url, dir.path(), &["list", "--tenant", "acme"]);
    assert!(ok);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains(" live  labels:read  active"), "{list}");

    // Rotate the test key with no grace: the new key works, the old one does not.
    let test_id = key_id(&url, dir.path(), "acme", &test_key);
    let (ok, out, err) = keys(
        &url,
        dir.path(),
        &["rotate", &test_id, "--grace-hours", "0"],
    );
    assert!(ok, "{err}");
    let rotated = last_line(&out);
    assert!(rotated.starts_with("sg_") && rotated != test_key);
    let (ok, _, err) = keys(&url, dir.path(), &["rotate", &test_id]);
    assert!(
        !ok && err.contains("already rotated"),
        "a key is rotated once: {err}"
    );
    // Revoke the station key.
    let station_id = key_id(&url, dir.path(), "acme", &station_key);
    let (ok, out, err) = keys(&url, dir.path(), &["revoke", &station_id]);
    assert!(ok && out.contains("revoked"), "{out}{err}");

    let server = Server::start(&url, dir.path(), "keys.log", &[]);
    let webhooks = "/v1/webhook-endpoints";
    assert_eq!(status_of(&server, &rotated, webhooks).await, 200);
    assert_eq!(status_of(&server, &test_key, webhooks).await, 401);
    assert_eq!(status_of(&server, &station_key, webhooks).await, 401);
}
