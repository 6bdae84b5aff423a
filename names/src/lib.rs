//! One definition of every name that the generator, the functions and the agent share: tables,
//! attributes, indexes, environment variables, S3 keys, statuses, routes and log names.
//!
//! Renaming anything here is one change the compiler carries to every crate. Patterns that depend on
//! the deployment (project and environment) take a `prefix`: infra-gen passes a Terraform expression
//! (`${local.name_prefix}`), the local stack passes a concrete `infra-demo-dev`.

/// An enum whose variants each have one spelling, declared once: the enum, `ALL`, `as_str`,
/// `parse` and `Display` come from one table (`Variant = "spelling"`).
macro_rules! spelled_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:expr),+ $(,)? }) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$(stringify!($variant)),+].len()] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.into_iter().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// In the OpenAPI document: a string, one of the spellings.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

/// The HTTP API's bodies and its OpenAPI document.
pub mod api;

/// The job as the API accepts it, the table stores it and the agent receives it (`AGENT_JOB`).
pub mod step;

/// Which destinations the browser (and a webhook delivery) may reach.
pub mod egress;

pub mod job {
    use serde::{Deserialize, Serialize};

    spelled_enum! {
        /// Why a queued job has not started (`queued_reason` in its status).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum QueuedReason {
            /// Waiting for the dispatcher to take it (just accepted, or sent back to the queue
            /// when its warm slot ended before taking it); normally a second or two.
            Dispatch = "DISPATCH",
            /// Its tenant has `max_running` jobs started; it starts when one of them ends.
            TenantLimit = "TENANT_LIMIT",
            /// ECS refused to start its task (no Fargate capacity, or RunTask throttled); it is
            /// tried again. Shown while the job is PROVISIONING with no task.
            Capacity = "CAPACITY",
        }
    }

    pub const QUERY_MAX_CHARS: usize = 512;
    pub const URL_MAX_CHARS: usize = 2048;
    /// The largest submit body (a script of 50 steps with long texts fits).
    pub const BODY_MAX_BYTES: usize = 64 * 1024;
    pub const VIEWPORT_WIDTH: std::ops::RangeInclusive<u32> = 320..=3840;
    pub const VIEWPORT_HEIGHT: std::ops::RangeInclusive<u32> = 240..=2160;
    pub const TIMEOUT_SECONDS: std::ops::RangeInclusive<u32> = 10..=600;
    pub const DEFAULT_TIMEOUT_SECONDS: u32 = 120;
    pub const DEFAULT_VIEWPORT: Viewport = Viewport { width: 1280, height: 800 };

    spelled_enum! {
        /// Why a job failed or ended, as the status response's `error.code` says it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum ErrorCode {
            /// The job ran past its timeout plus grace; the sweep stopped it.
            Timeout = "TIMEOUT",
            /// The agent container exited non-zero (the exit code and `error.json` say why).
            AgentFailed = "AGENT_FAILED",
            /// The container was killed for using more than the task's memory.
            OutOfMemory = "OUT_OF_MEMORY",
            /// ECS could not start the task (image pull, network, capacity).
            TaskFailedToStart = "TASK_FAILED_TO_START",
            /// The task was stopped from outside the job.
            TaskStopped = "TASK_STOPPED",
            /// RunTask kept failing until the last attempt.
            RunTaskFailed = "RUN_TASK_FAILED",
            /// The job's spec and upload links do not fit RunTask's overrides.
            OverrideTooLarge = "OVERRIDE_TOO_LARGE",
            /// The job was recorded but could not be queued.
            EnqueueFailed = "ENQUEUE_FAILED",
            /// The client cancelled the job.
            Cancelled = "CANCELLED",
            /// A step names a tenant secret that does not exist (checked before the task starts).
            SecretNotFound = "SECRET_NOT_FOUND",
            // What the agent reports in `error.json` (and the status then carries):
            /// The job the agent was given breaks a rule (the API checks the same rules first).
            InvalidJob = "INVALID_JOB",
            /// Chromium or chromedriver did not start.
            BrowserStartFailed = "BROWSER_START_FAILED",
            /// A navigation failed: a network error, a redirect loop, a refused TLS handshake.
            NavigationFailed = "NAVIGATION_FAILED",
            /// The page's server could not be reached (connection refused, DNS failure).
            PageUnreachable = "PAGE_UNREACHABLE",
            /// The egress guard refused an address (private, loopback, link-local, a port).
            EgressRefused = "EGRESS_REFUSED",
            /// A step's selector matched nothing within the step's time.
            SelectorNotFound = "SELECTOR_NOT_FOUND",
            /// An `assert` step found neither its element nor its text.
            AssertionFailed = "ASSERTION_FAILED",
            /// A step ran past its own cap (or a `wait_for` past its `timeout_ms`).
            StepTimeout = "STEP_TIMEOUT",
            /// A step could not do what it asks (an element that cannot take text, say).
            StepFailed = "STEP_FAILED",
            /// Taking a screenshot, the HTML, a PDF or the page's facts failed.
            CaptureFailed = "CAPTURE_FAILED",
            /// An output could not be uploaded (or was over its size).
            UploadFailed = "UPLOAD_FAILED",
            /// The agent was stopped (StopTask) before the job ended.
            Terminated = "TERMINATED",
            /// A bug in the agent.
            InternalError = "INTERNAL_ERROR",
        }
    }

    /// A job field that breaks a rule: its path (`options.viewport.width`) and what is wrong, in
    /// words for the client.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct SpecError {
        pub field: String,
        pub message: String,
    }

    impl SpecError {
        fn new(field: &str, message: impl Into<String>) -> SpecError {
            SpecError { field: field.to_string(), message: message.into() }
        }
    }

    impl std::fmt::Display for SpecError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.message)
        }
    }

    /// The one set of rules for what a job may ask, applied by the API when a job is submitted and
    /// by the agent when it starts one: a search query (trimmed, 1 to 512 characters, no control
    /// characters), or an http(s) URL with a host and no credentials, and options within bounds.
    pub mod rules {
        use super::*;

        /// The query as it will be searched for.
        pub fn query(q: &str) -> Result<String, SpecError> {
            let q = q.trim();
            if q.is_empty() {
                return Err(SpecError::new("query", "`query` must not be empty"));
            }
            if q.chars().count() > QUERY_MAX_CHARS {
                return Err(SpecError::new("query", format!("`query` must be at most {QUERY_MAX_CHARS} characters")));
            }
            if q.chars().any(char::is_control) {
                return Err(SpecError::new("query", "`query` must not contain control characters"));
            }
            Ok(q.to_owned())
        }

        /// The URL, parsed (WHATWG URL rules, as the browser reads it).
        pub fn url(u: &str) -> Result<url::Url, SpecError> {
            url_field("url", u)
        }

        /// A URL at `field`.
        pub fn url_field(field: &str, u: &str) -> Result<url::Url, SpecError> {
            let bad = |m: String| SpecError::new(field, m);
            if u.len() > URL_MAX_CHARS {
                return Err(bad(format!("`{field}` must be at most {URL_MAX_CHARS} characters")));
            }
            if u.trim() != u || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(bad(format!("`{field}` must not contain spaces or control characters")));
            }
            let url = url::Url::parse(u).map_err(|e| bad(format!("`{field}` is not a valid URL ({e})")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(bad(format!("`{field}` must be an http or https URL")));
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(bad(format!("`{field}` must name a host")));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(bad(format!("`{field}` must not carry credentials")));
            }
            Ok(url)
        }

        /// `value` of `field` within `range`.
        pub fn bounded(field: &str, value: i64, range: &std::ops::RangeInclusive<u32>) -> Result<u32, SpecError> {
            if value < i64::from(*range.start()) || value > i64::from(*range.end()) {
                return Err(SpecError::new(field, format!("`{field}` must be between {} and {}", range.start(), range.end())));
            }
            Ok(value as u32)
        }

        /// Every option within its bounds.
        pub fn options(o: &JobOptions) -> Result<(), SpecError> {
            bounded("options.viewport.width", o.viewport.width.into(), &VIEWPORT_WIDTH)?;
            bounded("options.viewport.height", o.viewport.height.into(), &VIEWPORT_HEIGHT)?;
            bounded("options.timeout_seconds", o.timeout_seconds.into(), &TIMEOUT_SECONDS)?;
            Ok(())
        }
    }

    /// What a valid spec asks the browser to open first.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum ValidTarget {
        Query(String),
        Url(url::Url),
        /// No first navigation: the steps begin with a `goto`.
        Steps,
    }

    pub use crate::step::{Step, MAX_STEPS};

    /// `query`/`url` and `steps` together: one navigation first (or a script that begins with
    /// one), then the steps, each by its rules.
    pub fn target(query: Option<&str>, url: Option<&str>, steps: &[Step]) -> Result<ValidTarget, SpecError> {
        crate::step::check_all(steps)?;
        match (query, url) {
            (Some(q), None) => rules::query(q).map(ValidTarget::Query),
            (None, Some(u)) => rules::url(u).map(ValidTarget::Url),
            (Some(_), Some(_)) => Err(SpecError::new("url", "give either `query` or `url`, not both")),
            (None, None) => match steps.first() {
                Some(Step::Goto { .. }) => Ok(ValidTarget::Steps),
                Some(_) => Err(SpecError::new("steps[0]", "without `query` or `url`, the first step must be a `goto`")),
                None => Err(SpecError::new("query", "`query`, `url` or `steps` is required")),
            },
        }
    }

    impl JobSpec {
        /// The spec by [`rules`]: its first target, or the first field that breaks one.
        pub fn validate(&self) -> Result<ValidTarget, SpecError> {
            if self.task_id.trim().is_empty() {
                return Err(SpecError::new("task_id", "`task_id` must not be empty"));
            }
            rules::options(&self.options)?;
            target(self.query.as_deref(), self.url.as_deref(), &self.steps)
        }

        /// The secrets the job's steps name, each once.
        pub fn secrets(&self) -> Vec<&str> {
            let mut names: Vec<&str> = self.steps.iter().filter_map(Step::secret).collect();
            names.sort();
            names.dedup();
            names
        }
    }

    /// What the agent is asked to do: a `query` or a `url`, or `steps` that begin with a `goto`,
    /// or both (the steps after the first navigation). The API validates that before a spec
    /// exists, and the agent again before it starts ([`JobSpec::validate`]).
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct JobSpec {
        pub task_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub query: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub url: Option<String>,
        #[serde(default)]
        pub options: JobOptions,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub steps: Vec<Step>,
    }

    /// How the job runs and what it captures; every field has its default.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields, default)]
    pub struct JobOptions {
        /// The whole page, not only the viewport (up to 16,384 px tall).
        pub full_page: bool,
        pub viewport: Viewport,
        /// The job's deadline, from the agent's start to its last upload (default 120).
        #[schema(minimum = 10, maximum = 600)]
        pub timeout_seconds: u32,
        /// Also upload the page's HTML (`page.html`).
        pub capture_html: bool,
    }

    impl Default for JobOptions {
        fn default() -> Self {
            JobOptions {
                full_page: false,
                viewport: DEFAULT_VIEWPORT,
                timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
                capture_html: false,
            }
        }
    }

    /// The browser's viewport in CSS pixels (default 1280 x 800).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Viewport {
        #[schema(minimum = 320, maximum = 3840)]
        pub width: u32,
        #[schema(minimum = 240, maximum = 2160)]
        pub height: u32,
    }

    /// The fixed outputs a job can produce (its steps' files come on top), so only these get
    /// upload forms.
    pub fn possible_outputs(options: &JobOptions) -> Vec<super::Output> {
        use super::Output::*;
        let mut outputs = vec![Screenshot, Result, Log, Error];
        if options.capture_html {
            outputs.push(Html);
        }
        outputs
    }
}

