//! A webhook receiver on loopback that verifies each request's signature with the Standard
//! Webhooks reference library (PyPI `standardwebhooks`, in the tools' virtualenv): what the
//! webhook tests and the end-to-end test deliver to.

use std::path::Path;
use std::time::Duration;

use crate::pyserver::PyServer;

/// One request the receiver got, as it recorded it.
pub type Request = serde_json::Value;

pub struct Receiver {
    server: PyServer,
    pub port: u16,
}

impl Receiver {
    /// Starts `testenv/py/webhook_receiver.py`, verifying with each of `secrets` on its own and
    /// answering by `plan` (status codes, `timeout:<s>`, `redirect`; then 200).
    pub fn start(root: &Path, secrets: &[&str], plan: &[&str]) -> Result<Receiver, String> {
        Receiver::start_at(root, 0, secrets, plan)
    }

    /// As [`start`](Self::start), on `port` of 127.0.0.1 (0: a free one).
    pub fn start_at(root: &Path, port: u16, secrets: &[&str], plan: &[&str]) -> Result<Receiver, String> {
        let mut args = Vec::new();
        for s in secrets {
            args.extend(["--secret".to_string(), s.to_string()]);
        }
        args.extend(["--plan".to_string(), plan.join(","), "--port".to_string(), port.to_string()]);
        let server = PyServer::start(root, "webhook_receiver.py", &args, "webhook receiver (is standardwebhooks installed? scripts/tools.sh)")?;
        Ok(Receiver { port: server.port, server })
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.server.records()
    }

    /// The requests once there are at least `n` (or what came within `timeout`).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Request> {
        self.server.wait_for(n, timeout)
    }
}
