//! The reconcile function: ECS task state changes move jobs to RUNNING, COMPLETED or FAILED, and
//! a scheduled sweep fails (and stops) jobs that overran their timeout. Events arrive at least once
//! and out of order, so every write is conditional on the allowed predecessors; a refused write
//! is a stale event, acknowledged.

use crate::aws::{attr_s, AwsError};
use crate::model::TaskId;
use crate::time::rfc3339;
use crate::App;
use names::ecs::TaskStatus;
use names::job::ErrorCode;
use names::{table as t, JobStatus};
use serde_json::Value;

/// `detail-type` of EventBridge scheduled events.
pub const SCHEDULED_EVENT: &str = "Scheduled Event";


/// The `detail` of an `ECS Task State Change` event, the shape the Fargate stand-in writes too.
pub use names::ecs::TaskStateChange as TaskDetail;
/// What an event or a sweep came to (with `task_state`, which applies a task's change).
pub use crate::task_state::Outcome;
use crate::task_state::job_task_change;

/// Handles one EventBridge event. An error (an AWS call failed) makes EventBridge retry it.
pub async fn event(app: &App, event: &Value) -> Result<Outcome, AwsError> {
    crate::identity::acting_as(crate::Function::Reconcile, Box::pin(event_as_reconcile(app, event))).await
}

async fn event_as_reconcile(app: &App, event: &Value) -> Result<Outcome, AwsError> {
    let detail_type = event.get("detail-type").and_then(Value::as_str).unwrap_or("");
    let source = event.get("source").and_then(Value::as_str).unwrap_or("");
    if detail_type == names::ecs::TASK_STATE_CHANGE && source == names::ecs::EVENT_SOURCE {
        match event.get("detail").cloned().map(serde_json::from_value::<TaskDetail>) {
            Some(Ok(detail)) => task_change(app, &detail).await,
            _ => Ok(Outcome::Ignored("malformed task event")),
        }
    } else if detail_type == SCHEDULED_EVENT {
        sweep(app).await
    } else {
        Ok(Outcome::Ignored("unknown event"))
    }
}


pub async fn task_change(app: &App, d: &TaskDetail) -> Result<Outcome, AwsError> {
    if let Some(cluster) = &d.cluster_arn {
        if !app.config.cluster_arn.is_empty() && cluster != &app.config.cluster_arn {
            return Ok(Outcome::Ignored("another cluster"));
        }
    }
    if let Some(slot) = d.started_by.as_deref().and_then(names::pool::slot_of) {
        return match d.last_status {
            _ if crate::task_state::agent_ended(d, &app.config.container_name) => crate::pool::slot_stopped(app, slot, d).await,
            TaskStatus::Running => crate::pool::slot_running(app, slot, &d.task_arn).await,
            _ => Ok(Outcome::Ignored("a warm slot's task")),
        };
    }
    job_task_change(app, d, None).await
}


/// Fails every unfinished job past its deadline plus grace, and stops its task.
pub async fn sweep(app: &App) -> Result<Outcome, AwsError> {
    crate::identity::acting_as(crate::Function::Reconcile, Box::pin(sweep_as_reconcile(app))).await
}

async fn sweep_as_reconcile(app: &App) -> Result<Outcome, AwsError> {
    // Each part on its own: one that fails (an AWS call) is logged and the others still run, so
    // a lasting failure in one never starves the rest; the sweep then fails, and its next run
    // (or EventBridge's retry) tries again.
    let mut errors = Vec::new();
    let (failed, settled) = noted(&mut errors, "overdue jobs", fail_overdue(app).await).unwrap_or_default();
    noted(&mut errors, "kept running places", give_back_stopped(app).await);
    let corrected = noted(&mut errors, "recount", recount(app).await).unwrap_or_default();
    noted(&mut errors, "waiting jobs", tend_waiting(app, None).await);
    noted(&mut errors, "secrets", purge_left_secrets(app).await);
    if app.config.warm_pool_size > 0 {
        noted(&mut errors, "warm pool", tend_pool(app).await);
    }
    let (announced, stalled) = noted(&mut errors, "webhooks", tend_webhooks(app).await).unwrap_or_default();
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(Outcome::Swept { failed, settled, corrected, announced, stalled }),
    }
}

