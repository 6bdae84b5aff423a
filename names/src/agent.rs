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
    /// A computer-use task did not end in a valid answer: a limit, the model, or the answer.
    pub const GOAL: i32 = 11;
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
            GOAL => "the model's task did not end in a valid answer",
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
