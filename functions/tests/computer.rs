//! Computer-use jobs in the functions, against the emulator: what the API accepts and shows, and
//! the model credential the process function hands the job: for Bedrock a short-term key minted
//! from a session of the model role, which the emulator's IAM authorizes as Bedrock does (its
//! signature, its session's expiry, the session policy that names the job's model alone); for
//! Anthropic the tenant's own key, from its secrets. Neither is ever in the manifest or the job.

mod common;

use common::*;
use functions::manifest;
use functions::model::TaskId;
use names::goal;
use names::manifest::Manifest;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The job's manifest as its task reads it, and its secrets object (read through its link).
async fn handed_over(app: &functions::App, id: &str) -> (Manifest, String, BTreeMap<String, String>) {
    let job = app.store.get(&TaskId::parse(id).unwrap()).await.unwrap().unwrap();
    let env = manifest::overrides(app, &job).await.unwrap().unwrap();
    let (_, raw) = agent_http("GET", &env[0].1, b"").await;
    let manifest: Manifest = serde_json::from_slice(&raw).unwrap();
    let links = manifest.secrets.clone().expect("the manifest links the secrets");
    let (code, got) = agent_http("GET", &links.get, b"").await;
    assert_eq!(code, 200);
    (manifest, String::from_utf8(raw).unwrap() + &serde_json::to_string(&env).unwrap(), serde_json::from_slice(&got).unwrap())
}

