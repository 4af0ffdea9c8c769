//! The seam between a carrier's protocol and the executor: what an adapter builds
//! ([`OutboundRequest`]), what it reads ([`RawResponse`]), and the [`Adapter`] trait itself.

use super::token::{self, Token};
use crate::{CarrierError, CarrierId, Created, Shipment, TrackingEvent};
use bytes::Bytes;
pub use reqwest::Method;

/// What the adapter builds for the executor to send.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub operation: Operation,
    pub method: Method,
    /// Path below the carrier's base URL, starting with `/`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    pub auth: Auth,
}

impl OutboundRequest {
    pub fn new(operation: Operation, method: Method, path: impl Into<String>) -> Self {
        Self {
            operation,
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Empty,
            auth: Auth::None,
        }
    }

    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Body::Json(body);
        self
    }

    pub fn form(mut self, fields: Vec<(String, String)>) -> Self {
        self.body = Body::Form(fields);
        self
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.push((name.to_owned(), value.into()));
        self
    }

    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }
}

#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    /// `Authorization: Bearer` with the carrier's OAuth token.
    Bearer,
    /// Bearer, plus the payment-authorization token some label APIs need (USPS).
    BearerWithPayment,
    /// `Authorization: Basic` with client id and secret.
    Basic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Token,
    PaymentToken,
    Create,
    Lookup,
    Cancel,
    Track,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::PaymentToken => "payment_token",
            Self::Create => "create",
            Self::Lookup => "lookup",
            Self::Cancel => "cancel",
            Self::Track => "track",
        }
    }

    /// Repeating these cannot create anything a second time.
    pub(super) fn safe_to_repeat(self) -> bool {
        !matches!(self, Self::Create | Self::Cancel)
    }
}

/// A carrier's HTTP answer, whatever its status.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl RawResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        carrier: CarrierId,
    ) -> Result<T, CarrierError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            CarrierError::BadResponse(format!(
                "{carrier}: unreadable JSON (HTTP {}): {e}",
                self.status
            ))
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Data an adapter may need besides the shipment.
pub struct Context<'a, C> {
    pub credentials: &'a C,
    /// The shipping date (the carrier's local "today").
    pub today: chrono::NaiveDate,
}

/// One carrier's protocol: pure functions from our model to its requests and back.
pub trait Adapter: Send + Sync + 'static {
    /// Who we are at this carrier: account data and secrets, typed per carrier.
    type Credentials: std::fmt::Debug + Send + Sync + 'static;

    fn id(&self) -> CarrierId;

    /// The OAuth2 client-credentials token request, for carriers that use bearer tokens.
    fn token_request(&self, _credentials: &Self::Credentials) -> Option<OutboundRequest> {
        None
    }

    fn parse_token(&self, res: &RawResponse) -> Result<Token, CarrierError> {
        token::parse_oauth(self.id(), res)
    }

    /// A second token that label requests carry (USPS payment authorization).
    fn payment_token_request(&self, _credentials: &Self::Credentials) -> Option<OutboundRequest> {
        None
    }

    fn parse_payment_token(&self, res: &RawResponse) -> Result<Token, CarrierError> {
        token::parse_oauth(self.id(), res)
    }

    /// User and password of `Authorization: Basic` ([`Auth::Basic`] requests).
    fn basic_auth(&self, _credentials: &Self::Credentials) -> Option<(String, String)> {
        None
    }

    /// The header that carries the payment token.
    fn payment_header(&self) -> &'static str {
        "X-Payment-Authorization-Token"
    }

    fn build_create(
        &self,
        shipment: &Shipment,
        cx: &Context<'_, Self::Credentials>,
    ) -> Result<OutboundRequest, CarrierError>;

    fn parse_create(&self, res: &RawResponse) -> Result<Created, CarrierError>;

    /// The carrier's own error code and message from an error body, if it can be read.
    fn parse_error(&self, res: &RawResponse) -> Option<(String, String)>;

    /// Some carriers answer errors with HTTP 200 and an error envelope (SF Express).
    fn error_in_success(&self, _res: &RawResponse) -> Option<(String, String)> {
        None
    }

    /// An error code meaning "you already created this one" (the carrier deduplicates by our
    /// reference): the create is answered by looking the shipment up.
    fn is_duplicate(&self, _code: &str) -> bool {
        false
    }

    /// Finding a shipment by our idempotency key.
    fn build_lookup(
        &self,
        _key: &str,
        _cx: &Context<'_, Self::Credentials>,
    ) -> Option<OutboundRequest> {
        None
    }

    fn parse_lookup(&self, _res: &RawResponse) -> Result<Option<Created>, CarrierError> {
        Ok(None)
    }

    fn build_cancel(
        &self,
        _number: &str,
        _cx: &Context<'_, Self::Credentials>,
    ) -> Option<OutboundRequest> {
        None
    }

    fn build_track(
        &self,
        _number: &str,
        _cx: &Context<'_, Self::Credentials>,
    ) -> Option<OutboundRequest> {
        None
    }

    fn parse_track(&self, _res: &RawResponse) -> Result<Vec<TrackingEvent>, CarrierError> {
        Err(CarrierError::NotSupported("tracking"))
    }
}
