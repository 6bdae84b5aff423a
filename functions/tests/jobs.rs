//! Job processing against the emulator: process (SQS -> RunTask), reconcile (ECS events, sweep),
//! cancel at every state, logs pagination, and the size of the RunTask overrides.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use functions::aws::RunRequest;
use functions::model::{TaskId, TenantId};
use functions::manifest;
use functions::process::{self, Outcome};
use functions::reconcile;
use functions::App;
use names::ecs::{ContainerState, StopCode, TaskStateChange, TaskStatus};
use names::job::ErrorCode;
use names::manifest::Manifest;
use names::{table as t, JobStatus, Output};
use serde_json::{json, Value};
use std::collections::BTreeMap;

async fn status_of(app: &App, id: &str) -> Value {
    serde_json::to_value(app.store.get(&TaskId::parse(id).unwrap()).await.unwrap().expect("job exists").view()).unwrap()
}

/// Sets a job's status (and task) directly, to start a test from any state.
async fn force(app: &App, id: &str, status: JobStatus, task_arn: Option<&str>) {
    let mut req = app
        .store
        .client
        .update_item()
        .table_name(&app.store.table)
        .key(t::TASK_ID, AttributeValue::S(id.into()))
        .expression_attribute_names("#s", t::STATUS)
        .expression_attribute_values(":s", AttributeValue::S(status.as_str().into()));
    let mut expr = "SET #s = :s".to_owned();
    if let Some(arn) = task_arn {
        req = req
            .expression_attribute_names("#a", t::ECS_TASK_ARN)
            .expression_attribute_names("#i", t::ECS_TASK_ID)
            .expression_attribute_values(":a", AttributeValue::S(arn.into()))
            .expression_attribute_values(":i", AttributeValue::S(functions::aws::ecs_task_id(arn)));
        expr.push_str(", #a = :a, #i = :i");
    }
    req.update_expression(expr).send().await.unwrap();
}

async fn tasks_started_by(app: &App, id: &str) -> Vec<String> {
    let r = app.tasks.client.list_tasks().cluster(&app.tasks.cluster).started_by(id).send().await.unwrap();
    r.task_arns().to_vec()
}

async fn start_task(app: &App, id: &str) -> String {
    let req = RunRequest::for_job(&TaskId::parse(id).unwrap(), &TenantId::new("x"), vec![]);
    match app.tasks.run(&req).await.unwrap() {
        functions::aws::RunOutcome::Started { task_arn } => task_arn,
        other => panic!("{other:?}"),
    }
}

/// Job `id`'s task `arn` STOPPED because its agent exited with `exit`, as ECS reports it.
fn agent_exited(app: &App, arn: &str, id: &str, exit: i64) -> TaskStateChange {
    TaskStateChange {
        task_arn: arn.into(),
        cluster_arn: Some(app.config.cluster_arn.clone()),
        last_status: TaskStatus::Stopped,
        started_by: Some(id.into()),
        stop_code: Some(StopCode::EssentialContainerExited),
        stopped_reason: Some("Essential container in task exited".into()),
        containers: vec![container(Some(exit), None)],
        ..TaskStateChange::default()
    }
}

async fn desired_status(app: &App, arn: &str) -> String {
    let r = app.tasks.client.describe_tasks().cluster(&app.tasks.cluster).tasks(arn).send().await.unwrap();
    r.tasks()[0].desired_status().unwrap_or("").to_owned()
}

async fn reconcile_event(app: &App, id: &str, arn: &str, last: TaskStatus, c: ContainerState, stop: Option<StopCode>) -> reconcile::Outcome {
    let ev = task_event(&app.config.cluster_arn, arn, id, last, c, stop);
    reconcile::event(app, &ev).await.unwrap()
}

