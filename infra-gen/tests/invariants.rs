//! Invariants of the synthesized stack that a snapshot cannot show: least privilege, trust,
//! retention, exposure, determinism, and that `generated/` is exactly a fresh synthesis.

use std::collections::{BTreeMap, BTreeSet};

use infra_gen::model::iam::UNSCOPABLE_ACTIONS;
use serde_json::Value;

fn docs() -> BTreeMap<String, Value> {
    infra_gen::build(&infra_gen::AppConfig::default()).unwrap().documents().unwrap()
}

/// Every block of `section` ("resource" or "data") of type `ty`, across files: (name, body).
fn blocks<'a>(docs: &'a BTreeMap<String, Value>, section: &str, ty: &str) -> Vec<(&'a str, &'a Value)> {
    let mut out = Vec::new();
    for doc in docs.values() {
        if let Some(Value::Object(types)) = doc.get(section) {
            if let Some(Value::Object(named)) = types.get(ty) {
                out.extend(named.iter().map(|(n, b)| (n.as_str(), b)));
            }
        }
    }
    out
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_else(|| panic!("`{key}` missing or not a string in {v}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default()
}

/// Policy documents attached to KMS keys: in a key policy `*` means the key itself.
fn key_policy_docs(docs: &BTreeMap<String, Value>) -> BTreeSet<String> {
    blocks(docs, "resource", "aws_kms_key")
        .into_iter()
        .map(|(_, b)| str_of(b, "policy").trim_start_matches("${data.aws_iam_policy_document.").trim_end_matches(".json}").to_string())
        .collect()
}

#[test]
fn no_allow_statement_has_a_wildcard_action() {
    let docs = docs();
    let mut checked = 0;
    for (name, doc) in blocks(&docs, "data", "aws_iam_policy_document") {
        for st in doc["statement"].as_array().unwrap() {
            if st.get("effect").and_then(Value::as_str) == Some("Deny") {
                continue; // a Deny with a wildcard narrows, never broadens
            }
            for action in strings(&st["actions"]) {
                checked += 1;
                assert!(!action.contains('*'), "{name}: wildcard action {action}");
            }
        }
    }
    assert!(checked > 40, "only {checked} actions checked");
}

#[test]
fn star_resources_only_for_actions_aws_cannot_scope() {
    let docs = docs();
    let key_policies = key_policy_docs(&docs);
    assert_eq!(key_policies.len(), 1, "the stack has one key policy");
    let unscopable: BTreeSet<&str> = UNSCOPABLE_ACTIONS.iter().map(|(a, _)| *a).collect();
    for (_, reason) in UNSCOPABLE_ACTIONS {
        assert!(reason.len() > 20, "each unscopable action needs a real reason");
    }
    let mut star_statements = 0;
    for (name, doc) in blocks(&docs, "data", "aws_iam_policy_document") {
        if key_policies.contains(name) {
            continue;
        }
        for st in doc["statement"].as_array().unwrap() {
            let is_deny = st.get("effect").and_then(Value::as_str) == Some("Deny");
            if strings(&st["resources"]).iter().any(|r| r == "*") && !is_deny {
                star_statements += 1;
                for action in strings(&st["actions"]) {
                    assert!(unscopable.contains(action.as_str()), "{name}: {action} on * but it can be scoped");
                }
            }
        }
    }
    assert!(star_statements > 0, "the X-Ray and ECR login statements should have been seen");
}

#[test]
fn every_log_group_has_retention_and_encryption() {
    let docs = docs();
    let groups = blocks(&docs, "resource", "aws_cloudwatch_log_group");
    assert!(groups.len() >= 10, "expected a log group per function plus agent, API and flow logs");
    for (name, g) in groups {
        assert_eq!(str_of(g, "retention_in_days"), "${var.log_retention_days}", "{name}");
        assert!(g.get("kms_key_id").is_some(), "{name} is not encrypted with the stack key");
    }
}

/// Which argument of which resource type uses a role, and the service that must be trusted.
const ROLE_USES: &[(&str, &str, &str)] = &[
    ("aws_lambda_function", "role", "lambda.amazonaws.com"),
    ("aws_ecs_task_definition", "execution_role_arn", "ecs-tasks.amazonaws.com"),
    ("aws_ecs_task_definition", "task_role_arn", "ecs-tasks.amazonaws.com"),
    ("aws_flow_log", "iam_role_arn", "vpc-flow-logs.amazonaws.com"),
    ("aws_api_gateway_account", "cloudwatch_role_arn", "apigateway.amazonaws.com"),
];

#[test]
fn each_role_trusts_only_the_service_that_uses_it_and_has_a_policy() {
    let docs = docs();
    let policies: BTreeSet<String> =
        blocks(&docs, "resource", "aws_iam_role_policy").into_iter().map(|(_, p)| str_of(p, "role").to_string()).collect();
    let roles = blocks(&docs, "resource", "aws_iam_role");
    assert!(roles.len() >= 10);
    for (name, role) in roles {
        // Trusted service, from the trust document.
        let trust_doc = str_of(role, "assume_role_policy")
            .trim_start_matches("${data.aws_iam_policy_document.")
            .trim_end_matches(".json}")
            .to_string();
        let trust = blocks(&docs, "data", "aws_iam_policy_document")
            .into_iter()
            .find(|(n, _)| *n == trust_doc)
            .unwrap_or_else(|| panic!("{name}: trust document {trust_doc} not found"))
            .1;
        let all = trust["statement"].as_array().unwrap();
        // Beside its service, a role may trust only itself (a function that signs links with a
        // session of its own role): the account, narrowed to exactly this role's ARN.
        let (itself, statements): (Vec<&Value>, Vec<&Value>) = all.iter().partition(|s| s["sid"] == "TrustItself");
        for s in &itself {
            let function = names::Function::ALL.iter().find(|f| name == format!("{}_function", f.as_str()));
            assert!(
                function.is_some_and(|f| names::contract::calls(*f).contains(&(names::contract::Action::StsAssumeRole, names::contract::Target::OwnRole))),
                "{name}: trusts itself, but its contract does not assume its own role"
            );
            assert_eq!(strings(&s["actions"]), ["sts:AssumeRole"], "{name}");
            assert_eq!(s["principals"][0]["type"], "AWS", "{name}");
            assert!(strings(&s["principals"][0]["identifiers"])[0].ends_with(":root"), "{name}: {s}");
            assert_eq!(s["condition"][0]["test"], "ArnEquals", "{name}");
            assert_eq!(s["condition"][0]["variable"], "aws:PrincipalArn", "{name}");
            let own = strings(&s["condition"][0]["values"]);
            let physical = str_of(role, "name");
            assert!(own.len() == 1 && own[0].ends_with(&format!(":role/{physical}")), "{name}: trusts {own:?}, not itself ({physical})");
        }
        if name == "model_access" {
            // No service uses it: sessions of it are the process function's (its contract
            // assumes it), trusted as the account narrowed to that function's role.
            assert!(names::contract::calls(names::Function::Process).contains(&(names::contract::Action::StsAssumeRole, names::contract::Target::ModelRole)));
            assert_eq!(statements.len(), 1, "{name}: one trust statement");
            let s = statements[0];
            assert_eq!((s["sid"].as_str(), strings(&s["actions"])), (Some("TrustTheProcessFunction"), vec!["sts:AssumeRole".to_string()]));
            assert!(strings(&s["principals"][0]["identifiers"])[0].ends_with(":root"), "{name}: {s}");
            assert_eq!((s["condition"][0]["test"].as_str(), s["condition"][0]["variable"].as_str()), (Some("ArnEquals"), Some("aws:PrincipalArn")));
            let process = names::Function::Process.role_name("");
            let trusted = strings(&s["condition"][0]["values"]);
            assert!(trusted.len() == 1 && trusted[0].ends_with(&process), "{name} trusts {trusted:?}");
            assert!(policies.contains(&format!("${{aws_iam_role.{name}.id}}")), "{name} has no policy");
            continue;
        }
        assert_eq!(statements.len(), 1, "{name}: one trust statement for its service");
        assert_eq!(strings(&statements[0]["actions"]), ["sts:AssumeRole"], "{name}");
        let principals = statements[0]["principals"].as_array().unwrap();
        assert_eq!(principals.len(), 1, "{name}: one principal");
        assert_eq!(principals[0]["type"], "Service", "{name}");
        let trusted = strings(&principals[0]["identifiers"]);
        assert_eq!(trusted.len(), 1, "{name}: exactly one trusted service");

        // Who uses it.
        let arn = format!("${{aws_iam_role.{name}.arn}}");
        let mut users = Vec::new();
        for (ty, arg, service) in ROLE_USES {
            for (user, body) in blocks(&docs, "resource", ty) {
                if body.get(*arg).and_then(Value::as_str) == Some(arn.as_str()) {
                    users.push((format!("{ty}.{user}"), *service));
                }
            }
        }
        assert_eq!(users.len(), 1, "{name} must be used by exactly one resource, got {users:?}");
        assert_eq!(trusted[0], users[0].1, "{name} trusts {} but is used by {}", trusted[0], users[0].0);
        assert!(policies.contains(&format!("${{aws_iam_role.{name}.id}}")), "{name} has no policy");

        // Confused deputy: a service acting for another account must not get this role, where the
        // service sends the source account when it assumes it (ECS tasks, VPC Flow Logs). Lambda
        // execution roles and API Gateway's account logging role are assumed with no source
        // context AWS documents: a condition there would only stop the service.
        const NO_SOURCE_CONTEXT: [&str; 2] = ["lambda.amazonaws.com", "apigateway.amazonaws.com"];
        if NO_SOURCE_CONTEXT.contains(&trusted[0].as_str()) {
            assert!(statements[0].get("condition").is_none(), "{name}: a condition {} does not meet", trusted[0]);
        } else {
            let conditions = statements[0]["condition"].as_array().unwrap_or_else(|| panic!("{name}: trust without conditions"));
            let account = conditions
                .iter()
                .find(|c| c["variable"] == "aws:SourceAccount")
                .unwrap_or_else(|| panic!("{name}: no aws:SourceAccount in its trust"));
            assert_eq!(account["test"], "StringEquals", "{name}");
            assert_eq!(strings(&account["values"]), [ACCOUNT], "{name}");
            if let Some(arn) = conditions.iter().find(|c| c["variable"] == "aws:SourceArn") {
                assert_eq!(arn["test"], "ArnLike", "{name}");
                for v in strings(&arn["values"]) {
                    assert!(v.contains(&format!(":{ACCOUNT}:")), "{name}: source ARN {v} outside this account");
                }
            }
        }
    }
}

const ACCOUNT: &str = "${data.aws_caller_identity.current.account_id}";

#[test]
fn anyone_principals_are_conditioned() {
    // The one statement that cannot name a principal of ours (see .checkov.yaml, CKV_AWS_283).
    const UNCONDITIONED: &[(&str, &str)] = &[("s3_endpoint_policy", "EcrImageLayers")];
    let docs = docs();
    let mut seen = 0;
    for (name, doc) in blocks(&docs, "data", "aws_iam_policy_document") {
        for st in doc["statement"].as_array().unwrap() {
            // `{"AWS": "*"}` or (gateway endpoint policies, which must use this form) `"*"`.
            let anyone = st["principals"].as_array().into_iter().flatten().any(|p| (p["type"] == "AWS" || p["type"] == "*") && strings(&p["identifiers"]).contains(&"*".to_string()));
            if !anyone || st["effect"] == "Deny" {
                continue;
            }
            seen += 1;
            let sid = str_of(st, "sid");
            if UNCONDITIONED.contains(&(name, sid)) {
                assert!(strings(&st["resources"]).iter().all(|r| r.ends_with("-starport-layer-bucket/*")), "{name}.{sid}: {st}");
                continue;
            }
            assert!(st["condition"].as_array().is_some_and(|c| !c.is_empty()), "{name}.{sid}: principal * without a condition");
        }
    }
    assert!(seen >= 3, "the gateway endpoint policies should have been seen ({seen})");
}

#[test]
fn the_private_subnets_cannot_reach_the_vpc() {
    let docs = docs();
    let vpc = blocks(&docs, "resource", "aws_vpc")[0].1;
    let cidr = str_of(vpc, "cidr_block");
    let acls = blocks(&docs, "resource", "aws_network_acl");
    assert_eq!(acls.len(), 1);
    let (acl_name, acl) = acls[0];
    let private: BTreeSet<String> =
        blocks(&docs, "resource", "aws_subnet").into_iter().filter(|(n, _)| n.starts_with("private_")).map(|(n, _)| format!("${{aws_subnet.{n}.id}}")).collect();
    assert!(acl.get("subnet_ids").is_none(), "subnets are associated apart, after the rules: {acl}");
    let acl_id = format!("${{aws_network_acl.{acl_name}.id}}");
    let rule_blocks: Vec<(&str, &Value)> =
        blocks(&docs, "resource", "aws_network_acl_rule").into_iter().filter(|(_, r)| r["network_acl_id"] == acl_id.as_str()).collect();
    let rule_addresses: BTreeSet<String> = rule_blocks.iter().map(|(n, _)| format!("aws_network_acl_rule.{n}")).collect();
    let rules: Vec<&Value> = rule_blocks.iter().map(|(_, r)| *r).collect();
    // Every private subnet is associated with the ACL, and each association waits for every rule
    // (an ACL without its rules denies everything: no window of it on a subnet).
    let associations: Vec<&Value> =
        blocks(&docs, "resource", "aws_network_acl_association").into_iter().map(|(_, a)| a).filter(|a| a["network_acl_id"] == acl_id.as_str()).collect();
    assert_eq!(associations.iter().map(|a| str_of(a, "subnet_id").to_string()).collect::<BTreeSet<_>>(), private, "the ACL guards every private subnet");
    for a in &associations {
        assert_eq!(strings(&a["depends_on"]).into_iter().collect::<BTreeSet<_>>(), rule_addresses, "{a}");
    }
    for egress in [true, false] {
        let mut side: Vec<&&Value> = rules.iter().filter(|r| r["egress"] == egress).collect();
        side.sort_by_key(|r| r["rule_number"].as_i64());
        // The first rule each way denies every protocol to or from the VPC: nothing after it can
        // let VPC traffic through.
        let first = side[0];
        assert_eq!((first["rule_action"].as_str(), first["protocol"].as_str(), first["cidr_block"].as_str()), (Some("deny"), Some("-1"), Some(cidr)), "egress={egress}");
        for r in &side[1..] {
            assert_eq!(r["rule_action"], "allow");
            assert_eq!(r["protocol"], "tcp", "{r}");
            let (from, to) = (r["from_port"].as_i64().unwrap(), r["to_port"].as_i64().unwrap());
            if egress {
                assert!(from == to && [80, 443].contains(&from), "egress only to HTTP(S): {r}");
            } else {
                assert!(from >= 32768 && to == 65535, "ingress only to ephemeral ports (replies): {r}");
            }
        }
    }
}

#[test]
fn job_uploads_come_through_the_vpc_endpoint() {
    let docs = docs();
    let policy = blocks(&docs, "data", "aws_iam_policy_document").into_iter().find(|(n, _)| *n == "outputs_bucket_policy").unwrap().1;
    let endpoint = "${aws_vpc_endpoint.s3.id}";
    let denies: Vec<&Value> = policy["statement"].as_array().unwrap().iter().filter(|s| s["effect"] == "Deny" && strings(&s["actions"]) == ["s3:PutObject"]).collect();
    assert_eq!(denies.len(), 2, "{policy}");
    for d in &denies {
        assert_eq!(strings(&d["resources"]), ["${aws_s3_bucket.outputs.arn}/jobs/*"]);
        let c = d["condition"].as_array().unwrap();
        assert!(c.iter().any(|c| c["variable"] == "aws:SourceVpce" && c["test"] == "StringNotEquals" && strings(&c["values"]) == [endpoint]), "{d}");
    }
    // Pre-signed links: from the endpoint only, whoever signed them.
    assert!(denies.iter().any(|d| d["condition"].as_array().unwrap().iter().any(|c| c["variable"] == "s3:authType" && strings(&c["values"]) == ["POST", "REST-QUERY-STRING"])));
    // Anything else from elsewhere: only the process function's role.
    let writers = denies.iter().find_map(|d| d["condition"].as_array().unwrap().iter().find(|c| c["variable"] == "aws:PrincipalArn")).unwrap();
    assert_eq!(writers["test"], "ArnNotEquals");
    assert_eq!(strings(&writers["values"]), ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role/${local.name_prefix}-process-function"]);
    let process_role = blocks(&docs, "resource", "aws_iam_role").into_iter().find(|(n, _)| *n == "process_function").unwrap().1;
    assert_eq!(str_of(process_role, "name"), "${local.name_prefix}-process-function", "the ARN above names the role that signs");
}

#[test]
fn the_key_lets_logs_use_it_only_for_this_stacks_groups() {
    let docs = docs();
    let key_policy = key_policy_docs(&docs).into_iter().next().unwrap();
    let doc = blocks(&docs, "data", "aws_iam_policy_document").into_iter().find(|(n, _)| *n == key_policy).unwrap().1;
    let logs = doc["statement"].as_array().unwrap().iter().find(|s| s["principals"][0]["identifiers"][0].as_str().is_some_and(|p| p.starts_with("logs."))).expect("a logs grant");
    let groups = strings(&logs["condition"].as_array().unwrap().iter().find(|c| c["variable"] == "kms:EncryptionContext:aws:logs:arn").unwrap()["values"]);
    assert!(!groups.is_empty());
    let ours: Vec<String> = blocks(&docs, "resource", "aws_cloudwatch_log_group").into_iter().map(|(_, g)| str_of(g, "name").to_string()).collect();
    for g in &groups {
        let name = g.split(":log-group:").nth(1).unwrap();
        assert!(name.contains("${local.name_prefix}") || name.starts_with("API-Gateway-Execution-Logs_"), "{g}: not this stack's");
        assert!(!name.starts_with('*'), "{g}");
    }
    for g in ours {
        assert!(groups.iter().any(|p| glob(p.split(":log-group:").nth(1).unwrap(), &g)), "log group {g} is not covered by the key's logs grant");
    }
}

/// `*` matches any run of characters.
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, tail)) => s.starts_with(head) && (0..=s.len() - head.len()).any(|i| glob(tail, &s[head.len() + i..])),
    }
}

