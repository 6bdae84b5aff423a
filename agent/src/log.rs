//! The agent's log: the workspace's JSON logger (crate `logging`, through `tracing`) writing every
//! line to stdout (CloudWatch via awslogs) and into a buffer that is uploaded as `agent.log` at the
//! end of the job. Every line carries the job's `task_id`.

use serde_json::Value;
use tracing::Level;

pub struct Log {
    tee: logging::Tee,
}

impl Log {
    /// Installs the logger for the process; `task_id` goes on every line (when known).
    pub fn new(task_id: impl Into<String>) -> Log {
        let tee = logging::Tee::default();
        logging::init(Level::INFO, tee.clone());
        let task_id = task_id.into();
        if !task_id.is_empty() {
            logging::set_global("task_id", &task_id);
        }
        Log { tee }
    }

    pub fn info(&self, msg: &str, fields: Value) {
        tracing::info!(fields = %fields, "{msg}");
    }

    pub fn warn(&self, msg: &str, fields: Value) {
        tracing::warn!(fields = %fields, "{msg}");
    }

    pub fn error(&self, msg: &str, fields: Value) {
        tracing::error!(fields = %fields, "{msg}");
    }

    /// From now on `value` reads `[secret:<name>]` in every line, and in every text output the
    /// redactor is given to.
    pub fn redact(&self, name: &str, value: &str) {
        self.tee.redactor.add(name, value);
    }

    pub fn redactor(&self) -> logging::Redactor {
        self.tee.redactor.clone()
    }

    /// Everything logged so far, for `agent.log`.
    pub fn contents(&self) -> Vec<u8> {
        self.tee.contents()
    }
}

pub fn now_rfc3339() -> String {
    logging::now_rfc3339()
}
