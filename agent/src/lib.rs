//! The browser agent: runs one job inside its throw-away container. It reads the job and its
//! pre-signed upload forms from the manifest the environment links to, drives headless Chromium through chromedriver
//! behind the egress guard, uploads the outputs and exits with a documented code within its
//! deadline, whatever happens.
//!
//! Exit codes are `names::agent::exit`: 0 done; 2 invalid job; 3 browser did not start; 4 page
//! could not be loaded; 5 egress refused; 6 deadline exceeded; 7 capture failed; 8 upload failed;
//! 9 internal error; 101 panic outside the job; 143 stopped by SIGTERM.

pub mod browser;
pub mod computer;
pub mod config;
pub mod devtools;
pub mod error;
/// The egress policy is shared with the functions' webhook delivery (`names::egress`).
pub use names::egress as guard;
pub mod job;
pub mod log;
pub mod page;
pub mod manifest;
pub mod proxy;
pub mod steps;
pub mod upload;

use error::{AgentError, Stage};
use page::Ctx;
use log::Log;
use names::agent::exit;
use names::Output;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use upload::Uploader;

/// How long after SIGTERM the agent may spend uploading: ECS sends SIGKILL 30 s after it.
const SIGTERM_GRACE: Duration = Duration::from_secs(20);

/// Runs the job described by the process environment and returns the exit code.
pub fn main_entry() -> i32 {
    let started = Instant::now();
    browser::become_subreaper();
    let get = |k: &str| std::env::var(k).ok();
    let task_id = config::task_id_hint(&get);
    let log = Arc::new(Log::new(task_id));
    install_panic_hook();
    // Also runs when main unwinds from a panic.
    let _reap = KillOnDrop;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            log.error(
                "cannot start the async runtime",
                json!({ "error": e.to_string() }),
            );
            return exit::INTERNAL;
        }
    };
    let code = runtime.block_on(supervise(started, log));
    // Nothing left is worth waiting for (a DNS lookup of a background request, say).
    runtime.shutdown_background();
    code
}

struct KillOnDrop;

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        browser::kill_descendants();
    }
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "panic");
    }));
}

/// The hard stop: a thread that ends the process at the deadline even if the runtime is wedged.
static HARD_DEADLINE_MS: AtomicU64 = AtomicU64::new(u64::MAX);

fn arm_watchdog(started: Instant, at: Duration) {
    HARD_DEADLINE_MS.fetch_min(at.as_millis() as u64, Ordering::SeqCst);
    static ARMED: std::sync::Once = std::sync::Once::new();
    ARMED.call_once(|| {
        std::thread::spawn(move || loop {
            let due = Duration::from_millis(HARD_DEADLINE_MS.load(Ordering::SeqCst));
            let now = started.elapsed();
            if now >= due {
                tracing::error!(exit_code = exit::DEADLINE, "hard deadline reached; exiting");
                browser::kill_descendants();
                std::process::exit(exit::DEADLINE);
            }
            std::thread::sleep((due - now).min(Duration::from_millis(100)));
        });
    });
}

/// A slot that ends with no job of its own: its early browser and run directory go.
fn end_without_job(prepared: Option<Warm>) -> i32 {
    if let Some(w) = prepared {
        drop(w.browser);
        let _ = std::fs::remove_dir_all(&w.run_dir);
    }
    exit::OK
}

/// StopTask while a slot waits: nothing to upload.
fn idle_stop(log: &Log) -> i32 {
    log.info("stopped while waiting for a job", json!({ "exit_code": exit::TERMINATED }));
    exit::TERMINATED
}

