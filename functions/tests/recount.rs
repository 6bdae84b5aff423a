//! The sweep's recount of the tenants' counters: drift injected and corrected once the counter
//! is quiet, and each tenant's own limits written onto its counter. A binary (so an emulator) of
//! its own: a sweep writes every tenant's limits from its configuration.

mod common;

use common::*;
use functions::process::{self, Outcome};
use functions::reconcile;
use functions::App;
use names::ecs::{StopCode, TaskStatus};

/// Taken by each test: a sweep acts on every tenant's items, by its own (manual) clock, so one
/// test's sweep an hour ahead would settle what another is looking at.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn counts(app: &App, tenant: &str) -> (i64, i64) {
    let c = app.store.counter(tenant).await.unwrap();
    (c.queued, c.running)
}

#[tokio::test]
async fn drift_is_corrected_by_the_sweep_once_the_counter_is_quiet() {
    let _one = ONE_AT_A_TIME.lock().await;
    let tenant = unique("drift");
    let app = app(&[&tenant]).await.with_clock(functions::time::Clock::manual(functions::time::now_millis()));
    let queued = submit(&app, &tenant, r#"{"query": "a"}"#).await;
    let running = submit(&app, &tenant, r#"{"query": "b"}"#).await;
    process::message(&app, &process::Message { body: Some(&job_message(&running)), receive_count: 1 }).await;
    assert_eq!(counts(&app, &tenant).await, (1, 1));
    // A crash of the bookkeeping, or a hand edit: the counter says 7 running, 0 queued.
    let c = app.store.counter(&tenant).await.unwrap();
    assert!(app.store.correct_counts(&tenant, 0, 7, Some(c.counts_at)).await.unwrap());
    let sweep = serde_json::json!({"detail-type": reconcile::SCHEDULED_EVENT, "source": "aws.events", "detail": {}});
    // Just changed: left alone (it may be ahead of the index).
    reconcile::event(&app, &sweep).await.unwrap();
    assert_eq!(counts(&app, &tenant).await, (0, 7));
    app.clock.advance(reconcile::RECOUNT_QUIET_MILLIS + 1000);
    let out = reconcile::event(&app, &sweep).await.unwrap();
    assert!(matches!(out, reconcile::Outcome::Swept { corrected, .. } if corrected >= 1), "{out:?}");
    assert_eq!(counts(&app, &tenant).await, (1, 1));
    // A tenant's own limits reach its counter through the sweep, and hold there.
    common::limits_of(&app, &tenant, Some(1), Some(1)).await;
    reconcile::event(&app, &sweep).await.unwrap();
    let c = app.store.counter(&tenant).await.unwrap();
    assert_eq!((c.max_running, c.max_queued), (Some(1), Some(1)));
    let r = call(&app, &request(&tenant, "POST", "/jobs", r#"{"query": "over its own limit"}"#)).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("1 jobs queued"), "{}", r.body);
    assert!(matches!(process::message(&app, &process::Message { body: Some(&job_message(&queued)), receive_count: 1 }).await, Outcome::Waiting));
}

/// The job as the table holds it.
async fn job(app: &App, id: &str) -> functions::model::Job {
    app.store.get(&functions::model::TaskId::parse(id).unwrap()).await.unwrap().unwrap()
}

async fn deliver(app: &App, id: &str) -> Outcome {
    process::message(app, &process::Message { body: Some(&job_message(id)), receive_count: 1 }).await
}

/// Issue 24, found by the fault-injection test (seeds 3053 and 4176): a job cancelled or timed out
/// while its agent still ran gave its running place back at once, and the tenant's next job
/// started beside the one still running: over `max_running`. The place is kept until the task
/// has stopped: given back by the task's STOPPED event, or by the sweep when that event was lost
/// (once the recovery grace has passed and ECS reports the task stopped), never before; the
/// recount counts a kept place as running.
#[tokio::test]
async fn an_ended_job_keeps_its_running_place_until_its_task_has_stopped() {
    let _one = ONE_AT_A_TIME.lock().await;
    let tenant = unique("stopping");
    let app = app(&[&tenant]).await.with_clock(functions::time::Clock::manual(functions::time::now_millis()));
    let sweep = serde_json::json!({"detail-type": reconcile::SCHEDULED_EVENT, "source": "aws.events", "detail": {}});
    common::limits_of(&app, &tenant, Some(1), None).await;
    reconcile::event(&app, &sweep).await.unwrap();
    let (a, b, c) = (submit(&app, &tenant, r#"{"query": "a"}"#).await, submit(&app, &tenant, r#"{"query": "b"}"#).await, submit(&app, &tenant, r#"{"query": "c"}"#).await);
    assert!(matches!(deliver(&app, &a).await, Outcome::Started { .. }));
    assert_eq!(deliver(&app, &b).await, Outcome::Waiting);

    // a overruns its deadline: the sweep fails it and stops its task, which has not stopped yet.
    make_overdue(&app, &a).await;
    reconcile::event(&app, &sweep).await.unwrap();
    let ended = job(&app, &a).await;
    assert_eq!((ended.status, ended.error_code.as_deref()), (names::JobStatus::Failed, Some("TIMEOUT")));
    let counter = app.store.counter(&tenant).await.unwrap();
    assert_eq!((counter.queued, counter.running, counter.stopping.len()), (2, 1, 1), "the place is kept: {counter:?}");
    assert_eq!(deliver(&app, &b).await, Outcome::Waiting, "b must not start beside a's agent");
    // A recount (the counter quiet for long enough) agrees: the kept place counts as running.
    app.clock.advance(reconcile::RECOUNT_QUIET_MILLIS + 1000);
    assert_eq!(functions::identity::acting_as(functions::Function::Reconcile, reconcile::recount(&app)).await.unwrap(), 0);
    // Its task stops: the place is given back, once (the event comes twice).
    let arn = ended.ecs_task_arn.clone().unwrap();
    let stopped = task_event(&app.config.cluster_arn, &arn, &a, TaskStatus::Stopped, container(Some(143), None), Some(StopCode::UserInitiated));
    assert_eq!(
        reconcile::event(&app, &stopped).await.unwrap(),
        reconcile::Outcome::Ignored("ended before its task stopped; its running place given back")
    );
    assert_eq!(reconcile::event(&app, &stopped).await.unwrap(), reconcile::Outcome::Ignored("stale event"));
    assert_eq!(counts(&app, &tenant).await, (2, 0));
    assert!(matches!(deliver(&app, &b).await, Outcome::Started { .. }));

    // b is cancelled while it runs, and its task's STOPPED event is lost.
    assert_eq!(call(&app, &request(&tenant, "DELETE", &format!("/jobs/{b}"), "")).await.status, 200);
    assert_eq!(counts(&app, &tenant).await, (1, 1));
    assert_eq!(deliver(&app, &c).await, Outcome::Waiting);
    // Within the recovery grace the sweep leaves the place where it is, even with ECS saying the
    // task stopped (the cancel stopped it): the event may still be on its way.
    reconcile::event(&app, &sweep).await.unwrap();
    assert_eq!(counts(&app, &tenant).await, (1, 1));
    app.clock.advance(app.config.recovery_grace_seconds * 1000 + 1000);
    let b_arn = job(&app, &b).await.ecs_task_arn.unwrap();
    let described = app.tasks.describe(&b_arn).await.unwrap().unwrap();
    assert_eq!(described.last_status, TaskStatus::Stopped, "the cancel stopped b's task");
    reconcile::event(&app, &sweep).await.unwrap();
    assert_eq!(counts(&app, &tenant).await, (1, 0));
    assert!(app.store.counter(&tenant).await.unwrap().stopping.is_empty());
    assert!(matches!(deliver(&app, &c).await, Outcome::Started { .. }));

    // A job cancelled before any task could be started for it (no task, no slot, no cold mark)
    // gives its place back at once.
    let d = submit(&app, &tenant, r#"{"query": "d"}"#).await;
    assert_eq!(call(&app, &request(&tenant, "DELETE", &format!("/jobs/{c}"), "")).await.status, 200);
    assert_eq!(counts(&app, &tenant).await, (1, 1));
    let c_arn = job(&app, &c).await.ecs_task_arn.unwrap();
    let stopped = task_event(&app.config.cluster_arn, &c_arn, &c, TaskStatus::Stopped, container(Some(143), None), Some(StopCode::UserInitiated));
    reconcile::event(&app, &stopped).await.unwrap();
    assert_eq!(counts(&app, &tenant).await, (1, 0));
    let claimed = app.store.transition_limited(&functions::model::TaskId::parse(&d).unwrap(), names::JobStatus::Provisioning, vec![], Some(1)).await.unwrap();
    assert!(matches!(claimed, functions::aws::Moved::Moved(_)), "{claimed:?}");
    assert_eq!(call(&app, &request(&tenant, "DELETE", &format!("/jobs/{d}"), "")).await.status, 200);
    assert_eq!(counts(&app, &tenant).await, (0, 0));
    assert!(job(&app, &d).await.stopping.is_none());
}
