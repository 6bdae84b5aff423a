//! A task's state change applied to its job (a cold task's, or a warm slot's that took the job):
//! RUNNING starts the job's clock, STOPPED ends the job as ECS and the agent's report tell it.
//! The reconcile function's events and the pool's slot ends both come here.

use crate::aws::{attr_n, attr_s, ecs_task_id, AgentReport, AwsError, Updates};
use crate::model::TaskId;
use names::ecs::TaskStateChange as TaskDetail;
use crate::time::rfc3339;
use crate::App;
use names::ecs::{StopCode, TaskStatus};
use names::job::ErrorCode;
use names::{table as t, JobStatus};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied(JobStatus),
    Ignored(&'static str),
    /// The sweep: overdue jobs failed for their deadline (or `settled` as ECS reports their
    /// stopped task), counters corrected, webhook events queued that their finishing function
    /// could not, webhook rounds `stalled` (their message dead-lettered) ended FAILED.
    Swept { failed: usize, settled: usize, corrected: usize, announced: usize, stalled: usize },
}

/// What a stopped task means for its job; `report` is the agent's `error.json`, if it wrote one.
pub fn stopped_status(d: &TaskDetail, container: &str, now_millis: i64, report: Option<&AgentReport>) -> (JobStatus, Updates) {
    let c = d.containers.iter().find(|c| c.name == container);
    let exit = c.and_then(|c| c.exit_code);
    let mut updates: Updates = vec![(t::FINISHED_AT, attr_s(rfc3339(now_millis)))];
    if let Some(code) = exit {
        updates.push((t::EXIT_CODE, attr_n(code)));
    }
    if exit == Some(0) {
        return (JobStatus::Completed, updates);
    }
    let container_reason = c.and_then(|c| c.reason.clone()).unwrap_or_default();
    let code = if d.stop_code == Some(StopCode::TaskFailedToStart) {
        ErrorCode::TaskFailedToStart
    } else if container_reason.contains("OutOfMemory") {
        ErrorCode::OutOfMemory
    } else if exit.is_some() {
        ErrorCode::AgentFailed
    } else {
        ErrorCode::TaskStopped
    };
    let mut parts = Vec::new();
    if let Some(sc) = d.stop_code {
        parts.push(sc.as_str().to_string());
    }
    if let Some(r) = &d.stopped_reason {
        parts.push(r.clone());
    }
    if !container_reason.is_empty() {
        parts.push(container_reason);
    }
    if let Some(code) = exit {
        parts.push(format!("exit code {code}"));
    }
    let mut message = parts.join("; ");
    if message.is_empty() {
        message = "the task stopped".into();
    }
    // The agent said why (a step's selector, the egress guard, ...): its code and words, which a
    // client can act on, unless the task died of something the agent cannot see.
    let (code, mut message) = match report {
        Some(r) if code == ErrorCode::AgentFailed => {
            if let Some(step) = r.step {
                updates.push((t::ERROR_STEP, attr_n(step)));
            }
            (ErrorCode::parse(&r.code).unwrap_or(code), format!("{} ({message})", r.message))
        }
        _ => (code, message),
    };
    message.truncate(message.char_indices().nth(1000).map_or(message.len(), |(i, _)| i));
    updates.push((t::ERROR_CODE, attr_s(code.as_str())));
    updates.push((t::ERROR_MESSAGE, attr_s(message)));
    (JobStatus::Failed, updates)
}

/// Whether `d` says the task's agent has ended: the task has STOPPED, or (earlier, while Fargate
/// deprovisions the task, which takes a while after its one essential container exits) the
/// agent's container has stopped with an exit code. ECS sends an event for a container's stop as
/// well as for the task's (Developer Guide, "Amazon ECS task state change events"): the job ends
/// at the first, and the task's STOPPED event after it is stale.
pub fn agent_ended(d: &TaskDetail, container: &str) -> bool {
    d.last_status == TaskStatus::Stopped
        || d.containers.iter().any(|c| c.name == container && c.last_status == Some(TaskStatus::Stopped) && c.exit_code.is_some())
}

