//! The Fargate stand-in's provisioning time (`--provisioning-delay`): every task waits that long
//! after RunTask before its container runs, each on its own clock, so two jobs submitted together
//! both start one delay later, not one after the other. (The agent is `true`: the delay is all
//! there is to see.)

use std::time::{Duration, Instant};

use local_stack::runner::AgentCommand;
use local_stack::stack::{LocalStack, Options};
use serde_json::{json, Value};

const DELAY: Duration = Duration::from_secs(3);

mod support;

async fn call(stack: &LocalStack, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    support::call(stack, method, path, &stack.keys[0].1, body).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_waits_the_provisioning_delay_on_its_own_clock() {
    let stack = LocalStack::start(Options { max_tasks: 4, provisioning_delay: DELAY, ..Options::quiet(&["acme"], AgentCommand::Trivial("true".into())) })
    .await
    .expect("the local stack starts");
    let mut ids = Vec::new();
    for q in ["one", "two"] {
        ids.push(call(&stack, reqwest::Method::POST, "/jobs", Some(json!({"query": q}))).await["task_id"].as_str().unwrap().to_owned());
    }
    let started = Instant::now();
    let mut done = Vec::new();
    while done.len() < ids.len() {
        assert!(started.elapsed() < Duration::from_secs(60), "the jobs did not finish: {done:?}");
        done.clear();
        for id in &ids {
            let job = call(&stack, reqwest::Method::GET, &format!("/jobs/{id}"), None).await;
            if job["status"] == "COMPLETED" {
                done.push(job);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ms = |v: &Value| functions::time::parse_rfc3339(v.as_str().unwrap()).unwrap();
    let waits: Vec<i64> = done.iter().map(|j| ms(&j["started_at"]) - ms(&j["created_at"])).collect();
    for w in &waits {
        assert!(*w >= DELAY.as_millis() as i64, "a task ran before its provisioning ended: {waits:?} ms");
    }
    // Provisioned side by side: the second did not wait for the first's delay too.
    assert!((waits[0] - waits[1]).abs() < DELAY.as_millis() as i64, "provisioned one after the other: {waits:?} ms");
    println!("submit -> RUNNING with a {} s provisioning delay: {waits:?} ms", DELAY.as_secs());
    stack.stop(false).await;
}
