//! The one place where carriers are called over HTTP. Adapters describe requests and read
//! responses ([`Adapter`]); [`HttpCarrier`] does the I/O for all of them the same way: OAuth
//! tokens (cached, single flight, refreshed once on a 401), per-carrier rate limits that make
//! callers wait their turn, retries of what is safe to repeat, a circuit breaker, per-call
//! timeouts, metrics and masked logs.

mod adapter;
pub mod mask;
mod token;

pub use adapter::{Adapter, Auth, Body, Context, Method, Operation, OutboundRequest, RawResponse};

use crate::{CarrierClient, CarrierError, CarrierId, Created, Shipment, TrackingEvent};
use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

pub use token::Token;

/// Everything configurable about one HTTP carrier.
#[derive(Debug, Clone)]
pub struct HttpConfig<C> {
    pub base_url: String,
    /// Budget of one HTTP exchange.
    pub timeout: Duration,
    /// Requests per second the carrier allows us, and the burst above it.
    pub rate_per_second: u32,
    pub rate_burst: u32,
    /// How long a caller may wait for its turn before the call is refused.
    pub rate_max_wait: Duration,
    /// Extra attempts of a call that is safe to repeat.
    pub retries: u32,
    /// Consecutive failures that open the circuit, and how long it stays open.
    pub breaker_failures: u32,
    pub breaker_open: Duration,
    /// The carrier's own credentials type (secrets in `SecretString`).
    pub credentials: C,
}

/// An [`Adapter`] with the executor around it: what the gateway calls.
pub struct HttpCarrier<A: Adapter> {
    adapter: A,
    config: HttpConfig<A::Credentials>,
    client: reqwest::Client,
    token: token::TokenCache,
    payment: token::TokenCache,
    limiter: DefaultDirectRateLimiter,
    breaker: crate::breaker::Breaker,
}

