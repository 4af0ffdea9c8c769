//! Message signing, one place for every HMAC the gateway computes or checks: Standard Webhooks
//! signatures (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`) on inbound sandbox pushes and on
//! outbound pushes to subscribers, and plain HMAC-SHA256 of a body (FedEx pushes).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; the error case cannot happen.
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

fn standard_webhooks_mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut m = mac(key);
    m.update(id.as_bytes());
    m.update(b".");
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// Prefix of Standard Webhooks secrets: the rest is the base64 of the HMAC key.
pub const SECRET_PREFIX: &str = "whsec_";

/// The HMAC key of a Standard Webhooks secret: the decoded part after `whsec_` (the
/// specification's form); a secret without the prefix is used as it is written.
pub fn standard_webhooks_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|k| STANDARD.decode(k).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// The Standard Webhooks signature of `id.timestamp.body`, as sent in `webhook-signature`.
pub fn standard_webhooks_sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let m = standard_webhooks_mac(key, id, &timestamp.to_string(), body);
    format!("v1,{}", STANDARD.encode(m.finalize().into_bytes()))
}

/// Whether any of the space-separated `v1,` signatures in `header` signs `id.timestamp.body`
/// (compared in constant time).
pub fn standard_webhooks_verify(
    key: &[u8],
    id: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
) -> bool {
    let m = standard_webhooks_mac(key, id, timestamp, body);
    header.split_whitespace().any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b| STANDARD.decode(b).ok())
            .is_some_and(|sig| m.clone().verify_slice(&sig).is_ok())
    })
}

/// Whether `signature` is the HMAC-SHA256 of `body` (compared in constant time).
pub fn hmac_sha256_verify(key: &[u8], body: &[u8], signature: &[u8]) -> bool {
    let mut m = mac(key);
    m.update(body);
    m.verify_slice(signature).is_ok()
}

/// HMAC-SHA256 of `body`, raw bytes.
pub fn hmac_sha256(key: &[u8], body: &[u8]) -> Vec<u8> {
    let mut m = mac(key);
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// Byte strings compared without an early exit (for tokens such as SF's `verifyCode`).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_example_signs_and_verifies() {
        // The example of the Standard Webhooks specification.
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let (id, ts) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330);
        let body = br#"{"test": 2432232314}"#;
        let sig = standard_webhooks_sign(&key, id, ts, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(standard_webhooks_verify(
            &key,
            id,
            "1614265330",
            body,
            &format!("v1,bad= {sig}")
        ));
        assert!(!standard_webhooks_verify(
            &key,
            id,
            "1614265331",
            body,
            &sig
        ));
    }

    #[test]
    fn whsec_secrets_key_with_their_decoded_part() {
        let key = standard_webhooks_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(
            key,
            STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
        );
        assert_eq!(standard_webhooks_key("plain-secret"), b"plain-secret");
    }

    #[test]
    fn plain_hmac_verifies_only_its_body() {
        let sig = hmac_sha256(b"secret", b"body");
        assert!(hmac_sha256_verify(b"secret", b"body", &sig));
        assert!(!hmac_sha256_verify(b"secret", b"body!", &sig));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
    }
}
