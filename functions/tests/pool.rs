//! The warm pool against the emulator: slots started by refill (their tasks run by moto's ECS),
//! claim races (two jobs for one slot, two slots for one job), a duplicate delivery, a slot that
//! ends before and after it was claimed (its job back to the queue, or ended as a cold task's),
//! a slot too close to its deadline (not claimed: the cold path), cancel of a job in a slot, and
//! the refill after each.

mod common;

use common::*;
use functions::model::TaskId;
use functions::pool::{self, Slot};
use functions::process::{self, Outcome};
use functions::{reconcile, App};
use names::ecs::{StopCode, TaskStatus};
use names::pool::SlotState;
use names::JobStatus;

/// An app with a pool of `size` over a job queue of its own (refill messages land there).
async fn pool_app(tenant: &str, size: u32) -> App {
    let mut c = config();
    c.warm_pool_size = size;
    c.queue_url = own_queue("pool").await;
    // Each test's slots apart from the others': its own table would be cleaner, one prefix is
    // enough (slots are read from the shared index and filtered by what this test started).
    let app = app_with(c).await;
    common::key_of(&app, tenant).await;
    app
}

/// The slots this app's refills started, by id.
async fn slots_of(app: &App, ids: &[String]) -> Vec<Slot> {
    let mut out = Vec::new();
    for id in ids {
        out.push(app.store.slot(id).await.unwrap().unwrap());
    }
    out
}

/// Retires every slot of the shared table: other tests' idle slots would count toward this pool.
async fn retire_others(app: &App) {
    for s in app.store.slots().await.unwrap() {
        app.store.retire_slot(&s.id).await.unwrap();
    }
}

/// Fills the pool and returns the new slots' ids (the slots of other tests are not this one's:
/// the pool counts every idle slot of the table, so each test drains the others' first).
async fn fill(app: &App) -> Vec<String> {
    retire_others(app).await;
    pool::refill(app).await.unwrap();
    app.store.slots().await.unwrap().into_iter().filter(|s| s.state == SlotState::Idle).map(|s| s.id).collect()
}

async fn job(app: &App, id: &str) -> functions::model::Job {
    app.store.get(&TaskId::parse(id).unwrap()).await.unwrap().unwrap()
}

async fn deliver(app: &App, id: &str) -> Outcome {
    process::message(app, &process::Message { body: Some(&job_message(id)), receive_count: 1 }).await
}

async fn slot_stopped(app: &App, slot: &Slot, exit: Option<i64>) -> reconcile::Outcome {
    let ev = task_event(
        &app.config.cluster_arn,
        slot.task_arn.as_deref().unwrap(),
        &names::pool::started_by(&slot.id),
        TaskStatus::Stopped,
        container(exit, None),
        Some(StopCode::EssentialContainerExited),
    );
    reconcile::event(app, &ev).await.unwrap()
}

async fn refill_as_process(app: &App) -> Result<usize, functions::aws::AwsError> {
    functions::identity::acting_as(functions::Function::Process, pool::refill(app)).await
}

async fn queued_messages(app: &App) -> Vec<String> {
    let r = app.queue.client.receive_message().queue_url(&app.queue.url).max_number_of_messages(10).send().await.unwrap();
    r.messages().iter().map(|m| m.body().unwrap().to_owned()).collect()
}

