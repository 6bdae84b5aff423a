//! Constructs: groups of resources with secure defaults and least-privilege grant helpers
//! (`queue.grant_send(stack, &role)`), in the spirit of the AWS CDK's L2 constructs.

pub mod agent;
pub mod api;
pub mod bucket;
pub mod events;
pub mod function;
pub mod key;
pub mod monitoring;
pub mod network;
pub mod queue;
pub mod role;
pub mod table;

use crate::model::resources::observability::{MetricAlarm, SnsTopic};
use crate::model::{Error, File, Ref, Stack, Val};

/// What every construct needs to know about the deployment it is part of.
#[derive(Clone, Debug)]
pub struct Context {
    /// `${local.name_prefix}`: project and environment, the start of every physical name.
    pub prefix: Val,
    /// `${var.project_name}`, for names that are per project (SSM paths).
    pub project: Val,
    /// `${var.environment}`, the second part of per-stack paths.
    pub environment: Val,
    pub account_id: Val,
    pub region: Val,
    pub partition: Val,
    pub dns_suffix: Val,
    /// Days every log group keeps its events.
    pub log_retention_days: Val,
}

impl Context {
    /// `arn:<partition>:<service>:<region>:<account>:<resource>`.
    pub fn arn(&self, service: &str, resource: Val) -> Val {
        Val::lit("arn:") + &self.partition + ":" + service + ":" + &self.region + ":" + &self.account_id + ":" + resource
    }

    /// The ARN of a resource of a global service without region or account (S3 buckets).
    pub fn arn_global(&self, service: &str, resource: Val) -> Val {
        Val::lit("arn:") + &self.partition + ":" + service + ":::" + resource
    }

    /// The ARN of an IAM role of this stack, known before the role exists (no reference, no cycle).
    pub fn role_arn(&self, name: Val) -> Val {
        Val::lit("arn:") + &self.partition + ":iam::" + &self.account_id + ":role/" + name
    }

    /// A physical name: `<prefix>-<suffix>` where the pattern comes from the names crate.
    pub fn name(&self, pattern: impl Fn(&str) -> String) -> Val {
        render_pattern(pattern, &self.prefix)
    }

    /// A service principal in this partition, e.g. `logs.<region>.amazonaws.com`.
    pub fn regional_principal(&self, service: &str) -> Val {
        Val::lit(format!("{service}.")) + &self.region + "." + &self.dns_suffix
    }
}

/// Applies a naming pattern from the names crate to a Terraform expression prefix. Patterns take
/// plain strings, so the expression goes through a placeholder that cannot occur in a name.
pub fn render_pattern(pattern: impl Fn(&str) -> String, prefix: &Val) -> Val {
    render_pattern2(|p, _| pattern(p), prefix, &Val::lit(""))
}

/// As [`render_pattern`], for patterns of two values (e.g. prefix and account id).
pub fn render_pattern2(pattern: impl Fn(&str, &str) -> String, a: &Val, b: &Val) -> Val {
    const A: &str = "\u{1}A\u{1}";
    const B: &str = "\u{1}B\u{1}";
    let mut out = Val::lit("");
    for (i, part) in pattern(A, B).split('\u{1}').enumerate() {
        // Odd pieces are the placeholder names between the markers.
        out = match (i % 2, part) {
            (1, "A") => out + a,
            (1, "B") => out + b,
            (_, text) => out + text,
        };
    }
    out
}

/// The runbook every alarm names a section of (`docs/runbook.md#<anchor>`).
pub const RUNBOOK: &str = "docs/runbook.md";

/// A metric and what to call the alarm on it.
pub struct AlarmSpec<'a> {
    pub logical: &'a str,
    /// Appended to the name prefix: `<prefix>-<suffix>`.
    pub name_suffix: &'a str,
    pub description: String,
    /// Its section of the runbook (an anchor of `docs/runbook.md`).
    pub runbook: &'a str,
    pub namespace: &'a str,
    pub metric: &'a str,
    pub dimension: (&'a str, Val),
    pub statistic: &'a str,
    pub period_seconds: i64,
}

/// An alarm that fires as soon as the metric is above zero and notifies `topic` (and again when it
/// clears); missing data is not a breach.
pub fn alarm_above_zero(stack: &mut Stack, ctx: &Context, topic: &Ref<SnsTopic>, spec: AlarmSpec<'_>) -> Result<(), Error> {
    stack.add(
        File::Observability,
        spec.logical,
        MetricAlarm {
            alarm_name: ctx.prefix.clone() + "-" + spec.name_suffix,
            alarm_description: Some(Val::lit(format!("{}. Runbook: {RUNBOOK}#{}", spec.description.trim_end_matches('.'), spec.runbook))),
            namespace: Some(spec.namespace.into()),
            metric_name: Some(spec.metric.into()),
            dimensions: [(spec.dimension.0.to_string(), spec.dimension.1)].into_iter().collect(),
            statistic: Some(spec.statistic.into()),
            period: Some(Val::Int(spec.period_seconds)),
            evaluation_periods: Val::Int(1),
            threshold: Val::Int(0),
            comparison_operator: "GreaterThanThreshold".into(),
            treat_missing_data: Some("notBreaching".into()),
            alarm_actions: vec![topic.arn()],
            ok_actions: vec![topic.arn()],
            ..Default::default()
        },
    )?;
    Ok(())
}
