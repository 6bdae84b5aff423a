//! The HTTP API against the emulator: the validation table, tenancy, idempotency and listing.

mod common;

use common::*;
use common::runtime;
use functions::api::ApiRequest;
use serde_json::json;

const ID: &str = "6f1c2b9e-4d3a-4e8f-9a51-0c7d2e6b8f40";

/// One row: a request and what the API must answer (status, error code, field).
struct Row {
    name: &'static str,
    req: ApiRequest,
    status: u16,
    code: Option<&'static str>,
    field: Option<&'static str>,
}

fn post(body: &str) -> ApiRequest {
    request("a", "POST", "/jobs", body)
}

fn with_header(mut r: ApiRequest, k: &str, v: &str) -> ApiRequest {
    r.headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
    r.headers.push((k.into(), v.into()));
    r
}

fn get_req(path: &str, query: &[(&str, &str)]) -> ApiRequest {
    let mut r = request("a", "GET", path, "");
    r.query = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    r
}

fn rows() -> Vec<Row> {
    let long_query = "q".repeat(513);
    let max_query = format!(r#"{{"query": "{}"}}"#, "é".repeat(512));
    let long_url = format!(r#"{{"url": "https://example.com/{}"}}"#, "a".repeat(2048));
    let huge = format!(r#"{{"query": "x", "pad": "{}"}}"#, " ".repeat(names::job::BODY_MAX_BYTES + 1));
    let row = |name, req, status, code, field| Row { name, req, status, code, field };
    vec![
        // Accepted.
        row("plain query", post(r#"{"query": "rust lambda"}"#), 202, None, None),
        row("query at the limit (512 chars, multibyte)", post(&max_query), 202, None, None),
        row("url instead of query", post(r#"{"url": "https://example.com/a?b=c"}"#), 202, None, None),
        row("all options", post(r#"{"query": "x", "options": {"full_page": true, "viewport": {"width": 320, "height": 2160}, "timeout_seconds": 600, "capture_html": true}}"#), 202, None, None),
        row("null options and url", post(r#"{"query": "x", "url": null, "options": null}"#), 202, None, None),
        row("own tenant_id", post(r#"{"query": "x", "tenant_id": "a"}"#), 202, None, None),
        row("content type with charset", with_header(post(r#"{"query": "x"}"#), "content-type", "application/json; charset=utf-8"), 202, None, None),
        // Body shape.
        row("malformed JSON", post(r#"{"query": "#), 400, Some("malformed_json"), None),
        row("empty body", post(""), 400, Some("malformed_json"), None),
        row("array body", post(r#"["query"]"#), 400, Some("malformed_json"), None),
        row("unknown field", post(r#"{"query": "x", "priority": 1}"#), 400, Some("unknown_field"), Some("priority")),
        row("unknown option", post(r#"{"query": "x", "options": {"dark_mode": true}}"#), 400, Some("unknown_field"), Some("options.dark_mode")),
        row("unknown viewport field", post(r#"{"query": "x", "options": {"viewport": {"width": 800, "height": 600, "depth": 1}}}"#), 400, Some("unknown_field"), Some("options.viewport.depth")),
        row("body over 64 KiB", post(&huge), 413, Some("payload_too_large"), None),
        row("not JSON content type", with_header(post(r#"{"query": "x"}"#), "Content-Type", "text/plain"), 415, Some("unsupported_media_type"), None),
        // Types.
        row("query not a string", post(r#"{"query": 42}"#), 400, Some("invalid_type"), Some("query")),
        row("options not an object", post(r#"{"query": "x", "options": []}"#), 400, Some("invalid_type"), Some("options")),
        row("full_page not a bool", post(r#"{"query": "x", "options": {"full_page": "yes"}}"#), 400, Some("invalid_type"), Some("options.full_page")),
        row("timeout a float", post(r#"{"query": "x", "options": {"timeout_seconds": 30.5}}"#), 400, Some("invalid_type"), Some("options.timeout_seconds")),
        row("viewport width a string", post(r#"{"query": "x", "options": {"viewport": {"width": "800", "height": 600}}}"#), 400, Some("invalid_type"), Some("options.viewport.width")),
        row("tenant_id not a string", post(r#"{"query": "x", "tenant_id": 7}"#), 400, Some("invalid_type"), Some("tenant_id")),
        // Values.
        row("neither query nor url", post(r#"{}"#), 400, Some("missing_field"), Some("query")),
        row("both query and url", post(r#"{"query": "x", "url": "https://example.com"}"#), 400, Some("invalid_value"), Some("url")),
        row("empty query", post(r#"{"query": ""}"#), 400, Some("invalid_value"), Some("query")),
        row("whitespace query", post(r#"{"query": "  \t\n "}"#), 400, Some("invalid_value"), Some("query")),
        row("query over 512 chars", post(&format!(r#"{{"query": "{long_query}"}}"#)), 400, Some("invalid_value"), Some("query")),
        row("query with control characters", post(r#"{"query": "a\u0000b"}"#), 400, Some("invalid_value"), Some("query")),
        row("ftp url", post(r#"{"url": "ftp://example.com/file"}"#), 400, Some("invalid_value"), Some("url")),
        row("javascript url", post(r#"{"url": "javascript:alert(1)"}"#), 400, Some("invalid_value"), Some("url")),
        row("file url", post(r#"{"url": "file:///etc/passwd"}"#), 400, Some("invalid_value"), Some("url")),
        row("relative url", post(r#"{"url": "/just/a/path"}"#), 400, Some("invalid_value"), Some("url")),
        row("url with credentials", post(r#"{"url": "https://user:pw@example.com/"}"#), 400, Some("invalid_value"), Some("url")),
        row("url with spaces", post(r#"{"url": "https://exa mple.com/"}"#), 400, Some("invalid_value"), Some("url")),
        row("url too long", post(&long_url), 400, Some("invalid_value"), Some("url")),
        row("viewport too narrow", post(r#"{"query": "x", "options": {"viewport": {"width": 100, "height": 600}}}"#), 400, Some("invalid_value"), Some("options.viewport.width")),
        row("viewport too tall", post(r#"{"query": "x", "options": {"viewport": {"width": 800, "height": 99999}}}"#), 400, Some("invalid_value"), Some("options.viewport.height")),
        row("viewport negative", post(r#"{"query": "x", "options": {"viewport": {"width": -5, "height": 600}}}"#), 400, Some("invalid_value"), Some("options.viewport.width")),
        row("viewport missing height", post(r#"{"query": "x", "options": {"viewport": {"width": 800}}}"#), 400, Some("missing_field"), Some("options.viewport.height")),
        row("timeout too short", post(r#"{"query": "x", "options": {"timeout_seconds": 1}}"#), 400, Some("invalid_value"), Some("options.timeout_seconds")),
        row("timeout too long", post(r#"{"query": "x", "options": {"timeout_seconds": 601}}"#), 400, Some("invalid_value"), Some("options.timeout_seconds")),
        row("timeout huge", post(r#"{"query": "x", "options": {"timeout_seconds": 18446744073709551615}}"#), 400, Some("invalid_value"), Some("options.timeout_seconds")),
        // Steps: every problem named by its path.
        row("steps not an array", post(r#"{"url": "https://x.org", "steps": {}}"#), 400, Some("invalid_type"), Some("steps")),
        row("step not an object", post(r#"{"url": "https://x.org", "steps": ["click"]}"#), 400, Some("invalid_type"), Some("steps[0]")),
        row("step without action", post(r#"{"url": "https://x.org", "steps": [{"selector": "a"}]}"#), 400, Some("missing_field"), Some("steps[0].action")),
        row("unknown action", post(r#"{"url": "https://x.org", "steps": [{"action": "hover", "selector": "a"}]}"#), 400, Some("invalid_value"), Some("steps[0].action")),
        row("unknown step field", post(r#"{"url": "https://x.org", "steps": [{"action": "click", "selector": "a", "button": "left"}]}"#), 400, Some("unknown_field"), Some("steps[0].button")),
        row("step field missing", post(r#"{"url": "https://x.org", "steps": [{"action": "click"}, {"action": "click"}]}"#), 400, Some("missing_field"), Some("steps[0].selector")),
        row("step field of the wrong type", post(r#"{"url": "https://x.org", "steps": [{"action": "click", "selector": "a"}, {"action": "wait_for", "selector": "a", "timeout_ms": "soon"}]}"#), 400, Some("invalid_type"), Some("steps[1].timeout_ms")),
        row("scroll to the top", post(r#"{"url": "https://x.org", "steps": [{"action": "scroll", "to": "top"}]}"#), 400, Some("invalid_value"), Some("steps[0].to")),
        row("step selector empty", post(r#"{"url": "https://x.org", "steps": [{"action": "click", "selector": "a"}, {"action": "click", "selector": "  "}]}"#), 400, Some("invalid_value"), Some("steps[1].selector")),
        row("type with text and secret", post(r#"{"url": "https://x.org", "steps": [{"action": "type", "selector": "input.p", "text": "a", "secret": "pw"}]}"#), 400, Some("invalid_value"), Some("steps[0].secret")),
        row("goto to a file url", post(r#"{"url": "https://x.org", "steps": [{"action": "goto", "url": "file:///etc/passwd"}]}"#), 400, Some("invalid_value"), Some("steps[0].url")),
        row("steps without a first goto", post(r#"{"steps": [{"action": "click", "selector": "a"}]}"#), 400, Some("invalid_value"), Some("steps[0]")),
        row("two files of one name", post(r#"{"url": "https://x.org", "steps": [{"action": "pdf", "name": "a"}, {"action": "pdf", "name": "a"}]}"#), 400, Some("invalid_value"), Some("steps[1].name")),
        row("file name with a path", post(r#"{"url": "https://x.org", "steps": [{"action": "screenshot", "name": "../x"}]}"#), 400, Some("invalid_value"), Some("steps[0].name")),
        row("51 steps", post(&format!(r#"{{"url": "https://x.org", "steps": [{}]}}"#, vec![r#"{"action": "click", "selector": "a"}"#; 51].join(","))), 400, Some("invalid_value"), Some("steps")),
        // Headers and tenancy.
        row("empty Idempotency-Key", with_header(post(r#"{"query": "x"}"#), "Idempotency-Key", ""), 400, Some("invalid_value"), Some("Idempotency-Key")),
        row("Idempotency-Key too long", with_header(post(r#"{"query": "x"}"#), "Idempotency-Key", &"k".repeat(256)), 400, Some("invalid_value"), Some("Idempotency-Key")),
        row("Idempotency-Key with spaces", with_header(post(r#"{"query": "x"}"#), "idempotency-key", "a b"), 400, Some("invalid_value"), Some("Idempotency-Key")),
        row("another tenant_id", post(r#"{"query": "x", "tenant_id": "b"}"#), 403, Some("forbidden"), None),
        row("unknown API key", ApiRequest { api_key_id: Some("nobody".into()), ..post(r#"{"query": "x"}"#) }, 403, Some("forbidden"), None),
        row("no API key", ApiRequest { api_key_id: None, ..post(r#"{"query": "x"}"#) }, 403, Some("forbidden"), None),
        // Paths and parameters.
        row("non-UUID id (status)", get_req("/jobs/not-a-uuid", &[]), 400, Some("invalid_value"), Some("task_id")),
        row("non-UUID id (cancel)", request("a", "DELETE", "/jobs/1234", ""), 400, Some("invalid_value"), Some("task_id")),
        row("non-UUID id (logs)", get_req("/jobs/../logs", &[]), 400, Some("invalid_value"), Some("task_id")),
        row("unknown job", get_req(&format!("/jobs/{ID}"), &[]), 404, Some("not_found"), None),
        row("unknown route", get_req("/tasks", &[]), 404, Some("no_route"), None),
        row("unknown method", request("a", "PATCH", "/jobs", "{}"), 404, Some("no_route"), None),
        row("list limit 0", get_req("/jobs", &[("limit", "0")]), 400, Some("invalid_value"), Some("limit")),
        row("list limit 101", get_req("/jobs", &[("limit", "101")]), 400, Some("invalid_value"), Some("limit")),
        row("list limit not a number", get_req("/jobs", &[("limit", "ten")]), 400, Some("invalid_value"), Some("limit")),
        row("list limit twice", get_req("/jobs", &[("limit", "1"), ("limit", "2")]), 400, Some("invalid_value"), Some("limit")),
        row("list bad status", get_req("/jobs", &[("status", "DONE")]), 400, Some("invalid_value"), Some("status")),
        row("list bad next_token", get_req("/jobs", &[("next_token", "not-hex")]), 400, Some("invalid_value"), Some("next_token")),
        row("list forged next_token", get_req("/jobs", &[("next_token", "7b7d")]), 400, Some("invalid_value"), Some("next_token")),
        row("list unknown parameter", get_req("/jobs", &[("sort", "asc")]), 400, Some("unknown_field"), Some("sort")),
        row("logs limit 0", get_req(&format!("/jobs/{ID}/logs"), &[("limit", "0")]), 400, Some("invalid_value"), Some("limit")),
        row("logs limit 501", get_req(&format!("/jobs/{ID}/logs"), &[("limit", "501")]), 400, Some("invalid_value"), Some("limit")),
        row("logs empty next_token", get_req(&format!("/jobs/{ID}/logs"), &[("next_token", "")]), 400, Some("invalid_value"), Some("next_token")),
        row("logs limit ok but job unknown", get_req(&format!("/jobs/{ID}/logs"), &[("limit", "500")]), 404, Some("not_found"), None),
    ]
}

#[tokio::test]
async fn validation_table() {
    let app = app(&["a", "b"]).await;
    let mut failures = Vec::new();
    for row in rows() {
        let r = call(&app, &row.req).await;
        let code = r.body["error"]["code"].as_str();
        let field = r.body["error"]["field"].as_str();
        if r.status != row.status || code != row.code || field != row.field {
            failures.push(format!(
                "{}: expected {} {:?} {:?}, got {} {}",
                row.name, row.status, row.code, row.field, r.status, r.body
            ));
        }
        if r.status >= 400 {
            let msg = r.body["error"]["message"].as_str().unwrap_or("");
            assert!(!msg.is_empty(), "{}: error without a message", row.name);
            assert!(!msg.contains("dynamodb") && !msg.contains("fn-test"), "{}: leaks internals: {msg}", row.name);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn unknown_fields_are_all_named() {
    let app = app(&["a"]).await;
    let r = call(&app, &post(r#"{"query": "x", "foo": 1, "bar": 2}"#)).await;
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("`foo`") && msg.contains("`bar`"), "{msg}");
}

#[tokio::test]
async fn submit_answers_queued_job_and_stores_it() {
    let app = app(&["a"]).await;
    let r = call(&app, &post(r#"{"query": "  padded query  "}"#)).await;
    assert_eq!(r.status, 202);
    let id = r.body["task_id"].as_str().unwrap();
    assert_eq!(r.body["status"], "QUEUED");
    let created = r.body["created_at"].as_str().unwrap();
    assert!(functions::time::parse_rfc3339(created).is_some(), "{created}");
    let s = get(&app, "a", &format!("/jobs/{id}")).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.body["query"], "padded query");
    assert_eq!(s.body["status"], "QUEUED");
    assert_eq!(s.body["outputs"], json!({}));
    assert_eq!(s.body["options"]["timeout_seconds"], 120);
}

#[tokio::test]
async fn tenants_see_only_their_own_jobs() {
    let (ta, tb) = (unique("ta"), unique("tb"));
    let app = app(&[&ta, &tb]).await;
    let id = submit(&app, &ta, r#"{"query": "mine"}"#).await;
    for path in [format!("/jobs/{id}"), format!("/jobs/{id}/logs")] {
        assert_eq!(get(&app, &tb, &path).await.status, 404, "{path}");
        assert_eq!(get(&app, &ta, &path).await.status, 200, "{path}");
    }
    let cancel = call(&app, &request(&tb, "DELETE", &format!("/jobs/{id}"), "")).await;
    assert_eq!(cancel.status, 404);
    let list_b = get(&app, &tb, "/jobs").await;
    assert_eq!(list_b.body["count"], 0, "{}", list_b.body);
    let list_a = get(&app, &ta, "/jobs").await;
    assert_eq!(list_a.body["jobs"][0]["task_id"], id.as_str());
    // The job is untouched by the other tenant's cancel.
    assert_eq!(get(&app, &ta, &format!("/jobs/{id}")).await.body["status"], "QUEUED");
    // Even a body naming the other tenant is refused, before anything is written.
    let r = call(&app, &request(&ta, "POST", "/jobs", &format!(r#"{{"query": "x", "tenant_id": "{tb}"}}"#))).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn idempotency_key_returns_the_same_job_or_409() {
    let (ta, tb) = (unique("ta"), unique("tb"));
    let app = app(&[&ta, &tb]).await;
    let key = unique("key");
    let with_key = |tenant: &str, body: &str| with_header(request(tenant, "POST", "/jobs", body), "Idempotency-Key", &key);
    let first = call(&app, &with_key(&ta, r#"{"query": "same", "options": {"full_page": true}}"#)).await;
    assert_eq!(first.status, 202);
    // The same request spelled differently is the same request.
    let again = call(&app, &with_key(&ta, r#"{"options": {"full_page": true, "capture_html": false}, "query": " same "}"#)).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.body, first.body);
    let other = call(&app, &with_key(&ta, r#"{"query": "different"}"#)).await;
    assert_eq!(other.status, 409, "{}", other.body);
    assert_eq!(other.body["error"]["code"], "idempotency_conflict");
    // Keys are per tenant.
    let b = call(&app, &with_key(&tb, r#"{"query": "different"}"#)).await;
    assert_eq!(b.status, 202);
    assert_ne!(b.body["task_id"], first.body["task_id"]);
    assert_eq!(get(&app, &ta, "/jobs").await.body["count"], 1);
}

#[tokio::test]
async fn list_pages_newest_first_and_filters_by_status() {
    let t = unique("lister");
    // A clock that moves a millisecond between submits, so every created_at differs.
    let clock = functions::time::Clock::manual(functions::time::now_millis());
    let app = app(&[&t]).await.with_clock(clock.clone());
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(submit(&app, &t, &format!(r#"{{"query": "job {i}"}}"#)).await);
        clock.advance(1);
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let path = match &token {
            Some(t) => format!("/jobs?limit=3&next_token={t}"),
            None => "/jobs?limit=3".to_owned(),
        };
        let r = get(&app, &t, &path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        for j in r.body["jobs"].as_array().unwrap() {
            seen.push(j["task_id"].as_str().unwrap().to_owned());
        }
        match r.body.get("next_token").and_then(|v| v.as_str()) {
            Some(next) => {
                assert_ne!(Some(next), token.as_deref(), "the same token twice");
                token = Some(next.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(seen, ids, "every job once, newest first");

    let cancel = call(&app, &request(&t, "DELETE", &format!("/jobs/{}", ids[2]), "")).await;
    assert_eq!(cancel.status, 200);
    let r = get(&app, &t, "/jobs?status=CANCELLED&limit=100").await;
    assert_eq!(r.body["count"], 1, "{}", r.body);
    assert_eq!(r.body["jobs"][0]["task_id"], ids[2].as_str());
}

#[tokio::test]
async fn enqueue_failure_fails_the_job_and_answers_500_with_request_id() {
    let t = unique("t");
    let mut config = config();
    config.queue_url = format!("{}/{}/no-such-queue", emulator().endpoint, ACCOUNT);
    let app = app_with(config).await;
    common::key_of(&app, &t).await;
    let r = call(&app, &request(&t, "POST", "/jobs", r#"{"query": "x"}"#)).await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "internal_error");
    assert_eq!(r.body["error"]["request_id"], "test-request");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(!msg.contains("sqs") && !msg.contains("queue"), "{msg}");
    let list = get(&app, &t, "/jobs").await;
    assert_eq!(list.body["jobs"][0]["status"], "FAILED", "{}", list.body);
    assert_eq!(list.body["jobs"][0]["error"]["code"], "ENQUEUE_FAILED");
}

/// The real binary under a Lambda runtime API: the API Gateway event decodes, the tenant comes
/// from `requestContext.identity.apiKeyId`, and the answer is an API Gateway proxy response.
#[tokio::test]
async fn bootstrap_binary_serves_api_gateway_events() {
    let t = unique("bin");
    let app = app(&[&t]).await;
    let bin = env!("CARGO_BIN_EXE_functions");
    let submit_env = runtime::function_env(functions::Function::Submit, &app.config);
    let ev = runtime::api_gateway_event("POST", "/jobs", "/jobs", None, &format!("key-{t}"), Some(r#"{"query": "from the binary"}"#));
    let inv = runtime::invoke(bin, &submit_env, ev).await;
    assert!(inv.ok, "{}", inv.response);
    assert_eq!(inv.response["statusCode"], 202, "{}", inv.response);
    let body: serde_json::Value = serde_json::from_str(inv.response["body"].as_str().unwrap()).unwrap();
    let id = body["task_id"].as_str().unwrap().to_owned();

    let status_env = runtime::function_env(functions::Function::Status, &app.config);
    let path = format!("/jobs/{id}");
    let ev = runtime::api_gateway_event("GET", names::routes::JOB, &path, Some(&id), &format!("key-{t}"), None);
    let inv = runtime::invoke(bin, &status_env, ev).await;
    assert_eq!(inv.response["statusCode"], 200, "{}", inv.response);
    let body: serde_json::Value = serde_json::from_str(inv.response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["query"], "from the binary");

    // A route of another function is not served by this one (its role would not allow it).
    let ev = runtime::api_gateway_event("DELETE", names::routes::JOB, &path, Some(&id), &format!("key-{t}"), None);
    let inv = runtime::invoke(bin, &status_env, ev).await;
    assert_eq!(inv.response["statusCode"], 404, "{}", inv.response);
}

/// A submit that stored its job and died before queueing it (its message never sent): the replay
/// with the same Idempotency-Key queues it. Before, the replay answered 202 for a job no message
/// would ever start, until the sweep failed it 30 minutes later.
#[tokio::test]
async fn an_idempotent_replay_queues_a_job_that_was_stored_but_never_queued() {
    let t = unique("replay");
    let app = app_on_queue(&[&t], Some(own_queue("replay").await)).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let req = with_header(request(&t, "POST", "/jobs", r#"{"query": "lost message"}"#), "Idempotency-Key", &unique("key"));
    let first = call(&app, &req).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let id = first.body["task_id"].as_str().unwrap().to_owned();
    // The message is lost, as if the submit had died before sending it.
    let lost = sqs.receive_message().queue_url(&app.queue.url).max_number_of_messages(10).send().await.unwrap();
    assert!(lost.messages().iter().any(|m| m.body().is_some_and(|b| b.contains(&id))));
    for m in lost.messages() {
        sqs.delete_message().queue_url(&app.queue.url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
    }
    let again = call(&app, &req).await;
    assert_eq!((again.status, &again.body), (202, &first.body));
    let queued = sqs.receive_message().queue_url(&app.queue.url).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
    assert!(queued.messages().iter().any(|m| m.body().is_some_and(|b| b.contains(&id))), "the replay queued the job");
}

/// A request's tenant is the one the item beside its API key names (what Terraform writes with
/// the key), read once and kept: a key without one is refused 403 and remembered as such for
/// half a minute (a key used before its item is written); a key's tenant is kept for minutes (a
/// key never changes tenant: a rotation adds a key of its own, with its own item).
#[tokio::test]
async fn a_keys_tenant_is_the_item_beside_it_and_is_kept_for_minutes() {
    use functions::tenants::{KEEP_MS, KEEP_UNKNOWN_MS};
    let t = unique("keyed");
    let clock = functions::time::Clock::manual(functions::time::now_millis());
    let app = app(&[]).await.with_clock(clock.clone());
    let req = request(&t, "GET", "/jobs", "");
    let list = || call(&app, &req);
    let r = list().await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (403, Some("forbidden")), "{}", r.body);
    common::key_of(&app, &t).await;
    assert_eq!(list().await.status, 403, "a key seen without a tenant is remembered as such");
    clock.advance(KEEP_UNKNOWN_MS + 1);
    let r = list().await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Kept: the item gone, the key is still the tenant's until it is read again.
    let ddb = aws_sdk_dynamodb::Client::new(&sdk().await);
    ddb.delete_item()
        .table_name(&app.config.table)
        .key(names::table::TASK_ID, aws_sdk_dynamodb::types::AttributeValue::S(names::table::api_key_key(&format!("key-{t}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(list().await.status, 200);
    clock.advance(KEEP_MS + 1);
    assert_eq!(list().await.status, 403);
}