/// `r`'s value, or None with its error logged (as `part` of the sweep) and kept in `errors`.
fn noted<T>(errors: &mut Vec<AwsError>, part: &str, r: Result<T, AwsError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(part, error = %e, "a part of the sweep failed; the rest goes on");
            errors.push(e);
            None
        }
    }
}

/// Fails every unfinished job past its deadline plus grace, and stops its task, unless ECS says
/// its task has stopped (then it ends as that task's event would have). (failed, settled).
async fn fail_overdue(app: &App) -> Result<(usize, usize), AwsError> {
    let cutoff = app.clock.now_secs() - i64::from(app.config.timeout_grace_seconds);
    let (mut failed, mut settled) = (0, 0);
    for job in app.store.overdue(cutoff).await? {
        // Its task stopped, and the event that says so was lost (the reconciler failed on every
        // try, and EventBridge gave up): ECS still knows how it ended, so the job ends as that
        // event would have ended it, not as a timeout.
        if settle_from_ecs(app, &job.task_id).await? {
            settled += 1;
            continue;
        }
        let updates = vec![
            (t::ERROR_CODE, attr_s(ErrorCode::Timeout.as_str())),
            (t::ERROR_MESSAGE, attr_s(format!("the job did not finish within its timeout of {} seconds", job.timeout_seconds))),
            (t::FINISHED_AT, attr_s(rfc3339(app.clock.now_millis()))),
        ];
        if let Some(j) = app.store.end_while_task_may_run(&job.task_id, JobStatus::Failed, updates).await? {
            failed += 1;
            if let Some(arn) = &j.ecs_task_arn {
                if let Err(e) = app.tasks.stop(arn, "job timed out").await {
                    tracing::error!(task_id = j.task_id.as_str(), error = %e, "could not stop timed-out task");
                }
            }
        }
    }
    Ok((failed, settled))
}

/// Secrets no task will read: of a job that finished (a duplicate delivery that lost its race
/// wrote them after the job's end had deleted its own). The lifecycle rule's day is the last
/// resort, not the plan.
async fn purge_left_secrets(app: &App) -> Result<(), AwsError> {
    for task_id in app.outputs.secret_holders().await? {
        if app.store.get(&task_id).await?.is_none_or(|j| j.status.is_terminal()) {
            let deleted = app.outputs.purge_secrets(&task_id).await?;
            if deleted > 0 {
                tracing::warn!(task_id = task_id.as_str(), deleted, "deleted the secrets of a finished job");
            }
        }
    }
    Ok(())
}

/// The pool: slots past their deadline whose task never said it stopped are stopped and retired;
/// then the process function is asked to refill.
async fn tend_pool(app: &App) -> Result<(), AwsError> {
    let now = app.clock.now_secs();
    let slots = app.store.slots().await?;
    let waiting = |state| slots.iter().filter(|s| s.state == state && s.task_arn.is_some()).count() as f64;
    let now_ms = app.clock.now_millis();
    app.store.metrics.emit(now_ms, names::metrics::POOL_IDLE, &[], waiting(names::pool::SlotState::Idle));
    app.store.metrics.emit(now_ms, names::metrics::POOL_CLAIMED, &[], waiting(names::pool::SlotState::Claimed));
    crate::pool::retire_left_claims(app, &slots).await?;
    let mut seated = std::collections::HashSet::new();
    for n in 0..app.config.warm_pool_size {
        seated.extend(app.store.seat(n).await?);
    }
    for slot in slots {
        // Idle and in no seat, past the grace a new slot takes to take its seat: a slot given
        // back after its claim (whose seat the refill gave another meanwhile). One over the
        // pool: stopped and retired.
        let unseated = slot.state == names::pool::SlotState::Idle
            && slot.task_arn.is_some()
            && !seated.contains(&slot.id)
            && slot.created_at + app.config.recovery_grace_seconds * 1000 < app.clock.now_millis();
        if unseated {
            if app.store.retire_idle_slot(&slot.id).await? {
                if let Some(arn) = &slot.task_arn {
                    app.tasks.stop(arn, "warm slot over the pool").await?;
                }
                tracing::warn!(slot = slot.id.as_str(), "a warm slot held no seat (given back after its seat was refilled); stopped");
            }
            continue;
        }
        // Made by a refill that died before its task was started or recorded, and held by
        // no seat (a held one the next refill gives up itself): out of the index.
        let never_started = slot.state == names::pool::SlotState::Idle
            && slot.task_arn.is_none()
            && slot.created_at + app.config.recovery_grace_seconds * 1000 < app.clock.now_millis();
        if never_started {
            if app.store.abandon_slot(&slot.id).await? {
                tracing::warn!(slot = slot.id.as_str(), "a warm slot never got its task; given up");
            }
            continue;
        }
        if slot.state == names::pool::SlotState::Idle && slot.deadline + STALE_SLOT_SECONDS < now {
            if let Some(arn) = &slot.task_arn {
                if let Err(e) = app.tasks.stop(arn, "warm slot past its deadline").await {
                    tracing::warn!(slot = slot.id.as_str(), error = %e, "could not stop a stale warm slot");
                }
            }
            app.store.retire_slot(&slot.id).await?;
        }
    }
    app.queue.send_refill().await?;
    Ok(())
}

