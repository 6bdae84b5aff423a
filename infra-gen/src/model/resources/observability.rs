//! Logs, alarms, notifications and EventBridge rules.

use serde::Serialize;

use crate::model::block::{exports, Resource};
use crate::model::val::{Val, ValMap};

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct CloudwatchLogGroup {
    pub name: Val,
    pub retention_in_days: Val,
    pub kms_key_id: Option<Val>,
    pub tags: Option<ValMap>,
}
impl Resource for CloudwatchLogGroup {
    const TYPE: &'static str = "aws_cloudwatch_log_group";
}
exports!(CloudwatchLogGroup { arn, name });

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct MetricAlarm {
    pub alarm_name: Val,
    pub alarm_description: Option<Val>,
    /// One metric (these four), or `metric_query` (metric math): never both.
    pub namespace: Option<Val>,
    pub metric_name: Option<Val>,
    #[serde(skip_serializing_if = "ValMap::is_empty")]
    pub dimensions: ValMap,
    pub statistic: Option<Val>,
    pub extended_statistic: Option<Val>,
    pub period: Option<Val>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metric_query: Vec<MetricQuery>,
    pub evaluation_periods: Val,
    pub datapoints_to_alarm: Option<Val>,
    pub threshold: Val,
    pub comparison_operator: Val,
    pub treat_missing_data: Option<Val>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alarm_actions: Vec<Val>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ok_actions: Vec<Val>,
    pub tags: Option<ValMap>,
}
impl Resource for MetricAlarm {
    const TYPE: &'static str = "aws_cloudwatch_metric_alarm";
}

/// One line of a metric-math alarm: a metric, or an expression over the others.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct MetricQuery {
    pub id: Val,
    pub expression: Option<Val>,
    pub label: Option<Val>,
    pub return_data: Option<Val>,
    pub metric: Option<QueryMetric>,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct QueryMetric {
    pub namespace: Val,
    pub metric_name: Val,
    #[serde(skip_serializing_if = "ValMap::is_empty")]
    pub dimensions: ValMap,
    pub period: Val,
    pub stat: Val,
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct SnsTopicSubscription {
    pub topic_arn: Val,
    pub protocol: Val,
    pub endpoint: Val,
}
impl Resource for SnsTopicSubscription {
    const TYPE: &'static str = "aws_sns_topic_subscription";
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CloudwatchDashboard {
    pub dashboard_name: Val,
    pub dashboard_body: Val,
}
impl Resource for CloudwatchDashboard {
    const TYPE: &'static str = "aws_cloudwatch_dashboard";
}

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct SnsTopic {
    pub name: Val,
    pub kms_master_key_id: Option<Val>,
    pub tags: Option<ValMap>,
}
impl Resource for SnsTopic {
    const TYPE: &'static str = "aws_sns_topic";
}
exports!(SnsTopic { arn });

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct EventRule {
    pub name: Val,
    pub description: Option<Val>,
    pub event_pattern: Option<Val>,
    pub schedule_expression: Option<Val>,
    pub tags: Option<ValMap>,
}
impl Resource for EventRule {
    const TYPE: &'static str = "aws_cloudwatch_event_rule";
}
exports!(EventRule { arn, name });

#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, Serialize)]
pub struct EventTarget {
    pub rule: Val,
    pub target_id: Val,
    pub arn: Val,
    pub retry_policy: Option<EventRetryPolicy>,
    pub dead_letter_config: Option<super::compute::DeadLetterConfig>,
}
impl Resource for EventTarget {
    const TYPE: &'static str = "aws_cloudwatch_event_target";
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct EventRetryPolicy {
    pub maximum_event_age_in_seconds: Val,
    pub maximum_retry_attempts: Val,
}
