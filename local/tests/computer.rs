//! Computer-use jobs through the local stack, as a client submits them, with the agent image run
//! as Fargate runs it and the stand-in model service (it reads the screenshots by OCR): on
//! Bedrock, the process function mints the job's key from a session of the model role and the
//! stand-in has the emulator's IAM authorize every call with it; on Anthropic, the tenant's own
//! key. A job signs in on the fixture's /desk with a secret the model types by name and never
//! sees, answers as its `output_schema` asks, and yields its usage, trajectory and one screenshot
//! per turn; a step limit and an answer that breaks the schema end jobs with their own codes; a
//! warm slot runs one as a cold task does. In the loopback-only network namespace.

use std::time::{Duration, Instant};

use local_stack::runner::AgentCommand;
use local_stack::stack::{LocalStack, Options, STAND_IN_KEY_SECRET};
use serde_json::{json, Value};

mod support;

async fn call(stack: &LocalStack, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    support::call(stack, method, path, &stack.keys[0].1, body).await.1
}

async fn finished(stack: &LocalStack, body: Value) -> Value {
    let created = call(stack, reqwest::Method::POST, "/jobs", Some(body)).await;
    let id = created["task_id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned();
    let started = Instant::now();
    loop {
        let job = call(stack, reqwest::Method::GET, &format!("/jobs/{id}"), None).await;
        if ["COMPLETED", "FAILED", "CANCELLED"].contains(&job["status"].as_str().unwrap_or("")) {
            return job;
        }
        assert!(started.elapsed() < Duration::from_secs(180), "the job did not finish: {job}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn fetch(url: &Value) -> Vec<u8> {
    let r = reqwest::get(url.as_str().unwrap_or_else(|| panic!("no link: {url}"))).await.unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap().to_vec()
}

#[test]
fn goal_jobs_run_on_the_granted_model_within_their_limits() {
    testenv::netns::enter_or_panic();
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(goal_jobs());
}

async fn goal_jobs() {
    let podman = testenv::container::Podman::detect().unwrap_or_else(|e| panic!("{e}"));
    podman.require_image(testenv::container::LOCAL_IMAGE).unwrap_or_else(|e| panic!("{e} (make image builds it)"));
    let command = AgentCommand::Container { podman, image: testenv::container::LOCAL_IMAGE.into() };
    let password = testenv::fixture::LOGIN_PASSWORD;
    let stack = LocalStack::start(Options {
        model_scenario: Some("auto".into()),
        tenant_secrets: vec![local_stack::provision::TenantSecret { tenant: "acme".into(), name: "pw".into(), value: password.into() }],
        ..Options::quiet(&["acme"], command)
    })
    .await
    .expect("the local stack starts");
    let desk = format!("http://{}/desk", stack.fixture);
    // The desk's form is at 1100 px by 500 px: a full-HD viewport shows it (and screenshots are
    // sent scaled down, so the model's clicks are scaled back).
    let big = json!({"viewport": {"width": 1920, "height": 1080}});
    let schema = |pattern: &str| json!({"type": "object", "required": ["greeting"], "properties": {"greeting": {"type": "string", "pattern": pattern}}});

    // On Bedrock (the deployment's default model).
    let job = finished(&stack, json!({"goal": "Sign in as alice and tell me the greeting", "start_url": desk, "secrets": ["pw"], "output_schema": schema("^Welcome"), "options": big})).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
    let result: Value = serde_json::from_slice(&fetch(&job["outputs"]["result"]).await).unwrap();
    assert_eq!(result["kind"], "goal");
    assert_eq!(result["answer"], json!({"greeting": "Welcome, alice"}), "{result}");
    assert_eq!(result["model"], names::goal::DEFAULT_BEDROCK_MODEL);
    let trajectory = result["trajectory"].as_array().unwrap();
    // Look; sign in (five actions in one turn); answer.
    assert_eq!(trajectory.len(), 3, "{result}");
    assert_eq!(trajectory[1]["actions"].as_array().unwrap().len(), 5);
    assert!(trajectory[1]["actions"].as_array().unwrap().iter().all(|a| a["ok"] == true), "{result}");
    assert_eq!(result["usage"]["input_tokens"], 3 * 1500);
    assert_eq!(result["usage"]["estimated_cost_usd"], 0.0189, "3 turns of 1,500 tokens in at $3 and 120 out at $15 per million");
    // The status shows the answer, the model's usage and the cost item by item.
    assert_eq!(job["answer"], result["answer"]);
    assert_eq!((job["model_usage"]["turns"].as_u64(), job["model_usage"]["estimated_cost_usd"].as_f64()), (Some(3), Some(0.0189)), "{job}");
    let cost = &job["cost"];
    assert!(cost["task_usd"].as_f64().unwrap() > 0.0 && (cost["total_usd"].as_f64().unwrap() - cost["task_usd"].as_f64().unwrap() - 0.0189).abs() < 1e-6, "{cost}");
    // Each turn's screenshot, a PNG through its link.
    let files = job["outputs"]["files"].as_object().unwrap();
    for turn in trajectory.iter().take(2) {
        let name = turn["screenshot"].as_str().unwrap().trim_start_matches("files/");
        assert!(fetch(&files[name]).await.starts_with(b"\x89PNG"), "{name}");
    }
    // Every call was authorized with the job's own key, by the emulator's IAM.
    let id = job["task_id"].as_str().unwrap();
    let calls = stack.model.as_ref().unwrap().server.records();
    let bedrock: Vec<&Value> = calls.iter().filter(|r| r["path"].as_str().unwrap_or("").starts_with("/model/")).collect();
    assert_eq!(bedrock.len(), 3, "{calls:?}");
    assert!(bedrock.iter().all(|r| r["accepted"] == true && r["principal"].as_str().unwrap_or("").ends_with(&format!("/job-{id}"))), "{bedrock:?}");
    // The secret the model typed is in nothing the client gets.
    let log = String::from_utf8(fetch(&job["outputs"]["logs"]).await).unwrap();
    for (what, text) in [("result.json", result.to_string()), ("agent.log", log.clone())] {
        assert!(!text.contains(password), "{what} holds the secret");
        assert!(!text.contains("bedrock-api-key-"), "{what} holds the model's key");
    }

    // The run as a script, which an ordinary job replays without the model to the same page.
    let script = &result["script"];
    assert_eq!(script["robust"], true, "{script}");
    let steps = script["job"]["steps"].as_array().unwrap();
    assert_eq!(steps[1], json!({"action": "click", "selector": "label[for=\"user\"]"}), "{script}");
    assert!(steps.contains(&json!({"action": "type", "selector": "#password", "secret": "pw"})), "the secret by its name: {script}");
    let replay = finished(&stack, script["job"].clone()).await;
    assert_eq!(replay["status"], "COMPLETED", "{replay}");
    let replayed: Value = serde_json::from_slice(&fetch(&replay["outputs"]["result"]).await).unwrap();
    assert_eq!((&replayed["final_url"], &replayed["title"]), (&result["final_url"], &result["title"]), "{replayed}");
    assert_eq!(result["title"], "Account", "{result}");
    let calls = stack.model.as_ref().unwrap().server.records().len();
    assert_eq!(calls, 3, "the replay called no model");

    // On Anthropic, with the tenant's own key, one turn allowed: the model only looked.
    let job = finished(
        &stack,
        json!({"goal": "Sign in as alice", "start_url": desk, "secrets": ["pw"], "limits": {"max_steps": 1}, "options": big,
               "model": {"provider": "anthropic", "id": testenv::model::ANTHROPIC_MODEL, "api_key_secret": STAND_IN_KEY_SECRET}}),
    )
    .await;
    assert_eq!((job["status"].as_str(), job["error"]["code"].as_str()), (Some("FAILED"), Some("STEP_LIMIT")), "{job}");
    let result: Value = serde_json::from_slice(&fetch(&job["outputs"]["result"]).await).unwrap();
    assert_eq!(result["trajectory"].as_array().unwrap().len(), 1, "the turns it took are kept: {result}");
    assert!(job["outputs"]["screenshot"].is_string(), "the page is captured: {job}");

    // An answer the schema refuses.
    let job = finished(&stack, json!({"goal": "Sign in as alice", "start_url": desk, "secrets": ["pw"], "output_schema": schema("^Goodbye"), "options": big})).await;
    assert_eq!((job["status"].as_str(), job["error"]["code"].as_str()), (Some("FAILED"), Some("ANSWER_INVALID")), "{job}");
    assert!(job["error"]["message"].as_str().unwrap().contains("/greeting"), "{job}");
    // Sign in, then a table into the schema.
    let rows = json!({"type": "object", "required": ["invoices"], "properties": {"invoices": {"type": "array", "minItems": 3, "items": {"type": "object", "required": ["number", "amount"]}}}});
    let job = finished(&stack, json!({"goal": "Sign in as alice and list the invoices", "start_url": desk, "secrets": ["pw"], "output_schema": rows, "options": big})).await;
    assert_eq!(job["status"], "COMPLETED", "{job}");
    let want: Vec<Value> = (1..=3).map(|i| json!({"number": format!("INV-10{i}"), "amount": 10.0 + f64::from(i)})).collect();
    assert_eq!(job["answer"], json!({"invoices": want}), "{job}");

    // Scroll to find the next page's link, page by page, until the item is there; the script
    // redoes it by the links' ids (the scrolls are left out: a click finds its element).
    let first = format!("http://{}/invoices?page=1", stack.fixture);
    let job = finished(&stack, json!({"goal": "Find invoice INV-302 and give its amount", "start_url": first, "options": big, "output_schema": {"type": "object", "required": ["number", "amount"]}})).await;
    assert_eq!(job["answer"], json!({"number": "INV-302", "amount": 32.0}), "{job}");
    let result: Value = serde_json::from_slice(&fetch(&job["outputs"]["result"]).await).unwrap();
    let actions: Vec<&str> = result["trajectory"].as_array().unwrap().iter().flat_map(|t| t["actions"].as_array().unwrap()).filter_map(|a| a["input"]["action"].as_str()).collect();
    assert!(actions.contains(&"scroll") && actions.iter().filter(|a| **a == "left_click").count() == 2, "{actions:?}");
    let steps = &result["script"]["job"]["steps"];
    assert_eq!(steps[1], json!({"action": "click", "selector": "#next"}), "{}", result["script"]);
    let replay = finished(&stack, result["script"]["job"].clone()).await;
    let replayed: Value = serde_json::from_slice(&fetch(&replay["outputs"]["result"]).await).unwrap();
    assert_eq!((replayed["final_url"].as_str(), replayed["title"].as_str()), (result["final_url"].as_str(), Some("Invoices, page 3")));

    // A page that tells the model to open the instance metadata address: the model obeys, the
    // egress guard does not.
    let notice = format!("http://{}/notice", stack.fixture);
    let job = finished(&stack, json!({"goal": "Read the notice and do what the page needs", "start_url": notice, "options": big})).await;
    let result: Value = serde_json::from_slice(&fetch(&job["outputs"]["result"]).await).unwrap();
    assert_eq!(result["trajectory"][1]["actions"][0]["input"]["action"], "left_click", "the model followed the page: {result}");
    let blocked: Vec<&str> = result["blocked_requests"].as_array().unwrap().iter().filter_map(|b| b["target"].as_str()).collect();
    assert!(blocked.iter().any(|t| t.starts_with("169.254.169.254")), "{result}");
    assert_eq!(job["answer"], "The console did not open.", "{job}");

    // A task that cannot be done: the model says so, and the job with it.
    let job = finished(&stack, json!({"goal": "Find my order history; say so if you cannot", "start_url": desk, "options": big})).await;
    assert_eq!((job["status"].as_str(), job["answer"].as_str()), (Some("COMPLETED"), Some("I cannot find an order history on this page.")), "{job}");
    stack.stop(false).await;

    // On a warm slot: its browser started before the job, at the default viewport, behind a guard
    // that knew no job; the job's viewport, egress policy (with the model's host) and secrets
    // reach it at the hand-over.
    let podman = testenv::container::Podman::detect().unwrap_or_else(|e| panic!("{e}"));
    let command = AgentCommand::Container { podman, image: testenv::container::LOCAL_IMAGE.into() };
    let stack = LocalStack::start(Options {
        model_scenario: Some("auto".into()),
        warm_pool: 1,
        provisioning_delay: Duration::from_secs(2),
        tenant_secrets: vec![local_stack::provision::TenantSecret { tenant: "acme".into(), name: "pw".into(), value: password.into() }],
        ..Options::quiet(&["acme"], command)
    })
    .await
    .expect("the local stack starts");
    support::first_slot(&stack).await;
    // Its browser up and waiting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let desk = format!("http://{}/desk", stack.fixture);
    let job = finished(&stack, json!({"goal": "Sign in as alice and tell me the greeting", "start_url": desk, "secrets": ["pw"], "output_schema": schema("^Welcome"), "options": big})).await;
    assert_eq!((job["status"].as_str(), job["warm_start"].as_bool()), (Some("COMPLETED"), Some(true)), "{job}");
    assert_eq!(job["answer"], json!({"greeting": "Welcome, alice"}), "{job}");
    stack.stop(false).await;
}