impl<A: Adapter> HttpCarrier<A> {
    pub fn new(adapter: A, config: HttpConfig<A::Credentials>) -> Result<Self, CarrierError> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(2)))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("shipgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                CarrierError::Unavailable(format!("{}: http client: {e}", adapter.id()))
            })?;
        let per_second = NonZeroU32::new(config.rate_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.rate_burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Ok(Self {
            limiter: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
            breaker: crate::breaker::Breaker::new(config.breaker_failures, config.breaker_open),
            token: token::TokenCache::default(),
            payment: token::TokenCache::default(),
            adapter,
            config,
            client,
        })
    }

    pub fn adapter(&self) -> &A {
        &self.adapter
    }

    fn context(&self) -> Context<'_, A::Credentials> {
        Context {
            credentials: &self.config.credentials,
            today: chrono::Utc::now().date_naive(),
        }
    }

    /// Sends `req` with everything around it; any HTTP answer is returned, errors are transport
    /// failures, an open circuit or an exhausted rate-limit wait.
    pub async fn execute(&self, req: &OutboundRequest) -> Result<RawResponse, CarrierError> {
        let id = self.adapter.id().as_str();
        if !self.breaker.allow() {
            metrics::counter!("shipgate_carrier_breaker_rejections_total", "carrier" => id)
                .increment(1);
            return Err(CarrierError::Unavailable(format!(
                "{id}: circuit open after repeated failures"
            )));
        }
        if tokio::time::timeout(self.config.rate_max_wait, self.limiter.until_ready())
            .await
            .is_err()
        {
            metrics::counter!("shipgate_carrier_rate_limited_total", "carrier" => id).increment(1);
            return Err(CarrierError::Unavailable(format!(
                "{id}: rate limit reached; no turn within {} ms",
                self.config.rate_max_wait.as_millis()
            )));
        }
        let started = Instant::now();
        let result = if req.operation.safe_to_repeat() && self.config.retries > 0 {
            (|| async {
                match self.send_authenticated(req).await {
                    Ok(res) if res.status >= 500 || res.status == 429 => Err(Failed(Ok(res))),
                    Ok(res) => Ok(res),
                    Err(e) => Err(Failed(Err(e))),
                }
            })
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(50))
                    .with_max_delay(Duration::from_millis(400))
                    .with_max_times(self.config.retries as usize)
                    .with_jitter(),
            )
            .when(Failed::worth_retrying)
            .await
            .or_else(|Failed(last)| last)
        } else {
            self.send_authenticated(req).await
        };
        let outcome = match &result {
            Ok(res) if res.status >= 500 => "server_error",
            Ok(res) if res.is_success() => "ok",
            Ok(_) => "client_error",
            Err(CarrierError::Timeout(_)) => "timeout",
            Err(_) => "transport_error",
        };
        match &result {
            Ok(res) if res.status < 500 => {
                if self.breaker.success() {
                    tracing::info!(carrier = id, "carrier circuit closed");
                }
            }
            _ => {
                if self.breaker.failure() {
                    tracing::warn!(carrier = id, "carrier circuit opened");
                }
            }
        }
        let op = req.operation.as_str();
        let elapsed = started.elapsed();
        metrics::counter!("shipgate_carrier_requests_total", "carrier" => id, "operation" => op, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("shipgate_carrier_request_duration_seconds", "carrier" => id, "operation" => op)
            .record(elapsed.as_secs_f64());
        tracing::debug!(
            carrier = id,
            operation = op,
            method = %req.method,
            path = %req.path,
            outcome,
            status = result.as_ref().map(|r| r.status).ok(),
            elapsed_ms = elapsed.as_millis() as u64,
            request = %mask::request_body(&req.body),
            response = %result.as_ref().map(mask::response_body).unwrap_or_default(),
            "carrier call"
        );
        result
    }

    /// One exchange with the right credentials; a bearer token the carrier refuses is
    /// refreshed and the request sent once more.
    async fn send_authenticated(&self, req: &OutboundRequest) -> Result<RawResponse, CarrierError> {
        let (res, token) = self.send_once(req, None).await?;
        if res.status == 401 && token.is_some() {
            return Ok(self.send_once(req, token.as_deref()).await?.0);
        }
        Ok(res)
    }

    /// One HTTP exchange; also returns the bearer token it carried.
    async fn send_once(
        &self,
        req: &OutboundRequest,
        refused: Option<&str>,
    ) -> Result<(RawResponse, Option<String>), CarrierError> {
        let url = format!("{}{}", self.config.base_url.trim_end_matches('/'), req.path);
        let mut builder = self.client.request(req.method.clone(), &url);
        if !req.query.is_empty() {
            builder = builder.query(&req.query);
        }
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        let creds = &self.config.credentials;
        let mut bearer = None;
        match req.auth {
            Auth::None => {}
            Auth::Basic => {
                if let Some((user, password)) = self.adapter.basic_auth(creds) {
                    builder = builder.basic_auth(user, Some(password));
                }
            }
            Auth::Bearer | Auth::BearerWithPayment => {
                let token = self.bearer(refused).await?;
                builder = builder.bearer_auth(&token.value);
                bearer = Some(token.value);
                if req.auth == Auth::BearerWithPayment {
                    let payment = self.payment_token().await?;
                    builder = builder.header(self.adapter.payment_header(), payment.value);
                }
            }
        }
        builder = match &req.body {
            Body::Empty => builder,
            Body::Json(v) => builder.json(v),
            Body::Form(fields) => builder.form(fields),
        };
        let id = self.adapter.id().as_str();
        let response = builder.send().await.map_err(|e| transport_error(id, &e))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .bytes()
            .await
            .map_err(|e| CarrierError::ConnectionLost(format!("{id}: reading the answer: {e}")))?;
        let res = RawResponse {
            status,
            content_type,
            body,
        };
        Ok((res, bearer))
    }

    async fn bearer(&self, refused: Option<&str>) -> Result<Token, CarrierError> {
        let req = self.adapter.token_request(&self.config.credentials);
        self.token
            .get(refused, || {
                self.fetch_token(req, "token request", A::parse_token)
            })
            .await
    }

    async fn payment_token(&self) -> Result<Token, CarrierError> {
        let req = self.adapter.payment_token_request(&self.config.credentials);
        self.payment
            .get(None, || {
                self.fetch_token(req, "payment authorization", A::parse_payment_token)
            })
            .await
    }

    /// Fetches a token; a refusal of any kind is a credentials problem for an operator.
    async fn fetch_token(
        &self,
        req: Option<OutboundRequest>,
        kind: &'static str,
        parse: fn(&A, &RawResponse) -> Result<Token, CarrierError>,
    ) -> Result<Token, CarrierError> {
        let req = req.ok_or(CarrierError::NotSupported(kind))?;
        let (res, _) = Box::pin(self.send_once(&req, None)).await?;
        if !res.is_success() {
            let detail = self.adapter.parse_error(&res).map_or_else(
                || format!("HTTP {}", res.status),
                |(c, m)| format!("{c}: {m}"),
            );
            return Err(CarrierError::Auth(format!(
                "{}: {kind} refused: {detail}",
                self.adapter.id()
            )));
        }
        parse(&self.adapter, &res)
    }

    /// The error a non-success answer means.
    fn failure(&self, res: &RawResponse) -> CarrierError {
        let id = self.adapter.id().as_str();
        let parsed = self.adapter.parse_error(res);
        match res.status {
            401 | 403 => CarrierError::Auth(match parsed {
                Some((code, msg)) => format!("{id}: {code}: {msg}"),
                None => format!("{id}: HTTP {}", res.status),
            }),
            400..=499 => match parsed {
                Some((code, message)) => CarrierError::Rejected { code, message },
                None => CarrierError::Rejected {
                    code: format!("HTTP_{}", res.status),
                    message: format!(
                        "{id} refused the request (HTTP {}) with an unreadable body",
                        res.status
                    ),
                },
            },
            _ => CarrierError::BadResponse(format!("{id} answered HTTP {}", res.status)),
        }
    }

    /// Runs `req` and turns a failure status or an error envelope into a [`CarrierError`].
    async fn call(&self, req: &OutboundRequest) -> Result<RawResponse, CarrierError> {
        let res = self.execute(req).await?;
        if !res.is_success() {
            return Err(self.failure(&res));
        }
        if let Some((code, message)) = self.adapter.error_in_success(&res) {
            return Err(CarrierError::Rejected { code, message });
        }
        Ok(res)
    }
}