#[tokio::test]
async fn full_lifecycle_through_process_and_reconcile() {
    let tenant = unique("life");
    // A queue of its own, so this test receives only its own message.
    let app = app_on_queue(&[&tenant], Some(own_queue("q").await)).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let id = submit(&app, &tenant, r#"{"query": "lifecycle", "options": {"capture_html": true}}"#).await;

    let got = sqs
        .receive_message()
        .queue_url(&app.queue.url)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let msgs: Vec<(String, u32)> = got
        .messages()
        .iter()
        .map(|m| {
            let count = m
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap();
            (m.body().unwrap().to_owned(), count)
        })
        .collect();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].0, job_message(&id));
    let batch: Vec<(&str, u32)> = msgs.iter().map(|(b, c)| (b.as_str(), *c)).collect();
    let resp = process::batch(&app, sqs_event(&batch)).await;
    assert!(resp.batch_item_failures.is_empty());

    let job = status_of(&app, &id).await;
    assert_eq!(job["status"], "PROVISIONED", "{job}");
    let arns = tasks_started_by(&app, &id).await;
    assert_eq!(arns.len(), 1);
    let arn = arns[0].clone();
    assert_eq!(job["ecs_task_id"], functions::aws::ecs_task_id(&arn).as_str());

    // What the task receives: only a link to the manifest and the job's id; the manifest holds
    // the job spec and a POST form per possible output.
    let described = app.tasks.client.describe_tasks().cluster(&app.tasks.cluster).tasks(&arn).send().await.unwrap();
    let task = &described.tasks()[0];
    assert_eq!(task.started_by(), Some(id.as_str()));
    let env: BTreeMap<String, String> = task.overrides().unwrap().container_overrides()[0]
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap().to_owned(), kv.value().unwrap().to_owned()))
        .collect();
    assert_eq!(env.keys().collect::<Vec<_>>(), [names::env::agent::MANIFEST_URL, names::env::agent::TASK_ID]);
    assert_eq!(env[names::env::agent::TASK_ID], id);
    assert!(!format!("{env:?}").contains("lifecycle"), "no job data in the override (DescribeTasks, task events): {env:?}");
    let (code, raw) = agent_http("GET", &env[names::env::agent::MANIFEST_URL], b"").await;
    assert_eq!(code, 200);
    let manifest: Manifest = serde_json::from_slice(&raw).unwrap();
    assert_eq!(manifest.version, names::manifest::VERSION);
    let spec = &manifest.job;
    assert_eq!((spec.task_id.as_str(), spec.query.as_deref()), (id.as_str(), Some("lifecycle")));
    let mut expected: Vec<&str> = names::job::possible_outputs(&spec.options).iter().map(|o| o.file_name()).collect();
    expected.sort();
    assert_eq!(manifest.uploads.keys().map(String::as_str).collect::<Vec<_>>(), expected);

    assert_eq!(reconcile_event(&app, &id, &arn, TaskStatus::Running, running_container(), None).await, reconcile::Outcome::Applied(JobStatus::Running));
    assert_eq!(status_of(&app, &id).await["status"], "RUNNING");

    // Each form's policy binds its key, its output's content type and its output's size.
    for o in names::job::possible_outputs(&spec.options) {
        let form = &manifest.uploads[o.file_name()];
        let conditions = s3post::policy_of(form).unwrap()["conditions"].clone();
        let conditions = conditions.as_array().unwrap();
        assert!(conditions.contains(&json!({"key": names::bucket::output_key(&id, o)})), "{o}: {conditions:?}");
        assert!(conditions.contains(&json!({"Content-Type": o.content_type()})), "{o}: {conditions:?}");
        assert!(conditions.contains(&json!(["content-length-range", 0, o.max_bytes()])), "{o}: {conditions:?}");
        assert_eq!(form.max_bytes, o.max_bytes());
    }
    // The agent uploads through the forms, with the content type they were signed for.
    let post = |output: Output, body: &'static [u8]| post_form(&manifest.uploads[output.file_name()], output.content_type(), body);
    assert_eq!(post(Output::Screenshot, b"\x89PNG fake").await, 204);
    assert_eq!(post(Output::Result, br#"{"title": "t"}"#).await, 204);
    assert_eq!(post(Output::Html, b"<script>document.cookie</script>").await, 204);

    let stopped = reconcile_event(&app, &id, &arn, TaskStatus::Stopped, container(Some(0), None), Some(StopCode::EssentialContainerExited)).await;
    assert_eq!(stopped, reconcile::Outcome::Applied(JobStatus::Completed));

    let s = get(&app, &tenant, &format!("/jobs/{id}")).await;
    assert_eq!(s.body["status"], "COMPLETED", "{}", s.body);
    assert_eq!(s.body["exit_code"], 0);
    let outputs = s.body["outputs"].as_object().unwrap();
    let mut names_: Vec<&str> = outputs.keys().map(String::as_str).collect();
    names_.sort();
    assert_eq!(names_, ["html", "result", "screenshot"], "only outputs that exist");
    let (code, body) = http("GET", outputs["result"].as_str().unwrap(), b"").await;
    assert_eq!((code, body.as_slice()), (200, br#"{"title": "t"}"#.as_slice()));
    assert!(outputs["screenshot"].as_str().unwrap().contains("X-Amz-Expires=3600"));
    // The captured page is a download, never a page rendered on the bucket's origin.
    let html = outputs["html"].as_str().unwrap();
    assert_eq!(query_param(html, "response-content-disposition").as_deref(), Some("attachment; filename=\"page.html\""));
    let resp = reqwest::get(html).await.unwrap();
    assert_eq!(resp.headers()["content-disposition"], "attachment; filename=\"page.html\"");
    for other in ["result", "screenshot"] {
        assert_eq!(query_param(outputs[other].as_str().unwrap(), "response-content-disposition"), None, "{other}");
    }
}

#[tokio::test]
async fn duplicate_delivery_starts_one_task() {
    let tenant = unique("dup");
    let app = app(&[&tenant]).await;
    let id = submit(&app, &tenant, r#"{"query": "dup"}"#).await;
    let m = job_message(&id);
    let resp = process::batch(&app, sqs_event(&[(&m, 1), (&m, 1)])).await;
    assert!(resp.batch_item_failures.is_empty());
    let again = process::message(&app, &process::Message { body: Some(&m), receive_count: 2 }).await;
    assert_eq!(again, Outcome::Ignored("duplicate delivery"));
    assert_eq!(tasks_started_by(&app, &id).await.len(), 1);
    assert_eq!(status_of(&app, &id).await["status"], "PROVISIONED");
}

#[tokio::test]
async fn malformed_unknown_and_cancelled_messages_are_acknowledged() {
    let tenant = unique("ack");
    let app = app(&[&tenant]).await;
    let id = submit(&app, &tenant, r#"{"query": "x"}"#).await;
    assert_eq!(call(&app, &request(&tenant, "DELETE", &format!("/jobs/{id}"), "")).await.status, 200);
    let unknown = job_message(TaskId::new_random().as_str());
    let cancelled = job_message(&id);
    let bodies = ["not json", "{}", r#"{"task_id": "nope"}"#, unknown.as_str(), cancelled.as_str()];
    let batch: Vec<(&str, u32)> = bodies.iter().map(|b| (*b, 1)).collect();
    let resp = process::batch(&app, sqs_event(&batch)).await;
    assert!(resp.batch_item_failures.is_empty());
    assert!(tasks_started_by(&app, &id).await.is_empty());
    assert_eq!(status_of(&app, &id).await["status"], "CANCELLED");
}

#[tokio::test]
async fn run_task_errors_retry_then_fail_on_the_last_attempt() {
    let tenant = unique("err");
    let mut config = config();
    // A real fault from the emulator: a revision of the agent's family that does not exist (its
    // role may run any revision; another family's RunTask would be AccessDenied, as on AWS).
    config.task_definition = format!("{}:999", config.task_definition.rsplit_once(':').unwrap().0);
    let app = app_with(config).await;
    common::key_of(&app, &tenant).await;
    let id = submit(&app, &tenant, r#"{"query": "x"}"#).await;
    let m = job_message(&id);
    let resp = process::batch(&app, sqs_event(&[(&m, 1)])).await;
    assert_eq!(resp.batch_item_failures.len(), 1, "retried through SQS");
    assert_eq!(resp.batch_item_failures[0].item_identifier, "m0");
    assert_eq!(status_of(&app, &id).await["status"], "PROVISIONING");
    let last = app.config.max_attempts;
    let resp = process::batch(&app, sqs_event(&[(&m, last)])).await;
    assert!(resp.batch_item_failures.is_empty(), "the last attempt is acknowledged");
    let job = status_of(&app, &id).await;
    assert_eq!(job["status"], "FAILED");
    assert_eq!(job["error"]["code"], "RUN_TASK_FAILED");
    assert!(job["error"]["message"].as_str().unwrap().contains("ClientException"), "{job}");
}

/// A fake ECS endpoint for the one fault the emulator cannot produce: RunTask answering 200 with
/// `failures[]` (no capacity). Every request gets the same answer.
async fn fake_ecs_with_failures() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map(|v| v.trim().parse().unwrap())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let body = r#"{"tasks":[],"failures":[{"arn":"arn:aws:ecs:us-east-1:123456789012:cluster/c","reason":"RESOURCE:MEMORY","detail":"no Fargate capacity"}]}"#;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn run_task_failures_are_retried_then_recorded() {
    let tenant = unique("cap");
    let mut app = app(&[&tenant]).await;
    let fake = fake_ecs_with_failures().await;
    let conf = aws_sdk_ecs::config::Builder::from(&sdk().await).endpoint_url(fake).build();
    app.tasks.client = aws_sdk_ecs::Client::from_conf(conf);
    let metrics = MetricLines::of(&mut app);
    let id = submit(&app, &tenant, r#"{"query": "x"}"#).await;
    // Just accepted: waiting for the dispatcher, not for capacity.
    let job = status_of(&app, &id).await;
    assert_eq!((job["status"].as_str(), job["queued_reason"].as_str()), (Some("QUEUED"), Some("DISPATCH")), "{job}");
    let m = job_message(&id);
    assert!(matches!(process::message(&app, &process::Message { body: Some(&m), receive_count: 1 }).await, Outcome::Retry(r) if r.contains("RESOURCE:MEMORY")));
    // ECS refused its task: the job says it waits for capacity until it is tried again.
    let job = status_of(&app, &id).await;
    assert_eq!((job["status"].as_str(), job["queued_reason"].as_str()), (Some("PROVISIONING"), Some("CAPACITY")), "{job}");
    assert!(matches!(process::message(&app, &process::Message { body: Some(&m), receive_count: 2 }).await, Outcome::Retry(_)));
    let last = process::message(&app, &process::Message { body: Some(&m), receive_count: 3 }).await;
    assert!(matches!(last, Outcome::Failed(_)), "{last:?}");
    let job = status_of(&app, &id).await;
    assert_eq!(job["status"], "FAILED");
    assert!(job["error"]["message"].as_str().unwrap().contains("no Fargate capacity"), "{job}");
    // Counted: the submit, each refusal, the job's wait for the dispatcher, its end and why.
    use names::metrics as m;
    assert_eq!(metrics.values(m::JOBS_SUBMITTED, json!({})), [1.0]);
    assert_eq!(metrics.values(m::RUN_TASK_REFUSED, json!({})), [1.0; 3]);
    assert_eq!(metrics.values(m::QUEUE_WAIT, json!({})).len(), 1);
    assert_eq!(metrics.values(m::JOBS_FINISHED, json!({"Status": "FAILED"})), [1.0]);
    assert_eq!(metrics.values(m::JOBS_FAILED, json!({"ErrorCode": "RUN_TASK_FAILED"})), [1.0]);
    assert_eq!(metrics.values(m::TIME_TO_FINISH, json!({})).len(), 1);
    assert!(metrics.values(m::RUN_TIME, json!({})).is_empty(), "it never ran");
}

/// An attempt whose RunTask started a task but whose answer was lost (the job stays PROVISIONING
/// with no task): the next attempt signs a new manifest link, so ECS answers its reused
/// clientToken with ConflictException naming the first task. The job takes that task; no second
/// one starts, and it is not failed RUN_TASK_FAILED while its task runs.
#[tokio::test]
async fn a_retry_after_a_lost_run_task_answer_takes_the_task_it_started() {
    let tenant = unique("lost");
    let app = app(&[&tenant]).await;
    let id = submit(&app, &tenant, r#"{"query": "x"}"#).await;
    force(&app, &id, JobStatus::Provisioning, None).await;
    let earlier = vec![(names::env::agent::MANIFEST_URL.to_string(), "https://earlier-attempt.test/manifest".to_string())];
    let req = RunRequest::for_job(&TaskId::parse(&id).unwrap(), &TenantId::new(&tenant), earlier);
    let functions::aws::RunOutcome::Started { task_arn: first } = app.tasks.run(&req).await.unwrap() else { panic!("started") };
    for receive_count in [2, app.config.max_attempts] {
        let outcome = process::message(&app, &process::Message { body: Some(&job_message(&id)), receive_count }).await;
        assert!(matches!(&outcome, Outcome::Started { task_arn } if *task_arn == first) || matches!(outcome, Outcome::Ignored(_)), "{outcome:?}");
    }
    assert_eq!(tasks_started_by(&app, &id).await, [first.clone()], "no second task");
    let job = status_of(&app, &id).await;
    assert_eq!(job["status"], "PROVISIONED", "{job}");
    assert_eq!(job["ecs_task_id"], functions::aws::ecs_task_id(&first).as_str(), "{job}");
}

/// Issue 28: Fargate deprovisions a task (its network interface released) for a while after its
/// one essential container exits, and ECS sends the container's stop as an event of its own
/// first (task DEPROVISIONING, the container STOPPED with its exit code). A job ended only at
/// the task's STOPPED, that much later; it ends at the container's stop now, and the task's
/// STOPPED after it is stale. Likewise a cancelled job's kept running place is given back there.
#[tokio::test]
async fn a_job_ends_when_its_agent_container_stops_not_when_the_task_is_deprovisioned() {
    use reconcile::Outcome::*;
    let tenant = unique("deprov");
    let app = app(&[&tenant]).await;
    let id = submit(&app, &tenant, r#"{"query": "x"}"#).await;
    process::message(&app, &process::Message { body: Some(&job_message(&id)), receive_count: 1 }).await;
    let arn = tasks_started_by(&app, &id).await.remove(0);
    // Still running while the task deactivates with its container up: nothing to end.
    assert_eq!(reconcile_event(&app, &id, &arn, TaskStatus::Deactivating, running_container(), None).await, Ignored("intermediate task state"));
    let exited = Some(StopCode::EssentialContainerExited);
    assert_eq!(reconcile_event(&app, &id, &arn, TaskStatus::Deprovisioning, container(Some(0), None), exited).await, Applied(JobStatus::Completed));
    assert_eq!(reconcile_event(&app, &id, &arn, TaskStatus::Stopped, container(Some(0), None), exited).await, Ignored("stale event"));
    assert_eq!(status_of(&app, &id).await["status"], "COMPLETED");
    let counter = app.store.counter(&tenant).await.unwrap();
    assert_eq!((counter.queued, counter.running), (0, 0));

    // Cancelled while it runs: its place is kept until the container's stop, not the task's.
    let two = submit(&app, &tenant, r#"{"query": "y"}"#).await;
    process::message(&app, &process::Message { body: Some(&job_message(&two)), receive_count: 1 }).await;
    let arn = tasks_started_by(&app, &two).await.remove(0);
    assert_eq!(call(&app, &request(&tenant, "DELETE", &format!("/jobs/{two}"), "")).await.status, 200);
    assert_eq!(app.store.counter(&tenant).await.unwrap().running, 1);
    let stopped = Some(StopCode::UserInitiated);
    assert_eq!(
        reconcile_event(&app, &two, &arn, TaskStatus::Deprovisioning, container(Some(143), None), stopped).await,
        Ignored("ended before its task stopped; its running place given back")
    );
    assert_eq!(app.store.counter(&tenant).await.unwrap().running, 0);
    assert_eq!(reconcile_event(&app, &two, &arn, TaskStatus::Stopped, container(Some(143), None), stopped).await, Ignored("stale event"));
    assert_eq!(app.store.counter(&tenant).await.unwrap().running, 0);
}

#[tokio::test]
async fn out_of_order_and_repeated_events_never_move_a_finished_job() {
    let tenant = unique("ooo");
    let app = app(&[&tenant]).await;
    let id = submit(&app, &tenant, r#"{"query": "x"}"#).await;
    process::message(&app, &process::Message { body: Some(&job_message(&id)), receive_count: 1 }).await;
    let arn = tasks_started_by(&app, &id).await.remove(0);
    let running = running_container();
    // STOPPED arrives first, then its duplicate, then a late RUNNING and PENDING.
    use reconcile::Outcome::*;
    assert_eq!(reconcile_event(&app, &id, &arn, TaskStatus::Stopped, container(Some(0), None), None).await, Applied(JobStatus::Completed));
    assert_eq!(reconcile_event(&app, &id, &arn, TaskStatus::Stopped, container(Some(1), None), None).await, Ignored("stale event"));
    assert_eq!(reconcile_event(&app, &id, &arn, TaskStatus::Running, running.clone(), None).await, Ignored("stale event"));
    assert_eq!(reconcile_event(&app, &id, &arn, TaskStatus::Pending, running.clone(), None).await, Ignored("intermediate task state"));
    assert_eq!(status_of(&app, &id).await["status"], "COMPLETED");

    // RUNNING before the process function recorded PROVISIONED is fine too.
    let id2 = submit(&app, &tenant, r#"{"query": "y"}"#).await;
    force(&app, &id2, JobStatus::Provisioning, None).await;
    assert_eq!(reconcile_event(&app, &id2, "arn:aws:ecs:us-east-1:123456789012:task/c/abc", TaskStatus::Running, running.clone(), None).await, Applied(JobStatus::Running));
    assert_eq!(status_of(&app, &id2).await["ecs_task_id"], "abc");
    // Events for queued jobs, other clusters, foreign tasks and malformed details change nothing.
    let id3 = submit(&app, &tenant, r#"{"query": "z"}"#).await;
    assert_eq!(reconcile_event(&app, &id3, "arn:t/1", TaskStatus::Running, running.clone(), None).await, Ignored("stale event"));
    let mut other = task_event("arn:aws:ecs:us-east-1:123456789012:cluster/other", "arn:t/2", &id3, TaskStatus::Stopped, container(Some(0), None), None);
    assert_eq!(reconcile::event(&app, &other).await.unwrap(), Ignored("another cluster"));
    other["detail"]["clusterArn"] = app.config.cluster_arn.clone().into();
    other["detail"]["startedBy"] = "ecs-svc/123".into();
    assert_eq!(reconcile::event(&app, &other).await.unwrap(), Ignored("not a job's task"));
    other["detail"] = json!({"lastStatus": 5});
    assert_eq!(reconcile::event(&app, &other).await.unwrap(), Ignored("malformed task event"));
    assert_eq!(reconcile::event(&app, &json!({"hello": "world"})).await.unwrap(), Ignored("unknown event"));
    assert_eq!(status_of(&app, &id3).await["status"], "QUEUED");
}

#[tokio::test]
async fn stopped_tasks_fail_with_their_reason() {
    let tenant = unique("why");
    let app = app(&[&tenant]).await;
    let cases = [
        (container(Some(1), None), None, ErrorCode::AgentFailed, Some(1)),
        (container(Some(137), Some("OutOfMemoryError: Container killed due to memory usage")), Some(StopCode::EssentialContainerExited), ErrorCode::OutOfMemory, Some(137)),
        (container(None, Some("CannotPullContainerError: pull access denied")), Some(StopCode::TaskFailedToStart), ErrorCode::TaskFailedToStart, None),
        (container(None, None), Some(StopCode::UserInitiated), ErrorCode::TaskStopped, None),
    ];
    for (c, stop, code, exit) in cases {
        let id = submit(&app, &tenant, r#"{"query": "x"}"#).await;
        force(&app, &id, JobStatus::Running, Some("arn:aws:ecs:us-east-1:123456789012:task/c/t1")).await;
        assert_eq!(reconcile_event(&app, &id, "arn:aws:ecs:us-east-1:123456789012:task/c/t1", TaskStatus::Stopped, c, stop).await, reconcile::Outcome::Applied(JobStatus::Failed));
        let job = status_of(&app, &id).await;
        assert_eq!(job["error"]["code"], code.as_str(), "{job}");
        assert_eq!(job.get("exit_code").and_then(Value::as_i64), exit, "{job}");
        if let Some(stop) = stop {
            assert!(job["error"]["message"].as_str().unwrap().contains(stop.as_str()), "{job}");
        }
    }
}

#[tokio::test]
async fn cancel_at_every_state() {
    let tenant = unique("cancel");
    let app = app(&[&tenant]).await;
    for status in JobStatus::ALL {
        let id = submit(&app, &tenant, r#"{"query": "x"}"#).await;
        let arn = match status {
            JobStatus::Provisioned | JobStatus::Running => Some(start_task(&app, &id).await),
            _ => None,
        };
        force(&app, &id, status, arn.as_deref()).await;
        let r = call(&app, &request(&tenant, "DELETE", &format!("/jobs/{id}"), "")).await;
        if status.is_terminal() {
            assert_eq!(r.status, 409, "{status}: {}", r.body);
            assert_eq!(r.body["error"]["code"], "job_finished");
            assert_eq!(status_of(&app, &id).await["status"], status.as_str());
        } else {
            assert_eq!(r.status, 200, "{status}: {}", r.body);
            assert_eq!(r.body["status"], "CANCELLED");
            if let Some(arn) = &arn {
                assert_eq!(desired_status(&app, arn).await, TaskStatus::Stopped.as_str(), "{status}: the task is stopped");
            }
            // Whatever arrives afterwards leaves it cancelled.
            let m = job_message(&id);
            assert!(matches!(process::message(&app, &process::Message { body: Some(&m), receive_count: 1 }).await, Outcome::Ignored(_)));
            let any_arn = arn.clone().unwrap_or_else(|| "arn:t/x".into());
            reconcile_event(&app, &id, &any_arn, TaskStatus::Stopped, container(Some(0), None), None).await;
            assert_eq!(status_of(&app, &id).await["status"], "CANCELLED");
            let again = call(&app, &request(&tenant, "DELETE", &format!("/jobs/{id}"), "")).await;
            assert_eq!(again.status, 409);
        }
    }
}

#[tokio::test]
async fn sweep_fails_and_stops_overdue_jobs() {
    let tenant = unique("sweep");
    let app = app(&[&tenant]).await;
    let overdue = submit(&app, &tenant, r#"{"query": "slow", "options": {"timeout_seconds": 10}}"#).await;
    let fresh = submit(&app, &tenant, r#"{"query": "fine"}"#).await;
    let arn = start_task(&app, &overdue).await;
    force(&app, &overdue, JobStatus::Running, Some(&arn)).await;
    // Its deadline passed long ago.
    make_overdue(&app, &overdue).await;
    let scheduled = json!({"detail-type": reconcile::SCHEDULED_EVENT, "source": "aws.events", "detail": {}});
    let out = reconcile::event(&app, &scheduled).await.unwrap();
    assert!(matches!(out, reconcile::Outcome::Swept { failed, .. } if failed >= 1), "{out:?}");
    let job = status_of(&app, &overdue).await;
    assert_eq!((job["status"].as_str(), job["error"]["code"].as_str()), (Some(JobStatus::Failed.as_str()), Some(ErrorCode::Timeout.as_str())));
    assert_eq!(desired_status(&app, &arn).await, "STOPPED");
    assert_eq!(status_of(&app, &fresh).await["status"], "QUEUED");
    assert_eq!(job["error"]["message"], "the job did not finish within its timeout of 10 seconds");

    // The sweep reads the sparse index: the failed job has left it, the queued one is in it, and a
    // second sweep finds nothing to do.
    let unfinished = unfinished_jobs(&app).await;
    assert!(!unfinished.contains(&overdue), "{unfinished:?}");
    assert!(unfinished.contains(&fresh), "{unfinished:?}");
    make_overdue(&app, &fresh).await;
    let cancelled = call(&app, &request(&tenant, "DELETE", &format!("/jobs/{fresh}"), "")).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert!(!unfinished_jobs(&app).await.contains(&fresh), "a cancelled job leaves the index");
    let again = reconcile::event(&app, &scheduled).await.unwrap();
    assert!(matches!(again, reconcile::Outcome::Swept { failed: 0, .. }), "{again:?}");
    assert_eq!(status_of(&app, &fresh).await["status"], "CANCELLED", "the sweep never sees a finished job");
}

/// Issue 24: a task that stopped while its STOPPED event was lost (the reconciler failed on each of
/// EventBridge's tries) left its job RUNNING until the sweep failed it TIMEOUT, though ECS knew how
/// the task ended: a job that completed read as failed. The sweep asks ECS (DescribeTasks) about
/// an overdue job's task first and ends the job as the event would have; a task that still runs
/// is stopped and its job fails TIMEOUT as before. The emulator answers DescribeTasks as ECS does
/// (no exit code before a container stops; the recorded stop after).
#[tokio::test]
async fn the_sweep_ends_a_job_whose_stop_event_was_lost_as_ecs_reports_its_task() {
    let tenant = unique("loststop");
    let app = app(&[&tenant]).await;
    let mut ids = Vec::new();
    for exit in [0, 3] {
        let id = submit(&app, &tenant, r#"{"query": "lost", "options": {"timeout_seconds": 10}}"#).await;
        let arn = start_task(&app, &id).await;
        force(&app, &id, JobStatus::Running, Some(&arn)).await;
        // Running: ECS reports no exit code yet.
        let running = app.tasks.describe(&arn).await.unwrap().unwrap();
        assert!(running.containers.iter().all(|c| c.exit_code.is_none()), "{running:?}");
        // It stops; ECS records how, and the event that says so never arrives.
        let detail = agent_exited(&app, &arn, &id, exit);
        testenv::events::record_stopped(&emulator().endpoint, &detail).await.unwrap();
        make_overdue(&app, &id).await;
        ids.push((id, exit));
    }
    let scheduled = json!({"detail-type": reconcile::SCHEDULED_EVENT, "source": "aws.events", "detail": {}});
    let out = reconcile::event(&app, &scheduled).await.unwrap();
    assert!(matches!(out, reconcile::Outcome::Swept { settled: 2.., .. }), "{out:?}");
    let completed = status_of(&app, &ids[0].0).await;
    assert_eq!(completed["status"], "COMPLETED", "{completed}");
    let failed = status_of(&app, &ids[1].0).await;
    assert_eq!((failed["status"].as_str(), failed["error"]["code"].as_str()), (Some("FAILED"), Some(ErrorCode::AgentFailed.as_str())), "{failed}");
    assert!(failed["error"]["message"].as_str().unwrap().contains("exit code 3"), "{failed}");
}

/// EventBridge promises no order and may drop an event: a task's STOPPED event can come before its
/// RUNNING event, or alone. The job ends as the stop says and still has a start time, the task's
/// own (a job COMPLETED without `started_at` read as never started); the RUNNING event after it
/// is stale and changes nothing.
#[tokio::test]
async fn a_stop_event_before_the_tasks_running_event_ends_the_job_with_the_tasks_start_time() {
    let tenant = unique("order");
    let app = app(&[&tenant]).await;
    let id = submit(&app, &tenant, r#"{"query": "out of order"}"#).await;
    let arn = start_task(&app, &id).await;
    force(&app, &id, JobStatus::Provisioned, Some(&arn)).await;
    let stopped = TaskStateChange {
        pull_started_at: Some("2026-12-06T10:00:00Z".into()),
        started_at: Some("2026-12-06T10:00:31.250Z".into()),
        stopped_at: Some("2026-12-06T10:00:40Z".into()),
        ..agent_exited(&app, &arn, &id, 0)
    };
    let out = reconcile::event(&app, &testenv::events::to_json(&testenv::events::task_state_change(stopped))).await.unwrap();
    assert!(matches!(out, reconcile::Outcome::Applied(JobStatus::Completed)), "{out:?}");
    let job = status_of(&app, &id).await;
    assert_eq!((job["status"].as_str(), job["started_at"].as_str()), (Some("COMPLETED"), Some("2026-12-06T10:00:31.250Z")), "{job}");
    let late = reconcile_event(&app, &id, &arn, TaskStatus::Running, ContainerState { name: app.config.container_name.clone(), last_status: Some(TaskStatus::Running), exit_code: None, reason: None }, None).await;
    assert!(!matches!(late, reconcile::Outcome::Applied(_)), "{late:?}");
    let after = status_of(&app, &id).await;
    assert_eq!((after["status"].as_str(), after["started_at"].as_str()), (Some("COMPLETED"), Some("2026-12-06T10:00:31.250Z")), "{after}");
}

/// A task's end brings two events: its container's stop, then, once Fargate has deprovisioned the
/// task, its STOPPED. The second finds the job the first finished and, having read it finished,
/// does not read it again (a finished job does not change but for its kept place, whose give-back
/// is conditional): one GetItem, no write.
#[tokio::test]
async fn the_tasks_stopped_event_after_its_containers_stop_reads_the_job_once() {
    let tenant = unique("twoends");
    let app = app(&[&tenant]).await;
    let id = submit(&app, &tenant, r#"{"query": "two ends"}"#).await;
    let arn = start_task(&app, &id).await;
    force(&app, &id, JobStatus::Running, Some(&arn)).await;
    let first = reconcile_event(&app, &id, &arn, TaskStatus::Deprovisioning, container(Some(0), None), Some(StopCode::EssentialContainerExited)).await;
    assert!(matches!(first, reconcile::Outcome::Applied(JobStatus::Completed)), "{first:?}");
    // Counted, never struck (at most 0 faults).
    let (counted, plan) = app_struck(&app, functions::Function::Reconcile, "dynamodb:GetItem", testenv::faults::Fault::Fail, Some(0)).await;
    let second = reconcile_event(&counted, &id, &arn, TaskStatus::Stopped, container(Some(0), None), Some(StopCode::EssentialContainerExited)).await;
    assert!(!matches!(second, reconcile::Outcome::Applied(_)), "{second:?}");
    let table_calls: Vec<(String, u64)> =
        plan.calls().into_iter().filter(|(p, _)| p.operation.starts_with("dynamodb:")).map(|(p, n)| (p.to_string(), n)).collect();
    assert_eq!(table_calls, vec![("reconcile dynamodb:GetItem".to_string(), 1)], "{table_calls:?}");
    assert_eq!(status_of(&app, &id).await["status"], "COMPLETED");
}

/// Every job in the sparse index of unfinished jobs (what the sweep can see).
async fn unfinished_jobs(app: &App) -> Vec<String> {
    let r = app
        .store
        .client
        .query()
        .table_name(&app.store.table)
        .index_name(t::UNFINISHED_INDEX)
        .key_condition_expression("#u = :u")
        .expression_attribute_names("#u", t::UNFINISHED)
        .expression_attribute_values(":u", AttributeValue::S(t::UNFINISHED_PARTITION.into()))
        .send()
        .await
        .unwrap();
    r.items().iter().map(|i| i[t::TASK_ID].as_s().unwrap().clone()).collect()
}

#[tokio::test]
async fn logs_page_through_the_container_stream_and_end() {
    let tenant = unique("logs");
    let app = app(&[&tenant]).await;
    let id = submit(&app, &tenant, r#"{"query": "x"}"#).await;
    let before = get(&app, &tenant, &format!("/jobs/{id}/logs")).await;
    assert_eq!((before.status, before.body["count"].as_u64()), (200, Some(0)));
    assert!(before.body.get("next_token").is_none());

    let ecs_id = unique("ecs").replace('-', "");
    force(&app, &id, JobStatus::Running, Some(&format!("arn:aws:ecs:us-east-1:123456789012:task/c/{ecs_id}"))).await;
    let stream = names::logs::agent_stream(&ecs_id);
    let logs = &app.logs.client;
    logs.create_log_stream().log_group_name(&app.logs.group).log_stream_name(&stream).send().await.unwrap();
    let now = functions::time::now_millis();
    let mut put = logs.put_log_events().log_group_name(&app.logs.group).log_stream_name(&stream);
    for i in 0..25 {
        put = put.log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(now + i).message(format!("line {i}")).build().unwrap(),
        );
    }
    put.send().await.unwrap();

    let mut lines = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 10, "pagination must end");
        let path = match &token {
            Some(t) => format!("/jobs/{id}/logs?limit=10&next_token={t}"),
            None => format!("/jobs/{id}/logs?limit=10"),
        };
        let r = get(&app, &tenant, &path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["log_stream"], stream.as_str());
        assert_eq!(r.body["log_group"], app.logs.group.as_str());
        assert_eq!(r.body["status"], "RUNNING");
        let events = r.body["events"].as_array().unwrap();
        assert_eq!(r.body["count"].as_u64(), Some(events.len() as u64));
        assert!(events.len() <= 10);
        for e in events {
            assert!(functions::time::parse_rfc3339(e["time"].as_str().unwrap()).is_some());
            lines.push(e["message"].as_str().unwrap().to_owned());
        }
        match r.body.get("next_token").and_then(Value::as_str) {
            Some(next) => {
                assert_ne!(Some(next), token.as_deref(), "never the token it was given");
                token = Some(next.to_owned());
            }
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, expected);
    // The default page takes all of them.
    let all = get(&app, &tenant, &format!("/jobs/{id}/logs")).await;
    assert_eq!(all.body["count"], 25);
}

/// The largest job must fit RunTask's 8,192-character override limit with URLs signed by Lambda
/// role credentials (their session token makes each URL ~1.3 KB) against the real S3 endpoint.
#[tokio::test]
async fn the_override_carries_only_the_manifest_link_whatever_the_job() {
    let tenant = unique("size");
    let mut app = app(&[&tenant]).await;
    // A session token shaped like a Lambda role's: ~1 KB of base64 after the usual prefix. It goes
    // into every form of the manifest, never into the override.
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x: u32 = 12345;
    let mut token = String::from("IQoJb3JpZ2luX2VjEPv//////////wEaCXVzLWVhc3QtMSJHMEUCIQD");
    while token.len() < 1000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        token.push(B64[(x >> 16) as usize % 64] as char);
    }
    token.push('=');
    let creds = aws_sdk_s3::config::Credentials::new("ASIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", Some(token.clone()), None, "lambda");
    app.outputs.credentials = Some(aws_sdk_s3::config::SharedCredentialsProvider::new(creds));

    let url = format!("https://example.com/{}", "a".repeat(names::job::URL_MAX_CHARS - 20));
    let quotes = "\"".repeat(names::job::QUERY_MAX_CHARS);
    let opts = r#"{"full_page": true, "viewport": {"width": 3840, "height": 2160}, "timeout_seconds": 600, "capture_html": true}"#;
    for (what, body, uploads) in [
        ("typical", json!({"query": "rust lambda fargate", "options": serde_json::from_str::<Value>(opts).unwrap()}), 5),
        ("typical without html", json!({"query": "rust lambda fargate"}), 4),
        ("longest query, all quotes", json!({"query": quotes, "options": serde_json::from_str::<Value>(opts).unwrap()}), 5),
        ("longest url", json!({"url": url, "options": serde_json::from_str::<Value>(opts).unwrap()}), 5),
    ] {
        let id = submit(&app, &tenant, &body.to_string()).await;
        let job = app.store.get(&TaskId::parse(&id).unwrap()).await.unwrap().unwrap();
        let env = manifest::overrides(&app, &job).await.unwrap().expect("fits");
        let size = manifest::override_chars(&app.config.container_name, &env);
        println!("{what}: override {size} chars");
        assert!(size <= 2048, "{what}: {size} chars: a link and an id, whatever the job");
        let (code, raw) = agent_http("GET", &env[0].1, b"").await;
        assert_eq!(code, 200, "{what}");
        let manifest: Manifest = serde_json::from_slice(&raw).unwrap();
        assert_eq!(manifest.uploads.len(), uploads, "{what}: every output the job can produce, none dropped");
        assert!(manifest.uploads.values().all(|f| f.fields.get("x-amz-security-token") == Some(&token)), "{what}");
    }
}

#[tokio::test]
async fn a_scripted_job_gets_a_form_per_file_and_lists_its_files() {
    let tenant = unique("script");
    let app = app(&[&tenant]).await;
    let body = json!({"steps": [
        {"action": "goto", "url": "https://example.org/login"},
        {"action": "type", "selector": "input[name=user]", "text": "ada"},
        {"action": "press", "key": "Enter"},
        {"action": "screenshot", "name": "after-login"},
        {"action": "extract", "name": "rows", "selector": "tr", "all": true},
        {"action": "pdf", "name": "invoice"},
    ]});
    let id = submit(&app, &tenant, &body.to_string()).await;
    let shown = status_of(&app, &id).await;
    assert_eq!(shown["steps"], body["steps"], "the steps as submitted");
    assert!(shown.get("query").is_none() && shown.get("url").is_none());

    let job = app.store.get(&TaskId::parse(&id).unwrap()).await.unwrap().unwrap();
    let env = manifest::overrides(&app, &job).await.unwrap().unwrap();
    let (_, raw) = agent_http("GET", &env[0].1, b"").await;
    let manifest: Manifest = serde_json::from_slice(&raw).unwrap();
    assert_eq!(serde_json::to_value(&manifest.job.steps).unwrap(), body["steps"]);
    let png = &manifest.uploads["files/after-login.png"];
    let pdf = &manifest.uploads["files/invoice.pdf"];
    assert!(s3post::policy_of(pdf).unwrap()["conditions"].as_array().unwrap().contains(&json!({"Content-Type": "application/pdf"})));
    assert_eq!(manifest.uploads.len(), names::job::possible_outputs(&job.options).len() + 2);

    force(&app, &id, JobStatus::Running, None).await;
    assert_eq!(post_form(png, "image/png", b"\x89PNG step").await, 204);
    assert_eq!(post_form(pdf, "application/pdf", b"%PDF-1.7 step").await, 204);
    let s = get(&app, &tenant, &format!("/jobs/{id}")).await;
    let files = s.body["outputs"]["files"].as_object().unwrap_or_else(|| panic!("{}", s.body));
    assert_eq!(files.keys().collect::<Vec<_>>(), ["after-login.png", "invoice.pdf"]);
    let (code, got) = http("GET", files["invoice.pdf"].as_str().unwrap(), b"").await;
    assert_eq!((code, got.as_slice()), (200, b"%PDF-1.7 step".as_slice()));
}

/// Uploads `body` through a POST form (the file last), as the agent does; the HTTP status.
async fn post_form(form: &names::manifest::Upload, content_type: &str, body: &'static [u8]) -> u16 {
    let mut multipart = reqwest::multipart::Form::new();
    for (k, v) in &form.fields {
        multipart = multipart.text(k.clone(), v.clone());
    }
    let file = reqwest::multipart::Part::bytes(body).file_name("f").mime_str(content_type).unwrap();
    // As the agent posts it: through the VPC's endpoint (the bucket refuses upload forms from elsewhere).
    let resp = in_vpc().post(&form.url).multipart(multipart.part("file", file)).send().await.unwrap();
    resp.status().as_u16()
}

/// One query parameter of a URL, decoded.
fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Puts a tenant secret into SSM as an operator would (`aws ssm put-parameter --type SecureString`).
async fn put_secret(app: &App, tenant: &str, name: &str, value: &str) {
    put_secure(&names::ssm::tenant_secret(&app.config.tenant_secrets_path, tenant, name), value).await;
}

fn login_steps(secret: &str) -> Value {
    json!({"steps": [
        {"action": "goto", "url": "https://example.org/login"},
        {"action": "type", "selector": "#user", "secret": "user"},
        {"action": "type", "selector": "#password", "secret": secret},
        {"action": "press", "key": "Enter"},
    ]})
}

#[tokio::test]
async fn the_secrets_a_job_names_reach_it_in_an_object_of_their_own_read_once() {
    let (tenant, other) = (unique("secrets"), unique("neighbour"));
    let app = app(&[&tenant, &other]).await;
    put_secret(&app, &tenant, "user", "ada@example.org").await;
    put_secret(&app, &tenant, "password", "s3cr3t-of-the-tenant").await;
    put_secret(&app, &tenant, "unrelated", "never-handed-over").await;
    put_secret(&app, &other, "password", "the-neighbours-secret").await;
    let id = submit(&app, &tenant, &login_steps("password").to_string()).await;
    let job = app.store.get(&TaskId::parse(&id).unwrap()).await.unwrap().unwrap();
    let env = manifest::overrides(&app, &job).await.unwrap().unwrap();
    let overrides = serde_json::to_string(&env).unwrap();
    let (_, raw) = agent_http("GET", &env[0].1, b"").await;
    for (what, text) in [("the overrides", overrides), ("the manifest", String::from_utf8(raw.clone()).unwrap()), ("the job", status_of(&app, &id).await.to_string())] {
        assert!(!text.contains("s3cr3t") && !text.contains("ada@example.org"), "{what} hold a secret: {text}");
    }
    let manifest: Manifest = serde_json::from_slice(&raw).unwrap();
    let links = manifest.secrets.expect("the manifest links the secrets");
    let (code, got) = agent_http("GET", &links.get, b"").await;
    assert_eq!(code, 200);
    let got: BTreeMap<String, String> = serde_json::from_slice(&got).unwrap();
    // Exactly the ones the steps name, the tenant's own.
    assert_eq!(got, BTreeMap::from([("password".into(), "s3cr3t-of-the-tenant".into()), ("user".into(), "ada@example.org".into())]));
    assert_eq!(agent_http("DELETE", &links.delete, b"").await.0, 204);
    // 403, not 404: S3 answers a missing key so to a signer (the process role) that may not list
    // the bucket.
    assert_eq!(agent_http("GET", &links.get, b"").await.0, 403, "read once");
    // The bucket is versioned: the DELETE removed that version for good, not behind a marker.
    assert_eq!(secret_versions(&app, &id).await, Vec::<String>::new(), "no version or delete marker of the secrets is left");

    // Left behind by an agent that died, after two attempts each wrote them: the reconciler
    // deletes every version when the task stops.
    manifest::overrides(&app, &job).await.unwrap().unwrap();
    let again = manifest::overrides(&app, &job).await.unwrap().unwrap();
    assert_eq!(secret_versions(&app, &id).await.len(), 2);
    let (_, raw) = agent_http("GET", &again[0].1, b"").await;
    let links = serde_json::from_slice::<Manifest>(&raw).unwrap().secrets.unwrap();
    assert_eq!(agent_http("GET", &links.get, b"").await.0, 200);
    let arn = "arn:aws:ecs:us-east-1:123456789012:task/c/secrets1";
    force(&app, &id, JobStatus::Running, Some(arn)).await;
    reconcile_event(&app, &id, arn, TaskStatus::Stopped, container(Some(137), None), Some(StopCode::EssentialContainerExited)).await;
    assert_eq!(agent_http("GET", &links.get, b"").await.0, 403, "deleted by the reconciler");
    assert_eq!(secret_versions(&app, &id).await, Vec::<String>::new(), "every version deleted by the reconciler");
}

/// Every version and delete marker of a job's secrets object.
async fn secret_versions(app: &App, id: &str) -> Vec<String> {
    let key = names::bucket::secrets_key(id);
    let r = app.outputs.client.list_object_versions().bucket(&app.config.bucket).prefix(&key).send().await.unwrap();
    let versions = r.versions().iter().map(|v| format!("version {}", v.version_id().unwrap_or("?")));
    let markers = r.delete_markers().iter().map(|m| format!("delete marker {}", m.version_id().unwrap_or("?")));
    versions.chain(markers).collect()
}

#[tokio::test]
async fn a_job_naming_a_secret_its_tenant_lacks_fails_before_a_task_starts() {
    let (tenant, other) = (unique("nosecret"), unique("hasit"));
    let app = app(&[&tenant, &other]).await;
    put_secret(&app, &tenant, "user", "ada").await;
    // Another tenant's secret of that name is not this tenant's.
    put_secret(&app, &other, "password", "theirs").await;
    let id = submit(&app, &tenant, &login_steps("password").to_string()).await;
    let outcome = process::message(&app, &process::Message { body: Some(&job_message(&id)), receive_count: 1 }).await;
    assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
    let job = status_of(&app, &id).await;
    assert_eq!(job["status"], "FAILED");
    assert_eq!(job["error"]["code"], ErrorCode::SecretNotFound.as_str());
    let message = job["error"]["message"].as_str().unwrap();
    assert!(message.contains("`password`") && !message.contains("`user`"), "{message}");
    assert!(message.contains(&format!("/tenants/{tenant}/")), "{message}");
    assert!(job.get("ecs_task_id").is_none(), "no task was started: {job}");
    let links = functions::identity::acting_as(functions::Function::Process, app.outputs.presign_secrets(&TaskId::parse(&id).unwrap(), None, std::time::Duration::from_secs(60))).await.unwrap();
    // 403, not 404: S3 answers a missing key so to a signer that may not list the bucket.
    assert_eq!(agent_http("GET", &links.get, b"").await.0, 403, "no secrets were written");
}

/// A scripted job whose agent uploads `body` as its error.json and exits with the step code.
async fn report(app: &App, tenant: &str, arn: &str, body: Value) -> Value {
    let id = submit(app, tenant, r#"{"steps": [{"action": "goto", "url": "https://example.org/"}, {"action": "assert", "text": "Welcome"}]}"#).await;
    let job = app.store.get(&TaskId::parse(&id).unwrap()).await.unwrap().unwrap();
    let env = manifest::overrides(app, &job).await.unwrap().unwrap();
    let (_, raw) = agent_http("GET", &env[0].1, b"").await;
    let manifest: Manifest = serde_json::from_slice(&raw).unwrap();
    let form = &manifest.uploads[Output::Error.file_name()];
    let body: &'static [u8] = Box::leak(body.to_string().into_bytes().into_boxed_slice());
    assert_eq!(post_form(form, Output::Error.content_type(), body).await, 204);
    force(app, &id, JobStatus::Running, Some(arn)).await;
    reconcile_event(app, &id, arn, TaskStatus::Stopped, container(Some(names::agent::exit::STEP.into()), None), Some(StopCode::EssentialContainerExited)).await;
    status_of(app, &id).await
}

#[tokio::test]
async fn a_failed_agent_s_error_report_becomes_the_job_s_error() {
    let tenant = unique("report");
    let app = app(&[&tenant]).await;
    let arn = "arn:aws:ecs:us-east-1:123456789012:task/c/report1";
    let job = report(&app, &tenant, arn, json!({"code": "ASSERTION_FAILED", "message": "the page does not contain the text \"Welcome\"", "stage": "steps", "step": 1})).await;
    assert_eq!(job["error"]["code"], ErrorCode::AssertionFailed.as_str(), "{job}");
    assert_eq!(job["error"]["step"], 1);
    assert!(job["error"]["message"].as_str().unwrap().starts_with("the page does not contain the text \"Welcome\""), "{job}");
    // A report the agent (which runs untrusted pages) got wrong is not believed.
    let job = report(&app, &tenant, arn, json!({"code": "ALL_FINE", "message": "nothing to see"})).await;
    assert_eq!(job["error"]["code"], ErrorCode::AgentFailed.as_str(), "{job}");
    assert!(job["error"].get("step").is_none());
}

/// Runs a job of `tenant` to its end: started, RUNNING for `run`, then its container exits with
/// `exit` (the STOPPED event delivered `deliveries` times). Its job as it ended.
async fn run_to_end(app: &App, tenant: &str, run: std::time::Duration, exit: i64, deliveries: usize) -> Value {
    let id = submit(app, tenant, r#"{"query": "usage"}"#).await;
    let _ = process::message(app, &process::Message { body: Some(&job_message(&id)), receive_count: 1 }).await;
    let arn = app.store.get(&TaskId::parse(&id).unwrap()).await.unwrap().unwrap().ecs_task_arn.expect("a task");
    reconcile::event(app, &task_event(&app.config.cluster_arn, &arn, &id, names::ecs::TaskStatus::Running, running_container(), None)).await.unwrap();
    tokio::time::sleep(run).await;
    let stopped = task_event(&app.config.cluster_arn, &arn, &id, names::ecs::TaskStatus::Stopped, container(Some(exit), None), None);
    for _ in 0..deliveries {
        reconcile::event(app, &stopped).await.unwrap();
    }
    status_of(app, &id).await
}

/// A computer-use job's end adds the model usage its agent's `result.json` reports to its
/// tenant's day, once however often the end is delivered (the reconciler reads the result under
/// the emulator's IAM, which grants it `result.json` alone). A usage that does not read as one,
/// or no result at all, adds nothing and fails nothing.
#[tokio::test]
async fn a_goal_jobs_model_usage_is_added_to_its_tenants_day_once() {
    let tenant = unique("usage-model");
    let app = app(&[&tenant]).await;
    let usage = |cost: f64| json!({"model": "bedrock/m", "turns": 3, "input_tokens": 4500, "output_tokens": 360, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 1000, "estimated_cost_usd": cost});
    let runs = [(Some(usage(0.0189)), 0, 2), (Some(usage(-1.0)), 0, 1), (None, names::agent::exit::STEP, 1)];
    let mut ended = Vec::new();
    for (n, (result, exit, deliveries)) in runs.into_iter().enumerate() {
        let id = submit(&app, &tenant, r#"{"goal": "Read the page"}"#).await;
        let job = app.store.get(&TaskId::parse(&id).unwrap()).await.unwrap().unwrap();
        let env = manifest::overrides(&app, &job).await.unwrap().unwrap();
        let (_, raw) = agent_http("GET", &env[0].1, b"").await;
        let manifest: Manifest = serde_json::from_slice(&raw).unwrap();
        if let Some(usage) = result {
            let body: &'static [u8] = Box::leak(json!({"kind": "goal", "usage": usage}).to_string().into_bytes().into_boxed_slice());
            assert_eq!(post_form(&manifest.uploads[Output::Result.file_name()], Output::Result.content_type(), body).await, 204);
        }
        let arn = format!("arn:aws:ecs:us-east-1:123456789012:task/c/model-usage-{n}");
        force(&app, &id, JobStatus::Running, Some(&arn)).await;
        for _ in 0..deliveries {
            reconcile_event(&app, &id, &arn, TaskStatus::Stopped, container(Some(exit.into()), None), Some(StopCode::EssentialContainerExited)).await;
        }
        ended.push(status_of(&app, &id).await);
    }
    assert_eq!(ended.iter().map(|j| j["status"].as_str().unwrap()).collect::<Vec<_>>(), ["COMPLETED", "COMPLETED", "FAILED"]);
    let r = get(&app, &tenant, "/usage").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let total: names::api::UsageTotals = serde_json::from_value(r.body["total"].clone()).unwrap();
    assert_eq!((total.jobs, total.model_input_tokens, total.model_output_tokens), (3, 4500 + 200 + 1000, 360), "{}", r.body);
    assert!((total.model_cost_usd - 0.0189).abs() < 1e-9, "{}", r.body);
    // The task's cost stays apart: the model's is not in `estimated_cost_usd`.
    let task: f64 = ended.iter().map(|j| j["usage"]["estimated_cost_usd"].as_f64().unwrap()).sum();
    assert!((total.estimated_cost_usd - task).abs() < 1e-5, "{} against {task}", total.estimated_cost_usd);
}

/// `GET /usage`: a tenant's jobs, running time, vCPU- and GB-seconds and estimated cost by day,
/// equal to the sums over the jobs it ran (a job's end counted once, however often its event
/// comes), never another tenant's; bad days are refused.
#[tokio::test]
async fn usage_sums_each_tenants_jobs_by_day_and_never_shows_another_tenants() {
    let (a, b, c) = (unique("usage-a"), unique("usage-b"), unique("usage-c"));
    let app = app(&[&a, &b, &c]).await;
    let mut ran = Vec::new();
    ran.push(run_to_end(&app, &a, std::time::Duration::from_millis(1200), 0, 2).await);
    ran.push(run_to_end(&app, &a, std::time::Duration::from_millis(300), 4, 1).await);
    let queued = submit(&app, &a, r#"{"query": "never runs"}"#).await;
    assert_eq!(call(&app, &request(&a, "DELETE", &format!("/jobs/{queued}"), "")).await.status, 200);
    let b_job = run_to_end(&app, &b, std::time::Duration::from_millis(500), 0, 1).await;
    let at = |j: &Value, k: &str| functions::time::parse_rfc3339(j[k].as_str().unwrap()).unwrap();
    let seconds: f64 = ran.iter().map(|j| (at(j, "finished_at") - at(j, "started_at")) as f64 / 1000.0).sum();

    let today = &functions::time::rfc3339(functions::time::now_millis())[..10];
    let r = get(&app, &a, "/usage").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let usage: names::api::Usage = serde_json::from_value(r.body.clone()).unwrap();
    assert_eq!((usage.tenant_id.as_str(), usage.to.as_str(), usage.days.len()), (a.as_str(), today, 1), "{}", r.body);
    let t = &usage.total;
    assert_eq!((t.jobs, t.completed, t.failed, t.cancelled), (3, 1, 1, 1), "{}", r.body);
    assert!((t.run_seconds - seconds).abs() < 0.05, "{} s against {seconds} s from the jobs' own times", t.run_seconds);
    let p = app.config.pricing;
    assert!((t.vcpu_seconds - t.run_seconds * p.vcpu).abs() < 1e-5 && (t.gb_seconds - t.run_seconds * p.memory_gb).abs() < 1e-5, "{}", r.body);
    let cost = t.vcpu_seconds / 3600.0 * p.vcpu_hour + t.gb_seconds / 3600.0 * p.gb_hour;
    assert!(t.estimated_cost_usd > 0.0 && (t.estimated_cost_usd - cost).abs() < 1e-5, "{} against {cost}", t.estimated_cost_usd);
    assert_eq!(usage.days[0].day, today);
    assert_eq!(&usage.days[0].usage, t);
    // Each job's status shows its own share, the same figures.
    let own: f64 = ran.iter().map(|j| j["usage"]["run_seconds"].as_f64().unwrap_or_else(|| panic!("no usage on {j}"))).sum();
    assert!((own - t.run_seconds).abs() < 1e-5, "{own} against {}", t.run_seconds);
    let cancelled = status_of(&app, &queued).await;
    assert_eq!((cancelled["usage"]["run_seconds"].as_f64(), cancelled["usage"]["estimated_cost_usd"].as_f64()), (Some(0.0), Some(0.0)), "{cancelled}");

    // B sees its one job, and nothing of A's.
    let rb: names::api::Usage = serde_json::from_value(get(&app, &b, &format!("/usage?from={today}&to={today}")).await.body).unwrap();
    let b_seconds = (at(&b_job, "finished_at") - at(&b_job, "started_at")) as f64 / 1000.0;
    assert_eq!((rb.tenant_id.as_str(), rb.total.jobs, rb.total.completed), (b.as_str(), 1, 1));
    assert!((rb.total.run_seconds - b_seconds).abs() < 0.05);
    // A stop event that tells the task's times: its billed time (image pull to stop) is what counts.
    let id = submit(&app, &c, r#"{"query": "billed"}"#).await;
    let _ = process::message(&app, &process::Message { body: Some(&job_message(&id)), receive_count: 1 }).await;
    let arn = app.store.get(&TaskId::parse(&id).unwrap()).await.unwrap().unwrap().ecs_task_arn.expect("a task");
    let at = |ms: i64| functions::time::rfc3339(functions::time::now_millis() - ms);
    let stopped = names::ecs::TaskStateChange {
        task_arn: arn.clone(),
        cluster_arn: Some(app.config.cluster_arn.clone()),
        last_status: names::ecs::TaskStatus::Stopped,
        started_by: Some(id.clone()),
        containers: vec![container(Some(0), None)],
        pull_started_at: Some(at(120_000)),
        started_at: Some(at(100_000)),
        execution_stopped_at: Some(at(40_000)),
        stopped_at: Some(at(30_000)),
        ..Default::default()
    };
    reconcile::event(&app, &testenv::events::to_json(&testenv::events::task_state_change(stopped))).await.unwrap();
    let rc: names::api::Usage = serde_json::from_value(get(&app, &c, "/usage").await.body).unwrap();
    assert_eq!((rc.total.jobs, rc.total.completed), (1, 1));
    assert!((rc.total.run_seconds - 90.0).abs() < 1e-6, "pull to stop: {}", rc.total.run_seconds);
    let (_, _, cost) = app.config.pricing.of(90.0);
    assert!((rc.total.estimated_cost_usd - cost).abs() < 1e-6, "{} against {cost}", rc.total.estimated_cost_usd);
    let billed = status_of(&app, &id).await;
    assert_eq!(billed["usage"]["run_seconds"].as_f64(), Some(90.0), "{billed}");
    // A day without jobs is left out; bad days are refused.
    let earlier: names::api::Usage = serde_json::from_value(get(&app, &a, "/usage?from=2026-01-01&to=2026-01-31").await.body).unwrap();
    assert!(earlier.days.is_empty() && earlier.total.jobs == 0);
    for (q, field) in [("from=2026-13-01", "from"), ("from=2026-02-01&to=2026-01-01", "from"), ("from=2026-01-01&to=2026-12-31", "to"), ("day=2026-01-01", "day")] {
        let r = get(&app, &a, &format!("/usage?{q}")).await;
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        assert_eq!(r.body["error"]["field"], field, "{q}: {}", r.body);
    }
}
