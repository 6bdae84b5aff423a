//! The agent's whole job against bare `chromium --headless --screenshot` of the same fixture
//! page, and a 10-step scripted job against the same 10 steps in Python Playwright driving the
//! same Chromium, each pair side by side in one run: wall time and peak RSS of the whole process
//! tree (agent or Python and Playwright's driver, chromedriver, Chromium and its helpers). Prints
//! medians and ratios; not a timed test.

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 7;

struct Sample {
    code: Option<i32>,
    wall: Duration,
    /// Peak of the summed proportional set sizes of the process tree: shared pages (the
    /// Chromium binary every helper maps) count once in total.
    peak_pss: u64,
    /// Peak resident set of the largest single process (what `time -v` calls max RSS).
    peak_max_rss: u64,
}

fn main() {
    // Orphans (Chromium's crash handler double-forks) stay below this process and are counted.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    let env = support::env();
    let url = env.page("/page");
    let agent = Path::new(env!("CARGO_BIN_EXE_agent"));
    let chromium = std::env::var(names::env::agent::CHROMIUM_PATH)
        .unwrap_or_else(|_| agent::config::DEFAULT_CHROMIUM.to_string());
    println!("bench-agent: {RUNS} runs each, alternating, on {url}");
    println!(
        "  agent:  {} (chromedriver + Chromium behind the egress guard, upload to moto S3)",
        agent.display()
    );
    println!("  bare:   {chromium} --headless --screenshot");
    // Warm the page cache for both.
    let _ = run_agent_once(agent, &url, env.moto_pid);
    let _ = run_bare_once(&chromium, &url, env.moto_pid);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        let x = run_agent_once(agent, &url, env.moto_pid);
        let y = run_bare_once(&chromium, &url, env.moto_pid);
        println!(
            "  run {}: agent {:>5.0} ms, PSS {:>5.1} MiB, max RSS {:>5.1} MiB | bare {:>5.0} ms, PSS {:>5.1} MiB, max RSS {:>5.1} MiB",
            i + 1,
            ms(x.wall),
            mib(x.peak_pss),
            mib(x.peak_max_rss),
            ms(y.wall),
            mib(y.peak_pss),
            mib(y.peak_max_rss)
        );
        a.push(x);
        b.push(y);
    }
    let med = |v: &[Sample], f: fn(&Sample) -> f64| median(v.iter().map(f));
    let report = |what: &str, unit: &str, f: fn(&Sample) -> f64| {
        let (x, y) = (med(&a, f), med(&b, f));
        println!("median {what:<22} agent {x:>7.1} {unit}, bare chromium {y:>7.1} {unit}, ratio {:.2}x (target <= 1.25x)", x / y);
    };
    report("wall time:", "ms", |s| ms(s.wall));
    report("peak PSS (tree):", "MiB", |s| mib(s.peak_pss));
    report("peak RSS (largest):", "MiB", |s| mib(s.peak_max_rss));
    println!(
        "(PSS: proportional set sizes of agent + chromedriver + every Chromium process, summed and"
    );
    println!(" sampled every 5 ms; RSS of the largest process is the figure `time -v` reports)");
    scripted(agent, &chromium, env.moto_pid);
}

/// The bench's script: sign in, choose a plan, go to the invoices, pull values out.
fn ten_steps(origin: &str) -> serde_json::Value {
    json!([
        { "action": "goto", "url": format!("{origin}/portal") },
        { "action": "type", "selector": "#user", "text": "ada" },
        { "action": "type", "selector": "#password", "text": support::LOGIN_PASSWORD },
        { "action": "select", "selector": "#plan", "value": "team" },
        { "action": "click", "selector": "#go" },
        { "action": "wait_for", "selector": "#welcome" },
        { "action": "extract", "name": "plan", "selector": "#plan" },
        { "action": "click", "selector": "#invoices" },
        { "action": "wait_for", "url": "page=1" },
        { "action": "extract", "name": "numbers", "selector": ".number", "all": true },
    ])
}

