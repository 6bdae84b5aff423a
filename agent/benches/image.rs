//! The image as Fargate would run it, measured against the image as it was before it dropped what
//! the agent never loads (`agent/image.sh build` with UNSLIMMED=1, tagged `UNSLIMMED_IMAGE`; built
//! here when missing), in one run: size and package count; a pull from a registry on loopback
//! (Debian's docker-registry) into empty storage, download and unpack, with gzip and with zstd
//! layers (what a cold task's image pull does), its bytes and time; the time from `podman run` to
//! the agent's first log line; and a job's wall time in the container against the same job (same
//! browser: the headless shell) as a bare agent process, alternating. Not a timed test: it reports
//! figures.

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{json, Value};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testenv::container::RunSpec;

const RUNS: usize = 5;
/// Pulls of each image and compression.
const PULLS: usize = 3;
/// The image as before (`agent/image.sh build` with UNSLIMMED=1).
const UNSLIMMED_IMAGE: &str = "infra-demo-agent:unslimmed";
const HEADLESS_SHELL: &str = "/usr/lib/chromium/chromium-headless-shell";

struct Sample {
    first_line: Duration,
    wall: Duration,
}

fn main() {
    let env = support::env();
    let podman = support::podman();
    let image = support::image();
    if podman.image_size(UNSLIMMED_IMAGE).is_none() {
        println!("bench-image: building {UNSLIMMED_IMAGE} (the image as before) with agent/image.sh");
        let built = Command::new(testenv::root().join("agent/image.sh"))
            .arg("build")
            .current_dir(testenv::root())
            .env("AGENT_IMAGE", UNSLIMMED_IMAGE)
            .env("UNSLIMMED", "1")
            .status();
        assert!(built.is_ok_and(|s| s.success()), "agent/image.sh build of {UNSLIMMED_IMAGE} failed");
    }
    let images = [("now", image.clone()), ("before", UNSLIMMED_IMAGE.to_string())];
    println!("bench-image: {image} (now) against {UNSLIMMED_IMAGE} (before)");
    for (name, image) in &images {
        let size = podman.image_size(image).unwrap_or(0);
        let packages = podman
            .command()
            .args(["run", "--rm", "--network", "none"])
            .args(testenv::container::ULIMITS)
            .args(["--entrypoint", "cat", image, "/usr/share/agent/packages.tsv"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
            .unwrap_or(0);
        println!("  {name:<6} size {:.0} MB ({:.0} MiB; target <= 400 MB), {packages} packages", size as f64 / 1e6, size as f64 / 1048576.0);
    }
    pulls(&podman, &images);

    let url = env.page("/page");
    let agent = Path::new(env!("CARGO_BIN_EXE_agent"));
    println!("  {RUNS} runs each, alternating, of a URL job on {url}");
    println!("  container: podman run as generated/'s task definition declares (read-only, user 10001, 1 vCPU, 2 GiB)");
    println!("  process:   {} with {HEADLESS_SHELL}", agent.display());
    for (_, image) in &images {
        let _ = run_container(image, &url);
    }
    let _ = run_process(agent, &url);
    let (mut now, mut before, mut p) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..RUNS {
        let x = run_container(&images[0].1, &url);
        let b = run_container(&images[1].1, &url);
        let y = run_process(agent, &url);
        println!(
            "  run {}: container now first line {:>5.0} ms, wall {:>5.0} ms | before {:>5.0} ms, {:>5.0} ms | process {:>5.0} ms, {:>5.0} ms",
            i + 1,
            ms(x.first_line),
            ms(x.wall),
            ms(b.first_line),
            ms(b.wall),
            ms(y.first_line),
            ms(y.wall)
        );
        now.push(x);
        before.push(b);
        p.push(y);
    }
    let med = |v: &[Sample], f: fn(&Sample) -> Duration| {
        let mut d: Vec<f64> = v.iter().map(|s| ms(f(s))).collect();
        d.sort_by(f64::total_cmp);
        d[d.len() / 2]
    };
    let (nf, bf, pf) = (med(&now, |s| s.first_line), med(&before, |s| s.first_line), med(&p, |s| s.first_line));
    let (nw, bw, pw) = (med(&now, |s| s.wall), med(&before, |s| s.wall), med(&p, |s| s.wall));
    println!("median start to first log line: container now {nf:.0} ms, before {bf:.0} ms, process {pf:.0} ms");
    println!("median job wall time:           container now {nw:.0} ms, before {bw:.0} ms, process {pw:.0} ms (now {:.2}x the process)", nw / pw);
}

fn job(url: &str) -> (String, Value) {
    let task_id = support::unique_task_id();
    (task_id.clone(), json!({ "task_id": task_id, "url": url }))
}

fn run_container(image: &str, url: &str) -> Sample {
    let (task_id, job) = job(url);
    let td = support::task_definition();
    let spec = RunSpec {
        name: format!("agent-bench-{task_id}"),
        image: image.to_string(),
        env: support::job_env(&task_id, &job, &support::Options::default()),
        secrets: td.container.secrets.iter().map(|s| (s.name.clone(), "bench".to_string())).collect(),
        labels: Vec::new(),
        hosts: Vec::new(),
        remove: true,
        cidfile: None,
    };
    let args = testenv::container::run_args(td, &spec).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = support::podman().command();
    cmd.args(args);
    timed(cmd, &task_id)
}

fn run_process(agent: &Path, url: &str) -> Sample {
    let (task_id, job) = job(url);
    let scratch = std::env::temp_dir().join(format!("ib-{task_id}"));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut cmd = Command::new(agent);
    cmd.envs(support::job_env(&task_id, &job, &support::Options::default()))
        .env(names::env::agent::SCRATCH_DIR, &scratch)
        .env(names::env::agent::CHROMIUM_PATH, HEADLESS_SHELL);
    let sample = timed(cmd, &task_id);
    let _ = std::fs::remove_dir_all(scratch);
    sample
}

/// Runs `cmd`, noting when its first stdout line arrives and when it exits; checks the job
/// completed and uploaded its screenshot.
fn timed(mut cmd: Command, task_id: &str) -> Sample {
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("starts");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut log = lines.next().and_then(Result::ok).unwrap_or_default();
    let first_line = started.elapsed();
    for line in lines.map_while(Result::ok) {
        log.push('\n');
        log.push_str(&line);
    }
    let status = child.wait().unwrap();
    let wall = started.elapsed();
    assert!(status.success(), "the job failed ({status}):\n{log}");
    let key = names::bucket::output_key(task_id, names::Output::Screenshot);
    assert!(support::env().get(&key).is_some(), "no screenshot uploaded");
    Sample { first_line, wall }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A registry on loopback (Debian's docker-registry), its storage a directory of its own; gone
/// with it.
struct Registry {
    child: std::process::Child,
    addr: String,
    dir: std::path::PathBuf,
}

impl Registry {
    fn start() -> Result<Registry, String> {
        let port = testenv::free_port().map_err(|e| e.to_string())?;
        let dir = std::env::temp_dir().join(format!("bench-registry-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).map_err(|e| e.to_string())?;
        let addr = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.join("data").display()
        );
        std::fs::write(dir.join("config.yml"), config).map_err(|e| e.to_string())?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("docker-registry (make system-packages installs it): {e}"))?;
        let registry = Registry { child, addr, dir };
        let started = Instant::now();
        while std::net::TcpStream::connect(&registry.addr).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                return Err(format!("docker-registry did not listen on {} within 10 s", registry.addr));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }
}

impl Registry {
    /// The manifest of `agent:<tag>` as the registry serves it (`GET /v2/agent/manifests/<tag>`).
    fn manifest(&self, tag: &str) -> Value {
        use std::io::{Read, Write};
        let Ok(mut conn) = std::net::TcpStream::connect(&self.addr) else { return Value::Null };
        let request = format!(
            "GET /v2/agent/manifests/{tag} HTTP/1.1\r\nHost: {}\r\nAccept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json\r\nConnection: close\r\n\r\n",
            self.addr
        );
        let mut answer = Vec::new();
        if conn.write_all(request.as_bytes()).is_err() || conn.read_to_end(&mut answer).is_err() {
            return Value::Null;
        }
        let body = answer.windows(4).position(|w| w == b"\r\n\r\n").map_or(&answer[..0], |i| &answer[i + 4..]);
        serde_json::from_slice(body).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Each image pushed to the registry with gzip and with zstd layers (`make deploy`'s
/// IMAGE_COMPRESSION), then pulled into empty storage (nothing shared with the images here), as
/// a cold task's pull does: the bytes a task downloads, and the pull's time, download and unpack,
/// median of `PULLS`.
fn pulls(podman: &testenv::container::Podman, images: &[(&str, String)]) {
    for (name, image) in images {
        for format in ["gzip", "zstd"] {
            // A registry of its own for each: podman reuses a layer a registry already holds in
            // another compression (its blob cache), and this podman cannot force a new one.
            let registry = match Registry::start() {
                Ok(r) => r,
                Err(e) => {
                    println!("  pull: skipped: {e}");
                    return;
                }
            };
            let target = format!("{}/agent:{name}-{format}", registry.addr);
            let pushed = podman
                .command()
                .args(["push", "-q", "--tls-verify=false", "--format", "oci", "--compression-format", format, image, &target])
                .status();
            if !pushed.is_ok_and(|s| s.success()) {
                println!("  pull ({name}, {format}): podman push to {target} failed");
                continue;
            }
            let manifest = registry.manifest(&format!("{name}-{format}"));
            let bytes: u64 = manifest["layers"].as_array().map(|l| l.iter().filter_map(|l| l["size"].as_u64()).sum()).unwrap_or(0);
            let mut times = Vec::new();
            for i in 0..PULLS {
                // (A short path: podman refuses a runroot over 50 characters.)
                let root = std::env::temp_dir().join(format!("bp{}-{i}", std::process::id()));
                let started = Instant::now();
                let pulled = podman
                    .command()
                    .arg("--root")
                    .arg(root.join("root"))
                    .arg("--runroot")
                    .arg(root.join("run"))
                    .args(["pull", "-q", "--tls-verify=false", &target])
                    .stdout(Stdio::null())
                    .status();
                let took = started.elapsed();
                // Storage made by podman (overlay layers): podman removes it, then the rest goes.
                let _ = podman.command().arg("--root").arg(root.join("root")).arg("--runroot").arg(root.join("run")).args(["system", "reset", "--force"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
                let _ = std::fs::remove_dir_all(&root);
                if pulled.is_ok_and(|s| s.success()) {
                    times.push(took);
                }
            }
            times.sort();
            match times.get(times.len() / 2) {
                Some(t) => println!(
                    "  pull ({name:<6}, {format}): {} layers, {:.1} MB ({:.1} MiB), pulled and unpacked in {:.2} s (median of {})",
                    manifest["layers"].as_array().map_or(0, Vec::len),
                    bytes as f64 / 1e6,
                    bytes as f64 / 1048576.0,
                    t.as_secs_f64(),
                    times.len()
                ),
                None => println!("  pull ({name}, {format}): every pull from {target} failed"),
            }
        }
    }
}
