//! Warm against cold starts through the local stack, in one run: 50 URL jobs submitted one per
//! second, the agent image run in containers, Fargate's provisioning modelled as a fixed delay on
//! every task (30 s, the seed's figure). Cold: every job waits for its task. Warm: a pool of slots
//! (sized to cover the delay of its own refills at this rate) takes them. Reports p50 and p95 of
//! submit -> RUNNING and submit -> COMPLETED from the jobs' own timestamps, and for cold starts the
//! control plane's time beside the fixed delay. Not a timed test: it reports figures.
//! Fargate's deprovisioning after a container exits is modelled too (`WARM_BENCH_DEPROVISION`, 10 s):
//! a job ends at its container's stop, not at the task's STOPPED that long after.
//! The warm run is made twice: slots that look at their manifest every 250 ms (before issue 28)
//! and slots woken through their wake queue (after), each warm job's time phase by phase, side
//! by side. `WARM_BENCH_POLLED=0` skips the polled run, `WARM_BENCH_COLD=0` the cold one.
//! `WARM_BENCH_JOBS`, `WARM_BENCH_DELAY` (seconds) and `WARM_BENCH_POOL` change the run.

use std::time::{Duration, Instant};

use local_stack::runner::AgentCommand;
use local_stack::stack::{LocalStack, Options};
use serde_json::{json, Value};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    testenv::netns::enter_or_panic();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(bench());
}

struct Figures {
    running: Vec<i64>,
    completed: Vec<i64>,
    warm: usize,
    /// Each warm job's phases (milliseconds), in `PHASES` order.
    phases: Vec<[i64; PHASES.len()]>,
}

/// A warm job's time, phase by phase, from the job's timestamps and its agent's own log lines:
/// each phase ends at the named mark.
const PHASES: [(&str, &str); 5] = [
    ("submit -> RUNNING (API, queue, dispatch, slot claimed)", "started_at"),
    ("RUNNING -> the slot took its job (poll, read, release)", "the slot took its job"),
    ("took -> page loaded (job set-up, viewport, navigation)", "page loaded"),
    ("page loaded -> job completed (capture, uploads)", "job completed"),
    ("job completed -> COMPLETED (agent.log, exit, stop event)", "finished_at"),
];

