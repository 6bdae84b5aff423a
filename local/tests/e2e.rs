//! End to end, as a client would: starts `local-stack` (the binary `make local` runs) with its
//! agents in containers of the built image, then over HTTP submits a job, polls it to COMPLETED,
//! downloads its screenshot and result through the pre-signed links, pages through its logs;
//! cancels a second, slow job while its container runs; checks tenancy, a missing key and the
//! burst limit; stops the stack with Ctrl-C (SIGINT) and checks nothing is left running. All of it
//! inside a loopback-only network namespace (testenv::netns).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// test-tenant's secret; nothing the stack keeps or shows may hold it.
const SECRET: &str = "e2e-Secret\"<value>&1";

struct Stack {
    child: Child,
    api: String,
    keys: Vec<String>,
    emulator_port: String,
    agents: String,
    /// The fixture pages' origin (`http://127.0.0.1:port`).
    fixture: String,
    /// The first tenant's webhook signing secret.
    signing_secret: String,
    /// The port webhooks may go to (`--webhook-allow`).
    webhook_port: u16,
}

/// A failing test still stops the stack it started.
impl Drop for Stack {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: signals our own child process.
            unsafe {
                libc::kill(self.child.id() as i32, libc::SIGINT);
            }
            let deadline = Instant::now() + Duration::from_secs(45);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
        }
    }
}

