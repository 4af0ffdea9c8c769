//! FedEx (REST APIs): OAuth2 client credentials, Ship (create, cancel), Track (by number and, for
//! our idempotency key, by reference). Labels come inline as base64 PDF.

pub mod push;
mod requests;
mod responses;

pub use responses::pushed as parse_push;

use crate::CarrierId;
use crate::http::{Adapter, Context, Method, Operation, OutboundRequest, RawResponse};
use crate::{CarrierError, Created, Shipment, TrackingEvent};
use secrecy::{ExposeSecret, SecretString};

/// FedEx API project credentials and the shipping account.
#[derive(Debug, Clone)]
pub struct FedexCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
    pub account_number: String,
}

/// Empty: a carrier that is not configured (it stays disabled) and tests.
impl Default for FedexCredentials {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: SecretString::from(String::new()),
            account_number: String::new(),
        }
    }
}

pub const ID: CarrierId = CarrierId::Fedex;
pub const SANDBOX_URL: &str = "https://apis-sandbox.fedex.com";
pub const PRODUCTION_URL: &str = "https://apis.fedex.com";

#[derive(Debug, Default)]
pub struct Fedex;

impl Adapter for Fedex {
    type Credentials = FedexCredentials;

    fn id(&self) -> CarrierId {
        ID
    }

    fn token_request(&self, c: &Self::Credentials) -> Option<OutboundRequest> {
        Some(
            OutboundRequest::new(Operation::Token, Method::POST, "/oauth/token").form(vec![
                ("grant_type".into(), "client_credentials".into()),
                ("client_id".into(), c.client_id.clone()),
                (
                    "client_secret".into(),
                    c.client_secret.expose_secret().to_owned(),
                ),
            ]),
        )
    }

    fn build_create(
        &self,
        s: &Shipment,
        cx: &Context<'_, Self::Credentials>,
    ) -> Result<OutboundRequest, CarrierError> {
        Ok(requests::create(s, cx))
    }

    fn parse_create(&self, res: &RawResponse) -> Result<Created, CarrierError> {
        responses::created(res)
    }

    fn parse_error(&self, res: &RawResponse) -> Option<(String, String)> {
        responses::error(res)
    }

    fn build_lookup(
        &self,
        key: &str,
        cx: &Context<'_, Self::Credentials>,
    ) -> Option<OutboundRequest> {
        Some(requests::lookup(key, cx))
    }

    fn parse_lookup(&self, res: &RawResponse) -> Result<Option<Created>, CarrierError> {
        responses::lookup(res)
    }

    fn build_cancel(
        &self,
        number: &str,
        cx: &Context<'_, Self::Credentials>,
    ) -> Option<OutboundRequest> {
        Some(requests::cancel(number, cx))
    }

    fn build_track(
        &self,
        number: &str,
        _cx: &Context<'_, Self::Credentials>,
    ) -> Option<OutboundRequest> {
        Some(requests::track(number))
    }

    fn parse_track(&self, res: &RawResponse) -> Result<Vec<TrackingEvent>, CarrierError> {
        responses::tracking(res)
    }
}

#[cfg(test)]
pub(crate) mod tests;