async fn bench() {
    let jobs = env_or("WARM_BENCH_JOBS", 50) as usize;
    let delay = Duration::from_secs(env_or("WARM_BENCH_DELAY", 30));
    let deprovision = Duration::from_secs(env_or("WARM_BENCH_DEPROVISION", 10));
    // Slots taken at one a second are replaced one delay later: the pool covers that, and more.
    let pool = env_or("WARM_BENCH_POOL", delay.as_secs() + 4) as u32;
    println!(
        "bench-warm: {jobs} URL jobs, one a second; Fargate provisioning modelled as {} s on every task, deprovisioning (container exit to the task's STOPPED) as {} s",
        delay.as_secs(),
        deprovision.as_secs()
    );
    let cold = if env_or("WARM_BENCH_COLD", 1) == 0 {
        println!("(WARM_BENCH_COLD=0: the cold run skipped)");
        None
    } else {
        Some(run(jobs, delay, deprovision, 0, false).await)
    };
    let polled = if env_or("WARM_BENCH_POLLED", 1) == 0 {
        println!("(WARM_BENCH_POLLED=0: the polled warm run skipped)");
        None
    } else {
        Some(run(jobs, delay, deprovision, pool, true).await)
    };
    let warm = run(jobs, delay, deprovision, pool, false).await;
    let ms = |v: i64| format!("{:.2} s", v as f64 / 1000.0);
    println!("                      submit -> RUNNING        submit -> COMPLETED");
    println!("                      p50        p95           p50        p95");
    for (name, f) in cold.iter().map(|c| ("cold", c)).chain(polled.iter().map(|p| ("polled", p))).chain([("woken", &warm)]) {
        println!(
            "{name:<6} ({:>2} warm)      {:<10} {:<13} {:<10} {}",
            f.warm,
            ms(pct(&f.running, 50)),
            ms(pct(&f.running, 95)),
            ms(pct(&f.completed, 50)),
            ms(pct(&f.completed, 95))
        );
    }
    let fixed = delay.as_millis() as i64;
    if let Some(cold) = &cold {
        println!(
            "cold, without the fixed {} s: the control plane's own time to RUNNING p50 {}, p95 {} (SQS, dispatch, RunTask, the task event)",
            delay.as_secs(),
            ms(pct(&cold.running, 50) - fixed),
            ms(pct(&cold.running, 95) - fixed)
        );
    }
    println!("warm pool of {pool}: {} of {jobs} jobs warm", warm.warm);
    println!(
        "warm submit -> COMPLETED, phase by phase (polled: slots look every 250 ms, {} warm jobs; woken: through their wake queue, {} warm jobs):",
        polled.as_ref().map_or(0, |p| p.phases.len()),
        warm.phases.len()
    );
    println!("  {:<58} {:>8} {:>8}   {:>8} {:>8}", "", "polled", "p95", "woken", "p95");
    let column = |f: Option<&Figures>, i: Option<usize>, p: usize| match f {
        Some(f) => {
            let v: Vec<i64> = match i {
                Some(i) => f.phases.iter().map(|ph| ph[i]).collect(),
                None => f.phases.iter().map(|ph| ph.iter().sum()).collect(),
            };
            ms(pct(&v, p))
        }
        None => "-".into(),
    };
    let rows = PHASES.iter().enumerate().map(|(i, (name, _))| (*name, Some(i))).chain([("submit -> COMPLETED (warm jobs)", None)]);
    for (name, i) in rows {
        println!(
            "  {name:<58} {:>8} {:>8}   {:>8} {:>8}",
            column(polled.as_ref(), i, 50),
            column(polled.as_ref(), i, 95),
            column(Some(&warm), i, 50),
            column(Some(&warm), i, 95)
        );
    }
}

/// How many of the pool's slots wait with their browser started (or given up starting it early).
async fn pool_ready(stack: &LocalStack) -> usize {
    let mut ready = 0;
    for slot in stack.app.store.slots().await.unwrap_or_default() {
        let Some(arn) = &slot.task_arn else { continue };
        let stream = names::logs::agent_stream(&functions::aws::ecs_task_id(arn));
        let Ok(page) = stack.app.logs.events(&stream, 0, 50, None).await else { continue };
        if page.events.iter().any(|e| e.message.contains("the slot's browser is ready") || e.message.contains("cannot start its browser early")) {
            ready += 1;
        }
    }
    ready
}

/// A warm job's phases: the marks in `PHASES` order, each the time since the one before. None
/// when a mark is missing (a job the pool did not take).
fn phases(job: &Value, lines: &[Value]) -> Option<[i64; PHASES.len()]> {
    let at = |k: &str| functions::time::parse_rfc3339(job[k].as_str()?);
    let logged = |msg: &str| lines.iter().find(|l| l["msg"] == msg).and_then(|l| functions::time::parse_rfc3339(l["ts"].as_str()?));
    let mut last = at("created_at")?;
    let mut out = [0; PHASES.len()];
    for (i, (_, mark)) in PHASES.iter().enumerate() {
        let t = if mark.ends_with("_at") { at(mark)? } else { logged(mark)? };
        out[i] = t - last;
        last = t;
    }
    Some(out)
}

fn pct(v: &[i64], p: usize) -> i64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    if s.is_empty() {
        return 0;
    }
    s[((s.len() - 1) * p).div_ceil(100)]
}

