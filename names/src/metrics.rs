//! The metrics: one definition of each metric's name, unit and dimensions, which the functions and
//! the agent emit as CloudWatch Embedded Metric Format lines (a JSON log line CloudWatch Logs turns
//! into metric values: no `PutMetricData` on any path), and which the dashboard and the alarms
//! read.
//!
//! EMF: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>.
//! A line is a JSON object with an `_aws` member (`Timestamp`, epoch milliseconds, and
//! `CloudWatchMetrics`: directives of a `Namespace`, its `Dimensions` and its `Metrics`), each
//! dimension and each metric value a member of the line itself. [`validate`] checks a line
//! against that specification.
//!
//! Dimensions, with CloudWatch's price in mind (each name and dimension-value pair is a custom
//! metric, billed per month): small closed sets only (a status, an error code, warm or cold, a
//! webhook outcome, an agent phase), never a job or a slot. The one per-tenant pair is
//! [`TENANT_QUEUED`]/[`TENANT_RUNNING`], written by the sweep once a minute: two metrics per
//! tenant is what an operator needs to see who fills the queue, and a deployment has tens of
//! tenants, not thousands. Everything else a tenant used is in `/usage`, from the table.

use serde_json::{json, Map, Value};

spelled_enum! {
    /// A CloudWatch unit (the ones these metrics use).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Unit {
        Count = "Count",
        Milliseconds = "Milliseconds",
    }
}

/// A metric: its name, unit and the dimensions every value of it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub dimensions: &'static [&'static str],
    /// What it counts or measures, for the dashboard and the runbook.
    pub about: &'static str,
}

/// Dimension names.
pub mod dim {
    /// Why a submit was refused: the API's error code (`RATE_LIMITED`, `TENANT_QUEUE_FULL`, ...).
    pub const REASON: &str = "Reason";
    /// `warm` or `cold`.
    pub const START: &str = "Start";
    /// A job's final status.
    pub const STATUS: &str = "Status";
    /// A failed job's error code.
    pub const ERROR_CODE: &str = "ErrorCode";
    /// An agent phase (`names::metrics::Phase`).
    pub const PHASE: &str = "Phase";
    /// A webhook attempt's outcome (`delivered`, `failed`, `gave_up`).
    pub const OUTCOME: &str = "Outcome";
    pub const TENANT: &str = "Tenant";
}

