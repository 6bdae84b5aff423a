//! The functions' metrics (`names::metrics`), written as EMF lines through the logger: nothing
//! on any path waits for CloudWatch.

use names::metrics::{dim, Metric};
use names::JobStatus;

use crate::model::Job;

/// Where metric lines go: the deployment's namespace.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub namespace: String,
}

impl Metrics {
    /// One value of `metric`, with exactly its dimensions. An empty namespace writes nothing
    /// (the benchmark's "without").
    pub fn emit(&self, now_ms: i64, metric: Metric, dimensions: &[(&str, &str)], value: f64) {
        if self.namespace.is_empty() {
            return;
        }
        logging::metrics::emit(metric.line(&self.namespace, now_ms, dimensions, value));
    }

    pub fn count(&self, now_ms: i64, metric: Metric, dimensions: &[(&str, &str)]) {
        self.emit(now_ms, metric, dimensions, 1.0);
    }

    /// A job that has just moved to `to` (the move applied, so once per job): its start (warm or
    /// cold, and how long it waited) or its end (status, error code, run time, time since
    /// submit).
    pub fn job_moved(&self, now_ms: i64, job: &Job, from: JobStatus, to: JobStatus) {
        let at = |s: Option<&str>| s.and_then(crate::time::parse_rfc3339);
        let created = at(Some(job.created_at.as_str()));
        if to == JobStatus::Provisioning && job.started_at.is_none() {
            if let Some(c) = created {
                self.emit(now_ms, names::metrics::QUEUE_WAIT, &[], (now_ms - c).max(0) as f64);
            }
        } else if to == JobStatus::Provisioned {
            // A cold task started for it (RunTask answered); it runs once the task is RUNNING.
            self.count(now_ms, names::metrics::JOBS_STARTED, &[(dim::START, "cold")]);
        } else if to == JobStatus::Running {
            let start = if job.warm_slot.is_some() { "warm" } else { "cold" };
            // A warm slot takes its job straight to RUNNING; so does a cold task's RUNNING event
            // that came before its RunTask answer was recorded.
            if job.warm_slot.is_some() || from == JobStatus::Provisioning {
                self.count(now_ms, names::metrics::JOBS_STARTED, &[(dim::START, start)]);
            }
            if let Some(c) = created {
                let started = at(job.started_at.as_deref()).unwrap_or(now_ms);
                self.emit(now_ms, names::metrics::TIME_TO_RUNNING, &[(dim::START, start)], (started - c).max(0) as f64);
            }
        } else if to.is_terminal() {
            self.count(now_ms, names::metrics::JOBS_FINISHED, &[(dim::STATUS, to.as_str())]);
            if to == JobStatus::Failed {
                let code = job.error_code.as_deref().unwrap_or("UNKNOWN");
                self.count(now_ms, names::metrics::JOBS_FAILED, &[(dim::ERROR_CODE, code)]);
            }
            let finished = at(job.finished_at.as_deref()).unwrap_or(now_ms);
            if let Some(c) = created {
                self.emit(now_ms, names::metrics::TIME_TO_FINISH, &[], (finished - c).max(0) as f64);
            }
            if let Some(s) = at(job.started_at.as_deref()) {
                self.emit(now_ms, names::metrics::RUN_TIME, &[], (finished - s).max(0) as f64);
            }
        }
    }
}
