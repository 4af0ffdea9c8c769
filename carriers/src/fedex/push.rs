//! FedEx tracking pushes: a body in the Track API's result shape, `fdx-signature` the
//! HMAC-SHA256 of the body (hex or base64) with the shared secret. A delivery is identified by
//! the SHA-256 of the body and the number, which is what refuses a replay: `fdx-timestamp` is
//! not covered by the signature (anyone replaying a push can set it), so it is not trusted.

use crate::CarrierId;
use crate::push::{PushDelivery, PushError, PushReceiver, PushRequest};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

pub struct FedexPush;

impl PushReceiver for FedexPush {
    fn carrier(&self) -> CarrierId {
        CarrierId::Fedex
    }

    fn read(
        &self,
        req: &PushRequest<'_>,
        secret: &SecretString,
    ) -> Result<Vec<PushDelivery>, PushError> {
        let signature = req.require_header("fdx-signature")?;
        let signature = signature.trim();
        let sig = hex::decode(signature)
            .ok()
            .or_else(|| {
                base64::engine::general_purpose::STANDARD
                    .decode(signature)
                    .ok()
            })
            .ok_or_else(|| {
                PushError::Unauthorized("fdx-signature is neither hex nor base64".into())
            })?;
        if !crate::signing::hmac_sha256_verify(secret.expose_secret().as_bytes(), req.body, &sig) {
            return Err(PushError::Unauthorized("signature does not match".into()));
        }
        let id = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(req.body))
        };
        let results =
            super::responses::pushed(req.body).map_err(|e| PushError::Invalid(e.to_string()))?;
        Ok(results
            .into_iter()
            .map(|(number, events)| PushDelivery {
                id: format!("{id}:{number}"),
                number,
                update: events.into(),
            })
            .collect())
    }
}
