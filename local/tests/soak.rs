//! Exactly once under faults, as a randomized test (issue 24): jobs of several tenants go through
//! the local stack with a warm pool, tenant limits, webhooks to a slow and failing receiver,
//! scripted jobs with secrets and cancels at random moments, while a seed's fault plan
//! (`testenv::faults`) fails, loses or crashes the functions' AWS calls — one fault point after
//! another, seed by seed — and delivers messages and events twice. The agents are the stand-in
//! agent (`stand-in-agent`: the agent's protocol with its own code, no browser), which writes
//! what it really ran to a ledger and sometimes dies while working.
//!
//! After each seed's round the invariants are checked: every job ends in one terminal state and
//! stays there; no job ran twice (by the ledger), a completed one ran once; every job with a
//! webhook delivered its final event (one event id, the job's final status, signed for its tenant)
//! or dead-lettered it; each tenant's counts equal a recount of its jobs and nothing stays
//! parked; no secret object or version is left; no slot is left claimed, and the pool's slots
//! and its running tasks agree; no tenant ran more jobs at once than its `max_running`.
//!
//! `SOAK_SEEDS=a..b` chooses the seeds (default: the short run of `make test`); `make soak` runs
//! thousands. A failing seed is rerun alone with `SOAK_SEEDS=<n>..<n+1>`: its faults and its jobs
//! come from its number (the interleaving of concurrent handlers is the machine's).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use local_stack::provision::TenantSecret;
use local_stack::runner::AgentCommand;
use local_stack::stack::{LocalStack, Options};
use names::JobStatus;
use serde_json::{json, Value};
use testenv::faults::{Aim, Plan};

const TENANTS: [&str; 3] = ["t-one", "t-two", "t-three"];
const JOBS_PER_ROUND: usize = 12;
const MAX_RUNNING: u32 = 2;
const WARM_POOL: u32 = 2;
/// Seeds run on one stack before the next starts afresh (`SOAK_CHUNK` for another number): the
/// emulator's tables, bucket and queues grow with every seed, and its scans with them, so a long
/// run on one stack would measure the emulator's slowing down.
const SEEDS_PER_STACK: usize = 50;
/// The short run of `make test`: this many seeds, spread over the fault points and faults
/// (seed i * 17: the points are taken in a stride, and the faults change as the seeds grow).
const SHORT_SEEDS: u64 = 24;
/// The functions' recovery grace in this test (a minute when deployed).
const GRACE: i64 = 8;
/// How long a webhook round may go without progress, when due, before the sweep ends it FAILED (an
/// hour when deployed). A round parked for a lane is kept alive by its own message, which comes
/// back at most a quarter of this apart (2 s doubling, up to 5 s here). The time a dead-lettered
/// round costs a seed is this.
const STALL: i64 = 20;
/// How long the unfinished jobs of a round may all stay unchanged before they count as stalled.
const QUIET: Duration = Duration::from_secs(20);
/// How long a round's jobs may take to finish with faults on, before time is moved on.
const SETTLE: Duration = Duration::from_secs(60);

fn roll(seed: u64, what: &str, i: usize) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (seed, what, i).hash(&mut h);
    h.finish()
}

fn seeds() -> Vec<u64> {
    let Ok(s) = std::env::var("SOAK_SEEDS") else { return (0..SHORT_SEEDS).map(|i| i * 17).collect() };
    let (a, b) = s.split_once("..").unwrap_or_else(|| panic!("SOAK_SEEDS is a..b, not {s:?}"));
    (a.parse().expect("SOAK_SEEDS start")..b.parse().expect("SOAK_SEEDS end")).collect()
}

/// One job of a round, as the client sent it.
#[derive(Clone, Debug)]
struct Sent {
    task_id: String,
    tenant: &'static str,
    webhook: bool,
}

struct Harness {
    stack: LocalStack,
    http: reqwest::Client,
    ddb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    ecs: aws_sdk_ecs::Client,
    plan: Arc<Plan>,
    ledger: std::path::PathBuf,
    receiver: testenv::webhooks::Receiver,
}

#[test]
fn each_job_runs_once_and_nothing_is_lost_under_faults() {
    testenv::netns::enter_or_panic();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(soak());
}

