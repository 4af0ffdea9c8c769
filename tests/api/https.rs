//! HTTPS with rustls from PEM files: HTTP/1.1 and HTTP/2 (ALPN), a self-signed certificate.

use crate::helpers::{Backend, spawn_app_with};
use reqwest::Version;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_over_http1_and_http2() {
    carriers::http::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    let (cert_path, key_path) = (cert.display().to_string(), key.display().to_string());
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.tls.cert_path = Some(cert_path);
        s.tls.key_path = Some(key_path);
    })
    .await;
    let port = app.address.rsplit(':').next().unwrap();
    let url = format!("https://localhost:{port}");
    let root = reqwest::Certificate::from_pem(generated.cert.pem().as_bytes()).unwrap();

    for (client, version) in [
        (
            reqwest::Client::builder()
                .add_root_certificate(root.clone())
                .http1_only()
                .build()
                .unwrap(),
            Version::HTTP_11,
        ),
        (
            reqwest::Client::builder()
                .add_root_certificate(root.clone())
                .build()
                .unwrap(),
            Version::HTTP_2,
        ),
    ] {
        let res = client.get(format!("{url}/livez")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.version(), version);
        let res = client
            .get(format!("{url}/v1/waybills/NOPE"))
            .bearer_auth(&app.key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["errorCode"], "NOT_FOUND");
    }

    // A client that does not trust the certificate is refused; plain HTTP gets no answer.
    let untrusting = reqwest::Client::new();
    assert!(untrusting.get(format!("{url}/livez")).send().await.is_err());
    let plain = reqwest::Client::new()
        .get(format!("http://localhost:{port}/livez"))
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
}

#[test]
fn a_certificate_without_its_key_is_a_configuration_error() {
    use figment::providers::{Format, Toml};
    let figment = shipgate::settings::Settings::defaults()
        .merge(Toml::string("[tls]\ncert_path = \"cert.pem\""));
    let err = shipgate::settings::Settings::from_figment(figment).unwrap_err();
    assert!(err.0.contains("tls.key_path"), "{err}");
}
