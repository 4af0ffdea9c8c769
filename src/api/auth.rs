//! The key of a `/v1` request, from `Authorization: Bearer <api key>`.

use crate::api::error::ApiError;
use crate::auth::{ApiKey, Auth, Scope};
use crate::store::tenants::Tenant;
use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

/// The authenticated key of a `/v1` request. Handlers reach its tenant through
/// [`AuthKey::allow`], which checks the scope the action needs.
pub struct AuthKey(pub ApiKey);

impl AuthKey {
    /// The key's tenant (one account in one mode), if the key has `scope`.
    pub fn allow(&self, scope: Scope) -> Result<&Tenant, ApiError> {
        if self.0.scopes.allows(scope) {
            Ok(&self.0.tenant)
        } else {
            Err(ApiError::InsufficientScope(scope))
        }
    }
}

impl FromRequest for AuthKey {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = req.app_data::<web::Data<Auth>>().cloned();
        let address = req.peer_addr().map(|a| a.ip());
        let header = req
            .headers()
            .get(AUTHORIZATION)
            .map(|h| h.to_str().map(str::to_owned));
        let service_tenant = req
            .headers()
            .get(crate::orders::gateway::TENANT_HEADER)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let auth = auth.ok_or_else(|| ApiError::internal("auth not configured"))?;
            let key = match header {
                None => {
                    return Err(ApiError::Unauthorized(
                        "missing Authorization: Bearer <api key>",
                    ));
                }
                Some(Err(_)) => {
                    return Err(ApiError::Unauthorized("malformed Authorization header"));
                }
                Some(Ok(value)) => match value.split_once(' ') {
                    Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => {
                        key.trim().to_owned()
                    }
                    _ => {
                        return Err(ApiError::Unauthorized(
                            "expected Authorization: Bearer <api key>",
                        ));
                    }
                },
            };
            Ok(AuthKey(match service_tenant {
                Some(tenant) => auth.verify_service(&key, &tenant, address).await?,
                None => auth.verify(&key, address).await?,
            }))
        })
    }
}