/// The job's manifest: what the process function hands the agent, as one S3 object the agent
/// reads through a pre-signed GET (the RunTask override carries only that link). Independent of
/// RunTask: a task started ahead of time takes its job the same way.
pub mod manifest {
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    /// The manifest's format; an agent refuses one it does not know.
    pub const VERSION: u32 = 1;

    /// Every file a job may write, each of which gets an upload form: the outputs its options
    /// ask for and one per file a step writes. Its name below the job's prefix, content type
    /// and largest size.
    pub fn files(spec: &super::job::JobSpec) -> Vec<super::step::StepFile> {
        let mut files: Vec<super::step::StepFile> = super::job::possible_outputs(&spec.options)
            .into_iter()
            .map(|o| super::step::StepFile { path: o.file_name().to_owned(), content_type: o.content_type(), max_bytes: o.max_bytes() })
            .collect();
        files.extend(spec.steps.iter().filter_map(super::job::Step::file));
        files
    }

    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Manifest {
        pub version: u32,
        pub job: super::job::JobSpec,
        /// One upload form per file the job can produce, by its name below the job's prefix
        /// (`screenshot.png`, `files/invoice.pdf`).
        pub uploads: BTreeMap<String, Upload>,
        /// The tenant secrets the job names: an object of their own, read once and deleted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub secrets: Option<SecretLinks>,
    }

