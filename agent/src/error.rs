//! What can go wrong in a job, as the codes `error.json` carries and the exit codes the process ends with.

use names::agent::exit;
use names::job::ErrorCode;
use serde::Serialize;

/// The step a job was in when it stopped; recorded in `error.json` and on every log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Config,
    Launch,
    Navigate,
    Steps,
    Capture,
    Upload,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Config => "config",
            Stage::Launch => "launch",
            Stage::Navigate => "navigate",
            Stage::Steps => "steps",
            Stage::Capture => "capture",
            Stage::Upload => "upload",
        }
    }
}

/// Why a job failed. `Display` is the message a client reads in `error.json`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AgentError {
    #[error("the job is invalid: {0}")]
    InvalidJob(String),
    #[error("the browser could not be started: {0}")]
    BrowserStart(String),
    #[error("the page could not be loaded: {0}")]
    Navigation(String),
    #[error("the egress guard refused to connect to {target}: {reason}")]
    EgressRefused { target: String, reason: String },
    #[error("the page's server could not be reached ({target}): {reason}")]
    Unreachable { target: String, reason: String },
    #[error("the job's deadline of {0} seconds passed")]
    Deadline(u32),
    #[error("capturing the page failed: {0}")]
    Capture(String),
    #[error("uploading {output} failed: {reason}")]
    Upload {
        output: String,
        reason: String,
    },
    #[error("no element matches `{0}`")]
    SelectorNotFound(String),
    #[error("assertion failed: {0}")]
    AssertionFailed(String),
    #[error("{0}")]
    StepTimeout(String),
    #[error("{0}")]
    StepFailed(String),
    #[error("{0}")]
    SecretsUnavailable(String),
    #[error("the model took its {0} turns (`limits.max_steps`) without ending the task")]
    StepLimit(u32),
    #[error("the model's turns spent the job's {0} tokens (`limits.max_tokens`)")]
    TokenLimit(u64),
    #[error("the model's estimated cost passed the job's {0} US dollars (`limits.max_cost_usd`)")]
    CostLimit(f64),
    #[error("{0}")]
    AnswerInvalid(String),
    #[error("the model failed: {0}")]
    ModelFailed(String),
    #[error("the agent was asked to stop")]
    Terminated,
    #[error("internal error: {0}")]
    Internal(String),
}

impl AgentError {
    /// Stable machine-readable code for `error.json` (and the job's status).
    pub fn code(&self) -> ErrorCode {
        match self {
            AgentError::InvalidJob(_) => ErrorCode::InvalidJob,
            AgentError::BrowserStart(_) => ErrorCode::BrowserStartFailed,
            AgentError::Navigation(_) => ErrorCode::NavigationFailed,
            AgentError::EgressRefused { .. } => ErrorCode::EgressRefused,
            AgentError::Unreachable { .. } => ErrorCode::PageUnreachable,
            AgentError::Deadline(_) => ErrorCode::Timeout,
            AgentError::SelectorNotFound(_) => ErrorCode::SelectorNotFound,
            AgentError::AssertionFailed(_) => ErrorCode::AssertionFailed,
            AgentError::StepTimeout(_) => ErrorCode::StepTimeout,
            AgentError::StepFailed(_) => ErrorCode::StepFailed,
            AgentError::Capture(_) => ErrorCode::CaptureFailed,
            AgentError::Upload { .. } => ErrorCode::UploadFailed,
            AgentError::SecretsUnavailable(_) => ErrorCode::SecretNotFound,
            AgentError::Terminated => ErrorCode::Terminated,
            AgentError::Internal(_) => ErrorCode::InternalError,
            AgentError::StepLimit(_) => ErrorCode::StepLimit,
            AgentError::TokenLimit(_) => ErrorCode::TokenLimit,
            AgentError::CostLimit(_) => ErrorCode::CostLimit,
            AgentError::AnswerInvalid(_) => ErrorCode::AnswerInvalid,
            AgentError::ModelFailed(_) => ErrorCode::ModelFailed,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            AgentError::InvalidJob(_) | AgentError::SecretsUnavailable(_) => exit::INVALID_JOB,
            AgentError::BrowserStart(_) => exit::BROWSER_START,
            AgentError::Navigation(_) | AgentError::Unreachable { .. } => exit::NAVIGATION,
            AgentError::EgressRefused { .. } => exit::EGRESS_REFUSED,
            AgentError::Deadline(_) => exit::DEADLINE,
            AgentError::Capture(_) => exit::CAPTURE,
            AgentError::Upload { .. } => exit::UPLOAD,
            AgentError::SelectorNotFound(_) | AgentError::AssertionFailed(_) | AgentError::StepTimeout(_) | AgentError::StepFailed(_) => exit::STEP,
            AgentError::Terminated => exit::TERMINATED,
            AgentError::Internal(_) => exit::INTERNAL,
            AgentError::StepLimit(_) | AgentError::TokenLimit(_) | AgentError::CostLimit(_) | AgentError::AnswerInvalid(_) | AgentError::ModelFailed(_) => exit::GOAL,
        }
    }
}
