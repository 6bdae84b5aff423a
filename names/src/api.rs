//! The HTTP API's bodies as types: what the handlers answer, what clients read, and the OpenAPI
//! document made from them and the routes ([`openapi`], written to `generated/openapi.json`).
//!
//! The submit body is parsed field by field at the edge (so every refusal names its field); its
//! shape here, [`SubmitRequest`], is kept equal to that parser's field lists by a test.

use crate::job::{JobOptions, QueuedReason};
use crate::step::Step;
use crate::webhook::DeliveryState;
use crate::JobStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `POST /jobs`: a `query` or a `url`, or `steps` that begin with a `goto` (or a first page and
/// steps after it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://example.com/", "options": {"full_page": true}}))]
pub struct SubmitRequest {
    /// A search: the agent opens the search engine's results for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 512, nullable = false)]
    pub query: Option<String>,
    /// A page to open (http or https, no credentials in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 2048, format = Uri, nullable = false)]
    pub url: Option<String>,
    /// The API key's tenant; any other is refused (403).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub tenant_id: Option<String>,
    /// A script: at most 50 steps, the first a `goto` unless `query` or `url` opens the page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 50)]
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub options: Option<JobOptions>,
    /// Where the signed completion event goes (https; http in local mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub webhook: Option<WebhookRequest>,
    /// A computer-use job: what to do, in words; a model decides each action. Never with
    /// `query`, `url` or `steps`; the fields below are for it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 4000, nullable = false)]
    pub goal: Option<String>,
    /// The page the browser shows first (else a blank page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = Uri, nullable = false)]
    pub start_url: Option<String>,
    /// The only domains (each with its subdomains) the browser may reach in this job.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 20)]
    pub allowed_domains: Vec<String>,
    /// Tenant secrets the model may type by name; it never sees their values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 20)]
    pub secrets: Vec<String>,
    /// A JSON Schema the answer must satisfy (else the job ends `ANSWER_INVALID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, nullable = false)]
    pub output_schema: Option<serde_json::Value>,
    /// The model, from those the deployment allows (default: the deployment's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub model: Option<crate::goal::ModelChoice>,
    /// Each limit up to the deployment's ceiling (default: the deployment's defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub limits: Option<crate::goal::AskedLimits>,
}


#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    #[schema(format = Uri, max_length = 2048)]
    pub url: String,
}

/// `202` to a submit: the job is queued (or, for a repeated `Idempotency-Key`, the job it made).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"task_id": "6f1c2b9e-4d3a-4e8f-9a51-0c7d2e6b8f40", "status": "QUEUED", "created_at": "2026-12-01T09:30:00.000Z"}))]
pub struct Accepted {
    #[schema(format = Uuid)]
    pub task_id: String,
    pub status: JobStatus,
    pub created_at: String,
}

