//! The agent with the browser taken out, for tests of the control plane under load and faults:
//! it speaks the agent's whole protocol with the agent's own code (`agent::manifest`,
//! `agent::upload`) — a cold task reads its manifest, a warm slot waits for its job and releases
//! it, a job's secrets are read and deleted, `result.json` and then `agent.log` are uploaded — and
//! instead of driving Chromium it works for a moment and writes what it did to a ledger, so a test
//! counts what the agents really ran, not what the table says.
//!
//! Settings (environment): `STAND_IN_LEDGER`, the file the lines are appended to (one `write`
//! each, `O_APPEND`: lines of concurrent agents never interleave); `STAND_IN_WORK_MS`, how long a
//! job works (default 200); `STAND_IN_DIE_PER_MILLE` and `STAND_IN_SEED`, how often a job's
//! agent dies while working (exit 137, as the OOM killer ends it: nothing uploaded).
//!
//! Ledger lines: `start <job> <task> <epoch ms>`, then `end <job> <task> <epoch ms> <how>` where
//! how is `done`, `died` or `stopped` (SIGTERM).

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use agent::log::Log;
use agent::manifest::{self, Slot};
use names::Output;
use serde_json::json;

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

fn ledger(line: &str) {
    let Ok(path) = std::env::var("STAND_IN_LEDGER") else { return };
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&path);
    match file {
        Ok(mut f) => {
            if let Err(e) = f.write_all(format!("{line}\n").as_bytes()) {
                eprintln!("stand-in agent: the ledger {path}: {e}");
            }
        }
        Err(e) => eprintln!("stand-in agent: the ledger {path}: {e}"),
    }
}

fn main() {
    let get = |k: &str| std::env::var(k).ok();
    let task = agent::config::task_id_hint(&get);
    let log = Arc::new(Log::new(task.clone()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    std::process::exit(runtime.block_on(run(task, log)));
}

async fn run(task: String, log: Arc<Log>) -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let get = |k: &str| std::env::var(k).ok();
    let mut sigterm = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let received = if manifest::is_slot(&get) {
        tokio::select! {
            waited = manifest::wait_in_slot(&get, &log) => match waited {
                Ok(Slot::Job(m, waited)) => {
                    log.info("the slot took its job", json!(waited));
                    Ok(m)
                }
                Ok(Slot::Expired | Slot::NotReleased(_)) => return 0,
                Err(e) => Err(e),
            },
            _ = sigterm.recv() => return 143,
        }
    } else {
        manifest::fetch(&get).await
    };
    let m = match received {
        Ok(m) => m,
        Err(e) => {
            log.error("job failed", json!({ "message": e }));
            return names::agent::exit::INVALID_JOB;
        }
    };
    let job = m.job["task_id"].as_str().unwrap_or_default().to_string();
    if let Some(links) = &m.secrets {
        if let Err(e) = manifest::take_secrets(links, &log).await {
            log.error("job failed", json!({ "message": e }));
        }
    }
    ledger(&format!("start {job} {task} {}", now_ms()));
    let work = Duration::from_millis(get("STAND_IN_WORK_MS").and_then(|v| v.parse().ok()).unwrap_or(200));
    let die_per_mille: u64 = get("STAND_IN_DIE_PER_MILLE").and_then(|v| v.parse().ok()).unwrap_or(0);
    let dies = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (get("STAND_IN_SEED"), &job).hash(&mut h);
        h.finish() % 1000 < die_per_mille
    };
    tokio::select! {
        _ = tokio::time::sleep(work) => {}
        _ = sigterm.recv() => {
            ledger(&format!("end {job} {task} {} stopped", now_ms()));
            return 143;
        }
    }
    if dies {
        ledger(&format!("end {job} {task} {} died", now_ms()));
        return 137;
    }
    let uploader = match agent::upload::Uploader::new(m.uploads, log.clone()) {
        Ok(u) => u,
        Err(e) => {
            log.error("job failed", json!({ "message": e }));
            return names::agent::exit::INVALID_JOB;
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let result = json!({ "task_id": job, "kind": "stand-in", "task": task });
    let mut code = 0;
    if let Err(e) = uploader.put(Output::Result, result.to_string().into_bytes(), deadline).await {
        log.error("upload failed", json!({ "error": e.to_string() }));
        code = names::agent::exit::UPLOAD;
    }
    log.info("job finished", json!({ "exit_code": code }));
    // The log goes last: it tells the dispatcher the job was taken and ran.
    if let Err(e) = uploader.put(Output::Log, log.contents(), deadline).await {
        eprintln!("stand-in agent: agent.log: {e}");
        code = names::agent::exit::UPLOAD;
    }
    ledger(&format!("end {job} {task} {} done", now_ms()));
    code
}