/// Webhook events their finishing function could not queue are queued; rounds that stalled
/// (their message dead-lettered) are ended FAILED. (announced, stalled).
async fn tend_webhooks(app: &App) -> Result<(usize, usize), AwsError> {
    let mut announced = 0;
    let now = app.clock.now_secs();
    let overdue = app.store.overdue_webhooks(now).await?;
    for task_id in overdue.unannounced {
        app.store.announce(&task_id).await?;
        tracing::warn!(task_id = task_id.as_str(), "queued a webhook event its finishing function had not");
        announced += 1;
    }
    // A round that made no progress when an attempt was due: its message is gone (SQS moved it to
    // the webhooks DLQ after the function failed on every receive). The table says so: FAILED,
    // with an attempt that tells why and what to do.
    let mut stalled = 0;
    for (task_id, round, attempts) in overdue.stalled {
        let attempt = crate::model::Attempt {
            at: rfc3339(app.clock.now_millis()),
            attempt: attempts + 1,
            status_code: None,
            error: Some(names::webhook::STALLED.to_owned()),
            duration_ms: 0,
        };
        if app.store.fail_stalled(&task_id, round, &attempt, now).await? {
            tracing::warn!(task_id = task_id.as_str(), round, "a webhook round stalled (its message was dead-lettered); marked FAILED");
            stalled += 1;
        }
    }
    Ok((announced, stalled))
}

/// Gives back the running places kept for tasks that have stopped (their STOPPED event was lost,
/// or the function died before giving the place back): entries older than the recovery grace
/// whose task ECS reports stopped or no longer knows, or whose job never got a task. A task still
/// running that long after its job ended is asked to stop again, and keeps its place. The number
/// given back.
pub async fn give_back_stopped(app: &App) -> Result<usize, AwsError> {
    let cutoff = app.clock.now_millis() - app.config.recovery_grace_seconds * 1000;
    let mut given = 0;
    for counter in app.store.counters().await? {
        for entry in &counter.stopping {
            let Some((since, task_id)) = crate::aws::stopping_entry(entry) else { continue };
            if since > cutoff {
                continue;
            }
            // One entry's trouble (an AWS call that failed) is its own: the others, and the rest
            // of the sweep, go on; the next sweep tries it again.
            match give_back_if_stopped(app, &counter.tenant, entry, &task_id).await {
                Ok(true) => given += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(task_id = task_id.as_str(), error = %e, "could not settle a kept running place; the next sweep tries again"),
            }
        }
    }
    Ok(given)
}

async fn give_back_if_stopped(app: &App, tenant: &str, entry: &str, task_id: &TaskId) -> Result<bool, AwsError> {
    let job = app.store.get(task_id).await?;
    // The job's task: its own, or that of the slot it was handed to while the slot still holds
    // it (a slot whose claim was given back runs another job, or none, and is not stopped here).
    let arn = match job.as_ref().map(|j| (&j.ecs_task_arn, &j.warm_slot)) {
        Some((Some(arn), _)) => Some(arn.clone()),
        Some((None, Some(slot))) => app.store.slot(slot).await?.filter(|s| s.claimed_by.as_deref() == Some(task_id.as_str())).and_then(|s| s.task_arn),
        _ => None,
    };
    let stopped = match &arn {
        Some(arn) => app.tasks.describe(arn).await?.is_none_or(|d| crate::task_state::agent_ended(&d, &app.config.container_name)),
        None => true,
    };
    if let (false, Some(arn)) = (stopped, &arn) {
        tracing::warn!(task_id = task_id.as_str(), task_arn = arn.as_str(), "a task still runs well after its job ended; stopping it again");
        app.tasks.stop(arn, "job ended").await?;
        return Ok(false);
    }
    let given = app.store.give_back_entry(tenant, entry).await?;
    if given {
        tracing::warn!(task_id = task_id.as_str(), tenant, "gave back the running place of an ended job whose task has stopped (its event was lost)");
    }
    Ok(given)
}