/// One test body at a time: the pool counts every idle slot of the shared table.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn two_jobs_for_one_slot_one_slot_for_two_deliveries_and_a_duplicate() {
    let _one = SERIAL.lock().await;
    let tenant = unique("race");
    let app = pool_app(&tenant, 1).await;
    let slots = fill(&app).await;
    assert_eq!(slots.len(), 1, "refill starts the one slot the pool lacks");
    let s = &slots_of(&app, &slots).await[0];
    assert!(s.task_arn.is_some() && s.state == SlotState::Idle, "{s:?}");

    // Two jobs at once, one slot: one warm, the other cold; the slot has exactly one job.
    let (a, b) = (submit(&app, &tenant, r#"{"query": "a"}"#).await, submit(&app, &tenant, r#"{"query": "b"}"#).await);
    let (oa, ob) = tokio::join!(deliver(&app, &a), deliver(&app, &b));
    assert!(matches!(oa, Outcome::Started { .. }) && matches!(ob, Outcome::Started { .. }), "{oa:?} {ob:?}");
    let (ja, jb) = (job(&app, &a).await, job(&app, &b).await);
    let warm: Vec<&functions::model::Job> = [&ja, &jb].into_iter().filter(|j| j.warm_slot.is_some()).collect();
    assert_eq!(warm.len(), 1, "exactly one job in the one slot: {ja:?} {jb:?}");
    let (w, cold) = if ja.warm_slot.is_some() { (&ja, &jb) } else { (&jb, &ja) };
    assert_eq!(w.status, JobStatus::Running, "a warm job runs at once");
    assert_eq!(w.ecs_task_arn, s.task_arn, "its task is the slot's");
    assert_eq!(cold.status, JobStatus::Provisioned, "the other started a cold task");
    let claimed = app.store.slot(&s.id).await.unwrap().unwrap();
    assert_eq!((claimed.state, claimed.claimed_by.as_deref(), claimed.handed_over), (SlotState::Claimed, Some(w.task_id.as_str()), true));
    let manifest = app.outputs.client.get_object().bucket(&app.config.bucket).key(names::bucket::slot_manifest_key(&s.id)).send().await.unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(manifest["job"]["task_id"], w.task_id.as_str(), "the slot's manifest is its job's");
    assert!(manifest["uploads"]["screenshot.png"]["url"].is_string());
    // The claim refilled the pool: a new idle slot waits.
    assert_eq!(app.store.slots().await.unwrap().iter().filter(|s| s.state == SlotState::Idle).count(), 1);

    // A duplicate delivery of the warm job starts nothing and claims nothing.
    assert_eq!(deliver(&app, w.task_id.as_str()).await, Outcome::Ignored("duplicate delivery"));
    // A job left PROVISIONING by an attempt that may have started its cold task is retried cold
    // (RunTask's clientToken finds that task), never given a slot as well.
    let d = submit(&app, &tenant, r#"{"query": "d"}"#).await;
    app.store.transition(&TaskId::parse(&d).unwrap(), JobStatus::Provisioning, vec![]).await.unwrap();
    assert!(matches!(deliver(&app, &d).await, Outcome::Started { .. }));
    assert_eq!(job(&app, &d).await.warm_slot, None, "not warm: {:?}", job(&app, &d).await);
    assert_eq!(app.store.slots().await.unwrap().iter().filter(|s| s.state == SlotState::Idle).count(), 1, "the idle slot is still idle");

    // One job, two idle slots, two deliveries at once: one slot claimed, the other still idle.
    let both = fill_to(&app, 2).await;
    let c = submit(&app, &tenant, r#"{"query": "c"}"#).await;
    let (o1, o2) = tokio::join!(deliver(&app, &c), deliver(&app, &c));
    assert!([&o1, &o2].iter().any(|o| matches!(o, Outcome::Started { .. })), "{o1:?} {o2:?}");
    let jc = job(&app, &c).await;
    let states: Vec<(SlotState, Option<String>)> = slots_of(&app, &both).await.into_iter().map(|s| (s.state, s.claimed_by)).collect();
    let claimed: Vec<_> = states.iter().filter(|(st, _)| *st == SlotState::Claimed).collect();
    assert_eq!(claimed.len(), 1, "one slot per job: {states:?}");
    assert_eq!(claimed[0].1.as_deref(), Some(c.as_str()));
    assert_eq!(jc.status, JobStatus::Running);
    assert!(both.contains(jc.warm_slot.as_ref().unwrap()));
    assert_eq!(app.store.counter(&tenant).await.unwrap().running, 4, "a, b, c and d run");
}

/// Retires every idle slot, then starts `n` (the pool's size set to `n` for it).
async fn fill_to(app: &App, n: u32) -> Vec<String> {
    let mut bigger = app.clone();
    bigger.config.warm_pool_size = n;
    fill(&bigger).await
}

/// A duplicate delivery that read the slot before the hand-over was marked writes the slot's
/// manifest again after the agent took it (issue 24 (d)): when the slot's task ends, the job that
/// ran there ends; it is not sent back to the queue to run twice (its agent.log shows it ran).
#[tokio::test]
async fn a_manifest_written_again_after_the_take_does_not_requeue_a_job_that_ran() {
    let _one = SERIAL.lock().await;
    let tenant = unique("rewrite");
    let app = pool_app(&tenant, 1).await;
    let slots = fill(&app).await;
    let id = submit(&app, &tenant, r#"{"query": "once"}"#).await;
    assert!(matches!(deliver(&app, &id).await, Outcome::Started { .. }));
    let slot = slots_of(&app, &slots).await.remove(0);
    assert_eq!(slot.claimed_by.as_deref(), Some(id.as_str()));
    let key = names::bucket::slot_manifest_key(&slot.id);
    let s3 = &app.outputs.client;
    let manifest = s3.get_object().bucket(&app.config.bucket).key(&key).send().await.unwrap().body.collect().await.unwrap().into_bytes();
    // The agent takes it, runs the job, uploads its log; then the duplicate writes it again.
    s3.delete_object().bucket(&app.config.bucket).key(&key).send().await.unwrap();
    let log = names::bucket::output_key(&id, names::Output::Log);
    s3.put_object().bucket(&app.config.bucket).key(&log).body(b"{}".to_vec().into()).send().await.unwrap();
    s3.put_object().bucket(&app.config.bucket).key(&key).body(manifest.to_vec().into()).send().await.unwrap();
    // (The submit's own message and the claim's refill request, out of the way.)
    while !queued_messages(&app).await.is_empty() {}
    let out = slot_stopped(&app, &app.store.slot(&slot.id).await.unwrap().unwrap(), Some(0)).await;
    assert_eq!(out, reconcile::Outcome::Applied(JobStatus::Completed), "{out:?}");
    assert_eq!(job(&app, &id).await.status, JobStatus::Completed);
    let requeued = queued_messages(&app).await.into_iter().filter(|m| m.contains(&id)).count();
    assert_eq!(requeued, 0, "the job was sent back to the queue");
}

/// Refills at once (after claims, slot ends and sweeps, each a message of its own) start no more
/// slots than the pool has places: before, each started the whole deficit it had counted (here 5
/// refills of a pool of 2 started up to 10), enough to exhaust a Fargate vCPU quota.
#[tokio::test]
async fn refills_at_once_never_start_more_slots_than_the_pool_has_places() {
    let _one = SERIAL.lock().await;
    let tenant = unique("overshoot");
    let app = pool_app(&tenant, 2).await;
    retire_others(&app).await;
    let refill = || functions::identity::acting_as(functions::Function::Process, pool::refill(&app));
    let started: usize = futures_util::future::join_all((0..5).map(|_| refill())).await.into_iter().map(|r| r.unwrap()).sum();
    assert_eq!(started, 2, "one slot per place");
    let idle = app.store.slots().await.unwrap().into_iter().filter(|s| s.state == SlotState::Idle).count();
    assert_eq!(idle, 2);
    assert_eq!(refill().await.unwrap(), 0, "a full pool starts nothing");
    // A place whose slot was claimed is free again: one new slot, not two.
    let slot = app.store.slots().await.unwrap().into_iter().find(|s| s.state == SlotState::Idle).unwrap();
    let job = TaskId::parse(&submit(&app, &tenant, r#"{"query": "x"}"#).await).unwrap();
    assert!(app.store.claim_slot(&slot.id, &job, &app.config.task_definition).await.unwrap());
    let again: usize = futures_util::future::join_all((0..3).map(|_| refill())).await.into_iter().map(|r| r.unwrap()).sum();
    assert_eq!(again, 1);
}

#[tokio::test]
async fn a_slot_that_ends_before_taking_its_job_sends_it_back_and_one_that_took_it_ends_it() {
    let _one = SERIAL.lock().await;
    let tenant = unique("crash");
    let app = pool_app(&tenant, 1).await;

    // An idle slot crashes: retired, and the pool is asked to refill.
    let idle = fill(&app).await;
    let s = &slots_of(&app, &idle).await[0];
    assert_eq!(slot_stopped(&app, s, Some(101)).await, reconcile::Outcome::Ignored("an idle slot ended"));
    assert_eq!(app.store.slot(&s.id).await.unwrap().unwrap().state, SlotState::Gone);
    let refill = queued_messages(&app).await;
    assert!(refill.iter().any(|m| m.contains("refill")), "{refill:?}");
    assert!(matches!(process::message(&app, &process::Message { body: Some(r#"{"pool": "refill"}"#), receive_count: 1 }).await, Outcome::Refilled(1)));

    // Claimed, then it ends before reading its manifest: the job goes back to the queue.
    let s = &app.store.slots().await.unwrap().into_iter().find(|s| s.state == SlotState::Idle).unwrap();
    let id = submit(&app, &tenant, r#"{"query": "lost slot"}"#).await;
    assert!(matches!(deliver(&app, &id).await, Outcome::Started { .. }));
    assert_eq!(job(&app, &id).await.warm_slot.as_deref(), Some(s.id.as_str()));
    let s = app.store.slot(&s.id).await.unwrap().unwrap();
    assert_eq!(slot_stopped(&app, &s, Some(137)).await, reconcile::Outcome::Applied(JobStatus::Queued));
    // The same event again changes nothing (the job stays queued, not failed).
    assert_eq!(slot_stopped(&app, &s, Some(137)).await, reconcile::Outcome::Ignored("a slot already retired"));
    let back = job(&app, &id).await;
    assert_eq!((back.status, back.warm_slot.as_deref()), (JobStatus::Queued, None), "queued again, its slot forgotten");
    assert_eq!(back.view().queued_reason, Some(names::job::QueuedReason::Dispatch), "waiting for the dispatcher again");
    assert!(queued_messages(&app).await.iter().any(|m| m.contains(&id)), "its message sent again");
    assert_eq!(app.store.counter(&tenant).await.unwrap().running, 0);
    assert!(!app.outputs.exists(&names::bucket::slot_manifest_key(&s.id)).await.unwrap(), "the slot's manifest is removed");
    // Delivered again: it takes the slot the refill started.
    process::message(&app, &process::Message { body: Some(r#"{"pool": "refill"}"#), receive_count: 1 }).await;
    assert!(matches!(deliver(&app, &id).await, Outcome::Started { .. }));
    let again = job(&app, &id).await;
    assert_eq!(again.status, JobStatus::Running);
    let s2 = app.store.slot(again.warm_slot.as_ref().unwrap()).await.unwrap().unwrap();
    assert_ne!(s2.id, s.id);

    // The agent took it (deleted the manifest) and exited 0: the job completes.
    app.outputs.delete_slot_manifest(&s2.id).await.unwrap();
    assert_eq!(slot_stopped(&app, &s2, Some(0)).await, reconcile::Outcome::Applied(JobStatus::Completed));
    assert_eq!(job(&app, &id).await.status, JobStatus::Completed);
    assert_eq!(app.store.slot(&s2.id).await.unwrap().unwrap().state, SlotState::Gone);
    assert_eq!(app.store.counter(&tenant).await.unwrap().running, 0);
}

#[tokio::test]
async fn a_slot_about_to_leave_is_not_claimed_and_a_cancel_stops_a_warm_job() {
    let _one = SERIAL.lock().await;
    let tenant = unique("aged");
    let app = pool_app(&tenant, 1).await;
    let slots = fill(&app).await;

    // Later, its deadline within the claim margin: the job goes cold; the sweep retires it once
    // past its deadline and asks for a refill.
    let late = functions::time::Clock::manual(functions::time::now_millis() + (names::pool::IDLE_SECONDS - 30) * 1000);
    let later = app.clone().with_clock(late.clone());
    let id = submit(&later, &tenant, r#"{"query": "late"}"#).await;
    assert!(matches!(deliver(&later, &id).await, Outcome::Started { .. }));
    let j = job(&app, &id).await;
    assert_eq!((j.status, j.warm_slot), (JobStatus::Provisioned, None), "cold: the only slot was about to leave");
    late.advance((30 + reconcile::STALE_SLOT_SECONDS + 1) * 1000);
    let scheduled = serde_json::json!({"detail-type": reconcile::SCHEDULED_EVENT, "source": "aws.events", "detail": {}});
    reconcile::event(&later, &scheduled).await.unwrap();
    assert_eq!(app.store.slot(&slots[0]).await.unwrap().unwrap().state, SlotState::Gone);
    assert!(queued_messages(&app).await.iter().any(|m| m.contains("refill")));

    // A warm job cancelled: its slot's task is stopped; the slot's end changes nothing more.
    let fresh = fill(&app).await;
    let id = submit(&app, &tenant, r#"{"query": "cancel me"}"#).await;
    assert!(matches!(deliver(&app, &id).await, Outcome::Started { .. }));
    assert_eq!(job(&app, &id).await.warm_slot.as_deref(), Some(fresh[0].as_str()));
    let r = call(&app, &request(&tenant, "DELETE", &format!("/jobs/{id}"), "")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let s = app.store.slot(&fresh[0]).await.unwrap().unwrap();
    let ecs = &app.tasks.client;
    let described = ecs.describe_tasks().cluster(&app.config.cluster_arn).tasks(s.task_arn.clone().unwrap()).send().await.unwrap();
    assert_eq!(described.tasks()[0].desired_status(), Some("STOPPED"), "cancel stopped the slot's task");
    slot_stopped(&app, &s, Some(143)).await;
    assert_eq!(job(&app, &id).await.status, JobStatus::Cancelled);
    assert_eq!(app.store.slot(&s.id).await.unwrap().unwrap().state, SlotState::Gone);
}

#[test]
fn slot_names_fit_ecs_and_are_never_a_jobs() {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let by = names::pool::started_by(&id);
    assert_eq!(by.len(), names::ecs::STARTED_BY_MAX);
    assert_eq!(names::pool::slot_of(&by), Some(id.as_str()));
    assert!(TaskId::parse(&by).is_none());
    assert_eq!(names::pool::slot_of("6f1c2b9e-4d3a-4e8f-9a51-0c7d2e6b8f40"), None);
    assert_eq!(names::pool::slot_of("poolxyz"), None);
}

/// A slot moves back to the queue only the job it holds: a slot left CLAIMED by a delivery that
/// died, whose job then started cold, ends without touching that job (issue 24 (b)). And a slot
/// that was handed a job never goes back to idle nor takes another (issue 24 (e)).
#[tokio::test]
async fn a_slot_moves_back_only_the_job_it_holds_and_a_handed_over_slot_takes_no_other() {
    let _one = SERIAL.lock().await;
    let tenant = unique("held");
    let app = pool_app(&tenant, 2).await;
    let idle = fill(&app).await;
    assert!(idle.len() >= 2, "{idle:?}");

    // A delivery claimed the slot for the job and died; a later one started the job cold.
    let id = submit(&app, &tenant, r#"{"query": "elsewhere"}"#).await;
    let task = TaskId::parse(&id).unwrap();
    assert!(app.store.claim_slot(&idle[0], &task, &app.config.task_definition).await.unwrap());
    app.store.transition(&task, JobStatus::Provisioning, vec![]).await.unwrap().expect("claimed");
    let cold = "arn:aws:ecs:us-east-1:123456789012:task/c/elsewhere";
    let started = vec![(names::table::ECS_TASK_ARN, functions::aws::attr_s(cold))];
    app.store.transition(&task, JobStatus::Running, started).await.unwrap().expect("running cold");
    // Its submission's message, received (so only what the slot's end sends is seen below).
    assert!(queued_messages(&app).await.iter().any(|m| m.contains(&id)));
    let slot = app.store.slot(&idle[0]).await.unwrap().unwrap();
    slot_stopped(&app, &slot, Some(137)).await;
    let still = job(&app, &id).await;
    assert_eq!((still.status, still.ecs_task_arn.as_deref()), (JobStatus::Running, Some(cold)), "the job running elsewhere is left alone");
    assert!(!queued_messages(&app).await.iter().any(|m| m.contains(&id)), "and not sent again");
    assert_eq!(app.store.counter(&tenant).await.unwrap().running, 1);

    // Handed a job, the other slot can be neither given back nor claimed again.
    let (first, second) = (TaskId::parse(&submit(&app, &tenant, r#"{"query": "a"}"#).await).unwrap(), TaskId::parse(&submit(&app, &tenant, r#"{"query": "b"}"#).await).unwrap());
    assert!(app.store.claim_slot(&idle[1], &first, &app.config.task_definition).await.unwrap());
    assert!(app.store.claim_slot(&idle[1], &first, &app.config.task_definition).await.unwrap(), "the same job's claim again (a retry whose answer was lost) is its claim");
    assert!(!app.store.slot_handed_over(&idle[1], &second).await.unwrap(), "only the claiming job hands over");
    assert!(app.store.slot_handed_over(&idle[1], &first).await.unwrap());
    app.store.release_slot(&idle[1], &first).await.unwrap();
    let slot = app.store.slot(&idle[1]).await.unwrap().unwrap();
    assert_eq!((slot.state, slot.claimed_by.as_deref()), (SlotState::Claimed, Some(first.as_str())), "not released after a hand-over");
    assert!(!app.store.claim_slot(&idle[1], &second, &app.config.task_definition).await.unwrap(), "another job never takes a slot that was handed one");
    assert!(!app.store.claim_slot(&idle[1], &first, &app.config.task_definition).await.unwrap(), "nor the same job once handed over");
}

/// Runs its hook once, just before the first RunTask of the client it is installed in is sent:
/// the point where another delivery's steps fall between two of this one's.
#[derive(Clone)]
struct BeforeRunTask(std::sync::Arc<std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>>);

impl std::fmt::Debug for BeforeRunTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeforeRunTask")
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for BeforeRunTask {
    fn name(&self) -> &'static str {
        "before-run-task"
    }
    fn read_before_serialization(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>().is_some_and(|m| m.name() == "RunTask") {
            if let Some(hook) = self.0.lock().unwrap().take() {
                hook();
            }
        }
        Ok(())
    }
}

/// Issue 24 (a): two deliveries of one job. D1 claimed it and is handing it to a warm slot; D2, a
/// duplicate, read it PROVISIONING with no slot yet and goes cold. D1 runs between D2's decision
/// and D2's RunTask. Before, D1 handed the job to the slot and D2's task started too, and was
/// stopped only once its record was refused: with a fast start (the fault-injection test's
/// stand-in, seed 34) both ran the job. Now D2 records that the job goes cold before its RunTask,
/// only while no slot holds it, and a slot is recorded only while the job is not going cold: D1
/// gives its slot back, and the job runs once, on D2's task.
#[tokio::test]
async fn a_duplicate_that_goes_cold_while_another_hands_the_job_to_a_slot_runs_it_once() {
    let _one = SERIAL.lock().await;
    let tenant = unique("dup");
    let app = pool_app(&tenant, 1).await;
    let idle = fill(&app).await;
    assert_eq!(idle.len(), 1, "{idle:?}");
    let id = submit(&app, &tenant, r#"{"query": "twice"}"#).await;
    let task = TaskId::parse(&id).unwrap();
    // D1's claim (QUEUED -> PROVISIONING), as its delivery writes it.
    let claimed = app.store.transition(&task, JobStatus::Provisioning, vec![]).await.unwrap().expect("claimed");
    // The rest of D1 (the real code after its claim) runs at D2's RunTask.
    let config = app.config.clone();
    let d1 = move || {
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async move {
                let d1 = app_with(config).await;
                process::dispatch_claimed(&d1, &claimed, 1, true).await.unwrap()
            })
        })
        .join()
        .expect("D1 ran")
    };
    let d1_outcome = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = d1_outcome.clone();
    let mut d2 = app_with(app.config.clone()).await;
    let hook = BeforeRunTask(std::sync::Arc::new(std::sync::Mutex::new(Some(Box::new(move || *seen.lock().unwrap() = Some(d1()))))));
    d2.tasks.client = aws_sdk_ecs::Client::from_conf(aws_sdk_ecs::config::Builder::from(&sdk().await).interceptor(hook).build());
    let outcome = process::message(&d2, &process::Message { body: Some(&job_message(&id)), receive_count: 2 }).await;
    let Outcome::Started { task_arn } = outcome else { panic!("D2 starts the job cold: {outcome:?}") };
    let d1_outcome = d1_outcome.lock().unwrap().clone().expect("D1 ran");
    assert!(!matches!(&d1_outcome, Outcome::Started { task_arn: t } if Some(t.as_str()) == app.store.slot(&idle[0]).await.unwrap().unwrap().task_arn.as_deref()), "D1 did not hand it to the slot: {d1_outcome:?}");

    // The job runs on D2's task, no slot holds it, and the slot waits for another job.
    let cold = job(&app, &id).await;
    assert_eq!((cold.warm_slot.as_deref(), cold.ecs_task_arn.as_deref()), (None, Some(task_arn.as_str())));
    let slot = app.store.slot(&idle[0]).await.unwrap().unwrap();
    assert_eq!((slot.state, slot.handed_over), (SlotState::Idle, false), "the slot was given back");
    let running = app.tasks.client.list_tasks().cluster(&app.tasks.cluster).started_by(&id).desired_status(aws_sdk_ecs::types::DesiredStatus::Running).send().await.unwrap();
    assert_eq!(running.task_arns(), [task_arn.clone()], "one task of the job");
    assert_eq!(app.store.counter(&tenant).await.unwrap().running, 1);
}

/// Issue 24, found by the fault-injection test (seed 34): the slot's mark was written after its
/// manifest, so a crash between the two left a slot whose agent took and ran the job while the
/// table said nothing was handed over, and the slot's end sent the job back to the queue: it ran
/// twice. Now the mark comes first, and "taken" is the agent's release (the delete marker of the
/// versioned bucket) or its log: an agent that died after the take, with a duplicate delivery
/// writing the manifest again, leaves the job taken (failed, not queued again). And the verdict
/// is kept: the end run again after it deleted the manifest itself (a retried event whose first
/// try died before the slot was retired) decides as the first did.
#[tokio::test]
async fn a_job_taken_by_a_slot_that_died_is_not_queued_again_and_a_slot_end_decides_once() {
    let _one = SERIAL.lock().await;
    let tenant = unique("died");
    let app = pool_app(&tenant, 1).await;
    let slots = fill(&app).await;
    let id = submit(&app, &tenant, r#"{"query": "dies"}"#).await;
    assert!(matches!(deliver(&app, &id).await, Outcome::Started { .. }));
    let slot = slots_of(&app, &slots).await.remove(0);
    assert!(slot.handed_over);
    let key = names::bucket::slot_manifest_key(&slot.id);
    let s3 = &app.outputs.client;
    let manifest = s3.get_object().bucket(&app.config.bucket).key(&key).send().await.unwrap().body.collect().await.unwrap().into_bytes();
    // The agent takes it and dies (no agent.log); then a duplicate writes the manifest again.
    s3.delete_object().bucket(&app.config.bucket).key(&key).send().await.unwrap();
    s3.put_object().bucket(&app.config.bucket).key(&key).body(manifest.to_vec().into()).send().await.unwrap();
    while !queued_messages(&app).await.is_empty() {}
    let out = slot_stopped(&app, &app.store.slot(&slot.id).await.unwrap().unwrap(), Some(137)).await;
    assert_eq!(out, reconcile::Outcome::Applied(JobStatus::Failed), "{out:?}");
    assert_eq!(queued_messages(&app).await.into_iter().filter(|m| m.contains(&id)).count(), 0, "the job was sent back to the queue");

    // A slot that never took its job: the end queues it again and deletes the manifest (a
    // delete marker of its own). Its first try dies before the slot is retired; the retry
    // must not read that marker as the agent's release.
    process::message(&app, &process::Message { body: Some(r#"{"pool": "refill"}"#), receive_count: 1 }).await;
    let id = submit(&app, &tenant, r#"{"query": "never taken"}"#).await;
    assert!(matches!(deliver(&app, &id).await, Outcome::Started { .. }));
    let slot = app.store.slot(job(&app, &id).await.warm_slot.as_ref().unwrap()).await.unwrap().unwrap();
    assert_eq!(slot_stopped(&app, &slot, Some(137)).await, reconcile::Outcome::Applied(JobStatus::Queued));
    app.store
        .client
        .update_item()
        .table_name(&app.config.table)
        .key(names::table::TASK_ID, aws_sdk_dynamodb::types::AttributeValue::S(names::table::slot_key(&slot.id)))
        .update_expression("SET slot_state = :c")
        .expression_attribute_values(":c", aws_sdk_dynamodb::types::AttributeValue::S(SlotState::Claimed.as_str().into()))
        .send()
        .await
        .unwrap();
    slot_stopped(&app, &slot, Some(137)).await;
    assert_eq!(job(&app, &id).await.status, JobStatus::Queued, "the retried end took the job for run");
}

/// Issue 24, found by the fault-injection test (seed 4): a refill that died between the slot's
/// item and RunTask left its seat held by a slot with no task for the slot's whole life (the
/// pool one short for about 20 minutes). A slot still without a task a minute after it was made
/// is given up and its seat refilled; a task of a given-up slot that turns up after all is
/// stopped, so the pool never runs more slots than seats.
#[tokio::test]
async fn a_slot_whose_refill_died_is_given_up_and_its_late_task_stopped() {
    let _one = SERIAL.lock().await;
    let tenant = unique("orphan");
    let app = pool_app(&tenant, 1).await;
    retire_others(&app).await;
    // What the dead refill left: the item and the seat, no task.
    let orphan = uuid::Uuid::new_v4().simple().to_string();
    let deadline = app.clock.now_secs() + 900;
    assert!(app.store.create_slot(&orphan, deadline, &app.config.task_definition).await.unwrap());
    let held = app.store.seat(0).await.unwrap();
    assert!(app.store.take_seat(0, held.as_deref(), &orphan).await.unwrap());
    // It had made the slot's wake queue and recorded it (issue 28).
    let queue = app.wakes.create(&orphan).await.unwrap();
    assert!(app.store.set_slot_wake(&orphan, &queue).await.unwrap());
    let refill = |app: App| async move { refill_as_process(&app).await.unwrap() };
    assert_eq!(refill(app.clone()).await, 0, "a slot being started is not given up at once");
    let later = app.clone().with_clock(functions::time::Clock::manual(app.clock.now_millis() + (app.config.recovery_grace_seconds + 5) * 1000));
    assert_eq!(refill(later).await, 1, "a minute on, its seat is refilled");
    assert_eq!(app.store.slot(&orphan).await.unwrap().unwrap().state, SlotState::Gone);
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    assert!(sqs.get_queue_attributes().queue_url(&queue).send().await.is_err(), "the given-up slot's wake queue is deleted (as the process function)");
    // Its task started after all (the refill died after RunTask): stopped when it runs.
    let req = functions::aws::RunRequest { started_by: names::pool::started_by(&orphan), tags: vec![], environment: vec![] };
    let functions::aws::RunOutcome::Started { task_arn } = app.tasks.run(&req).await.unwrap() else { panic!("RunTask refused") };
    let ev = task_event(&app.config.cluster_arn, &task_arn, &names::pool::started_by(&orphan), TaskStatus::Running, container(None, None), None);
    assert_eq!(reconcile::event(&app, &ev).await.unwrap(), reconcile::Outcome::Ignored("a given-up warm slot's task, stopped"));
    let described = app.tasks.client.describe_tasks().cluster(&app.config.cluster_arn).tasks(&task_arn).send().await.unwrap();
    assert_eq!(described.tasks()[0].desired_status(), Some("STOPPED"));
}

/// Issue 24, found by the fault-injection test (seed 85): a claim whose answer was lost was
/// retried by the SDK, refused (the slot was no longer idle), and the dispatch went on without
/// it: the slot stayed claimed by a job that ran elsewhere, its task idle until its deadline: one
/// task over the pool (a claimed slot's seat is refilled at once). The retry is now the claim;
/// and a slot claimed more than a minute ago, never handed over, by a job that does not name it
/// (a dispatch that died between the two) is stopped and retired by the sweep.
#[tokio::test]
async fn a_claim_left_by_a_dead_dispatch_goes_back_to_the_pool() {
    let _one = SERIAL.lock().await;
    let tenant = unique("leftclaim");
    let app = pool_app(&tenant, 1).await;
    let slots = fill(&app).await;
    let id = TaskId::parse(&submit(&app, &tenant, r#"{"query": "x"}"#).await).unwrap();
    assert!(app.store.claim_slot(&slots[0], &id, &app.config.task_definition).await.unwrap());
    assert!(app.store.claim_slot(&slots[0], &id, &app.config.task_definition).await.unwrap(), "the SDK's retry of the same claim");
    let sweep = |app: App| async move { reconcile::sweep(&app).await.unwrap() };
    sweep(app.clone()).await;
    assert_eq!(app.store.slot(&slots[0]).await.unwrap().unwrap().state, SlotState::Claimed, "a claim a moment old is a dispatch at work");
    let later = app.clone().with_clock(functions::time::Clock::manual(app.clock.now_millis() + (app.config.recovery_grace_seconds + 5) * 1000));
    sweep(later).await;
    let s = app.store.slot(&slots[0]).await.unwrap().unwrap();
    assert_eq!(s.state, SlotState::Gone);
    let described = app.tasks.client.describe_tasks().cluster(&app.config.cluster_arn).tasks(s.task_arn.as_deref().unwrap()).send().await.unwrap();
    assert_eq!(described.tasks()[0].desired_status(), Some("STOPPED"), "its task is stopped");
    // The job's late dispatch finds its claim gone and does not hand it over.
    assert!(!app.store.slot_handed_over(&slots[0], &id).await.unwrap());
}

/// Issue 24, found by the fault-injection test (seed 51): a dispatch that handed the job to a
/// slot and died before recording the slot's task left the job PROVISIONING with no task; the
/// slot's end, after its agent ran the job, was taken for a stray task of the job and ignored,
/// and the next delivery, finding the slot gone, chose another: the job ran twice (and then
/// timed out). The slot a job names is its task; and a delivery that finds the job's slot was
/// handed it never chooses another.
#[tokio::test]
async fn a_job_whose_dispatch_died_after_the_hand_over_ends_with_its_slot_and_is_not_sent_again() {
    let _one = SERIAL.lock().await;
    let tenant = unique("handedover");
    let app = pool_app(&tenant, 2).await;
    let slots = fill(&app).await;
    let id = submit(&app, &tenant, r#"{"query": "x"}"#).await;
    let task = TaskId::parse(&id).unwrap();
    // The dispatch hands the job over and dies before the job records the slot's task.
    let claimed = app.store.transition(&task, JobStatus::Provisioning, vec![]).await.unwrap().expect("claimed");
    let functions::pool::Dispatch::Warm { slot_id, .. } = pool::dispatch(&app, &claimed).await.unwrap() else { panic!("not warm") };
    assert!(slots.contains(&slot_id));
    // Another delivery, once the slot is retiring, goes on with the same slot.
    app.store.retire_slot(&slot_id).await.unwrap();
    let again = job(&app, &id).await;
    let functions::pool::Dispatch::Warm { slot_id: same, .. } = pool::dispatch(&app, &again).await.unwrap() else { panic!("not warm") };
    assert_eq!(same, slot_id, "a handed-over slot is the job's");
    // The agent took it and ran it; the slot's end ends the job.
    app.outputs.delete_slot_manifest(&slot_id).await.unwrap();
    let log = names::bucket::output_key(&id, names::Output::Log);
    app.outputs.client.put_object().bucket(&app.config.bucket).key(&log).body(b"{}".to_vec().into()).send().await.unwrap();
    app.store
        .client
        .update_item()
        .table_name(&app.config.table)
        .key(names::table::TASK_ID, aws_sdk_dynamodb::types::AttributeValue::S(names::table::slot_key(&slot_id)))
        .update_expression("SET slot_state = :c")
        .expression_attribute_values(":c", aws_sdk_dynamodb::types::AttributeValue::S(SlotState::Claimed.as_str().into()))
        .send()
        .await
        .unwrap();
    let slot = app.store.slot(&slot_id).await.unwrap().unwrap();
    assert_eq!(slot_stopped(&app, &slot, Some(0)).await, reconcile::Outcome::Applied(JobStatus::Completed));
    assert!(matches!(deliver(&app, &id).await, Outcome::Ignored(_)), "a later delivery starts nothing");
}

/// Issue 24, found by the fault-injection test (seed 102): with the hand-over mark before the
/// manifest, a dispatch that died between the two left the slot marked and empty, and the next
/// delivery, seeing the mark, wrote nothing: the slot waited for a manifest that never came and
/// the job ran into its timeout. A delivery writes the manifest of a slot the job holds.
#[tokio::test]
async fn a_delivery_writes_the_manifest_a_dead_dispatch_did_not() {
    let _one = SERIAL.lock().await;
    let tenant = unique("nomanifest");
    let app = pool_app(&tenant, 1).await;
    let slots = fill(&app).await;
    let id = submit(&app, &tenant, r#"{"query": "x"}"#).await;
    let task = TaskId::parse(&id).unwrap();
    // The dispatch claims, records and marks, and dies before the manifest.
    app.store.transition(&task, JobStatus::Provisioning, vec![]).await.unwrap().expect("claimed");
    assert!(app.store.claim_slot(&slots[0], &task, &app.config.task_definition).await.unwrap());
    assert!(app.store.set_warm_slot(&task, &slots[0]).await.unwrap());
    assert!(app.store.slot_handed_over(&slots[0], &task).await.unwrap());
    assert!(!app.outputs.exists(&names::bucket::slot_manifest_key(&slots[0])).await.unwrap());
    assert!(matches!(deliver(&app, &id).await, Outcome::Started { .. }));
    assert!(app.outputs.exists(&names::bucket::slot_manifest_key(&slots[0])).await.unwrap(), "the manifest is at the slot's place");
}

/// Issue 24, found by the fault-injection test (seed 102): a job cancelled after its dispatch
/// handed it to a slot but before the slot's task was recorded on it left the slot claimed, its
/// task waiting until its deadline. The cancel stops the task of the slot the job names; and
/// the sweep stops a slot held by a job that finished without it.
#[tokio::test]
async fn a_cancel_stops_the_slot_its_job_was_handed_before_its_task_was_recorded() {
    let _one = SERIAL.lock().await;
    let tenant = unique("cancelslot");
    let app = pool_app(&tenant, 1).await;
    let slots = fill(&app).await;
    let id = submit(&app, &tenant, r#"{"query": "x"}"#).await;
    let claimed = app.store.transition(&TaskId::parse(&id).unwrap(), JobStatus::Provisioning, vec![]).await.unwrap().expect("claimed");
    let functions::pool::Dispatch::Warm { slot_id, task_arn } = pool::dispatch(&app, &claimed).await.unwrap() else { panic!("not warm") };
    assert_eq!(slot_id, slots[0]);
    let r = call(&app, &request(&tenant, "DELETE", &format!("/jobs/{id}"), "")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let described = app.tasks.client.describe_tasks().cluster(&app.config.cluster_arn).tasks(&task_arn).send().await.unwrap();
    assert_eq!(described.tasks()[0].desired_status(), Some("STOPPED"), "the slot's task is stopped");
}

/// Issue 24, found by the fault-injection test (seed 255): a slot given back after its claim (the
/// job went another way) came back idle while the refill had already given its seat to a new
/// slot: one slot over the pool until its deadline. The sweep stops and retires an idle slot that
/// holds no seat.
#[tokio::test]
async fn a_slot_given_back_after_its_seat_was_refilled_is_stopped() {
    let _one = SERIAL.lock().await;
    let tenant = unique("unseated");
    let app = pool_app(&tenant, 1).await;
    let slots = fill(&app).await;
    let id = TaskId::parse(&submit(&app, &tenant, r#"{"query": "x"}"#).await).unwrap();
    assert!(app.store.claim_slot(&slots[0], &id, &app.config.task_definition).await.unwrap());
    // The claim frees the seat: a refill starts another slot in it.
    assert_eq!(refill_as_process(&app).await.unwrap(), 1);
    app.store.release_slot(&slots[0], &id).await.unwrap();
    let idle: Vec<Slot> = app.store.slots().await.unwrap().into_iter().filter(|s| s.state == SlotState::Idle).collect();
    assert_eq!(idle.len(), 2, "one over the pool");
    let later = app.clone().with_clock(functions::time::Clock::manual(app.clock.now_millis() + (app.config.recovery_grace_seconds + 5) * 1000));
    reconcile::sweep(&later).await.unwrap();
    let s = app.store.slot(&slots[0]).await.unwrap().unwrap();
    assert_eq!(s.state, SlotState::Gone, "the slot without a seat is retired");
    let described = app.tasks.client.describe_tasks().cluster(&app.config.cluster_arn).tasks(s.task_arn.as_deref().unwrap()).send().await.unwrap();
    assert_eq!(described.tasks()[0].desired_status(), Some("STOPPED"));
    let idle = app.store.slots().await.unwrap().into_iter().filter(|s| s.state == SlotState::Idle).count();
    assert_eq!(idle, 1, "the pool's size");
}

/// Issue 24, found by the fault-injection test (seed 310): a slot's STOPPED event was lost (the
/// reconciler died on each of its three tries; Lambda then drops an asynchronous event), so its
/// job stayed RUNNING until the sweep failed it, and the slot stayed CLAIMED after its task had
/// gone: the pool one short until the slot's deadline. The sweep retires a slot whose job
/// finished (stopping its task, in case it still runs), and the pool refills.
#[tokio::test]
async fn a_slot_whose_stop_event_was_lost_is_retired_once_its_job_finished() {
    let _one = SERIAL.lock().await;
    let tenant = unique("lostslotend");
    let app = pool_app(&tenant, 1).await;
    let slots = fill(&app).await;
    let id = submit(&app, &tenant, r#"{"query": "x"}"#).await;
    assert!(matches!(deliver(&app, &id).await, Outcome::Started { .. }));
    let task_id = TaskId::parse(&id).unwrap();
    // Its end never comes; the sweep fails the job at its deadline.
    let failed = app.store.transition(&task_id, JobStatus::Failed, vec![]).await.unwrap();
    assert!(failed.is_some());
    let held = app.store.slot(&slots[0]).await.unwrap().unwrap();
    assert_eq!((held.state, held.handed_over), (SlotState::Claimed, true));
    let later = app.clone().with_clock(functions::time::Clock::manual(app.clock.now_millis() + (app.config.recovery_grace_seconds + 5) * 1000));
    reconcile::sweep(&later).await.unwrap();
    let s = app.store.slot(&slots[0]).await.unwrap().unwrap();
    assert_eq!(s.state, SlotState::Gone, "retired");
    let described = app.tasks.client.describe_tasks().cluster(&app.config.cluster_arn).tasks(s.task_arn.as_deref().unwrap()).send().await.unwrap();
    assert_eq!(described.tasks()[0].desired_status(), Some("STOPPED"));
}

/// Issue 24 (version skew): slots started before a deploy ran the old agent for up to 20 minutes,
/// and a manifest of the new release made the old agent exit 2, its job sent back to the queue and
/// perhaps into another old slot. A slot records the task definition its task runs (its image); a
/// dispatch claims only slots of its own task definition, and a refill of the new release retires
/// the old release's idle slots (stopping their tasks) and starts its own in their seats. A
/// function still of the old release leaves the new release's slots alone.
#[tokio::test]
async fn a_deploy_replaces_the_warm_slots_of_the_older_task_definition() {
    let _one = SERIAL.lock().await;
    let tenant = unique("redeployed");
    let before = pool_app(&tenant, 1).await;
    let old_slots = fill(&before).await;
    assert_eq!(old_slots.len(), 1);
    let old = before.store.slot(&old_slots[0]).await.unwrap().unwrap();
    assert_eq!(old.task_definition.as_deref(), Some(before.config.task_definition.as_str()), "a slot records its task definition");

    // The deploy registers the next revision of the family (a new image), and the functions'
    // environment names it.
    let revision = register_agent_task_definition(&aws_sdk_ecs::Client::new(&sdk().await)).await;
    let (_, n_old) = names::ecs::revision_of(&before.config.task_definition).unwrap();
    let (_, n_new) = names::ecs::revision_of(&revision).unwrap();
    assert!(n_new > n_old, "{revision} follows {}", before.config.task_definition);
    let mut config = before.config.clone();
    config.task_definition = revision.clone();
    let after = app_with(config).await;

    // A job of the new release does not go to the old slot: it starts cold.
    let id = submit(&after, &tenant, r#"{"query": "x"}"#).await;
    assert!(matches!(deliver(&after, &id).await, Outcome::Started { .. }));
    let started = job(&after, &id).await;
    assert_eq!(started.warm_slot, None, "not given to a slot of the older task definition");
    assert_ne!(started.ecs_task_arn.as_deref(), old.task_arn.as_deref());
    assert_eq!(after.store.slot(&old.id).await.unwrap().unwrap().state, SlotState::Idle);

    // The new release's refill retires the old slot, stops its task, and starts its own.
    assert_eq!(refill_as_process(&after).await.unwrap(), 1);
    assert_eq!(after.store.slot(&old.id).await.unwrap().unwrap().state, SlotState::Gone, "retired");
    let described = after.tasks.client.describe_tasks().cluster(&after.config.cluster_arn).tasks(old.task_arn.as_deref().unwrap()).send().await.unwrap();
    assert_eq!(described.tasks()[0].desired_status(), Some("STOPPED"), "its task stopped");
    let idle: Vec<Slot> = after.store.slots().await.unwrap().into_iter().filter(|s| s.state == SlotState::Idle).collect();
    assert_eq!(idle.len(), 1, "the pool's size");
    assert_eq!(idle[0].task_definition.as_deref(), Some(revision.as_str()));
    let task = after.tasks.client.describe_tasks().cluster(&after.config.cluster_arn).tasks(idle[0].task_arn.as_deref().unwrap()).send().await.unwrap();
    assert_eq!(task.tasks()[0].task_definition_arn(), Some(revision.as_str()), "the new slot's task runs the new revision");

    // A function of the old release (its environment not yet replaced) neither retires the new
    // slot nor is given it.
    assert_eq!(refill_as_process(&before).await.unwrap(), 0);
    assert_eq!(after.store.slot(&idle[0].id).await.unwrap().unwrap().state, SlotState::Idle);
    let late = TaskId::parse(&submit(&before, &tenant, r#"{"query": "x"}"#).await).unwrap();
    assert!(!before.store.claim_slot(&idle[0].id, &late, &before.config.task_definition).await.unwrap(), "a claim names its own task definition");
    // The new release's next job takes it.
    let next = submit(&after, &tenant, r#"{"query": "x"}"#).await;
    assert!(matches!(deliver(&after, &next).await, Outcome::Started { .. }));
    assert_eq!(job(&after, &next).await.warm_slot.as_deref(), Some(idle[0].id.as_str()));
}

/// Issue 24: a slot's links were signed for 20 minutes with credentials whose expiry the SDK does
/// not know in Lambda (its environment credentials carry none), so the guard that keeps links
/// within their credentials never engaged there, and a link could stop working before its own
/// expiry with nothing to tell. The agents' links are signed by a session of the process role
/// (`sts:AssumeRole`, made with Lambda's own credentials provider here), whose expiry is known;
/// S3 refuses a link once its session expired (the emulator answers as S3 does).
#[tokio::test]
async fn links_are_signed_by_a_session_whose_expiry_is_known_under_lambdas_credentials() {
    use aws_credential_types::provider::ProvideCredentials;
    let _one = SERIAL.lock().await;
    let tenant = unique("lambdacreds");
    let config = pool_app(&tenant, 1).await.config.clone();
    let keys = testenv::iam::register(&testenv::root(), &emulator().endpoint, &stack(&config)).await.unwrap();
    let process = &keys[&functions::Function::Process];
    // What Lambda hands a function: its role's credentials in the environment, no expiry. Lambda's
    // provider reads the process's environment, so it holds the process role's key while the
    // session is made (pool tests run one at a time), and the harness's again after.
    let lambda = aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new();
    let lambda_sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).credentials_provider(lambda.clone()).load().await;
    let app = App::new(&lambda_sdk, config, vec![functions::Function::Process]);
    let harness: Vec<(&str, Option<String>)> = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"].into_iter().map(|k| (k, std::env::var(k).ok())).collect();
    std::env::set_var("AWS_ACCESS_KEY_ID", &process.id);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", &process.secret);
    std::env::set_var("AWS_SESSION_TOKEN", "lambda-session-token");
    let base = lambda.provide_credentials().await.unwrap();
    let left = app.outputs.signing_seconds_left().await;
    for (k, v) in harness {
        match v {
            Some(v) => std::env::set_var(k, v),
            None => std::env::remove_var(k),
        }
    }
    assert_eq!((base.access_key_id(), base.expiry()), (process.id.as_str(), None), "Lambda's environment credentials carry no expiry");

    let left = left.expect("the signing session's expiry is known");
    assert!((3000..=3600).contains(&left), "{left} s left of a fresh one-hour session");
    assert_eq!(pool::lifetimes(Some(left)), Some((names::pool::LINK_SECONDS, names::pool::IDLE_SECONDS)), "a fresh session gives a slot its full lifetimes");

    let slot = unique("signed");
    let (get, _release) = app.outputs.presign_slot(&slot, std::time::Duration::from_secs(600)).await.unwrap();
    let link = url::Url::parse(&get).unwrap();
    let query: std::collections::HashMap<String, String> = link.query_pairs().into_owned().collect();
    let signer = query["X-Amz-Credential"].split('/').next().unwrap().to_owned();
    assert_ne!(signer, process.id, "signed by the session, not by Lambda's credentials");
    assert!(query.contains_key("X-Amz-Security-Token"));
    // The same session signs the next links (one STS call per session, not per link).
    let (again, _) = app.outputs.presign_slot(&slot, std::time::Duration::from_secs(600)).await.unwrap();
    assert!(again.contains(&format!("X-Amz-Credential={signer}")), "{again}");

    // It works from the agent's network while the session lasts...
    let harness = aws_sdk_s3::Client::new(&sdk().await);
    harness.put_object().bucket(&app.config.bucket).key(names::bucket::slot_manifest_key(&slot)).body(b"{}".to_vec().into()).send().await.unwrap();
    let (code, body) = agent_http("GET", &get, b"").await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    // ...and not after: S3 answers 400 ExpiredToken, whatever the link's own expiry.
    testenv::iam::expire_session(&emulator().endpoint, &signer).await.unwrap();
    let (code, body) = agent_http("GET", &get, b"").await;
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("ExpiredToken"), "{}", String::from_utf8_lossy(&body));
}

/// The environment a slot's task was started with (RunTask's override, as DescribeTasks says).
async fn task_env(app: &App, task_arn: &str) -> std::collections::BTreeMap<String, String> {
    let described = app.tasks.client.describe_tasks().cluster(&app.tasks.cluster).tasks(task_arn).send().await.unwrap();
    described.tasks()[0].overrides().unwrap().container_overrides()[0]
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap().to_owned(), kv.value().unwrap().to_owned()))
        .collect()
}

/// Issue 28: a slot is woken when its job is handed over, instead of finding it at its next look
/// (every 250 ms). Its own queue is made as its task is started (as the process function, under
/// its grants), its task gets a pre-signed long poll of it (the emulator checks the signature as
/// SQS does: any change of the link is refused), the hand-over sends one message, which the link
/// then answers at once, and the queue is deleted when the slot's task stops.
#[tokio::test]
async fn a_slot_is_woken_through_its_own_queue_at_its_hand_over_and_the_queue_goes_with_its_task() {
    let _one = SERIAL.lock().await;
    let tenant = unique("wake");
    let app = pool_app(&tenant, 1).await;
    retire_others(&app).await;
    assert_eq!(refill_as_process(&app).await.unwrap(), 1);
    let slot = app.store.slots().await.unwrap().into_iter().find(|s| s.state == SlotState::Idle).expect("the slot started");
    let queue = slot.wake_url.clone().expect("the slot records its wake queue");
    assert!(queue.ends_with(&format!("/{ACCOUNT}/{}", names::queue::wake_name(PREFIX, &slot.id))), "{queue}");
    let env = task_env(&app, slot.task_arn.as_deref().unwrap()).await;
    let link = env.get(names::env::agent::SLOT_WAKE_URL).expect("the task gets its wake link").clone();
    assert!(link.starts_with(&queue) && link.contains("Action=ReceiveMessage") && link.contains("WaitTimeSeconds=20"), "{link}");
    assert!(!link.contains(&format!("X-Amz-Credential={}", testenv::moto::HARNESS_KEY.0)), "signed by the function's session, not the harness");

    // Any change of the link is refused (its signature covers the wait, the queue, the action).
    for tampered in [link.replace("WaitTimeSeconds=20", "WaitTimeSeconds=1"), link.replace("Action=ReceiveMessage", "Action=DeleteQueue")] {
        let (code, body) = http("GET", &tampered, b"").await;
        assert_eq!(code, 403, "{tampered}: {}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains("<Code>SignatureDoesNotMatch</Code>"), "{}", String::from_utf8_lossy(&body));
    }

    // The hand-over wakes it: the long poll answers the message at once.
    let id = submit(&app, &tenant, r#"{"query": "wake"}"#).await;
    assert!(matches!(deliver(&app, &id).await, Outcome::Started { .. }));
    assert_eq!(job(&app, &id).await.warm_slot.as_deref(), Some(slot.id.as_str()));
    let asked = std::time::Instant::now();
    let (code, body) = http("GET", &link, b"").await;
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("<Message>") && body.contains("<Body>wake</Body>"), "a wake message: {body}");
    assert!(asked.elapsed() < std::time::Duration::from_secs(15), "answered by the message, not at the long poll's end");

    // Its task stops: the queue is deleted with it (a second stop event deletes nothing more).
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    assert!(sqs.get_queue_attributes().queue_url(&queue).send().await.is_ok(), "the queue is there while the slot lives");
    app.outputs.delete_slot_manifest(&slot.id).await.unwrap();
    let claimed = app.store.slot(&slot.id).await.unwrap().unwrap();
    slot_stopped(&app, &claimed, Some(0)).await;
    slot_stopped(&app, &claimed, Some(0)).await;
    let gone = sqs.get_queue_attributes().queue_url(&queue).send().await;
    assert!(gone.is_err(), "the slot's queue is deleted with its task: {gone:?}");
}