    /// A pre-signed S3 POST form: the policy binds the key, the content type and the size.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Upload {
        /// Where the form goes: the bucket's endpoint.
        pub url: String,
        /// The form's fields, sent before the file.
        pub fields: BTreeMap<String, String>,
        /// The largest file the policy allows (`content-length-range`).
        pub max_bytes: u64,
    }

    /// Pre-signed links to the job's secrets object: read it, then delete it.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SecretLinks {
        pub get: String,
        pub delete: String,
    }
}

/// Default Terraform variable values that other crates (the local stack) must agree with.
pub mod defaults {
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
    pub const PROCESS_MAX_CONCURRENCY: u32 = 5;
    /// Grace after a job's own timeout before the sweep stops it.
    pub const TIMEOUT_GRACE_SECONDS: u32 = 120;

    /// The name prefix every physical resource name starts with, for concrete values.
    pub fn name_prefix(project: &str, environment: &str) -> String {
        format!("{project}-{environment}")
    }
}

/// The jobs table: its name pattern, key, index and attribute names.
/// Terraform variables that code outside infra-gen sets (the local stack evaluates generated/
/// with its own values for them).
pub mod vars {
    pub const AGENT_SEARCH_URL_TEMPLATE: &str = "agent_search_url_template";
}

pub mod table {
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
}

/// Queues: the job queue and its dead-letter queue.
pub mod queue {
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
}

/// The warm pool: tasks started ahead of their jobs (`warm_pool_size`), each taking exactly one
/// job through a manifest written at its slot's place, then exiting.
pub mod pool {
    /// A slot's task is started by `pool` and the slot's 32 hex digits: 36 characters, ECS's
    /// limit for `startedBy`, and never a job's id (a hyphenated UUID).
    pub const STARTED_BY_PREFIX: &str = "pool";

    pub fn started_by(slot_id: &str) -> String {
        format!("{STARTED_BY_PREFIX}{slot_id}")
    }

    /// The slot of a task's `startedBy`, when it is a slot's.
    pub fn slot_of(started_by: &str) -> Option<&str> {
        started_by.strip_prefix(STARTED_BY_PREFIX).filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// Seconds a slot waits for a job before it exits and is replaced.
    pub const IDLE_SECONDS: i64 = 900;
    /// Seconds its links last (they are signed with the dispatcher's role credentials: a slot
    /// leaves before they can stop working).
    pub const LINK_SECONDS: u64 = 1200;
    /// A slot this close to its deadline is not given a job.
    pub const CLAIM_MARGIN_SECONDS: i64 = 60;
    /// The default of the functions' recovery grace (`Config::recovery_grace_seconds`): a step
    /// that takes seconds, retries included, and has not happened this long after it began was
    /// left by a function that died. A slot with no task this long after its item was made was
    /// never started (its refill died between the item and RunTask's answer): its seat is free
    /// again. A slot claimed this long ago and never handed over, by a job that does not name it,
    /// was left by a dispatch that died between the two. A finished job's webhook event not
    /// queued this long after it finished is queued by the sweep.
    pub const RECOVERY_GRACE_SECONDS: i64 = 60;

    /// A place in the pool: item `seat#<n>` (n below `warm_pool_size`) of the jobs table, naming
    /// in [`SEAT_SLOT`] the slot that holds it. A refill starts a slot only for a seat it took by a
    /// conditional write, so refills at once never start more slots than the pool has places.
    pub fn seat_key(n: u32) -> String {
        format!("seat#{n}")
    }
    /// The attribute of a seat item naming its slot.
    pub const SEAT_SLOT: &str = "slot_id";

    spelled_enum! {
        /// Where a warm slot stands.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum SlotState {
            /// Started (or starting), waiting for a job.
            Idle = "IDLE",
            /// Given a job (`claimed_by`).
            Claimed = "CLAIMED",
            /// Its task ended; the item stays until its TTL.
            Gone = "GONE",
        }
    }
}

/// Signed completion webhooks, per the Standard Webhooks specification
/// (<https://www.standardwebhooks.com/>): the headers, the secrets' form, the events and the
/// retry schedule.
pub mod webhook {
    pub const ID_HEADER: &str = "webhook-id";
    pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
    pub const SIGNATURE_HEADER: &str = "webhook-signature";
    /// A signing secret is `whsec_` and the base64 of its key bytes.
    pub const SECRET_PREFIX: &str = "whsec_";
    /// Key bytes of a secret the script makes (Standard Webhooks asks for 24 to 64).
    pub const SECRET_BYTES: usize = 32;
    /// Seconds an attempt may take, connection included; longer is a failed attempt.
    pub const TIMEOUT_SECONDS: u64 = 10;
    /// Seconds an attempt may take to connect (of its `TIMEOUT_SECONDS`): a receiver that drops
    /// packets costs this, not the whole timeout, of the delivery capacity all tenants share.
    pub const CONNECT_TIMEOUT_SECONDS: u64 = 3;
    /// A redelivery (`POST /jobs/{id}/webhook`) is refused (409 `webhook_in_flight`, with
    /// `Retry-After`) while the current round began less than this ago and is still being sent:
    /// a tenant redelivering at its rate limit would otherwise fill the delivery capacity every
    /// tenant shares.
    pub const REDELIVERY_COOLDOWN_SECONDS: i64 = 60;
    /// Attempts of one tenant in flight at once, system-wide: each holds one of its tenant's
    /// lanes (a leased item in the table). A tenant whose receiver hangs uses its own lanes, not
    /// the delivery capacity every tenant shares (the mapping's `maximum_concurrency` invocations).
    pub const TENANT_LANES: u32 = 2;
    /// An event whose tenant holds every lane is parked (`names::table::webhook_parked_key`): the
    /// attempt that frees a lane wakes the tenant's oldest parked event at once. Its own message
    /// comes back too, in case a wake is lost (a function dying between the two writes): first
    /// after this many seconds, each further wait twice the last, up to [`MAX_LANE_WAIT_SECONDS`]
    /// or a quarter of the stall time, whichever is less (plus up to as much again, at random, so
    /// waiting messages do not come back together). Neither is an attempt.
    pub const LANE_WAIT_SECONDS: u32 = 2;
    pub const MAX_LANE_WAIT_SECONDS: u32 = 300;
    /// Parked entries a wake looks at, oldest first, to find one whose event still waits (an
    /// entry of a round that was redelivered or sent by its own message meanwhile is dropped).
    pub const WAKE_SCAN: usize = 20;
    /// A lane is leased for the attempt's timeout and this much more: a function that died
    /// holding it gives it back then.
    pub const LANE_LEASE_MARGIN_SECONDS: u64 = 5;
    /// Seconds before each retry after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h.
    pub const DEFAULT_RETRY_SECONDS: [u32; 6] = [5, 300, 1800, 7200, 18000, 36000];
    /// The longest wait a retry may ask for (10 h is chained from SQS delays of 15 min).
    pub const MAX_RETRY_SECONDS: u32 = 86_400;
    /// SQS's longest message delay: a longer wait is chained from several.
    pub const MAX_DELAY_SECONDS: u32 = 900;
    /// Seconds a round being sent may go without progress (an attempt made, or its first message
    /// sent) past when its next attempt was due, before the sweep calls it FAILED: its message
    /// is gone, moved by SQS to the webhooks DLQ after the function failed (or died) on every
    /// receive. A parked event's own message puts the deadline off each time it comes back, so an
    /// event that waits long for its tenant's lanes is not called stalled.
    pub const STALL_SECONDS: i64 = 3600;
    /// The error of the attempt a stalled round ends with.
    pub const STALLED: &str = "no attempt came when one was due: the event's message was dead-lettered after the webhook function failed on every receive (an alarm says so); POST /jobs/{id}/webhook delivers it again";
    /// Attempts of a round `GET /jobs/{id}` shows (the schedule makes at most 7).
    pub const MAX_ATTEMPTS_SHOWN: usize = 20;

