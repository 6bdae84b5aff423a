pub fn name(prefix: &str) -> String {
    format!("{prefix}-jobs")
}
/// Partition key.
pub const TASK_ID: &str = "task_id";
/// Global secondary index for listing a tenant's jobs, newest first.
pub const TENANT_INDEX: &str = "tenant_id-created_at-index";
pub const TENANT_ID: &str = "tenant_id";
pub const CREATED_AT: &str = "created_at";
pub const UPDATED_AT: &str = "updated_at";
pub const STATUS: &str = "status";
pub const QUERY: &str = "query";
pub const URL: &str = "url";
/// A computer-use job's goal and fields (`names::goal::Goal` as JSON).
pub const GOAL: &str = "goal";
pub const OPTIONS: &str = "options";
/// The job's steps, as JSON (absent without steps).
pub const STEPS: &str = "steps";
pub const ECS_TASK_ARN: &str = "ecs_task_arn";
pub const ECS_TASK_ID: &str = "ecs_task_id";
pub const ERROR_CODE: &str = "error_code";
pub const ERROR_MESSAGE: &str = "error_message";
/// The step of a scripted job that failed (its index), from the agent's `error.json`.
pub const ERROR_STEP: &str = "error_step";
pub const EXIT_CODE: &str = "exit_code";
pub const ATTEMPTS: &str = "attempts";
pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
pub const REQUEST_HASH: &str = "request_hash";
pub const STARTED_AT: &str = "started_at";
pub const FINISHED_AT: &str = "finished_at";
pub const DEADLINE_AT: &str = "deadline_at";
/// TTL attribute: epoch seconds after which DynamoDB deletes the item.
pub const EXPIRES_AT: &str = "expires_at";
/// Present ([`UNFINISHED_PARTITION`]) while a job is not finished, removed when it finishes
/// (or, for a job with a webhook, moved to [`WEBHOOKS_PARTITION`] until its event is queued):
/// the key of the sparse index the sweep queries for jobs past their deadline.
pub const UNFINISHED: &str = "unfinished";
pub const UNFINISHED_PARTITION: &str = "1";
/// Sparse global secondary index of unfinished jobs by deadline.
pub const UNFINISHED_INDEX: &str = "unfinished-deadline_at-index";
/// Why a queued job waits (`names::job::QueuedReason`).
pub const QUEUED_REASON: &str = "queued_reason";
/// Where the job's completion webhook goes (absent: no webhook).
pub const WEBHOOK_URL: &str = "webhook_url";
/// Where its delivery stands (`names::webhook::DeliveryState`), set when the job finishes.
pub const WEBHOOK_STATE: &str = "webhook_state";
/// The delivery attempts of the current round: a list of maps (at, attempt, status_code, error).
pub const WEBHOOK_ATTEMPTS: &str = "webhook_attempts";
/// Which round of delivery (0 first, each redelivery one more): a message of an older round
/// is dropped.
pub const WEBHOOK_ROUND: &str = "webhook_round";
/// When the current round of delivery began (epoch seconds): a redelivery is refused while
/// the round is younger than `names::webhook::REDELIVERY_COOLDOWN_SECONDS` and still sending.
pub const WEBHOOK_ROUND_AT: &str = "webhook_round_at";
/// On a tenant's counter: the jobs waiting for a running place (a string set of
/// `<created_at>|<task id>`), the oldest woken first when a place frees.
pub const PARKED: &str = "parked";
/// On a tenant's counter: the running places kept by jobs that ended (cancelled, timed out)
/// while their task may still run, a string set of `<ended at, ms>|<task id>`; on such a job,
/// its entry. The place is given back when the task's STOPPED event comes (or the sweep finds
/// the task stopped): until then the agent may still be at work, and the tenant's next job
/// would run beside it, over its `max_running`.
pub const STOPPING: &str = "stopping";
/// The warm slot a job was handed to (absent: a cold task).
pub const WARM_SLOT: &str = "warm_slot";
/// Set (true) by a delivery that starts the job cold, before its RunTask, only while no slot
/// holds the job; a slot is recorded only while it is absent: one of the two, never both.
pub const COLD_START: &str = "cold_start";
/// A warm slot: one item per pre-started task, key `slot#<slot id>`, in the sparse index's
/// [`SLOTS_PARTITION`] by its idle deadline while it lives (no `tenant_id`: never listed).
pub const SLOT_PREFIX: &str = "slot#";
pub fn slot_key(slot_id: &str) -> String {
    format!("{SLOT_PREFIX}{slot_id}")
}
pub const SLOTS_PARTITION: &str = "slots";
/// `names::pool::SlotState`.
pub const SLOT_STATE: &str = "slot_state";
/// The job a claimed slot runs.
pub const CLAIMED_BY: &str = "claimed_by";
/// When it was claimed (epoch seconds).
pub const CLAIMED_AT: &str = "claimed_at";
/// Set before the job's manifest is written at the slot's place (no manifest was ever
/// written for a slot without it).
pub const HANDED_OVER: &str = "handed_over";
/// Whether the slot's agent took its job (`true`) or left it (`false`), decided once when the
/// slot's task ends and kept, so a retry of that end acts as the first try did.
pub const SLOT_TAKEN: &str = "taken";
/// The task definition (ARN with its revision, so its image) a slot's task runs: a slot is
/// given only jobs of a dispatch whose own task definition is the same, so an agent never
/// reads a manifest of a newer (or older) release.
pub const SLOT_TASK_DEFINITION: &str = "task_definition";
/// The URL of a slot's wake queue (`names::queue::wake_name`), recorded before its task is
/// started: the dispatcher sends to it, the slot's end deletes it.
pub const SLOT_WAKE_URL: &str = "wake_url";
/// The sparse index's partition of finished jobs whose event is not yet queued for delivery
/// (the sweep queues those the finishing function could not, once their `deadline_at` passed).
pub const WEBHOOKS_PARTITION: &str = "webhooks";