async fn supervise(started: Instant, log: Arc<Log>) -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate()).ok();
    let mut sigint = signal(SignalKind::interrupt()).ok();
    let get = |k: &str| std::env::var(k).ok();
    // A warm slot waits for its job first (ended by its deadline or StopTask); the job's deadline
    // starts when its manifest arrives.
    let mut started = started;
    let mut warm = None;
    let fetched = if manifest::is_slot(&get) {
        // The browser starts first, behind the guard, so the job finds it ready; Chromium dying
        // meanwhile only costs the job a start of its own.
        let waited = tokio::select! {
            w = async { (prepare(&get, &log).await, manifest::wait_in_slot(&get, &log).await) } => w,
            _ = recv(&mut sigterm) => return idle_stop(&log),
            _ = recv(&mut sigint) => return idle_stop(&log),
        };
        let (prepared, waited) = waited;
        match waited {
            Ok(manifest::Slot::Job(m, waited)) => {
                started = Instant::now();
                log.info("the slot took its job", json!(waited));
                warm = prepared;
                Ok(m)
            }
            Ok(manifest::Slot::Expired) => {
                log.info("the slot expired without a job", json!({ "exit_code": exit::OK }));
                return end_without_job(prepared);
            }
            Ok(manifest::Slot::NotReleased(error)) => {
                log.warn(
                    "the slot could not release its job's manifest: it leaves the job, which goes back to the queue when this task ends",
                    json!({ "error": error, "exit_code": exit::OK }),
                );
                return end_without_job(prepared);
            }
            Err(e) => Err(e),
        }
    } else {
        // Bounded by its own retries (about a minute at most); the job's deadline starts after it.
        manifest::fetch(&get).await
    };
    let manifest = match fetched {
        Ok(m) => m,
        Err(e) => {
            // Without the manifest there are no upload forms: only the log on stdout can say why.
            log.error("job failed", json!({ "code": names::job::ErrorCode::InvalidJob.as_str(), "message": e, "exit_code": exit::INVALID_JOB }));
            return exit::INVALID_JOB;
        }
    };
    let config = config::from_env(&get, &manifest.job);
    let timeout = match &config {
        Ok(c) => c.timeout(),
        Err(_) => Duration::from_secs(names::job::DEFAULT_TIMEOUT_SECONDS.into()),
    };
    arm_watchdog(started, timeout);
    let t0 = tokio::time::Instant::from_std(started);
    // Uploads must finish a little before the watchdog fires.
    let deadline = t0 + timeout - Duration::from_millis(150);
    let reserve = (timeout / 6).clamp(Duration::from_secs(2), Duration::from_secs(10));
    let work_deadline = t0 + timeout - reserve;

    let uploader = match Uploader::new(manifest.uploads, log.clone()) {
        Ok(u) => u,
        Err(e) => {
            // Without upload forms nothing can be reported but the log on stdout.
            log.error(
                "job failed",
                json!({ "code": names::job::ErrorCode::InvalidJob.as_str(), "message": e, "exit_code": exit::INVALID_JOB }),
            );
            return exit::INVALID_JOB;
        }
    };
    // A failure before the job runs: error.json and agent.log, nothing else to upload.
    let early = |error: AgentError, stage: Stage| {
        finish(
            &log,
            &uploader,
            Default::default(),
            Some(Failure { error, stage, step: None }),
            deadline,
        )
    };
    let mut config = match config {
        Ok(c) => c,
        Err(e) => return early(AgentError::InvalidJob(e), Stage::Config).await,
    };
    // A computer-use job's model, reached through the guard even when the job narrows it.
    if config.goal.is_some() {
        match config::Granted::of(manifest.model.as_ref()) {
            Ok(granted) => {
                config.egress = config.egress.clone().also_host(granted.endpoint.host_str().unwrap_or_default());
                config.model = Some(granted);
            }
            Err(e) => return early(AgentError::InvalidJob(e), Stage::Config).await,
        }
    }
    // The secrets the steps type: redacted from every line and text output from here on.
    let secrets = match &manifest.secrets {
        None => Default::default(),
        Some(links) => match manifest::take_secrets(links, &log).await {
            Ok(s) => s,
            Err(e) => return early(AgentError::SecretsUnavailable(e), Stage::Config).await,
        },
    };
    for (name, value) in &secrets {
        log.redact(name, value);
    }
    if let Some(missing) = config.steps.iter().filter_map(names::step::Step::secret).find(|n| !secrets.contains_key(*n)) {
        return early(AgentError::SecretsUnavailable(format!("the secret `{missing}` the steps type was not handed to the job")), Stage::Config).await;
    }
    log.info(
        "job started",
        json!({
            "target": config.target.as_ref().map(|t| t.url().as_str()),
            "steps": config.steps.len(),
            "options": config.options,
            "timeout_s": timeout.as_secs(),
            "egress_allow": !config.egress.is_empty(),
        }),
    );
    let (guard, run_dir, warm) = match warm {
        Some(Warm { guard, run_dir, browser }) => {
            guard.set_policy(config.egress.clone());
            (guard, run_dir, Some(browser))
        }
        None => match start_guard_and_scratch(&config.egress, &config.scratch, &log).await {
            Ok((guard, run_dir)) => (guard, run_dir, None),
            Err((error, stage)) => return early(error, stage).await,
        },
    };
    let ctx = Arc::new(Ctx {
        run_dir: run_dir.clone(),
        config,
        log: log.clone(),
        guard,
        work_deadline,
        stage: Mutex::new(Stage::Launch),
        step: Mutex::new(None),
        artifacts: Mutex::new(Default::default()),
        secrets,
        warm: Mutex::new(warm),
    });
    let mut task = tokio::spawn(job::run(ctx.clone()));
    let mut upload_deadline = deadline;
    let mut finished = false;
    let failure = tokio::select! {
        joined = &mut task => {
            finished = true;
            match joined {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(e) if e.is_panic() => Some(AgentError::Internal("the job panicked".into())),
            Err(e) => Some(AgentError::Internal(e.to_string())),
            }
        },
        _ = tokio::time::sleep_until(work_deadline) => Some(AgentError::Deadline(ctx.config.options.timeout_seconds)),
        _ = recv(&mut sigterm) => Some(terminated(&log, started, &mut upload_deadline)),
        _ = recv(&mut sigint) => Some(terminated(&log, started, &mut upload_deadline)),
    };
    if !finished {
        // Dropping the job drops its browser, which kills Chromium and chromedriver.
        task.abort();
        let _ = task.await;
    }
    browser::kill_descendants();
    let stage = ctx.stage();
    let step = ctx.current_step();
    let mut artifacts = std::mem::take(&mut *ctx.artifacts.lock().unwrap_or_else(|e| e.into_inner()));
    // Stopped before the page was captured (the deadline, a signal): the steps so far still go
    // into result.json.
    if artifacts.result.is_none() && !artifacts.steps.is_empty() {
        artifacts.result = Some(json!({
            "task_id": ctx.config.task_id,
            "kind": "script",
            "steps": artifacts.steps,
            "extracted": artifacts.extracted,
        }));
    }
    // The files the steps wrote, as result.json lists them.
    if let (Some(result), false) = (artifacts.result.as_mut(), artifacts.files.is_empty()) {
        result["files"] = artifacts
            .files
            .iter()
            .map(|(path, content_type, bytes)| json!({ "name": path, "content_type": content_type, "bytes": bytes.len() }))
            .collect();
    }
    // Chromium's profile takes a while to delete: do it while the uploads run.
    let cleanup = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&run_dir));
    let timings = artifacts.result.as_ref().map(|r| r["agent_timings_ms"].clone()).unwrap_or_default();
    let uploads_started = Instant::now();
    let code = finish(
        &log,
        &uploader,
        artifacts,
        failure.map(|e| Failure { error: e, stage, step }),
        upload_deadline,
    )
    .await;
    // After agent.log is uploaded: the metric lines go to stdout (CloudWatch) only.
    phase_metrics(&get, &timings, uploads_started.elapsed());
    let _ = tokio::time::timeout_at(deadline, cleanup).await;
    code
}