    /// The event a finished job sends (`type` of the body).
    pub fn event_type(status: super::JobStatus) -> Option<&'static str> {
        match status {
            super::JobStatus::Completed => Some("job.completed"),
            super::JobStatus::Failed => Some("job.failed"),
            super::JobStatus::Cancelled => Some("job.cancelled"),
            _ => None,
        }
    }

    /// `webhook-id`: a job finishes once, so its one event's id comes from the job's id and is
    /// the same on every retry and redelivery (receivers deduplicate by it).
    pub fn event_id(task_id: &str) -> String {
        format!("msg_{}", task_id.replace('-', ""))
    }

    spelled_enum! {
        /// Where a job's webhook delivery stands.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum DeliveryState {
            /// The job finished; its event is not yet queued.
            Pending = "PENDING",
            /// Queued: being sent, or waiting for a retry.
            Sending = "SENDING",
            /// A 2xx answer.
            Delivered = "DELIVERED",
            /// Every attempt failed; the event is in the webhooks dead-letter queue.
            Failed = "FAILED",
        }
    }
}

/// The outputs bucket and the key layout of a job's outputs.
pub mod bucket {
    /// Bucket names are global, so the account id is part of the pattern.
    pub fn name(prefix: &str, account_id: &str) -> String {
        format!("{prefix}-outputs-{account_id}")
    }
    /// Every object of a job lives under this prefix.
    pub const JOBS_PREFIX: &str = "jobs/";
    /// The jobs' secrets, each object read once by its agent and deleted (and expired after a
    /// day by a lifecycle rule, should an agent never come).
    pub const SECRETS_PREFIX: &str = "secrets/";
    /// Objects expire a day after they were written.
    pub const SECRETS_EXPIRY_DAYS: u32 = 1;

    pub fn secrets_key(task_id: &str) -> String {
        format!("{SECRETS_PREFIX}{task_id}.json")
    }

    /// Every job's error report, as an IAM resource pattern below the bucket.
    pub fn error_reports_pattern() -> String {
        format!("{JOBS_PREFIX}*/{}", super::Output::Error.file_name())
    }

    pub fn job_prefix(task_id: &str) -> String {
        format!("{JOBS_PREFIX}{task_id}/")
    }

    pub fn output_key(task_id: &str, output: super::Output) -> String {
        format!("{JOBS_PREFIX}{task_id}/{}", output.file_name())
    }

    /// A file of the job by its name below the job's prefix (`files/invoice.pdf`).
    pub fn file_key(task_id: &str, name: &str) -> String {
        format!("{JOBS_PREFIX}{task_id}/{name}")
    }

    /// The job's manifest (read by the agent through a pre-signed GET).
    pub const MANIFEST_FILE: &str = "manifest.json";
    /// Every job's manifest, as an IAM resource pattern below the bucket.
    pub fn manifests_pattern() -> String {
        format!("{JOBS_PREFIX}*/{MANIFEST_FILE}")
    }
    pub fn manifest_key(task_id: &str) -> String {
        format!("{JOBS_PREFIX}{task_id}/{MANIFEST_FILE}")
    }

    /// Where the warm slots' jobs are handed over: one manifest per slot (expired after a day
    /// by a lifecycle rule, should a slot never take it).
    pub const SLOTS_PREFIX: &str = "slots/";
    pub fn slot_manifest_key(slot_id: &str) -> String {
        format!("{SLOTS_PREFIX}{slot_id}/{MANIFEST_FILE}")
    }
}

spelled_enum! {
    /// One file a job can produce, by the name API responses and the agent's upload map use.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Output {
        Screenshot = "screenshot",
        Result = "result",
        Log = "logs",
        Html = "html",
        Error = "error",
    }
}

impl Output {
    pub fn file_name(self) -> &'static str {
        match self {
            Output::Screenshot => "screenshot.png",
            Output::Result => "result.json",
            Output::Log => "agent.log",
            Output::Html => "page.html",
            Output::Error => "error.json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Output::Screenshot => "image/png",
            Output::Result | Output::Error => "application/json",
            Output::Log => "text/plain; charset=utf-8",
            Output::Html => "text/html; charset=utf-8",
        }
    }

    /// The largest file of this kind an upload form accepts: S3 refuses a larger one, and the
    /// agent does not try. (A full-page PNG of 16,384 px at 3,840 px wide fits; a log or result
    /// this large is a bug.)
    pub fn max_bytes(self) -> u64 {
        const MIB: u64 = 1024 * 1024;
        match self {
            Output::Screenshot => 40 * MIB,
            Output::Result => 4 * MIB,
            Output::Log => 8 * MIB,
            Output::Html => 16 * MIB,
            Output::Error => 256 * 1024,
        }
    }
}

