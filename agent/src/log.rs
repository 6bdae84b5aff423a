//! JSON-lines logging: every line goes to stdout (CloudWatch via awslogs) and into a buffer that is
//! uploaded as `agent.log` at the end of the job.

use serde_json::{Map, Value};
use std::io::Write;
use std::sync::Mutex;

pub struct Log {
    task_id: String,
    buffer: Mutex<Vec<u8>>,
}

impl Log {
    pub fn new(task_id: impl Into<String>) -> Log {
        Log {
            task_id: task_id.into(),
            buffer: Mutex::new(Vec::new()),
        }
    }

    pub fn info(&self, msg: &str, fields: Value) {
        self.write("info", msg, fields)
    }

    pub fn warn(&self, msg: &str, fields: Value) {
        self.write("warn", msg, fields)
    }

    pub fn error(&self, msg: &str, fields: Value) {
        self.write("error", msg, fields)
    }

    fn write(&self, level: &str, msg: &str, fields: Value) {
        let mut line = line(level, &self.task_id, msg, fields);
        line.push('\n');
        // stdout first: if the upload never happens, CloudWatch still has the line.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
        self.buffer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(line.as_bytes());
    }

    /// Everything logged so far, for `agent.log`.
    pub fn contents(&self) -> Vec<u8> {
        self.buffer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// One log line without its newline; also used by the panic hook, which has no `Log` at hand.
pub fn line(level: &str, task_id: &str, msg: &str, fields: Value) -> String {
    let mut obj = Map::new();
    obj.insert("ts".into(), Value::String(now_rfc3339()));
    obj.insert("level".into(), Value::String(level.into()));
    if !task_id.is_empty() {
        obj.insert("task_id".into(), Value::String(task_id.into()));
    }
    obj.insert("msg".into(), Value::String(msg.into()));
    if let Value::Object(extra) = fields {
        for (k, v) in extra {
            obj.entry(k).or_insert(v);
        }
    }
    Value::Object(obj).to_string()
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