#[test]
fn the_agent_task_has_no_task_role() {
    let docs = docs();
    for (name, td) in blocks(&docs, "resource", "aws_ecs_task_definition") {
        assert!(td.get("task_role_arn").is_none(), "{name}: the container must hold no AWS credentials");
        let defs = str_of(td, "container_definitions");
        assert!(defs.contains("\"readonlyRootFilesystem\" = true"), "{name}: read-only root filesystem");
        assert!(defs.contains(&format!("\"user\" = \"{}\"", names::agent::USER)), "{name}: non-root user");
        assert!(defs.contains("\"memory\" ="), "{name}: container memory (moto requires it)");
    }
}

#[test]
fn every_api_method_requires_an_api_key() {
    let docs = docs();
    let methods = blocks(&docs, "resource", "aws_api_gateway_method");
    assert_eq!(methods.len(), names::routes::ALL.len());
    for (name, m) in methods {
        assert_eq!(m["api_key_required"], true, "{name}");
    }
}

#[test]
fn queue_visibility_is_six_times_the_consumer_timeout() {
    let docs = docs();
    let process = blocks(&docs, "resource", "aws_lambda_function").into_iter().find(|(n, _)| *n == "process").unwrap().1;
    let timeout = process["timeout"].as_i64().unwrap();
    let queue = blocks(&docs, "resource", "aws_sqs_queue").into_iter().find(|(n, _)| *n == "jobs").unwrap().1;
    assert!(queue["visibility_timeout_seconds"].as_i64().unwrap() >= 6 * timeout);
    assert!(str_of(queue, "redrive_policy").contains("\"maxReceiveCount\" = var.max_receive_count"));
}

