//! A warm start through the local stack, with the agent image run as Fargate runs it and
//! Fargate's provisioning modelled (`--provisioning-delay`): a slot waits in its own container;
//! a job submitted then runs in it well before a cold task could have been provisioned, completes
//! with its outputs, and the pool is refilled. In the loopback-only network namespace. Every
//! metric line written on the way (the functions', and the agent's from its container) is
//! valid Embedded Metric Format, and they count what happened.

use std::time::{Duration, Instant};

use local_stack::runner::AgentCommand;
use local_stack::stack::{LocalStack, Options};
use serde_json::{json, Value};

const PROVISIONING: Duration = Duration::from_secs(5);

mod support;

async fn call(stack: &LocalStack, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    support::call(stack, method, path, &stack.keys[0].1, body).await.1
}

#[test]
fn a_job_runs_in_a_waiting_slot_long_before_a_cold_task_could_start() {
    testenv::netns::enter_or_panic();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(warm_start());
}

async fn warm_start() {
    let metrics = logging::metrics::buffer();
    let podman = testenv::container::Podman::detect().unwrap_or_else(|e| panic!("{e}"));
    podman.require_image(testenv::container::LOCAL_IMAGE).unwrap_or_else(|e| panic!("{e} (make image builds it)"));
    let command = AgentCommand::Container { podman, image: testenv::container::LOCAL_IMAGE.into() };
    let stack = LocalStack::start(Options { provisioning_delay: PROVISIONING, warm_pool: 1, ..Options::quiet(&["acme"], command) })
    .await
    .expect("the local stack starts");
    // The slot is provisioned like any task, then waits.
    support::first_slot(&stack).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let submitted = Instant::now();
    let created = call(&stack, reqwest::Method::POST, "/jobs", Some(json!({"url": format!("http://{}/page/1", stack.fixture)}))).await;
    let id = created["task_id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned();
    let mut running_after = None;
    let job = loop {
        let job = call(&stack, reqwest::Method::GET, &format!("/jobs/{id}"), None).await;
        if running_after.is_none() && ["RUNNING", "COMPLETED"].contains(&job["status"].as_str().unwrap_or("")) {
            running_after = Some(submitted.elapsed());
        }
        if ["COMPLETED", "FAILED"].contains(&job["status"].as_str().unwrap_or("")) {
            break job;
        }
        assert!(submitted.elapsed() < Duration::from_secs(90), "the job did not finish: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job["status"], "COMPLETED", "{job}");
    assert_eq!(job["warm_start"], true, "{job}");
    assert!(job["outputs"]["screenshot"].is_string() && job["outputs"]["result"].is_string(), "{job}");
    let running_after = running_after.unwrap();
    // A cold task would have waited the whole provisioning delay first.
    assert!(running_after < PROVISIONING, "RUNNING {running_after:?} after submit, not before a cold task's provisioning ({PROVISIONING:?})");
    println!("warm: submit -> RUNNING {} ms, -> COMPLETED {} ms (provisioning {} s)", running_after.as_millis(), submitted.elapsed().as_millis(), PROVISIONING.as_secs());
    // The slot was woken through its wake queue (issue 28), not found its job at a look of its
    // own: the wait long-polls, and the look that found the job followed the hand-over's message.
    let logs = call(&stack, reqwest::Method::GET, &format!("/jobs/{id}/logs"), None).await;
    let lines: Vec<Value> = logs["events"].as_array().into_iter().flatten().filter_map(|e| serde_json::from_str(e["message"].as_str()?).ok()).collect();
    let took = lines.iter().find(|l| l["msg"] == "the slot took its job").unwrap_or_else(|| panic!("no line of the take: {lines:?}"));
    assert_eq!(took["woken"], true, "woken by its wake message: {took}");
    // The pool is refilled: a second slot was started.
    let refill = Instant::now();
    while stack.slots_launched() < 2 {
        assert!(refill.elapsed() < Duration::from_secs(60), "the pool was not refilled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A sweep: the pool's and the tenants' counts.
    functions::reconcile::sweep(&stack.app).await.expect("the sweep runs");
    let store = stack.metrics.clone();
    stack.stop(false).await;
    // The stack's own store (what `make local` prints) has the same counts and figures.
    assert!(store.invalid.lock().unwrap().is_empty(), "{:?}", store.invalid.lock().unwrap());
    assert_eq!(store.stats("JobsFinished", "Status=COMPLETED").map(|s| s.count), Some(1));
    assert_eq!(store.stats("JobsStarted", "Start=warm").map(|s| s.sum), Some(1.0));
    let p50 = store.stats("TimeToRunning", "Start=warm").expect("a warm start's time").p50;
    assert!(p50 > 0.0 && p50 < PROVISIONING.as_millis() as f64, "{p50}");
    assert!(store.render().contains("AgentPhase Phase=navigate"), "{}", store.render());

    let lines = metrics.lock().unwrap().clone();
    let mut seen = std::collections::BTreeMap::<String, Vec<(Value, f64)>>::new();
    for line in &lines {
        let names = names::metrics::validate(line).unwrap_or_else(|e| panic!("not valid EMF ({e}): {line}"));
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], names::metrics::DEFAULT_NAMESPACE, "{line}");
        for n in names {
            let m = names::metrics::by_name(&n).unwrap_or_else(|| panic!("{n} is not a metric of names::metrics"));
            let dims: Value = m.dimensions.iter().map(|d| ((*d).to_string(), line[*d].clone())).collect::<serde_json::Map<_, _>>().into();
            seen.entry(n.clone()).or_default().push((dims, line[n.as_str()].as_f64().unwrap()));
        }
    }
    let values = |name: &str| seen.get(name).cloned().unwrap_or_default();
    let one = |name: &str, dims: Value| {
        let v = values(name);
        assert_eq!(v.iter().filter(|(d, _)| *d == dims).count(), 1, "{name} {dims} once: {v:?}");
        v.into_iter().find(|(d, _)| *d == dims).unwrap().1
    };
    assert_eq!(one("JobsSubmitted", json!({})), 1.0);
    assert_eq!(one("JobsStarted", json!({"Start": "warm"})), 1.0);
    assert_eq!(one("JobsFinished", json!({"Status": "COMPLETED"})), 1.0);
    assert!(values("JobsFailed").is_empty(), "{:?}", values("JobsFailed"));
    let to_running = one("TimeToRunning", json!({"Start": "warm"}));
    assert!(to_running < PROVISIONING.as_millis() as f64 && to_running <= running_after.as_millis() as f64 + 50.0, "{to_running} ms to RUNNING");
    let (run, total) = (one("RunTime", json!({})), one("TimeToFinish", json!({})));
    assert!(run > 0.0 && total >= run + to_running - 1.0, "run {run} ms, total {total} ms");
    assert!(one("QueueWait", json!({})) <= to_running);
    // The agent's phases, from its container's output.
    for phase in ["navigate", "capture", "upload"] {
        assert!(one("AgentPhase", json!({"Phase": phase})) >= 0.0);
    }
    // The slot that took the job and its replacement started; the sweep's counts.
    assert!(values("PoolRefills").len() >= 2, "{:?}", values("PoolRefills"));
    assert!(values("PoolIdle").iter().any(|(_, v)| *v >= 1.0), "{:?}", values("PoolIdle"));
    assert_eq!(one("TenantQueued", json!({"Tenant": "acme"})), 0.0);
    assert_eq!(one("JobsWaiting", json!({})), 0.0);
}