async fn soak() {
    let root = local_stack::stack::workspace_root();
    let seeds = seeds();
    let first = seeds.first().copied().unwrap_or(0);
    let plan = Arc::new(Plan::for_seed(first));
    let ledger = std::env::temp_dir().join(format!("soak-ledger-{}", std::process::id()));
    let _ = std::fs::remove_file(&ledger);
    let chunk = std::env::var("SOAK_CHUNK").ok().and_then(|c| c.parse().ok()).unwrap_or(SEEDS_PER_STACK).max(1);
    let mut struck: BTreeMap<String, usize> = BTreeMap::new();
    let mut all_jobs = 0;
    let started = Instant::now();
    let mut failures = Vec::new();
    'stacks: for seeds in seeds.chunks(chunk) {
        let h = harness(&root, &plan, &ledger, seeds[0]).await;
        for &seed in seeds {
            let aim = Aim::for_seed(seed);
            let target = aim.target.clone().map(|(p, f)| format!("{p} {f:?}")).unwrap_or_default();
            h.plan.aim_at(aim);
            let t = Instant::now();
            let outcome = round(&h, seed).await;
            let injected = h.plan.injected();
            for i in &injected {
                *struck.entry(format!("{} {:?}", i.point, i.fault)).or_default() += 1;
            }
            match outcome {
                Ok(n) => {
                    all_jobs += n;
                    println!("seed {seed}: {n} jobs, {} faults ({target}), {:.1} s", injected.len(), t.elapsed().as_secs_f64());
                }
                Err(e) => {
                    println!("seed {seed}: FAILED ({target}): {e}");
                    failures.push(format!("seed {seed} ({target}): {e}\n  faults struck: {injected:?}"));
                    // The stack is in an unknown state: later seeds would report its leftovers.
                    h.stack.stop(false).await;
                    break 'stacks;
                }
            }
        }
        h.stack.stop(false).await;
    }
    let points = testenv::faults::points().len();
    println!(
        "soak: {} seeds from {first}, {all_jobs} jobs in {:.0} s; {} faults struck at {} point-and-fault pairs (of {points} points x 4 faults)",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        struck.values().sum::<usize>(),
        struck.len()
    );
    let _ = std::fs::remove_file(&ledger);
    assert!(failures.is_empty(), "invariants broken; rerun a seed alone with SOAK_SEEDS=<n>..<n+1>:\n{}", failures.join("\n"));
    assert!(all_jobs > 0);
}

/// A stack of its own (its own emulator) for the seeds from `first` on, with the faults of
/// `plan` (off until a seed aims it) and a webhook receiver.
async fn harness(root: &std::path::Path, plan: &Arc<Plan>, ledger: &std::path::Path, first: u64) -> Harness {
    plan.set_enabled(false);
    // A receiver that is slow or fails now and then; it verifies with every tenant's secret.
    let answers: Vec<&str> = (0..400).map(|i| match roll(first, "answer", i) % 10 { 0 | 1 => "500", 2 => "timeout:0.6", _ => "200" }).collect();
    // The receiver starts before the stack so its port can be allowed; its secrets come after.
    let port = testenv::free_port().unwrap();
    let stack = LocalStack::start(Options {
        max_tasks: 8,
        warm_pool: WARM_POOL,
        // A task's STOPPED comes a while after its container's stop, as Fargate deprovisions it:
        // the job ends at the first, the second is stale (and a lost first is made up by it).
        deprovisioning_delay: Duration::from_millis(700),
        tenant_limits: functions::config::TenantLimits::uniform(MAX_RUNNING, 100),
        tenant_secrets: TENANTS.iter().map(|t| TenantSecret { tenant: t.to_string(), name: "pw".into(), value: format!("pw-of-{t}") }).collect(),
        webhook_allow: vec![format!("127.0.0.1:{port}")],
        faults: Some(plan.clone()),
        agent_env: vec![
            ("STAND_IN_LEDGER".into(), ledger.display().to_string()),
            ("STAND_IN_WORK_MS".into(), "150".into()),
            ("STAND_IN_DIE_PER_MILLE".into(), "40".into()),
            ("STAND_IN_SEED".into(), first.to_string()),
        ],
        sweep_every: Some(Duration::from_secs(3)),
        visibility_seconds: Some(3),
        webhook_retry_seconds: Some(vec![1, 1, 2]),
        // Time compressed: what a dead function left is taken up after 8 s, not a minute.
        recovery_grace_seconds: Some(GRACE),
        webhook_stall_seconds: Some(STALL),
        ..Options::quiet(&TENANTS, AgentCommand::Trivial(env!("CARGO_BIN_EXE_stand-in-agent").into()))
    })
    .await
    .expect("the local stack starts");
    let secrets: Vec<&str> = stack.signing_secrets.iter().map(|(_, s)| s.as_str()).collect();
    let receiver = testenv::webhooks::Receiver::start_at(root, port, &secrets, &answers).expect("the webhook receiver starts");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Harness {
        http: reqwest::Client::new(),
        ddb: aws_sdk_dynamodb::Client::new(&sdk),
        s3: aws_sdk_s3::Client::new(&sdk),
        ecs: aws_sdk_ecs::Client::new(&sdk),
        stack,
        plan: plan.clone(),
        ledger: ledger.to_path_buf(),
        receiver,
    }
}