#[test]
fn buckets_are_private_encrypted_and_tls_only() {
    let docs = docs();
    for (name, _) in blocks(&docs, "resource", "aws_s3_bucket") {
        let id = format!("${{aws_s3_bucket.{name}.id}}");
        let pab = blocks(&docs, "resource", "aws_s3_bucket_public_access_block");
        assert!(pab.iter().any(|(_, b)| b["bucket"] == id.as_str()
            && ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"].iter().all(|k| b[*k] == true)));
        assert!(blocks(&docs, "resource", "aws_s3_bucket_server_side_encryption_configuration").iter().any(|(_, b)| b["bucket"] == id.as_str()));
        assert!(blocks(&docs, "resource", "aws_s3_bucket_policy").iter().any(|(_, b)| b["bucket"] == id.as_str()));
    }
}

#[test]
fn no_null_anywhere() {
    fn walk(v: &Value, path: &str) {
        match v {
            Value::Null => panic!("null at {path}"),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            Value::Object(m) => m.iter().for_each(|(k, x)| walk(x, &format!("{path}.{k}"))),
            _ => {}
        }
    }
    for (file, doc) in docs() {
        walk(&doc, &file);
    }
}

#[test]
fn output_is_deterministic_and_free_of_machine_details() {
    let a = infra_gen::synth().unwrap();
    let b = infra_gen::synth().unwrap();
    assert_eq!(a, b);
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    for (name, text) in &a {
        if name.ends_with(".json") {
            assert!(text.ends_with("}\n"), "{name}: pretty JSON with a trailing newline");
        }
        assert!(!text.contains(env!("CARGO_MANIFEST_DIR")), "{name} contains a machine path");
        assert!(!text.contains(&home), "{name} contains the home directory");
    }
}

#[test]
fn generated_folder_is_a_fresh_synthesis() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../generated");
    let stale = infra_gen::output::stale_files(&dir, &infra_gen::synth().unwrap()).unwrap();
    assert!(stale.is_empty(), "generated/ is stale, run `cargo run -p infra-gen`: {stale:?}");
}

/// Shared names come from the `names` crate; none of them may be typed again as a literal in
/// infra-gen's source. (Names as short as "agent" are left out: they are also logical names.)
#[test]
fn infra_gen_spells_no_shared_name_itself() {
    use names::{env, table};
    let shared = [
        table::TASK_ID, table::TENANT_INDEX, table::TENANT_ID, table::CREATED_AT, table::EXPIRES_AT,
        table::UNFINISHED, table::UNFINISHED_INDEX, table::DEADLINE_AT, table::KEY_TENANT, table::API_KEY_PREFIX, table::LIMITS_PREFIX,
        env::TABLE_NAME, env::QUEUE_URL, env::BUCKET_NAME, env::CLUSTER_ARN, env::TASK_DEFINITION,
        env::SUBNET_IDS, env::SECURITY_GROUP_IDS, env::CONTAINER_NAME, env::LOG_GROUP,
        env::MAX_ATTEMPTS, env::FUNCTION, env::agent::SCRATCH_DIR, env::agent::SEARCH_URL_TEMPLATE,
        names::routes::JOBS, names::routes::JOB, names::routes::JOB_LOGS, names::routes::STAGE,
        names::agent::SCRATCH_MOUNT,
        names::ecs::TASK_STATE_CHANGE, names::bucket::JOBS_PREFIX,
    ];
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files += 1;
                let text = std::fs::read_to_string(&path).unwrap();
                for name in shared {
                    assert!(!text.contains(&format!("\"{name}\"")), "{} spells the shared name {name:?}", path.display());
                }
            }
        }
    }
    assert!(files > 10);
}

