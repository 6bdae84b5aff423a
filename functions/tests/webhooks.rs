//! Signed completion webhooks against the emulator and a local receiver that verifies every
//! signature with the Standard Webhooks reference library (PyPI `standardwebhooks`): delivery
//! and its record, retries after 500s and timeouts under one `webhook-id`, the dead-letter queue
//! after a shortened schedule, redelivery, rotation's two signatures, redirects not followed, and
//! destinations refused before any connection.
//!
//! Every test runs in the loopback-only network namespace (testenv::netns), the emulator and the
//! receiver too: a refused destination could not be reached even if the guard had a hole.

mod common;

use std::time::Duration;

use common::*;
use functions::aws::Delivery;
use functions::webhook::{self, Outcome};
use functions::App;
use names::webhook::DeliveryState as State;
use serde_json::{json, Value};

fn run(test: impl std::future::Future<Output = ()>) {
    testenv::netns::enter_or_panic();
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(test);
}

use functions::webhook::new_secret;

/// An app whose webhooks go through queues of their own, retried after 1 s and 1 s (three
/// attempts), each attempt given 1 s; loopback allowed (as in local mode) unless `strict`.
async fn hook_app(tenant: &str, strict: bool) -> App {
    let (queue, dlq) = webhook_queues(&unique("wh")).await;
    let mut c = config();
    c.webhook_queue_url = queue;
    c.webhook_dlq_url = dlq;
    c.webhook_retry_seconds = vec![1, 1];
    c.webhook_timeout = Duration::from_secs(1);
    c.webhook_allow_http = true;
    if !strict {
        c.webhook_egress = names::egress::EgressPolicy::parse("127.0.0.1").unwrap().with_any_port();
    }
    let app = app_with(c).await;
    common::key_of(&app, tenant).await;
    app
}

async fn put_signing_secret(app: &App, tenant: &str, value: &str) {
    put_secure(&names::ssm::webhook_secret(&app.config.webhook_secrets_path, tenant), value).await;
}

/// A tenant of its own (`name` made unique) with a webhook signing secret, its app (as
/// `hook_app`), and a receiver that verifies with that secret and answers `answers` in turn.
async fn signed_tenant(name: &str, answers: &[&str]) -> (String, App, testenv::webhooks::Receiver) {
    let tenant = unique(name);
    let app = hook_app(&tenant, false).await;
    let secret = new_secret();
    put_signing_secret(&app, &tenant, &secret).await;
    let receiver = testenv::webhooks::Receiver::start(&testenv::root(), &[&secret], answers).unwrap();
    (tenant, app, receiver)
}

