//! The carriers an instance talks to, built from configuration with their typed credentials,
//! and the configuration checks only capabilities can make.

use crate::settings::{ConfigError, HttpCarrierSettings, Settings};
use carriers::CarrierId;
use carriers::http::HttpCarrier;
use std::sync::Arc;
use std::time::Duration;

/// The executor around the adapter of carrier `id`, with that carrier's typed credentials.
pub(super) fn http_carrier(
    id: CarrierId,
    c: &HttpCarrierSettings,
) -> anyhow::Result<Arc<dyn carriers::CarrierClient>> {
    use carriers::{dhl_express, fedex, sf_express, ups, usps};
    fn config<C>(c: &HttpCarrierSettings, credentials: C) -> carriers::http::HttpConfig<C> {
        carriers::http::HttpConfig {
            base_url: c.base_url.clone(),
            timeout: Duration::from_millis(c.timeout_ms),
            rate_per_second: c.rate_per_second,
            rate_burst: c.rate_burst,
            rate_max_wait: Duration::from_millis(c.rate_max_wait_ms),
            retries: c.retries,
            breaker_failures: c.breaker_failures,
            breaker_open: Duration::from_millis(c.breaker_open_ms),
            credentials,
        }
    }
    Ok(match id {
        CarrierId::Fedex => Arc::new(HttpCarrier::new(
            fedex::Fedex,
            config(
                c,
                fedex::FedexCredentials {
                    client_id: c.client_id.clone(),
                    client_secret: c.client_secret.clone(),
                    account_number: c.account_number.clone(),
                },
            ),
        )?),
        CarrierId::DhlExpress => Arc::new(HttpCarrier::new(
            dhl_express::DhlExpress,
            config(
                c,
                dhl_express::DhlExpressCredentials {
                    client_id: c.client_id.clone(),
                    client_secret: c.client_secret.clone(),
                    account_number: c.account_number.clone(),
                },
            ),
        )?),
        CarrierId::Ups => Arc::new(HttpCarrier::new(
            ups::Ups,
            config(
                c,
                ups::UpsCredentials {
                    client_id: c.client_id.clone(),
                    client_secret: c.client_secret.clone(),
                    account_number: c.account_number.clone(),
                    api_version: c.api_version.clone(),
                },
            ),
        )?),
        CarrierId::Usps => Arc::new(HttpCarrier::new(
            usps::Usps,
            config(
                c,
                usps::UspsCredentials {
                    client_id: c.client_id.clone(),
                    client_secret: c.client_secret.clone(),
                    account_number: c.account_number.clone(),
                    crid: c.crid.clone(),
                    mid: c.mid.clone(),
                },
            ),
        )?),
        CarrierId::SfExpress => Arc::new(HttpCarrier::new(
            sf_express::SfExpress,
            config(
                c,
                sf_express::SfExpressCredentials {
                    customer_code: c.customer_code.clone(),
                    account_number: c.account_number.clone(),
                    checkword: c.checkword.clone(),
                },
            ),
        )?),
        CarrierId::Sandbox => anyhow::bail!("the sandbox is not an HTTP carrier"),
    })
}

/// What the configuration names that only the capabilities can check: return warehouses,
/// last-mile names, carriers' push formats. Start-up stops with the key when one is wrong.
pub fn check(settings: &Settings) -> Result<(), ConfigError> {
    crate::labels::returns::validate(&settings.returns.warehouses)
        .map_err(|e| ConfigError(e.to_string()))?;
    crate::tracking::aliases::Aliases::new(&settings.tracking.last_mile_carriers)
        .map_err(|e| ConfigError(format!("tracking.last_mile_carriers: {e}")))?;
    for carrier in settings.tracking.callbacks.keys() {
        if carriers::push_receiver(*carrier).is_none() {
            return Err(ConfigError(format!(
                "tracking.callbacks.{carrier}: no push format for this carrier (have: {})",
                carriers::pushing_carriers()
                    .map(CarrierId::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(())
}
