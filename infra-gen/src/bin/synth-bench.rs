//! `make bench`: full-stack synthesis time (build the model, render every JSON file and the README), warm, median
//! of repeated runs, for the default stack and for one with 1000 tenants. Also prints the stack's
//! resources by type. Run it as a release build.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use infra_gen::AppConfig;

const RUNS: usize = 200;

fn median_synth(config: &AppConfig) -> (Duration, Duration, usize) {
    let mut times = Vec::with_capacity(RUNS);
    let mut bytes = 0;
    for _ in 0..5 {
        infra_gen::synth_files(config).expect("the stack synthesizes");
    }
    for _ in 0..RUNS {
        let start = Instant::now();
        let files = infra_gen::synth_files(config).expect("the stack synthesizes");
        times.push(start.elapsed());
        bytes = files.values().map(String::len).sum();
    }
    times.sort();
    (times[RUNS / 2], times[RUNS * 95 / 100], bytes)
}

fn main() {
    let default = AppConfig::default();
    let many = AppConfig { tenants: (0..1000).map(|i| format!("tenant-{i:04}")).collect(), ..AppConfig::default() };

    let stack = infra_gen::build(&default).expect("the stack builds");
    let docs = stack.documents().expect("the stack synthesizes");
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    for doc in docs.values() {
        for section in ["resource", "data"] {
            if let Some(types) = doc.get(section).and_then(|v| v.as_object()) {
                for (ty, named) in types {
                    let key = if section == "data" { format!("data.{ty}") } else { ty.clone() };
                    *by_type.entry(key).or_default() += named.as_object().map_or(0, |m| m.len());
                }
            }
        }
    }
    let count = |data: bool| -> usize { by_type.iter().filter(|(t, _)| t.starts_with("data.") == data).map(|(_, n)| n).sum() };
    println!("stack: {} resources, {} data sources, {} files", count(false), count(true), docs.len());
    for (ty, n) in &by_type {
        println!("  {n:>3}  {ty}");
    }

    for (label, config) in [("default stack (1 tenant)", &default), ("1000 tenants", &many)] {
        let (median, p95, bytes) = median_synth(config);
        println!(
            "synth {label}: median {:.2} ms, p95 {:.2} ms over {RUNS} runs, {bytes} bytes of JSON",
            median.as_secs_f64() * 1e3,
            p95.as_secs_f64() * 1e3
        );
    }
}
