//! Every IAM policy document of generated/ through an IAM policy linter that knows each action's
//! resource types and condition keys (parliament, from PyPI): references rendered to plausible
//! ARNs (account 123456789012, us-east-1, the default names), each document written as the JSON
//! AWS would evaluate, and every finding either fixed or accepted with its reason in
//! `iam-lint-accepted.txt` (like checkov's skips). A grant AWS would never match fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use testenv::taskdef::{read_dir, Evaluator};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = testenv::events::ACCOUNT_ID;

fn parliament() -> PathBuf {
    let p = testenv::venv_bin(&testenv::root()).join("parliament");
    assert!(p.exists(), "{} is missing: make test installs it (scripts/tools.sh python)", p.display());
    p
}

/// The account facts the stack reads from data sources.
fn account_facts() -> BTreeMap<String, Value> {
    [
        ("data.aws_region.current.region", REGION),
        ("data.aws_region.current.name", REGION),
        ("data.aws_partition.current.partition", "aws"),
        ("data.aws_partition.current.dns_suffix", "amazonaws.com"),
        ("data.aws_caller_identity.current.account_id", ACCOUNT),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
    .collect()
}

/// Plausible values for the attributes policies refer to, from each resource's evaluated name.
fn known(files: &BTreeMap<String, Value>, eval: &Evaluator) -> BTreeMap<String, Value> {
    let mut k = account_facts();
    let s = |v: String| Value::String(v);
    for doc in files.values() {
        for (ty, blocks) in doc.get("resource").and_then(Value::as_object).into_iter().flatten() {
            for (name, body) in blocks.as_object().into_iter().flatten() {
                let arg = |a: &str| body.get(a).and_then(|v| eval.value(a, v).ok()).and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| name.clone());
                let at = |attr: &str| format!("{ty}.{name}.{attr}");
                let arn = |service: &str, rest: String| s(format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{rest}"));
                match ty.as_str() {
                    "aws_sqs_queue" => {
                        k.insert(at("arn"), arn("sqs", arg("name")));
                        k.insert(at("url"), s(format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{}", arg("name"))));
                    }
                    "aws_dynamodb_table" => {
                        k.insert(at("arn"), arn("dynamodb", format!("table/{}", arg("name"))));
                    }
                    "aws_s3_bucket" => {
                        k.insert(at("arn"), s(format!("arn:aws:s3:::{}", arg("bucket"))));
                        k.insert(at("bucket"), s(arg("bucket")));
                        k.insert(at("id"), s(arg("bucket")));
                    }
                    "aws_ecs_cluster" => {
                        k.insert(at("arn"), arn("ecs", format!("cluster/{}", arg("name"))));
                        k.insert(at("name"), s(arg("name")));
                    }
                    "aws_ecs_task_definition" => {
                        k.insert(at("arn_without_revision"), arn("ecs", format!("task-definition/{}", arg("family"))));
                    }
                    "aws_iam_role" => {
                        k.insert(at("arn"), s(format!("arn:aws:iam::{ACCOUNT}:role/{}", arg("name"))));
                    }
                    "aws_cloudwatch_log_group" => {
                        k.insert(at("arn"), arn("logs", format!("log-group:{}", arg("name"))));
                        k.insert(at("name"), s(arg("name")));
                    }
                    "aws_kms_key" => {
                        k.insert(at("arn"), arn("kms", "key/1234abcd-12ab-34cd-56ef-1234567890ab".into()));
                    }
                    "aws_ecr_repository" => {
                        k.insert(at("arn"), arn("ecr", format!("repository/{}", arg("name"))));
                    }
                    "aws_sns_topic" => {
                        k.insert(at("arn"), arn("sns", arg("name")));
                    }
                    "aws_api_gateway_rest_api" => {
                        k.insert(at("id"), s("a1b2c3d4e5".into()));
                        k.insert(at("execution_arn"), arn("execute-api", "a1b2c3d4e5".into()));
                    }
                    "aws_lambda_function" => {
                        k.insert(at("arn"), arn("lambda", format!("function:{}", arg("function_name"))));
                    }
                    "aws_cloudwatch_event_rule" => {
                        k.insert(at("arn"), arn("events", format!("rule/{}", arg("name"))));
                    }
                    "aws_vpc" => {
                        k.insert(at("id"), s("vpc-0123456789abcdef0".into()));
                    }
                    "aws_vpc_endpoint" => {
                        k.insert(at("id"), s(format!("vpce-0123456789abcdef{}", name.len() % 10)));
                    }
                    _ => {}
                }
            }
        }
    }
    k
}

/// Accepted findings: `<document> <ISSUE_CODE>  # why`, one per line.
fn accepted() -> BTreeSet<(String, String)> {
    include_str!("iam-lint-accepted.txt")
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(char::is_whitespace).map(|(d, c)| (d.to_string(), c.trim().to_string())))
        .collect()
}

#[test]
fn every_policy_document_passes_the_iam_linter() {
    let files = read_dir(&testenv::root().join("generated")).unwrap();
    // Twice: a name may hold another resource's attribute (the execution log group holds the
    // API's id), known only after the first pass.
    let base = Evaluator::new(&files, &BTreeMap::new()).with_known(account_facts());
    let first = Evaluator::new(&files, &BTreeMap::new()).with_known(known(&files, &base));
    let eval = Evaluator::new(&files, &BTreeMap::new()).with_known(known(&files, &first));
    let dir = std::env::temp_dir().join(format!("iam-lint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Trust policies (a role's assume_role_policy) are not what the linter reads: they have no
    // Resource by design; the invariants hold each to exactly one service.
    let trust: BTreeSet<String> = files
        .values()
        .filter_map(|d| d.pointer("/resource/aws_iam_role").and_then(Value::as_object))
        .flatten()
        .filter_map(|(_, role)| role["assume_role_policy"].as_str())
        .filter_map(|p| p.strip_prefix("${data.aws_iam_policy_document.").and_then(|p| p.strip_suffix(".json}")))
        .map(str::to_owned)
        .collect();
    assert!(trust.len() >= 9, "trust policies found: {trust:?}");
    let mut written = 0;
    for doc in files.values() {
        for (name, body) in doc.pointer("/data/aws_iam_policy_document").and_then(Value::as_object).into_iter().flatten() {
            if trust.contains(name) {
                continue;
            }
            let rendered = eval.value(name, body).unwrap_or_else(|e| panic!("{name}: {e}"));
            let text = serde_json::to_string_pretty(&testenv::iam::render(&rendered)).unwrap();
            assert!(!text.contains("<aws_") && !text.contains("<data."), "{name}: a reference without a plausible value:\n{text}");
            std::fs::write(dir.join(format!("{name}.json")), text).unwrap();
            written += 1;
        }
    }
    assert!(written >= 12, "only {written} policy documents");
    let out = Command::new(parliament()).args(["--directory"]).arg(&dir).args(["--json", "--include-community-auditors"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut findings = BTreeSet::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        let f: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("parliament output ({e}): {line}"));
        let file = f["location"]["filepath"].as_str().unwrap_or_default();
        let doc = std::path::Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        findings.insert((doc, f["issue"].as_str().unwrap_or_default().to_string(), f.to_string()));
    }
    let accepted = accepted();
    let new: Vec<&String> = findings.iter().filter(|(d, c, _)| !accepted.contains(&(d.clone(), c.clone()))).map(|(_, _, f)| f).collect();
    assert!(new.is_empty(), "IAM linter findings (fix them, or accept each in iam-lint-accepted.txt with its reason):\n{}", new.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"));
    let stale: Vec<&(String, String)> = accepted.iter().filter(|(d, c)| !findings.iter().any(|(fd, fc, _)| fd == d && fc == c)).collect();
    assert!(stale.is_empty(), "accepted findings that no longer occur (drop them): {stale:?}");
    eprintln!("iam lint: {written} policy documents, {} findings, all accepted", findings.len());
    let _ = std::fs::remove_dir_all(&dir);
}
