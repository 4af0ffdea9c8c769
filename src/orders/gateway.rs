//! The one way the orders service asks the gateway for waybills: the public create request
//! (`POST /v1/waybills`), keyed by a reference number derived from the shipment, with one
//! meaning whether the gateway runs in this process ([`InProcess`]) or elsewhere ([`Http`],
//! with the service key). A retry, a restart or a re-ingest asks with the same reference, and
//! the gateway's idempotency answers with the first waybill.

use crate::store::Db;
use crate::waybills::{CreateWaybillRequest, Outcome, WaybillError, WaybillService, validate};
use carriers::CarrierError;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// The header naming the tenant a service-key request acts for.
pub const TENANT_HEADER: &str = "Shipgate-Tenant";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWaybill {
    pub waybill_number: String,
    #[serde(default)]
    pub tracking_number: Option<String>,
    pub carrier: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The gateway refused the request for good (nothing was created): the order is held.
    #[error("{code}: {message}")]
    Rejected { code: String, message: String },
    /// Not now (unreachable, 503, 504, a reference still in progress): ask again later with
    /// the same reference.
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait Gateway: Send + Sync + 'static {
    /// Creates (or, for a known reference, finds) the waybill of `request`, a create request
    /// of the public contract.
    async fn create_waybill(
        &self,
        tenant_id: &str,
        request: &Value,
    ) -> Result<CreatedWaybill, GatewayError>;

    /// Voids a waybill at its carrier (a cancelled one again is not an error).
    async fn cancel_waybill(&self, tenant_id: &str, number: &str) -> Result<(), GatewayError>;

    /// The labels of `numbers` as one PDF, in that order.
    async fn labels(&self, tenant_id: &str, numbers: &[String]) -> Result<Vec<u8>, GatewayError>;
}

/// How long the gateway of this process takes a tenant it read as it was: the processor asks
/// for many waybills of one tenant a second, and a tenant's mode changes seldom.
const TENANT_TTL: Duration = Duration::from_secs(1);

/// The gateway of this process.
pub struct InProcess {
    db: Db,
    waybills: WaybillService,
    tenants: moka::future::Cache<String, crate::store::tenants::Tenant>,
}

impl InProcess {
    pub fn new(db: Db, waybills: WaybillService) -> Self {
        let tenants = moka::future::Cache::builder()
            .max_capacity(10_000)
            .time_to_live(TENANT_TTL)
            .build();
        Self {
            db,
            waybills,
            tenants,
        }
    }

    /// The tenant `id` (read at most once a [`TENANT_TTL`]; one that does not exist is asked
    /// for again each time).
    async fn tenant(&self, id: &str) -> Result<crate::store::tenants::Tenant, GatewayError> {
        if let Some(t) = self.tenants.get(id).await {
            return Ok(t);
        }
        match self.db.tenant_by_id(id).await {
            Ok(Some(t)) => {
                self.tenants.insert(id.to_owned(), t.clone()).await;
                Ok(t)
            }
            Ok(None) => Err(GatewayError::Rejected {
                code: "UNKNOWN_TENANT".into(),
                message: format!("no tenant `{id}`"),
            }),
            Err(e) => Err(GatewayError::Unavailable(e.to_string())),
        }
    }
}

