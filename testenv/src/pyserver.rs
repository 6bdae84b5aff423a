//! A server of `testenv/py/` run as a child process on 127.0.0.1: it prints `PORT <n>` first,
//! then one JSON line per request it handled, which are kept for the test to read. The webhook
//! receiver and the stand-in model service are such servers.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct PyServer {
    child: Child,
    pub port: u16,
    records: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl PyServer {
    /// Starts `testenv/py/<script>` with `args` in the tools' virtualenv; `what` names it in errors.
    pub fn start(root: &Path, script: &str, args: &[String], what: &str) -> Result<PyServer, String> {
        let mut cmd = Command::new(crate::venv_bin(root).join("python"));
        cmd.arg(root.join("testenv/py").join(script)).args(args).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(|e| format!("{what}: {e} (scripts/tools.sh installs the virtualenv)"))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let Some(port) = first.strip_prefix("PORT ").and_then(|p| p.trim().parse().ok()) else {
            let _ = child.kill();
            return Err(format!("{what} did not start: {first:?}"));
        };
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = records.clone();
        let name = what.to_owned();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                match serde_json::from_str(&line) {
                    Ok(v) => sink.lock().unwrap().push(v),
                    // A lost record makes a request look unsent: say so where it happened.
                    Err(e) => eprintln!("{name}: a record that is not JSON ({e}): {line}"),
                }
            }
        });
        Ok(PyServer { child, port, records })
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn records(&self) -> Vec<serde_json::Value> {
        self.records.lock().unwrap().clone()
    }

    /// The records once there are at least `n` (or what came within `timeout`).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let got = self.records();
            if got.len() >= n || start.elapsed() > timeout {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
