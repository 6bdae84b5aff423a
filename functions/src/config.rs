//! Configuration from the environment infra-gen sets on each function. Each function reads only
//! what it uses ([`env_vars`]); a missing required variable stops it at start-up with a message
//! naming the variable, not on the first request.

use names::contract::EnvVar;
#[cfg(test)]
use names::env;
use names::Function;
use std::collections::HashMap;

/// The environment variables a function reads: (name, required). The Terraform generator must set
/// the required ones; the others have defaults from `names::defaults`.
pub fn env_vars(f: Function) -> &'static [(EnvVar, bool)] {
    names::contract::env_vars(f)
}

/// Every tenant's limits unless it has its own (`TENANT_LIMIT_DEFAULTS`): all a function's own
/// configuration holds. A tenant's own limits are items of the table
/// (`names::table::limits_key`), which the reconciler writes onto each tenant's counter, where
/// submit and process read them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitDefaults {
    pub max_running: u32,
    pub max_queued: u32,
}

impl Default for LimitDefaults {
    fn default() -> LimitDefaults {
        LimitDefaults { max_running: names::defaults::TENANT_MAX_RUNNING, max_queued: names::defaults::TENANT_MAX_QUEUED }
    }
}

impl LimitDefaults {
    /// Reads the JSON of the variable `var`.
    pub fn from_json(var: &str, s: &str) -> Result<LimitDefaults, String> {
        let limits: LimitDefaults = serde_json::from_str(s).map_err(|e| format!("{var} must be {{\"max_running\": n, \"max_queued\": n}}: {e}"))?;
        if limits.max_running == 0 || limits.max_queued == 0 {
            return Err(format!("{var}: limits must be at least 1"));
        }
        Ok(limits)
    }
}

/// The tenants' limits as a whole: the defaults and each tenant's own (the shape of the
/// deployment's `tenant_limits` variable). The reconciler reads them from the table; the local
/// stack is given them and writes them there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantLimits {
    pub defaults: LimitDefaults,
    pub tenants: HashMap<String, LimitOverride>,
}

/// A tenant's own limits; an absent (or null) one is the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverride {
    #[serde(default)]
    pub max_running: Option<u32>,
    #[serde(default)]
    pub max_queued: Option<u32>,
}

impl TenantLimits {
    /// Every tenant with the same limits.
    pub fn uniform(max_running: u32, max_queued: u32) -> TenantLimits {
        TenantLimits { defaults: LimitDefaults { max_running, max_queued }, tenants: HashMap::new() }
    }

    pub fn max_running(&self, tenant: &str) -> u32 {
        self.tenants.get(tenant).and_then(|o| o.max_running).unwrap_or(self.defaults.max_running).max(1)
    }

    pub fn max_queued(&self, tenant: &str) -> u32 {
        self.tenants.get(tenant).and_then(|o| o.max_queued).unwrap_or(self.defaults.max_queued).max(1)
    }
}

/// Everything a function is configured with. Fields a function does not use stay empty.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub table: String,
    pub queue_url: String,
    pub bucket: String,
    pub cluster_arn: String,
    pub task_definition: String,
    /// The role whose `sts:AssumeRole` session signs the agents' links (empty: the function's
    /// own credentials sign them, as outside AWS).
    pub link_signer_role_arn: String,
    /// The role whose sessions mint computer-use jobs' Bedrock keys (empty: none).
    pub model_role_arn: String,
    /// The deployment's name prefix, which names the warm slots' wake queues (empty: slots get
    /// none and poll their manifest).
    pub name_prefix: String,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    pub container_name: String,
    pub log_group: String,
    pub max_attempts: u32,
    pub timeout_grace_seconds: u32,
    pub job_ttl_days: u32,
    /// SSM path of the tenants' secrets (`/<project>/<environment>/tenants/`).
    pub tenant_secrets_path: String,
    pub limits: LimitDefaults,
    /// Seconds a job whose tenant is at its running limit waits before its message comes back.
    pub tenant_wait_seconds: u32,
    /// The queue of webhook deliveries, and its dead-letter queue.
    pub webhook_queue_url: String,
    pub webhook_dlq_url: String,
    /// SSM path of the tenants' signing secrets (`/<project>/<environment>/webhooks/`).
    pub webhook_secrets_path: String,
    /// Seconds before each retry after the first attempt.
    pub webhook_retry_seconds: Vec<u32>,
    /// How long an attempt may take (10 s; tests shorten it).
    pub webhook_timeout: std::time::Duration,
    /// Where webhooks may go: public addresses on any port, plus (local mode only: never read
    /// from the environment) what the local stack allows on loopback.
    pub webhook_egress: names::egress::EgressPolicy,
    /// `http://` webhook URLs: local mode only (never from the environment).
    pub webhook_allow_http: bool,
    /// Warm slots kept waiting for jobs (0: none).
    pub warm_pool_size: u32,
    /// How long a step left unfinished waits before another function takes it as left by one
    /// that died (`names::pool::RECOVERY_GRACE_SECONDS`; the local stack's tests shorten it).
    pub recovery_grace_seconds: i64,
    /// How long a round being sent may go without progress past its next attempt's due time
    /// before the sweep ends it FAILED (`names::webhook::STALL_SECONDS`; tests shorten it).
    pub webhook_stall_seconds: i64,
    /// The CloudWatch namespace of the metric lines (`names::metrics`).
    pub metrics_namespace: String,
    /// A job's task size and Fargate's prices: what a job's usage records.
    pub pricing: Pricing,
    /// Computer-use jobs' models and limits (no models: such jobs are refused).
    pub computer: names::goal::Settings,
}

