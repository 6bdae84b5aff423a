//! `make bench-functions`: zip size per function, cold start of the real binary (process start
//! to first answered invocation under a loopback Lambda runtime API, median of repeated runs), and
//! in-process handler time of submit and status against the moto server.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use names::Function;
use std::time::{Duration, Instant};

const COLD_RUNS: usize = 9;
const HANDLER_RUNS: usize = 200;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pct(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Bytes the functions' logger wrote (to nowhere), as CloudWatch Logs would ingest them.
static LOGGED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct Counting;

impl std::io::Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGGED.fetch_add(buf.len(), std::sync::atomic::Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged() -> usize {
    LOGGED.load(std::sync::atomic::Ordering::Relaxed)
}

fn main() {
    logging::init(tracing::Level::INFO, || Counting);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    println!("== zip size per function (make build) ==");
    for f in Function::ALL {
        let path = root.join(f.zip_path());
        match std::fs::metadata(&path) {
            Ok(m) => println!("{:<10} {:>8.2} MiB  {}", f.as_str(), m.len() as f64 / 1048576.0, f.zip_path()),
            Err(_) => println!("{:<10} missing: run `make build`", f.as_str()),
        }
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let tenant = unique("bench");
        let app = app(&[&tenant]).await;
        let key = format!("key-{tenant}");
        let id = submit(&app, &tenant, r#"{"query": "bench"}"#).await;

        println!("\n== cold start: process start -> first answered invocation (release binary, median of {COLD_RUNS}) ==");
        let bin = env!("CARGO_BIN_EXE_functions");
        let path = format!("/jobs/{id}");
        let cases = [
            (Function::Submit, runtime::api_gateway_event("POST", "/jobs", "/jobs", None, &key, Some(r#"{"query": "cold"}"#))),
            (Function::Status, runtime::api_gateway_event("GET", names::routes::JOB, &path, Some(&id), &key, None)),
            (Function::List, runtime::api_gateway_event("GET", "/jobs", "/jobs", None, &key, None)),
            (Function::Process, serde_json::to_value(sqs_event(&[("{}", 1)])).unwrap()),
            (Function::Reconcile, serde_json::json!({"detail-type": "unrelated", "source": "bench", "detail": {}})),
        ];
        for (f, event) in cases {
            let env = runtime::function_env(f, &app.config);
            let mut times = Vec::new();
            for _ in 0..COLD_RUNS {
                let inv = runtime::invoke(bin, &env, event.clone()).await;
                assert!(inv.ok, "{f:?}: {}", inv.response);
                times.push(inv.elapsed);
            }
            println!("{:<10} median {}  min {}  max {}", f.as_str(), ms(median(times.clone())), ms(pct(&times, 0.0)), ms(pct(&times, 1.0)));
        }

        println!("\n== handler time in process against moto ({HANDLER_RUNS} calls each) ==");
        let mut submit_t = Vec::new();
        let req = request(&tenant, "POST", "/jobs", r#"{"query": "handler bench", "options": {"full_page": true}}"#);
        for _ in 0..HANDLER_RUNS {
            let t = Instant::now();
            let r = call(&app, &req).await;
            submit_t.push(t.elapsed());
            assert_eq!(r.status, 202);
        }
        let mut status_t = Vec::new();
        let sreq = request(&tenant, "GET", &path, "");
        for _ in 0..HANDLER_RUNS {
            let t = Instant::now();
            let r = call(&app, &sreq).await;
            status_t.push(t.elapsed());
            assert_eq!(r.status, 200);
        }
        for (name, t) in [("submit", submit_t), ("status", status_t)] {
            println!("{name:<10} median {}  p95 {}  max {}", ms(median(t.clone())), ms(pct(&t, 0.95)), ms(pct(&t, 1.0)));
        }

        metrics_overhead(&tenant).await;
    });
}

/// What the metric lines cost: one line built and written through the logger; the submit and
/// process handlers with them and without (an empty namespace writes none), alternating runs so
/// drift in the emulator hits both alike; and the bytes of metric lines one job writes, start to
/// end, with what CloudWatch Logs charges to ingest them.
async fn metrics_overhead(tenant: &str) {
    const LINES: usize = 20_000;
    println!("\n== metrics (EMF lines through the JSON logger, written to a sink) ==");
    let t = Instant::now();
    for i in 0..LINES {
        let line = names::metrics::TIME_TO_RUNNING.line(names::metrics::DEFAULT_NAMESPACE, 1_796_206_500_000, &[("Start", "warm")], i as f64);
        logging::metrics::emit(line);
    }
    println!("one line: {:.1} us (mean of {LINES})", t.elapsed().as_secs_f64() * 1e6 / LINES as f64);

    let mut with = app(&[tenant]).await;
    let _ = MetricLines::of(&mut with);
    let mut without = app(&[tenant]).await;
    without.store.metrics.namespace = String::new();
    let (mut submit_with, mut submit_without, mut process_with, mut process_without) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let req = request(tenant, "POST", "/jobs", r#"{"query": "metrics bench"}"#);
    for _ in 0..HANDLER_RUNS / 2 {
        for (a, submits, processes) in [(&with, &mut submit_with, &mut process_with), (&without, &mut submit_without, &mut process_without)] {
            let t = Instant::now();
            let r = call(a, &req).await;
            submits.push(t.elapsed());
            assert_eq!(r.status, 202, "{}", r.body);
            let m = job_message(r.body["task_id"].as_str().unwrap());
            let t = Instant::now();
            let _ = functions::process::message(a, &functions::process::Message { body: Some(&m), receive_count: 1 }).await;
            processes.push(t.elapsed());
        }
    }
    for (name, w, wo) in [("submit", submit_with, submit_without), ("process", process_with, process_without)] {
        println!("{name:<10} median with {}  without {}  ({} calls each, alternating)", ms(median(w)), ms(median(wo)), HANDLER_RUNS / 2);
    }
    // One job's whole life (submit, its task started, running, stopped), with and without, of a
    // tenant with running places free.
    let life = unique("life");
    key_of(&with, &life).await;
    let req = request(&life, "POST", "/jobs", r#"{"query": "metrics bench"}"#);
    let mut bytes = Vec::new();
    for a in [&with, &without] {
        let before = logged();
        let r = call(a, &req).await;
        let id = r.body["task_id"].as_str().unwrap().to_owned();
        let _ = functions::process::message(a, &functions::process::Message { body: Some(&job_message(&id)), receive_count: 1 }).await;
        let arn = a.store.get(&functions::model::TaskId::parse(&id).unwrap()).await.unwrap().unwrap().ecs_task_arn.expect("a task");
        for (status, c) in [(names::ecs::TaskStatus::Running, running_container()), (names::ecs::TaskStatus::Stopped, container(Some(0), None))] {
            functions::reconcile::event(a, &task_event(&a.config.cluster_arn, &arn, &id, status, c, None)).await.unwrap();
        }
        let status = a.store.get(&functions::model::TaskId::parse(&id).unwrap()).await.unwrap().unwrap().status;
        assert_eq!(status, names::JobStatus::Completed);
        bytes.push(logged() - before);
    }
    let metric_bytes = bytes[0].saturating_sub(bytes[1]);
    println!(
        "one job, submit to COMPLETED: the functions log {} bytes with metrics, {} without: {metric_bytes} bytes of metric lines (the agent's phases add about 5 lines more); CloudWatch Logs ingestion at $0.50/GB: ${:.2} a million jobs",
        bytes[0],
        bytes[1],
        metric_bytes as f64 * 1e6 / 1e9 * 0.50
    );
}