const fn metric(name: &'static str, unit: Unit, dimensions: &'static [&'static str], about: &'static str) -> Metric {
    Metric { name, unit, dimensions, about }
}

pub const JOBS_SUBMITTED: Metric = metric("JobsSubmitted", Unit::Count, &[], "jobs accepted by POST /jobs");
pub const JOBS_REFUSED: Metric = metric("JobsRefused", Unit::Count, &[dim::REASON], "submits refused, by the API's error code");
pub const JOBS_STARTED: Metric = metric("JobsStarted", Unit::Count, &[dim::START], "jobs handed to a task, warm (a pool slot) or cold (RunTask)");
pub const JOBS_FINISHED: Metric = metric("JobsFinished", Unit::Count, &[dim::STATUS], "jobs ended, by final status");
pub const JOBS_FAILED: Metric = metric("JobsFailed", Unit::Count, &[dim::ERROR_CODE], "jobs failed, by error code");
pub const QUEUE_WAIT: Metric = metric("QueueWait", Unit::Milliseconds, &[], "submit -> taken by the dispatcher");
pub const TIME_TO_RUNNING: Metric = metric("TimeToRunning", Unit::Milliseconds, &[dim::START], "submit -> RUNNING");
pub const RUN_TIME: Metric = metric("RunTime", Unit::Milliseconds, &[], "RUNNING -> finished");
pub const TIME_TO_FINISH: Metric = metric("TimeToFinish", Unit::Milliseconds, &[], "submit -> finished");
pub const RUN_TASK_REFUSED: Metric = metric("RunTaskRefused", Unit::Count, &[], "RunTask calls ECS refused (capacity, throttling); the job is tried again");
pub const AGENT_PHASE: Metric = metric("AgentPhase", Unit::Milliseconds, &[dim::PHASE], "the agent's time in each phase of a job");
pub const WEBHOOK_ATTEMPTS: Metric = metric("WebhookAttempts", Unit::Count, &[dim::OUTCOME], "webhook attempts, by outcome");
pub const WEBHOOK_LATENCY: Metric = metric("WebhookLatency", Unit::Milliseconds, &[], "job finished -> its webhook delivered");
pub const POOL_IDLE: Metric = metric("PoolIdle", Unit::Count, &[], "warm slots waiting for a job (the sweep's count)");
pub const POOL_CLAIMED: Metric = metric("PoolClaimed", Unit::Count, &[], "warm slots holding a job (the sweep's count)");
pub const POOL_REFILLS: Metric = metric("PoolRefills", Unit::Count, &[], "warm slots started");
pub const JOBS_WAITING: Metric = metric("JobsWaiting", Unit::Count, &[], "jobs queued, every tenant (the sweep's count)");
pub const JOBS_RUNNING: Metric = metric("JobsRunning", Unit::Count, &[], "running places held, every tenant (the sweep's count)");
pub const TENANT_QUEUED: Metric = metric("TenantQueued", Unit::Count, &[dim::TENANT], "a tenant's queued jobs (the sweep's count)");
pub const TENANT_RUNNING: Metric = metric("TenantRunning", Unit::Count, &[dim::TENANT], "a tenant's running places (the sweep's count)");

/// Every metric, for the contract between the emitters and the dashboard and alarms.
pub const ALL: [Metric; 20] = [
    JOBS_SUBMITTED,
    JOBS_REFUSED,
    JOBS_STARTED,
    JOBS_FINISHED,
    JOBS_FAILED,
    QUEUE_WAIT,
    TIME_TO_RUNNING,
    RUN_TIME,
    TIME_TO_FINISH,
    RUN_TASK_REFUSED,
    AGENT_PHASE,
    WEBHOOK_ATTEMPTS,
    WEBHOOK_LATENCY,
    POOL_IDLE,
    POOL_CLAIMED,
    POOL_REFILLS,
    JOBS_WAITING,
    JOBS_RUNNING,
    TENANT_QUEUED,
    TENANT_RUNNING,
];

pub fn by_name(name: &str) -> Option<Metric> {
    ALL.into_iter().find(|m| m.name == name)
}

/// The deployment's namespace: `<project>/<environment>` (infra-gen passes Terraform
/// expressions, the local stack its own names).
pub fn namespace(project: &str, environment: &str) -> String {
    format!("{project}/{environment}")
}

/// Where no namespace is configured (tests, a function run by hand).
pub const DEFAULT_NAMESPACE: &str = "infra-demo/dev";

spelled_enum! {
    /// The agent's phases, as its `agent_timings_ms` names them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Phase {
        BrowserStart = "browser_start",
        Navigation = "navigate",
        Steps = "steps",
        Capture = "capture",
        Upload = "upload",
    }
}

impl Metric {
    /// One value of this metric as an EMF line (a JSON object): `dimensions` must give exactly
    /// this metric's dimensions, in any order.
    pub fn line(&self, namespace: &str, timestamp_ms: i64, dimensions: &[(&str, &str)], value: f64) -> Value {
        debug_assert!(
            self.dimensions.len() == dimensions.len() && self.dimensions.iter().all(|d| dimensions.iter().any(|(k, _)| k == d)),
            "{} takes dimensions {:?}",
            self.name,
            self.dimensions
        );
        let mut line = Map::new();
        line.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [self.dimensions],
                    "Metrics": [{ "Name": self.name, "Unit": self.unit.as_str() }],
                }],
            }),
        );
        for (k, v) in dimensions {
            line.insert((*k).to_string(), Value::String((*v).to_string()));
        }
        line.insert(self.name.to_string(), json!(value));
        Value::Object(line)
    }
}

/// The units CloudWatch accepts (`MetricDatum.Unit`).
const UNITS: [&str; 27] = [
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits", "Kilobits",
    "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
    "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
];