/// TLS for every HTTP client of the process: rustls with the ring provider. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Transport failures: a request that never left is definite, one that did is ambiguous.
fn transport_error(carrier: &str, e: &reqwest::Error) -> CarrierError {
    if e.is_connect() {
        CarrierError::Unavailable(format!("{carrier}: cannot connect: {e}"))
    } else if e.is_timeout() {
        CarrierError::Timeout(format!("{carrier}: no answer in time"))
    } else {
        CarrierError::ConnectionLost(format!("{carrier}: {e}"))
    }
}

/// A failed attempt of a call that is safe to repeat: a 5xx/429 answer or an error.
struct Failed(Result<RawResponse, CarrierError>);

impl Failed {
    fn worth_retrying(&self) -> bool {
        !matches!(
            self.0,
            Err(CarrierError::Auth(_)
                | CarrierError::Rejected { .. }
                | CarrierError::NotSupported(_))
        )
    }
}

#[async_trait]
impl<A: Adapter> CarrierClient for HttpCarrier<A> {
    fn id(&self) -> CarrierId {
        self.adapter.id()
    }

    async fn create(&self, shipment: &Shipment) -> Result<Created, CarrierError> {
        let req = self.adapter.build_create(shipment, &self.context())?;
        match self.call(&req).await {
            Ok(res) => self.adapter.parse_create(&res),
            Err(CarrierError::Rejected { code, message }) if self.adapter.is_duplicate(&code) => {
                // Created by an earlier attempt whose answer we lost: adopt that shipment.
                self.lookup_by_reference(&shipment.idempotency_key)
                    .await?
                    .ok_or(CarrierError::Rejected { code, message })
            }
            Err(e) => Err(e),
        }
    }

    async fn lookup_by_reference(&self, key: &str) -> Result<Option<Created>, CarrierError> {
        let req = self
            .adapter
            .build_lookup(key, &self.context())
            .ok_or(CarrierError::NotSupported("lookup by reference"))?;
        let res = self.execute(&req).await?;
        if res.status == 404 {
            return Ok(None);
        }
        if !res.is_success() {
            return Err(self.failure(&res));
        }
        self.adapter.parse_lookup(&res)
    }

    async fn cancel(&self, number: &str) -> Result<(), CarrierError> {
        let req = self
            .adapter
            .build_cancel(number, &self.context())
            .ok_or(CarrierError::NotSupported("cancel"))?;
        self.call(&req).await.map(drop)
    }

    async fn track(&self, number: &str) -> Result<Vec<TrackingEvent>, CarrierError> {
        let req = self
            .adapter
            .build_track(number, &self.context())
            .ok_or(CarrierError::NotSupported("tracking"))?;
        let res = self.call(&req).await?;
        let events = self.adapter.parse_track(&res)?;
        for e in events
            .iter()
            .filter(|e| e.status == crate::TrackingStatus::Unknown)
        {
            // Kept with its raw code; counted so that status maps can be completed.
            tracing::info!(carrier = self.adapter.id().as_str(), code = %e.status_code, "unmapped tracking code");
            metrics::counter!("shipgate_tracking_unknown_codes_total", "carrier" => self.adapter.id().as_str())
                .increment(1);
        }
        Ok(events)
    }
}
