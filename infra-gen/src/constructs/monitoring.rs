//! What an operator watches: the alarms that page someone (through the stack's KMS-encrypted SNS
//! topic, to an optional e-mail subscription) and a CloudWatch dashboard, both built from the
//! metric definitions of `names::metrics` and the AWS metrics of the stack's own resources. Every
//! alarm's description names its section of `docs/runbook.md`.
//!
//! The dashboard body is built from typed widgets ([`Widget`]) and serialized to JSON here; the
//! Terraform references inside it (the namespace, the region, queue and function names) stay
//! `${...}` interpolations of the one template string Terraform renders.

use serde::Serialize;
use serde_json::{json, Value};

use super::{Context, RUNBOOK};
use crate::model::resources::observability::{CloudwatchDashboard, MetricAlarm, MetricQuery, QueryMetric, SnsTopic, SnsTopicSubscription};
use crate::model::{func, Error, File, Meta, Ref, Stack, Val};
use names::metrics::{self as m, dim, Metric};

/// What the alarms and the dashboard watch.
pub struct MonitoringProps<'a> {
    pub topic: &'a Ref<SnsTopic>,
    /// `var.alarm_email`: subscribed to the topic when not empty.
    pub alarm_email: Val,
    /// `var.alarm_failed_jobs`: failed jobs in 15 minutes above which the failure alarm fires.
    pub failed_jobs_threshold: Val,
    /// `var.warm_pool_size`: the empty-pool alarm exists only with a pool.
    pub warm_pool_size: Val,
    /// (queue name, DLQ name) of the jobs and of the webhook deliveries.
    pub jobs_queue: (Val, Val),
    pub webhooks_queue: (Val, Val),
    /// Every function: (id, function name).
    pub functions: Vec<(&'static str, Val)>,
    pub cluster_name: Val,
}


/// The alarms and the dashboard.
pub fn monitoring(stack: &mut Stack, ctx: &Context, props: &MonitoringProps<'_>) -> Result<(), Error> {
    let ns = super::render_pattern2(names::metrics::namespace, &ctx.project, &ctx.environment);
    stack.add_with(
        File::Observability,
        "alarm_email",
        SnsTopicSubscription { topic_arn: props.topic.arn(), protocol: "email".into(), endpoint: props.alarm_email.clone() },
        Meta { count: Some(func::cond(&func::ne(&props.alarm_email, &Val::lit("")), &Val::Int(1), &Val::Int(0))), ..Meta::default() },
    )?;
    for alarm in alarms(ctx, &ns, props) {
        alarm.add(stack, ctx, props.topic)?;
    }
    stack.add(
        File::Observability,
        "dashboard",
        CloudwatchDashboard { dashboard_name: ctx.prefix.clone() + "-jobs", dashboard_body: Val::Str(dashboard_body(ctx, &ns, props)) },
    )?;
    Ok(())
}

/// One alarm: a single metric, or metric math over several.
pub struct Alarm {
    pub logical: String,
    pub name_suffix: String,
    pub what: String,
    /// The runbook section (an anchor of `docs/runbook.md`).
    pub runbook: &'static str,
    pub query: AlarmQuery,
    pub period: i64,
    pub evaluation_periods: i64,
    pub threshold: Val,
    /// Created only when this is true (a Terraform condition).
    pub only_if: Option<Val>,
}

/// A metric line of an alarm's math: (id, namespace, metric, dimensions, statistic).
pub type MathLine = (&'static str, Val, Val, Vec<(String, Val)>, &'static str);

