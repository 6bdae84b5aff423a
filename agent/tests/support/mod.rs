//! What the agent tests and the benchmark share: a moto S3 bucket with SDK-signed upload links
//! (testenv's), fixture pages on 127.0.0.1, and runners that start the real agent, as a
//! process or as the built image in a container the way Fargate runs it. Everything runs inside
//! testenv's loopback-only network namespace: the tests aim the browser at link-local and
//! private addresses to prove they are refused, and nothing may leave the machine even if the
//! guard had a hole.
#![allow(dead_code)]

use names::agent::exit;
use names::Output;
use names::job::ErrorCode;
use serde_json::Value;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use testenv::container::{Podman, RunSpec};
use testenv::taskdef::TaskDefinition;

pub const BUCKET: &str = "agent-test-outputs";

/// The services every test shares, started once per test binary and stopped when it exits.
pub struct Env {
    pub fixture: SocketAddr,
    pub moto_pid: u32,
    pub bucket: testenv::s3::Bucket,
    _moto: testenv::moto::Moto,
}

/// The shared services; first moves the calling test's thread into the loopback-only namespace
/// where they run.
pub fn env() -> &'static Env {
    testenv::netns::enter_or_panic();
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let moto = testenv::moto::Moto::start(&testenv::root()).unwrap_or_else(|e| panic!("{e}"));
        let bucket = testenv::s3::Bucket::create(&moto, BUCKET).unwrap_or_else(|e| panic!("{e}"));
        Env {
            fixture: start_fixture(),
            moto_pid: moto.pid(),
            bucket,
            _moto: moto,
        }
    })
}

impl Env {
    pub fn page(&self, path: &str) -> String {
        format!("http://{}{path}", self.fixture)
    }

    /// Reads an object back from S3, `None` when it does not exist.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.bucket.get(key).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// One finished agent run.
pub struct Run {
    pub task_id: String,
    pub code: i32,
    pub elapsed: Duration,
    pub stdout: String,
    /// A slot run: whether the slot's manifest was left behind (the job never taken).
    pub slot_manifest_left: Option<bool>,
    /// Container runs: what the job changed in the root filesystem (`podman diff`).
    pub root_changes: Option<Vec<String>>,
}

impl Run {
    pub fn object(&self, output: Output) -> Option<Vec<u8>> {
        env().get(&names::bucket::output_key(&self.task_id, output))
    }

    /// A file a step wrote (`files/invoice.pdf`).
    pub fn file(&self, name: &str) -> Option<Vec<u8>> {
        env().get(&names::bucket::file_key(&self.task_id, name))
    }

    pub fn json(&self, output: Output) -> Value {
        let bytes = self
            .object(output)
            .unwrap_or_else(|| panic!("{} was not uploaded\n{}", output.file_name(), self.stdout));
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", output.file_name()))
    }

    pub fn assert_code(&self, code: i32) {
        assert_eq!(self.code, code, "exit code; agent stdout:\n{}", self.stdout);
    }
}

/// The checks every successful job must pass: a PNG of the expected size, result.json, agent.log
/// of JSON lines, and no error.json.
pub fn assert_completed(run: &Run, width: u32, height: u32) -> Value {
    run.assert_code(exit::OK);
    let png = run
        .object(Output::Screenshot)
        .expect("screenshot.png uploaded");
    assert_eq!(png_size(&png), (width, height));
    let result = run.json(Output::Result);
    assert_eq!(result["task_id"], run.task_id.as_str());
    assert_eq!(result["screenshot"]["width"], width);
    assert_eq!(result["screenshot"]["height"], height);
    assert_log_uploaded(run);
    assert!(
        run.object(Output::Error).is_none(),
        "no error.json on success"
    );
    result
}

pub fn assert_log_uploaded(run: &Run) {
    let log = String::from_utf8(run.object(Output::Log).expect("agent.log uploaded")).unwrap();
    assert!(log.lines().count() >= 2, "{log}");
    for line in log.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert_eq!(v["task_id"], run.task_id.as_str());
    }
}

