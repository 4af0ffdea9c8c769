//! USPS (v3 REST APIs): OAuth2 client credentials plus a payment-authorization token that label
//! requests carry; domestic labels (`POST /labels/v3/label`, a multipart answer whose
//! `labelImage` part is a base64 PDF), cancel, tracking. USPS is also the common last mile behind
//! line-haul providers. The label API has no search by reference.

mod requests;
mod responses;

pub use responses::{is_pre_advice, status as event_status};

use crate::CarrierId;
use crate::http::{Adapter, Context, Method, Operation, OutboundRequest, RawResponse, Token};
use crate::{CarrierError, Created, Shipment, TrackingEvent};
use secrecy::{ExposeSecret, SecretString};

/// USPS OAuth client and payment authorization data (EPS account, CRID, MID).
#[derive(Debug, Clone)]
pub struct UspsCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
    pub account_number: String,
    pub crid: String,
    pub mid: String,
}

/// Empty: a carrier that is not configured (it stays disabled) and tests.
impl Default for UspsCredentials {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: SecretString::from(String::new()),
            account_number: String::new(),
            crid: String::new(),
            mid: String::new(),
        }
    }
}

pub const ID: CarrierId = CarrierId::Usps;
pub const SANDBOX_URL: &str = "https://apis-tem.usps.com";
pub const PRODUCTION_URL: &str = "https://apis.usps.com";

#[derive(Debug, Default)]
pub struct Usps;

impl Adapter for Usps {
    type Credentials = UspsCredentials;

    fn id(&self) -> CarrierId {
        ID
    }

    fn token_request(&self, c: &Self::Credentials) -> Option<OutboundRequest> {
        Some(
            OutboundRequest::new(Operation::Token, Method::POST, "/oauth2/v3/token").form(vec![
                ("grant_type".into(), "client_credentials".into()),
                ("client_id".into(), c.client_id.clone()),
                (
                    "client_secret".into(),
                    c.client_secret.expose_secret().to_owned(),
                ),
            ]),
        )
    }

    fn payment_token_request(&self, c: &Self::Credentials) -> Option<OutboundRequest> {
        Some(requests::payment_authorization(c))
    }

    fn parse_payment_token(&self, res: &RawResponse) -> Result<Token, CarrierError> {
        responses::payment_token(res)
    }

    fn build_create(
        &self,
        s: &Shipment,
        cx: &Context<'_, Self::Credentials>,
    ) -> Result<OutboundRequest, CarrierError> {
        requests::create(s, cx)
    }

    fn parse_create(&self, res: &RawResponse) -> Result<Created, CarrierError> {
        responses::created(res)
    }

    fn parse_error(&self, res: &RawResponse) -> Option<(String, String)> {
        responses::error(res)
    }

    fn build_cancel(
        &self,
        number: &str,
        _cx: &Context<'_, Self::Credentials>,
    ) -> Option<OutboundRequest> {
        Some(requests::cancel(number))
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
mod tests;
