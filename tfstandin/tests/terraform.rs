//! Terraform itself, through scripts/validate.sh and the stand-in: each crafted breakage fails `validate` with
//! Terraform's own message, a valid configuration validates and plans, and so does the real generated/, whose
//! plan creates exactly the resources infra-gen emitted. Skipped, with a note, only where no terraform exists
//! and this is not CI.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

use testenv::terraform;

/// Without terraform these tests are skipped with a note, except under CI (`CI=true`), where
/// terraform is part of the machine and its absence is a failure.
macro_rules! require_terraform {
    () => {
        if terraform().is_none() {
            assert!(!testenv::is_ci(), "no terraform binary on PATH: Terraform's own checks cannot run (CI=true)");
            // Straight to stderr: the test harness captures eprintln!, and a skip must be seen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "note: no terraform binary on PATH; skipping Terraform's own checks"
            );
            return;
        }
    };
}

struct Run {
    ok: bool,
    output: String,
}

fn validate(dir: &Path, plan: bool) -> Run {
    validate_with(dir, plan, &[])
}

/// `validate` with environment for validate.sh, Terraform (`TF_VAR_*`) and the stand-in.
fn validate_with(dir: &Path, plan: bool, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(root().join("scripts/validate.sh"));
    cmd.envs(env.iter().copied());
    if !plan {
        cmd.arg("--validate-only");
    }
    let out = cmd
        .arg(dir)
        .env(
            "TFSTANDIN_BIN",
            env!("CARGO_BIN_EXE_terraform-provider-aws"),
        )
        .output()
        .expect("scripts/validate.sh runs");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(2),
        "validate.sh could not run:\n{output}"
    );
    Run {
        ok: out.status.success(),
        output,
    }
}

/// A scratch configuration: the provider requirement plus `body` in main.tf.json.
fn config(name: &str, body: &Value) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tfstandin-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let versions = json!({
        "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": "~> 6.0"}}},
        "provider": {"aws": {"region": "eu-west-1"}}
    });
    std::fs::write(dir.join("versions.tf.json"), versions.to_string()).unwrap();
    std::fs::write(
        dir.join("main.tf.json"),
        serde_json::to_string_pretty(body).unwrap(),
    )
    .unwrap();
    dir
}