/// The functions' roles allow exactly the calls `names::contract::calls` lists (none missing, none
/// unused) on the right resources, plus what every function needs to run (its own log stream,
/// traces, the stack key); and each function gets exactly the environment the contract names.
#[test]
fn functions_get_exactly_their_contract() {
    use names::contract::{calls, env_vars, Target};
    let stack = infra_gen::build(&infra_gen::AppConfig::default()).unwrap();
    let docs = stack.documents().unwrap();
    let index = infra_gen::review::analysis::Index::new(&docs);
    let permissions = infra_gen::review::analysis::permissions(&index);
    let runtime: BTreeSet<&str> = [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    ]
    .into();
    let target_resource = |f: names::Function, t: Target| -> String {
        match t {
            Target::Table => "aws_dynamodb_table.jobs.arn".into(),
            Target::TenantIndex => format!("aws_dynamodb_table.jobs.arn/index/{}", names::table::TENANT_INDEX),
            Target::UnfinishedIndex => format!("aws_dynamodb_table.jobs.arn/index/{}", names::table::UNFINISHED_INDEX),
            Target::JobsQueue => "aws_sqs_queue.jobs.arn".into(),
            Target::Bucket => "aws_s3_bucket.outputs.arn".into(),
            Target::JobObjects => format!("aws_s3_bucket.outputs.arn/{}*", names::bucket::JOBS_PREFIX),
            Target::Manifests => format!("aws_s3_bucket.outputs.arn/{}", names::bucket::manifests_pattern()),
            Target::ErrorReports => format!("aws_s3_bucket.outputs.arn/{}", names::bucket::error_reports_pattern()),
            Target::Results => format!("aws_s3_bucket.outputs.arn/{}", names::bucket::results_pattern()),
            Target::SecretObjects => format!("aws_s3_bucket.outputs.arn/{}*", names::bucket::SECRETS_PREFIX),
            // The bucket, listed only under secrets/ (the grant's s3:prefix condition).
            Target::SecretVersions => "aws_s3_bucket.outputs.arn".into(),
            // The bucket, listed only under slots/.
            Target::SlotVersions => "aws_s3_bucket.outputs.arn".into(),
            Target::ReportAndSlotListing => "aws_s3_bucket.outputs.arn".into(),
            Target::TenantSecrets => ":parameter/var.project_name/var.environment/tenants/*".into(),
            Target::TaskDefinition => "aws_ecs_task_definition.agent.arn_without_revision:*".into(),
            Target::ClusterTasks => ":task/aws_ecs_cluster.main.name/*".into(),
            Target::ExecutionRole => "aws_iam_role.agent_execution.arn".into(),
            Target::AgentLogStreams => "aws_cloudwatch_log_group.agent.arn:log-stream:*".into(),
            Target::WebhookQueue => "aws_sqs_queue.webhooks.arn".into(),
            Target::WebhookDlq => "aws_sqs_queue.webhooks_dlq.arn".into(),
            Target::WebhookSecrets => ":parameter/var.project_name/var.environment/webhooks/*".into(),
            Target::SlotObjects => format!("aws_s3_bucket.outputs.arn/{}*", names::bucket::SLOTS_PREFIX),
            Target::OwnRole => format!("aws_iam_role.{}_function.arn", f.as_str()),
            Target::ModelRole => "aws_iam_role.model_access.arn".into(),
            Target::WakeQueues => format!(":local.name_prefix{}*", names::queue::WAKE_INFIX),
        }
    };
    for f in names::Function::ALL {
        let role = format!("aws_iam_role.{}_function", f.as_str());
        let granted: BTreeSet<(String, String)> = permissions
            .iter()
            .filter(|p| p.principal == role && p.effect == "Allow" && !runtime.contains(p.action.as_str()))
            .map(|p| (p.action.clone(), p.resource.clone()))
            .collect();
        let actions: BTreeSet<&str> = granted.iter().map(|(a, _)| a.as_str()).collect();
        let expected: BTreeSet<&str> = calls(f).iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(actions, expected, "{}: granted actions differ from the contract", f.as_str());
        for (action, target) in calls(f) {
            let want = target_resource(f, *target);
            assert!(
                granted.iter().any(|(a, r)| a == action.as_str() && (r == &want || r.ends_with(&want))),
                "{}: {action} is not granted on {want}; granted: {granted:?}",
                f.as_str()
            );
            // Distinct resources: two targets may be one resource under other conditions (the
            // bucket, listed under secrets/ and under slots/).
            let targets = calls(f).iter().filter(|(a, _)| a == action).map(|(_, t)| target_resource(f, *t)).collect::<BTreeSet<_>>().len();
            assert!(
                granted.iter().filter(|(a, _)| a == action.as_str()).count() == targets,
                "{}: {action} is granted on more than its targets",
                f.as_str()
            );
        }

        let lambda = index.resources.get(&format!("aws_lambda_function.{}", f.as_str())).unwrap();
        let vars: BTreeSet<&str> = lambda["environment"]["variables"].as_object().unwrap().keys().map(String::as_str).collect();
        let mut want: BTreeSet<&str> = env_vars(f).iter().map(|(v, _)| v.name()).collect();
        want.insert(names::env::FUNCTION);
        want.insert(names::env::LOG_LEVEL);
        assert_eq!(vars, want, "{}: environment differs from the contract", f.as_str());
    }
}

