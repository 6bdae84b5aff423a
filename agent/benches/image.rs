//! The image as Fargate would run it, measured: its size and package count, the time from
//! `podman run` to the agent's first log line, and a job's wall time in the container against the
//! same job (same browser: the headless shell) as a bare agent process, alternating, in one run.
//! Not a timed test: it reports figures.

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{json, Value};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testenv::container::RunSpec;

const RUNS: usize = 5;
const HEADLESS_SHELL: &str = "/usr/lib/chromium/chromium-headless-shell";

struct Sample {
    first_line: Duration,
    wall: Duration,
}

fn main() {
    let env = support::env();
    let podman = support::podman();
    let image = support::image();
    let size = podman.image_size(&image).unwrap_or(0);
    let packages = support::podman()
        .command()
        .args(["run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"])
        .args(["--entrypoint", "cat", &image, "/usr/share/agent/packages.tsv"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0);
    println!("bench-image: {image}");
    println!("  size {:.0} MiB ({size} bytes; target <= 650 MB), {packages} packages", size as f64 / 1048576.0);
    let url = env.page("/page");
    let agent = Path::new(env!("CARGO_BIN_EXE_agent"));
    println!("  {RUNS} runs each, alternating, of a URL job on {url}");
    println!("  container: podman run as generated/'s task definition declares (read-only, user 10001, 1 vCPU, 2 GiB)");
    println!("  process:   {} with {HEADLESS_SHELL}", agent.display());
    let _ = run_container(&url);
    let _ = run_process(agent, &url);
    let (mut c, mut p) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        let x = run_container(&url);
        let y = run_process(agent, &url);
        println!(
            "  run {}: container first line {:>5.0} ms, wall {:>5.0} ms | process first line {:>5.0} ms, wall {:>5.0} ms",
            i + 1,
            ms(x.first_line),
            ms(x.wall),
            ms(y.first_line),
            ms(y.wall)
        );
        c.push(x);
        p.push(y);
    }
    let med = |v: &[Sample], f: fn(&Sample) -> Duration| {
        let mut d: Vec<f64> = v.iter().map(|s| ms(f(s))).collect();
        d.sort_by(f64::total_cmp);
        d[d.len() / 2]
    };
    let (cf, pf) = (med(&c, |s| s.first_line), med(&p, |s| s.first_line));
    let (cw, pw) = (med(&c, |s| s.wall), med(&p, |s| s.wall));
    println!("median start to first log line: container {cf:.0} ms, process {pf:.0} ms (+{:.0} ms for the container)", cf - pf);
    println!("median job wall time:           container {cw:.0} ms, process {pw:.0} ms, ratio {:.2}x", cw / pw);
    layers(&podman, &image);
}

fn job(url: &str) -> (String, Value) {
    let task_id = support::unique_task_id();
    (task_id.clone(), json!({ "task_id": task_id, "url": url }))
}

fn run_container(url: &str) -> Sample {
    let (task_id, job) = job(url);
    let td = support::task_definition();
    let spec = RunSpec {
        name: format!("agent-bench-{task_id}"),
        image: support::image(),
        env: support::job_env(&task_id, &job, &support::Options::default()),
        secrets: td.container.secrets.iter().map(|s| (s.name.clone(), "bench".to_string())).collect(),
        labels: Vec::new(),
        hosts: Vec::new(),
        remove: true,
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

/// The image's layers as a registry stores them, gzip against zstd (`make deploy`'s
/// IMAGE_COMPRESSION): what a cold task downloads, and how long unpacking them takes here (one
/// core, to /dev/null: the part of a Fargate cold start that zstd shortens).
fn layers(podman: &testenv::container::Podman, image: &str) {
    for format in ["gzip", "zstd"] {
        let dir = std::env::temp_dir().join(format!("bench-layers-{format}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pushed = podman
            .command()
            .args(["push", "-q", "--format", "oci", "--compression-format", format, image])
            .arg(format!("oci:{}:agent", dir.display()))
            .status();
        if !pushed.is_ok_and(|s| s.success()) {
            println!("layers ({format}): podman push to an OCI directory failed");
            continue;
        }
        let blob = |digest: &str| dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
        let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let manifest: Value = serde_json::from_slice(&std::fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap()).unwrap();
        let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
        let bytes: u64 = layers.iter().filter_map(|l| l["size"].as_u64()).sum();
        let started = Instant::now();
        for l in &layers {
            let file = std::fs::File::open(blob(l["digest"].as_str().unwrap())).unwrap();
            let ok = Command::new(format).arg("-dc").stdin(file).stdout(Stdio::null()).status().is_ok_and(|s| s.success());
            assert!(ok, "{format} -dc of a layer failed");
        }
        let unpack = started.elapsed();
        println!(
            "layers ({format}): {} layers, {:.1} MiB to download, {:.2} s to decompress",
            layers.len(),
            bytes as f64 / 1048576.0,
            unpack.as_secs_f64()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