/// A job's task size and what Fargate charges for it (`FARGATE_PRICING`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    pub vcpu: f64,
    pub memory_gb: f64,
    /// US dollars per vCPU-hour and per GB-hour.
    pub vcpu_hour: f64,
    pub gb_hour: f64,
}

impl Default for Pricing {
    /// The default task (1 vCPU, 2 GB) at us-east-1's arm64 prices.
    fn default() -> Pricing {
        let (vcpu_hour, gb_hour) = names::defaults::FARGATE_PRICES_US_EAST_1_ARM64;
        Pricing { vcpu: f64::from(names::defaults::AGENT_CPU) / 1024.0, memory_gb: f64::from(names::defaults::AGENT_MEMORY) / 1024.0, vcpu_hour, gb_hour }
    }
}

impl Pricing {
    /// (vCPU-seconds, GB-seconds, US dollars) of a task running `seconds`.
    pub fn of(&self, seconds: f64) -> (f64, f64, f64) {
        let (v, g) = (seconds * self.vcpu, seconds * self.memory_gb);
        (v, g, v / 3600.0 * self.vcpu_hour + g / 3600.0 * self.gb_hour)
    }

    fn parse(var: &str, s: &str) -> Result<Pricing, String> {
        let p: Pricing = serde_json::from_str(s).map_err(|e| format!("{var} must be {{\"vcpu\", \"memory_gb\", \"vcpu_hour\", \"gb_hour\"}}: {e}"))?;
        if [p.vcpu, p.memory_gb, p.vcpu_hour, p.gb_hour].iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(format!("{var}: every figure must be a number, 0 or more"));
        }
        Ok(p)
    }
}

impl Config {
    /// Defaults for everything optional; strings empty.
    pub fn defaults() -> Config {
        Config {
            container_name: names::agent::CONTAINER_NAME.to_owned(),
            max_attempts: names::defaults::MAX_RECEIVE_COUNT,
            timeout_grace_seconds: names::defaults::TIMEOUT_GRACE_SECONDS,
            job_ttl_days: names::defaults::JOB_TTL_DAYS,
            tenant_secrets_path: names::ssm::tenants_path(names::defaults::PROJECT_NAME, names::defaults::ENVIRONMENT),
            tenant_wait_seconds: names::defaults::TENANT_WAIT_SECONDS,
            webhook_secrets_path: names::ssm::webhooks_path(names::defaults::PROJECT_NAME, names::defaults::ENVIRONMENT),
            webhook_retry_seconds: names::webhook::DEFAULT_RETRY_SECONDS.to_vec(),
            webhook_timeout: std::time::Duration::from_secs(names::webhook::TIMEOUT_SECONDS),
            webhook_egress: names::egress::EgressPolicy::default().with_any_port(),
            recovery_grace_seconds: names::pool::RECOVERY_GRACE_SECONDS,
            webhook_stall_seconds: names::webhook::STALL_SECONDS,
            metrics_namespace: names::metrics::DEFAULT_NAMESPACE.to_owned(),
            ..Config::default()
        }
    }

    /// Reads the variables of `functions` (several when one process serves several, as locally).
    pub fn from_env(functions: &[Function]) -> Result<Config, String> {
        Config::from_lookup(functions, |k| std::env::var(k).ok())
    }

