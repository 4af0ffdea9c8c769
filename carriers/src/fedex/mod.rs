//! FedEx (REST APIs): OAuth2 client credentials, Ship (create, cancel), Track (by number and, for
//! our idempotency key, by reference). Labels come inline as base64 PDF.

mod requests;
mod responses;

pub use responses::pushed as parse_push;

use crate::http::{Adapter, Context, Credentials, Method, Operation, OutboundRequest, RawResponse};
use crate::{CarrierError, Created, Shipment, TrackingEvent};

pub const ID: &str = "fedex";
pub const SANDBOX_URL: &str = "https://apis-sandbox.fedex.com";
pub const PRODUCTION_URL: &str = "https://apis.fedex.com";

#[derive(Debug, Default)]
pub struct Fedex;

impl Adapter for Fedex {
    fn id(&self) -> &'static str {
        ID
    }

    fn token_request(&self, c: &Credentials) -> Option<OutboundRequest> {
        Some(
            OutboundRequest::new(Operation::Token, Method::POST, "/oauth/token").form(vec![
                ("grant_type".into(), "client_credentials".into()),
                ("client_id".into(), c.client_id.clone()),
                ("client_secret".into(), c.client_secret.clone()),
            ]),
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
        Some(requests::cancel(number, cx))
    }

    fn build_track(&self, number: &str, _cx: &Context) -> Option<OutboundRequest> {
        Some(requests::track(number))
    }

    fn parse_track(&self, res: &RawResponse) -> Result<Vec<TrackingEvent>, CarrierError> {
        responses::tracking(res)
    }
}

#[cfg(test)]
pub(crate) mod tests;