fn start() -> Stack {
    let port = testenv::free_port().unwrap();
    let webhook_port = testenv::free_port().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_local-stack"))
        .args(["--port", &port.to_string(), "--fixture-port", "0", "--agent-runtime", "container"])
        .arg(format!("--webhook-allow=127.0.0.1:{webhook_port}"))
        .arg(format!("--tenant-secret=test-tenant:portal-password={SECRET}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start local-stack");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut api, mut keys, mut emulator, mut agents, mut fixture) = (String::new(), Vec::new(), String::new(), String::new(), String::new());
    let mut signing_secret = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(u) = line.strip_prefix("API:") {
            api = u.trim().to_string();
        } else if let Some(k) = line.strip_prefix("API key:") {
            keys.push(k.split_whitespace().next().unwrap().to_string());
        } else if let Some(f) = line.strip_prefix("Fixtures:") {
            fixture = f.trim().split("/search").next().unwrap().to_string();
        } else if let Some(w) = line.strip_prefix("Webhooks:") {
            if signing_secret.is_empty() {
                signing_secret = w.split_whitespace().next().unwrap().to_string();
            }
        } else if let Some(a) = line.strip_prefix("Agents:") {
            agents = a.trim().to_string();
        } else if let Some(e) = line.strip_prefix("Emulator:") {
            emulator = e.trim().rsplit(':').next().unwrap().to_string();
        } else if line.starts_with("Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    assert!(!api.is_empty() && keys.len() >= 2, "local-stack did not print its API URL and keys");
    assert!(signing_secret.starts_with("whsec_"), "local-stack did not print the tenants' signing secrets");
    Stack { child, api, keys, emulator_port: emulator, agents, fixture, signing_secret, webhook_port }
}

fn stack_emulator_url(stack: &Stack) -> String {
    format!("http://127.0.0.1:{}/", stack.emulator_port)
}

/// Containers the stack with process id `pid` started that still exist.
fn containers_of(pid: u32) -> Vec<String> {
    let podman = testenv::container::Podman::detect().unwrap_or_else(|e| panic!("{e}"));
    let label = format!("label={}={pid}", local_stack::runner::CONTAINER_LABEL);
    let out = podman.command().args(["ps", "--all", "--format", "{{.Names}} {{.Status}}", "--filter", &label]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

async fn call(client: &reqwest::Client, method: reqwest::Method, url: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut req = client.request(method, url);
    if let Some(k) = key {
        req = req.header(names::routes::API_KEY_HEADER, k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("the API answers");
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn wait_for(client: &reqwest::Client, url: &str, key: &str, want: &[&str], within: Duration) -> Value {
    wait_for_at(client, url, key, "/status", want, within).await
}

/// Polls the job until the field at `pointer` holds one of `want`.
async fn wait_for_at(client: &reqwest::Client, url: &str, key: &str, pointer: &str, want: &[&str], within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (status, job) = call(client, reqwest::Method::GET, url, Some(key), None).await;
        assert_eq!(status, 200, "{job}");
        if want.contains(&job.pointer(pointer).and_then(Value::as_str).unwrap_or("")) {
            return job;
        }
        assert!(started.elapsed() < within, "the job's {pointer} did not reach {want:?} within {within:?}: {job}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Processes of this machine whose command line or environment contains `needle` (agents are
/// found by the scratch directory in their environment, Chromium by its profile in the scratch).
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let read = |f: &str| std::fs::read(entry.path().join(f)).map(|b| String::from_utf8_lossy(&b).replace('\0', " ")).unwrap_or_default();
        let (cmd, environ) = (read("cmdline"), read("environ"));
        if cmd.contains(needle) || environ.contains(needle) {
            found.push(format!("{}: {cmd}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

#[test]
fn a_job_end_to_end_through_the_local_stack() {
    // Into the namespace first, then the runtime: its worker threads must be inside it too.
    testenv::netns::enter_or_panic();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(end_to_end());
}

async fn end_to_end() {
    let started = Instant::now();
    let mut stack = start();
    let pid = stack.child.id();
    assert!(stack.agents.starts_with("containers of"), "agents run as: {}", stack.agents);
    let client = reqwest::Client::new();
    let (key, other) = (stack.keys[0].clone(), stack.keys[1].clone());
    let jobs = format!("{}/jobs", stack.api);

    // Submit with a webhook to a receiver that verifies with Standard Webhooks' own library, then
    // poll to COMPLETED.
    let receiver = testenv::webhooks::Receiver::start_at(&testenv::root(), stack.webhook_port, &[&stack.signing_secret], &[]).unwrap();
    let hook = receiver.url("/e2e");
    let (status, created) = call(
        &client,
        reqwest::Method::POST,
        &jobs,
        Some(&key),
        Some(json!({"query": "rust lang", "options": {"capture_html": true}, "webhook": {"url": hook}})),
    )
    .await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["status"], "QUEUED");
    let id = created["task_id"].as_str().unwrap().to_string();
    let job_url = format!("{jobs}/{id}");
    let job = wait_for(&client, &job_url, &key, &["COMPLETED", "FAILED"], Duration::from_secs(120)).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
    // Its event, signed, delivered once, and recorded on the job.
    let got = receiver.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0]["verified"].clone(), got[0]["type"].as_str(), got[0]["task_id"].as_str()), (json!([true]), Some("job.completed"), Some(id.as_str())), "{}", got[0]);
    // The sender records the answer after the receiver has seen the request.
    let recorded = wait_for_at(&client, &job_url, &key, "/webhook/state", &["DELIVERED", "FAILED"], Duration::from_secs(20)).await;
    assert_eq!(recorded["webhook"]["state"], "DELIVERED", "{recorded}");
    assert_eq!(recorded["webhook"]["attempts"][0]["status_code"], 200, "{recorded}");
    let at = |v: &Value| functions::time::parse_rfc3339(v.as_str().unwrap_or_default()).unwrap_or(0);
    println!(
        "e2e: webhook sent {} ms after the job finished, answered in {} ms",
        at(&recorded["webhook"]["attempts"][0]["at"]) - at(&recorded["finished_at"]),
        recorded["webhook"]["attempts"][0]["duration_ms"]
    );
    // Redelivered on request: the same webhook-id.
    let (status, again) = call(&client, reqwest::Method::POST, &format!("{job_url}/webhook"), Some(&key), None).await;
    assert_eq!(status, 202, "{again}");
    let got = receiver.wait_for(2, Duration::from_secs(20));
    assert_eq!((got.len(), &got[1]["id"], &got[1]["verified"]), (2, &got[0]["id"], &json!([true])), "{got:?}");

    // Outputs through the pre-signed links.
    let outputs = &job["outputs"];
    let png = client.get(outputs["screenshot"].as_str().expect("a screenshot link")).send().await.unwrap();
    assert_eq!(png.status().as_u16(), 200);
    let png = png.bytes().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 1280, "the default viewport's width");
    let result: Value = client.get(outputs["result"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert!(result.to_string().contains("Fixture Search"), "result.json names the fixture page: {result}");
    assert!(result.to_string().contains(testenv::fixture::SEARCH_RESULTS[0].0), "result.json lists the results: {result}");
    let html = client.get(outputs["html"].as_str().expect("an html link (capture_html)")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Results for rust lang"));

    // Logs, a page at a time, until the token runs out.
    let (mut events, mut token, mut pages) = (0, None::<String>, 0);
    loop {
        let mut url = format!("{job_url}/logs?limit=2");
        if let Some(t) = &token {
            url.push_str(&format!("&next_token={}", form_urlencoded_encode(t)));
        }
        let (status, page) = call(&client, reqwest::Method::GET, &url, Some(&key), None).await;
        assert_eq!(status, 200, "{page}");
        events += page["events"].as_array().unwrap().len();
        pages += 1;
        match page["next_token"].as_str() {
            Some(next) => {
                assert_ne!(Some(next.to_string()), token, "a token must never repeat");
                token = Some(next.to_string());
            }
            None => break,
        }
        assert!(pages < 500, "logs paging does not end");
    }
    assert!(events >= 2 && pages >= 2, "{events} log events in {pages} pages");

    scripted_job_with_a_secret(&client, &jobs, &key, &stack).await;

    // Tenancy, a missing key, an unknown route.
    let (status, _) = call(&client, reqwest::Method::GET, &job_url, Some(&other), None).await;
    assert_eq!(status, 404, "another tenant's job is not found");
    let (status, body) = call(&client, reqwest::Method::GET, &job_url, None, None).await;
    assert_eq!((status, body), (403, json!({"message": "Forbidden"})));
    let (status, body) = call(&client, reqwest::Method::GET, &job_url, Some("not-a-key"), None).await;
    assert_eq!((status, body), (403, json!({"message": "Forbidden"})));

    // A job aimed at the emulator (loopback, but not the fixture's origin) is refused: local
    // agents reach the fixture page and nothing else on this machine.
    let (status, sneaky) = call(&client, reqwest::Method::POST, &jobs, Some(&key), Some(json!({"url": stack_emulator_url(&stack)}))).await;
    assert_eq!(status, 202, "{sneaky}");
    let sneaky_url = format!("{jobs}/{}", sneaky["task_id"].as_str().unwrap());
    let job = wait_for(&client, &sneaky_url, &key, &["COMPLETED", "FAILED"], Duration::from_secs(120)).await;
    assert_eq!(job["status"], "FAILED", "{job}");
    // The agent's own report: the code a client can act on, and its words.
    assert_eq!(job["error"]["code"], names::job::ErrorCode::EgressRefused.as_str(), "{job}");
    assert!(job["error"]["message"].as_str().unwrap_or_default().contains(&format!("exit code {}", names::agent::exit::EGRESS_REFUSED)), "{job}");

    // A slow job, cancelled while its agent runs.
    let fixture = result["final_url"].as_str().or(result["url"].as_str()).unwrap_or_default().to_string();
    let origin: String = fixture.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
    let (status, slow) =
        call(&client, reqwest::Method::POST, &jobs, Some(&key), Some(json!({"url": format!("{origin}/slow?seconds=120")}))).await;
    assert_eq!(status, 202, "{slow}");
    let slow_url = format!("{jobs}/{}", slow["task_id"].as_str().unwrap());
    wait_for(&client, &slow_url, &key, &["RUNNING"], Duration::from_secs(60)).await;
    let running = containers_of(pid);
    assert_eq!(running.len(), 1, "the slow job's container: {running:?}");
    assert!(running[0].starts_with(&format!("ls{pid}-")) && running[0].contains(" Up "), "{running:?}");
    let (status, cancelled) = call(&client, reqwest::Method::DELETE, &slow_url, Some(&key), None).await;
    assert!(status == 200 || status == 202, "{status} {cancelled}");
    let job = wait_for(&client, &slow_url, &key, &["CANCELLED"], Duration::from_secs(10)).await;
    assert_eq!(job["status"], "CANCELLED");
    let (status, again) = call(&client, reqwest::Method::DELETE, &slow_url, Some(&key), None).await;
    assert_eq!(status, 409, "a finished job cannot be cancelled: {again}");
    let scratch = local_stack::stack::scratch_dir(pid).display().to_string();
    let stopped = Instant::now();
    while !processes_with(&scratch).is_empty() || !containers_of(pid).is_empty() {
        assert!(stopped.elapsed() < Duration::from_secs(40), "the cancelled agent is still running: {:?} {:?}", processes_with(&scratch), containers_of(pid));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The burst limit: more requests at once than the burst allows, all in flight together.
    let burst = names::defaults::API_BURST_LIMIT as usize;
    let mut inflight = tokio::task::JoinSet::new();
    for _ in 0..burst + 10 {
        let (client, jobs, other) = (client.clone(), jobs.clone(), other.clone());
        inflight.spawn(async move { call(&client, reqwest::Method::GET, &jobs, Some(&other), None).await.0 });
    }
    let statuses: Vec<u16> = inflight.join_all().await;
    assert!(statuses.contains(&429), "no 429 in {statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 200).count() >= burst - 2, "{statuses:?}");

    // Ctrl-C stops everything.
    // SAFETY: signals our own child process.
    unsafe {
        libc::kill(pid as i32, libc::SIGINT);
    }
    let exit = stack.child.wait().unwrap();
    let emulator_port = stack.emulator_port.clone();
    drop(stack);
    assert!(exit.success(), "local-stack exit: {exit:?}");
    assert!(processes_with(&format!("-p {emulator_port}")).iter().all(|p| !p.contains("moto_server")), "moto is still running");
    assert!(processes_with(&scratch).is_empty(), "agents are still running");
    assert!(containers_of(pid).is_empty(), "containers are left: {:?}", containers_of(pid));
    eprintln!("e2e: passed in {:.1} s", started.elapsed().as_secs_f64());
}

/// A scripted job signs in with test-tenant's secret, pulls values out, writes a named
/// screenshot and a PDF; the client fetches every file through its link. Then the secret is
/// looked for everywhere: every output, every object in the emulator's buckets, every log event,
/// every table item, every task's overrides.
async fn scripted_job_with_a_secret(client: &reqwest::Client, jobs: &str, key: &str, stack: &Stack) {
    let origin = &stack.fixture;
    let body = json!({ "options": { "capture_html": true }, "steps": [
        { "action": "goto", "url": format!("{origin}/login") },
        { "action": "type", "selector": "#user", "text": "ada" },
        { "action": "type", "selector": "#password", "secret": "portal-password" },
        { "action": "extract", "name": "echo", "selector": "#echo" },
        { "action": "click", "selector": "#go" },
        { "action": "wait_for", "selector": "#welcome", "timeout_ms": 10000 },
        { "action": "extract", "name": "invoices", "selector": ".invoice", "all": true },
        { "action": "extract", "name": "length", "selector": "#password-length" },
        { "action": "screenshot", "name": "account" },
        { "action": "pdf", "name": "account" },
    ] });
    let (status, created) = call(client, reqwest::Method::POST, jobs, Some(key), Some(body)).await;
    assert_eq!(status, 202, "{created}");
    let job_url = format!("{jobs}/{}", created["task_id"].as_str().unwrap());
    let job = wait_for(client, &job_url, key, &["COMPLETED", "FAILED"], Duration::from_secs(120)).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
    let outputs = &job["outputs"];
    let fetch = |url: &str| {
        let req = client.get(url.to_string());
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            resp.bytes().await.unwrap().to_vec()
        }
    };
    let result: Value = serde_json::from_slice(&fetch(outputs["result"].as_str().unwrap()).await).unwrap();
    assert_eq!(result["kind"], "script");
    assert_eq!(result["extracted"]["invoices"], json!(["INV-1", "INV-2"]), "{result}");
    assert_eq!(result["extracted"]["length"], SECRET.chars().count().to_string(), "the secret was typed whole");
    assert_eq!(result["extracted"]["echo"], "[secret:portal-password]");
    let files = outputs["files"].as_object().unwrap_or_else(|| panic!("no files in {job}"));
    assert_eq!(files.keys().collect::<Vec<_>>(), ["account.pdf", "account.png"]);
    assert!(fetch(files["account.pdf"].as_str().unwrap()).await.starts_with(b"%PDF-"));
    assert!(fetch(files["account.png"].as_str().unwrap()).await.starts_with(b"\x89PNG"));
    let mut texts = vec![("the status".to_string(), job.to_string())];
    for (name, link) in outputs.as_object().unwrap() {
        if let Some(link) = link.as_str() {
            texts.push((name.clone(), String::from_utf8_lossy(&fetch(link).await).into_owned()));
        }
    }
    for (what, text) in &texts {
        assert!(!text.contains(SECRET) && !text.contains("e2e-Secret"), "{what} holds the secret");
    }
    let found = emulator_holds(&stack.emulator_port, "e2e-Secret").await;
    // Only where the operator put it.
    assert_eq!(found, ["ssm parameter /infra-demo/dev/tenants/test-tenant/portal-password"], "the secret is kept elsewhere too");
    // The search looks where it says: it finds what is there.
    let redacted = emulator_holds(&stack.emulator_port, "[secret:portal-password]").await;
    assert!(redacted.iter().any(|w| w.ends_with("/result.json")), "{redacted:?}");
    let read = emulator_holds(&stack.emulator_port, "secrets read and deleted").await;
    assert!(read.iter().any(|w| w.ends_with("/agent.log")) && read.iter().any(|w| w.starts_with("log group")), "{read:?}");
    let task_id = created["task_id"].as_str().unwrap();
    let seen = emulator_holds(&stack.emulator_port, task_id).await;
    assert!(seen.iter().any(|w| w.starts_with("table")) && seen.iter().any(|w| w.starts_with("ecs task overrides")), "{seen:?}");
}

/// Every place in the emulator (objects, log events, table items, task overrides, parameters)
/// whose content contains `needle`.
async fn emulator_holds(port: &str, needle: &str) -> Vec<String> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_config::Region::new(names::defaults::AWS_REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "e2e"))
        .load()
        .await;
    let mut found = Vec::new();
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    for bucket in s3.list_buckets().send().await.unwrap().buckets() {
        let name = bucket.name().unwrap();
        let objects = s3.list_objects_v2().bucket(name).send().await.unwrap();
        for o in objects.contents() {
            let key = o.key().unwrap();
            let body = s3.get_object().bucket(name).key(key).send().await.unwrap().body.collect().await.unwrap().into_bytes();
            if String::from_utf8_lossy(&body).contains(needle) {
                found.push(format!("s3 object {name}/{key}"));
            }
        }
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    for group in logs.describe_log_groups().send().await.unwrap().log_groups() {
        let name = group.log_group_name().unwrap();
        let events = logs.filter_log_events().log_group_name(name).send().await.unwrap();
        if events.events().iter().any(|e| e.message().unwrap_or_default().contains(needle)) {
            found.push(format!("log group {name}"));
        }
    }
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    for table in ddb.list_tables().send().await.unwrap().table_names() {
        let items = ddb.scan().table_name(table).send().await.unwrap();
        if items.items().iter().any(|i| format!("{i:?}").contains(needle)) {
            found.push(format!("table {table}"));
        }
    }
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    for cluster in ecs.list_clusters().send().await.unwrap().cluster_arns() {
        let arns: Vec<String> = ecs.list_tasks().cluster(cluster).send().await.unwrap().task_arns().to_vec();
        let stopped: Vec<String> = ecs.list_tasks().cluster(cluster).desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped).send().await.unwrap().task_arns().to_vec();
        for chunk in arns.iter().chain(&stopped).collect::<Vec<_>>().chunks(100) {
            let tasks = ecs.describe_tasks().cluster(cluster).set_tasks(Some(chunk.iter().map(|s| s.to_string()).collect())).send().await.unwrap();
            // (The SDK's Debug hides the environment as sensitive: read it out.)
            let values = tasks.tasks().iter().flat_map(|t| t.overrides().map(|o| o.container_overrides()).unwrap_or_default());
            let mut values = values.flat_map(|c| c.environment()).flat_map(|kv| [kv.name().unwrap_or_default(), kv.value().unwrap_or_default()]);
            if values.any(|v| v.contains(needle)) {
                found.push(format!("ecs task overrides in {cluster}"));
            }
        }
    }
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let params = ssm.describe_parameters().send().await.unwrap();
    for p in params.parameters() {
        let name = p.name().unwrap();
        let value = ssm.get_parameter().name(name).with_decryption(true).send().await.unwrap();
        if value.parameter().and_then(|p| p.value()).unwrap_or_default().contains(needle) {
            found.push(format!("ssm parameter {name}"));
        }
    }
    found
}

fn form_urlencoded_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

