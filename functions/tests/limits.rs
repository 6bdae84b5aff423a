//! Per-tenant limits against the emulator: the queue limit at its edge (429 with Retry-After,
//! nothing created), the running limit holding while waiting jobs go round a real queue with a
//! redrive policy and never reach its DLQ, fair dispatch (a small tenant's jobs start while a big
//! one's backlog waits), counts exact under duplicate deliveries, out-of-order events and
//! cancellations, and drift injected and corrected by the sweep.

mod common;

use common::*;
use functions::model::TaskId;
use functions::process::{self, Outcome};
use functions::reconcile;
use functions::App;
use names::ecs::{StopCode, TaskStatus};
use names::JobStatus;
use serde_json::Value;

/// An app whose tenants get `max_running` / `max_queued` by default, over a queue of its own
/// with the deployed redrive policy (3 receives, then the DLQ); waiting jobs come back at once.
async fn limited_app(tenants: &[&str], max_running: u32, max_queued: u32) -> (App, Queue) {
    let mut config = config();
    config.limits.max_running = max_running;
    config.limits.max_queued = max_queued;
    config.tenant_wait_seconds = 0;
    let queue = Queue::new(&unique("q")).await;
    config.queue_url = queue.url.clone();
    let app = app_with(config).await;
    for t in tenants {
        common::key_of(&app, t).await;
    }
    (app, queue)
}

/// A job queue and its DLQ in the emulator, consumed as the Lambda event source does: receive a
/// batch, hand it to the process function, delete what it did not report as failed.
struct Queue {
    sqs: aws_sdk_sqs::Client,
    url: String,
    dlq: String,
}

impl Queue {
    async fn new(name: &str) -> Queue {
        use aws_sdk_sqs::types::QueueAttributeName as Q;
        let sqs = aws_sdk_sqs::Client::new(&sdk().await);
        let dlq = sqs.create_queue().queue_name(format!("{name}-dlq")).send().await.unwrap().queue_url.unwrap();
        let dlq_arn = sqs.get_queue_attributes().queue_url(&dlq).attribute_names(Q::QueueArn).send().await.unwrap().attributes.unwrap()[&Q::QueueArn].clone();
        let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": names::defaults::MAX_RECEIVE_COUNT}).to_string();
        let url = sqs
            .create_queue()
            .queue_name(name)
            .attributes(Q::RedrivePolicy, redrive)
            .attributes(Q::VisibilityTimeout, "0")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        Queue { sqs, url, dlq }
    }