/// The review tree reads Terraform JSON back at any revision: it must not lean on the model that
/// wrote the current one.
#[test]
fn the_review_tree_never_touches_the_model() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/review");
    let mut read = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for forbidden in ["crate::model", "crate::constructs", "crate::app", "super::super"] {
            assert!(!text.contains(forbidden), "{} uses {forbidden}", path.display());
        }
        read += 1;
    }
    assert!(read >= 4, "{read} files read");
}

/// What an apply on AWS needs beyond what `plan` checks (issue 23's review of generated/), each
/// held here so that it cannot come back unseen.
#[test]
fn apply_time_choices_hold() {
    let docs = docs();
    // API Gateway assumes the region's logging role with no condition AWS documents it sending,
    // and the account setting waits for the role's policy.
    let trust = blocks(&docs, "data", "aws_iam_policy_document").into_iter().find(|(n, _)| *n == "api_gateway_logging_trust").expect("the logging role's trust").1;
    assert!(trust["statement"].as_array().unwrap().iter().all(|s| s.get("condition").is_none()), "{trust}");
    let account = blocks(&docs, "resource", "aws_api_gateway_account")[0].1;
    assert_eq!(strings(&account["depends_on"]), ["aws_iam_role_policy.api_gateway_logging"], "{account}");
    // EventBridge's invoke permissions are pinned by the rule's ARN alone.
    for (name, p) in blocks(&docs, "resource", "aws_lambda_permission") {
        if p["principal"] == "events.amazonaws.com" {
            assert!(p.get("source_account").is_none() && p["source_arn"].as_str().is_some_and(|a| a.contains("aws_cloudwatch_event_rule")), "{name}: {p}");
        }
    }
    // Zones without Fargate for Linux are never chosen.
    let zones = blocks(&docs, "data", "aws_availability_zones")[0].1;
    assert_eq!(strings(&zones["exclude_zone_ids"]), infra_gen::constructs::network::FARGATE_UNSUPPORTED_ZONE_IDS);
    // A new task definition revision is registered before the old one goes.
    let taskdef = blocks(&docs, "resource", "aws_ecs_task_definition")[0].1;
    assert_eq!(taskdef["lifecycle"]["create_before_destroy"], true, "{taskdef}");
    // The sparse index projects everything, so reading a new attribute never re-creates it.
    let table = blocks(&docs, "resource", "aws_dynamodb_table")[0].1;
    for gsi in table["global_secondary_index"].as_array().unwrap() {
        assert_eq!(gsi["projection_type"], "ALL", "{gsi}");
        assert!(gsi.get("non_key_attributes").is_none(), "{gsi}");
    }
}