/// Checks `line` against the EMF specification: the `_aws` metadata (a `Timestamp` in epoch
/// milliseconds, at least one directive), each directive's `Namespace` (1 to 255 characters),
/// `Dimensions` (sets of at most 30 names, each naming a string member of the line of at most
/// 1024 characters) and `Metrics` (at most 100, each naming a number, or an array of at most 100
/// numbers, on the line; a valid `Unit`; `StorageResolution` 1 or 60), and no members the
/// specification does not define inside them. Returns the metric names the line carries.
pub fn validate(line: &Value) -> Result<Vec<String>, String> {
    let root = line.as_object().ok_or("an EMF line is a JSON object")?;
    let aws = root.get("_aws").and_then(Value::as_object).ok_or("no `_aws` object")?;
    only(aws, &["Timestamp", "CloudWatchMetrics", "LogGroupName", "LogStreamName"], "_aws")?;
    let ts = aws.get("Timestamp").and_then(Value::as_i64).ok_or("`_aws.Timestamp` is not epoch milliseconds")?;
    if ts < 1_000_000_000_000 {
        return Err(format!("`_aws.Timestamp` {ts} is not in milliseconds"));
    }
    let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).ok_or("`_aws.CloudWatchMetrics` is not an array")?;
    if directives.is_empty() {
        return Err("`_aws.CloudWatchMetrics` is empty".into());
    }
    let mut names = Vec::new();
    for d in directives {
        let d = d.as_object().ok_or("a metric directive is not an object")?;
        only(d, &["Namespace", "Dimensions", "Metrics"], "a metric directive")?;
        let ns = d.get("Namespace").and_then(Value::as_str).ok_or("a directive has no `Namespace`")?;
        if ns.is_empty() || ns.chars().count() > 255 || ns.starts_with(':') {
            return Err(format!("namespace {ns:?} is not 1 to 255 characters"));
        }
        if ns.starts_with("AWS/") {
            return Err(format!("namespace {ns:?} is reserved for AWS"));
        }
        let sets = d.get("Dimensions").and_then(Value::as_array).ok_or("a directive has no `Dimensions` array")?;
        for set in sets {
            let set = set.as_array().ok_or("a dimension set is not an array")?;
            if set.len() > 30 {
                return Err(format!("a dimension set has {} dimensions (at most 30)", set.len()));
            }
            for k in set {
                let k = k.as_str().ok_or("a dimension name is not a string")?;
                let v = root.get(k).ok_or_else(|| format!("dimension {k:?} is not a member of the line"))?;
                let v = v.as_str().ok_or_else(|| format!("dimension {k:?} is not a string"))?;
                if v.is_empty() || v.chars().count() > 1024 || k.is_empty() || k.chars().count() > 250 {
                    return Err(format!("dimension {k:?} = {v:?} is empty or too long"));
                }
            }
        }
        let metrics = d.get("Metrics").and_then(Value::as_array).ok_or("a directive has no `Metrics` array")?;
        if metrics.is_empty() || metrics.len() > 100 {
            return Err(format!("a directive has {} metrics (1 to 100)", metrics.len()));
        }
        for m in metrics {
            let m = m.as_object().ok_or("a metric definition is not an object")?;
            only(m, &["Name", "Unit", "StorageResolution"], "a metric definition")?;
            let name = m.get("Name").and_then(Value::as_str).filter(|n| !n.is_empty() && n.chars().count() <= 1024).ok_or("a metric has no `Name`")?;
            if let Some(unit) = m.get("Unit") {
                let unit = unit.as_str().ok_or("a metric's `Unit` is not a string")?;
                if !UNITS.contains(&unit) {
                    return Err(format!("metric {name}: {unit:?} is not a CloudWatch unit"));
                }
            }
            if let Some(r) = m.get("StorageResolution") {
                if !matches!(r.as_i64(), Some(1 | 60)) {
                    return Err(format!("metric {name}: `StorageResolution` must be 1 or 60"));
                }
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(a)) if a.len() <= 100 && a.iter().all(Value::is_number) => {}
                _ => return Err(format!("metric {name} has no number (or array of at most 100 numbers) on the line")),
            }
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// One value a metric line records, as CloudWatch extracts it: the metric, one of its dimension
/// sets with the line's values of those dimensions, in the set's order (empty: no dimensions).
#[derive(Clone, Debug, PartialEq)]
pub struct Datum {
    pub metric: String,
    pub dimensions: Vec<(String, String)>,
    pub value: f64,
}

/// Every value `line` records, once it is valid ([`validate`]): for each directive, each metric
/// under each of its dimension sets (a metric's array of values gives one datum a value).
pub fn data(line: &Value) -> Result<Vec<Datum>, String> {
    validate(line)?;
    let mut out = Vec::new();
    for directive in line["_aws"]["CloudWatchMetrics"].as_array().into_iter().flatten() {
        let sets: Vec<Vec<(String, String)>> = match directive["Dimensions"].as_array() {
            Some(sets) if !sets.is_empty() => sets
                .iter()
                .map(|set| set.as_array().into_iter().flatten().filter_map(Value::as_str).map(|d| (d.to_string(), line[d].as_str().unwrap_or_default().to_string())).collect())
                .collect(),
            _ => vec![Vec::new()],
        };
        for metric in directive["Metrics"].as_array().into_iter().flatten() {
            let name = metric["Name"].as_str().unwrap_or_default();
            let values: Vec<f64> = match &line[name] {
                Value::Array(values) => values.iter().filter_map(Value::as_f64).collect(),
                v => v.as_f64().into_iter().collect(),
            };
            for dimensions in &sets {
                for value in &values {
                    out.push(Datum { metric: name.to_string(), dimensions: dimensions.clone(), value: *value });
                }
            }
        }
    }
    Ok(out)
}

fn only(o: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("{what} has a member the specification does not define: {k:?}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lines_data_are_each_metric_under_each_dimension_set() {
        let line = json!({
            "_aws": {"Timestamp": 1_765_000_000_000_i64, "CloudWatchMetrics": [
                {"Namespace": "p/e", "Dimensions": [["Status"], []], "Metrics": [{"Name": "JobsFinished", "Unit": "Count"}]},
                {"Namespace": "p/e", "Dimensions": [], "Metrics": [{"Name": "RunTime", "Unit": "Milliseconds"}]}
            ]},
            "Status": "COMPLETED", "JobsFinished": 1, "RunTime": [200, 300]
        });
        let d = |m: &str, dims: &[(&str, &str)], value: f64| Datum { metric: m.into(), dimensions: dims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), value };
        assert_eq!(
            data(&line),
            Ok(vec![d("JobsFinished", &[("Status", "COMPLETED")], 1.0), d("JobsFinished", &[], 1.0), d("RunTime", &[], 200.0), d("RunTime", &[], 300.0)])
        );
        assert!(data(&json!({"_aws": {}})).is_err());
    }

    #[test]
    fn a_line_of_each_metric_is_valid_emf() {
        for m in ALL {
            let dims: Vec<(&str, &str)> = m.dimensions.iter().map(|d| (*d, "x")).collect();
            let line = m.line("infra-demo/dev", 1_796_206_500_000, &dims, 3.0);
            assert_eq!(validate(&line), Ok(vec![m.name.to_string()]), "{line}");
        }
    }

    #[test]
    fn what_the_specification_refuses_is_refused() {
        let good = JOBS_FINISHED.line("infra-demo/dev", 1_796_206_500_000, &[(dim::STATUS, "COMPLETED")], 1.0);
        let broken = |f: &dyn Fn(&mut Value)| {
            let mut l = good.clone();
            f(&mut l);
            validate(&l).unwrap_err()
        };
        assert!(broken(&|l| l["_aws"]["Timestamp"] = json!(1_796_206_500)).contains("milliseconds"));
        assert!(broken(&|l| {
            l.as_object_mut().unwrap().remove("Status");
        })
        .contains("Status"));
        assert!(broken(&|l| l["Status"] = json!(3)).contains("not a string"));
        assert!(broken(&|l| l["JobsFinished"] = json!("one")).contains("no number"));
        assert!(broken(&|l| l["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Jobs")).contains("unit"));
        assert!(broken(&|l| l["_aws"]["CloudWatchMetrics"][0]["Extra"] = json!(1)).contains("Extra"));
        assert!(broken(&|l| l["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("AWS/ECS")).contains("reserved"));
        assert!(broken(&|l| l["_aws"]["CloudWatchMetrics"] = json!([])).contains("empty"));
    }

    #[test]
    fn names_are_unique_and_metric_names_are_not_dimension_names() {
        let mut seen = std::collections::HashSet::new();
        for m in ALL {
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(ALL.iter().all(|o| !o.dimensions.contains(&m.name)));
            assert_eq!(by_name(m.name), Some(m));
        }
    }
}
