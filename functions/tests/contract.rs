//! What the handlers actually call equals what infra-gen grants: each function runs its paths
//! against the emulator with SDK clients that record every operation, and the recorded calls,
//! as IAM actions, must equal `names::contract::calls` (no permission missing, none unused).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::ConfigBag;
use common::*;
use functions::{process, reconcile, App, Function};
use serde_json::json;

/// Records `service:Operation` of every call made through the clients it is installed in.
#[derive(Clone, Debug, Default)]
struct Recorder(Arc<Mutex<BTreeSet<(String, String)>>>);

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "contract-recorder"
    }
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            // IAM authorizes a DELETE of one version as its own action.
            let versioned_delete = context
                .input()
                .downcast_ref::<aws_sdk_s3::operation::delete_object::DeleteObjectInput>()
                .is_some_and(|i| i.version_id().is_some());
            // A transaction is authorized item by item, each as its own write.
            if let Some(t) = context.input().downcast_ref::<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput>() {
                for item in t.transact_items() {
                    let op = match (item.put(), item.update(), item.delete(), item.condition_check()) {
                        (Some(_), ..) => "PutItem",
                        (_, Some(_), ..) => "UpdateItem",
                        (_, _, Some(_), _) => "DeleteItem",
                        _ => "ConditionCheckItem",
                    };
                    self.0.lock().unwrap().insert((m.service().to_owned(), op.to_owned()));
                }
                return Ok(());
            }
            let op = if versioned_delete { "DeleteObjectVersion" } else { m.name() };
            self.0.lock().unwrap().insert((m.service().to_owned(), op.to_owned()));
        }
        Ok(())
    }
}

impl Recorder {
    /// The recorded calls as IAM actions (`HeadObject` is authorized as `s3:GetObject`, a list as
    /// `s3:ListBucket`, ...).
    fn actions(&self) -> BTreeSet<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(service, op)| {
                let prefix = match service.to_ascii_lowercase().as_str() {
                    "dynamodb" => "dynamodb",
                    "sqs" => "sqs",
                    "s3" => "s3",
                    "ecs" => "ecs",
                    "cloudwatchlogs" | "cloudwatch logs" | "logs" => "logs",
                    "ssm" => "ssm",
                    other => panic!("unexpected service {other}"),
                };
                let action = match (prefix, op.as_str()) {
                    ("s3", "HeadObject") => "GetObject",
                    ("s3", "ListObjectsV2") | ("s3", "ListObjects") => "ListBucket",
                    ("s3", "ListObjectVersions") => "ListBucketVersions",
                    (_, op) => op,
                };
                format!("{prefix}:{action}")
            })
            .collect()
    }
}

/// An app serving only `f`, whose every client records into `rec`.
async fn recording_app(f: Function, config: functions::config::Config, rec: &Recorder) -> App {
    let sdk = function_sdk(&config).await;
    let mut app = App::new(&sdk, config, vec![f]);
    app.store.client = aws_sdk_dynamodb::Client::from_conf(aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(rec.clone()).build());
    app.queue.client = aws_sdk_sqs::Client::from_conf(aws_sdk_sqs::config::Builder::from(&sdk).interceptor(rec.clone()).build());
    app.outputs.client = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).interceptor(rec.clone()).build());
    // The agents' links: signed by the signer session's credentials, as Outputs::new builds it.
    let mut links = aws_sdk_s3::config::Builder::from(&sdk).interceptor(rec.clone()).identity_cache(aws_sdk_s3::config::IdentityCache::no_cache());
    if let Some(session) = app.outputs.credentials.clone() {
        links = links.credentials_provider(session);
    }
    app.outputs.links = aws_sdk_s3::Client::from_conf(links.build());
    app.tasks.client = aws_sdk_ecs::Client::from_conf(aws_sdk_ecs::config::Builder::from(&sdk).interceptor(rec.clone()).build());
    app.logs.client =
        aws_sdk_cloudwatchlogs::Client::from_conf(aws_sdk_cloudwatchlogs::config::Builder::from(&sdk).interceptor(rec.clone()).build());
    app.secrets.client = aws_sdk_ssm::Client::from_conf(aws_sdk_ssm::config::Builder::from(&sdk).interceptor(rec.clone()).build());
    app.signing.client = app.secrets.client.clone();
    app.webhooks.client = app.queue.client.clone();
    app.wakes.client = app.queue.client.clone();
    if let Some(w) = app.store.webhooks.as_mut() {
        w.client = app.queue.client.clone();
    }
    app
}