    /// One batch (up to 10) through the process function; the outcomes by job id.
    async fn round(&self, app: &App) -> Vec<(String, Outcome)> {
        let r = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap();
        let mut out = Vec::new();
        for m in r.messages() {
            let count = m
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let body = m.body().unwrap();
            let outcome = process::message(app, &process::Message { body: Some(body), receive_count: count }).await;
            if !matches!(outcome, Outcome::Retry(_)) {
                self.sqs.delete_message().queue_url(&self.url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
            }
            let id: Value = serde_json::from_str(body).unwrap();
            out.push((id["task_id"].as_str().unwrap().to_owned(), outcome));
        }
        out
    }

    async fn dlq_depth(&self) -> usize {
        let r = self.sqs.receive_message().queue_url(&self.dlq).max_number_of_messages(10).send().await.unwrap();
        r.messages().len()
    }
}

async fn status_of(app: &App, id: &str) -> Value {
    serde_json::to_value(app.store.get(&TaskId::parse(id).unwrap()).await.unwrap().unwrap().view()).unwrap()
}

async fn counts(app: &App, tenant: &str) -> (i64, i64) {
    let c = app.store.counter(tenant).await.unwrap();
    (c.queued, c.running)
}

async fn stop(app: &App, id: &str, exit: i64) {
    let job = app.store.get(&TaskId::parse(id).unwrap()).await.unwrap().unwrap();
    let arn = job.ecs_task_arn.expect("a started job has a task");
    let ev = task_event(&app.config.cluster_arn, &arn, id, TaskStatus::Stopped, container(Some(exit), None), Some(StopCode::EssentialContainerExited));
    reconcile::event(app, &ev).await.unwrap();
}

#[tokio::test]
async fn a_submit_over_the_queue_limit_is_429_with_retry_after_and_creates_nothing() {
    let tenant = unique("full");
    let (mut app, _q) = limited_app(&[&tenant], 5, 3).await;
    let metrics = MetricLines::of(&mut app);
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(submit(&app, &tenant, &format!(r#"{{"query": "q{i}"}}"#)).await);
    }
    assert_eq!(counts(&app, &tenant).await, (3, 0));
    let r = call(&app, &request(&tenant, "POST", "/jobs", r#"{"query": "one too many"}"#)).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "TENANT_QUEUE_FULL");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("3 jobs queued"), "{}", r.body);
    assert_eq!(r.retry_after, Some(functions::api::QUEUE_FULL_RETRY_AFTER_SECONDS));
    let listed = get(&app, &tenant, "/jobs").await;
    assert_eq!(listed.body["jobs"].as_array().unwrap().len(), 3, "the refused job was not created");
    assert_eq!(counts(&app, &tenant).await, (3, 0));
    // A place frees: the next submit is accepted.
    assert_eq!(call(&app, &request(&tenant, "DELETE", &format!("/jobs/{}", ids[0]), "")).await.status, 200);
    assert_eq!(counts(&app, &tenant).await, (2, 0));
    submit(&app, &tenant, r#"{"query": "now there is room"}"#).await;
    assert_eq!(counts(&app, &tenant).await, (3, 0));
    // Counted by reason: the refusal, and a body the API refuses; the accepted ones.
    assert_eq!(call(&app, &request(&tenant, "POST", "/jobs", r#"{"query": ""}"#)).await.status, 400);
    use names::metrics as m;
    assert_eq!(metrics.values(m::JOBS_REFUSED, serde_json::json!({"Reason": "TENANT_QUEUE_FULL"})), [1.0]);
    assert_eq!(metrics.values(m::JOBS_REFUSED, serde_json::json!({"Reason": "invalid_value"})), [1.0]);
    assert_eq!(metrics.values(m::JOBS_SUBMITTED, serde_json::json!({})), [1.0; 4]);
}

/// A job at its tenant's running limit is parked, not sent round the queue every few seconds
/// (at the defaults about 100 process invocations and index writes a second for a full backlog,
/// crowding every other tenant out): its own message comes back only after the long recheck,
/// and it is woken at once, oldest first, when one of its tenant's jobs ends (here one finishing
/// and one cancelled).
#[tokio::test]
async fn a_job_at_the_running_limit_is_parked_and_woken_when_a_place_frees() {
    let tenant = unique("parked");
    let (mut app, queue) = limited_app(&[&tenant], 1, 100).await;
    app.config.tenant_wait_seconds = names::defaults::TENANT_WAIT_SECONDS;
    let app = app;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(submit(&app, &tenant, &format!(r#"{{"query": "p{i}"}}"#)).await);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await; // distinct created_at
    }
    let mut outcomes = Vec::new();
    while outcomes.len() < 4 {
        outcomes.extend(queue.round(&app).await);
    }
    let started: Vec<&String> = outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Started { .. })).map(|(id, _)| id).collect();
    assert_eq!(started.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|(_, o)| *o == Outcome::Waiting).count(), 3, "{outcomes:?}");
    // Parked: nothing comes back for now (before, every waiting job came back in 10 s).
    assert!(queue.round(&app).await.is_empty(), "a parked job went round the queue");
    let mut waiting: Vec<&String> = ids.iter().filter(|id| *id != started[0]).collect();
    // The oldest parked job is cancelled while it waits: a place that frees skips it.
    let r = call(&app, &request(&tenant, "DELETE", &format!("/jobs/{}", waiting[0]), "")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    waiting.remove(0);
    // The running job ends: the oldest parked job is woken at once, and starts.
    stop(&app, started[0], 0).await;
    let woken = queue.round(&app).await;
    assert_eq!(woken.len(), 1, "{woken:?}");
    assert_eq!(&woken[0].0, waiting[0], "the oldest first");
    assert!(matches!(woken[0].1, Outcome::Started { .. }), "{woken:?}");
    // A cancel of the running job frees its place too, once its task has stopped (until then
    // its agent may still be at work: issue 24, soak seeds 3053 and 4176).
    let r = call(&app, &request(&tenant, "DELETE", &format!("/jobs/{}", waiting[0]), "")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(queue.round(&app).await.is_empty(), "woken while the cancelled job's task still ran");
    assert_eq!(counts(&app, &tenant).await, (1, 1));
    stop(&app, waiting[0], 143).await;
    let woken = queue.round(&app).await;
    assert_eq!(woken.iter().map(|(id, _)| id).collect::<Vec<_>>(), [waiting[1]]);
    assert!(matches!(woken[0].1, Outcome::Started { .. }), "{woken:?}");
    assert_eq!(counts(&app, &tenant).await, (0, 1));
}

/// Issue 24: a wake-up that lost its race (the tenant at its limit again when it came) parked the
/// job and sent another of the job's own messages, while the job's own message was still to come:
/// each such wake-up left one more message going round for the job, for as long as it waited. A
/// wake-up is marked as one; a wake-up that finds the tenant at its limit parks the job and sends
/// nothing, so a waiting job keeps exactly one message.
#[tokio::test]
async fn a_wake_up_that_loses_its_race_adds_no_message() {
    let tenant = unique("wakerace");
    let (mut app, queue) = limited_app(&[&tenant], 1, 100).await;
    app.config.tenant_wait_seconds = 1;
    let app = app;
    let running = submit(&app, &tenant, r#"{"query": "first"}"#).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let waiting = submit(&app, &tenant, r#"{"query": "second"}"#).await;
    let mut outcomes = Vec::new();
    while outcomes.len() < 2 {
        outcomes.extend(queue.round(&app).await);
    }
    assert!(outcomes.iter().any(|(id, o)| *id == running && matches!(o, Outcome::Started { .. })), "{outcomes:?}");
    assert!(outcomes.iter().any(|(id, o)| *id == waiting && *o == Outcome::Waiting), "{outcomes:?}");
    // A wake-up while the first still runs (a place freed and was taken again meanwhile).
    assert!(app.store.wake_parked(&tenant).await.unwrap());
    let woken = queue.round(&app).await;
    assert_eq!(woken, [(waiting.clone(), Outcome::Waiting)], "parked again");
    // The job's own message comes back (a second on), and after it exactly one: its next.
    let mut seen = Vec::new();
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
        let round = queue.round(&app).await;
        assert_eq!(round.iter().filter(|(id, _)| *id == waiting).count(), 1, "one message of the waiting job at a time: {round:?}");
        seen.extend(round);
    }
    assert!(seen.iter().all(|(_, o)| *o == Outcome::Waiting), "{seen:?}");
    assert_eq!(status_of(&app, &waiting).await["status"], "QUEUED");
}

#[tokio::test]
async fn the_running_limit_holds_and_waiting_jobs_never_reach_the_dlq() {
    let tenant = unique("busy");
    let (app, queue) = limited_app(&[&tenant], 2, 100).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(submit(&app, &tenant, &format!(r#"{{"query": "job {i}"}}"#)).await);
    }
    // Many more receives than the redrive policy allows a message: the waiting ones go round.
    let mut started = Vec::new();
    for _ in 0..(3 * names::defaults::MAX_RECEIVE_COUNT as usize) {
        for (id, outcome) in queue.round(&app).await {
            match outcome {
                Outcome::Started { .. } => started.push(id),
                Outcome::Waiting => {}
                other => panic!("{id}: {other:?}"),
            }
        }
    }
    assert_eq!(started.len(), 2, "{started:?}");
    assert_eq!(counts(&app, &tenant).await, (3, 2));
    for id in ids.iter().filter(|id| !started.contains(id)) {
        let job = status_of(&app, id).await;
        assert_eq!((job["status"].as_str(), job["queued_reason"].as_str()), (Some("QUEUED"), Some("TENANT_LIMIT")), "{job}");
        assert_eq!(job["attempts"].as_u64().unwrap_or(0), 0, "waiting is not an attempt: {job}");
        // Waiting for its tenant does not make it overdue.
        let stored = app.store.get(&TaskId::parse(id).unwrap()).await.unwrap().unwrap();
        assert!(stored.deadline_at.unwrap() >= functions::time::now_millis() / 1000 + functions::QUEUE_ALLOWANCE_SECONDS - 60);
    }
    assert_eq!(queue.dlq_depth().await, 0, "a waiting job reached the DLQ");
    // One ends: exactly one more starts.
    stop(&app, &started[0], 0).await;
    assert_eq!(counts(&app, &tenant).await, (3, 1));
    let mut more = Vec::new();
    for _ in 0..3 {
        more.extend(queue.round(&app).await.into_iter().filter(|(_, o)| matches!(o, Outcome::Started { .. })).map(|(id, _)| id));
    }
    assert_eq!(more.len(), 1, "{more:?}");
    assert_eq!(counts(&app, &tenant).await, (2, 2));
    assert_eq!(queue.dlq_depth().await, 0);
}

#[tokio::test]
async fn a_small_tenant_starts_while_a_big_tenants_backlog_waits() {
    let (a, b) = (unique("big"), unique("small"));
    let (app, queue) = limited_app(&[&a, &b], 3, 1000).await;
    for i in 0..200 {
        submit(&app, &a, &format!(r#"{{"query": "a{i}"}}"#)).await;
    }
    let mut rounds = 0;
    // A's first jobs start; its backlog then waits.
    while counts(&app, &a).await.1 < 3 {
        for (id, o) in queue.round(&app).await {
            assert!(matches!(o, Outcome::Started { .. } | Outcome::Waiting), "{id}: {o:?}");
        }
        rounds += 1;
        assert!(rounds < 100);
    }
    let mut b_ids = Vec::new();
    for i in 0..5 {
        b_ids.push(submit(&app, &b, &format!(r#"{{"query": "b{i}"}}"#)).await);
    }
    let mut b_started = 0;
    let mut receives = 0;
    while b_started < 3 {
        let got = queue.round(&app).await;
        for (id, o) in &got {
            assert!(matches!(o, Outcome::Started { .. } | Outcome::Waiting), "{id}: {o:?}");
        }
        receives += got.len();
        b_started += got.iter().filter(|(id, o)| b_ids.contains(id) && matches!(o, Outcome::Started { .. })).count();
        assert!(receives < 2000, "B's jobs did not start");
    }
    // B started after about one pass over the queue, not after A's 197 waiting jobs ran.
    assert_eq!(counts(&app, &a).await, (197, 3));
    assert!(receives <= 205 + 30, "B waited {receives} receives");
    eprintln!("fairness: B's first 3 jobs started within {receives} receives, with A's 197 waiting");
}

#[tokio::test]
async fn counts_stay_exact_under_duplicates_out_of_order_events_and_cancellations() {
    let tenant = unique("exact");
    let (app, _q) = limited_app(&[&tenant], 5, 100).await;
    let one = submit(&app, &tenant, r#"{"query": "one"}"#).await;
    // The same message twice: one start.
    let body = job_message(&one);
    assert!(matches!(process::message(&app, &process::Message { body: Some(&body), receive_count: 1 }).await, Outcome::Started { .. }));
    assert!(matches!(process::message(&app, &process::Message { body: Some(&body), receive_count: 2 }).await, Outcome::Started { .. } | Outcome::Ignored(_)));
    assert_eq!(counts(&app, &tenant).await, (0, 1));
    // STOPPED before RUNNING, then RUNNING late: counted once, then stale.
    let arn = app.store.get(&TaskId::parse(&one).unwrap()).await.unwrap().unwrap().ecs_task_arn.unwrap();
    stop(&app, &one, 0).await;
    let late = task_event(&app.config.cluster_arn, &arn, &one, TaskStatus::Running, running_container(), None);
    assert_eq!(reconcile::event(&app, &late).await.unwrap(), reconcile::Outcome::Ignored("stale event"));
    stop(&app, &one, 0).await;
    assert_eq!(counts(&app, &tenant).await, (0, 0));
    // Cancelled while queued, while running, and twice.
    let (two, three) = (submit(&app, &tenant, r#"{"query": "two"}"#).await, submit(&app, &tenant, r#"{"query": "three"}"#).await);
    assert_eq!(counts(&app, &tenant).await, (2, 0));
    process::message(&app, &process::Message { body: Some(&job_message(&three)), receive_count: 1 }).await;
    for id in [&two, &three, &two] {
        call(&app, &request(&tenant, "DELETE", &format!("/jobs/{id}"), "")).await;
    }
    // The running one keeps its place until its task has stopped; then it is given back, once.
    assert_eq!(counts(&app, &tenant).await, (0, 1));
    stop(&app, &three, 143).await;
    assert_eq!(counts(&app, &tenant).await, (0, 0));
    stop(&app, &three, 143).await;
    assert_eq!(counts(&app, &tenant).await, (0, 0));
    assert_eq!(status_of(&app, &three).await["status"], JobStatus::Cancelled.as_str());
}

/// Issue 24, found by the fault-injection test (seed 0): a parked job whose wake-up was lost (the
/// function that freed the place died before waking it, or the waker between taking its entry
/// and sending) waited for its own message, 15 minutes on. The sweep sends the oldest jobs
/// waiting for a place their tenant has free.
#[tokio::test]
async fn the_sweep_wakes_a_job_whose_wake_up_was_lost() {
    let tenant = unique("lostwake");
    let (mut app, queue) = limited_app(&[&tenant], 1, 100).await;
    app.config.tenant_wait_seconds = names::defaults::TENANT_WAIT_SECONDS;
    let app = app;
    let first = submit(&app, &tenant, r#"{"query": "a"}"#).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = submit(&app, &tenant, r#"{"query": "b"}"#).await;
    let mut outcomes = Vec::new();
    while outcomes.len() < 2 {
        outcomes.extend(queue.round(&app).await);
    }
    assert!(outcomes.iter().any(|(id, o)| *id == first && matches!(o, Outcome::Started { .. })), "{outcomes:?}");
    // The first ends; its wake-up message of the second is lost.
    stop(&app, &first, 0).await;
    let lost = queue.sqs.receive_message().queue_url(&queue.url).max_number_of_messages(10).send().await.unwrap();
    for m in lost.messages() {
        queue.sqs.delete_message().queue_url(&queue.url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
    }
    assert!(queue.round(&app).await.is_empty());
    // (The sweep's part that does it, for this test's tenant: the whole sweep would write this
    // test's limits onto the other tests' counters.)
    let (sent, _) = functions::identity::acting_as(functions::Function::Reconcile, reconcile::tend_waiting(&app, Some(&tenant))).await.unwrap();
    assert_eq!(sent, 1);
    let woken = queue.round(&app).await;
    assert_eq!(woken.len(), 1, "{woken:?}");
    assert_eq!(woken[0].0, second);
    assert!(matches!(woken[0].1, Outcome::Started { .. }), "{woken:?}");
}

/// Issue 24, found by the fault-injection test (seed 272 of a clean-clone run): a parked entry
/// stayed on its tenant's counter for good when the job was no longer waiting and no later job of
/// the tenant ended (a park that landed after its job was woken and had run; a job end that died
/// before its waking). The sweep drops such entries and keeps those of jobs that still wait.
#[tokio::test]
async fn the_sweep_drops_parked_entries_of_jobs_that_no_longer_wait() {
    let tenant = unique("staleparked");
    let (mut app, queue) = limited_app(&[&tenant], 1, 100).await;
    app.config.tenant_wait_seconds = names::defaults::TENANT_WAIT_SECONDS;
    let app = app;
    let first = submit(&app, &tenant, r#"{"query": "a"}"#).await;
    assert!(matches!(queue.round(&app).await[..], [(_, Outcome::Started { .. })]));
    stop(&app, &first, 0).await;
    // A duplicate delivery of the first read "at the limit" before it started, and its park lands now.
    let finished = app.store.get(&TaskId::parse(&first).unwrap()).await.unwrap().unwrap();
    assert_eq!(finished.status, JobStatus::Completed);
    app.store.park(&finished).await.unwrap();
    // A job that really waits: the second runs, the third is parked behind it.
    let second = submit(&app, &tenant, r#"{"query": "b"}"#).await;
    assert!(matches!(queue.round(&app).await[..], [(_, Outcome::Started { .. })]));
    let third = submit(&app, &tenant, r#"{"query": "c"}"#).await;
    assert_eq!(queue.round(&app).await, [(third.clone(), Outcome::Waiting)]);
    assert_eq!(app.store.counter(&tenant).await.unwrap().parked.len(), 2);
    // (The sweep's part that does it, for this test's tenant.)
    let (_, dropped) = functions::identity::acting_as(functions::Function::Reconcile, reconcile::tend_waiting(&app, Some(&tenant))).await.unwrap();
    assert_eq!(dropped, 1);
    let parked = app.store.counter(&tenant).await.unwrap().parked;
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert!(parked[0].ends_with(&third), "the waiting job's entry stays: {parked:?}");
    // And it is still woken when the second ends.
    stop(&app, &second, 0).await;
    assert!(matches!(&queue.round(&app).await[..], [(id, Outcome::Started { .. })] if *id == third));
}

/// Issue 24, found by the fault-injection test (seed 1002): a submit's job and its count were two
/// writes, and when the PutItem's answer was lost the SDK's retry was refused ("exists"), so the
/// submit gave the place back for a job it had created: the tenant's queued count one low for
/// good. Now they are one transaction, whose retry (the same token) is an answer. The first
/// attempt's answer is lost here by the fault injection's HTTP client.
#[tokio::test]
async fn a_submit_whose_answer_was_lost_counts_its_job_once() {
    let tenant = unique("lostanswer");
    let (app, _queue) = limited_app(&[&tenant], 5, 100).await;
    let (faulty, plan) = app_struck(&app, functions::Function::Submit, "dynamodb:TransactWriteItems", testenv::faults::Fault::LoseResponse, Some(1)).await;
    // Only the first attempt's answer is lost; its retry goes through.
    let r = call(&faulty, &request(&tenant, "POST", "/jobs", r#"{"query": "x"}"#)).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(!plan.injected().is_empty(), "the answer of the first attempt was lost");
    assert_eq!(counts(&app, &tenant).await, (1, 0), "counted once");
}

/// Issue 24, found by the fault-injection test (seed 5043): a delivery's claim (the move to
/// PROVISIONING and the tenant's count, one transaction) whose answer was lost was retried by the
/// SDK with the same token; DynamoDB answers such a retry, but the emulator refused it by the
/// claim's own condition, and the delivery took the job for claimed by another and dropped its
/// message: the job stayed PROVISIONING, holding its tenant's place, until its deadline. Now the
/// retry is answered (as in DynamoDB), and the delivery goes on to start the job.
#[tokio::test]
async fn a_claim_whose_answer_was_lost_still_starts_the_job() {
    let tenant = unique("lostclaim");
    let (app, _queue) = limited_app(&[&tenant], 5, 100).await;
    let id = submit(&app, &tenant, r#"{"query": "x"}"#).await;
    let (faulty, plan) = app_struck(&app, functions::Function::Process, "dynamodb:TransactWriteItems", testenv::faults::Fault::LoseResponse, Some(1)).await;
    let out = process::message(&faulty, &process::Message { body: Some(&job_message(&id)), receive_count: 1 }).await;
    assert!(!plan.injected().is_empty(), "the claim's first answer was lost");
    assert!(matches!(out, Outcome::Started { .. }), "{out:?}");
    assert_eq!(counts(&app, &tenant).await, (0, 1), "counted once");
}

/// Issue 24, found by the fault-injection test (seed 1004): a delivery that wrote a job's secrets
/// and then failed (its manifest write) left them when the job was cancelled before the next
/// delivery, which ignored the cancelled job: no task would ever read or delete them. The
/// delivery that finds the job cancelled deletes them.
#[tokio::test]
async fn a_delivery_of_a_cancelled_job_deletes_the_secrets_an_earlier_one_wrote() {
    let tenant = unique("cancelsecrets");
    let (app, queue) = limited_app(&[&tenant], 5, 100).await;
    let id = submit(&app, &tenant, r#"{"query": "x"}"#).await;
    let key = names::bucket::secrets_key(&id);
    // What the earlier delivery wrote before it failed.
    app.outputs.client.put_object().bucket(&app.config.bucket).key(&key).body(b"{}".to_vec().into()).send().await.unwrap();
    let r = call(&app, &request(&tenant, "DELETE", &format!("/jobs/{id}"), "")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let delivered = queue.round(&app).await;
    assert_eq!(delivered, [(id.clone(), Outcome::Ignored("cancelled"))]);
    let left = app.outputs.client.list_object_versions().bucket(&app.config.bucket).prefix(&key).send().await.unwrap();
    assert!(left.versions().is_empty() && left.delete_markers().is_empty(), "secrets left: {left:?}");
}