/// The checks every failed job must pass: error.json with the code and stage, the exit code,
/// and agent.log.
pub fn assert_failed(run: &Run, code: ErrorCode, exit_code: i32, stage: &str) -> Value {
    run.assert_code(exit_code);
    let error = run.json(Output::Error);
    assert_eq!(error["code"], code.as_str(), "{error}");
    assert_eq!(error["stage"], stage, "{error}");
    assert_eq!(error["exit_code"], exit_code);
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_log_uploaded(run);
    error
}

pub struct Options {
    /// `AGENT_EGRESS_ALLOW`; by default the fixture's origin and nothing else.
    pub egress_allow: Option<String>,
    /// Sends SIGTERM this long after the start (for a container: `podman stop`, as StopTask).
    pub sigterm_after: Option<Duration>,
    /// The job's task id (default: a unique one).
    pub task_id: Option<String>,
    /// More environment for the agent (after the job's).
    pub extra_env: Vec<(String, String)>,
    /// Container runs: names in the container's /etc/hosts (`--add-host`).
    pub hosts: Vec<(String, String)>,
    /// Smaller upload size caps than the outputs' own.
    pub caps: Vec<(Output, u64)>,
    /// The tenant secrets handed to the job (name, value).
    pub secrets: Vec<(String, String)>,
    /// Run as a warm slot: started without a job, which is handed over later (or never).
    pub slot: Option<SlotOptions>,
}

/// A warm slot's run: its job's manifest is written at the slot's place `hand_over` after the
/// start (never: `None`); the slot gives up `deadline` after the start; its links last `link`.
#[derive(Clone, Copy, Debug)]
pub struct SlotOptions {
    pub hand_over: Option<Duration>,
    pub deadline: Duration,
    pub link: Duration,
    /// The release link (the DELETE of the slot's manifest) is refused: its signature altered,
    /// which the emulator refuses as S3 does.
    pub release_refused: bool,
    /// The slot gets a wake link that every call refuses (a link with its signature altered):
    /// it must still find its job, looking at its manifest every 250 ms.
    pub wake_refused: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            egress_allow: Some(fixture_origin()),
            sigterm_after: None,
            task_id: None,
            extra_env: Vec::new(),
            hosts: Vec::new(),
            caps: Vec::new(),
            secrets: Vec::new(),
            slot: None,
        }
    }
}

/// The fixture server as an allow-list origin (`127.0.0.1:port`).
pub fn fixture_origin() -> String {
    env().fixture.to_string()
}

pub fn unique_task_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "t-{}-{}-{nanos:08x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The scenarios the process and container suites share; `run` starts the agent one way or the
/// other.
pub mod scenarios {
    use super::*;
    use serde_json::json;

    /// A full-page screenshot of the tall fixture: at the viewport's width, taller than it.
    pub fn full_page(run: impl Fn(Value, Options) -> Run) -> Run {
        let run = run(
            json!({ "url": env().page("/tall"), "options": { "full_page": true, "viewport": { "width": 800, "height": 600 } } }),
            Options::default(),
        );
        run.assert_code(exit::OK);
        let (w, h) = png_size(&run.object(Output::Screenshot).unwrap());
        assert_eq!(w, 800);
        assert!(h >= 3000, "full page height {h}");
        let result = run.json(Output::Result);
        assert_eq!(result["screenshot"]["full_page"], true);
        assert_eq!(result["screenshot"]["height"], h);
        run
    }

    /// A redirect from the fixture to `to`, refused by the guard with `needle` in the message.
    pub fn redirect_refused(run: impl Fn(Value, Options) -> Run, to: &str, needle: &str) -> Run {
        let url = format!(
            "{}?to={}",
            env().page("/redirect"),
            url::form_urlencoded::byte_serialize(to.as_bytes()).collect::<String>()
        );
        let run = run(json!({ "url": url }), Options::default());
        let error = assert_failed(&run, ErrorCode::EgressRefused, exit::EGRESS_REFUSED, "navigate");
        assert!(
            error["message"].as_str().unwrap().contains(needle),
            "{to}: {error}"
        );
        assert!(run.object(Output::Screenshot).is_none());
        run
    }