/// What each breakage is, and the words Terraform answers it with (summary, then detail).
fn crafted() -> Vec<(&'static str, Value, [&'static str; 2])> {
    vec![
        (
            "unknown argument",
            json!({"resource": {"aws_sqs_queue": {"jobs": {"name": "jobs", "nmae": "jobs"}}}}),
            // In JSON syntax Terraform words it so; `.tf` files say "Unsupported argument".
            [
                "Error: Extraneous JSON object property",
                r#"No argument or block type is named "nmae"."#,
            ],
        ),
        (
            "wrong type",
            json!({"resource": {"aws_sqs_queue": {"jobs": {"name": "jobs", "fifo_queue": "maybe"}}}}),
            [
                "Error: Incorrect attribute value type",
                r#"Inappropriate value for attribute "fifo_queue": a bool is required."#,
            ],
        ),
        (
            "wrong collection type",
            json!({"resource": {"aws_sqs_queue": {"jobs": {"name": "jobs", "tags": ["a"]}}}}),
            [
                "Error: Incorrect attribute value type",
                r#"Inappropriate value for attribute "tags": map of string required."#,
            ],
        ),
        (
            "reference to a missing attribute",
            json!({
                "resource": {"aws_sqs_queue": {"jobs": {"name": "jobs"}}},
                "output": {"queue": {"value": "${aws_sqs_queue.jobs.arnn}"}}
            }),
            [
                "Error: Unsupported attribute",
                r#"This object has no argument, nested block, or exported attribute named "arnn"."#,
            ],
        ),
        (
            "missing required argument",
            json!({"resource": {"aws_s3_bucket_versioning": {"v": {"versioning_configuration": {"status": "Enabled"}}}}}),
            [
                "Error: Missing required argument",
                r#"The argument "bucket" is required, but no definition was found."#,
            ],
        ),
        (
            "block given as a value",
            json!({"resource": {"aws_s3_bucket_versioning": {"v": {"bucket": "b", "versioning_configuration": "Enabled"}}}}),
            [
                "Error: Incorrect JSON value type",
                r#"representing the contents"#,
            ],
        ),
        (
            "too many blocks of an at-most-one block",
            json!({"resource": {"aws_s3_bucket_versioning": {"v": {"bucket": "b", "versioning_configuration": [
                {"status": "Enabled"}, {"status": "Suspended"}
            ]}}}}),
            [
                "Error: Too many versioning_configuration blocks",
                r#"No more than 1 "versioning_configuration" blocks are allowed"#,
            ],
        ),
        (
            "a block's argument given at the top level",
            json!({"resource": {"aws_s3_bucket_versioning": {"v": {"bucket": "b", "status": "Enabled"}}}}),
            [
                "Error: Extraneous JSON object property",
                r#"No argument or block type is named "status"."#,
            ],
        ),
        (
            "set-nested block indexed like a list",
            json!({
                "data": {"aws_iam_policy_document": {"d": {"statement": [{
                    "actions": ["s3:GetObject"], "resources": ["*"],
                    "condition": [{"test": "StringEquals", "variable": "aws:SourceAccount", "values": ["1"]}]
                }]}}},
                "output": {"test": {"value": "${data.aws_iam_policy_document.d.statement[0].condition[0].test}"}}
            }),
            [
                "Error: Cannot index a set value",
                r#"Block type "condition" is represented by a set of objects"#,
            ],
        ),
        (
            "unknown resource type",
            json!({"resource": {"aws_sqs_queu": {"jobs": {"name": "jobs"}}}}),
            [
                "Error: Invalid resource type",
                r#"The provider hashicorp/aws does not support resource type "aws_sqs_queu"."#,
            ],
        ),
        (
            // Checked by the stand-in, in Terraform's words: tf-provider cannot put a list's minimum in the schema.
            "missing required block",
            json!({"resource": {"aws_s3_bucket_versioning": {"v": {"bucket": "b"}}}}),
            [
                "Error: Insufficient versioning_configuration blocks",
                r#"At least 1 "versioning_configuration" blocks are required."#,
            ],
        ),
        (
            // In JSON syntax an expression is a "${...}" template; a bare string is a constant.
            "variable validation without ${}",
            json!({"variable": {"n": {"type": "number", "default": 1, "validation": [
                {"condition": "var.n > 0", "error_message": "n must be positive."}
            ]}}}),
            [
                "Error: Invalid variable validation condition",
                r#"The condition for variable "n" must refer to var.n"#,
            ],
        ),
    ]
}

