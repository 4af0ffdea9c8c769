//! USPS (v3 REST APIs): OAuth2 client credentials plus a payment-authorization token that label
//! requests carry; domestic labels (`POST /labels/v3/label`, a multipart answer whose
//! `labelImage` part is a base64 PDF), cancel, tracking. USPS is also the common last mile behind
//! line-haul providers. The label API has no search by reference.

mod requests;
mod responses;

pub use responses::{is_pre_advice, status as event_status};

use crate::http::{
    Adapter, Context, Credentials, Method, Operation, OutboundRequest, RawResponse, Token,
};
use crate::{CarrierError, Created, Shipment, TrackingEvent};

pub const ID: &str = "usps";
pub const SANDBOX_URL: &str = "https://apis-tem.usps.com";
pub const PRODUCTION_URL: &str = "https://apis.usps.com";

#[derive(Debug, Default)]
pub struct Usps;

impl Adapter for Usps {
    fn id(&self) -> &'static str {
        ID
    }

    fn token_request(&self, c: &Credentials) -> Option<OutboundRequest> {
        Some(
            OutboundRequest::new(Operation::Token, Method::POST, "/oauth2/v3/token").form(vec![
                ("grant_type".into(), "client_credentials".into()),
                ("client_id".into(), c.client_id.clone()),
                ("client_secret".into(), c.client_secret.clone()),
            ]),
        )
    }

    fn payment_token_request(&self, c: &Credentials) -> Option<OutboundRequest> {
        Some(requests::payment_authorization(c))
    }

    fn parse_payment_token(&self, res: &RawResponse) -> Result<Token, CarrierError> {
        responses::payment_token(res)
    }

    fn build_create(&self, s: &Shipment, cx: &Context) -> Result<OutboundRequest, CarrierError> {
        requests::create(s, cx)
    }

    fn parse_create(&self, res: &RawResponse) -> Result<Created, CarrierError> {
        responses::created(res)
    }

    fn parse_error(&self, res: &RawResponse) -> Option<(String, String)> {
        responses::error(res)
    }

    fn build_cancel(&self, number: &str, _cx: &Context) -> Option<OutboundRequest> {
        Some(requests::cancel(number))
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
