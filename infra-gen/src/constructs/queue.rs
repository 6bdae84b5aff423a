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

pub struct JobQueue {
    pub queue: Ref<SqsQueue>,
    pub dlq: Ref<SqsQueue>,
}

/// Queues keep messages for the longest SQS allows, so a stuck consumer loses nothing for 14 days.
const RETENTION_SECONDS: i64 = 14 * 24 * 3600;

impl JobQueue {
    pub fn new(
        stack: &mut Stack,
        ctx: &Context,
        key: &Key,
        alarms: &Ref<SnsTopic>,
        props: QueueProps,
    ) -> Result<JobQueue, Error> {
        let f = File::Storage;
        let dlq = stack.add(
            f,
            "jobs_dlq",
            SqsQueue {
                name: ctx.name(names::queue::dlq_name),
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
            "jobs",
            SqsQueue {
                name: ctx.name(names::queue::jobs_name),
                visibility_timeout_seconds: Some(Val::Int(6 * i64::from(props.consumer_timeout_seconds))),
                message_retention_seconds: Some(Val::Int(RETENTION_SECONDS)),
                receive_wait_time_seconds: Some(Val::Int(20)),
                kms_master_key_id: Some(key.arn()),
                kms_data_key_reuse_period_seconds: Some(Val::Int(300)),
                redrive_policy: Some(redrive),
                ..Default::default()
            },
        )?;
        // Only the job queue may use the DLQ as its dead-letter target.
        stack.add(
            f,
            "jobs_dlq",
            SqsQueueRedriveAllowPolicy {
                queue_url: dlq.url(),
                redrive_allow_policy: func::jsonencode(&func::object([
                    ("redrivePermission", Val::lit("byQueue")),
                    ("sourceQueueArns", Val::List(vec![queue.arn()])),
                ])),
            },
        )?;
        for (logical, q) in [("jobs", &queue), ("jobs_dlq", &dlq)] {
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
                logical: "jobs_dlq_not_empty",
                name_suffix: "jobs-dlq-not-empty",
                description: "Jobs failed processing after every attempt; inspect and redrive the DLQ".into(),
                namespace: "AWS/SQS",
                metric: "ApproximateNumberOfMessagesVisible",
                dimension: ("QueueName", dlq.name()),
                statistic: "Maximum",
                period_seconds: 60,
            },
        )?;
        Ok(JobQueue { queue, dlq })
    }

    pub fn grant_send(&self, stack: &mut Stack, role: &Role, key: &Key) -> Result<(), Error> {
        role.grant(stack, Statement::allow("SendJobs", &["sqs:SendMessage"], vec![self.queue.arn()]))?;
        key.grant_encrypt_decrypt(stack, role)
    }

    /// What a Lambda event source mapping needs from its function's role.
    pub fn grant_consume(&self, stack: &mut Stack, role: &Role, key: &Key) -> Result<(), Error> {
        role.grant(
            stack,
            Statement::allow(
                "ConsumeJobs",
                &["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
                vec![self.queue.arn()],
            ),
        )?;
        key.grant_decrypt(stack, role)
    }
}