/// Ends an overdue job whose task ECS reports STOPPED as the task's STOPPED event would have
/// (`ecs:DescribeTasks` of the job's task, or of the warm slot's that holds it). True when the job
/// has ended.
async fn settle_from_ecs(app: &App, task_id: &TaskId) -> Result<bool, AwsError> {
    let Some(job) = app.store.get(task_id).await? else { return Ok(false) };
    let arn = match (&job.ecs_task_arn, &job.warm_slot) {
        (Some(arn), _) => arn.clone(),
        (None, Some(slot)) => match app.store.slot(slot).await?.and_then(|s| s.task_arn) {
            Some(arn) => arn,
            None => return Ok(false),
        },
        (None, None) => return Ok(false),
    };
    let Some(detail) = app.tasks.describe(&arn).await? else { return Ok(false) };
    if !crate::task_state::agent_ended(&detail, &app.config.container_name) {
        return Ok(false);
    }
    let outcome = task_change(app, &detail).await?;
    let ended = app.store.get(task_id).await?.is_some_and(|j| j.status.is_terminal());
    if ended {
        tracing::warn!(task_id = task_id.as_str(), task_arn = arn.as_str(), outcome = ?outcome, "an overdue job's task had stopped (its event was lost); ended as ECS reports it");
    }
    Ok(ended)
}

/// The sweep's care of waiting jobs (of `only` that tenant, if given), from one read of the
/// counters: [`wake_waiting`], then [`prune_parked`]. (jobs sent, entries dropped).
pub async fn tend_waiting(app: &App, only: Option<&str>) -> Result<(usize, usize), AwsError> {
    let counters = app.store.counters().await?;
    Ok((wake_waiting(app, only, &counters).await?, prune_parked(app, only, &counters).await?))
}

/// Sends the jobs waiting for a running place their tenant has free (by `counters`), oldest
/// first, and returns how many: they lost their wake-up (the function that freed the place died
/// before waking the next, or the waker between taking the entry and sending) and would
/// otherwise wait for their own 15-minute message. A job sent twice is harmless (a delivery that
/// finds no place parks it again).
async fn wake_waiting(app: &App, only: Option<&str>, counters: &[crate::aws::Counter]) -> Result<usize, AwsError> {
    let mut waiting = app.store.waiting_at_limit().await?;
    if let Some(tenant) = only {
        waiting.retain(|t, _| t == tenant);
    }
    let mut sent = 0;
    for (tenant, jobs) in waiting {
        let counter = counters.iter().find(|c| c.tenant == tenant);
        let running = counter.map_or(0, |c| c.running);
        // The tenant's limit as its counter carries it (the recount writes it there).
        let max_running = counter.and_then(|c| c.max_running).unwrap_or_else(|| i64::from(app.config.limits.max_running));
        let free = (max_running - running).max(0) as usize;
        for id in jobs.iter().take(free) {
            app.queue.send_wake(id).await?;
            tracing::warn!(tenant = tenant.as_str(), task_id = id.as_str(), "sent a waiting job whose wake-up was lost");
            sent += 1;
        }
    }
    Ok(sent)
}

/// Drops the parked entries (by `counters`) of jobs that no longer wait: left by a park that
/// landed after its job was woken, or by a job end that died before its waking. The number
/// dropped.
async fn prune_parked(app: &App, only: Option<&str>, counters: &[crate::aws::Counter]) -> Result<usize, AwsError> {
    let mut dropped = 0;
    for counter in counters {
        if counter.parked.is_empty() || only.is_some_and(|t| t != counter.tenant) {
            continue;
        }
        let n = app.store.prune_parked(&counter.tenant, &counter.parked).await?;
        if n > 0 {
            tracing::info!(tenant = counter.tenant.as_str(), dropped = n, "dropped parked entries of jobs that no longer wait");
        }
        dropped += n;
    }
    Ok(dropped)
}