/// A job: what it asked for, where it is, how it ended, and (from `GET /jobs/{task_id}`) links to
/// what it uploaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "task_id": "6f1c2b9e-4d3a-4e8f-9a51-0c7d2e6b8f40", "status": "COMPLETED", "url": "https://example.com/",
    "options": {"full_page": false, "viewport": {"width": 1280, "height": 800}, "timeout_seconds": 120, "capture_html": false},
    "created_at": "2026-12-01T09:30:00.000Z", "updated_at": "2026-12-01T09:30:41.000Z",
    "started_at": "2026-12-01T09:30:31.000Z", "finished_at": "2026-12-01T09:30:41.000Z", "ecs_task_id": "0b5f6c1d2e3f4a5b6c7d8e9f0a1b2c3d",
    "exit_code": 0, "outputs": {"screenshot": "https://bucket.s3.amazonaws.com/jobs/...", "result": "https://...", "logs": "https://..."}
}))]
pub struct JobView {
    #[schema(format = Uuid)]
    pub task_id: String,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// A computer-use job's goal; its fields as asked (`start_url` to `output_schema`), and the
    /// model and limits it got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub goal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub start_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, nullable = false)]
    pub output_schema: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub model: Option<crate::goal::ModelChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub limits: Option<crate::goal::Limits>,
    pub options: JobOptions,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub finished_at: Option<String>,
    /// The ECS task that runs (or ran) it; its log stream is named after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ecs_task_id: Option<String>,
    /// It runs (or ran) in a warm slot of the pool, not a task started for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub warm_start: Option<bool>,
    /// Why it has not started: while `QUEUED`, `DISPATCH` (waiting for the dispatcher, normally
    /// seconds) or `TENANT_LIMIT`; while `PROVISIONING`, `CAPACITY` when ECS refused its task and
    /// it is tried again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub queued_reason: Option<QueuedReason>,
    /// Why it failed or was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<JobError>,
    /// The agent container's exit code (`names::agent::exit`), once it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub webhook: Option<WebhookView>,
    /// Pre-signed GET links (an hour) to what the job uploaded; only in `GET /jobs/{task_id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub outputs: Option<Outputs>,
    /// Once it has ended: what its task used for it, as `GET /usage` counts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub usage: Option<JobUsage>,
    /// A computer-use job's answer (valid against its `output_schema`), once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, nullable = false)]
    pub answer: Option<serde_json::Value>,
    /// A computer-use job's model: its turns, tokens and estimated cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub model_usage: Option<ModelUsage>,
    /// A computer-use job's estimated cost, item by item (its task's and its model's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub cost: Option<JobCost>,
}

/// A computer-use job's model usage, as its agent counted the model's answers (`result.json`'s
/// `usage`): tokens, and their estimated cost at the deployment's prices for the model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelUsage {
    /// `provider/id`.
    pub model: String,
    pub turns: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    #[schema(value_type = f64)]
    pub estimated_cost_usd: crate::goal::Usd,
}

impl ModelUsage {
    /// Tokens in, of every kind (plain, written to the cache, read from it).
    pub fn all_input_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.cache_creation_input_tokens).saturating_add(self.cache_read_input_tokens)
    }
}

/// A job's estimated cost in US dollars, item by item: its task's (Fargate) and its model's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobCost {
    #[schema(value_type = f64)]
    pub task_usd: crate::goal::Usd,
    #[schema(value_type = f64)]
    pub model_usd: crate::goal::Usd,
    #[schema(value_type = f64)]
    pub total_usd: crate::goal::Usd,
}

/// What a job's task used for it: the time (its billed time as its stop event reports it, image
/// pull to stop; a warm slot's job from when the slot took it; a job ended without its task's
/// word, from RUNNING to its end), that time in vCPU- and GB-seconds, and the estimated Fargate
/// cost at the deployment's `fargate_prices` when it ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobUsage {
    pub run_seconds: f64,
    pub vcpu_seconds: f64,
    pub gb_seconds: f64,
    pub estimated_cost_usd: f64,
}

/// The figures are finite (never NaN): equality is total.
impl Eq for JobUsage {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    /// `names::job::ErrorCode`, e.g. `NAVIGATION_FAILED`.
    pub code: Option<String>,
    pub message: Option<String>,
    /// The failed step's index, when a step failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub step: Option<i64>,
}

/// Links to a job's files, by output name; the steps' named files under `files`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Outputs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub screenshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub logs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
    /// `files/<name>.png` or `.pdf` -> its link.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
}

impl Outputs {
    /// Every link with the file name it saves as (`screenshot.png`, `files/after-login.png`).
    pub fn files(&self) -> Vec<(String, &str)> {
        use crate::Output;
        let fixed = [
            (Output::Screenshot, &self.screenshot),
            (Output::Result, &self.result),
            (Output::Log, &self.logs),
            (Output::Html, &self.html),
            (Output::Error, &self.error),
        ];
        let mut all: Vec<(String, &str)> = fixed.into_iter().filter_map(|(o, l)| Some((o.file_name().to_string(), l.as_deref()?))).collect();
        all.extend(self.files.iter().map(|(name, link)| (name.clone(), link.as_str())));
        all
    }

