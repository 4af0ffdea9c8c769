//! UPS (REST APIs): OAuth2 client credentials (Basic + form; `expires_in` is a string), Ship
//! (`PackageResults` is an object for one package and an array for several; labels are GIF/PNG
//! images), Void, Track by number and by reference.

mod requests;
mod responses;

use crate::CarrierId;
use crate::http::{Adapter, Auth, Context, Method, Operation, OutboundRequest, RawResponse};
use crate::{CarrierError, Created, Shipment, TrackingEvent};
use secrecy::{ExposeSecret, SecretString};

/// UPS OAuth client and shipper number; `api_version` in paths (`v2409` when empty).
#[derive(Debug, Clone)]
pub struct UpsCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
    pub account_number: String,
    pub api_version: String,
}

/// Empty: a carrier that is not configured (it stays disabled) and tests.
impl Default for UpsCredentials {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: SecretString::from(String::new()),
            account_number: String::new(),
            api_version: String::new(),
        }
    }
}

pub const ID: CarrierId = CarrierId::Ups;
pub const SANDBOX_URL: &str = "https://wwwcie.ups.com";
pub const PRODUCTION_URL: &str = "https://onlinetools.ups.com";
pub const DEFAULT_VERSION: &str = "v2409";

#[derive(Debug, Default)]
pub struct Ups;

pub(crate) fn version(c: &UpsCredentials) -> &str {
    if c.api_version.is_empty() {
        DEFAULT_VERSION
    } else {
        &c.api_version
    }
}

impl Adapter for Ups {
    type Credentials = UpsCredentials;

    fn id(&self) -> CarrierId {
        ID
    }

    fn basic_auth(&self, c: &Self::Credentials) -> Option<(String, String)> {
        Some((
            c.client_id.clone(),
            c.client_secret.expose_secret().to_owned(),
        ))
    }

    fn token_request(&self, _c: &Self::Credentials) -> Option<OutboundRequest> {
        Some(
            OutboundRequest::new(Operation::Token, Method::POST, "/security/v1/oauth/token")
                .auth(Auth::Basic)
                .form(vec![("grant_type".into(), "client_credentials".into())]),
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
        Some(requests::void(number, cx))
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
