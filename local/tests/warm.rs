//! A warm start through the local stack, with the agent image run as Fargate runs it and
//! Fargate's provisioning modelled (`--provisioning-delay`): a slot waits in its own container;
//! a job submitted then runs in it well before a cold task could have been provisioned, completes
//! with its outputs, and the pool is refilled. In the loopback-only network namespace.

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
    let podman = testenv::container::Podman::detect().unwrap_or_else(|e| panic!("{e}"));
    podman.require_image(testenv::container::LOCAL_IMAGE).unwrap_or_else(|e| panic!("{e} (make image builds it)"));
    let command = AgentCommand::Container { podman, image: testenv::container::LOCAL_IMAGE.into() };
    let stack = LocalStack::start(Options { provisioning_delay: PROVISIONING, warm_pool: 1, ..Options::quiet(&["acme"], command) })
    .await
    .expect("the local stack starts");
    // The slot is provisioned like any task, then waits.
    let started = Instant::now();
    while stack.slots_launched() < 1 {
        assert!(started.elapsed() < Duration::from_secs(60), "the warm slot never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    // The pool is refilled: a second slot was started.
    let refill = Instant::now();
    while stack.slots_launched() < 2 {
        assert!(refill.elapsed() < Duration::from_secs(60), "the pool was not refilled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.stop(false).await;
}
