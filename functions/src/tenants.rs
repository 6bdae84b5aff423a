//! Which tenant a request's API key belongs to: the item `apikey#<key id>` Terraform writes beside
//! each key and generation (`names::table::api_key_key`), read for the `apiKeyId` API Gateway hands
//! the function and kept in the function for minutes. The tenants live in the table, not in the
//! functions' environment, whose 4 KB would cap how many a deployment may have.

use crate::aws::{AwsError, JobStore};
use crate::model::TenantId;
use std::collections::HashMap;
use std::sync::Mutex;

/// How long a key's tenant is kept (a key never changes tenant: a rotation adds a key of its own).
pub const KEEP_MS: i64 = 5 * 60 * 1000;
/// How long a key without a tenant is remembered as such: a key Terraform has just made may be
/// used before its item is written, and is then refused for at most this long.
pub const KEEP_UNKNOWN_MS: i64 = 30 * 1000;
/// Most keys kept; past it the memory starts afresh (a deployment has one or two keys a tenant).
const MOST: usize = 10_000;

/// The tenants of the keys this function has seen.
#[derive(Debug, Default)]
pub struct KeyTenants {
    seen: Mutex<HashMap<String, (Option<TenantId>, i64)>>,
}

impl KeyTenants {
    /// The tenant of the API key `key_id` (`dynamodb:GetItem` unless kept), None when the key has
    /// none.
    pub async fn tenant_of(&self, store: &JobStore, now_ms: i64, key_id: &str) -> Result<Option<TenantId>, AwsError> {
        if let Some((tenant, until)) = self.seen.lock().unwrap_or_else(|e| e.into_inner()).get(key_id) {
            if *until > now_ms {
                return Ok(tenant.clone());
            }
        }
        let tenant = store.key_tenant(key_id).await?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MOST {
            seen.clear();
        }
        let keep = if tenant.is_some() { KEEP_MS } else { KEEP_UNKNOWN_MS };
        seen.insert(key_id.to_owned(), (tenant.clone(), now_ms + keep));
        Ok(tenant)
    }
}