spelled_enum! {
    /// Job status values; the lifecycle between them is below.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum JobStatus {
        Queued = "QUEUED",
        Provisioning = "PROVISIONING",
        Provisioned = "PROVISIONED",
        Running = "RUNNING",
        Completed = "COMPLETED",
        Failed = "FAILED",
        Cancelled = "CANCELLED",
    }
}

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled)
    }

    /// The states a job may be in for a write to move it to `self`. Terminal states have no
    /// successors, so nothing ever leaves them.
    pub fn allowed_predecessors(self) -> &'static [JobStatus] {
        use JobStatus::*;
        match self {
            // Back to the queue: a warm slot's job whose slot ended before taking it.
            Queued => &[Provisioning, Running],
            Provisioning => &[Queued],
            Provisioned => &[Provisioning],
            // ECS events arrive out of order: RUNNING may be seen before the process function
            // recorded PROVISIONED.
            Running => &[Provisioning, Provisioned],
            Completed => &[Provisioning, Provisioned, Running],
            Failed => &[Queued, Provisioning, Provisioned, Running],
            Cancelled => &[Queued, Provisioning, Provisioned, Running],
        }
    }

    pub fn can_move_to(self, next: JobStatus) -> bool {
        next.allowed_predecessors().contains(&self)
    }
}

/// API routes: the REST API's resource paths and path parameter.
pub mod routes {
    /// The API Gateway stage the routes are deployed to.
    pub const STAGE: &str = "v1";
    pub const JOBS: &str = "/jobs";
    pub const JOB: &str = "/jobs/{task_id}";
    pub const JOB_LOGS: &str = "/jobs/{task_id}/logs";
    /// POST: sends a finished job's webhook event again.
    pub const JOB_WEBHOOK: &str = "/jobs/{task_id}/webhook";
    pub const TASK_ID_PARAM: &str = "task_id";
    pub const API_KEY_HEADER: &str = "x-api-key";
    pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

    /// One route of the API and the function that serves it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Route {
        pub method: &'static str,
        pub path: &'static str,
        pub function: super::Function,
    }

    pub const ALL: [Route; 6] = [
        Route { method: "POST", path: JOBS, function: super::Function::Submit },
        Route { method: "GET", path: JOBS, function: super::Function::List },
        Route { method: "GET", path: JOB, function: super::Function::Status },
        Route { method: "DELETE", path: JOB, function: super::Function::Cancel },
        Route { method: "GET", path: JOB_LOGS, function: super::Function::Logs },
        // The submit function queues work; a redelivery is a new delivery of the job's event.
        Route { method: "POST", path: JOB_WEBHOOK, function: super::Function::Submit },
    ];
}

spelled_enum! {
    /// The Lambda functions of the stack.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Function {
        Submit = "submit",
        Status = "status",
        Logs = "logs",
        List = "list",
        Cancel = "cancel",
        Process = "process",
        Reconcile = "reconcile",
        /// Delivers the finished jobs' signed webhooks (fed by the webhooks queue).
        Webhook = "webhook",
    }
}

impl Function {
    /// Physical function name.
    pub fn name(self, prefix: &str) -> String {
        format!("{prefix}-{}", self.as_str())
    }

    /// Name of the function's execution role.
    pub fn role_name(self, prefix: &str) -> String {
        format!("{}-function", self.name(prefix))
    }

    /// Where `make build` puts the function's deployment package, relative to the workspace root.
    pub fn zip_path(self) -> String {
        format!("target/lambda/{}/bootstrap.zip", self.as_str())
    }
}

/// Environment variables: what infra-gen sets on each function and on the agent container.
pub mod env {
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
    pub const SUBNET_IDS: &str = "AGENT_SUBNET_IDS";
    pub const SECURITY_GROUP_IDS: &str = "AGENT_SECURITY_GROUP_IDS";
    pub const CONTAINER_NAME: &str = "AGENT_CONTAINER_NAME";
    pub const LOG_GROUP: &str = "AGENT_LOG_GROUP";
    /// API Gateway key ids to tenant ids: `id=tenant,id=tenant` (a JSON object is read too).
    pub const TENANT_KEYS: &str = "TENANT_API_KEYS";
    pub const MAX_ATTEMPTS: &str = "MAX_ATTEMPTS";
    pub const TIMEOUT_GRACE_SECONDS: &str = "TIMEOUT_GRACE_SECONDS";
    pub const JOB_TTL_DAYS: &str = "JOB_TTL_DAYS";
    /// The tenants' limits: `{"max_running": 5, "max_queued": 1000, "tenants": {"acme": {"max_running": 20}}}`
    /// (the reconciler, which writes each tenant's onto its counter).
    pub const TENANT_LIMITS: &str = "TENANT_LIMITS";
    /// The default limits alone, `{"max_running": 5, "max_queued": 1000}`, for a tenant whose
    /// counter carries none yet (submit and process: their environment has no room for a map).
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
    }
}

/// What each function needs from its deployment: the environment variables it reads and the AWS
/// calls it makes. infra-gen sets exactly these variables and grants exactly these calls; the
/// functions read their configuration from the same table.
pub mod contract {
    use super::{env, Function};

