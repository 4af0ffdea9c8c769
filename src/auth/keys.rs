//! Creating, rotating and revoking keys: shared by the CLI (an operator, any tenant) and the
//! API (a key with `keys:manage`, its own tenant and mode only).

use super::scopes::Scopes;
use super::{KEY_PREFIX, digest};
use crate::store::tenants::{KeyRecord, Mode, NewKey, Tenant};
use crate::store::{Db, StoreError};
use std::time::Duration;

/// The longest a rotated key may keep working beside its successor.
pub const MAX_ROTATION_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("tenant `{0}` does not exist (create it with --create-tenant)")]
    UnknownTenant(String),
    #[error("{0}")]
    Invalid(String),
    #[error("no such key")]
    NotFound,
    /// Revoked, expired, or rotated before: a key is rotated once.
    #[error("the key is revoked, expired or already rotated")]
    NotActive,
    #[error("no randomness for a new key: {0}")]
    NoRandomness(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A key just made: its record, and the key itself (shown once, never stored).
#[derive(Debug)]
pub struct CreatedKey {
    pub record: KeyRecord,
    pub secret: String,
}

/// What to make a key for, from the CLI.
pub struct KeyRequest<'a> {
    pub tenant: &'a str,
    pub mode: Mode,
    pub scopes: Scopes,
    pub description: Option<&'a str>,
    /// Make the tenant when it does not exist (otherwise a typo would make a new tenant).
    pub create_tenant: bool,
}

/// A new random key: `sg_` and 48 hex digits.
pub fn generate_key() -> Result<String, KeyError> {
    let mut bytes = [0_u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::NoRandomness(e.to_string()))?;
    Ok(format!("{KEY_PREFIX}{}", hex::encode(bytes)))
}

fn check_description(description: Option<&str>) -> Result<(), KeyError> {
    match description {
        Some(d) if d.chars().count() > 200 || d.chars().any(char::is_control) => Err(
            KeyError::Invalid("description: at most 200 characters, no control characters".into()),
        ),
        _ => Ok(()),
    }
}

/// Creates a key (the CLI's `keys create`).
pub async fn create_key(db: &Db, req: &KeyRequest<'_>) -> Result<CreatedKey, KeyError> {
    let name = req.tenant.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(KeyError::Invalid(
            "tenant: 1 to 100 characters, no control characters".into(),
        ));
    }
    let account = match db.account(name).await? {
        Some(account) => account,
        None if req.create_tenant => db.ensure_account(name).await?,
        None => return Err(KeyError::UnknownTenant(name.to_owned())),
    };
    let tenant = db.tenant_in_mode(&account, req.mode).await?;
    create_key_for(db, &tenant, req.scopes, req.description).await
}

/// Creates a key for one tenant row (the API's `POST /v1/keys`).
pub async fn create_key_for(
    db: &Db,
    tenant: &Tenant,
    scopes: Scopes,
    description: Option<&str>,
) -> Result<CreatedKey, KeyError> {
    check_description(description)?;
    let secret = generate_key()?;
    let scopes = scopes.to_string();
    let id = db
        .insert_api_key(&NewKey {
            tenant_id: &tenant.id,
            digest: &digest(&secret),
            prefix: prefix(&secret),
            scopes: &scopes,
            description,
        })
        .await?;
    let record = db.key(&id, None).await?.ok_or(KeyError::NotFound)?;
    Ok(CreatedKey { record, secret })
}

/// The key's visible start, enough to tell keys apart in a list.
fn prefix(secret: &str) -> &str {
    &secret[..KEY_PREFIX.len() + 6]
}

/// Replaces key `id` with a new one of the same tenant, scopes and description; the old key
/// keeps working for `grace` (at most [`MAX_ROTATION_GRACE`]; zero stops it at once).
pub async fn rotate_key(
    db: &Db,
    id: &str,
    tenant_id: Option<&str>,
    grace: Duration,
) -> Result<(CreatedKey, KeyRecord), KeyError> {
    if grace > MAX_ROTATION_GRACE {
        return Err(KeyError::Invalid(format!(
            "the old key may keep working for at most {} s",
            MAX_ROTATION_GRACE.as_secs()
        )));
    }
    let old = db.key(id, tenant_id).await?.ok_or(KeyError::NotFound)?;
    let secret = generate_key()?;
    let new_id = db
        .rotate_key(
            &old.id,
            &NewKey {
                tenant_id: &old.tenant.id,
                digest: &digest(&secret),
                prefix: prefix(&secret),
                scopes: &old.scopes,
                description: old.description.as_deref(),
            },
            i64::try_from(grace.as_millis()).unwrap_or(i64::MAX),
        )
        .await?
        .ok_or(KeyError::NotActive)?;
    let record = db.key(&new_id, None).await?.ok_or(KeyError::NotFound)?;
    let old = db.key(&old.id, None).await?.ok_or(KeyError::NotFound)?;
    Ok((CreatedKey { record, secret }, old))
}

/// The keys of an account: both modes for the CLI, one tenant row for the API.
pub async fn list_keys(db: &Db, tenant: &str) -> Result<Vec<KeyRecord>, KeyError> {
    let account = db
        .account(tenant.trim())
        .await?
        .ok_or_else(|| KeyError::UnknownTenant(tenant.trim().to_owned()))?;
    let rows = db.account_rows(&account).await?;
    let ids: Vec<&str> = rows.iter().map(|t| t.id.as_str()).collect();
    Ok(db.keys_of(&ids).await?)
}

/// Revokes key `id` at once; revoking a revoked key changes nothing. Returns the key as it is now.
pub async fn revoke_key(db: &Db, id: &str, tenant_id: Option<&str>) -> Result<KeyRecord, KeyError> {
    let key = db.key(id, tenant_id).await?.ok_or(KeyError::NotFound)?;
    db.revoke_key(&key.id).await?;
    db.key(&key.id, None).await?.ok_or(KeyError::NotFound)
}
