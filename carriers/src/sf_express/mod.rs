//! SF Express (BSP XML API, the line-haul/Asian style): every service is a form post
//! `xml=<Request ...>&verifyCode=Base64(MD5(xml + checkword))` to one URL. `OrderService` creates
//! (the waybill is `OrderResponse@mailno`; no label image, routing-label data in `rls_detail`),
//! `OrderSearchService` finds an order by our order id, `RouteService` tracks. Errors come back
//! as HTTP 200 with `<Head>ERR</Head>`. SF refuses a second order with the same order id
//! (`8016`), so creating again after an ambiguous failure cannot ship twice.

pub mod push;
mod requests;
mod responses;

use crate::CarrierId;
use crate::http::{Adapter, Context, OutboundRequest, RawResponse};
use crate::{CarrierError, Created, Shipment, TrackingEvent};
use secrecy::SecretString;

/// SF customer code (`<Head>`), monthly account (`custid`) and the checkword that signs.
#[derive(Debug, Clone)]
pub struct SfExpressCredentials {
    pub customer_code: String,
    pub account_number: String,
    pub checkword: SecretString,
}

/// Empty: a carrier that is not configured (it stays disabled) and tests.
impl Default for SfExpressCredentials {
    fn default() -> Self {
        Self {
            customer_code: String::new(),
            account_number: String::new(),
            checkword: SecretString::from(String::new()),
        }
    }
}

pub const ID: CarrierId = CarrierId::SfExpress;
pub const SANDBOX_URL: &str = "https://bsp-oisp.sit.sf-express.com/bsp-oisp/sfexpressService";
pub const PRODUCTION_URL: &str = "https://bsp-oisp.sf-express.com/bsp-oisp/sfexpressService";
/// SF's error code for an order id it has seen before.
pub const DUPLICATE_ORDER: &str = "8016";

pub use requests::verify_code;

#[derive(Debug, Default)]
pub struct SfExpress;

impl Adapter for SfExpress {
    type Credentials = SfExpressCredentials;

    fn id(&self) -> CarrierId {
        ID
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

    fn error_in_success(&self, res: &RawResponse) -> Option<(String, String)> {
        responses::error(res)
    }

    fn is_duplicate(&self, code: &str) -> bool {
        code == DUPLICATE_ORDER
    }

    fn build_lookup(
        &self,
        key: &str,
        cx: &Context<'_, Self::Credentials>,
    ) -> Option<OutboundRequest> {
        Some(requests::order_search(key, cx))
    }

    fn parse_lookup(&self, res: &RawResponse) -> Result<Option<Created>, CarrierError> {
        responses::lookup(res)
    }

    fn build_track(
        &self,
        number: &str,
        cx: &Context<'_, Self::Credentials>,
    ) -> Option<OutboundRequest> {
        Some(requests::route(number, cx))
    }

    fn parse_track(&self, res: &RawResponse) -> Result<Vec<TrackingEvent>, CarrierError> {
        responses::tracking(res)
    }
}

#[cfg(test)]
mod tests;
