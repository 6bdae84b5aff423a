//! The `jobsctl` client against the local stack, as a user runs it: the URL and key from the
//! environment, a job submitted and waited for with its files saved, its logs followed to the end,
//! a running job cancelled (and the waiting client's exit code saying so), refusals with their exit
//! codes, and a throttled submit retried after its Retry-After. In the loopback-only namespace.

use local_stack::runner::AgentCommand;
use local_stack::stack::{LocalStack, Options};
use serde_json::Value;
use std::time::{Duration, Instant};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

fn jobs(stack: &LocalStack, key: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_jobsctl"));
    cmd.args(args).env("JOBS_API_URL", &stack.api_url).env("JOBS_API_KEY", key).kill_on_drop(true);
    cmd
}

async fn run(stack: &LocalStack, args: &[&str]) -> Out {
    run_with_key(stack, &stack.keys[0].1, args).await
}

async fn run_with_key(stack: &LocalStack, key: &str, args: &[&str]) -> Out {
    let out = jobs(stack, key, args).output().await.expect("jobsctl runs");
    Out { code: out.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// One stack at a time: the stacks of one test process share its emulator.
#[test]
fn the_client_against_the_local_stack() {
    testenv::netns::enter_or_panic();
    let rt = runtime();
    rt.block_on(with_agents());
    rt.block_on(throttled());
}

async fn with_agents() {
    let podman = testenv::container::Podman::detect().unwrap_or_else(|e| panic!("{e}"));
    podman.require_image(testenv::container::LOCAL_IMAGE).unwrap_or_else(|e| panic!("{e} (make image builds it)"));
    let command = AgentCommand::Container { podman, image: testenv::container::LOCAL_IMAGE.into() };
    let stack = LocalStack::start(Options {
        model_scenario: Some("sign-in".into()),
        tenant_secrets: vec![local_stack::provision::TenantSecret { tenant: "acme".into(), name: "pw".into(), value: testenv::fixture::LOGIN_PASSWORD.into() }],
        ..Options::quiet(&["acme"], command)
    })
    .await
    .expect("the local stack starts");
    let dir = std::env::temp_dir().join(format!("jobsctl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    // Submit, wait (the status changes on stderr), download every file.
    let page = format!("http://{}/page/2", stack.fixture);
    let done = run(&stack, &["submit", "--url", &page, "--viewport", "1024x700", "--html", "--wait", "--download", dir.to_str().unwrap()]).await;
    assert_eq!(done.code, 0, "{done}");
    assert!(done.stderr.contains("QUEUED") || done.stderr.contains("PROVISIONING") || done.stderr.contains("RUNNING"), "{done}");
    assert!(done.stderr.contains("COMPLETED"), "{done}");
    let task_id = done.stdout.lines().find_map(|l| l.strip_prefix("task_id")).map(str::trim).unwrap_or_else(|| panic!("{done}")).to_string();
    for file in ["screenshot.png", "result.json", "agent.log", "page.html"] {
        let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}\n{done}"));
        assert!(!bytes.is_empty(), "{file} is empty");
    }
    let png = std::fs::read(dir.join("screenshot.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1024, "the viewport flag reached the job");
    let result: Value = serde_json::from_slice(&std::fs::read(dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["task_id"], task_id.as_str());

    // The logs, followed: the client stops by itself once the job has ended and its lines are in.
    let logs = run(&stack, &["logs", &task_id, "--follow", "--limit", "5"]).await;
    assert_eq!(logs.code, 0, "{logs}");
    assert!(logs.stdout.contains("job completed"), "paged through to the last line: {logs}");
    assert!(logs.stdout.lines().count() > 5, "more than one page: {logs}");
    let json_logs = run(&stack, &["logs", &task_id, "--json"]).await;
    for line in json_logs.stdout.lines() {
        let e: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(e["timestamp"].is_i64() && e["message"].is_string(), "{line}");
    }

    // status --json is the API's body.
    let status = run(&stack, &["status", &task_id, "--json"]).await;
    let job: Value = serde_json::from_str(&status.stdout).unwrap_or_else(|e| panic!("{e}: {status}"));
    assert_eq!(job["status"], "COMPLETED");
    assert!(job["outputs"]["screenshot"].is_string());

    // A job still running, cancelled: the client waiting on it exits 3.
    let slow = format!("http://{}/slow?seconds=120", stack.fixture);
    let mut waiting = jobs(&stack, &stack.keys[0].1, &["submit", "--url", &slow, "--json", "--wait"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    let id = loop {
        let list = run(&stack, &["list", "--status", "RUNNING", "--json"]).await;
        let page: Value = serde_json::from_str(&list.stdout).unwrap_or_else(|e| panic!("{e}: {list}"));
        if let Some(id) = page["jobs"][0]["task_id"].as_str() {
            break id.to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the slow job never ran: {list}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let cancel = run(&stack, &["cancel", &id]).await;
    assert_eq!(cancel.code, 0, "{cancel}");
    assert!(cancel.stdout.contains("CANCELLED"), "{cancel}");
    let waited = tokio::time::timeout(Duration::from_secs(30), waiting.wait()).await.expect("the waiting client ended").unwrap();
    assert_eq!(waited.code(), Some(3), "a cancelled job's exit code");
    let again = run(&stack, &["cancel", &id]).await;
    assert_eq!(again.code, 4, "{again}");
    assert!(again.stderr.contains("409 job_finished"), "{again}");

    // Usage: the two jobs of today, one completed, one cancelled, with their running time.
    let usage = run(&stack, &["usage", "--json"]).await;
    let u: Value = serde_json::from_str(&usage.stdout).unwrap_or_else(|e| panic!("{e}: {usage}"));
    assert_eq!((u["total"]["jobs"].as_u64(), u["total"]["completed"].as_u64(), u["total"]["cancelled"].as_u64()), (Some(2), Some(1), Some(1)), "{usage}");
    assert!(u["total"]["run_seconds"].as_f64().unwrap() > 0.0 && u["total"]["estimated_cost_usd"].as_f64().unwrap() > 0.0, "{usage}");
    let table = run(&stack, &["usage"]).await;
    assert_eq!(table.code, 0, "{table}");
    assert!(table.stdout.lines().any(|l| l.starts_with("total ") && l.split_whitespace().nth(1) == Some("2")), "{table}");
    let refused = run(&stack, &["usage", "--from", "yesterday"]).await;
    assert_eq!(refused.code, 4, "{refused}");
    assert!(refused.stderr.contains("from"), "{refused}");

    // Refusals: an unknown job, a wrong key, a body the API refuses, a malformed id.
    let missing = run(&stack, &["status", "00000000-0000-4000-8000-000000000000"]).await;
    assert_eq!(missing.code, 4, "{missing}");
    assert!(missing.stderr.contains("404 not_found") && missing.stderr.contains("tenant"), "{missing}");
    let forbidden = run_with_key(&stack, "not-a-key", &["list"]).await;
    assert_eq!(forbidden.code, 4, "{forbidden}");
    assert!(forbidden.stderr.contains("403") && forbidden.stderr.contains("API key"), "{forbidden}");
    let bad = run(&stack, &["submit", "--url", &page, "--viewport", "100x100"]).await;
    assert_eq!(bad.code, 4, "{bad}");
    assert!(bad.stderr.contains("options.viewport.width"), "{bad}");
    let typo = run(&stack, &["status", "nope"]).await;
    assert_eq!(typo.code, 2, "{typo}");
    let none = tokio::process::Command::new(env!("CARGO_BIN_EXE_jobsctl")).args(["list", "--terraform-dir", "/nonexistent"]).env_remove("JOBS_API_URL").env_remove("JOBS_API_KEY").output().await.unwrap();
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("--api-url"), "{}", String::from_utf8_lossy(&none.stderr));

    // A computer-use job: its goal, a secret by name, a schema for the answer; the answer, the
    // model's usage and the cost shown.
    let schema = dir.join("schema.json");
    std::fs::write(&schema, r#"{"type": "object", "required": ["greeting"]}"#).unwrap();
    let desk = format!("http://{}/desk", stack.fixture);
    let args = ["submit", "--goal", "Sign in as alice and tell me the greeting", "--start-url", &desk, "--secrets", "pw", "--max-steps", "5"];
    let goal = run(&stack, &[&args[..], &["--output-schema", schema.to_str().unwrap(), "--viewport", "1920x1080", "--wait"]].concat()).await;
    assert_eq!(goal.code, 0, "{goal}");
    assert!(goal.stdout.contains(r#"answer       {"greeting":"Welcome, alice"}"#), "{goal}");
    assert!(goal.stdout.contains("model_usage  3 turns") && goal.stdout.contains("cost         ~$"), "{goal}");
    // Each turn as it happened, from the job's log.
    assert!(goal.stderr.contains("turn 1:  (screenshot)") && goal.stderr.contains("turn 2: Signing in. (left_click, type, left_click, type, left_click)"), "{goal}");
    assert!(goal.stderr.contains(r#"turn 3: {"greeting": "Welcome, alice"} (answered)"#), "{goal}");
    // Its model usage counts in the tenant's day, beside its task's: in the JSON and the table.
    let shown = goal.stdout.lines().find(|l| l.starts_with("model_usage")).unwrap();
    let tokens_in: u64 = shown.split(", ").nth(1).and_then(|p| p.strip_suffix(" tokens in")).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{shown}"));
    let usage = run(&stack, &["usage", "--json"]).await;
    let u: Value = serde_json::from_str(&usage.stdout).unwrap_or_else(|e| panic!("{e}: {usage}"));
    assert_eq!(u["total"]["model_input_tokens"].as_u64(), Some(tokens_in), "{usage}");
    assert!(u["total"]["model_cost_usd"].as_f64().unwrap() > 0.0, "{usage}");
    let table = run(&stack, &["usage"]).await;
    let total = table.stdout.lines().find(|l| l.starts_with("total ")).unwrap_or_else(|| panic!("{table}"));
    assert_eq!(total.split_whitespace().nth(9), Some(tokens_in.to_string().as_str()), "model in: {table}");
    let unknown = run(&stack, &[&args[..], &["--model", "bedrock/anthropic.claude-opus-4-1-20250805-v1:0"]].concat()).await;
    assert_eq!(unknown.code, 4, "{unknown}");
    assert!(unknown.stderr.contains("model") && unknown.stderr.contains("allows"), "{unknown}");

    let _ = std::fs::remove_dir_all(&dir);
    stack.stop(false).await;
}

/// A submit over the tenant's queue limit, refused (exit 5) and retried after its Retry-After.
async fn throttled() {
    // One job may start, one may wait; Fargate's start is slow enough that the first stays started.
    let limits = functions::config::TenantLimits::uniform(1, 1);
    let stack = LocalStack::start(Options { tenant_limits: limits, provisioning_delay: Duration::from_secs(300), ..Options::quiet(&["acme"], AgentCommand::Trivial("true".into())) })
        .await
        .expect("the local stack starts");
    let url = format!("http://{}/page/1", stack.fixture);
    let first = run(&stack, &["submit", "--url", &url]).await;
    assert_eq!(first.code, 0, "{first}");
    let second = run(&stack, &["submit", "--url", &url, "--json"]).await;
    assert_eq!(second.code, 0, "{second}");
    let queued: Value = serde_json::from_str(&second.stdout).unwrap_or_else(|e| panic!("{e}: {second}"));
    let queued_id = queued["task_id"].as_str().unwrap().to_string();
    // Wait for the first to start and the second to queue behind it.
    let started = Instant::now();
    loop {
        let s = run(&stack, &["status", &queued_id, "--json"]).await;
        let job: Value = serde_json::from_str(&s.stdout).unwrap_or_else(|e| panic!("{e}: {s}"));
        if job["queued_reason"] == "TENANT_LIMIT" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the second job never waited for the first: {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // No retries: the refusal and its exit code.
    let refused = run(&stack, &["submit", "--url", &url, "--retries", "0"]).await;
    assert_eq!(refused.code, 5, "{refused}");
    assert!(refused.stderr.contains("429") && refused.stderr.contains("queued"), "{refused}");

    // One retry: the client waits the Retry-After (30 s); a place frees meanwhile, and the retry
    // creates the job.
    let t0 = Instant::now();
    let mut retrying = jobs(&stack, &stack.keys[0].1, &["submit", "--url", &url, "--retries", "1"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cancel = run(&stack, &["cancel", &queued_id]).await;
    assert_eq!(cancel.code, 0, "{cancel}");
    let out = tokio::time::timeout(Duration::from_secs(90), async {
        retrying.wait().await.unwrap();
        let mut stdout = String::new();
        let mut stderr = String::new();
        tokio::io::AsyncReadExt::read_to_string(retrying.stdout.as_mut().unwrap(), &mut stdout).await.unwrap();
        tokio::io::AsyncReadExt::read_to_string(retrying.stderr.as_mut().unwrap(), &mut stderr).await.unwrap();
        (retrying.try_wait().unwrap().and_then(|s| s.code()), stdout, stderr)
    })
    .await
    .expect("the retrying client ended");
    let (code, stdout, stderr) = out;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("retrying in 30 s"), "the server's Retry-After was honoured: {stderr}");
    assert!(t0.elapsed() >= Duration::from_secs(30), "retried before its Retry-After");
    assert_eq!(stdout.trim().len(), 36, "the new job's id: {stdout}");
    stack.stop(false).await;
}
