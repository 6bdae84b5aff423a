//! Fairness under a noisy tenant (issue 24): tenant B submits 20 jobs with webhooks, first alone,
//! then while tenant A keeps a 1000-job backlog at its running limit, its jobs' webhooks go to a
//! blackhole (a loopback listener that accepts and never answers: every attempt costs the full
//! timeout), and it asks for redeliveries of its finished jobs' webhooks as fast as its key allows
//! (the usage plan's rate).
//! Reports B's submit -> RUNNING and webhook latency (the job's finish to the receiver's first
//! request), median and p95, in both runs and their ratio (target: within 1.5x of B alone). The
//! agents are the stand-in agent (`stand-in-agent`, each job works 2 s).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use local_stack::runner::AgentCommand;
use local_stack::stack::{workspace_root, LocalStack, Options};
use serde_json::{json, Value};

/// A's backlog (`NOISY_A_JOBS` for another size: the emulator, one Python process, saturates under
/// 1000 on a small machine, where AWS would not).
const A_JOBS: usize = 1000;
const B_JOBS: usize = 20;
const MAX_RUNNING: u32 = 3;

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|x, y| x.total_cmp(y));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// CPU seconds used so far by (the emulator's processes, this process), from /proc.
fn cpu_seconds() -> (f64, f64) {
    let ticks = |stat: &str| -> f64 {
        // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)
    };
    let hz = 100.0;
    let mut emulator = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains("moto") {
            emulator += ticks(&std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default()) / hz;
        }
    }
    let own = ticks(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default()) / hz;
    (emulator, own)
}

fn now_ms() -> i64 {
    functions::time::now_millis()
}

struct Bench {
    stack: LocalStack,
    http: reqwest::Client,
    ddb: aws_sdk_dynamodb::Client,
    receiver: testenv::webhooks::Receiver,
}

impl Bench {
    fn key(&self, tenant: &str) -> String {
        self.stack.keys.iter().find(|(t, _)| t == tenant).unwrap().1.clone()
    }