    /// A page that never loads: error.json at the shortest deadline, within `slack` after it and
    /// not before half of it.
    pub fn never_loading(run: impl Fn(Value, Options) -> Run, slack: Duration) -> Run {
        let timeout = *names::job::TIMEOUT_SECONDS.start();
        let run = run(
            json!({ "url": env().page("/hang"), "options": { "timeout_seconds": timeout } }),
            Options::default(),
        );
        let error = assert_failed(&run, ErrorCode::Timeout, exit::DEADLINE, "navigate");
        assert!(error["message"]
            .as_str()
            .unwrap()
            .contains(&timeout.to_string()));
        let deadline = Duration::from_secs(timeout.into());
        assert!(
            run.elapsed < deadline + slack,
            "exited after {:?}",
            run.elapsed
        );
        assert!(
            run.elapsed > deadline / 2,
            "gave up early: {:?}",
            run.elapsed
        );
        run
    }

    /// SIGTERM (StopTask) `after` the start: error.json `terminated`, the uploads, exit 143, all
    /// within `within` of the signal.
    pub fn stopped(run: impl Fn(Value, Options) -> Run, after: Duration, within: Duration) -> Run {
        let opts = Options {
            sigterm_after: Some(after),
            ..Options::default()
        };
        let run = run(
            json!({ "url": env().page("/hang"), "options": { "timeout_seconds": 60 } }),
            opts,
        );
        // Under load the browser may still be starting: either stage is right.
        let stage = run.json(Output::Error)["stage"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(stage == "navigate" || stage == "launch", "stage {stage}");
        assert_failed(&run, ErrorCode::Terminated, exit::TERMINATED, &stage);
        assert!(
            run.elapsed < after + within,
            "took {:?} after the signal at {after:?}",
            run.elapsed
        );
        run
    }
}

/// The job's manifest in the emulator, with a form for every output: its pre-signed GET.
pub fn manifest_url(task_id: &str, job: &Value) -> String {
    env().bucket.manifest(task_id, job).unwrap_or_else(|e| panic!("{e}"))
}

/// The job's part of the environment (what the process function's overrides carry: the
/// manifest's link and the task id; plus the fixture search engine and the allow-list).
pub fn job_env(task_id: &str, job: &Value, opts: &Options) -> Vec<(String, String)> {
    use names::env::agent as var;
    let mut env = vec![
        (var::MANIFEST_URL.to_string(), env().bucket.manifest_with_caps(task_id, job, &opts.caps, &opts.secrets).unwrap_or_else(|e| panic!("{e}"))),
        (var::TASK_ID.to_string(), task_id.to_string()),
        (
            var::SEARCH_URL_TEMPLATE.to_string(),
            names::agent::search_url_template(&format!("http://{}", env().fixture)),
        ),
    ];
    if let Some(allow) = &opts.egress_allow {
        env.push((var::EGRESS_ALLOW.to_string(), allow.clone()));
    }
    env.extend(opts.extra_env.iter().cloned());
    env
}

/// Runs the agent binary on `job` (its `task_id` is filled in) and waits for it.
pub fn run_agent(agent: &Path, mut job: Value, opts: Options) -> Run {
    use names::env::agent as var;
    env();
    let task_id = opts.task_id.clone().unwrap_or_else(unique_task_id);
    job["task_id"] = Value::String(task_id.clone());
    let scratch = scratch_of(&task_id);
    std::fs::create_dir_all(&scratch).unwrap();
    let mut cmd = std::process::Command::new(agent);
    cmd.envs(job_env(&task_id, &job, &opts))
        .env(var::SCRATCH_DIR, &scratch)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    if opts.egress_allow.is_none() {
        cmd.env_remove(var::EGRESS_ALLOW);
    }
    // A slot: no job's link; the slot's links; the manifest written there later.
    let slot_key = names::bucket::slot_manifest_key(&task_id.replace('-', ""));
    let hand_over = opts.slot.map(|slot| {
        let bucket = &env().bucket;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        cmd.env_remove(var::MANIFEST_URL)
            .env(var::SLOT_MANIFEST_URL, bucket.presign_get_for(&slot_key, slot.link.as_secs()).unwrap())
            .env(var::SLOT_RELEASE_URL, {
                let link = bucket.presign_delete(&slot_key, slot.link.as_secs()).unwrap();
                if slot.release_refused { link.replace("X-Amz-Signature=", "X-Amz-Signature=0") } else { link }
            })
            .env(var::SLOT_DEADLINE, (now + slot.deadline.as_secs()).to_string());
        if slot.wake_refused {
            let link = bucket.presign_get_for(&format!("{slot_key}.wake"), slot.link.as_secs()).unwrap();
            cmd.env(var::SLOT_WAKE_URL, link.replace("X-Amz-Signature=", "X-Amz-Signature=0"));
        }
        let (key, task, job) = (slot_key.clone(), task_id.clone(), job.clone());
        slot.hand_over.map(|after| {
            std::thread::spawn(move || {
                std::thread::sleep(after);
                env().bucket.manifest_at(&key, &task, &job).unwrap();
            })
        })
    });
    let pid_target = |child: &std::process::Child| {
        // SAFETY: signals the agent process this test started.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    };
    let (code, elapsed, stdout) = supervise(cmd, &job, &opts, pid_target);
    let leaked = processes_mentioning(&scratch);
    assert!(
        leaked.is_empty(),
        "processes outlived the agent: {leaked:?}\n{stdout}"
    );
    let _ = std::fs::remove_dir_all(&scratch);
    if let Some(Some(writer)) = hand_over {
        writer.join().unwrap();
    }
    Run {
        task_id,
        code,
        elapsed,
        stdout,
        slot_manifest_left: opts.slot.map(|_| env().get(&slot_key).is_some()),
        root_changes: None,
    }
}

/// Where a process run keeps its scratch directory.
pub fn scratch_of(task_id: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("at-{task_id}"))
}

/// The image the container tests run (`make image` builds it).
pub fn image() -> String {
    std::env::var("AGENT_IMAGE").unwrap_or_else(|_| testenv::container::LOCAL_IMAGE.to_string())
}

/// The task definition of generated/, evaluated once.
pub fn task_definition() -> &'static TaskDefinition {
    static TD: OnceLock<TaskDefinition> = OnceLock::new();
    TD.get_or_init(|| {
        TaskDefinition::from_generated(&testenv::root()).unwrap_or_else(|e| panic!("{e}"))
    })
}

