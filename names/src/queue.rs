pub fn jobs_name(prefix: &str) -> String {
    format!("{prefix}-jobs")
}
pub fn dlq_name(prefix: &str) -> String {
    format!("{prefix}-jobs-dlq")
}
/// The job a job message is for: `{"task_id": "..."}`.
pub const MESSAGE_TASK_ID: &str = "task_id";
/// Marks a wake-up (`{"task_id": "...", "wake": true}`: a running place of the job's tenant
/// freed), an extra message beside the job's own: one that finds the tenant at its limit
/// again parks the job without sending another, so a job keeps one message, not one more per
/// wake-up that lost its race.
pub const MESSAGE_WAKE: &str = "wake";
/// The other message of the job queue: `{"pool": "refill"}` asks the process function to
/// start the warm slots the pool lacks.
pub const MESSAGE_POOL: &str = "pool";
pub const POOL_REFILL: &str = "refill";

/// The queue of webhook deliveries (a job's event, then each retry as a new message).
pub fn webhooks_name(prefix: &str) -> String {
    format!("{prefix}-webhooks")
}
/// Events whose every attempt failed (and messages the delivery function could not handle).
pub fn webhooks_dlq_name(prefix: &str) -> String {
    format!("{prefix}-webhooks-dlq")
}