/// The job's phases as metric lines (`names::metrics::AGENT_PHASE`): those its result timed,
/// and the uploads.
fn phase_metrics(get: &dyn Fn(&str) -> Option<String>, timings: &serde_json::Value, uploads: Duration) {
    use names::metrics::{Phase, AGENT_PHASE};
    let namespace = get(names::env::agent::METRICS_NAMESPACE).filter(|n| !n.is_empty()).unwrap_or_else(|| names::metrics::DEFAULT_NAMESPACE.into());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    for phase in Phase::ALL {
        let ms = match phase {
            Phase::Upload => Some(uploads.as_millis() as f64),
            _ => timings.get(phase.as_str()).and_then(serde_json::Value::as_f64),
        };
        if let Some(ms) = ms {
            logging::metrics::emit(AGENT_PHASE.line(&namespace, now, &[(names::metrics::dim::PHASE, phase.as_str())], ms));
        }
    }
}

/// A warm slot's guard, run directory and browser, started before its job.
struct Warm {
    guard: proxy::Guard,
    run_dir: std::path::PathBuf,
    browser: browser::Browser,
}

/// Starts what a slot's job will need: the egress guard, its run directory and the browser
/// behind them, at the default viewport (the job's is set when it arrives). None when any of it
/// fails: the job then starts them itself, as a cold task does, and reports what fails then.
async fn prepare(get: &dyn Fn(&str) -> Option<String>, log: &Arc<Log>) -> Option<Warm> {
    let runtime = config::runtime_from_env(get)
        .inspect_err(|e| log.warn("the slot cannot start its browser early", json!({ "error": e })))
        .ok()?;
    let (guard, run_dir) = start_guard_and_scratch(&runtime.egress, &runtime.scratch, log)
        .await
        .inspect_err(|(e, _)| log.warn("the slot cannot start its browser early", json!({ "error": e.to_string() })))
        .ok()?;
    let cfg = browser::BrowserConfig {
        chromium: &runtime.chromium,
        chromedriver: &runtime.chromedriver,
        scratch: &run_dir,
        proxy: guard.addr,
        viewport: names::job::DEFAULT_VIEWPORT,
    };
    let launched = tokio::time::timeout(job::LAUNCH_CAP, browser::Browser::launch(&cfg, log))
        .await
        .unwrap_or_else(|_| Err("Chromium did not start in time".to_string()));
    match launched {
        Ok(browser) => {
            log.info("the slot's browser is ready", json!({ "version": browser.version }));
            Some(Warm { guard, run_dir, browser })
        }
        Err(error) => {
            log.warn("the slot cannot start its browser early", json!({ "error": error }));
            browser::kill_descendants();
            let _ = std::fs::remove_dir_all(&run_dir);
            None
        }
    }
}

