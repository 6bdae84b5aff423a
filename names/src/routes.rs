/// The API Gateway stage the routes are deployed to.
pub const STAGE: &str = "v1";
pub const JOBS: &str = "/jobs";
pub const JOB: &str = "/jobs/{task_id}";
pub const JOB_LOGS: &str = "/jobs/{task_id}/logs";
/// POST: sends a finished job's webhook event again.
pub const JOB_WEBHOOK: &str = "/jobs/{task_id}/webhook";
/// The calling tenant's usage and estimated cost by day.
pub const USAGE: &str = "/usage";
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

pub const ALL: [Route; 7] = [
    Route { method: "POST", path: JOBS, function: super::Function::Submit },
    Route { method: "GET", path: JOBS, function: super::Function::List },
    Route { method: "GET", path: JOB, function: super::Function::Status },
    Route { method: "DELETE", path: JOB, function: super::Function::Cancel },
    Route { method: "GET", path: JOB_LOGS, function: super::Function::Logs },
    // The submit function queues work; a redelivery is a new delivery of the job's event.
    Route { method: "POST", path: JOB_WEBHOOK, function: super::Function::Submit },
    Route { method: "GET", path: USAGE, function: super::Function::List },
];