    spelled_enum! {
        /// A variable of a function's environment, set by infra-gen from the contract; spelled as
        /// its name in the environment.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum EnvVar {
            TableName = env::TABLE_NAME,
            QueueUrl = env::QUEUE_URL,
            TenantKeys = env::TENANT_KEYS,
            JobTtlDays = env::JOB_TTL_DAYS,
            BucketName = env::BUCKET_NAME,
            LogGroup = env::LOG_GROUP,
            ClusterArn = env::CLUSTER_ARN,
            TaskDefinition = env::TASK_DEFINITION,
            LinkSignerRoleArn = env::LINK_SIGNER_ROLE_ARN,
            SubnetIds = env::SUBNET_IDS,
            SecurityGroupIds = env::SECURITY_GROUP_IDS,
            ContainerName = env::CONTAINER_NAME,
            MaxAttempts = env::MAX_ATTEMPTS,
            TimeoutGraceSeconds = env::TIMEOUT_GRACE_SECONDS,
            TenantSecretsPath = env::TENANT_SECRETS_PATH,
            TenantLimits = env::TENANT_LIMITS,
            TenantLimitDefaults = env::TENANT_LIMIT_DEFAULTS,
            WebhookQueueUrl = env::WEBHOOK_QUEUE_URL,
            WebhookDlqUrl = env::WEBHOOK_DLQ_URL,
            WebhookSecretsPath = env::WEBHOOK_SECRETS_PATH,
            WebhookRetrySeconds = env::WEBHOOK_RETRY_SECONDS,
            WarmPoolSize = env::WARM_POOL_SIZE,
        }
    }

    impl EnvVar {
        /// The variable's name in the environment.
        pub fn name(self) -> &'static str {
            self.as_str()
        }
    }

    /// `(variable, required)`: the environment each function reads. Optional ones fall back to
    /// `names::defaults`.
    pub fn env_vars(f: Function) -> &'static [(EnvVar, bool)] {
        use EnvVar::*;
        use Function::*;
        match f {
            Submit => &[(TableName, true), (QueueUrl, true), (TenantKeys, true), (JobTtlDays, false), (TenantLimitDefaults, false), (WebhookQueueUrl, true)],
            Status => &[(TableName, true), (BucketName, true), (TenantKeys, true)],
            Logs => &[(TableName, true), (LogGroup, true), (TenantKeys, true)],
            List => &[(TableName, true), (TenantKeys, true)],
            Cancel => &[(TableName, true), (ClusterArn, true), (TenantKeys, true), (WebhookQueueUrl, true), (QueueUrl, true)],
            Process => &[
                (TableName, true),
                (BucketName, true),
                (ClusterArn, true),
                (TaskDefinition, true),
                (LinkSignerRoleArn, true),
                (SubnetIds, true),
                (SecurityGroupIds, true),
                (ContainerName, false),
                (MaxAttempts, false),
                (TimeoutGraceSeconds, false),
                (TenantSecretsPath, true),
                (QueueUrl, true),
                (TenantLimitDefaults, false),
                (WebhookQueueUrl, true),
                (WarmPoolSize, false),
            ],
            Reconcile => &[
                (TableName, true),
                (BucketName, true),
                (ClusterArn, true),
                (ContainerName, false),
                (TimeoutGraceSeconds, false),
                (TenantLimits, false),
                (WebhookQueueUrl, true),
                (WarmPoolSize, false),
                (QueueUrl, true),
            ],
            Webhook => &[
                (TableName, true),
                (BucketName, true),
                (WebhookQueueUrl, true),
                (WebhookDlqUrl, true),
                (WebhookSecretsPath, true),
                (WebhookRetrySeconds, false),
            ],
        }
    }

    spelled_enum! {
        /// An AWS API call, spelled as the IAM action that authorizes it (`dynamodb:GetItem`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Action {
            DynamodbGetItem = "dynamodb:GetItem",
            DynamodbPutItem = "dynamodb:PutItem",
            DynamodbUpdateItem = "dynamodb:UpdateItem",
            DynamodbQuery = "dynamodb:Query",
            SqsSendMessage = "sqs:SendMessage",
            SqsReceiveMessage = "sqs:ReceiveMessage",
            SqsDeleteMessage = "sqs:DeleteMessage",
            SqsGetQueueAttributes = "sqs:GetQueueAttributes",
            S3ListBucket = "s3:ListBucket",
            S3GetObject = "s3:GetObject",
            S3PutObject = "s3:PutObject",
            S3DeleteObject = "s3:DeleteObject",
            /// A DELETE with a version id: the version is gone for good (the bucket is versioned,
            /// so a plain DELETE only hides an object behind a delete marker).
            S3DeleteObjectVersion = "s3:DeleteObjectVersion",
            S3ListBucketVersions = "s3:ListBucketVersions",
            SsmGetParameters = "ssm:GetParameters",
            EcsRunTask = "ecs:RunTask",
            EcsStopTask = "ecs:StopTask",
            EcsDescribeTasks = "ecs:DescribeTasks",
            EcsTagResource = "ecs:TagResource",
            IamPassRole = "iam:PassRole",
            LogsGetLogEvents = "logs:GetLogEvents",
            StsAssumeRole = "sts:AssumeRole",
        }
    }

    /// The resource an AWS call acts on.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Target {
        Table,
        TenantIndex,
        /// The sparse index of unfinished jobs by deadline.
        UnfinishedIndex,
        JobsQueue,
        /// The bucket itself (listing).
        Bucket,
        /// Objects under the jobs prefix (pre-signed URLs act with the signer's permissions).
        JobObjects,
        /// The jobs' manifests (`jobs/*/manifest.json`), read by the agents through links.
        Manifests,
        /// What the agents report when a job fails (`jobs/*/error.json`).
        ErrorReports,
        /// The tenants' secrets in SSM (`/<project>/<environment>/tenants/*`).
        TenantSecrets,
        /// A job's secrets handed to its agent (`secrets/*`): written, read once through a link,
        /// deleted (that version, for good) through another.
        SecretObjects,
        /// The bucket, listed below `jobs/` and `slots/` to learn whether a job's error report or
        /// a slot's manifest exists: S3 answers a GET of a missing key 403, not 404, to a
        /// principal that may not list the bucket.
        ReportAndSlotListing,
        /// The versions of the jobs' secrets, listed by prefix (the bucket, only under
        /// `secrets/`): what a crashed agent or an earlier attempt left is found and deleted.
        SecretVersions,
        /// The versions of the slots' manifests, listed by prefix (the bucket, only under
        /// `slots/`): the delete marker of a slot's manifest is its agent's release of the job.
        SlotVersions,
        TaskDefinition,
        ClusterTasks,
        /// The agent task's execution role (passed to ECS by RunTask).
        ExecutionRole,
        AgentLogStreams,
        /// The queue of webhook deliveries.
        WebhookQueue,
        /// Its dead-letter queue: events whose every attempt failed.
        WebhookDlq,
        /// The tenants' webhook signing secrets in SSM (`/<project>/<environment>/webhooks/*`).
        WebhookSecrets,
        /// The warm slots' manifests (`slots/*`): written by the dispatcher, read and deleted by
        /// the slot's agent through links, checked and removed by the reconciler.
        SlotObjects,
        /// The function's own role, assumed again for a session whose expiry is known: the links
        /// handed to agents are signed with it, so they never outlive their credentials
        /// unnoticed (Lambda's environment credentials carry no expiry).
        OwnRole,
    }

    /// `(IAM action, target)`: every AWS call a function makes, including those its event source
    /// makes with its role (SQS polling).
    pub fn calls(f: Function) -> &'static [(Action, Target)] {
        use Action::*;
        use Function::*;
        use Target::*;
        match f {
            Submit => &[
                (DynamodbGetItem, Table),
                (DynamodbPutItem, Table),
                (DynamodbUpdateItem, Table),
                (SqsSendMessage, JobsQueue),
                (SqsSendMessage, WebhookQueue),
            ],
            Status => &[(DynamodbGetItem, Table), (S3ListBucket, Bucket), (S3GetObject, JobObjects)],
            Logs => &[(DynamodbGetItem, Table), (LogsGetLogEvents, AgentLogStreams)],
            List => &[(DynamodbQuery, TenantIndex)],
            Cancel => &[(DynamodbGetItem, Table), (DynamodbUpdateItem, Table), (EcsStopTask, ClusterTasks), (SqsSendMessage, WebhookQueue), (SqsSendMessage, JobsQueue)],
            Process => &[
                (DynamodbGetItem, Table),
                (DynamodbUpdateItem, Table),
                (S3PutObject, JobObjects),
                (S3GetObject, Manifests),
                (SqsSendMessage, JobsQueue),
                (SsmGetParameters, TenantSecrets),
                (S3PutObject, SecretObjects),
                (S3GetObject, SecretObjects),
                (S3DeleteObjectVersion, SecretObjects),
                (S3ListBucketVersions, SecretVersions),
                (EcsRunTask, TaskDefinition),
                (EcsTagResource, ClusterTasks),
                (IamPassRole, ExecutionRole),
                (EcsStopTask, ClusterTasks),
                (SqsReceiveMessage, JobsQueue),
                (SqsDeleteMessage, JobsQueue),
                (SqsGetQueueAttributes, JobsQueue),
                (SqsSendMessage, WebhookQueue),
                // The warm pool: finding idle slots, handing a job over, signing a slot's links.
                (DynamodbQuery, UnfinishedIndex),
                (S3PutObject, SlotObjects),
                (S3GetObject, SlotObjects),
                (S3DeleteObject, SlotObjects),
                // The agents' links, signed by a session of its own role.
                (StsAssumeRole, OwnRole),
            ],
            Reconcile => &[
                (DynamodbGetItem, Table),
                (DynamodbUpdateItem, Table),
                (DynamodbQuery, UnfinishedIndex),
                (EcsStopTask, ClusterTasks),
                // An overdue job's task: stopped, whose event was lost?
                (EcsDescribeTasks, ClusterTasks),
                (S3GetObject, ErrorReports),
                (S3DeleteObjectVersion, SecretObjects),
                (S3ListBucketVersions, SecretVersions),
                (SqsSendMessage, WebhookQueue),
                // Is there an error report, a slot's manifest (listed, not read: see the target).
                (S3ListBucket, ReportAndSlotListing),
                // A warm slot that ended: was its job taken (else back to the queue), and refill.
                (S3DeleteObject, SlotObjects),
                (S3ListBucketVersions, SlotVersions),
                (SqsSendMessage, JobsQueue),
            ],
            // Reads only the job it delivers, its links and its tenant's signing secret.
            Webhook => &[
                (DynamodbGetItem, Table),
                (DynamodbUpdateItem, Table),
                (S3ListBucket, Bucket),
                (S3GetObject, JobObjects),
                (SsmGetParameters, WebhookSecrets),
                (SqsSendMessage, WebhookQueue),
                (SqsSendMessage, WebhookDlq),
                (SqsReceiveMessage, WebhookQueue),
                (SqsDeleteMessage, WebhookQueue),
                (SqsGetQueueAttributes, WebhookQueue),
            ],
        }
    }
}