/// The secrets handed to an agent leave nothing behind in the versioned bucket, and their links
/// work only from the VPC: the agent's DELETE names the version (the signer may delete versions,
/// the endpoint lets that through), and no version can be read or link used from elsewhere.
#[test]
fn secret_links_delete_versions_and_work_only_through_the_endpoint() {
    let docs = docs();
    let doc = |name: &str| blocks(&docs, "data", "aws_iam_policy_document").into_iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("{name}")).1;
    let statement = |d: &Value, sid: &str| -> Value {
        d["statement"].as_array().unwrap().iter().find(|s| s["sid"] == sid).cloned().unwrap_or_else(|| panic!("no statement {sid} in {d}"))
    };
    let endpoint = statement(doc("s3_endpoint_policy"), "AgentSecrets");
    assert_eq!(strings(&endpoint["actions"]), ["s3:DeleteObjectVersion", "s3:GetObject"], "{endpoint}");
    let bucket = doc("outputs_bucket_policy");
    let reads = statement(bucket, "SecretsReadOnlyThroughTheVpc");
    assert_eq!(strings(&reads["actions"]), ["s3:GetObject", "s3:GetObjectVersion"], "{reads}");
    let links = statement(bucket, "AgentLinksOnlyFromTheVpc");
    assert_eq!(strings(&links["actions"]), ["s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion"], "{links}");
    let resources = strings(&links["resources"]);
    assert!(resources.iter().any(|r| r.ends_with("/slots/*")) && resources.iter().any(|r| r.ends_with("/secrets/*")), "{links}");
    let conditions = links["condition"].as_array().unwrap();
    assert!(conditions.iter().any(|c| c["variable"] == "aws:SourceVpce" && c["test"] == "StringNotEquals"), "{links}");
    assert!(conditions.iter().any(|c| c["variable"] == "s3:authType" && strings(&c["values"]) == ["REST-QUERY-STRING"]), "{links}");
    // The signer of the agent's DELETE (process) and the reconciler may delete versions and list
    // them, only under secrets/.
    for role in ["process_function", "reconcile_function"] {
        let policy = doc(&format!("{role}_policy"));
        let list = statement(policy, "ListSecretVersions");
        assert_eq!(list["condition"][0]["variable"], "s3:prefix", "{list}");
        assert_eq!(strings(&list["condition"][0]["values"]), ["secrets/*"], "{list}");
        let secrets = statement(policy, "JobSecrets");
        assert!(strings(&secrets["actions"]).contains(&"s3:DeleteObjectVersion".to_string()), "{role}: {secrets}");
    }
    // The reconciler lists the versions of the slots' manifests, only under slots/.
    let list = statement(doc("reconcile_function_policy"), "ListSlotVersions");
    assert_eq!(strings(&list["condition"][0]["values"]), ["slots/*"], "{list}");
}