    pub fn from_lookup(
        functions: &[Function],
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, String> {
        let mut c = Config::defaults();
        let mut missing = Vec::new();
        for f in functions {
            for &(var, required) in env_vars(*f) {
                let name = var.name();
                let Some(value) = lookup(name).filter(|v| !v.trim().is_empty()) else {
                    if required && !missing.contains(&name) {
                        missing.push(name);
                    }
                    continue;
                };
                let number = |v: &str| v.trim().parse::<u32>().map_err(|_| format!("{name} must be a number, got {v:?}"));
                let list = |v: &str| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
                match var {
                    EnvVar::TableName => c.table = value,
                    EnvVar::QueueUrl => c.queue_url = value,
                    EnvVar::BucketName => c.bucket = value,
                    EnvVar::ClusterArn => c.cluster_arn = value,
                    EnvVar::TaskDefinition => c.task_definition = value,
                    EnvVar::LinkSignerRoleArn => c.link_signer_role_arn = value,
                    EnvVar::ModelRoleArn => c.model_role_arn = value,
                    EnvVar::NamePrefix => c.name_prefix = value,
                    EnvVar::SubnetIds => c.subnet_ids = list(&value),
                    EnvVar::SecurityGroupIds => c.security_group_ids = list(&value),
                    EnvVar::ContainerName => c.container_name = value,
                    EnvVar::LogGroup => c.log_group = value,
                    EnvVar::MaxAttempts => c.max_attempts = number(&value)?.max(1),
                    EnvVar::TimeoutGraceSeconds => c.timeout_grace_seconds = number(&value)?,
                    EnvVar::JobTtlDays => c.job_ttl_days = number(&value)?.max(1),
                    EnvVar::TenantSecretsPath => c.tenant_secrets_path = value,
                    EnvVar::TenantLimitDefaults => c.limits = LimitDefaults::from_json(name, &value)?,
                    EnvVar::WebhookQueueUrl => c.webhook_queue_url = value,
                    EnvVar::WebhookDlqUrl => c.webhook_dlq_url = value,
                    EnvVar::WebhookSecretsPath => c.webhook_secrets_path = value,
                    EnvVar::WebhookRetrySeconds => c.webhook_retry_seconds = retry_schedule(name, &value)?,
                    EnvVar::WarmPoolSize => c.warm_pool_size = number(&value)?.min(names::defaults::MAX_WARM_POOL_SIZE),
                    EnvVar::MetricsNamespace => c.metrics_namespace = value,
                    EnvVar::FargatePricing => c.pricing = Pricing::parse(name, &value)?,
                    EnvVar::ComputerUse => c.computer = computer_use(name, &value)?,
                }
            }
        }
        if missing.is_empty() {
            Ok(c)
        } else {
            Err(format!("missing environment variables: {}", missing.join(", ")))
        }
    }
}

/// The computer-use settings, each model's prices and each limit checked.
fn computer_use(var: &str, s: &str) -> Result<names::goal::Settings, String> {
    use names::goal;
    let c: goal::Settings = serde_json::from_str(s).map_err(|e| format!("{var} must be the computer-use settings as JSON: {e}"))?;
    if c.models.len() > goal::MAX_MODELS {
        return Err(format!("{var}: at most {} models", goal::MAX_MODELS));
    }
    for (key, p) in &c.models {
        let provider = key.split_once('/').and_then(|(p, id)| (!id.is_empty()).then_some(p)).and_then(goal::Provider::parse);
        if provider.is_none() {
            return Err(format!("{var}: model `{key}` must be `bedrock/<model id>` or `anthropic/<model id>`"));
        }
        if [p.input, p.output, p.cache_write, p.cache_read].iter().any(|v| !v.0.is_finite() || v.0 < 0.0) {
            return Err(format!("{var}: model `{key}`'s prices must be numbers, 0 or more"));
        }
    }
    if !c.default_model.is_empty() && !c.models.contains_key(&c.default_model) {
        return Err(format!("{var}: the default model `{}` is not one of the models", c.default_model));
    }
    for l in [c.default_limits, c.max_limits] {
        if !goal::STEPS.contains(&l.max_steps) || !goal::TOKENS.contains(&l.max_tokens) || !goal::COST_USD.contains(&l.max_cost_usd.0) {
            return Err(format!("{var}: limits must be within max_steps {:?}, max_tokens {:?}, max_cost_usd {:?}", goal::STEPS, goal::TOKENS, goal::COST_USD));
        }
    }
    Ok(c)
}

/// A retry schedule: comma-separated seconds, each from 1 to a day, at most 20 of them.
pub fn retry_schedule(var: &str, s: &str) -> Result<Vec<u32>, String> {
    let max = names::webhook::MAX_RETRY_SECONDS;
    let parsed: Result<Vec<u32>, String> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| format!("{var}: `{p}` is not a number of seconds from 1 to {max}")))
        .collect();
    let schedule = parsed?;
    if schedule.len() > 20 {
        return Err(format!("{var}: at most 20 retries"));
    }
    Ok(schedule)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As Terraform's jsonencode writes it (whole numbers without a fraction).
    const COMPUTER_USE: &str = r#"{"models": {"bedrock/m": {"input": 3, "output": 15, "cache_write": 3.75, "cache_read": 0.3}}, "default_model": "bedrock/m",
        "default_limits": {"max_steps": 30, "max_tokens": 1000000, "max_cost_usd": 5}, "max_limits": {"max_steps": 50, "max_tokens": 2000000, "max_cost_usd": 10}, "endpoints": {}}"#;

    #[test]
    fn computer_use_settings_are_checked() {
        let parse = |v: &str| computer_use("COMPUTER_USE", v);
        assert_eq!(parse(COMPUTER_USE).unwrap().models["bedrock/m"].output.0, 15.0);
        let bad = |from: &str, to: &str| parse(&COMPUTER_USE.replace(from, to)).unwrap_err();
        assert!(bad("\"bedrock/m\": {", "\"openai/m\": {").contains("must be `bedrock/<model id>`"));
        assert!(bad("\"input\": 3", "\"input\": -3").contains("0 or more"));
        assert!(bad("\"default_model\": \"bedrock/m\"", "\"default_model\": \"bedrock/n\"").contains("not one of the models"));
        assert!(bad("\"max_steps\": 50", "\"max_steps\": 0").contains("limits must be within"));
        assert!(parse("x").unwrap_err().starts_with("COMPUTER_USE must be"));
    }

    #[test]
    fn reads_only_what_a_function_needs() {
        let err = Config::from_lookup(&[Function::List], |_| None).unwrap_err();
        assert!(err.contains(env::TABLE_NAME), "{err}");
        let c = Config::from_lookup(&[Function::Process], |k| match k {
            env::SUBNET_IDS => Some("subnet-a, subnet-b".into()),
            env::MAX_ATTEMPTS => Some("5".into()),
            env::TIMEOUT_GRACE_SECONDS => None,
            env::TENANT_LIMIT_DEFAULTS => Some(r#"{"max_running": 3, "max_queued": 50}"#.into()),
            env::WARM_POOL_SIZE => Some("4".into()),
            env::FARGATE_PRICING => Some(r#"{"vcpu": 0.5, "memory_gb": 1, "vcpu_hour": 0.04048, "gb_hour": 0.004445}"#.into()),
            env::COMPUTER_USE => Some(COMPUTER_USE.into()),
            _ => Some("x".into()),
        })
        .unwrap();
        assert_eq!(c.computer.default_model, "bedrock/m");
        assert_eq!(c.computer.max_limits.max_steps, 50);
        assert_eq!(c.pricing, Pricing { vcpu: 0.5, memory_gb: 1.0, vcpu_hour: 0.04048, gb_hour: 0.004445 });
        let bad = |v: &str| Config::from_lookup(&[Function::Reconcile], |k| (k == env::FARGATE_PRICING).then(|| v.to_string())).unwrap_err();
        assert!(bad(r#"{"vcpu": 1}"#).contains(env::FARGATE_PRICING));
        assert!(bad(r#"{"vcpu": -1, "memory_gb": 1, "vcpu_hour": 1, "gb_hour": 1}"#).contains("0 or more"));
        assert_eq!(c.warm_pool_size, 4);
        assert_eq!(c.subnet_ids, ["subnet-a", "subnet-b"]);
        assert_eq!(c.max_attempts, 5);
        assert!(c.log_group.is_empty(), "process does not read the log group");
        assert_eq!(c.limits, LimitDefaults { max_running: 3, max_queued: 50 });
        let mut l = TenantLimits { defaults: c.limits, ..TenantLimits::default() };
        l.tenants.insert("acme".into(), LimitOverride { max_running: Some(10), max_queued: None });
        assert_eq!((l.max_running("acme"), l.max_queued("acme"), l.max_running("other")), (10, 50, 3));
        assert!(LimitDefaults::from_json("X", r#"{"max_running": 0, "max_queued": 1}"#).unwrap_err().contains("at least 1"));
        // A tenant's own limits are never in the environment (they are items of the table).
        assert!(LimitDefaults::from_json("X", r#"{"max_running": 1, "max_queued": 1, "tenants": {}}"#).unwrap_err().starts_with("X must be"));
        assert_eq!(c.timeout_grace_seconds, names::defaults::TIMEOUT_GRACE_SECONDS);
        let w = Config::from_lookup(&[Function::Webhook], |k| match k {
            env::WEBHOOK_RETRY_SECONDS => Some("1, 2,3".into()),
            _ => Some("x".into()),
        })
        .unwrap();
        assert_eq!(w.webhook_retry_seconds, [1, 2, 3]);
        assert_eq!(w.webhook_timeout, std::time::Duration::from_secs(10));
        assert!(!w.webhook_allow_http && w.webhook_egress.is_empty(), "local-mode settings never come from the environment");
        assert_eq!(Config::defaults().webhook_retry_seconds, [5, 300, 1800, 7200, 18000, 36000]);
        assert!(retry_schedule("W", "5,0").unwrap_err().contains("`0`"));
        assert!(retry_schedule("W", "5,x").is_err());
        assert!(retry_schedule("W", "86401").is_err());
    }
}
