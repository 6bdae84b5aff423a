//! A webhook receiver on loopback that verifies each request's signature with the Standard
//! Webhooks reference library (PyPI `standardwebhooks`, in the tools' virtualenv): what the
//! webhook tests and the end-to-end test deliver to.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the receiver got, as it recorded it.
pub type Request = serde_json::Value;

pub struct Receiver {
    child: Child,
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    /// Starts `testenv/py/webhook_receiver.py`, verifying with each of `secrets` on its own and
    /// answering by `plan` (status codes, `timeout:<s>`, `redirect`; then 200).
    pub fn start(root: &Path, secrets: &[&str], plan: &[&str]) -> Result<Receiver, String> {
        Receiver::start_at(root, 0, secrets, plan)
    }

    /// As [`start`](Self::start), on `port` of 127.0.0.1 (0: a free one).
    pub fn start_at(root: &Path, port: u16, secrets: &[&str], plan: &[&str]) -> Result<Receiver, String> {
        let mut cmd = Command::new(crate::venv_bin(root).join("python"));
        cmd.arg(root.join("testenv/py/webhook_receiver.py"));
        for s in secrets {
            cmd.args(["--secret", s]);
        }
        cmd.args(["--plan", &plan.join(","), "--port", &port.to_string()]).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(|e| format!("webhook receiver: {e} (scripts/tools.sh installs the virtualenv)"))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let Some(port) = first.strip_prefix("PORT ").and_then(|p| p.trim().parse().ok()) else {
            let _ = child.kill();
            return Err(format!("webhook receiver did not start: {first:?} (is standardwebhooks installed? scripts/tools.sh)"));
        };
        let requests = Arc::new(Mutex::new(Vec::new()));
        let sink = requests.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                match serde_json::from_str(&line) {
                    Ok(v) => sink.lock().unwrap().push(v),
                    // A lost record makes a delivered event look unsent: say so where it happened.
                    Err(e) => eprintln!("webhook receiver: a record that is not JSON ({e}): {line}"),
                }
            }
        });
        Ok(Receiver { child, port, requests })
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The requests once there are at least `n` (or what came within `timeout`).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Request> {
        let start = Instant::now();
        loop {
            let got = self.requests();
            if got.len() >= n || start.elapsed() > timeout {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