/// The agent container and its task.
pub mod agent {
    pub const CONTAINER_NAME: &str = "agent";

    /// Exit codes of the agent process, so the reconciler can say why a container failed even when
    /// no `error.json` was uploaded.
    pub mod exit {
        pub const OK: i32 = 0;
        pub const INVALID_JOB: i32 = 2;
        pub const BROWSER_START: i32 = 3;
        /// The page could not be loaded (network error, unreachable server, redirect loop).
        pub const NAVIGATION: i32 = 4;
        /// The egress guard refused a loopback, private, link-local or other special address.
        pub const EGRESS_REFUSED: i32 = 5;
        pub const DEADLINE: i32 = 6;
        pub const CAPTURE: i32 = 7;
        pub const UPLOAD: i32 = 8;
        pub const INTERNAL: i32 = 9;
        /// A step failed (its selector, assertion, timeout or action).
        pub const STEP: i32 = 10;
        /// Rust's exit code after a panic the agent could not turn into an error.
        pub const PANIC: i32 = 101;
        /// Stopped by SIGTERM (ECS StopTask), 128 + 15.
        pub const TERMINATED: i32 = 143;

        pub fn describe(code: i32) -> &'static str {
            match code {
                OK => "completed",
                INVALID_JOB => "invalid job",
                BROWSER_START => "browser failed to start",
                NAVIGATION => "page could not be loaded",
                EGRESS_REFUSED => "destination refused by the egress guard",
                DEADLINE => "deadline exceeded",
                CAPTURE => "capture failed",
                UPLOAD => "upload failed",
                INTERNAL => "internal error",
                STEP => "a step failed",
                PANIC => "agent crashed",
                TERMINATED => "stopped",
                _ => "unknown failure",
            }
        }
    }
    pub const SCRATCH_VOLUME: &str = "scratch";
    pub const SCRATCH_MOUNT: &str = "/scratch";
    /// Non-root uid:gid the image creates.
    pub const USER: &str = "10001:10001";
    pub const DEFAULT_SEARCH_URL_TEMPLATE: &str = "https://duckduckgo.com/html/?q={query}";
    /// Where a search URL template takes the (form-encoded) query.
    pub const QUERY_PLACEHOLDER: &str = "{query}";

    /// A search URL template for a search page at `origin` (`http://host:port`).
    pub fn search_url_template(origin: &str) -> String {
        format!("{origin}/search?q={QUERY_PLACEHOLDER}")
    }

    pub fn task_family(prefix: &str) -> String {
        format!("{prefix}-agent")
    }
    pub fn cluster_name(prefix: &str) -> String {
        format!("{prefix}-cluster")
    }
    pub fn repository_name(prefix: &str) -> String {
        format!("{prefix}-agent")
    }
    /// The role ECS uses to start the agent's task (pull the image, ship its logs, read its SSM
    /// secrets); RunTask passes it.
    pub fn execution_role_name(prefix: &str) -> String {
        format!("{prefix}-agent-execution")
    }
}

/// CloudWatch Logs names.
pub mod logs {
    /// awslogs stream prefix of the agent container.
    pub const AGENT_STREAM_PREFIX: &str = "agent";

    pub fn agent_group(prefix: &str) -> String {
        format!("/ecs/{prefix}-agent")
    }

    /// The stream awslogs writes for one task: `prefix/container/ecs-task-id`.
    pub fn agent_stream(ecs_task_id: &str) -> String {
        format!("{AGENT_STREAM_PREFIX}/{}/{ecs_task_id}", super::agent::CONTAINER_NAME)
    }

    pub fn function_group(function_name: &str) -> String {
        format!("/aws/lambda/{function_name}")
    }

    pub fn api_access_group(prefix: &str) -> String {
        format!("/aws/apigateway/{prefix}-api")
    }

    pub fn flow_log_group(prefix: &str) -> String {
        format!("/aws/vpc/{prefix}-flow-logs")
    }