/// Calls IAM authorizes without an API call of their own, and calls the Lambda service makes with
/// the function's role (the SQS event source), which a handler therefore never records.
fn not_recordable(f: Function, action: &str) -> Option<&'static str> {
    match (f, action) {
        (Function::Process, "ecs:TagResource") => Some("authorized inside RunTask (the task is tagged)"),
        (Function::Process, "iam:PassRole") => Some("authorized inside RunTask (the execution role is passed)"),
        (Function::Process | Function::Webhook, "sqs:ReceiveMessage" | "sqs:DeleteMessage" | "sqs:GetQueueAttributes") => {
            Some("made by the Lambda event source mapping with the function's role")
        }
        // Only when a job is cancelled between its claim and RunTask's answer: a race this test
        // cannot schedule against the emulator.
        (Function::Process, "ecs:StopTask") => Some("a race: cancelled while RunTask was under way"),
        // The SDK's AssumeRoleProvider makes it with an STS client of its own, which takes no
        // interceptor; pool.rs's links_are_signed_by_a_session_... shows the links carry its key.
        // A slot's wake queue is deleted by the process function only when the slot's task
        // never started (RunTask refused, or its refill died): pool.rs's
        // a_slot_whose_refill_died_is_given_up_... deletes one as the process function.
        (Function::Process, "sqs:DeleteQueue") => Some("a slot whose task never started (the reconciler deletes the others)"),
        (Function::Process, "sts:AssumeRole") => Some("made by the SDK's AssumeRoleProvider when the links' signing session starts"),
        _ => None,
    }
}