#[test]
fn each_crafted_breakage_fails_validate_with_terraforms_message() {
    require_terraform!();
    let mut failures = Vec::new();
    for (name, body, expected) in crafted() {
        let dir = config(
            &name.replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
            &body,
        );
        let run = validate(&dir, false);
        // Terraform wraps long details; compare with line breaks as spaces.
        let flat = run.output.split_whitespace().collect::<Vec<_>>().join(" ");
        if run.ok || !expected.iter().all(|e| flat.contains(e)) {
            failures.push(format!(
                "{name}: expected failure with {expected:?}, got:\n{}",
                run.output
            ));
        }
        assert!(
            !run.output.contains("development overrides"),
            "{name}: warning not filtered:\n{}",
            run.output
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_valid_configuration_validates_and_plans_with_computed_values_unknown() {
    require_terraform!();
    let body = json!({
        "data": {
            "aws_caller_identity": {"current": {}},
            "aws_region": {"current": {}},
            "aws_availability_zones": {"available": {"state": "available"}},
            "aws_iam_policy_document": {"send": {"statement": [{
                "sid": "Send", "actions": ["sqs:SendMessage"], "resources": ["*"],
                "principals": [{"type": "Service", "identifiers": ["events.amazonaws.com"]}],
                "condition": [{"test": "StringEquals", "variable": "aws:SourceAccount",
                               "values": ["${data.aws_caller_identity.current.account_id}"]}]
            }]}}
        },
        "resource": {
            "aws_sqs_queue": {"jobs": {"name": "jobs-${data.aws_region.current.region}", "fifo_queue": false}},
            "aws_sqs_queue_policy": {"jobs": {"queue_url": "${aws_sqs_queue.jobs.url}",
                                              "policy": "${data.aws_iam_policy_document.send.json}"}},
            "aws_s3_bucket_versioning": {"v": {"bucket": "b", "versioning_configuration": {"status": "Enabled"}}}
        },
        "output": {
            "queue_arn": {"value": "${aws_sqs_queue.jobs.arn}"},
            "zones": {"value": "${data.aws_availability_zones.available.names}"},
            "policy": {"value": "${jsondecode(data.aws_iam_policy_document.send.json).Statement[0].Condition}"}
        }
    });
    let dir = config("valid", &body);
    let run = validate(&dir, true);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(run.ok, "{}", run.output);
    assert!(
        run.output.contains("Success! The configuration is valid."),
        "{}",
        run.output
    );
    assert!(
        run.output
            .contains("Plan: 3 to add, 0 to change, 0 to destroy."),
        "{}",
        run.output
    );
}

/// Resource instances generated/ declares: one per resource block, one per tenant for the blocks that
/// iterate over `var.tenants` (its default).
fn resources_in_generated() -> usize {
    let mut files: Vec<Value> = Vec::new();
    for entry in std::fs::read_dir(root().join("generated")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".tf.json") {
            files.push(serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap());
        }
    }
    let tenants = files
        .iter()
        .find_map(|f| {
            f.pointer("/variable/tenants/default")?
                .as_array()
                .map(Vec::len)
        })
        .expect("generated/ declares variable tenants with a default");
    let mut count = 0;
    for f in &files {
        for (ty, blocks) in f
            .get("resource")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            for (name, body) in blocks.as_object().unwrap() {
                count += match (body.get("for_each"), body.get("count")) {
                    (None, None) => 1,
                    // One key per tenant while no key rotates (api_key_generations defaults to {}).
                    (Some(e), None) if e.as_str().is_some_and(|e| e.contains("var.tenants") || e == "${local.api_keys}") => {
                        tenants
                    }
                    // `${var.<bool> ? 1 : 0}`: one instance when the variable's default is true.
                    // One per tenant with limits of its own (tenant_limits defaults to {}).
                    (Some(e), None) if e == "${var.tenant_limits}" => 0,
                    // `${var.<x> >= N ? 1 : 0}` and `${var.<x> != "" ? 1 : 0}`: by the default too.
                    (None, Some(c)) if c.as_str().is_some_and(|c| c.ends_with(" ? 1 : 0}")) => {
                        let cond = c.as_str().unwrap().trim_start_matches("${").trim_end_matches(" ? 1 : 0}");
                        let parts: Vec<&str> = cond.split(' ').collect();
                        let var = parts[0].trim_start_matches("var.");
                        let default = files.iter().find_map(|f| f.pointer(&format!("/variable/{var}/default")).cloned());
                        let default = default.unwrap_or_else(|| panic!("{ty}.{name}: count on var.{var}, which has no default"));
                        let on = match parts[1..] {
                            [] => default.as_bool(),
                            [">=", n] => default.as_f64().zip(n.parse::<f64>().ok()).map(|(d, n)| d >= n),
                            ["!=", "\"\""] => default.as_str().map(|d| !d.is_empty()),
                            _ => None,
                        };
                        usize::from(on.unwrap_or_else(|| panic!("{ty}.{name}: teach this test the count {cond}")))
                    }
                    _ => panic!(
                        "{ty}.{name}: teach this test how many instances its count/for_each makes"
                    ),
                };
            }
        }
    }
    count
}

#[test]
fn generated_validates_and_plans_every_resource_infra_gen_emitted() {
    require_terraform!();
    let run = validate(&root().join("generated"), true);
    assert!(run.ok, "terraform rejects generated/:\n{}", run.output);
    let expected = resources_in_generated();
    let want = format!("Plan: {expected} to add, 0 to change, 0 to destroy.");
    assert!(
        run.output.contains(&want),
        "expected `{want}`, got:\n{}",
        run.output
    );
}

/// A plan of generated/ with `vars` (`name`, HCL value) set, as JSON when it succeeds.
fn plan_generated(vars: &[(&str, &str)], extra: &[(&str, &str)]) -> (Run, Option<Value>) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let json = std::env::temp_dir().join(format!("tfstandin-plan-{}-{n}.json", std::process::id()));
    let names: Vec<(String, String)> = vars.iter().map(|(k, v)| (format!("TF_VAR_{k}"), v.to_string())).collect();
    let mut env: Vec<(&str, &str)> = names.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend(extra.iter().copied());
    let path = json.to_string_lossy().to_string();
    env.push(("PLAN_JSON", &path));
    let run = validate_with(&root().join("generated"), true, &env);
    let plan = std::fs::read_to_string(&json).ok().and_then(|t| serde_json::from_str(&t).ok());
    let _ = std::fs::remove_file(&json);
    let plan = if run.ok { plan } else { None };
    (run, plan)
}

