//! Fair dispatch through the local stack: tenant A submits 200 jobs (3 may run at once), then
//! tenant B submits 5, with the agent replaced by `true` (the runner's test mode). Reports B's
//! wait from submit to start (median, p95) as dispatched, against the wait strict FIFO dispatch
//! would have given B in the same run (each B job behind all of A's backlog: its start after A's
//! last), and checks that every job completed and nothing reached the dead-letter queue.

use std::time::{Duration, Instant};

use local_stack::runner::AgentCommand;
use local_stack::stack::{LocalStack, Options};
use serde_json::{json, Value};

const A_JOBS: usize = 200;
const B_JOBS: usize = 5;
const MAX_RUNNING: u32 = 3;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let stack = LocalStack::start(Options {
        max_tasks: 20,
        tenant_limits: functions::config::TenantLimits::uniform(MAX_RUNNING, 1000),
        ..Options::quiet(&["tenant-a", "tenant-b"], AgentCommand::Trivial("true".into()))
    })
    .await
    .expect("the local stack starts");
    let client = reqwest::Client::new();
    let url = format!("{}/jobs", stack.api_url);
    let key = |tenant: &str| stack.keys.iter().find(|(t, _)| t == tenant).unwrap().1.clone();
    let (key_a, key_b) = (key("tenant-a"), key("tenant-b"));
    let submit = |key: String, i: usize| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let resp = client.post(&url).header(names::routes::API_KEY_HEADER, &key).json(&json!({"query": format!("job {i}")})).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 202);
            resp.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_string()
        }
    };
    let mut a = Vec::new();
    for i in 0..A_JOBS {
        a.push(submit(key_a.clone(), i).await);
    }
    // B arrives once A's backlog is there and A's first jobs have started.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let b_submitted = Instant::now();
    let mut b = Vec::new();
    for i in 0..B_JOBS {
        b.push(submit(key_b.clone(), i).await);
    }
    // Each job's start (when it was first seen past QUEUED), polled.
    let started_at = |ids: &[String], key: &str| {
        let (client, url, key, ids) = (client.clone(), url.clone(), key.to_string(), ids.to_vec());
        async move {
            let mut seen: Vec<Option<Instant>> = vec![None; ids.len()];
            let mut done = vec![false; ids.len()];
            let deadline = Instant::now() + Duration::from_secs(1200);
            while done.iter().any(|d| !d) && Instant::now() < deadline {
                for (i, id) in ids.iter().enumerate() {
                    if done[i] {
                        continue;
                    }
                    let job: Value = client.get(format!("{url}/{id}")).header(names::routes::API_KEY_HEADER, &key).send().await.unwrap().json().await.unwrap();
                    let status = job["status"].as_str().unwrap_or_default();
                    if status != "QUEUED" && seen[i].is_none() {
                        seen[i] = Some(Instant::now());
                    }
                    done[i] = ["COMPLETED", "FAILED", "CANCELLED"].contains(&status);
                    assert_ne!(status, "FAILED", "{job}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            assert!(done.iter().all(|d| *d), "jobs did not finish");
            seen.into_iter().map(|s| s.expect("every job started")).collect::<Vec<Instant>>()
        }
    };
    let (b_starts, a_starts) = tokio::join!(started_at(&b, &key_b), started_at(&a, &key_a));
    let a_last = a_starts.iter().max().copied().unwrap();
    let mut fair: Vec<f64> = b_starts.iter().map(|s| s.duration_since(b_submitted).as_secs_f64()).collect();
    let mut fifo: Vec<f64> = (0..B_JOBS).map(|_| a_last.duration_since(b_submitted).as_secs_f64()).collect();
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(|x, y| x.total_cmp(y));
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    println!("fairness: tenant A {A_JOBS} jobs (max_running {MAX_RUNNING}), then tenant B {B_JOBS}; agent `true`");
    println!("fairness: B's wait from submit to start: median {:.1} s, p95 {:.1} s (fair dispatch)", pct(&mut fair, 0.5), pct(&mut fair, 0.95));
    println!(
        "fairness: B's wait behind A's backlog (FIFO: after A's last start, {:.1} s after B's submit): median {:.1} s, p95 {:.1} s",
        a_last.duration_since(b_submitted).as_secs_f64(),
        pct(&mut fifo, 0.5),
        pct(&mut fifo, 0.95)
    );
    let sqs = aws_sdk_sqs::Client::new(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await);
    let dlq = sqs.get_queue_url().queue_name(names::queue::dlq_name(&names::defaults::name_prefix(names::defaults::PROJECT_NAME, names::defaults::ENVIRONMENT))).send().await.unwrap().queue_url.unwrap();
    let in_dlq = sqs.receive_message().queue_url(&dlq).max_number_of_messages(10).send().await.unwrap().messages().len();
    println!("fairness: {} jobs completed, {in_dlq} messages in the DLQ", A_JOBS + B_JOBS);
    stack.stop(false).await;
    assert_eq!(in_dlq, 0, "a waiting job reached the DLQ");
}