pub fn podman() -> &'static Podman {
    static PODMAN: OnceLock<Podman> = OnceLock::new();
    PODMAN.get_or_init(|| {
        let podman = Podman::detect().unwrap_or_else(|e| panic!("{e}"));
        podman
            .require_image(&image())
            .unwrap_or_else(|e| panic!("{e}"));
        podman
    })
}

/// Runs the job in a container of the built image, as generated/'s task definition declares it
/// (limits, user, read-only root, scratch volume, init, capabilities, environment), with the job
/// as the process function's overrides would give it. Returns what the root filesystem changed.
pub fn run_container(mut job: Value, opts: Options) -> Run {
    env();
    let podman = podman();
    let td = task_definition();
    let task_id = opts.task_id.clone().unwrap_or_else(unique_task_id);
    job["task_id"] = Value::String(task_id.clone());
    let name = format!("agent-test-{task_id}");
    let secrets = td
        .container
        .secrets
        .iter()
        .map(|s| (s.name.clone(), format!("test value of {}", s.value_from)))
        .collect();
    let spec = RunSpec {
        name: name.clone(),
        image: image(),
        env: job_env(&task_id, &job, &opts),
        secrets,
        labels: vec![("infra-demo-test".into(), std::process::id().to_string())],
        hosts: opts.hosts.clone(),
        remove: false,
        cidfile: None,
    };
    let args = testenv::container::run_args(td, &spec).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = podman.command();
    cmd.args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    let stop_grace = td.container.stop_timeout.unwrap_or(30);
    let stopper = {
        let name = name.clone();
        move |_: &std::process::Child| {
            let name = name.clone();
            // As ECS StopTask: SIGTERM, SIGKILL after the stop timeout.
            std::thread::spawn(move || self::podman().stop(&name, stop_grace));
        }
    };
    let (code, elapsed, stdout) = supervise(cmd, &job, &opts, stopper);
    let changes = podman
        .diff(&name)
        .unwrap_or_else(|e| panic!("podman diff {name}: {e}"));
    podman.remove(&name);
    let baseline = runtime_root_changes();
    let changes = changes
        .into_iter()
        .filter(|c| !baseline.contains(c))
        .collect();
    Run {
        task_id,
        code,
        elapsed,
        stdout,
        slot_manifest_left: None,
        root_changes: Some(changes),
    }
}