/// What a gateway error means to the orders service (the same split the HTTP status makes).
fn classify(e: WaybillError) -> GatewayError {
    let rejected = |code: &str, message: String| GatewayError::Rejected {
        code: code.into(),
        message,
    };
    match e {
        WaybillError::Validation(fields) => rejected(
            "VALIDATION_FAILED",
            crate::fields::FieldError::describe(&fields),
        ),
        WaybillError::UnknownChannel(c) => {
            rejected("UNKNOWN_CHANNEL", format!("unknown channel `{c}`"))
        }
        WaybillError::ModeMismatch(m) => rejected("MODE_MISMATCH", m),
        WaybillError::ReferenceConflict => rejected(
            "REFERENCE_CONFLICT",
            "this referenceNumber was already used with a different payload".into(),
        ),
        WaybillError::NotFound(m) | WaybillError::LabelNotAvailable(m) => rejected("NOT_FOUND", m),
        WaybillError::NotFoundItems(items) => rejected(
            "NOT_FOUND",
            items
                .iter()
                .map(|f| f.error_msg.clone())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        WaybillError::Carrier(CarrierError::Rejected { .. }) => {
            rejected("CARRIER_REJECTED", e.to_string())
        }
        other => GatewayError::Unavailable(other.to_string()),
    }
}

#[async_trait::async_trait]
impl Gateway for InProcess {
    async fn create_waybill(
        &self,
        tenant_id: &str,
        request: &Value,
    ) -> Result<CreatedWaybill, GatewayError> {
        let tenant = self.tenant(tenant_id).await?;
        let req: CreateWaybillRequest =
            serde_json::from_value(request.clone()).map_err(|e| GatewayError::Rejected {
                code: "INVALID_REQUEST".into(),
                message: e.to_string(),
            })?;
        let valid = validate(&req).map_err(|f| classify(WaybillError::Validation(f)))?;
        let w = match self
            .waybills
            .create(&tenant, valid)
            .await
            .map_err(classify)?
        {
            Outcome::Created(w) | Outcome::Replayed(w) => w,
        };
        Ok(CreatedWaybill {
            waybill_number: w.waybill_number,
            tracking_number: Some(w.tracking_number).filter(|t| !t.is_empty()),
            carrier: w.carrier,
        })
    }

    async fn cancel_waybill(&self, tenant_id: &str, number: &str) -> Result<(), GatewayError> {
        self.waybills
            .cancel(tenant_id, number)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn labels(&self, tenant_id: &str, numbers: &[String]) -> Result<Vec<u8>, GatewayError> {
        self.waybills
            .label_batch(tenant_id, numbers)
            .await
            .map_err(classify)
    }
}

/// A gateway across the network, called with the service key.
pub struct Http {
    base: String,
    key: SecretString,
    client: reqwest::Client,
}

impl Http {
    pub fn new(base: &str, key: SecretString, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            key,
            client: crate::outbound::client(timeout, true, "shipgate-orders")?,
        })
    }

    async fn send(&self, tenant_id: &str, path: &str, body: &Value) -> Result<Value, GatewayError> {
        let bytes = self.send_raw(tenant_id, path, body).await?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn send_raw(
        &self,
        tenant_id: &str,
        path: &str,
        body: &Value,
    ) -> Result<bytes::Bytes, GatewayError> {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.key.expose_secret())
            .header(TENANT_HEADER, tenant_id)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| GatewayError::Unavailable(format!("gateway unreachable: {e}")))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| GatewayError::Unavailable(format!("gateway answer cut off: {e}")))?;
        if status.is_success() {
            return Ok(bytes);
        }
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let code = answer["errorCode"].as_str().unwrap_or("").to_owned();
        let message = answer["errorMsg"].as_str().unwrap_or("").to_owned();
        let retry = status.is_server_error()
            || status.as_u16() == 408
            || status.as_u16() == 429
            || code == "REFERENCE_IN_PROGRESS"
            || code == "SHIPMENT_STATE_UNKNOWN";
        if retry {
            Err(GatewayError::Unavailable(format!(
                "gateway answered {status} {code} {message}"
            )))
        } else {
            Err(GatewayError::Rejected {
                code: if code.is_empty() {
                    status.as_u16().to_string()
                } else {
                    code
                },
                message,
            })
        }
    }
}

#[async_trait::async_trait]
impl Gateway for Http {
    async fn create_waybill(
        &self,
        tenant_id: &str,
        request: &Value,
    ) -> Result<CreatedWaybill, GatewayError> {
        let answer = self.send(tenant_id, "/v1/waybills", request).await?;
        serde_json::from_value(answer).map_err(|e| {
            GatewayError::Unavailable(format!("gateway answer without a waybill: {e}"))
        })
    }

    async fn cancel_waybill(&self, tenant_id: &str, number: &str) -> Result<(), GatewayError> {
        let path = format!(
            "/v1/waybills/{}/cancel",
            url::form_urlencoded::byte_serialize(number.as_bytes()).collect::<String>()
        );
        self.send(tenant_id, &path, &Value::Object(Default::default()))
            .await
            .map(|_| ())
    }

    async fn labels(&self, tenant_id: &str, numbers: &[String]) -> Result<Vec<u8>, GatewayError> {
        let body = serde_json::json!({ "numbers": numbers });
        Ok(self
            .send_raw(tenant_id, "/v1/labels/batch", &body)
            .await?
            .to_vec())
    }
}
