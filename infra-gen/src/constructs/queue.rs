//! The job queue: encrypted with the stack key, TLS-only, a visibility timeout of at least six
//! times its consumer's timeout, redrive to a dead-letter queue after `max_receive_count`
//! attempts, and an alarm as soon as anything lands in the dead-letter queue.

use crate::model::iam::{PolicyDocument, Statement};
use crate::model::resources::observability::SnsTopic;
use crate::model::resources::storage::*;
use crate::model::{func, Error, File, Ref, Stack, Val};

use super::key::Key;
use super::role::Role;
use super::Context;

pub struct QueueProps {
    pub consumer_timeout_seconds: u32,
    pub max_receive_count: Val,
}

/// Which queue: its logical names, physical names, what its statements and alarm say.
pub struct QueueSpec {
    logical: &'static str,
    dlq_logical: &'static str,
    name: fn(&str) -> String,
    dlq_name: fn(&str) -> String,
    /// Statement ids of the grants (`SendJobs`, `ConsumeJobs`).
    what: &'static str,
    alarm_logical: &'static str,
    alarm_suffix: &'static str,
    alarm_description: &'static str,
}

pub struct JobQueue {
    pub queue: Ref<SqsQueue>,
    pub dlq: Ref<SqsQueue>,
    /// What it carries, in statement ids (`SendJobs`).
    what: &'static str,
}

/// Queues keep messages for the longest SQS allows, so a stuck consumer loses nothing for 14 days.
const RETENTION_SECONDS: i64 = 14 * 24 * 3600;

impl QueueSpec {
    /// The jobs queue.
    pub const JOBS: QueueSpec = QueueSpec {
        logical: "jobs",
        dlq_logical: "jobs_dlq",
        name: names::queue::jobs_name,
        dlq_name: names::queue::dlq_name,
        what: "Jobs",
        alarm_logical: "jobs_dlq_not_empty",
        alarm_suffix: "jobs-dlq-not-empty",
        alarm_description: "Jobs failed processing after every attempt; inspect and redrive the DLQ",
    };

    /// The webhooks queue: one message per delivery attempt; its dead-letter queue holds the
    /// events whose every attempt failed (the webhook function puts them there) and messages the
    /// function could not handle `max_receive_count` times.
    pub const WEBHOOKS: QueueSpec = QueueSpec {
        logical: "webhooks",
        dlq_logical: "webhooks_dlq",
        name: names::queue::webhooks_name,
        dlq_name: names::queue::webhooks_dlq_name,
        what: "Webhooks",
        alarm_logical: "webhooks_dlq_not_empty",
        alarm_suffix: "webhooks-dlq-not-empty",
        alarm_description: "Webhook events failed every delivery attempt; see GET /jobs/{id} for their attempts, redeliver with POST /jobs/{id}/webhook",
    };
}

impl JobQueue {
    /// The queue `spec` names (`QueueSpec::JOBS`, `QueueSpec::WEBHOOKS`) with its dead-letter queue,
    /// its policies and its alarm.
    pub fn new(
        stack: &mut Stack,
        ctx: &Context,
        key: &Key,
        alarms: &Ref<SnsTopic>,
        props: QueueProps,
        spec: &QueueSpec,
    ) -> Result<JobQueue, Error> {
        let f = File::Storage;
        let dlq = stack.add(
            f,
            spec.dlq_logical,
            SqsQueue {
                name: ctx.name(spec.dlq_name),
                message_retention_seconds: Some(Val::Int(RETENTION_SECONDS)),
                kms_master_key_id: Some(key.arn()),
                kms_data_key_reuse_period_seconds: Some(Val::Int(300)),
                ..Default::default()
            },
        )?;
        let redrive = func::jsonencode(&func::object([
            ("deadLetterTargetArn", dlq.arn()),
            ("maxReceiveCount", props.max_receive_count.clone()),
        ]));
        let queue = stack.add(
            f,
            spec.logical,
            SqsQueue {
                name: ctx.name(spec.name),
                visibility_timeout_seconds: Some(Val::Int(6 * i64::from(props.consumer_timeout_seconds))),
                message_retention_seconds: Some(Val::Int(RETENTION_SECONDS)),
                receive_wait_time_seconds: Some(Val::Int(20)),
                kms_master_key_id: Some(key.arn()),
                kms_data_key_reuse_period_seconds: Some(Val::Int(300)),
                redrive_policy: Some(redrive),
                ..Default::default()
            },
        )?;
        // Only its queue may use the DLQ as its dead-letter target.
        stack.add(
            f,
            spec.dlq_logical,
            SqsQueueRedriveAllowPolicy {
                queue_url: dlq.url(),
                redrive_allow_policy: func::jsonencode(&func::object([
                    ("redrivePermission", Val::lit("byQueue")),
                    ("sourceQueueArns", Val::List(vec![queue.arn()])),
                ])),
            },
        )?;
        for (logical, q) in [(spec.logical, &queue), (spec.dlq_logical, &dlq)] {
            let doc = stack.data(
                f,
                &format!("{logical}_queue_policy"),
                PolicyDocument {
                    statement: vec![Statement::deny("DenyInsecureTransport", &["sqs:*"], vec![q.arn()])
                        .with_principal("AWS", vec![Val::lit("*")])
                        .with_condition("Bool", "aws:SecureTransport", vec![Val::lit("false")])],
                },
            )?;
            stack.add(f, logical, SqsQueuePolicy { queue_url: q.url(), policy: doc.json() })?;
        }
        super::alarm_above_zero(
            stack,
            ctx,
            alarms,
            super::AlarmSpec {
                logical: spec.alarm_logical,
                name_suffix: spec.alarm_suffix,
                description: spec.alarm_description.into(),
                runbook: spec.alarm_logical.trim_end_matches("_not_empty").replace('_', "-").as_str(),
                namespace: "AWS/SQS",
                metric: "ApproximateNumberOfMessagesVisible",
                dimension: ("QueueName", dlq.name()),
                statistic: "Maximum",
                period_seconds: 60,
            },
        )?;
        Ok(JobQueue { queue, dlq, what: spec.what })
    }

    pub fn grant_send(&self, stack: &mut Stack, role: &Role, key: &Key) -> Result<(), Error> {
        role.grant(stack, Statement::allow(&format!("Send{}", self.what), &["sqs:SendMessage"], vec![self.queue.arn()]))?;
        key.grant_encrypt_decrypt(stack, role)
    }

    /// Sending to the dead-letter queue itself (a consumer that dead-letters on its own terms).
    pub fn grant_send_dlq(&self, stack: &mut Stack, role: &Role, key: &Key) -> Result<(), Error> {
        role.grant(stack, Statement::allow(&format!("DeadLetter{}", self.what), &["sqs:SendMessage"], vec![self.dlq.arn()]))?;
        key.grant_encrypt_decrypt(stack, role)
    }

    /// What a Lambda event source mapping needs from its function's role.
    pub fn grant_consume(&self, stack: &mut Stack, role: &Role, key: &Key) -> Result<(), Error> {
        role.grant(
            stack,
            Statement::allow(
                &format!("Consume{}", self.what),
                &["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
                vec![self.queue.arn()],
            ),
        )?;
        key.grant_decrypt(stack, role)
    }
}