/// The egress guard and a fresh run directory on the scratch volume; what failed, and in which
/// stage, otherwise.
async fn start_guard_and_scratch(
    egress: &guard::EgressPolicy,
    scratch: &std::path::Path,
    log: &Arc<Log>,
) -> Result<(proxy::Guard, std::path::PathBuf), (AgentError, Stage)> {
    let guard = proxy::start(egress.clone(), log.clone())
        .await
        .map_err(|e| (AgentError::Internal(format!("the egress guard could not start: {e}")), Stage::Launch))?;
    let run_dir = browser::tempdir(scratch, "run-")
        .map_err(|e| (AgentError::BrowserStart(format!("the scratch directory is not writable: {e}")), Stage::Launch))?;
    if run_dir.as_os_str().len() > 60 {
        log.warn(
            "the scratch path is long; Chromium's sockets below it may not fit",
            json!({ "path": run_dir }),
        );
    }
    Ok((guard, run_dir))
}

async fn recv(sig: &mut Option<tokio::signal::unix::Signal>) {
    match sig {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

fn terminated(
    log: &Log,
    started: Instant,
    upload_deadline: &mut tokio::time::Instant,
) -> AgentError {
    log.warn("SIGTERM received; uploading what there is", json!({}));
    *upload_deadline = (*upload_deadline).min(tokio::time::Instant::now() + SIGTERM_GRACE);
    arm_watchdog(
        started,
        started.elapsed() + SIGTERM_GRACE + Duration::from_secs(2),
    );
    AgentError::Terminated
}

/// Why a job failed, where: the stage, and the step's index while the steps ran.
struct Failure {
    error: AgentError,
    stage: Stage,
    step: Option<usize>,
}

/// Uploads what the job produced, `error.json` when it failed, and `agent.log` last, so the log
/// tells how the uploads went. Returns the exit code.
async fn finish(
    log: &Log,
    uploader: &Uploader,
    artifacts: page::Artifacts,
    failure: Option<Failure>,
    deadline: tokio::time::Instant,
) -> i32 {
    let result = artifacts
        .result
        .map(|r| serde_json::to_vec_pretty(&r).unwrap_or_default());
    let files = futures_util::future::join_all(artifacts.files.into_iter().map(|(path, content_type, bytes)| async move {
        uploader.put_named(&path, content_type, bytes, deadline).await
    }));
    let (shot, res, html, files) = tokio::join!(
        put_some(uploader, Output::Screenshot, artifacts.screenshot, deadline),
        put_some(uploader, Output::Result, result, deadline),
        put_some(
            uploader,
            Output::Html,
            artifacts.html.map(String::into_bytes),
            deadline
        ),
        files,
    );
    let mut failure = failure;
    if failure.is_none() {
        if let Some(e) = [shot, res, html].into_iter().chain(files).find_map(Result::err) {
            failure = Some(Failure { error: e, stage: Stage::Upload, step: None });
        }
    }
    let code = match &failure {
        None => exit::OK,
        Some(Failure { error: e, stage, step }) => {
            let mut error = json!({
                "code": e.code(),
                "message": e.to_string(),
                "stage": stage,
                "exit_code": e.exit_code(),
                "failed_at": log::now_rfc3339(),
            });
            if let Some(i) = step {
                error["step"] = json!(i);
            }
            log.error("job failed", error.clone());
            let body = serde_json::to_vec_pretty(&error).unwrap_or_default();
            if let Err(up) = uploader.put(Output::Error, body, deadline).await {
                log.error(
                    "error.json could not be uploaded",
                    json!({ "error": up.to_string() }),
                );
            }
            e.exit_code()
        }
    };
    if code == exit::OK {
        log.info("job completed", json!({ "exit_code": code }));
    }
    if uploader.can_upload(Output::Log) {
        if let Err(e) = uploader.put(Output::Log, log.contents(), deadline).await {
            log.error(
                "agent.log could not be uploaded",
                json!({ "error": e.to_string() }),
            );
        }
    }
    code
}

async fn put_some(
    uploader: &Uploader,
    output: Output,
    body: Option<Vec<u8>>,
    deadline: tokio::time::Instant,
) -> Result<(), AgentError> {
    match body {
        Some(body) => uploader.put(output, body, deadline).await,
        None => Ok(()),
    }
}
