//! The Lambda functions of the job API (submit, status, logs, list, cancel), of job processing
//! (process, reconcile) and of the jobs' signed completion webhooks (webhook).
//!
//! One binary serves every function: `JOB_FUNCTION` (`names::env::FUNCTION`) selects the
//! handler, so the AWS SDKs compile once, while each function is still deployed as its own zip with
//! its own least-privilege role. Handlers are thin: [`lambda`] decodes the Lambda event into plain
//! types, [`api`], [`process`] and [`reconcile`] hold the logic, and [`aws`] holds the AWS calls.
//!
//! The AWS calls each function makes, and so what its IAM role must allow, are listed once in
//! `names::contract::calls`; infra-gen grants exactly those.

pub mod api;
pub mod aws;
pub mod config;
pub mod identity;
pub mod lambda;
pub mod manifest;
pub mod metrics;
pub mod model;
pub mod pool;
pub mod process;
pub mod reconcile;
pub mod task_state;
pub mod tenants;
pub mod time;
pub mod view;
pub mod webhook;

pub use config::Config;
pub use names::Function;

/// Seconds a queued job may wait before the sweep gives up on it (the queue retries a message for
/// `max attempts x visibility timeout` at most, well under this).
pub const QUEUE_ALLOWANCE_SECONDS: i64 = 30 * 60;
/// Seconds allowed for Fargate to pull the image and start the agent, on top of the job's timeout.
pub const PROVISIONING_ALLOWANCE_SECONDS: i64 = 10 * 60;

/// The longest an agent's link must keep working, plus a minute: a cold job's (the longest
/// timeout, Fargate's provisioning and the grace) or a warm slot's. The session that signs them
/// is renewed before less than this remains of it.
pub fn longest_link(config: &Config) -> std::time::Duration {
    let cold = u64::from(*names::job::TIMEOUT_SECONDS.end()) + PROVISIONING_ALLOWANCE_SECONDS as u64 + u64::from(config.timeout_grace_seconds);
    std::time::Duration::from_secs(cold.max(names::pool::LINK_SECONDS) + 60)
}

/// The configured functions and their AWS clients. Creating a client makes no AWS call, so every
/// function holds all of them and uses only its own.
#[derive(Clone, Debug)]
pub struct App {
    pub config: Config,
    pub store: aws::JobStore,
    pub queue: aws::JobQueue,
    pub outputs: aws::Outputs,
    pub tasks: aws::Tasks,
    pub logs: aws::AgentLogs,
    pub secrets: aws::TenantSecrets,
    /// Computer-use jobs' model keys.
    pub models: aws::Models,
    pub webhooks: aws::WebhookQueue,
    /// The warm slots' wake queues.
    pub wakes: aws::WakeQueues,
    pub signing: aws::SigningSecrets,
    /// The functions this process serves; an HTTP route of another function is answered 404
    /// (each deployed function's role allows only its own calls).
    pub serves: Vec<Function>,
    /// "Now" for every timestamp and deadline the functions write.
    pub clock: time::Clock,
    /// The tenants of the API keys seen (the API functions).
    pub key_tenants: std::sync::Arc<tenants::KeyTenants>,
}

impl App {
    pub fn new(sdk: &aws_config::SdkConfig, config: Config, serves: Vec<Function>) -> App {
        let webhooks = aws::WebhookQueue {
            client: aws_sdk_sqs::Client::new(sdk),
            url: config.webhook_queue_url.clone(),
            dlq_url: config.webhook_dlq_url.clone(),
        };
        App {
            store: aws::JobStore {
                client: aws_sdk_dynamodb::Client::new(sdk),
                table: config.table.clone(),
                clock: time::Clock::system(),
                webhooks: (!webhooks.url.is_empty()).then(|| webhooks.clone()),
                jobs: (!config.queue_url.is_empty()).then(|| aws::JobQueue { client: aws_sdk_sqs::Client::new(sdk), url: config.queue_url.clone() }),
                announce_grace_seconds: config.recovery_grace_seconds,
                webhook_stall_seconds: config.webhook_stall_seconds,
                metrics: metrics::Metrics { namespace: config.metrics_namespace.clone() },
                pricing: config.pricing,
            },
            webhooks,
            signing: aws::SigningSecrets { client: aws_sdk_ssm::Client::new(sdk), path: config.webhook_secrets_path.clone() },
            queue: aws::JobQueue { client: aws_sdk_sqs::Client::new(sdk), url: config.queue_url.clone() },
            wakes: aws::WakeQueues { client: aws_sdk_sqs::Client::new(sdk), prefix: config.name_prefix.clone() },
            outputs: aws::Outputs::new(sdk, &config.bucket, &config.link_signer_role_arn, longest_link(&config)),
            tasks: aws::Tasks {
                client: aws_sdk_ecs::Client::new(sdk),
                cluster: config.cluster_arn.clone(),
                task_definition: config.task_definition.clone(),
                subnets: config.subnet_ids.clone(),
                security_groups: config.security_group_ids.clone(),
                container: config.container_name.clone(),
            },
            logs: aws::AgentLogs { client: aws_sdk_cloudwatchlogs::Client::new(sdk), group: config.log_group.clone() },
            secrets: aws::TenantSecrets { client: aws_sdk_ssm::Client::new(sdk), path: config.tenant_secrets_path.clone() },
            models: aws::Models { sdk: sdk.clone(), role: config.model_role_arn.clone() },
            config,
            serves,
            clock: time::Clock::system(),
            key_tenants: Default::default(),
        }
    }

    /// The same app on another clock (tests move a manual one instead of sleeping).
    pub fn with_clock(mut self, clock: time::Clock) -> App {
        self.store.clock = clock.clone();
        self.clock = clock;
        self
    }

    /// Loads the SDK configuration the standard way (region, credentials and `AWS_ENDPOINT_URL`
    /// from the environment) and the functions' configuration from their environment variables.
    pub async fn from_env(serves: Vec<Function>) -> Result<App, String> {
        let config = Config::from_env(&serves)?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(App::new(&sdk, config, serves))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `make build` copies the one zip to each function's path; its list must be the functions'.
    #[test]
    fn makefile_builds_every_function_where_terraform_expects_it() {
        let mk = include_str!("../functions.mk");
        let line = mk.lines().find_map(|l| l.strip_prefix("LAMBDA_FUNCTIONS :=")).expect("LAMBDA_FUNCTIONS");
        let listed: Vec<&str> = line.split_whitespace().collect();
        let all: Vec<&str> = Function::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(listed, all);
        for f in Function::ALL {
            assert_eq!(f.zip_path(), format!("target/lambda/{}/bootstrap.zip", f.as_str()));
        }
    }

    #[test]
    fn every_function_reads_the_table() {
        for f in Function::ALL {
            assert!(config::env_vars(f).contains(&(names::contract::EnvVar::TableName, true)), "{f:?}");
        }
    }
}