fn planned<'a>(plan: &'a Value, ty: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    plan.pointer("/planned_values/root_module/resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |r| r["type"] == ty)
}

#[test]
fn the_region_wide_api_gateway_logging_role_is_optional() {
    require_terraform!();
    let (run, plan) = plan_generated(&[], &[]);
    assert!(run.ok, "{}", run.output);
    assert_eq!(planned(&plan.unwrap(), "aws_api_gateway_account").count(), 1, "managed by default");
    let (run, plan) = plan_generated(&[("manage_api_gateway_account", "false")], &[]);
    assert!(run.ok, "{}", run.output);
    let plan = plan.unwrap();
    assert_eq!(planned(&plan, "aws_api_gateway_account").count(), 0, "another stack sets it");
    // The API still logs, into its own encrypted groups with retention.
    let groups: Vec<String> = planned(&plan, "aws_cloudwatch_log_group").filter_map(|g| g["values"]["name"].as_str().map(String::from)).collect();
    assert!(groups.iter().any(|g| g.starts_with("API-Gateway-Execution-Logs_") && g.ends_with("/v1")) || planned(&plan, "aws_cloudwatch_log_group").any(|g| g["address"] == "aws_cloudwatch_log_group.execution"), "{groups:?}");
}

#[test]
fn a_rotating_tenant_has_two_keys_and_the_plan_refuses_a_bad_rotation() {
    require_terraform!();
    let tenants = ("tenants", r#"["acme", "globex"]"#);
    let (run, plan) = plan_generated(&[tenants, ("api_key_generations", "{acme = [1, 2]}")], &[]);
    assert!(run.ok, "{}", run.output);
    let plan = plan.unwrap();
    let mut keys: Vec<(String, String)> = planned(&plan, "aws_api_gateway_api_key")
        .map(|k| (k["index"].as_str().unwrap().to_string(), k["values"]["name"].as_str().unwrap().to_string()))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [("acme", "infra-demo-dev-acme"), ("acme#2", "infra-demo-dev-acme-g2"), ("globex", "infra-demo-dev-globex")].map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(planned(&plan, "aws_api_gateway_usage_plan_key").count(), 3, "both of acme's keys are metered");
    // After the rotation: only the new key, and the first generation's instance is destroyed.
    let (run, plan) = plan_generated(&[tenants, ("api_key_generations", "{acme = [2]}")], &[]);
    assert!(run.ok, "{}", run.output);
    let mut indexes: Vec<String> = planned(&plan.unwrap(), "aws_api_gateway_api_key").map(|k| k["index"].as_str().unwrap().to_string()).collect();
    indexes.sort();
    assert_eq!(indexes, ["acme#2", "globex"]);

    let nine = format!("{{{}}}", (0..9).map(|i| format!("t{i} = [1, 2]")).collect::<Vec<_>>().join(", "));
    let nine_tenants = format!("[{}]", (0..9).map(|i| format!("\"t{i}\"")).collect::<Vec<_>>().join(", "));
    for (vars, message) in [
        (vec![tenants, ("api_key_generations", "{initech = [1]}")], "every tenant named must be one of var.tenants"),
        (vec![tenants, ("api_key_generations", "{acme = [1, 3]}")], "two consecutive ones"),
        (vec![tenants, ("api_key_generations", "{acme = [0]}")], "a whole number from 1"),
        (vec![tenants, ("api_key_generations", "{acme = [1, 2, 3]}")], "two consecutive ones"),
    ] {
        let (run, _) = plan_generated(&vars, &[]);
        assert!(!run.ok, "{vars:?} must stop the plan:\n{}", run.output);
        let flat = run.output.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(message), "{vars:?}: expected {message:?} in:\n{}", run.output);
    }
    // Any number of tenants may rotate at once (their keys' tenants are items, not environment):
    // nine rotating, eighteen keys, each with its item.
    let (run, plan) = plan_generated(&[("tenants", nine_tenants.as_str()), ("api_key_generations", nine.as_str())], &[]);
    assert!(run.ok, "nine tenants rotating at once plan:\n{}", run.output);
    let plan = plan.unwrap();
    assert_eq!(planned(&plan, "aws_api_gateway_api_key").count(), 18);
    assert_eq!(planned(&plan, "aws_dynamodb_table_item").filter(|r| r["name"] == "api_key").count(), 18, "each key's tenant, beside it");
}

