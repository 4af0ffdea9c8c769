//! A tenant's payment-provider accounts (where its provider's webhooks point), and the receipt
//! of a webhook: the account found by the id in its path, the signature checked with the
//! account's secret, the event recorded and posted once.

use super::FinanceService;
use super::error::FinanceError;
use super::payments::{Payment, record};
use crate::fields::FieldError;
use crate::store::{StoreError, now_millis, rfc3339_millis};
use serde::Serialize;
use sqlx::Row;

/// Providers whose webhooks the ledger takes.
pub const PROVIDERS: [&str; 2] = ["stripe", "paypal"];

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentAccount {
    pub id: String,
    pub provider: String,
    pub name: String,
    /// Where the provider posts its events (to be set in its dashboard).
    pub webhook_path: String,
    pub created_at: String,
}

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookRefusal {
    /// Unknown account, or a signature that does not verify (the same answer for both).
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Finance(#[from] FinanceError),
}

fn account(r: &sqlx::any::AnyRow) -> PaymentAccount {
    let (id, provider): (String, String) = (r.get(0), r.get(1));
    PaymentAccount {
        webhook_path: format!("/v1/payment-webhooks/{provider}/{id}"),
        id,
        provider,
        name: r.get(2),
        created_at: rfc3339_millis(r.get(3)),
    }
}

impl FinanceService {
    /// Sets the tenant's account `name` at `provider` with its webhook signing secret (a new
    /// secret replaces the old one; the id, hence the webhook URL, stays).
    pub async fn put_payment_account(
        &self,
        tenant: &str,
        provider: &str,
        name: &str,
        secret: &str,
    ) -> Result<(PaymentAccount, bool), FinanceError> {
        let mut problems = Vec::new();
        if !PROVIDERS.contains(&provider) {
            problems.push(FieldError::new("provider", "must be stripe or paypal"));
        }
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            problems.push(FieldError::new(
                "name",
                "must be 1 to 64 letters, digits, `-` or `_`",
            ));
        }
        if secret.trim().len() < 8 || secret.len() > 512 {
            problems.push(FieldError::new(
                "webhookSecret",
                "must be 8 to 512 characters",
            ));
        }
        if !problems.is_empty() {
            return Err(FinanceError::Validation(problems));
        }
        let id = format!("pac_{}", uuid::Uuid::new_v4().simple());
        self.db
            .write(
                sqlx::query(
                    "INSERT INTO fin_payment_accounts (id, tenant_id, provider, name, secret, \
                     created_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (tenant_id, provider, name) DO UPDATE SET secret = excluded.secret",
                )
                .bind(id.clone())
                .bind(tenant.to_owned())
                .bind(provider.to_owned())
                .bind(name.to_owned())
                .bind(secret.trim().to_owned())
                .bind(now_millis()),
            )
            .await?;
        let row = sqlx::query(
            "SELECT id, provider, name, created_at_ms FROM fin_payment_accounts \
             WHERE tenant_id = $1 AND provider = $2 AND name = $3",
        )
        .bind(tenant)
        .bind(provider)
        .bind(name)
        .fetch_one(&self.db.pool)
        .await
        .map_err(StoreError::from)?;
        let a = account(&row);
        let new = a.id == id;
        Ok((a, new))
    }

    pub async fn payment_accounts(
        &self,
        tenant: &str,
    ) -> Result<Vec<PaymentAccount>, FinanceError> {
        let rows = sqlx::query(
            "SELECT id, provider, name, created_at_ms FROM fin_payment_accounts \
             WHERE tenant_id = $1 ORDER BY provider, name",
        )
        .bind(tenant)
        .fetch_all(&self.db.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(rows.iter().map(account).collect())
    }

    /// A provider's webhook delivery to account `id`: verified, then recorded and posted once.
    /// `true` with the payment when it is new, `false` when the event came before.
    pub async fn receive_payment_webhook(
        &self,
        provider: &str,
        id: &str,
        headers: &WebhookHeaders,
        body: &[u8],
        tolerance_secs: i64,
    ) -> Result<(Payment, bool), WebhookRefusal> {
        let refused = || {
            WebhookRefusal::Unauthorized("unknown account, or the signature does not verify".into())
        };
        let row = sqlx::query(
            "SELECT tenant_id, secret FROM fin_payment_accounts WHERE id = $1 AND provider = $2",
        )
        .bind(id)
        .bind(provider)
        .fetch_optional(&self.db.pool)
        .await
        .map_err(|e| FinanceError::Store(e.into()))?
        .ok_or_else(refused)?;
        let (tenant, secret): (String, String) = (row.get(0), row.get(1));
        let now = now_millis() / 1000;
        let verified = match provider {
            "stripe" => super::stripe::verify(
                &headers.stripe_signature,
                body,
                &secret,
                now,
                tolerance_secs,
            ),
            _ => match self.paypal_cert(&headers.paypal.cert_url).await {
                Ok(cert) => super::paypal::verify(
                    &headers.paypal,
                    &secret,
                    body,
                    &cert,
                    now,
                    tolerance_secs,
                ),
                Err(e) => Err(e),
            },
        };
        verified.map_err(|why| {
            tracing::warn!(provider, account = id, why, "payment webhook refused");
            refused()
        })?;
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| WebhookRefusal::Malformed(format!("malformed JSON: {e}")))?;
        let event = match provider {
            "stripe" => super::stripe::parse(&value),
            _ => super::paypal::parse(&value),
        }
        .map_err(WebhookRefusal::Malformed)?;
        let dialect = self.db.dialect;
        let provider = provider.to_owned();
        Ok(self
            .db
            .transact(move |conn| {
                Box::pin(async move { record(conn, dialect, &tenant, &provider, &event).await })
            })
            .await?)
    }

    /// PayPal's signing certificate at `url` (a PayPal API host's certificate path), fetched over
    /// HTTPS (from `finance.paypal_api_base` when set) and kept for a day.
    async fn paypal_cert(&self, url: &str) -> Result<std::sync::Arc<Vec<u8>>, String> {
        let path = super::paypal::cert_path(url)?;
        let base = match &self.paypal.base {
            Some(b) => b.trim_end_matches('/').to_owned(),
            None => {
                let u = url::Url::parse(url).map_err(|e| e.to_string())?;
                format!("https://{}", u.host_str().unwrap_or_default())
            }
        };
        let client = self.paypal.client.clone();
        self.paypal
            .certs
            .try_get_with(url.to_owned(), async move {
                let res = client
                    .get(format!("{base}{path}"))
                    .send()
                    .await
                    .map_err(|e| format!("fetching the certificate: {e}"))?;
                if !res.status().is_success() {
                    return Err(format!("fetching the certificate: HTTP {}", res.status()));
                }
                let pem = res
                    .bytes()
                    .await
                    .map_err(|e| format!("fetching the certificate: {e}"))?;
                if pem.len() > 64 * 1024 {
                    return Err("the certificate is too large".into());
                }
                Ok(std::sync::Arc::new(pem.to_vec()))
            })
            .await
            .map_err(|e: std::sync::Arc<String>| e.to_string())
    }
}

/// The headers of a provider's delivery that its signature check reads.
#[derive(Debug, Clone, Default)]
pub struct WebhookHeaders {
    pub stripe_signature: String,
    pub paypal: super::paypal::Transmission,
}

/// Where PayPal's certificates come from, and those already fetched.
#[derive(Clone)]
pub(super) struct PaypalCerts {
    pub base: Option<String>,
    pub client: reqwest::Client,
    pub certs: moka::future::Cache<String, std::sync::Arc<Vec<u8>>>,
}

impl PaypalCerts {
    pub fn new(base: &str) -> Self {
        let client =
            crate::outbound::client(std::time::Duration::from_secs(10), true, "shipgate-finance")
                .unwrap_or_default();
        Self {
            base: Some(base.trim().to_owned()).filter(|b| !b.is_empty()),
            client,
            certs: moka::future::Cache::builder()
                .max_capacity(64)
                .time_to_live(std::time::Duration::from_secs(86_400))
                .build(),
        }
    }
}
