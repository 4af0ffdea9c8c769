//! Checks of values each key allows on its own, and of keys that depend on each other. What
//! needs a capability to check (layouts, return warehouses, last-mile names, carriers' push
//! formats) is checked by start-up, which builds those capabilities.

use super::{ConfigError, Settings};
use carriers::CarrierId;
use secrecy::ExposeSecret;
use std::net::SocketAddr;

impl Settings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, msg: String| Err(ConfigError(format!("{key}: {msg}")));
        if let Err(e) = self.listen.parse::<SocketAddr>() {
            return fail(
                "listen",
                format!("`{}` is not an address: {e}", self.listen),
            );
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return fail(
                "database_url",
                "must start with sqlite:, postgres:// or postgresql://".into(),
            );
        }
        if self.services.is_empty() {
            return fail(
                "services",
                "name at least one of \"gateway\", \"inventory\", \"orders\"".into(),
            );
        }
        self.validate_orders()?;
        if self.events.batch == 0 || self.events.lease_ms < 1000 {
            return fail(
                "events",
                "events.batch must be at least 1 and events.lease_ms at least 1000".into(),
            );
        }
        if let Some(kafka) = &self.events.kafka {
            kafka.check()?;
        }
        for (i, subscription) in self.orders.subscriptions.iter().enumerate() {
            subscription.check(i)?;
        }
        if self.database_pool_size == 0 {
            return fail("database_pool_size", "must be at least 1".into());
        }
        if let Err(e) = self.log.level.parse::<tracing_subscriber::EnvFilter>() {
            return fail("log.level", e.to_string());
        }
        if self.http.max_connections == 0 || self.http.body_timeout_ms == 0 {
            return fail(
                "http.max_connections",
                "http.max_connections and http.body_timeout_ms must be at least 1".into(),
            );
        }
        if self.http.max_body_bytes < 1024 {
            return fail("http.max_body_bytes", "must be at least 1024".into());
        }
        if self.carriers.budget_ms == 0 || self.carriers.budget_ms > 2900 {
            return fail(
                "carriers.budget_ms",
                "must be between 1 and 2900 (the 3 s promise)".into(),
            );
        }
        if self.idempotency.lease_ms <= self.carriers.budget_ms {
            return fail(
                "idempotency.lease_ms",
                "must be longer than carriers.budget_ms".into(),
            );
        }
        for (id, carrier) in self.http_carriers() {
            let key = |k: &str| format!("carriers.{id}.{k}");
            if !carrier.base_url.starts_with("https://") && !carrier.base_url.starts_with("http://")
            {
                return fail(&key("base_url"), "must be an http(s) URL".into());
            }
            if carrier.timeout_ms == 0 || carrier.timeout_ms > self.carriers.budget_ms {
                return fail(
                    &key("timeout_ms"),
                    "must be between 1 and carriers.budget_ms".into(),
                );
            }
            if carrier.rate_per_second == 0 {
                return fail(&key("rate_per_second"), "must be at least 1".into());
            }
            // SF Express signs with a checkword; the others log in with a client id.
            let secret = if id == CarrierId::SfExpress {
                ("checkword", carrier.checkword.expose_secret())
            } else {
                ("client_id", carrier.client_id.as_str())
            };
            if carrier.enabled && secret.1.is_empty() {
                return fail(
                    &key(secret.0),
                    "is required when the carrier is enabled".into(),
                );
            }
        }
        if self.carriers.sandbox.clock_speed.is_nan() || self.carriers.sandbox.clock_speed <= 0.0 {
            return fail("carriers.sandbox.clock_speed", "must be above 0".into());
        }
        let w = &self.webhooks;
        for (key, v) in [
            ("poll_interval_ms", w.poll_interval_ms),
            ("timeout_ms", w.timeout_ms),
            ("initial_backoff_ms", w.initial_backoff_ms),
            ("max_backoff_ms", w.max_backoff_ms),
            ("retry_window_secs", w.retry_window_secs),
            ("max_endpoints", u64::from(w.max_endpoints)),
            ("retention_days", w.retention_days),
        ] {
            if v == 0 {
                return fail(&format!("webhooks.{key}"), "must be at least 1".into());
            }
        }
        if w.max_in_flight_per_endpoint == 0 {
            return fail(
                "webhooks.max_in_flight_per_endpoint",
                "must be at least 1".into(),
            );
        }
        if w.batch == 0 || w.batch > 256 {
            return fail("webhooks.batch", "must be between 1 and 256".into());
        }
        if w.initial_backoff_ms > w.max_backoff_ms {
            return fail(
                "webhooks.initial_backoff_ms",
                "must not exceed webhooks.max_backoff_ms".into(),
            );
        }
        let p = &self.tracking.polling;
        for (key, v) in [
            ("tick_ms", p.tick_ms),
            ("lease_ms", p.lease_ms),
            ("moving_ms", p.moving_ms),
            ("out_for_delivery_ms", p.out_for_delivery_ms),
            ("batch", u64::from(p.batch)),
            ("rate_per_second", u64::from(p.rate_per_second)),
        ] {
            if v == 0 {
                return fail(
                    &format!("tracking.polling.{key}"),
                    "must be at least 1".into(),
                );
            }
        }
        fn tls_path(p: &Option<String>) -> Option<&str> {
            p.as_deref().map(str::trim).filter(|p| !p.is_empty())
        }
        match (tls_path(&self.tls.cert_path), tls_path(&self.tls.key_path)) {
            (Some(_), None) => {
                return fail("tls.key_path", "is required with tls.cert_path".into());
            }
            (None, Some(_)) => {
                return fail("tls.cert_path", "is required with tls.key_path".into());
            }
            _ => {}
        }
        let quotas = std::iter::once((
            "default".to_owned(),
            (self.rate_limits.per_second, self.rate_limits.burst),
        ))
        .chain(
            self.rate_limits
                .tenants
                .iter()
                .map(|(t, q)| (format!("tenants.{t}"), (q.per_second, q.burst))),
        );
        for (key, (per_second, burst)) in quotas {
            if per_second == 0 || burst == 0 {
                return fail(
                    &format!("rate_limits.{key}"),
                    "per_second and burst must be at least 1".into(),
                );
            }
        }
        if self.tracking.redis_timeout_ms == 0 {
            return fail("tracking.redis_timeout_ms", "must be at least 1".into());
        }
        for (carrier, cb) in &self.tracking.callbacks {
            if cb.secret.expose_secret().len() < 8 {
                return fail(
                    &format!("tracking.callbacks.{carrier}.secret"),
                    "must be at least 8 characters".into(),
                );
            }
        }
        for (code, channel) in &self.channels {
            if channel.service.trim().is_empty() {
                return fail(
                    &format!("channels.{code}.service"),
                    "must not be empty".into(),
                );
            }
        }
        Ok(())
    }

    fn validate_orders(&self) -> Result<(), ConfigError> {
        use super::Service;
        let fail = |key: &str, msg: String| Err(ConfigError(format!("{key}: {msg}")));
        if self.services.contains(&Service::Orders) && !self.services.contains(&Service::Inventory)
        {
            return fail(
                "services",
                "the orders service runs with the inventory service in the same process".into(),
            );
        }
        if self
            .service_key
            .as_ref()
            .is_some_and(|k| !k.expose_secret().is_empty() && k.expose_secret().len() < 32)
        {
            return fail(
                "service_key",
                "must be at least 32 characters (a random secret)".into(),
            );
        }
        let o = &self.orders;
        if self.services.contains(&Service::Orders)
            && !self.services.contains(&Service::Gateway)
            && o.gateway_url.trim().is_empty()
        {
            return fail(
                "orders.gateway_url",
                "an instance that runs orders without the gateway needs the gateway's URL (and orders.gateway_service_key)".into(),
            );
        }
        if o.batch == 0 || o.process_interval_ms == 0 || o.retry_initial_ms == 0 {
            return fail(
                "orders",
                "orders.batch, orders.process_interval_ms and orders.retry_initial_ms must be at least 1".into(),
            );
        }
        if !o.gateway_url.trim().is_empty() {
            if url::Url::parse(&o.gateway_url).is_err() {
                return fail("orders.gateway_url", "is not a URL".into());
            }
            if o.gateway_service_key.is_none() {
                return fail(
                    "orders.gateway_service_key",
                    "is required when orders.gateway_url is set".into(),
                );
            }
        }
        for (i, rule) in o.rules.iter().enumerate() {
            if !self
                .channels
                .contains_key(&rule.channel.to_ascii_uppercase())
            {
                return fail(
                    &format!("orders.rules[{i}].channel"),
                    format!("`{}` is not a configured channel", rule.channel),
                );
            }
            if rule.max_parcel_grams == Some(0) {
                return fail(
                    &format!("orders.rules[{i}].max_parcel_grams"),
                    "must be at least 1".into(),
                );
            }
        }
        Ok(())
    }
}
