//! OAuth2 client-credentials tokens: cached until shortly before expiry, fetched by one caller
//! while the others wait for it (single flight).

use super::RawResponse;
use crate::CarrierError;
use serde::Deserialize;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Refresh this long before the carrier's stated expiry, so no request leaves with a token
/// that expires on the way.
const EARLY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Token {
    pub value: String,
    pub expires_at: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

#[derive(Default)]
pub(crate) struct TokenCache {
    slot: Mutex<Option<Token>>,
}

impl TokenCache {
    /// The cached token, or a new one from `fetch`. `refused` is a token the carrier turned
    /// down: it is replaced, unless another caller has replaced it already.
    pub(crate) async fn get<F, Fut>(
        &self,
        refused: Option<&str>,
        fetch: F,
    ) -> Result<Token, CarrierError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, CarrierError>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(token) = slot.as_ref()
            && token.expires_at > Instant::now() + EARLY
            && refused != Some(token.value.as_str())
        {
            return Ok(token.clone());
        }
        let token = fetch().await?;
        *slot = Some(token.clone());
        Ok(token)
    }
}

#[derive(Deserialize)]
struct OAuthBody {
    access_token: String,
    /// Seconds; FedEx sends a number, UPS and USPS a string.
    expires_in: Option<serde_json::Value>,
}

pub(crate) fn parse_oauth(
    carrier: crate::CarrierId,
    res: &RawResponse,
) -> Result<Token, CarrierError> {
    let body: OAuthBody = res.json(carrier)?;
    let seconds = match body.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .unwrap_or(300);
    if body.access_token.is_empty() {
        return Err(CarrierError::Auth(format!("{carrier}: empty access token")));
    }
    Ok(Token {
        value: body.access_token,
        expires_at: Instant::now() + Duration::from_secs(seconds),
    })
}
