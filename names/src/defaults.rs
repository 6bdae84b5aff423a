pub const PROJECT_NAME: &str = "infra-demo";
pub const ENVIRONMENT: &str = "dev";
pub const AWS_REGION: &str = "us-east-1";
pub const AGENT_CPU: u32 = 1024;
pub const AGENT_MEMORY: u32 = 2048;
pub const API_RATE_LIMIT: u32 = 10;
pub const API_BURST_LIMIT: u32 = 20;
pub const TENANTS: &[&str] = &["test-tenant"];
pub const LOG_RETENTION_DAYS: u32 = 30;
pub const OUTPUT_EXPIRY_DAYS: u32 = 30;
pub const MAX_RECEIVE_COUNT: u32 = 3;
/// Per tenant: jobs started at once, and jobs queued (a submit over it is answered 429).
pub const TENANT_MAX_RUNNING: u32 = 5;
pub const TENANT_MAX_QUEUED: u32 = 1000;
/// A job whose tenant is at `max_running` is parked on its tenant's counter and woken (a new
/// message at once) when one of the tenant's jobs ends; its own message comes back this many
/// seconds later (SQS's longest delay) in case the wake-up was lost. A new message: its
/// receive count starts again, so it never reaches the DLQ.
pub const TENANT_WAIT_SECONDS: u32 = 900;
pub const JOB_TTL_DAYS: u32 = 90;
/// Warm slots: none by default (each costs a task running while it waits).
pub const WARM_POOL_SIZE: u32 = 0;
pub const MAX_WARM_POOL_SIZE: u32 = 100;
/// Seconds the process function may run per batch; the queue's visibility timeout is 6x this.
pub const PROCESS_TIMEOUT_SECONDS: u32 = 60;
/// The queues' event source mappings gather records for this long before invoking (SQS's default,
/// none): with a window, Lambda waits up to that long for a fuller batch, and a lone job or
/// webhook event waits with it (the 1 s window of earlier releases was up to a second on every
/// dispatch and every delivery at low load). Under load batches fill without one.
pub const BATCHING_WINDOW_SECONDS: u32 = 0;
pub const PROCESS_MAX_CONCURRENCY: u32 = 5;
/// Grace after a job's own timeout before the sweep stops it.
pub const TIMEOUT_GRACE_SECONDS: u32 = 120;

/// The name prefix every physical resource name starts with, for concrete values.
pub fn name_prefix(project: &str, environment: &str) -> String {
    format!("{project}-{environment}")
}

/// `GET /usage`: days answered when `from` is not given, and the most one request may ask.
pub const USAGE_DEFAULT_DAYS: i64 = 30;
pub const USAGE_MAX_DAYS: i64 = 93;
/// Fargate's on-demand prices in us-east-1 (per vCPU-hour, per GB-hour), Linux, as published for
/// 2026: the default of `fargate_prices` (check your region's at aws.amazon.com/fargate/pricing).
pub const FARGATE_PRICES_US_EAST_1_X86_64: (f64, f64) = (0.04048, 0.004445);
pub const FARGATE_PRICES_US_EAST_1_ARM64: (f64, f64) = (0.03238, 0.00356);
