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

fn main() {
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
    });
}
