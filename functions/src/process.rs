//! The process function: each SQS message names a queued job; claim it, hand it to a waiting warm
//! slot or start its Fargate task, record the task (a `{"pool": "refill"}` message starts the warm
//! slots the pool lacks). Failures worth retrying go back to the queue as batch item failures; on the
//! last attempt the job fails with the reason instead.

use crate::aws::{attr_n, attr_s, ecs_task_id, AwsError, Moved, RunOutcome, RunRequest};
use aws_sdk_dynamodb::types::AttributeValue;
use crate::model::{Job, TaskId};
use crate::time::rfc3339;
use names::job::{ErrorCode, QueuedReason};
use crate::App;
use names::{table as t, JobStatus};


/// What happened to one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The task was started and recorded.
    Started { task_arn: String },
    /// Acknowledged with no side effect: malformed, unknown, duplicate or cancelled.
    Ignored(&'static str),
    /// Its tenant is at `max_running`: the job stays queued and its message was sent again,
    /// delayed (a new message, so its receive count starts again: it never reaches the DLQ).
    Waiting,
    /// Back to the queue for another attempt.
    Retry(String),
    /// The job was marked FAILED (last attempt, or a job that can never start).
    Failed(String),
    /// A refill message: this many warm slots were started.
    Refilled(usize),
}

/// One SQS record, decoded.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    pub body: Option<&'a str>,
    /// `ApproximateReceiveCount`: 1 on the first delivery.
    pub receive_count: u32,
}

/// Processes a batch; returns the ids of the messages to retry.
pub async fn batch(app: &App, event: aws_lambda_events::event::sqs::SqsEvent) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    crate::identity::acting_as(crate::Function::Process, Box::pin(batch_as_process(app, event))).await
}

async fn batch_as_process(app: &App, event: aws_lambda_events::event::sqs::SqsEvent) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    let mut resp = aws_lambda_events::event::sqs::SqsBatchResponse::default();
    for record in &event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let receive_count =
            record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
        let outcome = message(app, &Message { body: record.body.as_deref(), receive_count }).await;
        tracing::info!(message_id = %id, outcome = ?outcome, "processed message");
        if let Outcome::Retry(_) = outcome {
            resp.add_failure(id);
        }
    }
    resp
}

/// `{"pool": "refill"}`.
fn is_refill(body: Option<&str>) -> bool {
    body.and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .is_some_and(|v| v.get(names::queue::MESSAGE_POOL).and_then(|p| p.as_str()) == Some(names::queue::POOL_REFILL))
}

/// Reads `{"task_id": "..."}`.
pub fn parse_body(body: Option<&str>) -> Option<TaskId> {
    let v: serde_json::Value = serde_json::from_str(body?).ok()?;
    TaskId::parse(v.get(names::queue::MESSAGE_TASK_ID)?.as_str()?)
}

/// Whether a job message is a wake-up (`names::queue::MESSAGE_WAKE`).
fn is_wake(body: Option<&str>) -> bool {
    body.and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok()).is_some_and(|v| v.get(names::queue::MESSAGE_WAKE).and_then(|w| w.as_bool()) == Some(true))
}

pub async fn message(app: &App, msg: &Message<'_>) -> Outcome {
    crate::identity::acting_as(crate::Function::Process, Box::pin(message_as_process(app, msg))).await
}