/// The agent's 10-step job (uploads included) against agent/benches/playwright_steps.py (the same
/// steps, the final screenshot and the values written to files), alternating.
fn scripted(agent: &Path, chromium: &str, moto: u32) {
    let python = testenv::root().join(".tools/bench-venv/bin/python");
    assert!(python.exists(), "{} is missing: `scripts/tools.sh bench` installs Playwright (make bench-agent does)", python.display());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/playwright_steps.py");
    let origin = format!("http://{}", support::fixture_origin());
    let steps = ten_steps(&origin);
    println!("bench-agent: a 10-step script, {RUNS} runs each, alternating, on {origin}/portal");
    println!("  agent:      the job {{\"steps\": [10 steps]}}: manifest, Chromium, steps, capture, uploads");
    println!("  playwright: {} (Python Playwright, the same Chromium)", script.display());
    let run_agent = || {
        let task_id = support::unique_task_id();
        let scratch = scratch_dir(&task_id);
        let mut cmd = std::process::Command::new(agent);
        cmd.env(names::env::agent::MANIFEST_URL, support::manifest_url(&task_id, &json!({ "task_id": task_id, "steps": steps })))
            .env(names::env::agent::EGRESS_ALLOW, support::fixture_origin())
            .env(names::env::agent::SCRATCH_DIR, &scratch)
            .env(names::env::agent::CHROMIUM_PATH, chromium)
            .stdout(std::fs::File::create(scratch.with_extension("log")).unwrap());
        let sample = measure(cmd, moto);
        let log = std::fs::read_to_string(scratch.with_extension("log")).unwrap_or_default();
        assert_eq!(sample.code, Some(0), "the agent failed:\n{log}");
        let result: serde_json::Value = serde_json::from_slice(&support::env().get(&names::bucket::output_key(&task_id, names::Output::Result)).expect("result.json")).unwrap();
        assert_eq!(result["extracted"]["numbers"], json!(["INV-101", "INV-102", "INV-103"]), "{result}");
        let _ = std::fs::remove_file(scratch.with_extension("log"));
        let _ = std::fs::remove_dir_all(scratch);
        (sample, result)
    };
    let run_playwright = || {
        let scratch = scratch_dir(&support::unique_task_id());
        let mut cmd = std::process::Command::new(&python);
        cmd.arg(&script).arg(chromium).arg(&origin).arg(support::LOGIN_PASSWORD).arg(&scratch)
            .env("HOME", &scratch)
            .stdout(std::process::Stdio::null());
        let sample = measure(cmd, moto);
        assert_eq!(sample.code, Some(0), "the Playwright script failed");
        let result: serde_json::Value = serde_json::from_slice(&std::fs::read(scratch.join("result.json")).unwrap()).unwrap();
        assert_eq!(result["extracted"]["numbers"], json!(["INV-101", "INV-102", "INV-103"]), "{result}");
        assert!(scratch.join("screenshot.png").exists());
        let _ = std::fs::remove_dir_all(scratch);
        sample
    };
    let _ = (run_agent(), run_playwright());
    let (mut a, mut b, mut results) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..RUNS {
        let ((x, result), y) = (run_agent(), run_playwright());
        results.push(result);
        println!(
            "  run {}: agent {:>5.0} ms, PSS {:>5.1} MiB | playwright {:>5.0} ms, PSS {:>5.1} MiB",
            i + 1,
            ms(x.wall),
            mib(x.peak_pss),
            ms(y.wall),
            mib(y.peak_pss)
        );
        a.push(x);
        b.push(y);
    }
    let med = |v: &[Sample], f: fn(&Sample) -> f64| median(v.iter().map(f));
    let (x, y) = (med(&a, |s| ms(s.wall)), med(&b, |s| ms(s.wall)));
    println!("median wall time:        agent {x:>7.1} ms, playwright {y:>7.1} ms, ratio {:.2}x (target <= 0.80x)", x / y);
    let (x, y) = (med(&a, |s| mib(s.peak_pss)), med(&b, |s| mib(s.peak_pss)));
    println!("median peak PSS (tree):  agent {x:>7.1} MiB, playwright {y:>7.1} MiB, ratio {:.2}x", x / y);
    // Where the agent's time goes: its own timings and each step's, medians over the runs.
    let timing = |f: &dyn Fn(&serde_json::Value) -> Option<f64>| median(results.iter().filter_map(f));
    let phases: Vec<String> = ["browser_start", "steps", "capture"]
        .iter()
        .map(|p| format!("{p} {:.0} ms", timing(&|r| r["agent_timings_ms"][*p].as_f64())))
        .collect();
    let steps: Vec<String> = (0..10)
        .map(|i| format!("{} {:.0}", results[0]["steps"][i]["action"].as_str().unwrap_or("?"), timing(&|r| r["steps"][i]["ms"].as_f64())))
        .collect();
    println!("agent, median: {}; steps (ms): {}", phases.join(", "), steps.join(", "));
}

