//! DHL Express (MyDHL API 3.x): HTTP Basic auth, create (`POST /shipments`, 201, labels inline as
//! base64 PDF in `documents[]`), tracking (`GET /shipments/{n}/tracking`). MyDHL offers no search
//! by customer reference, so an ambiguous create cannot be settled by lookup (the gateway then
//! answers `SHIPMENT_STATE_UNKNOWN` rather than risk a second shipment).

mod requests;
mod responses;

use crate::CarrierId;
use crate::http::{Adapter, Context, OutboundRequest, RawResponse};
use crate::{CarrierError, Created, Shipment, TrackingEvent};
use secrecy::{ExposeSecret, SecretString};

/// MyDHL API user (HTTP Basic) and the shipper account.
#[derive(Debug, Clone)]
pub struct DhlExpressCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
    pub account_number: String,
}

/// Empty: a carrier that is not configured (it stays disabled) and tests.
impl Default for DhlExpressCredentials {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_secret: SecretString::from(String::new()),
            account_number: String::new(),
        }
    }
}

pub const ID: CarrierId = CarrierId::DhlExpress;
pub const SANDBOX_URL: &str = "https://express.api.dhl.com/mydhlapi/test";
pub const PRODUCTION_URL: &str = "https://express.api.dhl.com/mydhlapi";

#[derive(Debug, Default)]
pub struct DhlExpress;

impl Adapter for DhlExpress {
    type Credentials = DhlExpressCredentials;

    fn id(&self) -> CarrierId {
        ID
    }

    fn basic_auth(&self, c: &Self::Credentials) -> Option<(String, String)> {
        Some((
            c.client_id.clone(),
            c.client_secret.expose_secret().to_owned(),
        ))
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