    /// Sets the link of one of the fixed outputs.
    pub fn set(&mut self, output: crate::Output, link: String) {
        use crate::Output;
        let slot = match output {
            Output::Screenshot => &mut self.screenshot,
            Output::Result => &mut self.result,
            Output::Log => &mut self.logs,
            Output::Html => &mut self.html,
            Output::Error => &mut self.error,
        };
        *slot = Some(link);
    }
}

/// The job's completion webhook and how its delivery went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    pub url: String,
    /// The `webhook-id` of every delivery of this job's event (`msg_<task id>`).
    pub id: String,
    /// Absent until the job finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub state: Option<DeliveryState>,
    /// The current round's attempts, oldest first (present with `state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub attempts: Option<Vec<AttemptView>>,
    /// How many times `POST /jobs/{task_id}/webhook` started a new round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub redeliveries: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    pub at: String,
    pub attempt: u32,
    pub duration_ms: u64,
    /// The receiver's HTTP status, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
}

/// `202` to a redelivery: the job and its webhook's new round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Redelivery {
    #[schema(format = Uuid)]
    pub task_id: String,
    pub status: JobStatus,
    pub webhook: WebhookView,
}

/// The body of a completion webhook (signed by the Standard Webhooks scheme: `webhook-id`,
/// `webhook-timestamp`, `webhook-signature`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookEvent {
    /// `job.completed`, `job.failed` or `job.cancelled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When the job finished.
    pub timestamp: String,
    /// The job as `GET /jobs/{task_id}` shows it, with its output links (without `webhook`).
    pub data: JobView,
}

/// A page of the tenant's jobs, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    pub count: usize,
    pub jobs: Vec<JobView>,
    /// Pass as `next_token` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_token: Option<String>,
}

/// The calling tenant's usage by day (UTC, the day each job ended), and the totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    pub tenant_id: String,
    /// The first and last day asked for, `YYYY-MM-DD`.
    pub from: String,
    pub to: String,
    /// Days with jobs, oldest first (a day without is left out).
    pub days: Vec<UsageDay>,
    pub total: UsageTotals,
}

/// One day's jobs and what their tasks used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageDay {
    pub day: String,
    #[serde(flatten)]
    pub usage: UsageTotals,
}

/// Jobs ended (by final status), the sums of their [`JobUsage`] (`estimated_cost_usd` is their
/// tasks' Fargate cost), and of the computer-use jobs' [`ModelUsage`]: tokens in (of every kind),
/// out, and the model's estimated cost.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageTotals {
    pub jobs: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub run_seconds: f64,
    pub vcpu_seconds: f64,
    pub gb_seconds: f64,
    pub estimated_cost_usd: f64,
    #[serde(default)]
    pub model_input_tokens: u64,
    #[serde(default)]
    pub model_output_tokens: u64,
    #[serde(default)]
    pub model_cost_usd: f64,
}

impl UsageTotals {
    pub fn add(&mut self, o: &UsageTotals) {
        // Saturating: the model's counts are its agent's word, and a day's are sums of them.
        self.jobs = self.jobs.saturating_add(o.jobs);
        self.completed = self.completed.saturating_add(o.completed);
        self.failed = self.failed.saturating_add(o.failed);
        self.cancelled = self.cancelled.saturating_add(o.cancelled);
        self.run_seconds += o.run_seconds;
        self.vcpu_seconds += o.vcpu_seconds;
        self.gb_seconds += o.gb_seconds;
        self.estimated_cost_usd += o.estimated_cost_usd;
        self.model_input_tokens = self.model_input_tokens.saturating_add(o.model_input_tokens);
        self.model_output_tokens = self.model_output_tokens.saturating_add(o.model_output_tokens);
        self.model_cost_usd += o.model_cost_usd;
    }
}

