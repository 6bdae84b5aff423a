//! What can go wrong in a job, as the codes `error.json` carries and the exit codes the process ends with.

use names::agent::exit;
use serde::Serialize;

/// The step a job was in when it stopped; recorded in `error.json` and on every log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Config,
    Launch,
    Navigate,
    Capture,
    Upload,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Config => "config",
            Stage::Launch => "launch",
            Stage::Navigate => "navigate",
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
    #[error("the agent was asked to stop")]
    Terminated,
    #[error("internal error: {0}")]
    Internal(String),
}

impl AgentError {
    /// Stable machine-readable code for `error.json`.
    pub fn code(&self) -> &'static str {
        match self {
            AgentError::InvalidJob(_) => "invalid_job",
            AgentError::BrowserStart(_) => "browser_start_failed",
            AgentError::Navigation(_) => "navigation_failed",
            AgentError::EgressRefused { .. } => "egress_refused",
            AgentError::Unreachable { .. } => "page_unreachable",
            AgentError::Deadline(_) => "deadline_exceeded",
            AgentError::Capture(_) => "capture_failed",
            AgentError::Upload { .. } => "upload_failed",
            AgentError::Terminated => "terminated",
            AgentError::Internal(_) => "internal_error",
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            AgentError::InvalidJob(_) => exit::INVALID_JOB,
            AgentError::BrowserStart(_) => exit::BROWSER_START,
            AgentError::Navigation(_) | AgentError::Unreachable { .. } => exit::NAVIGATION,
            AgentError::EgressRefused { .. } => exit::EGRESS_REFUSED,
            AgentError::Deadline(_) => exit::DEADLINE,
            AgentError::Capture(_) => exit::CAPTURE,
            AgentError::Upload { .. } => exit::UPLOAD,
            AgentError::Terminated => exit::TERMINATED,
            AgentError::Internal(_) => exit::INTERNAL,
        }
    }
}