/// An idle slot this long past its deadline has not left by itself (its task never started, or
/// its STOPPED event was lost).
pub const STALE_SLOT_SECONDS: i64 = 120;

/// A counter left alone this long is corrected if the index counts otherwise (the index lags
/// the table by far less; a counter changed more recently may be ahead of it).
pub const RECOUNT_QUIET_MILLIS: i64 = 60_000;

/// Corrects each tenant's counter that differs from its unfinished jobs as the index counts
/// them (drift from a hand edit, a restore, jobs from before the counters); only a counter that
/// has been quiet for [`RECOUNT_QUIET_MILLIS`], and only if it is still unchanged when written.
/// Returns how many were corrected.
pub async fn recount(app: &App) -> Result<usize, AwsError> {
    crate::identity::acting_as(crate::Function::Reconcile, Box::pin(recount_as_reconcile(app))).await
}

async fn recount_as_reconcile(app: &App) -> Result<usize, AwsError> {
    let actual = app.store.unfinished_counts().await?;
    let mut counters = app.store.counters().await?;
    // Each tenant's limits (the defaults, or its own from the table) onto its counter, where
    // submit and process read them.
    let limits = &crate::config::TenantLimits { defaults: app.config.limits, tenants: app.store.limit_overrides().await? };
    for c in &mut counters {
        let (mr, mq) = (limits.max_running(&c.tenant), limits.max_queued(&c.tenant));
        if (c.max_running, c.max_queued) != (Some(mr.into()), Some(mq.into())) {
            app.store.set_limits(&c.tenant, mr, mq).await?;
        }
    }
    for tenant in limits.tenants.keys() {
        if !counters.iter().any(|c| &c.tenant == tenant) {
            app.store.set_limits(tenant, limits.max_running(tenant), limits.max_queued(tenant)).await?;
        }
    }
    let now = app.clock.now_millis();
    let mut corrected = 0;
    let mut seen = std::collections::HashSet::new();
    for c in &counters {
        seen.insert(c.tenant.clone());
        // A place kept for a task that may still run counts as running.
        let (q, r) = actual.get(&c.tenant).copied().unwrap_or((0, 0));
        let r = r + c.stopping.len() as i64;
        if (q, r) != (c.queued, c.running) && now - c.counts_at >= RECOUNT_QUIET_MILLIS && app.store.correct_counts(&c.tenant, q, r, Some(c.counts_at)).await? {
            tracing::warn!(tenant = c.tenant.as_str(), queued = q, running = r, was_queued = c.queued, was_running = c.running, "corrected a tenant's job counts");
            corrected += 1;
        }
    }
    // The counts as found, each minute: every tenant's (one with a counter and nothing
    // unfinished counts 0), and the totals the alarms watch.
    let (mut waiting, mut running) = (0, 0);
    let stopping = |tenant: &str| counters.iter().find(|c| c.tenant == tenant).map_or(0, |c| c.stopping.len() as i64);
    let metrics = &app.store.metrics;
    let tenants: std::collections::BTreeSet<&String> = counters.iter().map(|c| &c.tenant).chain(actual.keys()).collect();
    for tenant in tenants {
        let (q, r) = actual.get(tenant).copied().unwrap_or((0, 0));
        let r = r + stopping(tenant);
        metrics.emit(now, names::metrics::TENANT_QUEUED, &[(names::metrics::dim::TENANT, tenant)], q as f64);
        metrics.emit(now, names::metrics::TENANT_RUNNING, &[(names::metrics::dim::TENANT, tenant)], r as f64);
        (waiting, running) = (waiting + q, running + r);
    }
    metrics.emit(now, names::metrics::JOBS_WAITING, &[], waiting as f64);
    metrics.emit(now, names::metrics::JOBS_RUNNING, &[], running as f64);
    for (tenant, (q, r)) in actual {
        if !seen.contains(&tenant) && app.store.correct_counts(&tenant, q, r, None).await? {
            tracing::warn!(tenant = tenant.as_str(), queued = q, running = r, "counted a tenant's jobs that had no counter");
            corrected += 1;
        }
    }
    Ok(corrected)
}
