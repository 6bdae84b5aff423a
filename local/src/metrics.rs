//! CloudWatch's part for the local stack: the metric lines the functions write (in process) and
//! the agents write (read from their output, as CloudWatch Logs extracts them) become series in
//! memory, by metric and dimensions, that `make local` prints when it stops and tests read back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// One series: a metric with its dimension values (`Status=COMPLETED`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Series {
    pub metric: String,
    pub dimensions: String,
}

#[derive(Default)]
pub struct Store {
    series: Mutex<BTreeMap<Series, Vec<f64>>>,
    /// Its collector's id, while it collects.
    collector: Mutex<Option<usize>>,
    /// Lines that are not valid EMF (CloudWatch would drop them): kept to be reported.
    pub invalid: Mutex<Vec<String>>,
}

/// A series' statistics, as a CloudWatch graph would show them over the whole run.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub count: usize,
    pub sum: f64,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

impl Store {
    /// A store that receives every metric line of this process from now on.
    pub fn install() -> Arc<Store> {
        let store = Arc::new(Store::default());
        let s = store.clone();
        let id = logging::metrics::collect_into(move |line| s.add(line));
        *store.collector.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
        store
    }

    /// Collects no more (what it holds stays).
    pub fn uninstall(&self) {
        if let Some(id) = self.collector.lock().unwrap_or_else(|p| p.into_inner()).take() {
            logging::metrics::stop_collecting(id);
        }
    }

    pub fn add(&self, line: &Value) {
        let data = match names::metrics::data(line) {
            Ok(d) => d,
            Err(e) => {
                self.invalid.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{e}: {line}"));
                return;
            }
        };
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        for d in data {
            let dims: Vec<String> = d.dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect();
            series.entry(Series { metric: d.metric, dimensions: dims.join(",") }).or_default().push(d.value);
        }
    }

    /// The statistics of `metric` with exactly `dimensions` (`"Status=COMPLETED"`, or `""`).
    pub fn stats(&self, metric: &str, dimensions: &str) -> Option<Stats> {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        series.get(&Series { metric: metric.into(), dimensions: dimensions.into() }).map(|v| stats(v))
    }

    /// Every series, one line each: count, sum, p50, p95, max.
    pub fn render(&self) -> String {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = format!("{:<44} {:>7} {:>12} {:>10} {:>10} {:>10}\n", "metric", "count", "sum", "p50", "p95", "max");
        for (s, v) in series.iter() {
            let st = stats(v);
            let name = if s.dimensions.is_empty() { s.metric.clone() } else { format!("{} {}", s.metric, s.dimensions) };
            out.push_str(&format!("{name:<44} {:>7} {:>12.0} {:>10.0} {:>10.0} {:>10.0}\n", st.count, st.sum, st.p50, st.p95, st.max));
        }
        out
    }
}

fn stats(v: &[f64]) -> Stats {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let at = |p: usize| s.get(((s.len().max(1) - 1) * p).div_ceil(100)).copied().unwrap_or_default();
    Stats { count: s.len(), sum: s.iter().sum(), p50: at(50), p95: at(95), max: s.last().copied().unwrap_or_default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_series_by_dimensions() {
        let store = Store::default();
        let ns = names::metrics::DEFAULT_NAMESPACE;
        for v in [100.0, 300.0, 200.0] {
            store.add(&names::metrics::TIME_TO_RUNNING.line(ns, 1_796_206_500_000, &[("Start", "warm")], v));
        }
        store.add(&names::metrics::JOBS_SUBMITTED.line(ns, 1_796_206_500_000, &[], 1.0));
        store.add(&serde_json::json!({"_aws": {}}));
        let s = store.stats("TimeToRunning", "Start=warm").unwrap();
        assert_eq!((s.count, s.sum, s.p50, s.max), (3, 600.0, 200.0, 300.0));
        assert_eq!(store.stats("JobsSubmitted", "").unwrap().count, 1);
        assert_eq!(store.invalid.lock().unwrap().len(), 1);
        assert!(store.render().contains("TimeToRunning Start=warm"));
    }
}
