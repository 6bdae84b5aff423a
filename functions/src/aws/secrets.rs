//! The tenants' secrets and webhook signing secrets in SSM Parameter Store.

use super::*;

/// The tenants' webhook signing secrets in SSM Parameter Store, one SecureString per tenant.
#[derive(Clone, Debug)]
pub struct SigningSecrets {
    pub client: aws_sdk_ssm::Client,
    /// `/<project>/<environment>/webhooks/`.
    pub path: String,
}

impl SigningSecrets {
    /// `ssm:GetParameters` (with decryption) of the tenant's signing secrets: one, or two while
    /// they rotate (newest first); None when the tenant has none.
    pub async fn read(&self, tenant: &str) -> Result<Option<Vec<String>>, AwsError> {
        let name = names::ssm::webhook_secret(&self.path, tenant);
        let r = self
            .client
            .get_parameters()
            .names(&name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ssm:GetParameters", e))?;
        Ok(r.parameters().iter().find(|p| p.name() == Some(name.as_str())).and_then(|p| p.value()).map(|v| v.split_whitespace().map(str::to_owned).collect()))
    }
}

/// The tenants' secrets in SSM Parameter Store, below one path.
#[derive(Clone, Debug)]
pub struct TenantSecrets {
    pub client: aws_sdk_ssm::Client,
    /// `/<project>/<environment>/tenants/`.
    pub path: String,
}

impl TenantSecrets {
    /// `ssm:GetParameters` (with decryption) of the tenant's secrets `names`: their values by
    /// name, or the names that do not exist.
    pub async fn read(&self, tenant: &str, names: &[&str]) -> Result<Result<BTreeMap<String, String>, Vec<String>>, AwsError> {
        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        // GetParameters takes at most 10 names.
        for chunk in names.chunks(10) {
            let params: Vec<String> = chunk.iter().map(|n| names::ssm::tenant_secret(&self.path, tenant, n)).collect();
            let r = self
                .client
                .get_parameters()
                .set_names(Some(params.clone()))
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ssm:GetParameters", e))?;
            for p in r.parameters() {
                if let (Some(name), Some(value)) = (p.name(), p.value()) {
                    if let Some(i) = params.iter().position(|q| q == name) {
                        values.insert(chunk[i].to_owned(), value.to_owned());
                    }
                }
            }
            missing.extend(chunk.iter().filter(|n| !values.contains_key(**n)).map(|n| n.to_string()));
        }
        Ok(if missing.is_empty() { Ok(values) } else { Err(missing) })
    }
}
