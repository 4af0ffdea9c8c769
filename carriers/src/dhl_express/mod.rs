//! DHL Express (MyDHL API 3.x): HTTP Basic auth, create (`POST /shipments`, 201, labels inline as
//! base64 PDF in `documents[]`), tracking (`GET /shipments/{n}/tracking`). MyDHL offers no search
//! by customer reference, so an ambiguous create cannot be settled by lookup (the gateway then
//! answers `SHIPMENT_STATE_UNKNOWN` rather than risk a second shipment).

mod requests;
mod responses;

use crate::http::{Adapter, Context, OutboundRequest, RawResponse};
use crate::{CarrierError, Created, Shipment, TrackingEvent};

pub const ID: &str = "dhl_express";
pub const SANDBOX_URL: &str = "https://express.api.dhl.com/mydhlapi/test";
pub const PRODUCTION_URL: &str = "https://express.api.dhl.com/mydhlapi";

#[derive(Debug, Default)]
pub struct DhlExpress;

impl Adapter for DhlExpress {
    fn id(&self) -> &'static str {
        ID
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

    fn build_track(&self, number: &str, _cx: &Context) -> Option<OutboundRequest> {
        Some(requests::track(number))
    }

    fn parse_track(&self, res: &RawResponse) -> Result<Vec<TrackingEvent>, CarrierError> {
        responses::tracking(res)
    }
}

#[cfg(test)]
mod tests;
