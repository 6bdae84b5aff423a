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

/// Every job's `result.json`, as an IAM resource pattern below the bucket.
pub fn results_pattern() -> String {
    format!("{JOBS_PREFIX}*/{}", super::Output::Result.file_name())
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
