/// Set on every function: which handler the shared binary runs.
pub const FUNCTION: &str = "JOB_FUNCTION";
pub const TABLE_NAME: &str = "JOBS_TABLE";
pub const QUEUE_URL: &str = "JOBS_QUEUE_URL";
pub const BUCKET_NAME: &str = "OUTPUTS_BUCKET";
pub const CLUSTER_ARN: &str = "ECS_CLUSTER_ARN";
pub const TASK_DEFINITION: &str = "ECS_TASK_DEFINITION";
/// The role whose session signs the links handed to agents (the process function's own): an
/// `sts:AssumeRole` session has an expiry the function knows, Lambda's environment
/// credentials have none.
pub const LINK_SIGNER_ROLE_ARN: &str = "LINK_SIGNER_ROLE_ARN";
/// The role whose sessions, narrowed to one job's model, mint the short-term Bedrock API keys
/// of computer-use jobs (`bedrock:InvokeModel` on the deployment's models).
pub const MODEL_ROLE_ARN: &str = "MODEL_ROLE_ARN";
/// The deployment's name prefix (`<project>-<environment>`): the process function names each
/// warm slot's wake queue with it (`names::queue::wake_name`), as its grant does. Unset: slots
/// get no wake queue and look at their manifest every 250 ms.
pub const NAME_PREFIX: &str = "NAME_PREFIX";
pub const SUBNET_IDS: &str = "AGENT_SUBNET_IDS";
pub const SECURITY_GROUP_IDS: &str = "AGENT_SECURITY_GROUP_IDS";
pub const CONTAINER_NAME: &str = "AGENT_CONTAINER_NAME";
pub const LOG_GROUP: &str = "AGENT_LOG_GROUP";
pub const MAX_ATTEMPTS: &str = "MAX_ATTEMPTS";
pub const TIMEOUT_GRACE_SECONDS: &str = "TIMEOUT_GRACE_SECONDS";
pub const JOB_TTL_DAYS: &str = "JOB_TTL_DAYS";
/// The default limits, `{"max_running": 5, "max_queued": 1000}`, for a tenant without limits of
/// its own (those are items of the table, `names::table::limits_key`, which the reconciler writes
/// onto each tenant's counter).
pub const TENANT_LIMIT_DEFAULTS: &str = "TENANT_LIMIT_DEFAULTS";
/// Where the tenants' secrets live in SSM (`/<project>/<environment>/tenants/`).
pub const TENANT_SECRETS_PATH: &str = "TENANT_SECRETS_PATH";
/// The queue of webhook deliveries: every function that finishes a job announces it there.
pub const WEBHOOK_QUEUE_URL: &str = "WEBHOOK_QUEUE_URL";
pub const WEBHOOK_DLQ_URL: &str = "WEBHOOK_DLQ_URL";
/// Where the tenants' signing secrets live in SSM (`/<project>/<environment>/webhooks/`).
pub const WEBHOOK_SECRETS_PATH: &str = "WEBHOOK_SECRETS_PATH";
/// Seconds before each retry, comma-separated (`5,300,1800,7200,18000,36000`).
pub const WEBHOOK_RETRY_SECONDS: &str = "WEBHOOK_RETRY_SECONDS";
/// Warm slots kept waiting for jobs (0: every job starts a cold task).
pub const WARM_POOL_SIZE: &str = "WARM_POOL_SIZE";
pub const LOG_LEVEL: &str = "RUST_LOG";
/// The CloudWatch namespace of the metrics the functions write (`names::metrics::namespace`).
pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
/// What a job's task costs: `{"vcpu": 1, "memory_gb": 2, "vcpu_hour": 0.03238, "gb_hour": 0.00356}`
/// (its size, and Fargate's prices for the region and architecture from `fargate_prices`).
pub const FARGATE_PRICING: &str = "FARGATE_PRICING";
/// Computer-use jobs' models, prices, default and largest limits and endpoints
/// (`names::goal::Settings` as JSON; absent: such jobs are refused).
pub const COMPUTER_USE: &str = "COMPUTER_USE";

/// Set on the agent container (by the task definition or the RunTask override).
pub mod agent {
    /// A pre-signed GET of the job's manifest (`names::manifest`): the job and its upload
    /// forms. The only job data in the RunTask override, and so in DescribeTasks and task
    /// events.
    pub const MANIFEST_URL: &str = "AGENT_MANIFEST_URL";
    /// The job's id, for the log lines written before the manifest is read.
    pub const TASK_ID: &str = "AGENT_TASK_ID";
    /// A task started before its job (a warm slot) gets, instead of [`MANIFEST_URL`], a
    /// pre-signed GET of where its job's manifest will be written: the agent polls it until
    /// the manifest is there.
    pub const SLOT_MANIFEST_URL: &str = "AGENT_SLOT_MANIFEST_URL";
    /// A pre-signed DELETE of that manifest: the agent deletes it once read, so the slot's
    /// manifest left behind means the job was never taken.
    pub const SLOT_RELEASE_URL: &str = "AGENT_SLOT_RELEASE_URL";
    /// A pre-signed SQS `ReceiveMessage` of the slot's wake queue (a long poll of
    /// `names::pool::WAKE_WAIT_SECONDS`): the dispatcher sends a message there once the
    /// manifest is written, so the slot reads it at once instead of at its next look. Optional:
    /// without it the slot looks every `SLOT_POLL`.
    pub const SLOT_WAKE_URL: &str = "AGENT_SLOT_WAKE_URL";
    /// Epoch seconds when an idle slot gives up and exits 0 (before its links expire).
    pub const SLOT_DEADLINE: &str = "AGENT_SLOT_DEADLINE";
    /// Search URL template with a `{query}` placeholder.
    pub const SEARCH_URL_TEMPLATE: &str = "AGENT_SEARCH_URL_TEMPLATE";
    /// Comma-separated hosts/CIDRs (each with an optional `:port`) the egress guard lets
    /// through: tests and local mode only; the agent refuses it in ECS.
    pub const EGRESS_ALLOW: &str = "AGENT_EGRESS_ALLOW";
    /// Comma-separated ports the browser may connect to (default 80,443).
    pub const EGRESS_PORTS: &str = "AGENT_EGRESS_PORTS";
    /// Set by ECS in every task's containers: how the agent knows it runs in AWS.
    pub const ECS_METADATA: &str = "ECS_CONTAINER_METADATA_URI_V4";
    pub const CHROMIUM_PATH: &str = "AGENT_CHROMIUM";
    pub const CHROMEDRIVER_PATH: &str = "AGENT_CHROMEDRIVER";
    /// The writable scratch directory (the root filesystem is read-only).
    pub const SCRATCH_DIR: &str = "AGENT_SCRATCH_DIR";
    /// The CloudWatch namespace of the agent's metric lines (`names::metrics::namespace`).
    pub const METRICS_NAMESPACE: &str = "AGENT_METRICS_NAMESPACE";
}
