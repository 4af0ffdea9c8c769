//! UPS (REST APIs): OAuth2 client credentials (Basic + form; `expires_in` is a string), Ship
//! (`PackageResults` is an object for one package and an array for several; labels are GIF/PNG
//! images), Void, Track by number and by reference.

mod requests;
mod responses;

use crate::http::{
    Adapter, Auth, Context, Credentials, Method, Operation, OutboundRequest, RawResponse,
};
use crate::{CarrierError, Created, Shipment, TrackingEvent};

pub const ID: &str = "ups";
pub const SANDBOX_URL: &str = "https://wwwcie.ups.com";
pub const PRODUCTION_URL: &str = "https://onlinetools.ups.com";
pub const DEFAULT_VERSION: &str = "v2409";

#[derive(Debug, Default)]
pub struct Ups;

pub(crate) fn version(c: &Credentials) -> &str {
    if c.api_version.is_empty() {
        DEFAULT_VERSION
    } else {
        &c.api_version
    }
}

impl Adapter for Ups {
    fn id(&self) -> &'static str {
        ID
    }

    fn token_request(&self, _c: &Credentials) -> Option<OutboundRequest> {
        Some(
            OutboundRequest::new(Operation::Token, Method::POST, "/security/v1/oauth/token")
                .auth(Auth::Basic)
                .form(vec![("grant_type".into(), "client_credentials".into())]),
        )
    }

    fn build_create(&self, s: &Shipment, cx: &Context) -> Result<OutboundRequest, CarrierError> {
        Ok(requests::create(s, cx))
    }

    fn parse_create(&self, res: &RawResponse) -> Result<Created, CarrierError> {
        responses::created(res)
    }

    fn parse_error(&self, res: &RawResponse) -> Option<(String, String)> {
        responses::error(res)
    }

    fn build_lookup(&self, key: &str, cx: &Context) -> Option<OutboundRequest> {
        Some(requests::lookup(key, cx))
    }

    fn parse_lookup(&self, res: &RawResponse) -> Result<Option<Created>, CarrierError> {
        responses::lookup(res)
    }

    fn build_cancel(&self, number: &str, cx: &Context) -> Option<OutboundRequest> {
        Some(requests::void(number, cx))
    }

    fn build_track(&self, number: &str, _cx: &Context) -> Option<OutboundRequest> {
        Some(requests::track(number))
    }

    fn parse_track(&self, res: &RawResponse) -> Result<Vec<TrackingEvent>, CarrierError> {
        responses::tracking(res)
    }
}

#[cfg(test)]
mod tests;
