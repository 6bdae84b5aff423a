//! The AWS emulator: a moto server on a free loopback port. Started one way for every user: from
//! a thread that lives as long as the process, in a process group of its own, with
//! `PR_SET_PDEATHSIG`, so it dies with its parent even when the parent is killed, and dropping the
//! handle stops it and anything it started.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The access key (id, secret) of the test harness and of the stand-ins that play AWS services:
/// the emulator serves it unchecked, as an administrator's (only the functions' keys, registered
/// by `testenv::iam`, are authorized call by call).
pub const HARNESS_KEY: (&str, &str) = ("testing", "testing");

pub struct Moto {
    pub endpoint: String,
    pub port: u16,
    pid: i32,
    /// Set by the keeper thread once it has reaped the server (an unreaped zombie still answers
    /// `kill(pid, 0)`, so only the reaping says it is gone).
    exited: Arc<(Mutex<bool>, Condvar)>,
    stopped: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("{0} is missing: run `scripts/tools.sh python` (make test and make local do)")]
    Missing(PathBuf),
    #[error("no free port on 127.0.0.1: {0}")]
    Port(std::io::Error),
    #[error("cannot start {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("moto_server did not listen on 127.0.0.1:{0} within 30 s")]
    NotListening(u16),
    #[error("moto control API {path}: {message}")]
    Control { path: &'static str, message: String },
}

impl Moto {
    /// Starts moto from the project's virtualenv through `testenv/py/moto_server.py`, which adds
    /// the AWS behaviours moto lacks (ECS clientToken semantics, S3's checks of pre-signed
    /// requests), and waits until it listens.
    pub fn start(root: &Path) -> Result<Moto, MotoError> {
        let moto_server = crate::venv_bin(root).join("moto_server");
        if !moto_server.exists() {
            return Err(MotoError::Missing(moto_server));
        }
        let python = crate::venv_bin(root).join("python");
        let script = root.join("testenv/py/moto_server.py");
        let port = crate::free_port().map_err(MotoError::Port)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let exited = Arc::new((Mutex::new(false), Condvar::new()));
        let reaped = exited.clone();
        let path = python.clone();
        // The keeper thread never ends, so the death signal comes only when the process does. It
        // waits for the server and reaps it, so a stop knows the moment it is gone.
        std::thread::Builder::new()
            .name("moto-keeper".into())
            .spawn(move || {
                use std::os::unix::process::CommandExt;
                let mut cmd = Command::new(&path);
                cmd.arg(&script)
                    .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .process_group(0);
                // SAFETY: prctl is async-signal-safe; it only sets this child's death signal.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let child = cmd.spawn();
                let _ = tx.send(
                    child
                        .as_ref()
                        .map(|c| c.id() as i32)
                        .map_err(|e| e.to_string()),
                );
                if let Ok(mut child) = child {
                    let _ = child.wait();
                    let (done, cv) = &*reaped;
                    *done.lock().unwrap_or_else(|e| e.into_inner()) = true;
                    cv.notify_all();
                }
                loop {
                    std::thread::park();
                }
            })
            .map_err(|source| MotoError::Spawn {
                path: python.clone(),
                source,
            })?;
        let pid = match rx.recv() {
            Ok(Ok(pid)) => pid,
            Ok(Err(e)) => {
                return Err(MotoError::Spawn {
                    path: python,
                    source: std::io::Error::other(e),
                })
            }
            Err(e) => {
                return Err(MotoError::Spawn {
                    path: python,
                    source: std::io::Error::other(e),
                })
            }
        };
        let server = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            pid,
            exited,
            stopped: AtomicBool::new(false),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err(MotoError::NotListening(port));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// moto advances an ECS task one state per DescribeTasks; where a Fargate stand-in owns task
    /// lifecycles, moto must leave them alone.
    pub fn manual_task_progression(&self) -> Result<(), MotoError> {
        const PATH: &str = "/moto-api/state-manager/set-transition";
        let body =
            r#"{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}"#;
        let response = reqwest::blocking::Client::new()
            .post(format!("{}{PATH}", self.endpoint))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .map_err(|e| MotoError::Control {
                path: PATH,
                message: e.to_string(),
            })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(MotoError::Control {
                path: PATH,
                message: response.status().to_string(),
            })
        }
    }

    /// The environment that points the AWS SDKs (and boto3) at this server with the harness's
    /// credentials ([`HARNESS_KEY`]).
    pub fn sdk_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", HARNESS_KEY.0.into()),
            ("AWS_SECRET_ACCESS_KEY", HARNESS_KEY.1.into()),
            ("AWS_REGION", names::defaults::AWS_REGION.into()),
            ("AWS_DEFAULT_REGION", names::defaults::AWS_REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// The server's process id (also its process group's).
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Stops moto and everything in its process group: SIGTERM, up to 5 s for the server to exit
    /// (it is reaped the moment it does), then SIGKILL for whatever is left. Once; later calls
    /// (the drop after an explicit stop) return at once.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        // SAFETY: kill(2) with a negative pid signals the process group created for moto.
        unsafe {
            libc::kill(-self.pid, libc::SIGTERM);
        }
        let (done, cv) = &*self.exited;
        let guard = done.lock().unwrap_or_else(|e| e.into_inner());
        let _ = cv.wait_timeout_while(guard, Duration::from_secs(5), |exited| !*exited);
        // SAFETY: as above; ESRCH when the whole group is already gone is harmless.
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
        }
    }

    /// Whether the server has exited and been reaped (nothing of it left, not even a zombie).
    pub fn has_exited(&self) -> bool {
        *self.exited.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stop leaves nothing behind, not even a zombie, and a second stop (the drop after an
    /// explicit one) has nothing to do.
    #[test]
    fn stop_reaps_the_server_and_runs_once() {
        let moto = Moto::start(&crate::root()).unwrap_or_else(|e| panic!("{e}"));
        let proc_entry = PathBuf::from(format!("/proc/{}", moto.pid()));
        assert!(proc_entry.exists() && !moto.has_exited());
        let started = Instant::now();
        moto.stop();
        let took = started.elapsed();
        assert!(moto.has_exited(), "stop returned before the server was reaped");
        assert!(!proc_entry.exists(), "the server's process is still there (a zombie?)");
        assert!(std::net::TcpStream::connect(("127.0.0.1", moto.port)).is_err());
        let again = Instant::now();
        moto.stop();
        drop(moto);
        eprintln!("moto stopped in {took:?}; the second stop and the drop took {:?}", again.elapsed());
    }
}