    async fn submit(&self, tenant: &str, hook: &str, i: usize) -> String {
        let body = json!({ "query": format!("{tenant} {i}"), "webhook": { "url": hook } });
        loop {
            let r = self.http.post(format!("{}/jobs", self.stack.api_url)).header(names::routes::API_KEY_HEADER, self.key(tenant)).json(&body).send().await.unwrap();
            if r.status().as_u16() == 429 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap_or_default());
            return r.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_string();
        }
    }

    async fn item(&self, id: &str) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
        let r = self.ddb.get_item().table_name(&self.stack.config.table).key("task_id", aws_sdk_dynamodb::types::AttributeValue::S(id.into())).send().await.unwrap();
        r.item.unwrap_or_default()
    }

    /// The emulator's answer time, as every function's call sees it: 40 reads of one item one
    /// after another, median in milliseconds.
    async fn probe(&self) -> f64 {
        let mut ms = Vec::new();
        for _ in 0..40 {
            let t = Instant::now();
            self.item(&names::table::counter_key("tenant-b")).await;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        pct(&mut ms, 0.5)
    }

    /// The emulator's requests served since the last reset, by caller, service and operation,
    /// busiest (by CPU) first: (key, count, CPU seconds, seconds to answer).
    async fn calls(&self, reset: bool) -> Vec<(String, u64, f64, f64)> {
        let url = format!("{}/_testenv/calls{}", self.stack.endpoint, if reset { "?reset" } else { "" });
        let Ok(r) = self.http.get(url).send().await else { return Vec::new() };
        let all: HashMap<String, (u64, f64, f64)> = r.json().await.unwrap_or_default();
        let mut calls: Vec<_> = all.into_iter().map(|(k, (n, cpu, wall))| (k, n, cpu, wall)).collect();
        calls.sort_by(|a, b| b.2.total_cmp(&a.2));
        calls
    }

    /// B's 20 jobs: (submit -> RUNNING, finish -> webhook, finish -> its attempt began) in
    /// seconds, each.
    async fn tenant_b(&self, round: &str) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut ids = Vec::new();
        for i in 0..B_JOBS {
            ids.push(self.submit("tenant-b", &self.receiver.url(&format!("/{round}/{i}")), i).await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut arrived: HashMap<String, i64> = HashMap::new();
        let t = Instant::now();
        while arrived.len() < ids.len() && t.elapsed() < Duration::from_secs(300) {
            for r in self.receiver.requests() {
                if let Some(id) = r["task_id"].as_str().filter(|id| ids.iter().any(|i| i == id)) {
                    arrived.entry(id.to_string()).or_insert_with(now_ms);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if arrived.len() < ids.len() {
            println!("noisy: B {round}: only {} of B's {} webhooks arrived within 300 s", arrived.len(), ids.len());
        }
        let mut start = Vec::new();
        let mut hook = Vec::new();
        let mut picked = Vec::new();
        for id in &ids {
            let item = self.item(id).await;
            let ms = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).and_then(|s| functions::time::parse_rfc3339(s)).unwrap();
            if let Some(started) = item.get("started_at").and_then(|v| v.as_s().ok()).and_then(|s| functions::time::parse_rfc3339(s)) {
                start.push((started - ms("created_at")) as f64 / 1000.0);
            }
            if let Some(at) = arrived.get(id) {
                hook.push((at - ms("finished_at")) as f64 / 1000.0);
            }
            let first_attempt = item.get(names::table::WEBHOOK_ATTEMPTS).and_then(|a| a.as_l().ok()).and_then(|a| a.first()).and_then(|a| a.as_m().ok());
            if let Some(began) = first_attempt.and_then(|a| a.get("at")).and_then(|v| v.as_s().ok()).and_then(|s| functions::time::parse_rfc3339(s)) {
                picked.push((began - ms("finished_at")) as f64 / 1000.0);
            }
        }
        (start, hook, picked)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let root = workspace_root();
    let a_jobs: usize = std::env::var("NOISY_A_JOBS").ok().and_then(|n| n.parse().ok()).unwrap_or(A_JOBS);
    // The blackhole: connections are accepted and never answered.
    let blackhole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole = blackhole.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = blackhole.accept().await {
            held.push(s);
        }
    });
    let port = testenv::free_port().unwrap();
    let stack = LocalStack::start(Options {
        max_tasks: 12,
        tenant_limits: functions::config::TenantLimits::uniform(MAX_RUNNING, 2 * a_jobs as u32),
        webhook_allow: vec![format!("127.0.0.1:{port}"), hole.to_string()],
        // Each key at the deployed usage plan's pace: A's redeliveries come "as fast as its key allows".
        rate_limit: names::defaults::API_RATE_LIMIT,
        burst_limit: names::defaults::API_BURST_LIMIT,
        verbose: std::env::var("NOISY_VERBOSE").is_ok(),
        agent_env: vec![("STAND_IN_WORK_MS".into(), "2000".into())],
        ..Options::quiet(&["tenant-a", "tenant-b"], AgentCommand::Trivial(env!("CARGO_BIN_EXE_stand-in-agent").into()))
    })
    .await
    .expect("the local stack starts");
    let secret = stack.signing_secrets.iter().find(|(t, _)| t == "tenant-b").unwrap().1.clone();
    let receiver = testenv::webhooks::Receiver::start_at(&root, port, &[secret.as_str()], &[]).expect("the receiver starts");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let b = Bench { http: reqwest::Client::new(), ddb: aws_sdk_dynamodb::Client::new(&sdk), stack, receiver };

    let probe_alone = b.probe().await;
    let (mut alone_start, mut alone_hook, mut alone_picked) = b.tenant_b("alone").await;

    // A's backlog, its blackholed webhooks, and its redeliveries at its key's pace.
    let hole_url = format!("http://{hole}/hook");
    let mut a_ids = Vec::new();
    for i in 0..a_jobs {
        a_ids.push(b.submit("tenant-a", &hole_url, i).await);
    }
    let (http, api, key) = (b.http.clone(), b.stack.api_url.clone(), b.key("tenant-a"));
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = accepted.clone();
    // At the key's rate: a client going faster is refused 429 by API Gateway at its edge, which
    // costs the stack nothing in AWS (here the gateway stand-in would spend this machine's cores).
    let redeliveries = tokio::spawn(async move {
        let (mut sent, mut refused) = (0u64, 0u64);
        let mut pace = tokio::time::interval(Duration::from_secs(1) / names::defaults::API_RATE_LIMIT);
        loop {
            for id in a_ids.iter().take(50) {
                pace.tick().await;
                match http.post(format!("{api}/jobs/{id}/webhook")).header(names::routes::API_KEY_HEADER, &key).send().await {
                    Ok(r) if r.status().is_success() => {
                        sent += 1;
                        counted.store(sent, std::sync::atomic::Ordering::Relaxed);
                    }
                    _ => refused += 1,
                }
                if (sent + refused) % 500 == 0 {
                    println!("noisy: A's redeliveries so far: {sent} accepted, {refused} refused (cooldown, not finished)");
                }
            }
        }
    });
    // A's backlog at rest: every waiting job parked (none going round the jobs queue), its first
    // jobs run and their webhooks failing into the blackhole. B then meets A's steady state, not
    // the one-off intake of A's 1000 submits.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let settle = Instant::now();
    loop {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&b.stack.config.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        let visible: u64 = attrs.attributes().and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)).and_then(|v| v.parse().ok()).unwrap_or(0);
        if visible == 0 || settle.elapsed() > Duration::from_secs(600) {
            println!("noisy: A's backlog settled after {:.0} s ({visible} messages visible on the jobs queue)", settle.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // A's redeliveries in full swing: a round is refused while the last is under a minute old and
    // still sending (the cooldown), so they are accepted only a minute after A's first jobs ended.
    let swing = Instant::now();
    while accepted.load(std::sync::atomic::Ordering::Relaxed) < 20 && swing.elapsed() < Duration::from_secs(240) {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!("noisy: {} of A's redeliveries accepted before B starts ({:.0} s on)", accepted.load(std::sync::atomic::Ordering::Relaxed), swing.elapsed().as_secs_f64());
    let probe_noisy = b.probe().await;
    let _ = b.calls(true).await;
    let cpu_before = cpu_seconds();
    let measured = Instant::now();
    let (mut noisy_start, mut noisy_hook, mut noisy_picked) = b.tenant_b("noisy").await;
    let measured_s = measured.elapsed().as_secs_f64();
    let busy = |(before, after): (f64, f64)| 100.0 * (after - before) / measured_s;
    let cpu_after = cpu_seconds();
    println!(
        "noisy: CPU while B ran beside A (of one core): the emulator {:.0}%, this process (stack, A's client) {:.0}%",
        busy((cpu_before.0, cpu_after.0)),
        busy((cpu_before.1, cpu_after.1))
    );
    let calls = b.calls(false).await;
    redeliveries.abort();

    let (s_alone, s_alone95, s_noisy, s_noisy95) = (pct(&mut alone_start, 0.5), pct(&mut alone_start, 0.95), pct(&mut noisy_start, 0.5), pct(&mut noisy_start, 0.95));
    let (h_alone, h_alone95, h_noisy, h_noisy95) = (pct(&mut alone_hook, 0.5), pct(&mut alone_hook, 0.95), pct(&mut noisy_hook, 0.5), pct(&mut noisy_hook, 0.95));
    println!("noisy: tenant B, {B_JOBS} jobs with webhooks; alone, then beside tenant A ({a_jobs} jobs at max_running {MAX_RUNNING}, webhooks to a blackhole, redeliveries as fast as its key allows)");
    println!("noisy: B submit -> RUNNING: alone p50 {s_alone:.2} s p95 {s_alone95:.2} s; beside A p50 {s_noisy:.2} s p95 {s_noisy95:.2} s ({:.2}x, {:.2}x)", s_noisy / s_alone, s_noisy95 / s_alone95);
    println!("noisy: B finish -> webhook: alone p50 {h_alone:.2} s p95 {h_alone95:.2} s; beside A p50 {h_noisy:.2} s p95 {h_noisy95:.2} s ({:.2}x, {:.2}x)", h_noisy / h_alone, h_noisy95 / h_alone95);
    println!(
        "noisy: of which finish -> its attempt began (the event's way to the webhook function and a lane): alone p50 {:.2} s, beside A p50 {:.2} s",
        pct(&mut alone_picked, 0.5),
        pct(&mut noisy_picked, 0.5)
    );
    println!("noisy: the emulator's busiest requests while B ran beside A (caller service:operation: per second, CPU ms per second, ms each to answer):");
    for (key, count, cpu, wall) in calls.iter().take(12) {
        println!("noisy:   {key}: {:.1}/s, {:.0} ms/s CPU, {:.1} ms each", *count as f64 / measured_s, cpu * 1000.0 / measured_s, wall * 1000.0 / *count as f64);
    }
    println!("noisy: the emulator's answer to one GetItem: p50 {probe_alone:.1} ms before A, {probe_noisy:.1} ms beside A (each function call waits as long)");
    b.stack.stop(false).await;
}