pub enum AlarmQuery {
    /// (namespace, metric, dimensions, statistic).
    Metric(Val, Val, Vec<(String, Val)>, &'static str),
    /// Metrics by id, and the expression over them that is compared.
    Math(Vec<MathLine>, String),
}

impl Alarm {
    fn add(self, stack: &mut Stack, ctx: &Context, topic: &Ref<SnsTopic>) -> Result<(), Error> {
        let description = format!("{} Runbook: {RUNBOOK}#{}", self.what, self.runbook);
        let mut alarm = MetricAlarm {
            alarm_name: ctx.prefix.clone() + "-" + self.name_suffix.as_str(),
            alarm_description: Some(Val::lit(description)),
            evaluation_periods: Val::Int(self.evaluation_periods),
            threshold: self.threshold,
            comparison_operator: "GreaterThanThreshold".into(),
            treat_missing_data: Some("notBreaching".into()),
            alarm_actions: vec![topic.arn()],
            ok_actions: vec![topic.arn()],
            ..Default::default()
        };
        match self.query {
            AlarmQuery::Metric(namespace, metric, dimensions, stat) => {
                alarm.namespace = Some(namespace);
                alarm.metric_name = Some(metric);
                alarm.dimensions = dimensions.into_iter().collect();
                alarm.statistic = Some(stat.into());
                alarm.period = Some(Val::Int(self.period));
            }
            AlarmQuery::Math(metrics, expression) => {
                alarm.metric_query = metrics
                    .into_iter()
                    .map(|(id, namespace, metric, dimensions, stat)| MetricQuery {
                        id: id.into(),
                        return_data: Some(Val::Bool(false)),
                        metric: Some(QueryMetric { namespace, metric_name: metric, dimensions: dimensions.into_iter().collect(), period: Val::Int(self.period), stat: stat.into() }),
                        ..Default::default()
                    })
                    .chain([MetricQuery { id: "alarm".into(), expression: Some(Val::lit(expression)), label: Some(Val::lit(&self.what)), return_data: Some(Val::Bool(true)), ..Default::default() }])
                    .collect();
            }
        }
        let meta = match self.only_if {
            Some(c) => Meta { count: Some(func::cond(&c, &Val::Int(1), &Val::Int(0))), ..Meta::default() },
            None => Meta::default(),
        };
        stack.add_with(File::Observability, &self.logical, alarm, meta)?;
        Ok(())
    }
}

fn ours(ns: &Val, metric: Metric, dims: &[(&str, &str)]) -> (Val, Val, Vec<(String, Val)>) {
    (ns.clone(), metric.name.into(), dims.iter().map(|(k, v)| ((*k).to_string(), Val::lit(v))).collect())
}

/// Every alarm of the stack but the per-queue DLQ alarms and the functions' error alarms (their
/// constructs add those).
pub fn alarms(ctx: &Context, ns: &Val, p: &MonitoringProps<'_>) -> Vec<Alarm> {
    let _ = ctx;
    let sqs = |queue: &Val| vec![("QueueName".to_string(), queue.clone())];
    let mut out = vec![
        Alarm {
            logical: "jobs_queue_age".into(),
            name_suffix: "jobs-queue-age".into(),
            what: "A job message has waited over 15 minutes in the jobs queue: the process function is not taking them.".into(),
            runbook: "jobs-queue-age",
            query: AlarmQuery::Metric("AWS/SQS".into(), "ApproximateAgeOfOldestMessage".into(), sqs(&p.jobs_queue.0), "Maximum"),
            period: 300,
            evaluation_periods: 1,
            threshold: Val::Int(900),
            only_if: None,
        },
        Alarm {
            logical: "webhooks_queue_age".into(),
            name_suffix: "webhooks-queue-age".into(),
            what: "A webhook message is older than the longest retry wait plus an hour: the webhook function is not taking them.".into(),
            runbook: "webhooks-queue-age",
            query: AlarmQuery::Metric("AWS/SQS".into(), "ApproximateAgeOfOldestMessage".into(), sqs(&p.webhooks_queue.0), "Maximum"),
            period: 300,
            evaluation_periods: 1,
            threshold: Val::Int(i64::from(names::webhook::DEFAULT_RETRY_SECONDS.iter().copied().max().unwrap_or(0)) + 3600),
            only_if: None,
        },
        {
            let (ns, name, dims) = ours(ns, m::JOBS_FINISHED, &[(dim::STATUS, "FAILED")]);
            Alarm {
                logical: "jobs_failing".into(),
                name_suffix: "jobs-failing".into(),
                what: "More jobs failed in 15 minutes than var.alarm_failed_jobs.".into(),
                runbook: "jobs-failing",
                query: AlarmQuery::Metric(ns, name, dims, "Sum"),
                period: 900,
                evaluation_periods: 1,
                threshold: p.failed_jobs_threshold.clone(),
                only_if: None,
            }
        },
        {
            let finished = |id, status: &str| {
                let (ns, name, dims) = ours(ns, m::JOBS_FINISHED, &[(dim::STATUS, status)]);
                (id, ns, name, dims, "Sum")
            };
            let (wns, wname, wdims) = ours(ns, m::JOBS_WAITING, &[]);
            Alarm {
                logical: "jobs_stalled".into(),
                name_suffix: "jobs-stalled".into(),
                what: "Jobs waited for 30 minutes and none finished.".into(),
                runbook: "jobs-stalled",
                query: AlarmQuery::Math(
                    vec![("waiting", wns, wname, wdims, "Maximum"), finished("completed", "COMPLETED"), finished("failed", "FAILED"), finished("cancelled", "CANCELLED")],
                    "IF(FILL(waiting, 0) > 0 AND FILL(completed, 0) + FILL(failed, 0) + FILL(cancelled, 0) == 0, 1, 0)".into(),
                ),
                period: 1800,
                evaluation_periods: 1,
                threshold: Val::Int(0),
                only_if: None,
            }
        },
        {
            let (ns, name, dims) = ours(ns, m::RUN_TASK_REFUSED, &[]);
            Alarm {
                logical: "run_task_refused".into(),
                name_suffix: "run-task-refused".into(),
                what: "ECS refused more than 5 RunTask calls in 5 minutes (Fargate capacity, the account's vCPU quota, throttling).".into(),
                runbook: "run-task-refused",
                query: AlarmQuery::Metric(ns, name, dims, "Sum"),
                period: 300,
                evaluation_periods: 1,
                threshold: Val::Int(5),
                only_if: None,
            }
        },
        {
            let (ins, iname, idims) = ours(ns, m::POOL_IDLE, &[]);
            let (wns, wname, wdims) = ours(ns, m::JOBS_WAITING, &[]);
            Alarm {
                logical: "warm_pool_empty".into(),
                name_suffix: "warm-pool-empty".into(),
                what: "The warm pool had no idle slot while jobs waited, for 10 minutes.".into(),
                runbook: "warm-pool-empty",
                query: AlarmQuery::Math(
                    vec![("idle", ins, iname, idims, "Maximum"), ("waiting", wns, wname, wdims, "Minimum")],
                    "IF(FILL(idle, 0) == 0 AND FILL(waiting, 0) > 0, 1, 0)".into(),
                ),
                period: 300,
                evaluation_periods: 2,
                threshold: Val::Int(0),
                only_if: Some(func::ge(&p.warm_pool_size, &Val::Int(1))),
            }
        },
        {
            let (ns, name, dims) = ours(ns, m::WEBHOOK_ATTEMPTS, &[(dim::OUTCOME, "failed")]);
            Alarm {
                logical: "webhooks_failing".into(),
                name_suffix: "webhooks-failing".into(),
                what: "More than 20 webhook attempts failed in 15 minutes (they are retried; the DLQ alarm fires when one gives up).".into(),
                runbook: "webhooks-failing",
                query: AlarmQuery::Metric(ns, name, dims, "Sum"),
                period: 900,
                evaluation_periods: 1,
                threshold: Val::Int(20),
                only_if: None,
            }
        },
    ];
    for (id, name) in &p.functions {
        out.push(Alarm {
            logical: format!("{id}_throttles"),
            name_suffix: format!("{id}-throttles"),
            what: format!("Lambda throttled the {id} function."),
            runbook: "lambda-throttles",
            query: AlarmQuery::Metric("AWS/Lambda".into(), "Throttles".into(), vec![("FunctionName".into(), name.clone())], "Sum"),
            period: 300,
            evaluation_periods: 1,
            threshold: Val::Int(0),
            only_if: None,
        });
    }
    out
}

/// A dashboard widget: its place on the 24-column grid and what it shows.
#[derive(Clone, Debug, Serialize)]
pub struct Widget {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub properties: Value,
}

/// A line of a metric widget.
#[derive(Clone)]
pub enum Line {
    /// (namespace, metric, dimensions, statistic, label).
    Metric(String, String, Vec<(String, String)>, &'static str, String),
    /// `SEARCH(...)` over one of our metrics, one line per value of `dimension`.
    Search(String, Metric, &'static str, &'static str),
}

/// A name or reference as the template it is rendered to.
fn rendered(v: &Val) -> String {
    v.as_str().expect("a dashboard's names and references are strings").to_owned()
}

/// Text shown as written (a `${` in it is not a reference).
fn text(s: &str) -> String {
    tfjson::expr::escape_literal(s)
}

fn metric_widget(title: &str, region: &str, stat: &'static str, period: u32, lines: Vec<Line>) -> Value {
    let mut n = 0;
    let metrics: Vec<Value> = lines
        .into_iter()
        .map(|l| match l {
            Line::Metric(ns, name, dims, stat, label) => {
                let mut row = vec![json!(ns), json!(name)];
                for (k, v) in dims {
                    row.push(json!(k));
                    row.push(json!(v));
                }
                row.push(json!({ "stat": stat, "label": text(&label) }));
                Value::Array(row)
            }
            Line::Search(ns, metric, dimension, stat) => {
                n += 1;
                let expression = format!("SEARCH('{{{ns},{dimension}}} MetricName=\"{}\"', '{stat}', {period})", metric.name);
                json!([{ "expression": expression, "id": format!("s{n}"), "label": "" }])
            }
        })
        .collect();
    json!({ "title": text(title), "region": region, "view": "timeSeries", "stacked": false, "stat": stat, "period": period, "metrics": metrics })
}

/// The dashboard's widgets, in rows of two.
pub fn widgets(ns: &Val, region: &Val, p: &MonitoringProps<'_>) -> Vec<Widget> {
    let (ns, region) = (rendered(ns), rendered(region));
    let ours = |metric: Metric, dims: &[(&str, &str)], stat: &'static str, label: &str| {
        Line::Metric(ns.clone(), metric.name.into(), dims.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(), stat, label.into())
    };
    let aws = |namespace: &str, metric: &str, dims: Vec<(String, String)>, stat: &'static str, label: String| Line::Metric(namespace.into(), metric.into(), dims, stat, label);
    let queue_lines = |metric: &str, stat: &'static str| -> Vec<Line> {
        [("jobs", &p.jobs_queue.0), ("jobs DLQ", &p.jobs_queue.1), ("webhooks", &p.webhooks_queue.0), ("webhooks DLQ", &p.webhooks_queue.1)]
            .into_iter()
            .map(|(label, q)| aws("AWS/SQS", metric, vec![("QueueName".into(), rendered(q))], stat, label.into()))
            .collect()
    };
    let per_function = |metric: &str| -> Vec<Line> {
        p.functions.iter().map(|(id, name)| aws("AWS/Lambda", metric, vec![("FunctionName".into(), rendered(name))], "Sum", format!("{id} {}", metric.to_lowercase()))).collect()
    };
    let panels: Vec<Value> = vec![
        metric_widget(
            "Jobs: submitted, started, finished",
            &region,
            "Sum",
            60,
            vec![
                ours(m::JOBS_SUBMITTED, &[], "Sum", "submitted"),
                ours(m::JOBS_STARTED, &[(dim::START, "warm")], "Sum", "started warm"),
                ours(m::JOBS_STARTED, &[(dim::START, "cold")], "Sum", "started cold"),
                ours(m::JOBS_FINISHED, &[(dim::STATUS, "COMPLETED")], "Sum", "completed"),
                ours(m::JOBS_FINISHED, &[(dim::STATUS, "FAILED")], "Sum", "failed"),
                ours(m::JOBS_FINISHED, &[(dim::STATUS, "CANCELLED")], "Sum", "cancelled"),
                ours(m::JOBS_WAITING, &[], "Maximum", "waiting (queued)"),
                ours(m::JOBS_RUNNING, &[], "Maximum", "running places"),
            ],
        ),
        metric_widget(
            "Latency (ms)",
            &region,
            "p50",
            60,
            vec![
                ours(m::QUEUE_WAIT, &[], "p95", "queue wait p95"),
                ours(m::TIME_TO_RUNNING, &[(dim::START, "warm")], "p50", "to RUNNING warm p50"),
                ours(m::TIME_TO_RUNNING, &[(dim::START, "cold")], "p50", "to RUNNING cold p50"),
                ours(m::TIME_TO_RUNNING, &[(dim::START, "cold")], "p95", "to RUNNING cold p95"),
                ours(m::RUN_TIME, &[], "p50", "run time p50"),
                ours(m::TIME_TO_FINISH, &[], "p50", "submit to finished p50"),
                ours(m::TIME_TO_FINISH, &[], "p95", "submit to finished p95"),
            ],
        ),
        metric_widget("Failed jobs by error code", &region, "Sum", 300, vec![Line::Search(ns.clone(), m::JOBS_FAILED, dim::ERROR_CODE, "Sum")]),
        metric_widget(
            "Refused: submits by reason, RunTask",
            &region,
            "Sum",
            300,
            vec![Line::Search(ns.clone(), m::JOBS_REFUSED, dim::REASON, "Sum"), ours(m::RUN_TASK_REFUSED, &[], "Sum", "RunTask refused")],
        ),
        metric_widget(
            "Warm pool",
            &region,
            "Maximum",
            60,
            vec![ours(m::POOL_IDLE, &[], "Maximum", "idle"), ours(m::POOL_CLAIMED, &[], "Maximum", "claimed"), ours(m::POOL_REFILLS, &[], "Sum", "started")],
        ),
        metric_widget("Agent phases (ms, p50)", &region, "p50", 300, vec![Line::Search(ns.clone(), m::AGENT_PHASE, dim::PHASE, "p50")]),
        metric_widget(
            "Webhooks",
            &region,
            "Sum",
            300,
            vec![Line::Search(ns.clone(), m::WEBHOOK_ATTEMPTS, dim::OUTCOME, "Sum"), ours(m::WEBHOOK_LATENCY, &[], "p95", "delivery latency p95 (ms)")],
        ),
        metric_widget("Queues: oldest message (s)", &region, "Maximum", 60, queue_lines("ApproximateAgeOfOldestMessage", "Maximum")),
        metric_widget("Queues: messages visible", &region, "Maximum", 60, queue_lines("ApproximateNumberOfMessagesVisible", "Maximum")),
        metric_widget("Lambda errors and throttles", &region, "Sum", 300, [per_function("Errors"), per_function("Throttles")].concat()),
        metric_widget(
            "Fargate tasks",
            &region,
            "Maximum",
            60,
            vec![aws("ECS/ContainerInsights", "RunningTaskCount", vec![("ClusterName".into(), rendered(&p.cluster_name))], "Maximum", "running tasks".into())],
        ),
        metric_widget(
            "Tenants: queued and running",
            &region,
            "Maximum",
            60,
            vec![Line::Search(ns.clone(), m::TENANT_QUEUED, dim::TENANT, "Maximum"), Line::Search(ns.clone(), m::TENANT_RUNNING, dim::TENANT, "Maximum")],
        ),
    ];
    panels
        .into_iter()
        .enumerate()
        .map(|(i, properties)| Widget { kind: "metric", x: (i as u32 % 2) * 12, y: (i as u32 / 2) * 6, width: 12, height: 6, properties })
        .collect()
}

/// The body as the JSON text Terraform renders (its `${...}` references interpolated).
pub fn dashboard_body(ctx: &Context, ns: &Val, p: &MonitoringProps<'_>) -> String {
    serde_json::to_string(&json!({ "widgets": widgets(ns, &ctx.region, p) })).expect("widgets serialize")
}
