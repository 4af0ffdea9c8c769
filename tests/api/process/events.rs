//! `shipgate events`: consumers' positions listed, and a position forgotten.

use super::shipgate;

#[test]
fn events_list_and_forget_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let out = shipgate(&url, dir.path()).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A consumer that read one of two events, as the database bus leaves it.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        for (i, id) in ["evt_a", "evt_b"].iter().enumerate() {
            sqlx::query(
                "INSERT INTO events (event_id, tenant_id, event_type, aggregate, payload, \
                 created_at_ms) VALUES ($1, 'ten_x', 'inventory.stock_changed', 'sku:A', '{}', $2)",
            )
            .bind(*id)
            .bind(i as i64)
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO event_consumers (name, position, lease_owner, lease_until_ms, \
             updated_at_ms) VALUES ('inventory.available_to_sell', 1, NULL, 0, 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
    });
    let list = || {
        let out = shipgate(&url, dir.path())
            .args(["events", "list"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = list();
    assert!(
        listed.contains("inventory.available_to_sell\tbehind 1\t"),
        "{listed}"
    );
    let forget = |name: &str| {
        shipgate(&url, dir.path())
            .args(["events", "forget", name])
            .output()
            .unwrap()
    };
    assert!(forget("inventory.available_to_sell").status.success());
    assert!(!list().contains("inventory.available_to_sell"));
    let again = forget("inventory.available_to_sell");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no consumer named"));
}
