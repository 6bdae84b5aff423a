//! Load through the local stack: 1000 jobs submitted over HTTP with the agent replaced by `true`
//! (the runner's test mode), so what is measured is the control plane — gateway, submit, queue,
//! process, RunTask, the Fargate stand-in, reconcile — against the emulator. Reports throughput and
//! checks that every job reached COMPLETED, none was lost and none ran twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use local_stack::runner::AgentCommand;
use local_stack::stack::{LocalStack, Options};
use serde_json::{json, Value};

const JOBS: usize = 1000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let jobs: usize = std::env::var("LOAD_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(JOBS);
    // The usage plan would throttle a single key long before the quiet stack's rate limit; the
    // load test measures the pipeline behind the gateway.
    let stack = LocalStack::start(Options {
        max_tasks: 50,
        // One tenant sends every job: its limits are the stack's.
        tenant_limits: functions::config::TenantLimits::uniform(50, 100_000),
        ..Options::quiet(&["load-tenant"], AgentCommand::Trivial("true".into()))
    })
    .await
    .expect("the local stack starts");
    let client = reqwest::Client::new();
    let key = stack.keys[0].1.clone();
    let url = format!("{}/jobs", stack.api_url);

    let started = Instant::now();
    let mut ids = Vec::with_capacity(jobs);
    for i in 0..jobs {
        let resp = client.post(&url).header(names::routes::API_KEY_HEADER, &key).json(&json!({"query": format!("load {i}")})).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 202);
        let body: Value = resp.json().await.unwrap();
        ids.push(body["task_id"].as_str().unwrap().to_string());
    }
    let submitted = started.elapsed();

    // Poll until every job is terminal (by listing, newest first, a page at a time).
    let mut done: HashMap<String, String> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(1800);
    while done.len() < jobs && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(2)).await;
        for id in &ids {
            if done.contains_key(id) {
                continue;
            }
            let job: Value = client.get(format!("{url}/{id}")).header(names::routes::API_KEY_HEADER, &key).send().await.unwrap().json().await.unwrap();
            let status = job["status"].as_str().unwrap_or("").to_string();
            if ["COMPLETED", "FAILED", "CANCELLED"].contains(&status.as_str()) {
                done.insert(id.clone(), status);
            } else {
                break; // jobs finish roughly in order; check the rest next round
            }
        }
    }
    let elapsed = started.elapsed();
    let completed = done.values().filter(|s| *s == "COMPLETED").count();
    let launches = stack.launches.lock().unwrap().clone();
    let ran_twice = launches.values().filter(|n| **n > 1).count();
    let never_ran = ids.iter().filter(|id| !launches.contains_key(*id)).count();
    println!("load: {jobs} jobs submitted in {:.1} s ({:.1} jobs/s accepted)", submitted.as_secs_f64(), jobs as f64 / submitted.as_secs_f64());
    println!(
        "load: {completed}/{jobs} COMPLETED in {:.1} s end to end ({:.2} jobs/s); {} lost, {ran_twice} ran twice, {never_ran} never ran",
        elapsed.as_secs_f64(),
        completed as f64 / elapsed.as_secs_f64(),
        jobs - done.len()
    );
    stack.stop(false).await;
    assert_eq!(completed, jobs, "every job must complete");
    assert_eq!(ran_twice, 0, "no job may run twice");
}