/// What Bedrock answers a call of `model` with `token` (the emulator's IAM decides).
async fn bedrock_answers(token: &str, model: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/_testenv/bedrock", emulator().endpoint))
        .header("content-type", "application/json")
        .body(json!({"token": token, "model": model}).to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_goal_job_gets_the_deployments_model_and_limits_and_shows_what_it_asked() {
    let tenant = unique("goal");
    let app = app(&[&tenant]).await;
    let id = submit(&app, &tenant, r#"{"goal": "Find the cheapest flight to Lisbon"}"#).await;
    let view = get(&app, &tenant, &format!("/jobs/{id}")).await.body;
    assert_eq!(view["goal"], "Find the cheapest flight to Lisbon");
    assert_eq!(view["model"], json!({"provider": "bedrock", "id": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}));
    assert_eq!(view["limits"], json!({"max_steps": 30, "max_tokens": 1000000, "max_cost_usd": 5.0}));
    assert!(view.get("query").is_none() && view.get("steps").is_none(), "{view}");

    let body = json!({
        "goal": "Sign in and read the greeting", "start_url": "https://shop.example.com/desk", "allowed_domains": ["example.com"],
        "secrets": ["pw"], "output_schema": {"type": "object", "required": ["greeting"]},
        "model": {"provider": "anthropic", "id": testenv::model::ANTHROPIC_MODEL, "api_key_secret": "anthropic-key"},
        "limits": {"max_steps": 12, "max_cost_usd": 0.5},
    });
    let id = submit(&app, &tenant, &body.to_string()).await;
    let view = get(&app, &tenant, &format!("/jobs/{id}")).await.body;
    for field in ["goal", "start_url", "allowed_domains", "secrets", "output_schema", "model"] {
        assert_eq!(view[field], body[field], "{field}");
    }
    assert_eq!(view["limits"], json!({"max_steps": 12, "max_tokens": 1000000, "max_cost_usd": 0.5}), "the default for what it did not ask");
}

#[tokio::test]
async fn what_a_goal_job_may_not_ask_is_refused_by_field() {
    let tenant = unique("goalrules");
    let app = app(&[&tenant]).await;
    let over = goal::MAX_LIMITS.max_steps + 1;
    let cases = [
        (json!({"goal": "x", "query": "y"}), "query"),
        (json!({"goal": "x", "steps": [{"action": "goto", "url": "https://x.org"}]}), "steps"),
        (json!({"start_url": "https://x.org"}), "start_url"),
        (json!({"goal": "x", "model": {"provider": "bedrock", "id": "anthropic.claude-opus-4-1-20250805-v1:0"}}), "model"),
        (json!({"goal": "x", "model": {"provider": "openai", "id": "gpt"}}), "model.provider"),
        (json!({"goal": "x", "model": {"provider": "bedrock", "id": "m", "temperature": 1}}), "model.temperature"),
        (json!({"goal": "x", "model": {"provider": "anthropic", "id": testenv::model::ANTHROPIC_MODEL}}), "model.api_key_secret"),
        (json!({"goal": "x", "limits": {"max_steps": over}}), "limits.max_steps"),
        (json!({"goal": "x", "limits": {"max_cost_usd": "cheap"}}), "limits.max_cost_usd"),
        (json!({"goal": "x", "output_schema": {"type": "nonsense"}}), "output_schema"),
        (json!({"goal": "x", "allowed_domains": "example.com"}), "allowed_domains"),
        (json!({"goal": "x", "allowed_domains": ["example.com"], "start_url": "https://elsewhere.org/"}), "start_url"),
        (json!({"goal": "  "}), "goal"),
    ];
    for (body, field) in cases {
        let r = call(&app, &request(&tenant, "POST", "/jobs", &body.to_string())).await;
        assert_eq!((r.status, r.body["error"]["field"].as_str()), (400, Some(field)), "{body}: {}", r.body);
        assert!(!r.body["error"]["message"].as_str().unwrap_or("").is_empty());
    }
    let r = call(&app, &request(&tenant, "POST", "/jobs", &json!({"goal": "x", "limits": {"max_steps": over}}).to_string())).await;
    assert!(r.body["error"]["message"].as_str().unwrap().contains("ceiling"), "{}", r.body);
}

#[tokio::test]
async fn a_bedrock_job_gets_a_key_for_its_model_alone_that_ends_with_its_session() {
    let tenant = unique("bedrock");
    let app = app(&[&tenant]).await;
    let id = submit(&app, &tenant, r#"{"goal": "Read the page"}"#).await;
    let (manifest, handed, secrets) = handed_over(&app, &id).await;
    let grant = manifest.model.expect("the manifest grants the model");
    assert_eq!(grant.endpoint, "https://bedrock-runtime.us-east-1.amazonaws.com");
    assert_eq!(grant.prices, goal::SONNET_4_5_PRICES);
    assert_eq!(secrets.keys().collect::<Vec<_>>(), [goal::BEDROCK_KEY_SECRET], "the key alone, in the secrets object");
    let key = &secrets[goal::BEDROCK_KEY_SECRET];
    assert!(!handed.contains(key.as_str()), "the key is in the secrets object only");

    let model = goal::DEFAULT_BEDROCK_MODEL.strip_prefix("bedrock/").unwrap();
    let (code, body) = bedrock_answers(key, model).await;
    assert_eq!(code, 200, "{body}");
    assert!(body["principal"].as_str().unwrap().ends_with(&format!("/job-{id}")), "a session named after the job: {body}");
    // The model role may invoke any model; the session, only the job's.
    let (code, body) = bedrock_answers(key, "anthropic.claude-opus-4-1-20250805-v1:0").await;
    assert_eq!(code, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("session policy"), "{body}");
    // A key whose signature is not its session's is nobody's.
    let forged = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let raw = String::from_utf8(b64.decode(key.strip_prefix("bedrock-api-key-").unwrap()).unwrap()).unwrap();
        let sig = raw.split("X-Amz-Signature=").nth(1).unwrap()[..64].to_owned();
        format!("bedrock-api-key-{}", b64.encode(raw.replace(&sig, &"0".repeat(64))))
    };
    assert_eq!(bedrock_answers(&forged, model).await.0, 403);
    // The key ends with its session.
    let access_key = {
        use base64::Engine;
        let raw = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(key.strip_prefix("bedrock-api-key-").unwrap()).unwrap()).unwrap();
        let url = url::Url::parse(&format!("https://{raw}")).unwrap();
        let credential = url.query_pairs().find(|(k, _)| k == "X-Amz-Credential").unwrap().1.into_owned();
        credential.split('/').next().unwrap().to_owned()
    };
    testenv::iam::expire_session(&emulator().endpoint, &access_key).await.unwrap();
    let (code, body) = bedrock_answers(key, model).await;
    assert_eq!(code, 403);
    assert!(body["message"].as_str().unwrap().contains("expired"), "{body}");
}

#[tokio::test]
async fn an_anthropic_job_gets_the_tenants_own_key_and_fails_early_without_it() {
    let (tenant, other) = (unique("anthropic"), unique("nokey"));
    let app = app(&[&tenant, &other]).await;
    put_secure(&names::ssm::tenant_secret(&app.config.tenant_secrets_path, &tenant, "anthropic-key"), "sk-ant-tenants-own").await;
    put_secure(&names::ssm::tenant_secret(&app.config.tenant_secrets_path, &tenant, "pw"), "hunter2").await;
    let body = json!({"goal": "Sign in", "secrets": ["pw"], "model": {"provider": "anthropic", "id": testenv::model::ANTHROPIC_MODEL, "api_key_secret": "anthropic-key"}});
    let id = submit(&app, &tenant, &body.to_string()).await;
    let (manifest, handed, secrets) = handed_over(&app, &id).await;
    assert_eq!(manifest.model.unwrap().endpoint, "https://api.anthropic.com");
    assert_eq!(secrets, BTreeMap::from([("anthropic-key".into(), "sk-ant-tenants-own".into()), ("pw".into(), "hunter2".into())]));
    assert!(!handed.contains("sk-ant") && !handed.contains("hunter2"));
    // One upload form per turn the job may take, for its screenshot.
    let turns: Vec<&String> = manifest.uploads.keys().filter(|k| k.starts_with("files/turn-")).collect();
    assert_eq!((turns.len(), turns[0].as_str()), (30, "files/turn-001.png"));

    let id = submit(&app, &other, &body.to_string()).await;
    let job = app.store.get(&TaskId::parse(&id).unwrap()).await.unwrap().unwrap();
    let (code, message) = manifest::overrides(&app, &job).await.unwrap().unwrap_err();
    assert_eq!(code, names::job::ErrorCode::SecretNotFound);
    assert!(message.contains("`anthropic-key`") && message.contains("`pw`"), "{message}");
}