async fn message_as_process(app: &App, msg: &Message<'_>) -> Outcome {
    if is_refill(msg.body) {
        return match crate::pool::refill(app).await {
            Ok(n) => Outcome::Refilled(n),
            Err(e) => Outcome::Retry(e.to_string()),
        };
    }
    let Some(task_id) = parse_body(msg.body) else { return Outcome::Ignored("malformed message") };
    match start(app, &task_id, msg.receive_count, is_wake(msg.body)).await {
        Ok(o) => o,
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

async fn start(app: &App, task_id: &TaskId, receive_count: u32, wake: bool) -> Result<Outcome, AwsError> {
    let store = &app.store;
    let Some(job) = store.get(task_id).await? else { return Ok(Outcome::Ignored("unknown job")) };
    // Only a job claimed now may take a warm slot (or one that already chose its slot): an
    // earlier attempt may have started its cold task, which the same clientToken finds again.
    let fresh = job.status == JobStatus::Queued;
    let job = match job.status {
        JobStatus::Queued => {
            let deadline = app.clock.now_secs() + crate::PROVISIONING_ALLOWANCE_SECONDS + i64::from(job.options.timeout_seconds);
            // The reason it waited is over (a later refusal of its task says CAPACITY).
            let claim = vec![(t::ATTEMPTS, attr_n(receive_count)), (t::DEADLINE_AT, attr_n(deadline)), (t::QUEUED_REASON, AttributeValue::Null(true))];
            let max_running = app.config.limits.max_running;
            match store.transition_limited(task_id, JobStatus::Provisioning, claim, Some(max_running)).await? {
                Moved::Moved(job) => job,
                Moved::Refused => return Ok(Outcome::Ignored("claimed by another delivery")),
                Moved::AtLimit => {
                    // Parked: woken (a message at once) when one of its tenant's jobs ends, so a
                    // waiting job no longer goes round the queue every few seconds. Its own
                    // message comes back later in case that wake-up is lost, sent before this
                    // one is acknowledged: never lost. A wake-up that lost its race is not the
                    // job's own message, which is still to come: it sends none.
                    store.park(&job).await?;
                    if !wake {
                        app.queue.send_delayed(task_id, app.config.tenant_wait_seconds).await?;
                    }
                    let deadline = app.clock.now_secs() + crate::QUEUE_ALLOWANCE_SECONDS;
                    store.set_queued_reason(task_id, JobStatus::Queued, QueuedReason::TenantLimit, Some(deadline)).await?;
                    return Ok(Outcome::Waiting);
                }
            }
        }
        // An earlier attempt claimed it but did not record a task: try again. The clientToken
        // makes ECS answer with the same task if that attempt did start one.
        JobStatus::Provisioning => job,
        JobStatus::Cancelled => {
            // An earlier delivery may have written its secrets before the cancel, and no task
            // will read or delete them (found by the fault-injection test, seed 1004).
            app.outputs.purge_secrets(task_id).await?;
            return Ok(Outcome::Ignored("cancelled"));
        }
        _ => return Ok(Outcome::Ignored("duplicate delivery")),
    };
    dispatch_claimed(app, &job, receive_count, fresh).await
}

/// What a delivery does with a job it found PROVISIONING: `fresh` when this delivery claimed it
/// (then it may take a warm slot), else an earlier attempt did. Public for the tests that run one
/// delivery between the steps of another.
pub async fn dispatch_claimed(app: &App, job: &Job, receive_count: u32, fresh: bool) -> Result<Outcome, AwsError> {
    let task_id = &job.task_id;
    let last_attempt = receive_count >= app.config.max_attempts;

    // A waiting warm slot takes it, when there is one. Going cold is recorded before RunTask,
    // only while no slot holds the job, and a slot only while the job is not going cold: two
    // deliveries at once (one handing the job to a slot, the other finding no slot recorded
    // yet) never run it both ways. One that finds a slot recorded first goes on with that slot.
    let mut job = job.clone();
    let mut fresh = fresh;
    let mut cold = false;
    for _ in 0..3 {
        let dispatched = if fresh || job.warm_slot.is_some() { crate::pool::dispatch(app, &job).await? } else { crate::pool::Dispatch::Cold };
        match dispatched {
            crate::pool::Dispatch::Warm { slot_id, task_arn } => return warm(app, &job, &slot_id, task_arn).await,
            crate::pool::Dispatch::Invalid(code, why) => return fail(app, task_id, code, &why).await,
            crate::pool::Dispatch::Cold => {}
        }
        if app.store.mark_cold(task_id).await? {
            cold = true;
            break;
        }
        match app.store.get(task_id).await? {
            Some(j) if j.status == JobStatus::Provisioning && j.warm_slot.is_some() => {
                job = j;
                fresh = false;
            }
            _ => return Ok(Outcome::Ignored("dispatched by another delivery")),
        }
    }
    if !cold {
        return Ok(Outcome::Retry("the job's dispatch kept changing under it".into()));
    }
    let job = &job;
    let environment = match crate::manifest::overrides(app, job).await? {
        Ok(env) => env,
        Err((code, why)) => return fail(app, task_id, code, &why).await,
    };
    let req = RunRequest::for_job(task_id, &job.tenant_id, environment);
    let (reason, refused) = match app.tasks.run(&req).await {
        Ok(RunOutcome::Started { task_arn }) => return record(app, task_id, task_arn).await,
        Ok(RunOutcome::Refused { reason }) => (reason, true),
        Err(e) => {
            tracing::warn!(task_id = task_id.as_str(), error = %e, "RunTask failed");
            // Throttled: no task was started, as with failures[]; any other error may have started one.
            let throttled = e.code.as_deref() == Some("ThrottlingException");
            match e.code {
                Some(code) => (format!("RunTask failed: {code}"), throttled),
                None => ("RunTask failed".to_owned(), false),
            }
        }
    };
    if refused {
        tracing::warn!(task_id = task_id.as_str(), reason = reason.as_str(), "RunTask refused");
        app.store.metrics.count(app.clock.now_millis(), names::metrics::RUN_TASK_REFUSED, &[]);
    }
    if last_attempt {
        let msg = format!("the task could not be started after {receive_count} attempts: {reason}");
        fail(app, task_id, ErrorCode::RunTaskFailed, &msg).await
    } else {
        if refused {
            // The client sees why its job waits (best effort: the retry goes on regardless).
            if let Err(e) = app.store.set_queued_reason(task_id, JobStatus::Provisioning, QueuedReason::Capacity, None).await {
                tracing::warn!(task_id = task_id.as_str(), error = %e, "could not record the refusal on the job");
            }
        }
        Ok(Outcome::Retry(reason))
    }
}

/// The job handed to a warm slot: it runs from now (its task is running already), and the pool
/// is refilled.
async fn warm(app: &App, job: &Job, slot_id: &str, task_arn: String) -> Result<Outcome, AwsError> {
    let task_id = &job.task_id;
    let deadline = app.clock.now_secs() + i64::from(job.options.timeout_seconds);
    let updates = vec![
        (t::ECS_TASK_ARN, attr_s(&task_arn)),
        (t::ECS_TASK_ID, attr_s(ecs_task_id(&task_arn))),
        (t::STARTED_AT, attr_s(rfc3339(app.clock.now_millis()))),
        (t::DEADLINE_AT, attr_n(deadline)),
    ];
    if app.store.transition(task_id, JobStatus::Running, updates).await?.is_none() {
        // Cancelled meanwhile: nobody else stops the slot's task.
        if let Some(j) = app.store.get(task_id).await? {
            if j.status == JobStatus::Cancelled {
                app.tasks.stop(&task_arn, "job cancelled").await?;
            }
        }
    }
    tracing::info!(task_id = task_id.as_str(), slot = slot_id, "job handed to a warm slot");
    // The pool is one short now (best effort: a refill message or the sweep makes up for it).
    if let Err(e) = crate::pool::refill(app).await {
        tracing::warn!(error = %e, "could not refill the warm pool");
    }
    Ok(Outcome::Started { task_arn })
}

async fn record(app: &App, task_id: &TaskId, task_arn: String) -> Result<Outcome, AwsError> {
    let updates = vec![(t::ECS_TASK_ARN, attr_s(&task_arn)), (t::ECS_TASK_ID, attr_s(ecs_task_id(&task_arn)))];
    // Only a job no warm slot holds: a duplicate delivery that went cold while another handed the
    // job to a slot must not record its task.
    if app.store.transition_without_slot(task_id, JobStatus::Provisioned, updates).await?.is_none() {
        // Refused: this task's own event got there first (the job records it: fine), or the job
        // runs on another task (a warm slot's) or was cancelled meanwhile. Then nobody else knows
        // this task, and it would run the job a second time: stop it.
        if let Some(job) = app.store.get(task_id).await? {
            if job.ecs_task_arn.as_deref() != Some(task_arn.as_str()) {
                let why = if job.status == JobStatus::Cancelled { "job cancelled" } else { "the job runs on another task" };
                app.tasks.stop(&task_arn, why).await?;
                tracing::warn!(task_id = task_id.as_str(), task = task_arn.as_str(), why, "stopped a task the job does not run on");
                return Ok(Outcome::Ignored("the job runs on another task"));
            }
        }
    }
    Ok(Outcome::Started { task_arn })
}

async fn fail(app: &App, task_id: &TaskId, code: ErrorCode, message: &str) -> Result<Outcome, AwsError> {
    // No task will read them.
    app.outputs.purge_secrets(task_id).await?;
    let updates = vec![
        (t::ERROR_CODE, attr_s(code.as_str())),
        (t::ERROR_MESSAGE, attr_s(message)),
        (t::FINISHED_AT, attr_s(rfc3339(app.clock.now_millis()))),
    ];
    app.store.transition(task_id, JobStatus::Failed, updates).await?;
    Ok(Outcome::Failed(message.to_owned()))
}
