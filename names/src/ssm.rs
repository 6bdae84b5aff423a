/// Where the agent's parameters live: `/<project>/<environment>/agent/`, one path per stack,
/// so two environments in one account never share one.
pub fn agent_path(project: &str, environment: &str) -> String {
    format!("/{project}/{environment}/agent/")
}

/// Where the tenants' secrets live: `/<project>/<environment>/tenants/`; a tenant's are below
/// it, one parameter per secret ([`tenant_secret`]).
pub fn tenants_path(project: &str, environment: &str) -> String {
    format!("/{project}/{environment}/tenants/")
}

/// Where the tenants' webhook signing secrets live: `/<project>/<environment>/webhooks/`,
/// apart from the secrets jobs may type (a job can never name a signing secret).
pub fn webhooks_path(project: &str, environment: &str) -> String {
    format!("/{project}/{environment}/webhooks/")
}

/// The SecureString of a tenant's signing secrets: `<webhooks path><tenant>`, holding one
/// `whsec_...` secret, or two separated by a space while they rotate (newest first).
pub fn webhook_secret(webhooks_path: &str, tenant: &str) -> String {
    format!("{webhooks_path}{tenant}")
}

/// The parameter of a tenant's secret: `<tenants path><tenant>/<name>`.
pub fn tenant_secret(tenants_path: &str, tenant: &str, name: &str) -> String {
    format!("{tenants_path}{tenant}/{name}")
}