#[tokio::test]
async fn handlers_call_exactly_what_their_roles_allow() {
    let tenant = unique("contract");
    let base = app(&[&tenant]).await;
    let mut config = base.config.clone();
    // A warm pool, none of its slots started: dispatch looks for one, the sweep asks for a refill.
    config.warm_pool_size = 1;
    let recorders: BTreeMap<Function, Recorder> = Function::ALL.into_iter().map(|f| (f, Recorder::default())).collect();
    let rec = |f: Function| recorders[&f].clone();

    // submit: a new job, the same job again (idempotency), and one whose enqueue fails.
    let submit = recording_app(Function::Submit, config.clone(), &rec(Function::Submit)).await;
    // With a webhook whose name resolves to loopback: refused when sent, so nothing leaves.
    let hook = r#""webhook": {"url": "https://localhost/contract"}"#;
    let mut req = request(&tenant, "POST", "/jobs", &format!(r#"{{"query": "contract", {hook}}}"#));
    req.headers.push(("Idempotency-Key".into(), unique("idem")));
    let first = call(&submit, &req).await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(call(&submit, &req).await.status, 202);
    let id = first.body["task_id"].as_str().unwrap().to_owned();
    let mut broken = config.clone();
    broken.queue_url = format!("{}/123456789012/no-such-queue", emulator().endpoint);
    let submit_broken = recording_app(Function::Submit, broken, &rec(Function::Submit)).await;
    assert_eq!(call(&submit_broken, &request(&tenant, "POST", "/jobs", r#"{"query": "lost"}"#)).await.status, 500);

    // process: claim the job, sign its uploads, start its task.
    let process = recording_app(Function::Process, config.clone(), &rec(Function::Process)).await;
    let resp = process::batch(&process, sqs_event(&[(&job_message(&id), 1)])).await;
    assert!(resp.batch_item_failures.is_empty());
    let job = serde_json::to_value(base.store.get(&functions::model::TaskId::parse(&id).unwrap()).await.unwrap().unwrap().view()).unwrap();
    let task_arn = job["ecs_task_arn"].as_str().or(job["ecs_task_id"].as_str()).map(str::to_owned);
    let task_arn = task_arn.expect("process recorded the task");
    // A script typing a tenant secret (read from SSM, written for its agent), and one naming a
    // secret the tenant lacks (failed, its secrets object deleted).
    put_secure(&names::ssm::tenant_secret(&config.tenant_secrets_path, &tenant, "pw"), "contract-secret").await;
    let script = |secret: &str| format!(r#"{{"steps": [{{"action": "goto", "url": "https://example.org/"}}, {{"action": "type", "selector": "input", "secret": "{secret}"}}], {hook}}}"#);
    let scripted = common::submit(&base, &tenant, &script("pw")).await;
    let missing = common::submit(&base, &tenant, &script("nope")).await;
    let resp = process::batch(&process, sqs_event(&[(&job_message(&scripted), 1), (&job_message(&missing), 1)])).await;
    assert!(resp.batch_item_failures.is_empty());
    // A tenant at its running limit: the job waits, its message sent again.
    let limited = unique("limited");
    let mut limited_config = config.clone();
    limited_config.limits.max_running = 1;
    let limited_app = app_with(limited_config.clone()).await;
    common::key_of(&limited_app, &limited).await;
    let (one, two) = (common::submit(&limited_app, &limited, r#"{"query": "a"}"#).await, common::submit(&limited_app, &limited, r#"{"query": "b"}"#).await);
    let limited_process = recording_app(Function::Process, limited_config, &rec(Function::Process)).await;
    process::batch(&limited_process, sqs_event(&[(&job_message(&one), 1)])).await;
    assert_eq!(process::message(&limited_process, &process::Message { body: Some(&job_message(&two)), receive_count: 1 }).await, process::Outcome::Waiting);
    // A job handed to a warm slot: its manifest written at the slot's place, the slot's links (a
    // GET to poll, a DELETE to release) signed.
    // (Idle slots other tests left would fill the pool: out of the way, so this refill starts
    // one, with its wake queue.)
    for s in base.store.slots().await.unwrap() {
        base.store.retire_slot(&s.id).await.unwrap();
    }
    assert_eq!(functions::pool::refill(&process).await.unwrap(), 1);
    let warm = common::submit(&base, &tenant, r#"{"query": "warm"}"#).await;
    let handed = process::message(&process, &process::Message { body: Some(&job_message(&warm)), receive_count: 1 }).await;
    assert!(matches!(handed, process::Outcome::Started { .. }), "{handed:?}");
    let warm_job = base.store.get(&functions::model::TaskId::parse(&warm).unwrap()).await.unwrap().unwrap();
    assert!(warm_job.warm_slot.is_some(), "handed to the slot");
    let scripted_job = base.store.get(&functions::model::TaskId::parse(&scripted).unwrap()).await.unwrap().unwrap();
    assert_eq!(base.store.get(&functions::model::TaskId::parse(&missing).unwrap()).await.unwrap().unwrap().status, names::JobStatus::Failed);

    // An output exists and the container wrote a log line.
    base.outputs.client.put_object().bucket(&config.bucket).key(names::bucket::output_key(&id, names::Output::Result)).body(b"{}".to_vec().into()).send().await.unwrap();
    let ecs_task_id = functions::aws::ecs_task_id(&task_arn);
    let stream = names::logs::agent_stream(&ecs_task_id);
    let _ = base.logs.client.create_log_stream().log_group_name(&config.log_group).log_stream_name(&stream).send().await;
    base.logs
        .client
        .put_log_events()
        .log_group_name(&config.log_group)
        .log_stream_name(&stream)
        .log_events(aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(functions::time::now_millis()).message("hello").build().unwrap())
        .send()
        .await
        .unwrap();

    // status, logs, list.
    let status = recording_app(Function::Status, config.clone(), &rec(Function::Status)).await;
    let r = get(&status, &tenant, &format!("/jobs/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["outputs"]["result"].is_string(), "{}", r.body);
    let logs = recording_app(Function::Logs, config.clone(), &rec(Function::Logs)).await;
    let r = get(&logs, &tenant, &format!("/jobs/{id}/logs")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let list = recording_app(Function::List, config.clone(), &rec(Function::List)).await;
    assert_eq!(get(&list, &tenant, "/jobs").await.status, 200);

    // reconcile: the task runs; then the sweep stops and fails an overdue job.
    let reconciler = recording_app(Function::Reconcile, config.clone(), &rec(Function::Reconcile)).await;
    let running = task_event(&config.cluster_arn, &task_arn, &id, names::ecs::TaskStatus::Running, running_container(), None);
    reconcile::event(&reconciler, &running).await.unwrap();
    // The scripted job's agent fails a step: its error report is found and read, its secrets
    // deleted.
    let report = json!({"code": "STEP_FAILED", "message": "the step failed", "stage": "steps", "step": 1}).to_string();
    base.outputs.client.put_object().bucket(&config.bucket).key(names::bucket::output_key(&scripted, names::Output::Error)).body(report.into_bytes().into()).send().await.unwrap();
    let scripted_arn = scripted_job.ecs_task_arn.clone().expect("the scripted job's task");
    let stopped = task_event(&config.cluster_arn, &scripted_arn, &scripted, names::ecs::TaskStatus::Stopped, container(Some(10), None), None);
    reconcile::event(&reconciler, &stopped).await.unwrap();
    // The warm slot ends before its agent took the job: the job goes back to the queue, the
    // slot's manifest is removed.
    let slot = base.store.slot(warm_job.warm_slot.as_deref().unwrap()).await.unwrap().expect("the slot");
    let slot_arn = slot.task_arn.clone().expect("the slot's task");
    let slot_end = task_event(&config.cluster_arn, &slot_arn, &names::pool::started_by(&slot.id), names::ecs::TaskStatus::Stopped, container(Some(137), None), None);
    assert_eq!(reconcile::event(&reconciler, &slot_end).await.unwrap(), reconcile::Outcome::Applied(names::JobStatus::Queued));
    let overdue = submit_job(&base, &tenant).await;
    process::batch(&base, sqs_event(&[(&job_message(&overdue), 1)])).await;
    make_overdue(&base, &overdue).await;
    let scheduled = json!({"detail-type": reconcile::SCHEDULED_EVENT, "source": "aws.events", "detail": {}});
    reconcile::event(&reconciler, &scheduled).await.unwrap();

    // cancel: the running job, which stops its task.
    let cancel = recording_app(Function::Cancel, config.clone(), &rec(Function::Cancel)).await;
    let r = call(&cancel, &request(&tenant, "DELETE", &format!("/jobs/{id}"), "")).await;
    assert!(r.status == 200 || r.status == 202, "{} {}", r.status, r.body);

    // webhook: the cancelled job's event (its tenant's secret read, the attempt refused and
    // recorded, the retry queued), then a redelivery through the submit function.
    put_secure(&names::ssm::webhook_secret(&config.webhook_secrets_path, &tenant), "whsec_Y29udHJhY3Q=").await;
    let deliverer = recording_app(Function::Webhook, config.clone(), &rec(Function::Webhook)).await;
    let delivery = json!({"task_id": id, "round": 0, "attempt": 1}).to_string();
    let resp = functions::webhook::batch(&deliverer, sqs_event(&[(&delivery, 1)])).await;
    assert!(resp.batch_item_failures.is_empty());
    let view = serde_json::to_value(base.store.get(&functions::model::TaskId::parse(&id).unwrap()).await.unwrap().unwrap().view()).unwrap();
    assert!(view["webhook"]["attempts"][0]["error"].as_str().unwrap().contains("refused destination"), "{view}");
    // (After the redelivery cool-down: the first round is still sending.)
    let later = functions::time::Clock::manual(functions::time::now_millis() + (names::webhook::REDELIVERY_COOLDOWN_SECONDS + 1) * 1000);
    let r = call(&submit.clone().with_clock(later), &request(&tenant, "POST", &format!("/jobs/{id}/webhook"), "")).await;
    assert_eq!(r.status, 202, "{}", r.body);

    for f in Function::ALL {
        let recorded = recorders[&f].actions();
        let granted: BTreeSet<String> = names::contract::calls(f).iter().map(|(a, _)| a.to_string()).collect();
        let unused: Vec<&String> = granted.iter().filter(|a| !recorded.contains(*a) && not_recordable(f, a).is_none()).collect();
        let missing: Vec<&String> = recorded.difference(&granted).collect();
        assert!(missing.is_empty(), "{}: calls without a grant: {missing:?}", f.as_str());
        assert!(unused.is_empty(), "{}: grants never used: {unused:?} (recorded {recorded:?})", f.as_str());
        println!("{}: {} calls recorded, all granted; granted and unused only by design: {:?}", f.as_str(), recorded.len(),
            granted.iter().filter(|a| !recorded.contains(*a)).map(|a| (a, not_recordable(f, a).unwrap())).collect::<Vec<_>>());
    }
}

async fn submit_job(app: &App, tenant: &str) -> String {
    submit(app, tenant, r#"{"query": "overdue", "options": {"timeout_seconds": 10}}"#).await
}