/// A page of the agent's log lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogPage {
    #[schema(format = Uuid)]
    pub task_id: String,
    pub ecs_task_id: Option<String>,
    pub log_group: String,
    /// Absent (null) before the job has a task.
    pub log_stream: Option<String>,
    pub status: JobStatus,
    pub events: Vec<LogEvent>,
    pub count: usize,
    /// Pass as `next_token` for the lines after these; absent at the end of the stream so far
    /// (a running job's stream grows: ask again with the last token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogEvent {
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The same instant, RFC 3339.
    pub time: String,
    /// One JSON log line of the agent.
    pub message: String,
}

/// Every error the API itself answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"error": {"code": "invalid_value", "message": "`options.viewport.width` must be between 320 and 3840", "field": "options.viewport.width"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `invalid_value`, `not_found`, `TENANT_QUEUE_FULL`, ...
    pub code: String,
    pub message: String,
    /// The field or parameter at fault, by path (`steps[2].selector`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
    /// For a 500: quote it when reporting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub request_id: Option<String>,
}

/// What API Gateway answers itself (a missing or unknown API key, its throttle).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GatewayError {
    pub message: String,
}

/// A client's reading of an error answer, whichever of the two shapes it has.
pub fn error_message(body: &serde_json::Value) -> Option<(Option<String>, String)> {
    if let Ok(e) = ErrorBody::deserialize(body) {
        return Some((Some(e.error.code), e.error.message));
    }
    GatewayError::deserialize(body).ok().map(|g| (None, g.message))
}

mod doc {
    use super::*;
    use crate::routes;
    use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
    use utoipa::{Modify, OpenApi};

    /// The path parameter of every job route.
    #[derive(utoipa::IntoParams)]
    #[into_params(parameter_in = Path)]
    #[allow(dead_code)]
    struct JobPath {
        /// The job's id, as the submit answered it.
        #[param(format = Uuid)]
        task_id: String,
    }

    #[derive(utoipa::IntoParams)]
    #[into_params(parameter_in = Header)]
    #[allow(dead_code)]
    struct SubmitHeaders {
        /// Up to 255 printable ASCII characters. A repeat with the same body answers the job the
        /// first made (202); with another body, 409 `idempotency_conflict`.
        #[param(rename = "Idempotency-Key", max_length = 255, min_length = 1, pattern = "^[\\x21-\\x7e]+$")]
        idempotency_key: Option<String>,
    }

    #[derive(utoipa::IntoParams)]
    #[into_params(parameter_in = Query)]
    #[allow(dead_code)]
    struct ListQuery {
        /// Only jobs in this status.
        status: Option<JobStatus>,
        /// Jobs per page, 1 to 100 (20).
        #[param(minimum = 1, maximum = 100)]
        limit: Option<u32>,
        /// The `next_token` of the previous page.
        next_token: Option<String>,
    }

    #[derive(utoipa::IntoParams)]
    #[into_params(parameter_in = Query)]
    #[allow(dead_code)]
    struct LogsQuery {
        /// Lines per page, 1 to 500 (200).
        #[param(minimum = 1, maximum = 500)]
        limit: Option<u32>,
        /// The `next_token` of the previous page.
        next_token: Option<String>,
    }

    #[derive(utoipa::IntoParams)]
    #[into_params(parameter_in = Query)]
    #[allow(dead_code)]
    struct UsageQuery {
        /// The first day, `YYYY-MM-DD` (UTC): 29 days before `to` when absent.
        from: Option<String>,
        /// The last day, `YYYY-MM-DD` (UTC): today when absent. At most 93 days from `from`.
        to: Option<String>,
    }

