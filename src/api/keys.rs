//! `/v1/keys`: a key with `keys:manage` lists, creates, rotates and revokes the keys of its
//! own tenant and mode. A key never grants more than it has: new keys get at most its scopes.

use crate::api::auth::AuthKey;
use crate::api::error::ApiError;
use crate::api::extract::ApiJson;
use crate::auth::keys::{self, MAX_ROTATION_GRACE};
use crate::auth::{Auth, Scope, Scopes};
use crate::store::now_millis;
use crate::store::rfc3339_millis as rfc3339;
use crate::store::tenants::{KeyRecord, Mode};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a rotated key keeps working when the request does not say.
const DEFAULT_ROTATION_GRACE_SECS: u64 = 24 * 3600;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewKey {
    /// The caller's own mode when given (a key creates keys of its own mode only).
    mode: Option<String>,
    /// At most the caller's scopes; the caller's scopes when absent.
    scopes: Option<Vec<String>>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rotation {
    /// How long the old key keeps working: 0 (stop now) to 7 days; 24 h when absent.
    expires_in_seconds: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyAnswer<'a> {
    id: &'a str,
    prefix: &'a str,
    mode: &'static str,
    scopes: Vec<&'static str>,
    description: Option<&'a str>,
    active: bool,
    created_at: &'a str,
    revoked_at: Option<&'a str>,
    expires_at: Option<String>,
    replaced_by: Option<&'a str>,
}

impl<'a> From<&'a KeyRecord> for KeyAnswer<'a> {
    fn from(k: &'a KeyRecord) -> Self {
        Self {
            id: &k.id,
            prefix: &k.prefix,
            mode: k.tenant.mode.as_str(),
            scopes: Scopes::from_stored(&k.scopes).names(),
            description: k.description.as_deref(),
            active: k.active_at(now_millis()),
            created_at: &k.created_at,
            revoked_at: k.revoked_at.as_deref(),
            expires_at: k.expires_at_ms.map(rfc3339),
            replaced_by: k.replaced_by.as_deref(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OneKey<'a> {
    status: u8,
    #[serde(flatten)]
    key: KeyAnswer<'a>,
}

/// A key just made: shown once, with the key itself.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewKeyAnswer<'a> {
    status: u8,
    #[serde(flatten)]
    record: KeyAnswer<'a>,
    /// The key itself, shown only here.
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotated: Option<KeyAnswer<'a>>,
}

pub async fn list(key: AuthKey, auth: web::Data<Auth>) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::KeysManage)?;
    let keys = auth.db().keys_of(&[tenant.id.as_str()]).await?;
    #[derive(Serialize)]
    struct List<'a> {
        status: u8,
        keys: Vec<KeyAnswer<'a>>,
    }
    Ok(HttpResponse::Ok().json(List {
        status: 1,
        keys: keys.iter().map(KeyAnswer::from).collect(),
    }))
}

pub async fn create(
    key: AuthKey,
    auth: web::Data<Auth>,
    ApiJson(req): ApiJson<NewKey>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::KeysManage)?;
    match req.mode.as_deref().map(|m| (m, Mode::parse(m))) {
        None => {}
        Some((_, Some(mode))) if mode == tenant.mode => {}
        Some((_, Some(mode))) => {
            return Err(ApiError::KeyModeMismatch(format!(
                "a {} key creates {} keys only, not {} keys",
                tenant.mode.as_str(),
                tenant.mode.as_str(),
                mode.as_str()
            )));
        }
        Some((m, None)) => {
            return Err(ApiError::InvalidRequest(format!(
                "mode `{m}`: expected `test` or `live`"
            )));
        }
    }
    let scopes = match &req.scopes {
        None => key.0.scopes,
        Some(list) => Scopes::parse(&list.join(" ")).map_err(ApiError::InvalidRequest)?,
    };
    if !key.0.scopes.covers(scopes) {
        return Err(ApiError::InvalidRequest(format!(
            "a key grants at most its own scopes ({})",
            key.0.scopes
        )));
    }
    let created =
        keys::create_key_for(auth.db(), tenant, scopes, req.description.as_deref()).await?;
    Ok(HttpResponse::Created().json(NewKeyAnswer {
        status: 1,
        record: (&created.record).into(),
        key: &created.secret,
        rotated: None,
    }))
}

pub async fn rotate(
    key: AuthKey,
    auth: web::Data<Auth>,
    id: web::Path<String>,
    ApiJson(req): ApiJson<Rotation>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::KeysManage)?;
    let grace = Duration::from_secs(
        req.expires_in_seconds
            .unwrap_or(DEFAULT_ROTATION_GRACE_SECS),
    );
    if grace > MAX_ROTATION_GRACE {
        return Err(ApiError::InvalidRequest(format!(
            "expiresInSeconds: at most {}",
            MAX_ROTATION_GRACE.as_secs()
        )));
    }
    let (new, old) = auth.rotate(&id, &tenant.id, grace).await?;
    Ok(HttpResponse::Created().json(NewKeyAnswer {
        status: 1,
        record: (&new.record).into(),
        key: &new.secret,
        rotated: Some((&old).into()),
    }))
}

pub async fn revoke(
    key: AuthKey,
    auth: web::Data<Auth>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::KeysManage)?;
    let revoked = auth.revoke(&id, &tenant.id).await?;
    Ok(HttpResponse::Ok().json(OneKey {
        status: 1,
        key: (&revoked).into(),
    }))
}