/// One seed's round: its jobs through the stack under its faults, then the invariants.
async fn round(h: &Harness, seed: u64) -> Result<usize, String> {
    let ledger_from = std::fs::metadata(&h.ledger).map(|m| m.len()).unwrap_or(0);
    let t = Instant::now();
    let sent = submit_all(h, seed).await?;
    let ids: Vec<String> = sent.iter().map(|s| s.task_id.clone()).collect();
    let finished = wait_finished(h, &ids).await?;
    let jobs_s = t.elapsed().as_secs_f64();
    // The faults stop; what they left must come right by itself.
    h.plan.set_enabled(false);
    let hooks: Vec<&Sent> = sent.iter().filter(|s| s.webhook).collect();
    wait_webhooks(h, &hooks).await?;
    let hooks_s = t.elapsed().as_secs_f64() - jobs_s;
    settle_pool(h).await?;
    let pool_s = t.elapsed().as_secs_f64() - jobs_s - hooks_s;
    check(h, seed, &sent, &finished, ledger_from).await?;
    println!("  seed {seed}: jobs finished in {jobs_s:.1} s, webhooks {hooks_s:.1} s, pool settled {pool_s:.1} s");
    Ok(sent.len())
}

/// Submits the round's jobs (a client retries a failed submit with its idempotency key) and
/// cancels some of them at random moments.
async fn submit_all(h: &Harness, seed: u64) -> Result<Vec<Sent>, String> {
    let fixture = format!("http://{}/", h.stack.fixture);
    let mut sent = Vec::new();
    let mut cancels = Vec::new();
    for i in 0..JOBS_PER_ROUND {
        let tenant = TENANTS[(roll(seed, "tenant", i) % TENANTS.len() as u64) as usize];
        let key = h.stack.keys.iter().find(|(t, _)| t == tenant).map(|(_, k)| k.clone()).unwrap();
        let webhook = roll(seed, "webhook", i) % 2 == 0;
        let mut body = match roll(seed, "kind", i) % 4 {
            0 => json!({ "url": fixture, "steps": [{ "action": "goto", "url": fixture }, { "action": "type", "selector": "#q", "secret": "pw" }] }),
            _ => json!({ "query": format!("soak {seed} {i}") }),
        };
        if webhook {
            body["webhook"] = json!({ "url": h.receiver.url(&format!("/hook/{seed}/{i}")) });
        }
        let idempotency = format!("soak-{seed}-{i}");
        let mut answer = None;
        for _ in 0..20 {
            let resp = h
                .http
                .post(format!("{}/jobs", h.stack.api_url))
                .header(names::routes::API_KEY_HEADER, &key)
                .header(names::routes::IDEMPOTENCY_KEY_HEADER, &idempotency)
                .json(&body)
                .send()
                .await;
            match resp {
                Ok(r) if r.status().is_success() => {
                    answer = Some(r.json::<Value>().await.map_err(|e| e.to_string())?);
                    break;
                }
                Ok(r) if r.status().is_server_error() => {}
                Ok(r) => return Err(format!("submit {i} answered {}: {}", r.status(), r.text().await.unwrap_or_default())),
                Err(e) => return Err(format!("submit {i}: {e}")),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let answer = answer.ok_or_else(|| format!("submit {i} failed 20 times"))?;
        let task_id = answer["task_id"].as_str().ok_or("no task_id")?.to_string();
        if roll(seed, "cancel", i) % 5 == 0 {
            let (http, url, key) = (h.http.clone(), format!("{}/jobs/{task_id}", h.stack.api_url), key.clone());
            let after = Duration::from_millis(roll(seed, "cancel-at", i) % 2500);
            cancels.push(tokio::spawn(async move {
                tokio::time::sleep(after).await;
                for _ in 0..20 {
                    match http.delete(&url).header(names::routes::API_KEY_HEADER, &key).send().await {
                        Ok(r) if !r.status().is_server_error() => return,
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }));
        }
        sent.push(Sent { task_id, tenant, webhook });
    }
    for c in cancels {
        let _ = c.await;
    }
    Ok(sent)
}

fn s(item: &HashMap<String, AttributeValue>, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

fn n(item: &HashMap<String, AttributeValue>, k: &str) -> i64 {
    item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Every item of the jobs table, by key.
async fn items(h: &Harness) -> Result<BTreeMap<String, HashMap<String, AttributeValue>>, String> {
    scan(h, None).await
}

/// The warm pool's slot items, by key (a Scan that answers only them).
async fn slots(h: &Harness) -> Result<BTreeMap<String, HashMap<String, AttributeValue>>, String> {
    scan(h, Some(names::table::SLOT_PREFIX)).await
}

/// The items of the jobs table whose key begins with `prefix` (every item without one), by key.
async fn scan(h: &Harness, prefix: Option<&str>) -> Result<BTreeMap<String, HashMap<String, AttributeValue>>, String> {
    let mut out = BTreeMap::new();
    let mut start = None;
    loop {
        let mut req = h.ddb.scan().table_name(&h.stack.config.table).consistent_read(true).set_exclusive_start_key(start);
        if let Some(p) = prefix {
            req = req
                .filter_expression("begins_with(#k, :p)")
                .expression_attribute_names("#k", names::table::TASK_ID)
                .expression_attribute_values(":p", AttributeValue::S(p.into()));
        }
        let page = req.send().await.map_err(|e| format!("Scan: {e:?}"))?;
        for item in page.items.unwrap_or_default() {
            if let Some(k) = s(&item, names::table::TASK_ID) {
                out.insert(k, item);
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(out);
        }
    }
}

/// The items of `ids` (strongly consistent `BatchGetItem`), by key: what the waits poll. (A Scan
/// of the whole table every 300 ms grows with every seed the stack ran, in the emulator's one
/// DynamoDB lock, and slowed each later seed's functions.)
async fn jobs(h: &Harness, ids: &[String]) -> Result<BTreeMap<String, HashMap<String, AttributeValue>>, String> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(100) {
        let mut keys: Vec<HashMap<String, AttributeValue>> = chunk.iter().map(|id| HashMap::from([(names::table::TASK_ID.to_string(), AttributeValue::S(id.clone()))])).collect();
        while !keys.is_empty() {
            let wanted = aws_sdk_dynamodb::types::KeysAndAttributes::builder().set_keys(Some(std::mem::take(&mut keys))).consistent_read(true).build().map_err(|e| e.to_string())?;
            let r = h.ddb.batch_get_item().request_items(&h.stack.config.table, wanted).send().await.map_err(|e| format!("BatchGetItem: {e:?}"))?;
            for item in r.responses.and_then(|mut r| r.remove(&h.stack.config.table)).unwrap_or_default() {
                if let Some(k) = s(&item, names::table::TASK_ID) {
                    out.insert(k, item);
                }
            }
            keys = r.unprocessed_keys.and_then(|mut u| u.remove(&h.stack.config.table)).map(|k| k.keys).unwrap_or_default();
        }
    }
    Ok(out)
}

fn status(item: &HashMap<String, AttributeValue>) -> Option<JobStatus> {
    s(item, names::table::STATUS).and_then(|v| JobStatus::parse(&v))
}

/// Waits until every job is finished; when they stall (a lost message or event that only the
/// sweep recovers, 30 minutes on: no unfinished job changed for [`QUIET`], or [`SETTLE`] passed),
/// moves the sweep's clock past the allowances.
async fn wait_finished(h: &Harness, ids: &[String]) -> Result<BTreeMap<String, JobStatus>, String> {
    let t = Instant::now();
    let mut warped = false;
    let (mut last, mut changed) = (Vec::new(), Instant::now());
    loop {
        let items = jobs(h, ids).await?;
        let open: Vec<(&String, Option<JobStatus>)> =
            ids.iter().map(|id| (id, items.get(id).and_then(status))).filter(|(_, st)| !st.is_some_and(JobStatus::is_terminal)).collect();
        if open.is_empty() {
            return Ok(ids.iter().map(|id| (id.clone(), items.get(id).and_then(status).unwrap())).collect());
        }
        let now: Vec<(String, Option<String>)> = open.iter().map(|(id, _)| ((*id).clone(), items.get(*id).and_then(|i| s(i, names::table::UPDATED_AT)))).collect();
        if now != last {
            (last, changed) = (now, Instant::now());
        }
        if (t.elapsed() > SETTLE || changed.elapsed() > QUIET) && !warped {
            // The faults stop, and an hour passes for the sweep.
            h.plan.set_enabled(false);
            for (id, st) in &open {
                println!("  stalled: {id} {st:?} {:?}", items.get(*id));
            }
            let later = functions::time::Clock::manual(functions::time::now_millis() + 3_600_000);
            let app = (*h.stack.app).clone().with_clock(later.clone());
            functions::reconcile::sweep(&app).await.map_err(|e| format!("the sweep an hour on: {e}"))?;
            // A running place the sweep kept for a task that may still run (a job it failed for
            // its deadline) carries that hour-on stamp, which the sweeps on the real clock would
            // take for new for an hour: one more sweep, past the recovery grace of that hour,
            // once the tasks it stopped have stopped.
            tokio::time::sleep(Duration::from_secs(2)).await;
            later.advance(GRACE * 1000 + 2_000);
            functions::reconcile::sweep(&app).await.map_err(|e| format!("the sweep an hour on: {e}"))?;
            warped = true;
        } else if warped && (changed.elapsed() > Duration::from_secs(30) || t.elapsed() > SETTLE + Duration::from_secs(60)) {
            let open: Vec<String> = open.iter().map(|(id, st)| format!("{id} {st:?} {:?}", items.get(*id))).collect();
            return Err(format!("jobs not finished {} s after submit, the sweep an hour on included:\n  {}", t.elapsed().as_secs(), open.join("\n  ")));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// How many attempts the job's webhook round records.
fn recorded_attempts(item: Option<&HashMap<String, AttributeValue>>) -> usize {
    item.and_then(|i| i.get(names::table::WEBHOOK_ATTEMPTS)).and_then(|a| a.as_l().ok()).map_or(0, Vec::len)
}

/// Whether the job's webhook round was ended by the sweep as stalled (its last attempt says so).
fn stalled(item: Option<&HashMap<String, AttributeValue>>) -> bool {
    let last = item.and_then(|i| i.get(names::table::WEBHOOK_ATTEMPTS)).and_then(|a| a.as_l().ok()).and_then(|a| a.last().cloned());
    last.and_then(|a| a.as_m().ok().and_then(|m| m.get("error").and_then(|e| e.as_s().ok()).cloned())).as_deref() == Some(names::webhook::STALLED)
}

async fn wait_webhooks(h: &Harness, hooks: &[&Sent]) -> Result<(), String> {
    let t = Instant::now();
    let ids: Vec<String> = hooks.iter().map(|j| j.task_id.clone()).collect();
    loop {
        let items = jobs(h, &ids).await?;
        let open: Vec<String> = hooks
            .iter()
            .filter_map(|j| {
                let st = items.get(&j.task_id).and_then(|i| s(i, names::table::WEBHOOK_STATE));
                (!matches!(st.as_deref(), Some("DELIVERED" | "FAILED"))).then(|| format!("{} {st:?}", j.task_id))
            })
            .collect();
        if open.is_empty() {
            // The receiver records a request before it answers, and its records reach this test
            // through a pipe a moment later: a delivery the table already calls DELIVERED may not
            // be in them yet. Wait (a little) for each; the check says what is still missing.
            let delivered: Vec<&str> = hooks
                .iter()
                .filter(|j| items.get(&j.task_id).and_then(|i| s(i, names::table::WEBHOOK_STATE)).as_deref() == Some("DELIVERED"))
                .map(|j| j.task_id.as_str())
                .collect();
            let settle = Instant::now();
            while settle.elapsed() < Duration::from_secs(5) {
                let seen: BTreeSet<String> = h.receiver.requests().iter().filter_map(|r| r["task_id"].as_str().map(str::to_owned)).collect();
                if delivered.iter().all(|id| seen.contains(*id)) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            return Ok(());
        }
        // (A function that died holding one of a tenant's two webhook lanes keeps it until its
        // lease runs out, 15 s on, and the events waiting for a lane back off up to 30 s. A round
        // whose message SQS dead-lettered is ended FAILED by a sweep STALL s after it was due.)
        if t.elapsed() > Duration::from_secs(150) {
            return Err(format!("webhooks neither delivered nor dead-lettered after 150 s: {open:?}"));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The tasks the cluster runs, by `startedBy`.
async fn running_tasks(h: &Harness) -> Result<BTreeSet<String>, String> {
    let arns = h
        .ecs
        .list_tasks()
        .cluster(&h.stack.config.cluster_arn)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
        .send()
        .await
        .map_err(|e| format!("ListTasks: {e}"))?
        .task_arns
        .unwrap_or_default();
    if arns.is_empty() {
        return Ok(BTreeSet::new());
    }
    let tasks = h.ecs.describe_tasks().cluster(&h.stack.config.cluster_arn).set_tasks(Some(arns)).send().await.map_err(|e| format!("DescribeTasks: {e}"))?;
    Ok(tasks.tasks.unwrap_or_default().into_iter().filter_map(|t| t.started_by).collect())
}

/// Waits until no job task runs, no slot is claimed, and the pool's slot items and slot tasks agree.
async fn settle_pool(h: &Harness) -> Result<(), String> {
    let t = Instant::now();
    loop {
        let running = running_tasks(h).await?;
        let slot_items = slots(h).await?;
        let idle: BTreeSet<String> = slot_items
            .iter()
            .filter_map(|(k, i)| Some((k.strip_prefix(names::table::SLOT_PREFIX)?, i)))
            .filter(|(_, i)| s(i, names::table::SLOT_STATE).as_deref() != Some("GONE"))
            .map(|(id, _)| id.to_string())
            .collect();
        let slot_tasks: BTreeSet<String> = running.iter().filter(|r| names::pool::slot_of(r).is_some()).map(|r| names::pool::slot_of(r).unwrap().to_string()).collect();
        let jobs: Vec<&String> = running.iter().filter(|r| names::pool::slot_of(r).is_none()).collect();
        // (A slot is CLAIMED from its job's start until its task's stop is handled: a job
        // cancelled at the end of a round may have its stop still on the way.)
        let claimed = slot_items.iter().any(|(k, i)| k.starts_with(names::table::SLOT_PREFIX) && s(i, names::table::SLOT_STATE).as_deref() == Some("CLAIMED"));
        if jobs.is_empty() && !claimed && idle == slot_tasks && idle.len() as u32 == WARM_POOL {
            return Ok(());
        }
        // A slot whose start died is given up the recovery grace after it was made.
        if t.elapsed() > Duration::from_secs(GRACE as u64 + 40) {
            let every = items(h).await?;
            let pool: Vec<String> = every.iter().filter(|(k, _)| k.starts_with("seat#") || k.starts_with(names::table::SLOT_PREFIX)).map(|(k, i)| format!("{k} {i:?}")).collect();
            return Err(format!(
                "the pool did not settle in {} s: slot items not gone {idle:?}, slot tasks {slot_tasks:?}, job tasks {jobs:?}\n  {}",
                t.elapsed().as_secs(),
                pool.join("\n  ")
            ));
        }
        // The sweep refills and retires; in AWS it runs every 5 minutes.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn check(h: &Harness, seed: u64, sent: &[Sent], finished: &BTreeMap<String, JobStatus>, ledger_from: u64) -> Result<(), String> {
    let mut broken = Vec::new();
    let items = items(h).await?;
    // One terminal state, kept.
    for (id, first) in finished {
        let now = items.get(id).and_then(status);
        if now != Some(*first) {
            broken.push(format!("{id} finished {first:?}, later {now:?}"));
        }
    }
    // What the agents ran (this round's part of the ledger).
    let ledger = std::fs::read(&h.ledger).unwrap_or_default();
    let ledger = String::from_utf8_lossy(&ledger[(ledger_from as usize).min(ledger.len())..]).to_string();
    let mut starts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut done: BTreeMap<&str, usize> = BTreeMap::new();
    let mut spans: BTreeMap<&str, (u128, Option<u128>)> = BTreeMap::new();
    for line in ledger.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f.as_slice() {
            ["start", job, task, at] => {
                *starts.entry(job).or_default() += 1;
                spans.insert(task, (at.parse().unwrap_or(0), None));
            }
            ["end", job, task, at, how] => {
                if *how == "done" {
                    *done.entry(job).or_default() += 1;
                }
                if let Some(s) = spans.get_mut(task) {
                    s.1 = Some(at.parse().unwrap_or(0));
                }
            }
            _ => broken.push(format!("a ledger line that is not one: {line:?}")),
        }
    }
    for j in sent {
        let ran = starts.get(j.task_id.as_str()).copied().unwrap_or(0);
        if ran > 1 {
            let lines: Vec<&str> = ledger.lines().filter(|l| l.contains(j.task_id.as_str())).collect();
            broken.push(format!("{} ran {ran} times: {lines:?}; its item {:?}", j.task_id, items.get(&j.task_id)));
        }
        if finished[&j.task_id] == JobStatus::Completed && done.get(j.task_id.as_str()).copied().unwrap_or(0) != 1 {
            broken.push(format!("{} COMPLETED, but its agent did not run it to the end once ({ran} starts)", j.task_id));
        }
    }
    // At most max_running of a tenant's jobs ran at once, by the agents' own clocks.
    let tenant_of: HashMap<&str, &str> = sent.iter().map(|j| (j.task_id.as_str(), j.tenant)).collect();
    let job_of_task: HashMap<&str, &str> = ledger.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.first() == Some(&"start")).then(|| (f[2], f[1]))
    }).collect();
    for tenant in TENANTS {
        let mut edges: Vec<(u128, i32)> = Vec::new();
        for (task, (from, to)) in &spans {
            if job_of_task.get(task).and_then(|j| tenant_of.get(j)) == Some(&tenant) {
                edges.push((*from, 1));
                edges.push((to.unwrap_or(u128::MAX), -1));
            }
        }
        edges.sort();
        let (mut now, mut most, mut peak) = (0, 0, 0);
        for (at, d) in edges {
            now += d;
            if now > most {
                (most, peak) = (now, at);
            }
        }
        if most > MAX_RUNNING as i32 {
            // The agents running at the peak: their jobs, how each ended, and their spans (ms
            // from the first start) and last ledger words, so the interleaving can be read.
            let first = spans.values().map(|(from, _)| *from).min().unwrap_or(0);
            let at_peak: Vec<String> = spans
                .iter()
                .filter(|(task, (from, to))| job_of_task.get(*task).and_then(|j| tenant_of.get(j)) == Some(&tenant) && *from <= peak && to.is_none_or(|t| t > peak))
                .map(|(task, (from, to))| {
                    let job = job_of_task[task];
                    let how = ledger.lines().filter(|l| l.starts_with("end ") && l.contains(task)).map(|l| l.rsplit(' ').next().unwrap_or("")).collect::<Vec<_>>().join(",");
                    format!("job {job} ({:?}, {}) task {task}: {} -> {:?} ms ({how})", finished.get(job), items.get(job).and_then(|i| s(i, names::table::ERROR_CODE)).unwrap_or_default(), from - first, to.map(|t| t - first))
                })
                .collect();
            broken.push(format!("{tenant} ran {most} jobs at once (max_running {MAX_RUNNING}), {} ms in:\n    {}", peak - first, at_peak.join("\n    ")));
        }
    }
    // Webhooks: the final event, once by its id, signed for the tenant.
    let requests = h.receiver.requests();
    let secret_index = |tenant: &str| h.stack.signing_secrets.iter().position(|(t, _)| t == tenant);
    for j in sent.iter().filter(|j| j.webhook) {
        let got: Vec<&Value> = requests.iter().filter(|r| r["task_id"] == j.task_id.as_str()).collect();
        let state = items.get(&j.task_id).and_then(|i| s(i, names::table::WEBHOOK_STATE));
        let want_type = names::webhook::event_type(finished[&j.task_id]).unwrap_or("?");
        let ids: BTreeSet<&str> = got.iter().filter_map(|r| r["id"].as_str()).collect();
        if ids.len() > 1 {
            broken.push(format!("{} sent {} events: {ids:?}", j.task_id, ids.len()));
        }
        for r in &got {
            if r["type"] != want_type {
                broken.push(format!("{} finished {:?} but sent {}", j.task_id, finished[&j.task_id], r["type"]));
            }
            let verified = secret_index(j.tenant).and_then(|i| r["verified"][i].as_bool()) == Some(true);
            if !verified {
                broken.push(format!("{}: an event not signed with {}'s secret: {r}", j.task_id, j.tenant));
            }
        }
        let delivered = got.iter().any(|r| r["answer"] == "200" || r["answer"].as_str().is_some_and(|a| a.starts_with("timeout")));
        match state.as_deref() {
            Some("DELIVERED") if !delivered => broken.push(format!(
                "{} DELIVERED, but the receiver answered none of its {} requests with 2xx (of {} it recorded); the attempts: {:?}",
                j.task_id,
                got.len(),
                requests.len(),
                items.get(&j.task_id).and_then(|i| i.get(names::table::WEBHOOK_ATTEMPTS))
            )),
            // Ended FAILED by a sweep because its message was dead-lettered: the function may have
            // sent it before it died on each receive, and could not know. Likewise a send the
            // round does not record (the receiver saw more than the attempts say): its function
            // died between sending and recording, and the attempt made again was refused.
            Some("FAILED") if delivered && !stalled(items.get(&j.task_id)) && got.len() <= recorded_attempts(items.get(&j.task_id)) => {
                broken.push(format!("{} dead-lettered though the receiver took it", j.task_id))
            }
            _ => {}
        }
    }
    // Usage: every ended job counted once in its tenant's usage, under its final status (every
    // round's: the usage items add up across them, as the jobs do).
    for tenant in TENANTS {
        let prefix = format!("{}{tenant}#", names::table::USAGE_PREFIX);
        let sum = |attr: &str| items.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(_, i)| n(i, attr)).sum::<i64>();
        let ended = |st: JobStatus| items.values().filter(|i| s(i, names::table::TENANT_ID).as_deref() == Some(tenant) && status(i) == Some(st)).count() as i64;
        let jobs = (ended(JobStatus::Completed), ended(JobStatus::Failed), ended(JobStatus::Cancelled));
        let counted = (sum("completed"), sum("failed"), sum("cancelled"));
        if counted != jobs || sum(names::table::USAGE_JOBS) != jobs.0 + jobs.1 + jobs.2 {
            broken.push(format!("{tenant}'s usage counts {counted:?} completed, failed, cancelled ({} jobs); its jobs ended {jobs:?}", sum(names::table::USAGE_JOBS)));
        }
    }
    // Counters: equal to a recount of the jobs (nothing of this round is unfinished), none parked.
    for tenant in TENANTS {
        let Some(counter) = items.get(&names::table::counter_key(tenant)) else { continue };
        let unfinished = |statuses: &[JobStatus]| {
            items.values().filter(|i| s(i, names::table::TENANT_ID).as_deref() == Some(tenant) && status(i).is_some_and(|st| statuses.contains(&st))).count() as i64
        };
        let queued = unfinished(&[JobStatus::Queued]);
        let running = unfinished(&[JobStatus::Provisioning, JobStatus::Provisioned, JobStatus::Running]);
        // A job ended (cancelled, timed out) while its task may still run keeps its running place
        // until the task has stopped.
        let set = |item: Option<&HashMap<String, AttributeValue>>, attr: &str| item.and_then(|i| i.get(attr)).and_then(|p| p.as_ss().ok()).cloned().unwrap_or_default();
        let stopping = set(Some(counter), names::table::STOPPING);
        let (q, r) = (n(counter, names::table::QUEUED_COUNT), n(counter, names::table::RUNNING_COUNT));
        if (q, r) != (queued, running + stopping.len() as i64) {
            broken.push(format!("{tenant}'s counts are queued {q}, running {r}; its jobs say {queued}, {running}, with {} places kept for stopping tasks", stopping.len()));
        }
        // And gives it back: the task's STOPPED event, or the sweep (every 3 s here) once the
        // recovery grace has passed.
        let mut stopping = stopping;
        let t = Instant::now();
        while !stopping.is_empty() && t.elapsed() < Duration::from_secs(GRACE as u64 + 10) {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = h.ddb.get_item().table_name(&h.stack.config.table).key(names::table::TASK_ID, AttributeValue::S(names::table::counter_key(tenant))).consistent_read(true).send().await;
            stopping = set(now.map_err(|e| format!("GetItem: {e:?}"))?.item.as_ref(), names::table::STOPPING);
        }
        if !stopping.is_empty() {
            // Each job as it stands, and its task as ECS tells it.
            let mut why = Vec::new();
            for entry in &stopping {
                let id = entry.rsplit('|').next().unwrap_or_default();
                let item = h.ddb.get_item().table_name(&h.stack.config.table).key(names::table::TASK_ID, AttributeValue::S(id.into())).consistent_read(true).send().await.ok().and_then(|r| r.item);
                let get = |k: &str| item.as_ref().and_then(|i| i.get(k)).map(|v| format!("{v:?}")).unwrap_or_else(|| "-".into());
                let arn = item.as_ref().and_then(|i| i.get(names::table::ECS_TASK_ARN)).and_then(|v| v.as_s().ok()).cloned();
                let task = match &arn {
                    Some(arn) => h.ecs.describe_tasks().cluster(&h.stack.config.cluster_arn).tasks(arn).send().await.ok().map(|r| format!("{:?}", r.tasks().first().map(|t| (t.last_status(), t.stopped_reason())))),
                    None => None,
                };
                why.push(format!(
                    "{id}: status {}, task {}, slot {}, cold {}, error {}, ECS says {task:?}",
                    get(names::table::STATUS),
                    get(names::table::ECS_TASK_ARN),
                    get(names::table::WARM_SLOT),
                    get(names::table::COLD_START),
                    get(names::table::ERROR_CODE)
                ));
            }
            broken.push(format!("{tenant} still keeps running places for stopped tasks: {stopping:?}\n    {}", why.join("\n    ")));
        }
        // (An entry of a job that no longer waits can outlive its job when the park lands late or
        // a job end dies before its waking: the sweep, every 3 s here, drops it.)
        let mut parked = counter.get(names::table::PARKED).and_then(|p| p.as_ss().ok()).cloned().unwrap_or_default();
        let t = Instant::now();
        while !parked.is_empty() && t.elapsed() < Duration::from_secs(8) {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = h.ddb.get_item().table_name(&h.stack.config.table).key(names::table::TASK_ID, AttributeValue::S(names::table::counter_key(tenant))).consistent_read(true).send().await;
            let now = now.map_err(|e| format!("GetItem: {e:?}"))?;
            parked = now.item.as_ref().and_then(|i| i.get(names::table::PARKED)).and_then(|p| p.as_ss().ok()).cloned().unwrap_or_default();
        }
        if !parked.is_empty() {
            broken.push(format!("{tenant} still has parked jobs: {parked:?}"));
        }
    }
    // No slot claimed with nothing to run.
    for (k, i) in &items {
        if k.starts_with(names::table::SLOT_PREFIX) && s(i, names::table::SLOT_STATE).as_deref() == Some("CLAIMED") {
            broken.push(format!("{k} is still CLAIMED (by {:?})", s(i, names::table::CLAIMED_BY)));
        }
    }
    // No secret object or version left (the sweep, every 3 s here, deletes what a losing
    // duplicate delivery wrote after its job finished).
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(8) {
        let left = h.s3.list_object_versions().bucket(&h.stack.config.bucket).prefix(names::bucket::SECRETS_PREFIX).send().await.map_err(|e| format!("ListObjectVersions: {e}"))?;
        if left.versions().is_empty() && left.delete_markers().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let versions = h
        .s3
        .list_object_versions()
        .bucket(&h.stack.config.bucket)
        .prefix(names::bucket::SECRETS_PREFIX)
        .send()
        .await
        .map_err(|e| format!("ListObjectVersions: {e}"))?;
    let left: Vec<String> = versions
        .versions
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.key)
        .chain(versions.delete_markers.unwrap_or_default().into_iter().filter_map(|m| m.key))
        .collect();
    if !left.is_empty() {
        broken.push(format!("secret objects or versions left: {left:?}"));
    }
    if broken.is_empty() {
        Ok(())
    } else {
        Err(format!("seed {seed}:\n  {}", broken.join("\n  ")))
    }
}