    /// The calling tenant's jobs, running time and estimated Fargate cost, by day.
    #[utoipa::path(get, path = "/usage", operation_id = "getUsage", tag = "jobs",
        params(UsageQuery),
        responses(
            (status = 200, description = "The tenant's usage by day.", body = Usage),
            (status = 400, description = "`from` or `to` is not a day, `from` is after `to`, or they are more than 93 days apart.", body = ErrorBody),
            (status = 403, description = "No or an unknown API key.", body = Refusal),
            (status = 429, description = "API Gateway's throttle.", body = Refusal),
            (status = 500, description = "An AWS call failed; quote `request_id`.", body = ErrorBody),
        ))]
    #[allow(dead_code)]
    fn usage() {}

    /// Submit a job.
    #[utoipa::path(post, path = "/jobs", operation_id = "submitJob", tag = "jobs",
        params(SubmitHeaders),
        request_body(content = SubmitRequest, content_type = "application/json"),
        responses(
            (status = 202, description = "The job is queued (or, for a repeated Idempotency-Key, the job it made).", body = Accepted),
            (status = 400, description = "The body breaks a rule; `field` names where.", body = ErrorBody),
            (status = 403, description = "No or an unknown API key, or `tenant_id` is not the key's tenant.", body = Refusal),
            (status = 409, description = "The Idempotency-Key was used with another body.", body = ErrorBody),
            (status = 413, description = "The body is larger than 64 KiB.", body = Refusal),
            (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
            (status = 429, description = "`TENANT_QUEUE_FULL`: the tenant has its limit of jobs queued and the job was not created; or API Gateway's throttle.",
                body = Refusal, headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
            (status = 500, description = "An AWS call failed; quote `request_id`.", body = ErrorBody),
        ))]
    #[allow(dead_code)]
    fn submit() {}

    /// List the tenant's jobs, newest first.
    #[utoipa::path(get, path = "/jobs", operation_id = "listJobs", tag = "jobs",
        params(ListQuery),
        responses(
            (status = 200, description = "A page of jobs.", body = JobList),
            (status = 400, description = "A parameter breaks a rule (an unknown one too).", body = ErrorBody),
            (status = 403, description = "No or an unknown API key.", body = Refusal),
            (status = 429, description = "API Gateway's throttle.", body = Refusal),
            (status = 500, description = "An AWS call failed; quote `request_id`.", body = ErrorBody),
        ))]
    #[allow(dead_code)]
    fn list() {}

    /// A job's status, with pre-signed links to its outputs.
    #[utoipa::path(get, path = "/jobs/{task_id}", operation_id = "getJob", tag = "jobs",
        params(JobPath),
        responses(
            (status = 200, description = "The job.", body = JobView),
            (status = 400, description = "`task_id` is not a UUID.", body = ErrorBody),
            (status = 403, description = "No or an unknown API key.", body = Refusal),
            (status = 404, description = "No such job for this tenant.", body = ErrorBody),
            (status = 429, description = "API Gateway's throttle.", body = Refusal),
            (status = 500, description = "An AWS call failed; quote `request_id`.", body = ErrorBody),
        ))]
    #[allow(dead_code)]
    fn status() {}

    /// Cancel a job that has not finished (its task is stopped).
    #[utoipa::path(delete, path = "/jobs/{task_id}", operation_id = "cancelJob", tag = "jobs",
        params(JobPath),
        responses(
            (status = 200, description = "The job, CANCELLED.", body = JobView),
            (status = 400, description = "`task_id` is not a UUID.", body = ErrorBody),
            (status = 403, description = "No or an unknown API key.", body = Refusal),
            (status = 404, description = "No such job for this tenant.", body = ErrorBody),
            (status = 409, description = "`job_finished`: it already ended.", body = ErrorBody),
            (status = 429, description = "API Gateway's throttle.", body = Refusal),
            (status = 500, description = "An AWS call failed; quote `request_id`.", body = ErrorBody),
        ))]
    #[allow(dead_code)]
    fn cancel() {}

    /// The agent's log lines, a page at a time.
    #[utoipa::path(get, path = "/jobs/{task_id}/logs", operation_id = "getJobLogs", tag = "jobs",
        params(JobPath, LogsQuery),
        responses(
            (status = 200, description = "A page of log lines (none before the job has a task).", body = LogPage),
            (status = 400, description = "`task_id` is not a UUID, or a parameter breaks a rule.", body = ErrorBody),
            (status = 403, description = "No or an unknown API key.", body = Refusal),
            (status = 404, description = "No such job for this tenant.", body = ErrorBody),
            (status = 429, description = "API Gateway's throttle.", body = Refusal),
            (status = 500, description = "An AWS call failed; quote `request_id`.", body = ErrorBody),
        ))]
    #[allow(dead_code)]
    fn logs() {}

    /// Send a finished job's webhook event again (a new round of attempts, the same `webhook-id`).
    #[utoipa::path(post, path = "/jobs/{task_id}/webhook", operation_id = "redeliverWebhook", tag = "jobs",
        params(JobPath),
        responses(
            (status = 202, description = "A new round is queued.", body = Redelivery),
            (status = 400, description = "`task_id` is not a UUID.", body = ErrorBody),
            (status = 403, description = "No or an unknown API key.", body = Refusal),
            (status = 404, description = "No such job for this tenant.", body = ErrorBody),
            (status = 409, description = "`no_webhook`, `job_not_finished`, or `webhook_in_flight`: the current round began under a minute ago and is still being sent (`Retry-After` says when to ask again).", body = ErrorBody),
            (status = 429, description = "API Gateway's throttle.", body = Refusal),
            (status = 500, description = "An AWS call failed; quote `request_id`.", body = ErrorBody),
        ))]
    #[allow(dead_code)]
    fn redeliver() {}

    /// A 403, 413 or 429 is the API's own (`tenant_id` of another tenant, a body over 64 KiB,
    /// `TENANT_QUEUE_FULL`) or API Gateway's (no key, an unknown key, a route or method it does
    /// not have, its payload limit, its throttle).
    #[derive(ToSchema)]
    #[allow(dead_code)]
    #[serde(untagged)]
    enum Refusal {
        Api(ErrorBody),
        Gateway(GatewayError),
    }

    struct ApiKeyScheme;

    impl Modify for ApiKeyScheme {
        fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
            let components = openapi.components.get_or_insert_with(Default::default);
            components.add_security_scheme(
                "api_key",
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                    routes::API_KEY_HEADER,
                    "The tenant's API key (`terraform output -json api_keys`, or what `make local` prints).",
                ))),
            );
        }
    }

    #[derive(OpenApi)]
    #[openapi(
        info(
            title = "Browser jobs API",
            description = "Browser-automation jobs, each in its own throw-away Fargate container: submit, poll the status and its pre-signed output links, read the logs, cancel. Deployed as the `v1` stage of an API Gateway REST API (`terraform output api_url`).",
            license(name = "Apache-2.0", identifier = "Apache-2.0"),
        ),
        paths(submit, list, status, cancel, logs, redeliver, usage),
        components(schemas(SubmitRequest, Accepted, JobView, JobList, LogPage, Redelivery, ErrorBody, GatewayError, WebhookEvent, Usage, UsageDay, UsageTotals, JobUsage)),
        modifiers(&ApiKeyScheme),
        security(("api_key" = [])),
        tags((name = "jobs", description = "Browser jobs")),
    )]
    pub struct Doc;
}