fn run_agent_once(agent: &Path, url: &str, moto: u32) -> Sample {
    let task_id = support::unique_task_id();
    let scratch = scratch_dir(&task_id);
    let mut cmd = std::process::Command::new(agent);
    cmd.env(
        names::env::agent::MANIFEST_URL,
        support::manifest_url(&task_id, &json!({ "task_id": task_id, "url": url })),
    )
    .env(names::env::agent::EGRESS_ALLOW, support::fixture_origin())
    .env(names::env::agent::SCRATCH_DIR, &scratch)
    .stdout(std::fs::File::create(scratch.with_extension("log")).unwrap());
    let sample = measure(cmd, moto);
    if sample.code != Some(0) {
        let log = std::fs::read_to_string(scratch.with_extension("log")).unwrap_or_default();
        panic!("the agent failed ({:?}):\n{log}", sample.code);
    }
    let _ = std::fs::remove_file(scratch.with_extension("log"));
    assert!(
        support::env()
            .get(&names::bucket::output_key(
                &task_id,
                names::Output::Screenshot
            ))
            .is_some(),
        "the agent uploaded no screenshot"
    );
    let _ = std::fs::remove_dir_all(scratch);
    sample
}

fn run_bare_once(chromium: &str, url: &str, moto: u32) -> Sample {
    let scratch = scratch_dir(&support::unique_task_id());
    let shot = scratch.join("bare.png");
    let mut cmd = std::process::Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--window-size=1280,800",
    ])
    .arg(format!(
        "--user-data-dir={}",
        scratch.join("profile").display()
    ))
    .arg(format!("--screenshot={}", shot.display()))
    .arg(url)
    .env("HOME", &scratch)
    .env("TMPDIR", &scratch)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let sample = measure(cmd, moto);
    assert_eq!(sample.code, Some(0), "bare chromium failed");
    assert!(shot.exists(), "bare chromium wrote no screenshot");
    let _ = std::fs::remove_dir_all(scratch);
    sample
}

fn scratch_dir(id: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ab-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd` to its end while a thread samples the resident set of every process below this
/// one except the moto server.
fn measure(mut cmd: std::process::Command, moto: u32) -> Sample {
    let done = Arc::new(AtomicBool::new(false));
    let peak_pss = Arc::new(AtomicU64::new(0));
    let peak_max_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak_pss, peak_max_rss) = (done.clone(), peak_pss.clone(), peak_max_rss.clone());
        std::thread::spawn(move || {
            let me = std::process::id() as i32;
            while !done.load(Ordering::Relaxed) {
                let tree: Vec<i32> = agent::browser::descendants(me)
                    .into_iter()
                    .filter(|&p| p as u32 != moto && !descends_from(p, moto as i32))
                    .collect();
                let pss: u64 = tree.iter().map(|&p| pss_bytes(p)).sum();
                let max_rss = tree.iter().map(|&p| rss_bytes(p)).max().unwrap_or(0);
                peak_pss.fetch_max(pss, Ordering::Relaxed);
                peak_max_rss.fetch_max(max_rss, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let started = Instant::now();
    let status = cmd.status().expect("the command runs");
    let wall = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    // Whatever is left (a lingering crash handler) is not part of the next run.
    agent::browser::kill_descendants_except(&[moto as i32]);
    Sample {
        code: status.code(),
        wall,
        peak_pss: peak_pss.load(Ordering::Relaxed),
        peak_max_rss: peak_max_rss.load(Ordering::Relaxed),
    }
}

fn descends_from(pid: i32, ancestor: i32) -> bool {
    let mut p = pid;
    for _ in 0..64 {
        let Some(pp) = ppid(p) else { return false };
        if pp == ancestor {
            return true;
        }
        if pp <= 1 {
            return false;
        }
        p = pp;
    }
    false
}

fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn pss_bytes(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Pss:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

fn rss_bytes(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