/// A job's task changed (a cold task's, or, `via_slot`, a warm slot's that took the job).
pub async fn job_task_change(app: &App, d: &TaskDetail, via_slot: Option<&str>) -> Result<Outcome, AwsError> {
    let Some(task_id) = d.started_by.as_deref().and_then(TaskId::parse) else {
        return Ok(Outcome::Ignored("not a job's task"));
    };
    let Some(job) = app.store.get(&task_id).await? else { return Ok(Outcome::Ignored("unknown job")) };
    // Only the job's own task moves it: a stray task of the job (a duplicate delivery's, stopped
    // as soon as it was found) must not end a job that runs on another task or in a warm slot.
    // A job handed to a slot whose dispatch died before recording the slot's task has no task
    // yet: the slot it names is its task.
    let stray = match job.ecs_task_arn.as_deref() {
        Some(arn) => arn != d.task_arn,
        None => job.warm_slot.is_some() && job.warm_slot.as_deref() != via_slot,
    };
    if stray {
        return Ok(Outcome::Ignored("another task of the job"));
    }
    let task = vec![(t::ECS_TASK_ARN, attr_s(&d.task_arn)), (t::ECS_TASK_ID, attr_s(ecs_task_id(&d.task_arn)))];
    let ended = agent_ended(d, &app.config.container_name);
    let (to, mut updates) = match d.last_status {
        _ if ended => {
            let failed = d.containers.iter().find(|c| c.name == app.config.container_name).and_then(|c| c.exit_code).is_some_and(|c| c != 0);
            let report = if failed { app.outputs.error_report(&task_id).await? } else { None };
            let (to, mut updates) = stopped_status(d, &app.config.container_name, app.clock.now_millis(), report.as_ref());
            // EventBridge promises no order and may drop an event: the task's RUNNING event can
            // come after this one, or never. A job whose task started has a start time all the
            // same, the task's own.
            if job.started_at.is_none() {
                if let Some(at) = d.started_at.as_deref().and_then(crate::time::parse_rfc3339) {
                    updates.push((t::STARTED_AT, attr_s(rfc3339(at))));
                }
            }
            (to, updates)
        }
        TaskStatus::Running => {
            let deadline = app.clock.now_secs() + i64::from(job.options.timeout_seconds);
            // The task's own start, as ECS reports it (the event may come late, after retries).
            let started = d.started_at.as_deref().and_then(crate::time::parse_rfc3339).unwrap_or_else(|| app.clock.now_millis());
            (JobStatus::Running, vec![(t::STARTED_AT, attr_s(rfc3339(started))), (t::DEADLINE_AT, attr_n(deadline))])
        }
        _ => return Ok(Outcome::Ignored("intermediate task state")),
    };
    updates.extend(task);
    // A stopped task's secrets were its agent's to delete; a crashed agent leaves them. Deleted
    // beside the move (a function that dies after the move leaves them to the sweep, which
    // deletes the secrets of finished jobs).
    let purge = async {
        if ended {
            if let Err(e) = app.outputs.purge_secrets(&task_id).await {
                tracing::warn!(task_id = task_id.as_str(), error = %e, "could not delete the job's secrets");
            }
        }
    };
    // The task's billed time, as its stop event reports it: what the job's usage counts, with a
    // computer-use job's model usage as its agent reported it.
    let window = if ended { d.billed_window(crate::time::parse_rfc3339) } else { None };
    // Read only for a move that can still happen: a repeated stop of a finished job is refused.
    let model = if ended && job.target.goal().is_some() && !job.status.is_terminal() { app.outputs.model_usage(&task_id).await? } else { None };
    let (moved, ()) = tokio::join!(app.store.end_from_task(&job, to, updates, window, model.as_ref()), purge);
    Ok(match moved? {
        Some(_) => Outcome::Applied(to),
        None => {
            // Ended before its task stopped (a cancel, a timeout): the running place it kept
            // is free now.
            if ended {
                // A job read finished is as it was (a finished job does not change but for its
                // kept place, which the give-back's condition checks); one that was not has
                // changed under the move: read again.
                let current = if job.status.is_terminal() { Some(job) } else { app.store.get(&task_id).await? };
                if let Some(job) = current {
                    if app.store.give_back_place(&job).await? {
                        return Ok(Outcome::Ignored("ended before its task stopped; its running place given back"));
                    }
                }
            }
            Outcome::Ignored("stale event")
        }
    })
}