    /// The log group API Gateway writes a stage's execution logs to (its name is API Gateway's).
    pub fn api_execution_group(api_id: &str, stage: &str) -> String {
        format!("API-Gateway-Execution-Logs_{api_id}/{stage}")
    }

    /// Every log group of the stack whose prefix is `prefix`: the functions', the agent's, the
    /// API's access and execution logs, the flow logs. (The execution group's name holds the API's
    /// id, which is known only after it exists: any id, this stack's stage.)
    pub fn stack_groups(prefix: &str) -> Vec<String> {
        vec![
            function_group(&format!("{prefix}-*")),
            agent_group(prefix),
            api_access_group(prefix),
            flow_log_group(prefix),
            api_execution_group("*", super::routes::STAGE),
        ]
    }
}

/// SSM parameters the operator creates and the task definition injects into the agent container
/// as secrets (Terraform variable `agent_secrets`).
pub mod ssm {
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
}

/// ECS tags and `startedBy` that carry the job's id on its task.
pub mod ecs {
    use serde::{Deserialize, Serialize};

    pub const TASK_ID_TAG: &str = "task_id";
    pub const TENANT_TAG: &str = "tenant_id";
    /// A warm slot's task: its slot's id.
    pub const SLOT_TAG: &str = "slot_id";
    /// `startedBy` is limited to 36 characters: exactly a UUID.
    pub const STARTED_BY_MAX: usize = 36;
    pub const TASK_STATE_CHANGE: &str = "ECS Task State Change";
    pub const EVENT_SOURCE: &str = "aws.ecs";

    /// A task definition ARN's family part and revision
    /// (`arn:aws:ecs:r:a:task-definition/family:7` -> (`arn:...:task-definition/family`, 7)); None
    /// for an ARN without a revision.
    pub fn revision_of(task_definition_arn: &str) -> Option<(&str, u32)> {
        let (family, revision) = task_definition_arn.rsplit_once(':')?;
        let revision = revision.parse().ok()?;
        family.contains("task-definition/").then_some((family, revision))
    }

    spelled_enum! {
        /// A task's or container's `lastStatus`/`desiredStatus`.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum TaskStatus {
            Provisioning = "PROVISIONING",
            Pending = "PENDING",
            Activating = "ACTIVATING",
            Running = "RUNNING",
            Deactivating = "DEACTIVATING",
            Stopping = "STOPPING",
            Deprovisioning = "DEPROVISIONING",
            Stopped = "STOPPED",
            /// A status this code does not know (ECS adds some from time to time).
            #[serde(other)]
            #[default]
            Other = "OTHER",
        }
    }

    spelled_enum! {
        /// Why ECS stopped a task.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum StopCode {
            TaskFailedToStart = "TaskFailedToStart",
            EssentialContainerExited = "EssentialContainerExited",
            UserInitiated = "UserInitiated",
            ServiceSchedulerInitiated = "ServiceSchedulerInitiated",
            SpotInterruption = "SpotInterruption",
            TerminationNotice = "TerminationNotice",
            #[serde(other)]
            Other = "Other",
        }
    }

    /// The `detail` of an `ECS Task State Change` event (the fields this system reads or, in the
    /// Fargate stand-in, writes); unknown fields are ignored, as EventBridge adds them freely.
    #[serde_with::skip_serializing_none]
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct TaskStateChange {
        pub task_arn: String,
        pub cluster_arn: Option<String>,
        pub last_status: TaskStatus,
        pub desired_status: Option<TaskStatus>,
        pub started_by: Option<String>,
        pub group: Option<String>,
        pub launch_type: Option<String>,
        pub stop_code: Option<StopCode>,
        pub stopped_reason: Option<String>,
        #[serde(default)]
        pub containers: Vec<ContainerState>,
    }

    #[serde_with::skip_serializing_none]
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ContainerState {
        pub name: String,
        pub last_status: Option<TaskStatus>,
        pub exit_code: Option<i64>,
        pub reason: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_codes_serialize_as_they_print() {
        for c in job::ErrorCode::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        use ecs::{StopCode, TaskStatus};
        for s in [TaskStatus::Provisioning, TaskStatus::Running, TaskStatus::Stopped] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for c in [StopCode::TaskFailedToStart, StopCode::EssentialContainerExited, StopCode::UserInitiated] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        let unknown: TaskStatus = serde_json::from_str("\"SOMETHING_NEW\"").unwrap();
        assert_eq!(unknown, TaskStatus::Other);
    }

    #[test]
    fn a_task_definition_revision_is_read_from_its_arn() {
        let arn = "arn:aws:ecs:eu-west-1:123456789012:task-definition/browser-jobs-dev-agent:12";
        assert_eq!(ecs::revision_of(arn), Some(("arn:aws:ecs:eu-west-1:123456789012:task-definition/browser-jobs-dev-agent", 12)));
        assert_eq!(ecs::revision_of("arn:aws:ecs:eu-west-1:123456789012:task-definition/browser-jobs-dev-agent"), None);
        assert_eq!(ecs::revision_of("arn:aws:ecs:eu-west-1:123456789012:task-definition/a:latest"), None);
        assert_eq!(ecs::revision_of(""), None);
    }

    #[test]
    fn terminal_states_never_change() {
        for from in JobStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in JobStatus::ALL {
                assert!(!from.can_move_to(to), "{from} -> {to} must be refused");
            }
        }
    }

    #[test]
    fn transitions_table() {
        use JobStatus::*;
        let allowed = [
            (Queued, Provisioning),
            (Provisioning, Provisioned),
            (Provisioned, Running),
            (Provisioning, Running),
            (Running, Completed),
            (Running, Failed),
            (Queued, Cancelled),
            (Running, Cancelled),
            (Queued, Failed),
        ];
        let refused = [(Queued, Running), (Queued, Completed), (Running, Provisioned), (Provisioned, Queued)];
        // A warm slot's job whose slot ended before taking it goes back to the queue.
        assert!(Running.can_move_to(Queued) && Provisioning.can_move_to(Queued));
        for (a, b) in allowed {
            assert!(a.can_move_to(b), "{a} -> {b} should be allowed");
        }
        for (a, b) in refused {
            assert!(!a.can_move_to(b), "{a} -> {b} should be refused");
        }
    }

    #[test]
    fn names_round_trip() {
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
        for o in Output::ALL {
            assert_eq!(Output::parse(o.as_str()), Some(o));
        }
        for f in Function::ALL {
            assert_eq!(Function::parse(f.as_str()), Some(f));
        }
        assert_eq!(bucket::output_key("abc", Output::Screenshot), "jobs/abc/screenshot.png");
        assert_eq!(logs::agent_stream("123"), "agent/agent/123");
    }
}