#[test]
fn zones_are_the_first_two_available_and_fewer_than_two_stop_the_plan() {
    require_terraform!();
    // A region whose zones are a, c and d (no b), as in ap-northeast-1 for most accounts.
    let (run, plan) = plan_generated(&[], &[("TFSTANDIN_AVAILABILITY_ZONES", "a,c,d")]);
    assert!(run.ok, "{}", run.output);
    let plan = plan.expect("the plan as JSON");
    let zones: std::collections::BTreeSet<String> =
        planned(&plan, "aws_subnet").map(|s| s["values"]["availability_zone"].as_str().unwrap().to_string()).collect();
    assert_eq!(zones, ["us-east-1a", "us-east-1c"].map(String::from).into(), "subnets in the first two zones");
    let (run, _) = plan_generated(&[], &[("TFSTANDIN_AVAILABILITY_ZONES", "a")]);
    assert!(!run.ok, "a one-zone region must stop the plan:\n{}", run.output);
    assert!(run.output.contains("The VPC needs two available availability zones"), "{}", run.output);
}

#[test]
fn the_plan_refuses_what_aws_would_refuse_at_apply() {
    require_terraform!();
    let refused: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("agent_cpu", "1024"), ("agent_memory", "1024")], "agent_memory does not fit agent_cpu on Fargate"),
        (vec![("agent_cpu", "256"), ("agent_memory", "4096")], "agent_memory does not fit agent_cpu on Fargate"),
        (vec![("agent_cpu", "4096"), ("agent_memory", "8500")], "agent_memory does not fit agent_cpu on Fargate"),
        (vec![("agent_image_tag", "")], "agent_image_tag is empty"),
        (vec![("project_name", "infra--demo")], "project_name: 2-21"),
        (vec![("project_name", "infra-demo-")], "project_name: 2-21"),
        (vec![("project_name", "sthree-jobs")], "project_name: 2-21"),
        (vec![("project_name", "amzn-s3-demo-jobs")], "project_name: 2-21"),
        (vec![("project_name", "a234567890123456789012")], "project_name: 2-21"),
        (vec![("environment", "dev-")], "environment: up to 10"),
        (vec![("environment", "prod--eu")], "environment: up to 10"),
        (vec![("tenants", "[]")], "tenants: at least one"),
        (vec![("tenants", r#"["Acme"]"#)], "tenants: at least one"),
    ];
    // Three plans at a time: each is its own Terraform process and scratch folder.
    for chunk in refused.chunks(3) {
        let runs: Vec<Run> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk.iter().map(|(vars, _)| s.spawn(move || plan_generated(vars, &[]).0)).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for ((vars, message), run) in chunk.iter().zip(runs) {
            assert!(!run.ok, "{vars:?} must stop the plan:\n{}", run.output);
            let flat = run.output.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(flat.contains(message), "{vars:?}: expected {message:?} in:\n{}", run.output);
        }
    }
    // The edges of what is allowed still plan (41 tenants: once over the old cap of 40).
    let forty_one = format!("[{}]", (0..41).map(|i| format!("\"t{i}\"")).collect::<Vec<_>>().join(","));
    for vars in [
        vec![("tenants", forty_one.as_str())],
        vec![("agent_cpu", "256"), ("agent_memory", "512")],
        vec![("agent_cpu", "16384"), ("agent_memory", "122880")],
        vec![("agent_cpu", "4096"), ("agent_memory", "30720")],
        vec![("project_name", "a23456789-123456789-1"), ("environment", "prod-eu-12")],
    ] {
        let (run, _) = plan_generated(&vars, &[]);
        assert!(run.ok, "{vars:?} must plan:\n{}", run.output);
    }
}

#[test]
fn tenant_limits_reach_the_functions_and_the_plan_refuses_bad_ones() {
    require_terraform!();
    let tenants = ("tenants", r#"["acme", "globex"]"#);
    let (run, plan) = plan_generated(
        &[tenants, ("tenant_max_running", "3"), ("tenant_limits", "{acme = {max_running = 20}}"), ("webhook_retry_seconds", "[1, 300, 86400]")],
        &[],
    );
    assert!(run.ok, "{}", run.output);
    let plan = plan.unwrap();
    let env_of = |function: &str, var: &str| -> Value {
        let f = planned(&plan, "aws_lambda_function").find(|f| f["name"] == function).unwrap_or_else(|| panic!("no {function}"));
        let text = f["values"]["environment"][0]["variables"][var].as_str().unwrap_or_else(|| panic!("{function} has no {var}: {f}"));
        serde_json::from_str(text).unwrap()
    };
    // A tenant's own limits are an item of the table (the limits set, as numbers), which the
    // reconciler lists and writes onto its counter; the functions hold the defaults.
    let items: Vec<&Value> = planned(&plan, "aws_dynamodb_table_item").filter(|r| r["name"] == "tenant_limits").collect();
    assert_eq!(items.len(), 1, "one tenant with limits of its own");
    let item: Value = serde_json::from_str(items[0]["values"]["item"].as_str().unwrap()).unwrap();
    assert_eq!(
        item,
        serde_json::json!({
            names::table::TASK_ID: {"S": names::table::limits_key("acme")},
            names::table::UNFINISHED: {"S": names::table::LIMITS_PARTITION},
            names::table::DEADLINE_AT: {"N": "0"},
            names::table::MAX_RUNNING: {"N": "20"},
        })
    );
    // Every API key has its tenant's item beside it (the key id is known only after apply).
    assert_eq!(planned(&plan, "aws_dynamodb_table_item").filter(|r| r["name"] == "api_key").count(), 2, "one per tenant's key");
    for f in ["submit", "process", "reconcile"] {
        assert_eq!(env_of(f, names::env::TENANT_LIMIT_DEFAULTS), serde_json::json!({"max_running": 3, "max_queued": 1000}));
    }
    // The webhook function's retry schedule, as the function reads it.
    let webhook = planned(&plan, "aws_lambda_function").find(|f| f["name"] == "webhook").expect("the webhook function");
    assert_eq!(webhook["values"]["environment"][0]["variables"][names::env::WEBHOOK_RETRY_SECONDS], "1,300,86400", "{webhook}");
    let many = format!("[{}]", (0..21).map(|i| format!("\"t{i}\"")).collect::<Vec<_>>().join(", "));
    let many_limits = format!("{{{}}}", (0..21).map(|i| format!("t{i} = {{max_running = 2}}")).collect::<Vec<_>>().join(", "));
    for (vars, message) in [
        (vec![tenants, ("tenant_limits", "{initech = {max_running = 2}}")], "every tenant named must be one of var.tenants"),
        (vec![tenants, ("tenant_limits", "{acme = {max_running = 0}}")], "max_running is a whole number from 1 to 1000"),
        (vec![tenants, ("tenant_limits", "{acme = {max_queued = 2.5}}")], "max_queued from 1 to 1000000"),
        (vec![tenants, ("tenant_max_running", "0")], "tenant_max_running must be a whole number from 1 to 1000"),
        (vec![("webhook_retry_seconds", "[5, 0]")], "webhook_retry_seconds: at most 20 retries, each a whole number of seconds from 1 to 86400"),
        (vec![("webhook_retry_seconds", "[90000]")], "webhook_retry_seconds: at most 20 retries"),
        (vec![("warm_pool_size", "101")], "warm_pool_size must be a whole number from 0 to 100."),
    ] {
        let (run, _) = plan_generated(&vars, &[]);
        assert!(!run.ok, "{vars:?} must stop the plan:\n{}", run.output);
        let flat = run.output.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(message), "{vars:?}: expected {message:?} in:\n{}", run.output);
    }    // No cap on how many tenants have limits of their own (their items are not in any 4 KB).
    let (run, _) = plan_generated(&[("tenants", many.as_str()), ("tenant_limits", many_limits.as_str())], &[]);
    assert!(run.ok, "21 tenants with limits of their own plan:\n{}", run.output);
}