/// A tenant's counts of queued and running (provisioning, provisioned, running) jobs: one item
/// per tenant in the jobs table, changed in the same transaction as every job status change
/// that moves a job in or out of those states, so the counts are exact. Its key is
/// `tenant#<tenant>` (no job id looks like it); it carries no `tenant_id`, so the tenant index
/// never lists it, and `unfinished` = [`COUNTERS_PARTITION`], so the sweep finds every counter
/// in the sparse index without a scan.
pub fn counter_key(tenant: &str) -> String {
    format!("{COUNTER_PREFIX}{tenant}")
}
pub const COUNTER_PREFIX: &str = "tenant#";
/// An API key's tenant: item `apikey#<API Gateway key id>` with [`KEY_TENANT`], one per key and
/// generation, written by Terraform beside the key (`aws_dynamodb_table_item`), read by the API
/// functions for the `apiKeyId` API Gateway hands them (and kept for minutes). No `tenant_id`, no
/// `unfinished`: never listed, never in an index. The tenants are not in the functions'
/// environment, whose 4 KB would cap them.
pub fn api_key_key(api_key_id: &str) -> String {
    format!("{API_KEY_PREFIX}{api_key_id}")
}
pub const API_KEY_PREFIX: &str = "apikey#";
/// The tenant of an API key item.
pub const KEY_TENANT: &str = "key_tenant";
/// A tenant's own limits (`tenant_limits` of the deployment): item `limits#<tenant>` with
/// [`MAX_RUNNING`] and [`MAX_QUEUED`] when set, written by Terraform, and `unfinished` =
/// [`LIMITS_PARTITION`] (with `deadline_at` 0), so the reconciler lists them all with one query of
/// the sparse index and writes each onto its tenant's counter, where submit and process read it.
pub fn limits_key(tenant: &str) -> String {
    format!("{LIMITS_PREFIX}{tenant}")
}
pub const LIMITS_PREFIX: &str = "limits#";
/// A tenant's usage on one day (UTC, `YYYY-MM-DD`, the day its jobs finished): key
/// `usage#<tenant>#<day>`, added to in the transaction that ends each job (so once per job), read
/// by `GET /usage` one item a day. No `tenant_id`, `created_at` or `unfinished`: in no index,
/// never listed; no TTL: kept.
pub fn usage_key(tenant: &str, day: &str) -> String {
    format!("{USAGE_PREFIX}{tenant}#{day}")
}
pub const USAGE_PREFIX: &str = "usage#";
/// Its numbers: jobs ended, by final status; seconds of running; vCPU- and GB-seconds of their
/// tasks; the estimated Fargate cost in US dollars (at the prices of the day each job ended); the
/// computer-use jobs' model tokens (in, all kinds; out) and estimated model cost.
pub const USAGE_DAY: &str = "day";
pub const USAGE_JOBS: &str = "jobs";
pub const USAGE_RUN_SECONDS: &str = "run_seconds";
pub const USAGE_VCPU_SECONDS: &str = "vcpu_seconds";
pub const USAGE_GB_SECONDS: &str = "gb_seconds";
pub const USAGE_COST_USD: &str = "cost_usd";
pub const USAGE_MODEL_INPUT_TOKENS: &str = "model_input_tokens";
pub const USAGE_MODEL_OUTPUT_TOKENS: &str = "model_output_tokens";
pub const USAGE_MODEL_COST_USD: &str = "model_cost_usd";
pub const LIMITS_PARTITION: &str = "limits";
/// One of a tenant's webhook lanes (`names::webhook::TENANT_LANES`): key
/// `webhook-lane#<tenant>#<n>`, held while [`LANE_UNTIL`] (epoch milliseconds) is ahead, by
/// [`LANE_HOLDER`] (no `tenant_id`, no `unfinished`: never listed, never in the index).
pub fn webhook_lane_key(tenant: &str, lane: u32) -> String {
    format!("{WEBHOOK_LANE_PREFIX}{tenant}#{lane}")
}
pub const WEBHOOK_LANE_PREFIX: &str = "webhook-lane#";
/// The webhook rounds of a tenant waiting for one of its lanes: key `webhook-parked#<tenant>`,
/// its [`PARKED`] set holding one entry per round (`<parked at, ms>|<job>|<round>|<attempt>`,
/// so the oldest sorts first); a freed lane wakes the oldest (no `tenant_id`, no
/// `unfinished`: never listed, never in the index).
pub fn webhook_parked_key(tenant: &str) -> String {
    format!("{WEBHOOK_PARKED_PREFIX}{tenant}")
}
pub const WEBHOOK_PARKED_PREFIX: &str = "webhook-parked#";
pub const LANE_UNTIL: &str = "lane_until";
pub const LANE_HOLDER: &str = "lane_holder";
pub const COUNTERS_PARTITION: &str = "counters";
pub const QUEUED_COUNT: &str = "queued_count";
pub const RUNNING_COUNT: &str = "running_count";
/// The tenant's limits, on its counter (the reconciler writes them from its configuration;
/// absent: the defaults).
pub const MAX_RUNNING: &str = "max_running";
pub const MAX_QUEUED: &str = "max_queued";
/// Epoch milliseconds of the counter's last change (a recount corrects only a quiet counter).
pub const COUNTS_AT: &str = "counts_at";
/// Attribute types of the keys (DynamoDB scalar types).
pub const KEY_TYPE_STRING: &str = "S";
pub const KEY_TYPE_NUMBER: &str = "N";