/// Our metrics a metric line of a dashboard or an alarm names: (metric, its dimension names).
fn our_metric(namespace: &str, name: &str, dims: BTreeSet<String>) -> Option<(names::metrics::Metric, BTreeSet<String>)> {
    if namespace != "${var.project_name}/${var.environment}" {
        return None;
    }
    let m = names::metrics::by_name(name).unwrap_or_else(|| panic!("{name} is in our namespace but not in names::metrics"));
    Some((m, dims))
}

fn assert_dimensions(m: names::metrics::Metric, dims: &BTreeSet<String>, where_: &str) {
    let want: BTreeSet<String> = m.dimensions.iter().map(|d| d.to_string()).collect();
    assert_eq!(dims, &want, "{where_}: {} is emitted with dimensions {want:?}, never {dims:?}: CloudWatch would show no data", m.name);
}

/// The dashboard body as CloudWatch's dashboard body structure has it (widgets on the 24-column
/// grid, metric widgets with a region, a view, valid statistics and periods, each line a metric
/// or an expression with a unique id), and every metric of ours it or an alarm names is defined
/// in `names::metrics` with exactly the dimensions its emitters give it.
#[test]
fn the_dashboard_and_the_alarms_read_metrics_the_code_writes() {
    let docs = docs();
    let dashboards = blocks(&docs, "resource", "aws_cloudwatch_dashboard");
    assert_eq!(dashboards.len(), 1);
    // Terraform renders the references inside the body's strings: stand-ins for the check.
    let body = str_of(dashboards[0].1, "dashboard_body");
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("the dashboard body is not JSON: {e}"));
    let widgets = body["widgets"].as_array().expect("widgets");
    assert!(widgets.len() >= 10);
    let stat_ok = |s: &str| ["Sum", "Average", "Maximum", "Minimum", "SampleCount"].contains(&s) || s.strip_prefix('p').and_then(|p| p.parse::<f64>().ok()).is_some_and(|p| (0.0..=100.0).contains(&p));
    let mut seen = BTreeSet::new();
    for w in widgets {
        let (x, y, width, height) = (w["x"].as_u64().unwrap(), w["y"].as_u64().unwrap(), w["width"].as_u64().unwrap(), w["height"].as_u64().unwrap());
        assert!(x + width <= 24 && (1..=24).contains(&width) && (1..=1000).contains(&height) && y < 10_000, "{w}");
        assert_eq!(w["type"], "metric", "{w}");
        let p = &w["properties"];
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()) && p["region"].as_str().is_some_and(|r| r.contains("aws_region")), "{p}");
        assert!(["timeSeries", "singleValue", "gauge", "bar", "pie"].contains(&p["view"].as_str().unwrap()), "{p}");
        assert!(stat_ok(p["stat"].as_str().unwrap()), "{p}");
        let period = p["period"].as_u64().unwrap();
        assert!(period.is_multiple_of(60) && period > 0, "{p}");
        let mut ids = BTreeSet::new();
        for line in p["metrics"].as_array().filter(|m| !m.is_empty()).unwrap_or_else(|| panic!("no metrics: {p}")) {
            let parts = line.as_array().unwrap();
            if let Some(expr) = parts[0].get("expression") {
                let id = parts[0]["id"].as_str().unwrap();
                assert!(id.starts_with(|c: char| c.is_ascii_lowercase()) && ids.insert(id.to_string()), "{line}");
                // SEARCH('{namespace,Dimension} MetricName="Name"', 'stat', period)
                let e = expr.as_str().unwrap();
                let inner = e.strip_prefix("SEARCH('{").unwrap_or_else(|| panic!("{e}"));
                let (schema, rest) = inner.split_once("} MetricName=\"").unwrap();
                let (name, rest) = rest.split_once("\"', '").unwrap();
                assert!(stat_ok(rest.split('\'').next().unwrap()), "{e}");
                let mut schema = schema.rsplit(',');
                let dim = schema.next().unwrap();
                let ns: Vec<&str> = schema.collect();
                let ns: String = ns.into_iter().rev().collect::<Vec<_>>().join(",");
                let (m, dims) = our_metric(&ns, name, [dim.to_string()].into()).unwrap_or_else(|| panic!("a search of another namespace: {e}"));
                assert_dimensions(m, &dims, "dashboard");
                seen.insert(m.name);
                continue;
            }
            let strs: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
            assert!(strs.len() >= 2 && strs.len().is_multiple_of(2), "namespace, name, then dimension pairs: {line}");
            if let Some(opts) = parts.last().filter(|v| v.is_object()) {
                assert!(opts.as_object().unwrap().keys().all(|k| ["stat", "label", "id", "visible", "yAxis", "color", "period"].contains(&k.as_str())), "{line}");
                assert!(stat_ok(opts["stat"].as_str().unwrap_or("Sum")), "{line}");
            }
            let dims: BTreeSet<String> = strs[2..].chunks(2).map(|c| c[0].to_string()).collect();
            if let Some((m, dims)) = our_metric(strs[0], strs[1], dims) {
                assert_dimensions(m, &dims, "dashboard");
                seen.insert(m.name);
            }
        }
    }
    // Every metric the code writes is on the dashboard.
    let all: BTreeSet<&str> = names::metrics::ALL.iter().map(|m| m.name).collect();
    assert_eq!(seen, all, "metrics written but not on the dashboard");

    // The alarms: one metric, or metric math whose lines are metrics of ours or AWS's.
    let alarms = blocks(&docs, "resource", "aws_cloudwatch_metric_alarm");
    let mut ours = 0;
    for (name, a) in &alarms {
        assert!(str_of(a, "alarm_description").contains("Runbook: docs/runbook.md#"), "{name} names no runbook section");
        let lines: Vec<&Value> = match a.get("metric_query") {
            Some(q) => q.as_array().unwrap().iter().filter_map(|q| q.get("metric")).collect(),
            None => vec![*a],
        };
        for l in lines {
            let dims: BTreeSet<String> = l.get("dimensions").and_then(Value::as_object).map(|d| d.keys().cloned().collect()).unwrap_or_default();
            if let Some((m, dims)) = our_metric(str_of(l, "namespace"), str_of(l, "metric_name"), dims) {
                assert_dimensions(m, &dims, name);
                ours += 1;
            }
        }
    }
    assert!(ours >= 6, "{ours} alarm lines read our metrics");
}

/// Every runbook section an alarm names is a section of `docs/runbook.md` (its heading's anchor).
#[test]
fn every_alarm_names_a_section_of_the_runbook() {
    let runbook = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/runbook.md")).unwrap();
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
        .map(|h| h.trim().to_lowercase().replace(' ', "-").chars().filter(|c| c.is_alphanumeric() || *c == '-').collect())
        .collect();
    let docs = docs();
    let alarms = blocks(&docs, "resource", "aws_cloudwatch_metric_alarm");
    assert!(alarms.len() >= 15);
    for (name, a) in alarms {
        let description = str_of(a, "alarm_description");
        let anchor = description.split("docs/runbook.md#").nth(1).unwrap_or_else(|| panic!("{name}: no runbook section in {description:?}"));
        assert!(anchors.contains(anchor), "{name}: docs/runbook.md has no section #{anchor}");
    }
}