/// The deployed API's base URL (`terraform output api_gateway_url`), its parts as variables.
pub const AWS_SERVER: &str = "https://{api_id}.execute-api.{region}.amazonaws.com/v1";
/// `make local`'s API Gateway stand-in.
pub const LOCAL_SERVER: &str = "http://127.0.0.1:8080/v1";

/// The API's OpenAPI 3.1 document (`generated/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::server::{ServerBuilder, ServerVariableBuilder};
    use utoipa::OpenApi;
    let mut doc = doc::Doc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let variable = |default: &str, what: &str| ServerVariableBuilder::new().default_value(default).description(Some(what)).build();
    doc.servers = Some(vec![
        ServerBuilder::new()
            .url(AWS_SERVER)
            .description(Some("The deployed stack (`terraform -chdir=generated output -raw api_gateway_url`)"))
            .parameter("api_id", variable("abcdef1234", "The REST API's id"))
            .parameter("region", variable("us-east-1", "The stack's region"))
            .build(),
        ServerBuilder::new().url(LOCAL_SERVER).description(Some("`make local`")).build(),
    ]);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::to_value(openapi()).unwrap()
    }

    #[test]
    fn usage_sums_saturate_instead_of_overflowing() {
        let huge = ModelUsage { input_tokens: u64::MAX, cache_read_input_tokens: 5, ..ModelUsage::default() };
        assert_eq!(huge.all_input_tokens(), u64::MAX);
        let mut total = UsageTotals { jobs: 2, model_input_tokens: 7, ..UsageTotals::default() };
        total.add(&UsageTotals { jobs: 1, model_input_tokens: u64::MAX, ..UsageTotals::default() });
        assert_eq!((total.jobs, total.model_input_tokens), (3, u64::MAX));
    }

    #[test]
    fn every_route_is_in_the_document_and_nothing_else() {
        let doc = doc();
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| item.as_object().unwrap().keys().filter(|k| *k != "parameters").map(move |m| (m.to_uppercase(), path.clone())))
            .collect();
        documented.sort();
        let mut routes: Vec<(String, String)> = crate::routes::ALL.iter().map(|r| (r.method.to_string(), r.path.to_string())).collect();
        routes.sort();
        assert_eq!(documented, routes);
        assert_eq!(doc["openapi"], "3.1.0");
    }

    #[test]
    fn the_limits_in_the_document_are_the_rules() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        let viewport = &schemas["Viewport"]["properties"];
        assert_eq!(viewport["width"]["minimum"], *crate::job::VIEWPORT_WIDTH.start());
        assert_eq!(viewport["width"]["maximum"], *crate::job::VIEWPORT_WIDTH.end());
        assert_eq!(viewport["height"]["minimum"], *crate::job::VIEWPORT_HEIGHT.start());
        assert_eq!(viewport["height"]["maximum"], *crate::job::VIEWPORT_HEIGHT.end());
        let options = &schemas["JobOptions"]["properties"];
        assert_eq!(options["timeout_seconds"]["minimum"], *crate::job::TIMEOUT_SECONDS.start());
        assert_eq!(options["timeout_seconds"]["maximum"], *crate::job::TIMEOUT_SECONDS.end());
        let submit = &schemas["SubmitRequest"]["properties"];
        assert_eq!(submit["query"]["maxLength"], crate::job::QUERY_MAX_CHARS);
        assert_eq!(submit["url"]["maxLength"], crate::job::URL_MAX_CHARS);
        assert_eq!(submit["steps"]["maxItems"], crate::step::MAX_STEPS);
    }

    #[test]
    fn every_step_action_and_field_is_in_the_document() {
        let doc = doc();
        let variants = doc["components"]["schemas"]["Step"]["oneOf"].as_array().unwrap();
        let mut documented: Vec<(String, Vec<String>)> = variants
            .iter()
            .map(|v| {
                let props = v["properties"].as_object().unwrap();
                let action = props["action"]["enum"][0].as_str().unwrap().to_string();
                let mut fields: Vec<String> = props.keys().filter(|k| *k != "action").cloned().collect();
                fields.sort();
                (action, fields)
            })
            .collect();
        documented.sort();
        let mut actions: Vec<(String, Vec<String>)> = crate::step::ACTIONS
            .iter()
            .map(|(a, fields)| {
                let mut f: Vec<String> = fields.iter().map(|(f, _)| f.to_string()).collect();
                f.sort();
                (a.to_string(), f)
            })
            .collect();
        actions.sort();
        assert_eq!(documented, actions);
    }

    #[test]
    fn statuses_are_the_lifecycle_s() {
        let doc = doc();
        let values: Vec<&str> = doc["components"]["schemas"]["JobStatus"]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(values, JobStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    }

    #[test]
    fn both_error_shapes_read() {
        let api = serde_json::json!({"error": {"code": "not_found", "message": "no such job"}});
        assert_eq!(error_message(&api), Some((Some("not_found".into()), "no such job".into())));
        let gw = serde_json::json!({"message": "Forbidden"});
        assert_eq!(error_message(&gw), Some((None, "Forbidden".into())));
        assert_eq!(error_message(&serde_json::json!([1])), None);
    }
}