async fn run(jobs: usize, delay: Duration, deprovision: Duration, pool: u32, poll_slots: bool) -> Figures {
    let podman = testenv::container::Podman::detect().unwrap_or_else(|e| panic!("{e}"));
    podman.require_image(testenv::container::LOCAL_IMAGE).unwrap_or_else(|e| panic!("{e} (make image builds it)"));
    let command = AgentCommand::Container { podman, image: testenv::container::LOCAL_IMAGE.into() };
    let stack = LocalStack::start(Options {
        max_tasks: 4,
        tenant_limits: functions::config::TenantLimits::uniform(100, 1000),
        provisioning_delay: delay,
        deprovisioning_delay: deprovision,
        warm_pool: pool,
        poll_slots,
        ..Options::quiet(&["bench"], command)
    })
    .await
    .expect("the local stack starts");
    if pool > 0 {
        // The pool's slots provisioned and waiting.
        let started = Instant::now();
        while stack.slots_launched() < pool as usize {
            assert!(started.elapsed() < delay + Duration::from_secs(120), "the pool did not fill");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // And each slot's browser started (30 Chromiums starting at once on a small machine
        // take a while): jobs find the pool as they would after its first minutes.
        while pool_ready(&stack).await < pool as usize {
            assert!(started.elapsed() < delay + Duration::from_secs(300), "the pool's browsers did not start");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let client = reqwest::Client::new();
    let url = format!("{}/jobs", stack.api_url);
    let key = stack.keys[0].1.clone();
    let mut ids = Vec::new();
    let t0 = Instant::now();
    for i in 0..jobs {
        tokio::time::sleep_until((t0 + Duration::from_secs(i as u64)).into()).await;
        let page = format!("http://{}/page/{}", stack.fixture, i % 5 + 1);
        let resp = client.post(&url).header(names::routes::API_KEY_HEADER, &key).json(&json!({"url": page})).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 202);
        ids.push(resp.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_string());
    }
    let mut done: Vec<Option<Value>> = vec![None; ids.len()];
    let deadline = Instant::now() + delay + Duration::from_secs(600);
    while done.iter().any(Option::is_none) {
        assert!(Instant::now() < deadline, "jobs did not finish");
        for (i, id) in ids.iter().enumerate() {
            if done[i].is_some() {
                continue;
            }
            let job: Value = client.get(format!("{url}/{id}")).header(names::routes::API_KEY_HEADER, &key).send().await.unwrap().json().await.unwrap();
            match job["status"].as_str().unwrap_or_default() {
                "COMPLETED" => done[i] = Some(job),
                "FAILED" | "CANCELLED" => {
                    // Its agent's own lines say why.
                    let logs: Value = client.get(format!("{url}/{id}/logs")).header(names::routes::API_KEY_HEADER, &key).send().await.unwrap().json().await.unwrap_or_default();
                    let lines: Vec<&str> = logs["events"].as_array().into_iter().flatten().filter_map(|e| e["message"].as_str()).collect();
                    panic!("a job did not complete: {job}\nits agent's log:\n{}", lines.join("\n"));
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let at = |j: &Value, k: &str| functions::time::parse_rfc3339(j[k].as_str().unwrap_or_default()).unwrap_or(0);
    let jobs: Vec<Value> = done.into_iter().flatten().collect();
    let mut split = Vec::new();
    for job in jobs.iter().filter(|j| j["warm_start"] == true) {
        let id = job["task_id"].as_str().unwrap_or_default();
        let logs: Value = client.get(format!("{url}/{id}/logs")).header(names::routes::API_KEY_HEADER, &key).send().await.unwrap().json().await.unwrap_or_default();
        let lines: Vec<Value> = logs["events"].as_array().into_iter().flatten().filter_map(|e| serde_json::from_str(e["message"].as_str()?).ok()).collect();
        split.extend(phases(job, &lines));
    }
    let figures = Figures {
        running: jobs.iter().map(|j| at(j, "started_at") - at(j, "created_at")).collect(),
        completed: jobs.iter().map(|j| at(j, "finished_at") - at(j, "created_at")).collect(),
        warm: jobs.iter().filter(|j| j["warm_start"] == true).count(),
        phases: split,
    };
    stack.stop(false).await;
    figures
}
