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
        /// A computer-use job's model took its `max_steps` turns without ending the task.
        StepLimit = "STEP_LIMIT",
        /// A computer-use job spent its `max_tokens`.
        TokenLimit = "TOKEN_LIMIT",
        /// A computer-use job's estimated model cost passed its `max_cost_usd`.
        CostLimit = "COST_LIMIT",
        /// The model's answer does not satisfy the job's `output_schema` (the message says why).
        AnswerInvalid = "ANSWER_INVALID",
        /// The model service refused the job's requests, declined the task, or did not answer
        /// in the job's time.
        ModelFailed = "MODEL_FAILED",
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
    pub(crate) fn new(field: &str, message: impl Into<String>) -> SpecError {
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