/// The event source: receives the app's webhook messages (delays and all), delivers each, deletes
/// the handled ones, until `done` says so of the outcomes or `timeout` passes.
async fn pump(app: &App, timeout: Duration, done: impl Fn(&[Outcome]) -> bool) -> Vec<Outcome> {
    let sqs = &app.webhooks.client;
    let start = std::time::Instant::now();
    let mut outcomes = Vec::new();
    while !done(&outcomes) && start.elapsed() < timeout {
        let r = sqs.receive_message().queue_url(&app.webhooks.url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
        for m in r.messages.unwrap_or_default() {
            let d: Delivery = serde_json::from_str(m.body.as_deref().unwrap()).unwrap();
            let o = webhook::deliver(app, d).await.expect("AWS calls succeed");
            sqs.delete_message().queue_url(&app.webhooks.url).receipt_handle(m.receipt_handle.unwrap()).send().await.unwrap();
            if !matches!(o, Outcome::Deferred(_) | Outcome::Parked(_)) {
                outcomes.push(o);
            }
        }
    }
    outcomes
}

async fn dlq(app: &App) -> Vec<Delivery> {
    let r = app.webhooks.client.receive_message().queue_url(&app.webhooks.dlq_url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
    r.messages.unwrap_or_default().iter().map(|m| serde_json::from_str(m.body.as_deref().unwrap()).unwrap()).collect()
}

fn with_hook(url: &str) -> String {
    format!(r#"{{"query": "hooked", "webhook": {{"url": "{url}"}}}}"#)
}

async fn cancel(app: &App, tenant: &str, id: &str) {
    let r = call(app, &request(tenant, "DELETE", &format!("/jobs/{id}"), "")).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn status_of(app: &App, tenant: &str, id: &str) -> Value {
    let r = get(app, tenant, &format!("/jobs/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

#[test]
fn a_completed_job_is_delivered_signed_and_recorded() {
    run(async {
        let (tenant, mut app, receiver) = signed_tenant("hooks", &[]).await;
        let metrics = MetricLines::of(&mut app);
        let id = submit(&app, &tenant, &with_hook(&receiver.url("/hooks/jobs"))).await;
        // Before it ends: the webhook is shown, nothing is sent.
        let queued = status_of(&app, &tenant, &id).await;
        assert_eq!(queued["webhook"]["url"], receiver.url("/hooks/jobs"));
        assert!(queued["webhook"].get("state").is_none(), "{queued}");
        // It starts, uploads a result, and its container exits 0.
        functions::process::batch(&app, sqs_event(&[(&job_message(&id), 1)])).await;
        let arn = app.store.get(&functions::model::TaskId::parse(&id).unwrap()).await.unwrap().unwrap().ecs_task_arn.unwrap();
        app.outputs.client.put_object().bucket(&app.config.bucket).key(names::bucket::output_key(&id, names::Output::Result)).body(b"{}".to_vec().into()).send().await.unwrap();
        let stopped = task_event(&app.config.cluster_arn, &arn, &id, names::ecs::TaskStatus::Stopped, container(Some(0), None), None);
        functions::reconcile::event(&app, &stopped).await.unwrap();

        let outcomes = pump(&app, Duration::from_secs(20), |o| !o.is_empty()).await;
        assert_eq!(outcomes, [Outcome::Delivered(200)]);
        let got = receiver.requests();
        assert_eq!(got.len(), 1, "{got:?}");
        let r = &got[0];
        assert_eq!(r["verified"], serde_json::json!([true]), "the reference library verifies the signature: {r}");
        assert_eq!(r["id"], names::webhook::event_id(&id));
        assert_eq!((r["type"].as_str(), r["task_id"].as_str(), r["status"].as_str(), r["path"].as_str()), (Some("job.completed"), Some(id.as_str()), Some("COMPLETED"), Some("/hooks/jobs")));
        let ts: i64 = r["timestamp"].as_str().unwrap().parse().unwrap();
        assert!((ts - functions::time::now_millis() / 1000).abs() < 30, "unix seconds: {ts}");
        let done = status_of(&app, &tenant, &id).await;
        assert_eq!(done["webhook"]["state"], State::Delivered.as_str(), "{done}");
        let attempts = done["webhook"]["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!((attempts[0]["attempt"].as_u64(), attempts[0]["status_code"].as_u64()), (Some(1), Some(200)));
        assert!(attempts[0].get("error").is_none() && attempts[0]["at"].is_string());
        // The event's body is the status body, with the link to the result.
        let body = webhook::payload(&app, &app.store.get(&functions::model::TaskId::parse(&id).unwrap()).await.unwrap().unwrap()).await.unwrap();
        let event: Value = serde_json::from_str(&body).unwrap();
        assert!(event["data"]["outputs"]["result"].is_string() && event["data"].get("webhook").is_none(), "{event}");
        // A repeated message of the delivered round sends nothing.
        let again = webhook::deliver(&app, Delivery::first(&id, 0)).await.unwrap();
        assert_eq!(again, Outcome::Dropped("this round already ended"));
        assert_eq!(receiver.requests().len(), 1);
        // Counted once: the job's start and end, the attempt, its latency from the job's end.
        use names::metrics as m;
        assert_eq!(metrics.values(m::JOBS_STARTED, json!({"Start": "cold"})), [1.0]);
        assert_eq!(metrics.values(m::JOBS_FINISHED, json!({"Status": "COMPLETED"})), [1.0]);
        assert_eq!(metrics.values(m::WEBHOOK_ATTEMPTS, json!({"Outcome": "delivered"})), [1.0]);
        let latency = metrics.values(m::WEBHOOK_LATENCY, json!({}));
        assert!(latency.len() == 1 && latency[0] < 60_000.0, "{latency:?}");
    });
}

#[test]
fn failures_are_retried_under_one_id_then_dead_lettered_and_can_be_redelivered() {
    run(async {
        let tenant = unique("retries");
        let mut app = hook_app(&tenant, false).await;
        let metrics = MetricLines::of(&mut app);
        let secret = new_secret();
        put_signing_secret(&app, &tenant, &secret).await;
        // 500, then no answer within the 1 s an attempt has, then 500: the schedule [1, 1] ends.
        let receiver = testenv::webhooks::Receiver::start(&testenv::root(), &[&secret], &["500", "timeout:3", "500"]).unwrap();
        let id = submit(&app, &tenant, &with_hook(&receiver.url("/h"))).await;
        cancel(&app, &tenant, &id).await;
        let outcomes = pump(&app, Duration::from_secs(30), |o| o.iter().any(|o| matches!(o, Outcome::DeadLettered(_)))).await;
        assert!(matches!(&outcomes[..], [Outcome::Retrying { next: 2, wait: 1, .. }, Outcome::Retrying { next: 3, wait: 1, .. }, Outcome::DeadLettered(_)]), "{outcomes:?}");
        let got = receiver.wait_for(3, Duration::from_secs(5));
        assert_eq!(got.len(), 3, "{got:?}");
        for r in &got {
            assert_eq!(r["id"], names::webhook::event_id(&id), "one id on every retry");
            assert_eq!(r["verified"], serde_json::json!([true]));
            assert_eq!(r["type"], "job.cancelled");
        }
        let view = status_of(&app, &tenant, &id).await;
        assert_eq!(view["webhook"]["state"], State::Failed.as_str(), "{view}");
        let attempts: Vec<(u64, Option<u64>, String)> = view["webhook"]["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["attempt"].as_u64().unwrap(), a["status_code"].as_u64(), a["error"].as_str().unwrap_or("").to_owned()))
            .collect();
        assert_eq!(attempts.len(), 3, "{attempts:?}");
        assert_eq!((attempts[0].1, attempts[0].2.as_str()), (Some(500), "HTTP 500"));
        assert_eq!((attempts[1].1, attempts[1].2.as_str()), (None, "no answer within 1 s"));
        assert_eq!(attempts[2].1, Some(500));
        let dead = dlq(&app).await;
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!((dead[0].task_id.as_str(), dead[0].attempt, dead[0].last_error.as_deref()), (id.as_str(), 3, Some("HTTP 500")));
        use names::metrics as m;
        assert_eq!(metrics.values(m::WEBHOOK_ATTEMPTS, json!({"Outcome": "failed"})), [1.0, 1.0]);
        assert_eq!(metrics.values(m::WEBHOOK_ATTEMPTS, json!({"Outcome": "gave_up"})), [1.0]);
        assert_eq!(metrics.values(m::JOBS_FINISHED, json!({"Status": "CANCELLED"})), [1.0]);

        // Redelivery: a new round, the same id, the schedule from its start; now answered 200.
        let r = call(&app, &request(&tenant, "POST", &format!("/jobs/{id}/webhook"), "")).await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.body["webhook"]["state"], State::Sending.as_str());
        let outcomes = pump(&app, Duration::from_secs(20), |o| !o.is_empty()).await;
        assert_eq!(outcomes, [Outcome::Delivered(200)]);
        let got = receiver.requests();
        assert_eq!((got.len(), got[3]["id"].as_str()), (4, Some(names::webhook::event_id(&id).as_str())));
        let view = status_of(&app, &tenant, &id).await;
        assert_eq!((view["webhook"]["state"].as_str(), view["webhook"]["redeliveries"].as_i64()), (Some("DELIVERED"), Some(1)), "{view}");
        assert_eq!(view["webhook"]["attempts"].as_array().unwrap().len(), 1, "the new round's attempts");
        // A message of the earlier round is dropped.
        let stale = webhook::deliver(&app, Delivery { attempt: 2, ..Delivery::first(&id, 0) }).await.unwrap();
        assert_eq!(stale, Outcome::Dropped("a message of an earlier round"));
        let zero = webhook::deliver(&app, Delivery { attempt: 0, ..Delivery::first(&id, 1) }).await.unwrap();
        assert_eq!(zero, Outcome::Dropped("attempts count from 1"));
    });
}

#[test]
fn redelivery_needs_a_finished_job_with_a_webhook() {
    run(async {
        let tenant = unique("redeliver");
        let app = hook_app(&tenant, false).await;
        let plain = submit(&app, &tenant, r#"{"query": "no hook"}"#).await;
        let r = call(&app, &request(&tenant, "POST", &format!("/jobs/{plain}/webhook"), "")).await;
        assert_eq!((r.status, r.body["error"]["code"].as_str()), (409, Some("no_webhook")), "{}", r.body);
        let hooked = submit(&app, &tenant, &with_hook("http://127.0.0.1:9/h")).await;
        let r = call(&app, &request(&tenant, "POST", &format!("/jobs/{hooked}/webhook"), "")).await;
        assert_eq!((r.status, r.body["error"]["code"].as_str()), (409, Some("job_not_finished")), "{}", r.body);
        let other = unique("other");
        let r = call(&app, &request(&other, "POST", &format!("/jobs/{hooked}/webhook"), "")).await;
        assert_eq!(r.status, 403, "a key with no tenant");
    });
}

/// scripts/webhook-secret.sh with the project's AWS CLI, against the emulator.
fn secret_script(args: &[&str]) -> std::process::Output {
    let root = testenv::root();
    let path = format!("{}:{}", testenv::venv_bin(&root).display(), std::env::var("PATH").unwrap_or_default());
    std::process::Command::new(root.join("scripts/webhook-secret.sh"))
        .args(args)
        .env("PATH", path)
        .env("PROJECT_NAME", PROJECT)
        .env("ENVIRONMENT", ENVIRONMENT)
        .output()
        .unwrap()
}

fn stdout_line(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

#[test]
fn the_script_rotates_secrets_and_both_sign_meanwhile() {
    run(async {
        let tenant = unique("rotate");
        let app = hook_app(&tenant, false).await;
        let old = stdout_line(&secret_script(&["create", &tenant]));
        assert!(old.starts_with("whsec_") && base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &old[6..]).unwrap().len() == 32, "{old}");
        let twice = secret_script(&["create", &tenant]);
        assert_eq!(twice.status.code(), Some(1), "a second create is refused");
        assert_eq!(secret_script(&["retire", &tenant]).status.code(), Some(1), "nothing to retire yet");
        let new = stdout_line(&secret_script(&["rotate", &tenant]));
        assert_eq!(secret_script(&["rotate", &tenant]).status.code(), Some(1), "one rotation at a time");
        assert_eq!(stdout_line(&secret_script(&["show", &tenant])), format!("{new}\n{old}"));
        assert_eq!(app.signing.read(&tenant).await.unwrap(), Some(vec![new.clone(), old.clone()]));
        assert_eq!(secret_script(&["create", "Not A Tenant"]).status.code(), Some(2));

        // Meanwhile every event is signed with both.
        let receiver = testenv::webhooks::Receiver::start(&testenv::root(), &[&old, &new, &new_secret()], &[]).unwrap();
        let id = submit(&app, &tenant, &with_hook(&receiver.url("/r"))).await;
        cancel(&app, &tenant, &id).await;
        assert_eq!(pump(&app, Duration::from_secs(20), |o| !o.is_empty()).await, [Outcome::Delivered(200)]);
        let r = &receiver.requests()[0];
        assert_eq!(r["verified"], serde_json::json!([true, true, false]), "each of the two verifies on its own; another secret does not: {r}");
        assert_eq!(r["signature"].as_str().unwrap().split(' ').count(), 2);

        // Retired: the newest alone.
        assert!(secret_script(&["retire", &tenant]).status.success());
        assert_eq!(app.signing.read(&tenant).await.unwrap(), Some(vec![new]));
    });
}

#[test]
fn a_tenant_without_a_signing_secret_is_told_in_the_attempts() {
    run(async {
        let tenant = unique("nosecret");
        let app = hook_app(&tenant, false).await;
        let receiver = testenv::webhooks::Receiver::start(&testenv::root(), &[], &[]).unwrap();
        let id = submit(&app, &tenant, &with_hook(&receiver.url("/n"))).await;
        cancel(&app, &tenant, &id).await;
        let outcomes = pump(&app, Duration::from_secs(1), |o| !o.is_empty()).await;
        let Outcome::Retrying { error, .. } = &outcomes[0] else { panic!("{outcomes:?}") };
        assert!(error.contains("no webhook signing secret") && error.contains("webhook-secret.sh create"), "{error}");
        assert!(receiver.requests().is_empty(), "nothing unsigned is sent");
    });
}

#[test]
fn refused_destinations_are_never_contacted() {
    run(async {
        let tenant = unique("refused");
        let app = hook_app(&tenant, true).await;
        put_signing_secret(&app, &tenant, &new_secret()).await;
        let receiver = testenv::webhooks::Receiver::start(&testenv::root(), &[], &[]).unwrap();
        // Addresses are refused at submit, with the field named.
        for url in [
            receiver.url("/direct"),
            "https://169.254.169.254/latest/meta-data/".to_string(),
            "https://169.254.170.2/v2/credentials".to_string(),
            "https://10.0.0.1/hook".to_string(),
            "https://[::1]:9000/hook".to_string(),
            "https://[::ffff:127.0.0.1]/hook".to_string(),
        ] {
            let r = call(&app, &request(&tenant, "POST", "/jobs", &with_hook(&url))).await;
            assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some("webhook.url")), "{url}: {}", r.body);
            assert!(r.body["error"]["message"].as_str().unwrap().contains("refused"), "{}", r.body);
        }
        // A name that resolves to loopback is refused when sent (resolved then), never connected.
        let id = submit(&app, &tenant, &with_hook(&format!("http://localhost:{}/by-name", receiver.port))).await;
        cancel(&app, &tenant, &id).await;
        let outcomes = pump(&app, Duration::from_secs(1), |o| !o.is_empty()).await;
        let Outcome::Retrying { error, .. } = &outcomes[0] else { panic!("{outcomes:?}") };
        assert!(error.contains("refused destination") && error.contains("loopback"), "{error}");
        assert!(receiver.requests().is_empty(), "{:?}", receiver.requests());
        // https only, unless in local mode.
        let mut strict = app.clone();
        strict.config.webhook_allow_http = false;
        let r = call(&strict, &request(&tenant, "POST", "/jobs", &with_hook("http://hooks.example.com/h"))).await;
        assert_eq!(r.status, 400);
        assert!(r.body["error"]["message"].as_str().unwrap().contains("https"), "{}", r.body);
        for (body, field) in [
            (r#"{"query": "q", "webhook": "https://x.example/"}"#, "webhook"),
            (r#"{"query": "q", "webhook": {}}"#, "webhook.url"),
            (r#"{"query": "q", "webhook": {"url": 5}}"#, "webhook.url"),
            (r#"{"query": "q", "webhook": {"url": "https://x.example/", "secret": "s"}}"#, "webhook.secret"),
            (r#"{"query": "q", "webhook": {"url": "https://user:pw@x.example/"}}"#, "webhook.url"),
        ] {
            let r = call(&app, &request(&tenant, "POST", "/jobs", body)).await;
            assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some(field)), "{body}: {}", r.body);
        }
    });
}

#[test]
fn redirects_are_not_followed() {
    run(async {
        let (tenant, app, receiver) = signed_tenant("redirect", &["redirect"]).await;
        let id = submit(&app, &tenant, &with_hook(&receiver.url("/moved"))).await;
        cancel(&app, &tenant, &id).await;
        let outcomes = pump(&app, Duration::from_secs(1), |o| !o.is_empty()).await;
        let Outcome::Retrying { error, .. } = &outcomes[0] else { panic!("{outcomes:?}") };
        assert!(error.contains("302") && error.contains("not followed"), "{error}");
        std::thread::sleep(Duration::from_millis(300));
        let paths: Vec<String> = receiver.requests().iter().map(|r| r["path"].as_str().unwrap().to_owned()).collect();
        assert_eq!(paths, ["/moved"], "the Location was not requested");
    });
}

/// `X-Amz-Date` of a pre-signed link.
fn signed_at(link: &str) -> String {
    reqwest::Url::parse(link).unwrap().query_pairs().find(|(k, _)| k == "X-Amz-Date").map(|(_, v)| v.into_owned()).unwrap()
}

/// Each attempt builds its body, with output links signed when it is made: a retry hours after
/// the first attempt carries links that work (they are signed for an hour). Before, every retry
/// resent the first attempt's body, and from the 2 h retry on its links were dead.
#[test]
fn each_attempt_carries_freshly_signed_output_links() {
    run(async {
        let (tenant, app, receiver) = signed_tenant("fresh", &["500", "200"]).await;
        let id = submit(&app, &tenant, &with_hook(&receiver.url("/h"))).await;
        functions::process::batch(&app, sqs_event(&[(&job_message(&id), 1)])).await;
        let arn = app.store.get(&functions::model::TaskId::parse(&id).unwrap()).await.unwrap().unwrap().ecs_task_arn.unwrap();
        app.outputs.client.put_object().bucket(&app.config.bucket).key(names::bucket::output_key(&id, names::Output::Result)).body(b"{}".to_vec().into()).send().await.unwrap();
        let stopped = task_event(&app.config.cluster_arn, &arn, &id, names::ecs::TaskStatus::Stopped, container(Some(0), None), None);
        functions::reconcile::event(&app, &stopped).await.unwrap();
        // The first attempt fails; its retry comes a second later (the schedule here is [1, 1]).
        let outcomes = pump(&app, Duration::from_secs(20), |o| o.iter().any(|o| matches!(o, Outcome::Delivered(_)))).await;
        assert!(matches!(&outcomes[..], [Outcome::Retrying { next: 2, .. }, Outcome::Delivered(200)]), "{outcomes:?}");
        let got = receiver.wait_for(2, Duration::from_secs(5));
        let links: Vec<&str> = got.iter().map(|r| r["outputs"]["result"].as_str().expect("a result link")).collect();
        assert!(signed_at(links[1]) > signed_at(links[0]), "the retry's link was signed for the retry: {links:?}");
        assert_eq!(http("GET", links[1], b"").await.0, 200, "and it works");
    });
}

/// A redelivery while the current round is young and still being sent is refused (409
/// `webhook_in_flight`, `Retry-After`): a tenant redelivering at its rate limit would fill the
/// delivery capacity every tenant shares. After the cool-down, or once the round ended, it starts
/// a new round.
#[test]
fn a_redelivery_waits_for_a_young_round_in_flight() {
    run(async {
        let tenant = unique("cooldown");
        let app = hook_app(&tenant, false).await;
        let id = submit(&app, &tenant, &with_hook("http://127.0.0.1:9/h")).await;
        cancel(&app, &tenant, &id).await;
        let redeliver = |app: App| {
            let (tenant, id) = (tenant.clone(), id.clone());
            async move { call(&app, &request(&tenant, "POST", &format!("/jobs/{id}/webhook"), "")).await }
        };
        let r = redeliver(app.clone()).await;
        assert_eq!((r.status, r.body["error"]["code"].as_str()), (409, Some("webhook_in_flight")), "{}", r.body);
        let wait = r.retry_after.expect("Retry-After");
        assert!((1..=names::webhook::REDELIVERY_COOLDOWN_SECONDS as u32).contains(&wait), "{wait}");
        // After the cool-down: a new round, and the next one at once is refused again.
        let later = app.clone().with_clock(functions::time::Clock::manual(functions::time::now_millis() + (i64::from(wait) + 1) * 1000));
        let r = redeliver(later.clone()).await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.body["webhook"]["redeliveries"], 1, "{}", r.body);
        assert_eq!(redeliver(later.clone()).await.status, 409);
        // A round that ended (dead-lettered here) may be redelivered at once.
        let ended = Delivery { attempt: 3, ..Delivery::first(&id, 1) };
        let mut one_try = later.clone();
        one_try.config.webhook_retry_seconds = vec![1, 1];
        assert!(matches!(webhook::deliver(&one_try, ended).await.unwrap(), Outcome::DeadLettered(_)));
        assert_eq!(redeliver(later).await.status, 202);
    });
}

/// This job's messages in `app`'s webhook queue (received, so taken off it).
async fn queued_for(app: &App, id: &str) -> Vec<Delivery> {
    let mut ours = Vec::new();
    loop {
        let r = app.webhooks.client.receive_message().queue_url(&app.webhooks.url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
        let batch = r.messages.unwrap_or_default();
        if batch.is_empty() {
            return ours;
        }
        ours.extend(batch.into_iter().filter_map(|m| serde_json::from_str::<Delivery>(m.body.as_deref().unwrap()).ok()).filter(|d| d.task_id == id));
    }
}

/// A job with a webhook to a receiver that refuses connections, cancelled by a function that
/// cannot reach the webhooks queue: finished, its event PENDING (not queued).
async fn pending_event(app: &App, tenant: &str) -> String {
    let mut broken = app.clone();
    broken.store.webhooks.as_mut().unwrap().url = format!("{}/123456789012/no-such-queue", emulator().endpoint);
    let id = submit(app, tenant, &with_hook("http://127.0.0.1:9/h")).await;
    cancel(&broken, tenant, &id).await;
    id
}

/// The scheduled sweep, run after the announcements' grace has passed.
async fn sweep_after_grace(app: &App) -> functions::reconcile::Outcome {
    let later = functions::time::Clock::manual(functions::time::now_millis() + (functions::aws::ANNOUNCE_GRACE_SECONDS + 1) * 1000);
    let scheduled = serde_json::json!({"detail-type": functions::reconcile::SCHEDULED_EVENT, "source": "aws.events", "detail": {}});
    functions::reconcile::event(&app.clone().with_clock(later), &scheduled).await.unwrap()
}

/// The announcing function queued the event, its first attempt was made and recorded, and only
/// then did the PENDING -> SENDING mark come (and fail its condition): the attempt moves the job
/// out of PENDING, so no sweep queues the event again. Before, the job stayed PENDING in the
/// sweep's partition for its whole life and every sweep started another chain of retries to a
/// failing receiver.
#[test]
fn an_attempt_recorded_before_the_announcement_mark_is_not_announced_again() {
    run(async {
        let tenant = unique("race");
        let app = hook_app(&tenant, false).await;
        // Finished, its event PENDING: the state the race leaves until the mark would land.
        let id = pending_event(&app, &tenant).await;
        let first = Delivery::first(&id, 0);
        let out = webhook::deliver(&app, first).await.unwrap();
        assert!(matches!(out, Outcome::Retrying { next: 2, .. }), "{out:?}");
        let job = app.store.get(&functions::model::TaskId::parse(&id).unwrap()).await.unwrap().unwrap();
        assert_eq!(job.webhook.as_ref().unwrap().state, Some(State::Sending));
        // The late mark: refused (no longer PENDING), changes nothing.
        let mark = app.store.announce(&functions::model::TaskId::parse(&id).unwrap()).await;
        assert!(mark.is_ok(), "{mark:?}");
        tokio::time::sleep(Duration::from_millis(1500)).await; // the retry's 1 s delay
        let retries = queued_for(&app, &id).await;
        let mut attempts: Vec<u32> = retries.iter().map(|d| d.attempt).collect();
        attempts.sort();
        assert_eq!(attempts, [1, 2], "the late announcement's message and the retry");
        // Sweeps after the grace queue nothing more for it.
        for _ in 0..2 {
            sweep_after_grace(&app).await;
        }
        assert_eq!(queued_for(&app, &id).await, Vec::<Delivery>::new(), "a sweep queued the event again");
    });
}

#[test]
fn a_lost_announcement_is_queued_by_the_sweep_and_long_waits_are_chained() {
    run(async {
        let tenant = unique("sweep");
        let app = hook_app(&tenant, false).await;
        let id = pending_event(&app, &tenant).await;
        let job = app.store.get(&functions::model::TaskId::parse(&id).unwrap()).await.unwrap().unwrap();
        assert_eq!(job.webhook.as_ref().unwrap().state, Some(State::Pending));
        // After its grace, the sweep queues it. (The table is shared: a sweep also announces other
        // tests' events pending at that moment, so what is counted is this job's messages in this
        // test's queue.)
        let out = sweep_after_grace(&app).await;
        assert!(matches!(out, functions::reconcile::Outcome::Swept { announced: 1.., .. }), "{out:?}");
        let job = app.store.get(&functions::model::TaskId::parse(&id).unwrap()).await.unwrap().unwrap();
        assert_eq!(job.webhook.as_ref().unwrap().state, Some(State::Sending));
        sweep_after_grace(&app).await;
        let mut ours = queued_for(&app, &id).await;
        assert_eq!(ours.len(), 1, "queued once: {ours:?}");
        let d = ours.remove(0);
        assert_eq!((d.task_id.as_str(), d.round, d.attempt), (id.as_str(), 0, 1));

        // A retry 2 h away waits in 15-minute steps: a message that comes early goes back.
        let now = functions::time::now_millis() / 1000;
        let early = Delivery { not_before: now + 7200, ..d };
        assert!(matches!(webhook::deliver(&app, early).await.unwrap(), Outcome::Deferred(w) if (7190..=7200).contains(&w)));
    });
}

/// Issue 24 (the fault-injection test, seed 323): a round whose message SQS moved to the webhooks
/// DLQ (the function failed, or died, on every receive) stayed SENDING for the job's whole life:
/// nothing would attempt it again, and the table never said so. The sweep ends a round that made
/// no progress when an attempt was due FAILED, with an attempt that says why; a round whose next
/// attempt is not yet overdue is left alone; a redelivery starts a new round.
#[test]
fn a_round_whose_message_was_dead_lettered_is_ended_failed_by_the_sweep() {
    run(async {
        const STALL: i64 = 100;
        let tenant = unique("stall");
        let mut app = hook_app(&tenant, false).await;
        app.config.webhook_stall_seconds = STALL;
        app.store.webhook_stall_seconds = STALL;
        let id = pending_event(&app, &tenant).await;
        let task = functions::model::TaskId::parse(&id).unwrap();
        // Queued; its message then goes to a function that fails on every receive (never
        // delivered here), until SQS moves it to the DLQ.
        app.store.announce(&task).await.unwrap();
        let start = functions::time::now_millis();
        let sweep_at = |secs: i64| {
            let app = app.clone().with_clock(functions::time::Clock::manual(start + secs * 1000));
            async move {
                let scheduled = serde_json::json!({"detail-type": functions::reconcile::SCHEDULED_EVENT, "source": "aws.events", "detail": {}});
                functions::reconcile::event(&app, &scheduled).await.unwrap()
            }
        };
        let hook = |app: &App| {
            let app = app.clone();
            let task = task.clone();
            async move { app.store.get(&task).await.unwrap().unwrap().webhook.unwrap() }
        };
        sweep_at(STALL - 10).await;
        assert_eq!(hook(&app).await.state, Some(State::Sending), "not overdue yet");
        let out = sweep_at(STALL + 10).await;
        assert!(matches!(out, functions::reconcile::Outcome::Swept { stalled: 1.., .. }), "{out:?}");
        let ended = hook(&app).await;
        assert_eq!(ended.state, Some(State::Failed));
        let last = ended.attempts.last().unwrap();
        assert_eq!((last.attempt, last.error.as_deref()), (1, Some(names::webhook::STALLED)));
        let again = sweep_at(STALL + 20).await;
        assert!(matches!(again, functions::reconcile::Outcome::Swept { stalled: 0, .. }), "ended once: {again:?}");
        assert_eq!(hook(&app).await.attempts.len(), 1);

        // A redelivery: a new round, sent again.
        assert!(matches!(webhook::redeliver(&app, &task).await.unwrap(), functions::aws::NewRound::Started(_)));
        let round = hook(&app).await;
        assert_eq!((round.round, round.state), (1, Some(State::Sending)));
        // Its first attempt fails (nothing listens) and schedules a retry a second away: the round
        // is due again a second later than it was, so a sweep just before that leaves it alone.
        let first = Delivery::first(&id, 1);
        assert!(matches!(webhook::deliver(&app, first).await.unwrap(), Outcome::Retrying { next: 2, .. }));
        let made = (functions::time::now_millis() - start) / 1000;
        sweep_at(made + STALL).await;
        assert_eq!(hook(&app).await.state, Some(State::Sending), "its retry is not overdue");
        sweep_at(made + STALL + 10).await;
        assert_eq!(hook(&app).await.state, Some(State::Failed), "its retry never came");
    });
}

/// The Rust verification example of docs/api.md, compiled and run against what the function signs.
mod readme {
    include!("readme_verify.rs.inc");

    #[test]
    fn the_readme_example_verifies_our_signatures() {
        let readme = std::fs::read_to_string(testenv::root().join("docs/api.md")).unwrap();
        assert!(readme.contains(include_str!("readme_verify.rs.inc")), "docs/api.md's Rust example differs from functions/tests/readme_verify.rs.inc");
        let (secret, other) = (functions::webhook::new_secret(), functions::webhook::new_secret());
        let body = br#"{"type": "job.completed"}"#;
        let sig = functions::webhook::signature(&[other.clone(), secret.clone()], "msg_1", 1_700_000_000, std::str::from_utf8(body).unwrap()).unwrap();
        assert!(verify(&secret, "msg_1", "1700000000", &sig, body, 1_700_000_100));
        assert!(verify(&other, "msg_1", "1700000000", &sig, body, 1_700_000_100));
        assert!(!verify(&secret, "msg_1", "1700000000", &sig, b"{}", 1_700_000_100), "another body");
        assert!(!verify(&secret, "msg_2", "1700000000", &sig, body, 1_700_000_100), "another id");
        assert!(!verify(&secret, "msg_1", "1700000000", &sig, body, 1_700_000_400), "too old");
        assert!(!verify(&functions::webhook::new_secret(), "msg_1", "1700000000", &sig, body, 1_700_000_100));
    }
}

/// Issue 24: a tenant whose receiver hangs held the delivery capacity every tenant shares (each
/// attempt to it costs the whole timeout, and the mapping runs five invocations). Its attempts
/// now each hold one of its `TENANT_LANES` lanes: a third of its events is parked until a lane
/// frees (not an attempt), while another tenant's event is delivered beside them. A lane whose holder died is
/// free when its lease runs out.
#[test]
fn a_tenant_whose_receiver_hangs_holds_its_own_lanes_not_everyones() {
    run(async {
        assert_eq!(names::webhook::TENANT_LANES, 2, "this test makes one more event than lanes");
        let (noisy, quiet) = (unique("hangs"), unique("answers"));
        let mut a = hook_app(&noisy, false).await;
        a.config.webhook_timeout = Duration::from_secs(3);
        let b = hook_app(&quiet, false).await;
        let secret = new_secret();
        put_signing_secret(&a, &noisy, &new_secret()).await;
        put_signing_secret(&b, &quiet, &secret).await;
        // Accepts connections and never answers.
        let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hole_url = format!("http://{}/hook", hole.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = hole.accept().await {
                held.push(s);
            }
        });
        let receiver = testenv::webhooks::Receiver::start(&testenv::root(), &[&secret], &[]).unwrap();
        let mut events = Vec::new();
        for _ in 0..3 {
            let id = submit(&a, &noisy, &with_hook(&hole_url)).await;
            cancel(&a, &noisy, &id).await;
            events.extend(queued_for(&a, &id).await.into_iter().map(|d| (a.clone(), d)));
        }
        let id = submit(&b, &quiet, &with_hook(&receiver.url("/b"))).await;
        cancel(&b, &quiet, &id).await;
        events.extend(queued_for(&b, &id).await.into_iter().map(|d| (b.clone(), d)));
        assert_eq!(events.len(), 4);
        // All four at once, as concurrent invocations would.
        let outcomes = futures_util::future::join_all(events.into_iter().map(|(app, d)| async move { (d.task_id.clone(), webhook::deliver(&app, d).await.unwrap()) })).await;
        let quiet_outcomes: Vec<&Outcome> = outcomes.iter().filter(|(t, _)| *t == id).map(|(_, o)| o).collect();
        assert_eq!(quiet_outcomes, [&Outcome::Delivered(200)], "{outcomes:?}");
        let noisy_outcomes: Vec<&Outcome> = outcomes.iter().filter(|(t, _)| *t != id).map(|(_, o)| o).collect();
        assert_eq!(noisy_outcomes.iter().filter(|o| matches!(o, Outcome::Retrying { .. })).count(), 2, "{outcomes:?}");
        assert_eq!(noisy_outcomes.iter().filter(|o| matches!(o, Outcome::Parked(Some(_)))).count(), 1, "{outcomes:?}");
        // The parked event's own message comes back as the same attempt, not counted as one.
        let waiting: Vec<Delivery> = {
            let r = a.webhooks.client.receive_message().queue_url(&a.webhooks.url).max_number_of_messages(10).wait_time_seconds(10).send().await.unwrap();
            r.messages.unwrap_or_default().iter().filter_map(|m| serde_json::from_str(m.body.as_deref().unwrap()).ok()).collect()
        };
        // (Or its wake, when an attempt to the hole gave up its lane first.)
        assert!(waiting.iter().any(|d| d.attempt == 1 && (d.lane_waits == 1 || d.woken)), "{waiting:?}");
        // Lanes held by attempts that died with their function: refused until the leases run out.
        let hold = 60_000;
        for holder in ["dead-1", "dead-2"] {
            assert!(a.store.take_lane(&noisy, 2, holder, hold).await.unwrap().is_some());
        }
        assert_eq!(a.store.take_lane(&noisy, 2, "live", hold).await.unwrap(), None);
        let later = a.clone().with_clock(functions::time::Clock::manual(functions::time::now_millis() + hold + 1000));
        let live = later.store.take_lane(&noisy, 2, "live", hold).await.unwrap().expect("a run-out lease frees its lane");
        assert!(later.store.take_lane(&noisy, 2, "other", hold).await.unwrap().is_some());
        // Only its holder gives a lane back.
        later.store.free_lane(&noisy, live, "someone-else").await.unwrap();
        assert_eq!(later.store.take_lane(&noisy, 2, "third", hold).await.unwrap(), None);
        later.store.free_lane(&noisy, live, "live").await.unwrap();
        assert_eq!(later.store.take_lane(&noisy, 2, "third", hold).await.unwrap(), Some(live));
    });
}

/// Every message taken off an app's webhook queue, kept until a test asks for it (taking off
/// only one job's messages would hide the others' until their visibility timeout).
#[derive(Default)]
struct Taken(Vec<Delivery>);

impl Taken {
    /// The job's messages that `which` picks: those on the queue now, and those taken before.
    async fn of(&mut self, app: &App, id: &str, which: impl Fn(&Delivery) -> bool) -> Vec<Delivery> {
        loop {
            let r = app.webhooks.client.receive_message().queue_url(&app.webhooks.url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
            let batch = r.messages.unwrap_or_default();
            if batch.is_empty() {
                break;
            }
            self.0.extend(batch.iter().filter_map(|m| serde_json::from_str::<Delivery>(m.body.as_deref().unwrap()).ok()));
        }
        let (ours, rest) = std::mem::take(&mut self.0).into_iter().partition(|d| d.task_id == id && which(d));
        self.0 = rest;
        ours
    }

    /// A new job with a webhook to `url`, cancelled: its first message.
    async fn first(&mut self, app: &App, tenant: &str, url: &str) -> (String, Delivery) {
        let id = submit(app, tenant, &with_hook(url)).await;
        cancel(app, tenant, &id).await;
        let mut queued = self.of(app, &id, |_| true).await;
        assert_eq!(queued.len(), 1, "{queued:?}");
        (id, queued.remove(0))
    }
}

/// Issue 24, the noisy-tenant benchmark: a tenant's events waiting for its lanes each came back
/// every few seconds (up to 30 s apart) to look again, and that traffic queued every tenant's
/// events behind it. An event that finds its tenant's lanes busy is now parked, and the attempt
/// that frees a lane wakes the oldest at once; its own message comes back only in case no wake
/// comes (2 s doubling to 5 min), keeps the round from counting as stalled, and is dropped when
/// the wake made the attempt.
#[test]
fn events_waiting_for_a_lane_are_parked_and_a_freed_lane_wakes_the_oldest() {
    run(async {
        let (tenant, app, receiver) = signed_tenant("parks", &[]).await;
        let mut taken = Taken::default();
        let hold = 60_000;
        let mut held = Vec::new();
        for holder in ["busy-1", "busy-2"] {
            held.push(app.store.take_lane(&tenant, 2, holder, hold).await.unwrap().unwrap());
        }
        let mut parked = Vec::new();
        for i in 0..3 {
            let (id, d) = taken.first(&app, &tenant, &receiver.url(&format!("/{i}"))).await;
            let before = functions::time::now_millis() / 1000;
            let out = webhook::deliver(&app, d).await.unwrap();
            let Outcome::Parked(Some(wait)) = out else { panic!("{out:?}") };
            assert!((2..=4).contains(&wait), "the first look again is 2 s and up to as much at random: {wait}");
            // Its round is not stalled while its own message keeps coming back.
            let item = app.store.item(&id).await.unwrap().unwrap();
            let deadline: i64 = item[names::table::DEADLINE_AT].as_n().unwrap().parse().unwrap();
            assert!(deadline >= before + i64::from(wait) + names::webhook::STALL_SECONDS, "{deadline}");
            parked.push(id);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let waiting: Vec<String> = app.store.parked_rounds(&tenant).await.unwrap().into_iter().map(|p| p.task_id).collect();
        assert_eq!(waiting, parked, "oldest first");
        // Parking an entry that is there already adds nothing and says so (its handler then skips
        // the second look for a lane: whoever added the entry looked after adding it).
        let again = app.store.parked_rounds(&tenant).await.unwrap().remove(0);
        assert!(!app.store.park_round(&tenant, &again).await.unwrap());
        assert_eq!(app.store.parked_rounds(&tenant).await.unwrap().len(), 3);

        // One lane frees; the next event takes it, and its attempt wakes the oldest parked one.
        app.store.free_lane(&tenant, held[0], "busy-1").await.unwrap();
        let (fourth, d) = taken.first(&app, &tenant, &receiver.url("/3")).await;
        assert_eq!(webhook::deliver(&app, d).await.unwrap(), Outcome::Delivered(200));
        let woken = taken.of(&app, &parked[0], |d| d.woken).await;
        assert_eq!(woken.len(), 1, "a wake, at once: {woken:?}");
        assert_eq!(woken[0].attempt, 1, "{woken:?}");
        assert_eq!(app.store.parked_rounds(&tenant).await.unwrap().len(), 2);
        // The wake is delivered, and wakes the next in turn.
        assert_eq!(webhook::deliver(&app, woken[0].clone()).await.unwrap(), Outcome::Delivered(200));
        let next = taken.of(&app, &parked[1], |d| d.woken).await;
        assert_eq!(next.len(), 1, "{next:?}");
        // A wake that finds the lanes taken again parks at its old place and queues nothing: its
        // event's own message is still to come.
        assert!(app.store.take_lane(&tenant, 2, "busy-3", hold).await.unwrap().is_some());
        assert_eq!(webhook::deliver(&app, next[0].clone()).await.unwrap(), Outcome::Parked(None));
        let waiting: Vec<String> = app.store.parked_rounds(&tenant).await.unwrap().into_iter().map(|p| p.task_id).collect();
        assert_eq!(waiting, parked[1..].to_vec());
        assert_eq!(taken.of(&app, &parked[1], |d| d.woken).await, [], "no new wake");
        // The first event's own message comes back after its wait (2 to 4 s): the wake made its
        // attempt.
        let start = std::time::Instant::now();
        let mut own = Vec::new();
        while own.is_empty() && start.elapsed() < Duration::from_secs(10) {
            own = taken.of(&app, &parked[0], |d| !d.woken).await;
        }
        assert!(own.len() == 1 && own[0].lane_waits == 1, "{own:?}");
        assert_eq!(webhook::deliver(&app, own[0].clone()).await.unwrap(), Outcome::Dropped("this round already ended"));
        let got = receiver.requests();
        for id in [&parked[0], &fourth] {
            assert_eq!(got.iter().filter(|r| r["task_id"] == id.as_str()).count(), 1, "{id} sent once: {got:?}");
        }
        assert_eq!(status_of(&app, &tenant, &parked[0]).await["webhook"]["attempts"].as_array().unwrap().len(), 1);
    });
}

/// Issue 24 (the noisy-tenant bench): a parked event's own message, back while its entry is still
/// parked and every lane is held, tried both lanes, the set and the stall deadline again: five
/// writes each time, the bulk of the emulator's work beside a noisy tenant. It now waits again
/// after one read, writing nothing while its stall deadline is far enough ahead (here every
/// UpdateItem of the webhook function fails, as if the table refused it); a lane whose lease ran
/// out sends it the whole way, and it takes that lane.
#[test]
fn an_own_message_back_behind_busy_lanes_waits_again_after_one_read() {
    run(async {
        let (tenant, app, receiver) = signed_tenant("busylanes", &[]).await;
        let mut taken = Taken::default();
        for holder in ["busy-1", "busy-2"] {
            app.store.take_lane(&tenant, 2, holder, 60_000).await.unwrap().unwrap();
        }
        let (id, d) = taken.first(&app, &tenant, &receiver.url("/own")).await;
        assert!(matches!(webhook::deliver(&app, d).await.unwrap(), Outcome::Parked(Some(_))));
        let deadline = |app: App, id: String| async move { app.store.get(&functions::model::TaskId::parse(&id).unwrap()).await.unwrap().unwrap().deadline_at.unwrap() };
        let before = deadline(app.clone(), id.clone()).await;
        let own = {
            let start = std::time::Instant::now();
            let mut own = Vec::new();
            while own.is_empty() && start.elapsed() < Duration::from_secs(10) {
                own = taken.of(&app, &id, |d| !d.woken).await;
            }
            own.remove(0)
        };
        assert_eq!(own.lane_waits, 1);
        let (no_writes, _) = app_struck(&app, functions::Function::Webhook, "dynamodb:UpdateItem", testenv::faults::Fault::Fail, None).await;
        let out = webhook::deliver(&no_writes, own.clone()).await.unwrap();
        let Outcome::Parked(Some(wait)) = out else { panic!("{out:?}") };
        assert!((4..=8).contains(&wait), "the second wait is twice the first: {wait}");
        assert_eq!(deadline(app.clone(), id.clone()).await, before, "its stall deadline is far enough ahead: not written");
        assert_eq!(app.store.parked_rounds(&tenant).await.unwrap().len(), 1, "still parked");
        let again = {
            let start = std::time::Instant::now();
            let mut again = Vec::new();
            while again.is_empty() && start.elapsed() < Duration::from_secs(12) {
                again = taken.of(&app, &id, |d| !d.woken && d.lane_waits == 2).await;
            }
            again
        };
        assert_eq!(again.len(), 1, "queued again, after its wait: {again:?}");
        // Lane 0's holder died: its lease runs out, and the next own message takes the lane.
        app.store
            .client
            .update_item()
            .table_name(&app.store.table)
            .key(names::table::TASK_ID, aws_sdk_dynamodb::types::AttributeValue::S(names::table::webhook_lane_key(&tenant, 0)))
            .update_expression("SET #u = :past")
            .expression_attribute_names("#u", names::table::LANE_UNTIL)
            .expression_attribute_values(":past", aws_sdk_dynamodb::types::AttributeValue::N("1".into()))
            .send()
            .await
            .unwrap();
        assert!(webhook::deliver(&no_writes, again[0].clone()).await.is_err(), "the whole way: it writes");
        assert_eq!(webhook::deliver(&app, again[0].clone()).await.unwrap(), Outcome::Delivered(200));
        assert!(app.store.parked_rounds(&tenant).await.unwrap().is_empty());
    });
}

/// Two messages of one attempt at once (an SQS duplicate, or a wake beside the event's own
/// message): both may send (one event id: the receiver takes it once), but only one records
/// the attempt and queues the next, so a failing receiver never gets two chains of retries.
#[test]
fn two_messages_of_one_attempt_start_one_chain_of_retries() {
    run(async {
        let (tenant, app, receiver) = signed_tenant("twice", &["500", "500"]).await;
        let (id, d) = Taken::default().first(&app, &tenant, &receiver.url("/h")).await;
        let (a, b) = tokio::join!(webhook::deliver(&app, d.clone()), webhook::deliver(&app, d));
        let mut outcomes = [a.unwrap(), b.unwrap()];
        outcomes.sort_by_key(|o| matches!(o, Outcome::Dropped(_)));
        assert!(matches!(&outcomes, [Outcome::Retrying { next: 2, .. }, Outcome::Dropped(_)]), "{outcomes:?}");
        let next = {
            let start = std::time::Instant::now();
            let mut all = Vec::new();
            while start.elapsed() < Duration::from_secs(4) {
                all.extend(queued_for(&app, &id).await);
            }
            all
        };
        assert_eq!(next.iter().map(|d| d.attempt).collect::<Vec<_>>(), [2], "one retry queued: {next:?}");
        let view = status_of(&app, &tenant, &id).await;
        assert_eq!(view["webhook"]["attempts"].as_array().unwrap().len(), 1, "{view}");
    });
}
