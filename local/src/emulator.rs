//! The AWS API on this machine: a moto server on a free loopback port, in its own process group so
//! that stopping the stack stops it and everything it started.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

pub struct Emulator {
    pub endpoint: String,
    pub port: u16,
    child: Child,
}

/// A free TCP port on 127.0.0.1 (the listener is dropped; the port is free a moment later).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn venv(root: &Path) -> PathBuf {
    root.join(".tools/venv/bin")
}

impl Emulator {
    pub async fn start(root: &Path, port: Option<u16>) -> Result<Emulator, String> {
        let moto = venv(root).join("moto_server");
        if !moto.exists() {
            return Err(format!("{} is missing: run `scripts/tools.sh python` (make local does)", moto.display()));
        }
        let port = match port {
            Some(p) => p,
            None => free_port().map_err(|e| format!("no free port: {e}"))?,
        };
        let mut cmd = Command::new(&moto);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .process_group(0);
        let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", moto.display()))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err(format!("moto_server did not listen on 127.0.0.1:{port} within 30 s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let emulator = Emulator { endpoint, port, child };
        emulator.manual_task_progression().await?;
        Ok(emulator)
    }

    /// moto advances an ECS task one state per DescribeTasks; the Fargate stand-in owns task
    /// lifecycles here, so moto must leave them alone.
    async fn manual_task_progression(&self) -> Result<(), String> {
        let body = r#"{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}"#;
        post(self.port, "/moto-api/state-manager/set-transition", body).await
    }

    /// Stops moto and anything in its process group.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) with a negative pid signals the process group we created.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGTERM);
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

/// A minimal HTTP/1.1 POST to the emulator's control API on loopback.
async fn post(port: u16, path: &str, body: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.map_err(|e| e.to_string())?;
    if resp.starts_with("HTTP/1.1 2") || resp.starts_with("HTTP/1.0 2") {
        Ok(())
    } else {
        Err(format!("moto {path}: {}", resp.lines().next().unwrap_or("no answer")))
    }
}
