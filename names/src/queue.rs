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

/// A warm slot's wake queue, one per slot, made when its task is started and deleted when the
/// task stops (the functions' calls, not Terraform's: slots come and go at run time). The slot's
/// agent long-polls it through a pre-signed `ReceiveMessage`; the dispatcher sends one message
/// once the slot's manifest is written. `prefix` is at most 32 characters (project and
/// environment), the slot's id 32 hex digits: at most 70 of SQS's 80.
pub fn wake_name(prefix: &str, slot_id: &str) -> String {
    format!("{prefix}{WAKE_INFIX}{slot_id}")
}
/// What follows the prefix in every wake queue's name (the functions' grants name
/// `<prefix>-wake-*`).
pub const WAKE_INFIX: &str = "-wake-";
