//! An API key rotation through the local stack, as an operator runs it: scripts/rotate-key.sh
//! (what `make rotate-key` / `make rotate-key-finish` run before deploying) edits the generations
//! file, and the stack started from that file (as `make local` starts it) serves both of the
//! tenant's keys during the rotation, with the tenant's jobs seen through either, and only the new
//! key after it. The script refuses a rotation out of order.

use std::path::Path;
use std::process::{Command, Output};

use local_stack::provision::read_generations;
use local_stack::runner::AgentCommand;
use local_stack::stack::{workspace_root, LocalStack, Options};
use serde_json::{json, Value};

const TENANT: &str = "acme";
const OTHER: &str = "globex";

fn rotate(file: &Path, args: &[&str]) -> Output {
    Command::new(workspace_root().join("scripts/rotate-key.sh")).args(args).env("KEYS_FILE", file).output().expect("rotate-key.sh runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn start(file: &Path) -> LocalStack {
    let generations = read_generations(file, &[TENANT.to_string(), OTHER.to_string()]).expect("the file the script wrote");
    LocalStack::start(Options { api_key_generations: generations, ..Options::quiet(&[TENANT, OTHER], AgentCommand::Trivial("true".into())) })
    .await
    .expect("the local stack starts")
}

mod support;
use support::call;

fn keys_of<'a>(stack: &'a LocalStack, tenant: &str) -> Vec<&'a str> {
    stack.keys.iter().filter(|(t, _)| t == tenant).map(|(_, k)| k.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotates_without_a_moment_when_the_tenant_has_no_working_key() {
    let dir = std::env::temp_dir().join(format!("rotation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("api-keys.tfvars.json");
    let _ = std::fs::remove_file(&file);

    // Out of order: nothing to finish yet.
    let early = rotate(&file, &["finish", TENANT]);
    assert_eq!(early.status.code(), Some(1), "{}", text(&early.stderr));
    assert!(text(&early.stderr).contains("acme is not rotating"), "{}", text(&early.stderr));
    assert_eq!(rotate(&file, &["start", "Not A Tenant"]).status.code(), Some(2));

    // Start: a second key beside the first.
    let started = rotate(&file, &["start", TENANT]);
    assert!(started.status.success(), "{}", text(&started.stderr));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(written, json!({"api_key_generations": {TENANT: [1, 2]}}));
    let twice = rotate(&file, &["start", TENANT]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(text(&twice.stderr).contains("already rotating"), "{}", text(&twice.stderr));

    let stack = start(&file).await;
    let keys = keys_of(&stack, TENANT);
    assert_eq!(keys, ["local-acme-key", "local-acme-key-g2"]);
    let (old, new) = (keys[0].to_string(), keys[1].to_string());
    // A job submitted with the old key is the tenant's, seen through the new key too; the other
    // tenant sees nothing of it.
    let (code, job) = call(&stack, reqwest::Method::POST, "/jobs", &old, Some(json!({"query": "rotation"}))).await;
    assert_eq!(code, 202, "{job}");
    let id = job["task_id"].as_str().unwrap().to_string();
    let (code, seen) = call(&stack, reqwest::Method::GET, &format!("/jobs/{id}"), &new, None).await;
    assert_eq!((code, seen["task_id"].as_str()), (200, Some(id.as_str())), "{seen}");
    let (code, listed) = call(&stack, reqwest::Method::GET, "/jobs", &new, None).await;
    assert_eq!(code, 200);
    assert!(listed["jobs"].as_array().unwrap().iter().any(|j| j["task_id"] == id.as_str()), "{listed}");
    let (code, _) = call(&stack, reqwest::Method::GET, &format!("/jobs/{id}"), keys_of(&stack, OTHER)[0], None).await;
    assert_eq!(code, 404, "another tenant's key never sees the job");
    stack.stop(false).await;

    // Finish: only the new key.
    let finished = rotate(&file, &["finish", TENANT]);
    assert!(finished.status.success(), "{}", text(&finished.stderr));
    let shown = rotate(&file, &["show"]);
    assert_eq!(text(&shown.stdout), "acme\t2\tsettled\n");
    let stack = start(&file).await;
    assert_eq!(keys_of(&stack, TENANT), ["local-acme-key-g2"]);
    let (code, body) = call(&stack, reqwest::Method::GET, "/jobs", &old, None).await;
    assert_eq!((code, body["message"].as_str()), (403, Some("Forbidden")), "the old key no longer works");
    let (code, _) = call(&stack, reqwest::Method::POST, "/jobs", &new, Some(json!({"query": "after"}))).await;
    assert_eq!(code, 202, "the new key does");
    stack.stop(false).await;

    // A file the Terraform variable's validations would refuse is refused here too.
    std::fs::write(&file, r#"{"api_key_generations": {"acme": [1, 3]}}"#).unwrap();
    let err = read_generations(&file, &[TENANT.to_string()]).unwrap_err();
    assert!(err.contains("two consecutive"), "{err}");
    std::fs::write(&file, r#"{"api_key_generations": {"initech": [1]}}"#).unwrap();
    assert!(read_generations(&file, &[TENANT.to_string()]).unwrap_err().contains("not a tenant"));
    let _ = std::fs::remove_dir_all(&dir);
}