/// What podman itself changes in a container's root filesystem before anything runs in it (the
/// mount points of /etc/hosts, /etc/resolv.conf and the like, as ECS writes them too): the diff
/// of a container of the same image and arguments whose entrypoint exits at once.
fn runtime_root_changes() -> &'static Vec<String> {
    static BASELINE: OnceLock<Vec<String>> = OnceLock::new();
    BASELINE.get_or_init(|| {
        let name = format!("agent-test-baseline-{}", std::process::id());
        let spec = RunSpec {
            name: name.clone(),
            image: image(),
            env: Vec::new(),
            secrets: task_definition()
                .container
                .secrets
                .iter()
                .map(|s| (s.name.clone(), String::new()))
                .collect(),
            labels: Vec::new(),
            hosts: Vec::new(),
            remove: false,
            cidfile: None,
        };
        let mut args = testenv::container::run_args(task_definition(), &spec)
            .unwrap_or_else(|e| panic!("{e}"));
        let image = args.pop().unwrap();
        args.extend(["--entrypoint".into(), "/bin/true".into(), image]);
        let status = podman()
            .command()
            .args(&args)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the baseline container failed: {status}");
        let changes = podman()
            .diff(&name)
            .unwrap_or_else(|e| panic!("podman diff {name}: {e}"));
        podman().remove(&name);
        changes
    })
}

/// Starts `cmd`, sends it SIGTERM (through `term`) when asked, and waits; the exit code, the
/// time taken and stdout.
fn supervise(
    mut cmd: std::process::Command,
    job: &Value,
    opts: &Options,
    term: impl Fn(&std::process::Child),
) -> (i32, Duration, String) {
    let started = Instant::now();
    let mut child = cmd.spawn().expect("the agent starts");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::BufReader::new(stdout).read_to_string(&mut s);
        s
    });
    let limit = Duration::from_secs(job["options"]["timeout_seconds"].as_u64().unwrap_or(120) + 30);
    let mut termed = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if let Some(after) = opts.sigterm_after {
            if !termed && started.elapsed() >= after {
                term(&child);
                termed = true;
            }
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the agent ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let stdout = reader.join().unwrap();
    (status.code().unwrap_or(-1), elapsed, stdout)
}

/// Live processes whose command line mentions `path` (Chromium's profile lives below it).
fn processes_mentioning(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.chars().all(|c| c.is_ascii_digit()))
        else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
        {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push(format!(
                "{pid}: {}",
                cmdline.chars().take(120).collect::<String>()
            ));
        }
    }
    found
}

/// Width and height of a PNG, checking its signature.
pub fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG signature");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

// ---- fixture pages -------------------------------------------------------------------------

/// A fixture site on a free loopback port (the shared one is `env().fixture`), for the test's
/// whole run.
pub fn start_fixture() -> SocketAddr {
    let fixture = testenv::fixture::Fixture::start(0).expect("the fixture site starts");
    let addr = fixture.addr();
    std::mem::forget(fixture);
    addr
}

#[allow(unused_imports)]
pub use testenv::fixture::{LOGIN_PASSWORD, SEARCH_RESULTS};
