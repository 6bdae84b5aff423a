//! What `terraform plan` against the stand-in cannot see and AWS rejects at apply (or after it),
//! held as invariants over the synthesized JSON: unique Lambda permission statement ids per
//! function, Fargate's CPU/memory table, names within every service's rules for the longest and
//! oddest values the variable validations allow, and every function's environment within Lambda's
//! 4 KB at the tenant cap. `make -n deploy` is checked for one region and the architecture in the
//! image tag. (tfstandin/tests/terraform.rs plans the failing cases through Terraform itself.)

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

fn docs() -> BTreeMap<String, Value> {
    infra_gen::build(&infra_gen::AppConfig::default()).unwrap().documents().unwrap()
}

fn resources<'a>(docs: &'a BTreeMap<String, Value>, ty: &str) -> Vec<(&'a str, &'a Value)> {
    docs.values()
        .filter_map(|d| d.pointer(&format!("/resource/{ty}")).and_then(Value::as_object))
        .flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), v)))
        .collect()
}

fn variable<'a>(docs: &'a BTreeMap<String, Value>, name: &str) -> &'a Value {
    docs.values().find_map(|d| d.pointer(&format!("/variable/{name}"))).unwrap_or_else(|| panic!("no variable {name}"))
}

#[test]
fn lambda_permission_statement_ids_are_unique_per_function() {
    let docs = docs();
    let mut seen = BTreeSet::new();
    let permissions = resources(&docs, "aws_lambda_permission");
    for (name, p) in &permissions {
        let key = (p["function_name"].as_str().unwrap().to_string(), p["statement_id"].as_str().unwrap().to_string());
        assert!(seen.insert(key.clone()), "{name}: {key:?} is used twice; the second create fails at apply");
        let id = &key.1;
        assert!(id.len() <= 100 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{id}");
    }
    assert!(permissions.len() >= 7, "{} permissions checked", permissions.len());
}

/// Fargate's table as AWS documents it (Linux, platform 1.4), written here independently of the
/// constructs.
fn fargate_pairs() -> BTreeMap<u32, Vec<u32>> {
    let steps = |first: u32, last: u32, step: u32| (first..=last).step_by(step as usize).collect::<Vec<_>>();
    BTreeMap::from([
        (256, vec![512, 1024, 2048]),
        (512, steps(1024, 4096, 1024)),
        (1024, steps(2048, 8192, 1024)),
        (2048, steps(4096, 16384, 1024)),
        (4096, steps(8192, 30720, 1024)),
        (8192, steps(16384, 61440, 4096)),
        (16384, steps(32768, 122880, 8192)),
    ])
}

#[test]
fn the_task_definition_refuses_every_pair_fargate_refuses() {
    use infra_gen::constructs::agent::{FARGATE_RANGES, FARGATE_SIZES};
    let mut emitted: BTreeMap<u32, Vec<u32>> = FARGATE_SIZES.iter().map(|(c, m)| (*c, m.to_vec())).collect();
    for (cpu, first, last, step) in FARGATE_RANGES {
        emitted.insert(*cpu, (*first..=*last).step_by(*step as usize).collect());
    }
    assert_eq!(emitted, fargate_pairs());
    // The precondition holds that table, and the CPU validation exactly its keys.
    let docs = docs();
    let (_, td) = resources(&docs, "aws_ecs_task_definition")[0];
    let condition = td["lifecycle"]["precondition"][0]["condition"].as_str().unwrap();
    for (cpu, first, last, step) in FARGATE_RANGES {
        assert!(condition.contains(&format!("\"{cpu}\" = range({first}, {}, {step})", last + 1)), "{condition}");
    }
    assert!(condition.contains("tostring(var.agent_cpu)") && condition.contains("var.agent_memory"), "{condition}");
    let cpu_rule = variable(&docs, "agent_cpu")["validation"][0]["condition"].as_str().unwrap();
    let listed = fargate_pairs().keys().map(u32::to_string).collect::<Vec<_>>().join(", ");
    assert!(cpu_rule.contains(&format!("[{listed}]")), "{cpu_rule}");
}

/// The regular expression of a variable's validation (`can(regex("...", var.x))`).
fn validation_regex(docs: &BTreeMap<String, Value>, name: &str) -> regex_lite::Regex {
    let condition = variable(docs, name)["validation"][0]["condition"].as_str().unwrap();
    let start = condition.find("regex(\"").unwrap() + 7;
    let end = start + condition[start..].find("\",").unwrap();
    regex_lite::Regex::new(&condition[start..end].replace("\\\\", "\\")).unwrap()
}

/// Whether `value` passes the variable's whole validation, evaluated here as Terraform would: the
/// regex, the length bounds and the reserved prefixes the condition lists.
fn allowed(docs: &BTreeMap<String, Value>, name: &str, value: &str) -> bool {
    let condition = variable(docs, name)["validation"][0]["condition"].as_str().unwrap();
    let max = condition.split("length(var.").filter_map(|p| p.split_once(") <= ")).filter_map(|(_, n)| n.split(|c: char| !c.is_ascii_digit()).next()?.parse::<usize>().ok()).next().unwrap();
    let min = condition.split("length(var.").filter_map(|p| p.split_once(") >= ")).filter_map(|(_, n)| n.split(|c: char| !c.is_ascii_digit()).next()?.parse::<usize>().ok()).next().unwrap_or(1);
    let reserved = condition.split("!startswith(var.").filter_map(|p| p.split('"').nth(1)).any(|prefix| value.starts_with(prefix));
    validation_regex(docs, name).is_match(value) && value.len() >= min && value.len() <= max && !reserved
}

#[test]
fn every_name_the_validations_allow_is_one_aws_accepts() {
    let docs = docs();
    for (name, value, ok) in [
        ("project_name", "infra-demo", true),
        ("project_name", "a1", true),
        ("project_name", "a23456789-123456789-1", true),
        ("project_name", "a", false),
        ("project_name", "a234567890123456789012", false),
        ("project_name", "infra-", false),
        ("project_name", "infra--demo", false),
        ("project_name", "xn--infra", false),
        ("project_name", "sthree-jobs", false),
        ("project_name", "amzn-s3-demo-jobs", false),
        ("project_name", "1infra", false),
        ("project_name", "Infra", false),
        ("environment", "dev", true),
        ("environment", "prod-eu-12", true),
        ("environment", "prod-eu-123", false),
        ("environment", "dev-", false),
        ("environment", "a--b", false),
    ] {
        assert_eq!(allowed(&docs, name, value), ok, "{name} = {value:?}");
    }
    // The longest and oddest prefixes allowed, through every name pattern, against each
    // service's rules.
    let account = "123456789012";
    let bucket_re = regex_lite::Regex::new(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$").unwrap();
    let ecr_re = regex_lite::Regex::new(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$").unwrap();
    let simple_re = regex_lite::Regex::new(r"^[A-Za-z0-9_-]+$").unwrap();
    let mut checked = 0;
    for (project, environment) in [("a23456789-123456789-1", "prod-eu-12"), ("a1", "d"), ("x0-0-0-0-0-0-0-0-0-0", "e-e-e-e-e1")] {
        assert!(allowed(&docs, "project_name", project) && allowed(&docs, "environment", environment));
        let p = names::defaults::name_prefix(project, environment);
        let bucket = names::bucket::name(&p, account);
        assert!(bucket_re.is_match(&bucket) && !bucket.contains("..") && bucket.len() <= 63, "S3 bucket {bucket}");
        assert!(!bucket.starts_with("xn--") && !bucket.ends_with("-s3alias") && !bucket.ends_with("--ol-s3"), "{bucket}");
        let repo = names::agent::repository_name(&p);
        assert!(ecr_re.is_match(&repo) && repo.len() <= 256, "ECR repository {repo}");
        let table = names::table::name(&p);
        assert!(table.len() <= 255 && regex_lite::Regex::new(r"^[A-Za-z0-9_.-]{3,}$").unwrap().is_match(&table), "table {table}");
        for q in [names::queue::jobs_name(&p), names::queue::dlq_name(&p)] {
            assert!(q.len() <= 80 && simple_re.is_match(&q), "SQS queue {q}");
        }
        for f in names::Function::ALL {
            let name = f.name(&p);
            assert!(name.len() <= 64 && simple_re.is_match(&name), "Lambda function {name}");
            checked += 1;
        }
        let cluster = names::agent::cluster_name(&p);
        assert!(cluster.len() <= 255 && simple_re.is_match(&cluster), "ECS cluster {cluster}");
        let family = names::agent::task_family(&p);
        assert!(family.len() <= 255 && simple_re.is_match(&family), "task family {family}");
        // Role names: the prefix plus the longest suffix the constructs add (64 allowed).
        for (_, role) in resources(&docs, "aws_iam_role") {
            let name = role["name"].as_str().unwrap().replace("${local.name_prefix}", &p);
            assert!(name.len() <= 64 && !name.contains("${"), "IAM role {name}");
            checked += 1;
        }
        for (_, rule) in resources(&docs, "aws_cloudwatch_event_rule") {
            let name = rule["name"].as_str().unwrap().replace("${local.name_prefix}", &p);
            assert!(name.len() <= 64 && regex_lite::Regex::new(r"^[.\-_A-Za-z0-9]+$").unwrap().is_match(&name), "event rule {name}");
        }
        for (_, alarm) in resources(&docs, "aws_cloudwatch_metric_alarm") {
            let name = alarm["alarm_name"].as_str().unwrap().replace("${local.name_prefix}", &p);
            assert!(name.len() <= 255, "alarm {name}");
        }
        checked += 1;
    }
    assert!(checked > 30, "{checked}");
}

/// The longest value each function environment variable can hold, with the longest names the
/// validations allow, in the longest-named region and partition (none depends on the tenants).
fn longest_value(var: &str) -> usize {
    let p = names::defaults::name_prefix("a23456789-123456789-1", "prod-eu-12");
    let (partition, region, account) = ("aws-iso-b", "ap-southeast-5", "123456789012");
    let arn = |service: &str, rest: &str| format!("arn:{partition}:{service}:{region}:{account}:{rest}").len();
    match var {
        v if v == names::env::TABLE_NAME => names::table::name(&p).len(),
        v if v == names::env::QUEUE_URL => format!("https://sqs.{region}.amazonaws.com/{account}/{}", names::queue::jobs_name(&p)).len(),
        v if v == names::env::JOB_TTL_DAYS => 5,
        v if v == names::env::BUCKET_NAME => names::bucket::name(&p, account).len(),
        v if v == names::env::LOG_GROUP => names::logs::agent_group(&p).len(),
        v if v == names::env::CLUSTER_ARN => arn("ecs", &format!("cluster/{}", names::agent::cluster_name(&p))),
        // With its revision (ECS keeps up to 1,000,000 per family).
        v if v == names::env::TASK_DEFINITION => arn("ecs", &format!("task-definition/{}:1000000", names::agent::task_family(&p))),
        v if v == names::env::NAME_PREFIX => p.len(),
        v if v == names::env::LINK_SIGNER_ROLE_ARN => format!("arn:{partition}:iam::{account}:role/{}", names::Function::Process.role_name(&p)).len(),
        v if v == names::env::SUBNET_IDS => 2 * "subnet-0123456789abcdef0".len() + 1,
        v if v == names::env::SECURITY_GROUP_IDS => "sg-0123456789abcdef0".len(),
        v if v == names::env::CONTAINER_NAME => names::agent::CONTAINER_NAME.len(),
        v if v == names::env::MAX_ATTEMPTS => 2,
        v if v == names::env::TIMEOUT_GRACE_SECONDS => 5,
        v if v == names::env::FUNCTION => names::Function::ALL.iter().map(|f| f.as_str().len()).max().unwrap(),
        v if v == names::env::LOG_LEVEL => "debug".len(),
        v if v == names::env::TENANT_LIMIT_DEFAULTS => r#"{"max_queued":1000000,"max_running":1000}"#.len(),
        v if v == names::env::TENANT_SECRETS_PATH => names::ssm::tenants_path("a23456789-123456789-1", "prod-eu-12").len(),
        v if v == names::env::WEBHOOK_QUEUE_URL => format!("https://sqs.{region}.amazonaws.com/{account}/{}", names::queue::webhooks_name(&p)).len(),
        v if v == names::env::WEBHOOK_DLQ_URL => format!("https://sqs.{region}.amazonaws.com/{account}/{}", names::queue::webhooks_dlq_name(&p)).len(),
        v if v == names::env::WEBHOOK_SECRETS_PATH => names::ssm::webhooks_path("a23456789-123456789-1", "prod-eu-12").len(),
        // 20 retries of at most 86400 s, comma-separated.
        v if v == names::env::WEBHOOK_RETRY_SECONDS => 20 * 6 - 1,
        v if v == names::env::WARM_POOL_SIZE => 3,
        v if v == names::env::FARGATE_PRICING => r#"{"gb_hour":0.0044450001,"memory_gb":119.999023,"vcpu":16,"vcpu_hour":0.0404800001}"#.len(),
        v if v == names::env::METRICS_NAMESPACE => names::metrics::namespace("a23456789-123456789-1", "prod-eu-12").len(),
        // The most models with the longest ids, prices of many digits, both endpoints at their longest.
        v if v == names::env::COMPUTER_USE => {
            use names::goal::{self, Usd};
            let price = Usd(1_000.000_001);
            let prices = goal::Prices { input: price, output: price, cache_write: price, cache_read: price };
            let models = (0..goal::MAX_MODELS).map(|i| (format!("anthropic/{i}{}", "m".repeat(goal::MODEL_ID_MAX_CHARS - 1)), prices)).collect();
            let limits = goal::Limits { max_steps: 500, max_tokens: 100_000_000, max_cost_usd: Usd(999.999_999) };
            let endpoint = format!("https://{}", "e".repeat(goal::ENDPOINT_MAX_CHARS - 8));
            let s = goal::Settings {
                models,
                default_model: format!("anthropic/0{}", "m".repeat(goal::MODEL_ID_MAX_CHARS - 1)),
                default_limits: limits,
                max_limits: limits,
                endpoints: [("bedrock".into(), endpoint.clone()), ("anthropic".into(), endpoint)].into(),
            };
            serde_json::to_string(&s).unwrap().len()
        }
        v if v == names::env::MODEL_ROLE_ARN => format!("arn:{partition}:iam::{account}:role/{}", names::goal::model_role_name(&p)).len(),
        other => panic!("teach this test the longest value of {other}"),
    }
}

/// Every function's environment at a deployment of 500 tenants with the longest ids (63
/// characters): no variable's value depends on the tenants (their keys and limits are items of
/// the table), so each fits Lambda's 4 KB whatever their number, and the test says by how much.
#[test]
fn every_function_environment_fits_lambdas_4_kb_at_500_tenants() {
    let tenants: Vec<String> = (0..500).map(|i| format!("{i:03}-{}", "t".repeat(59))).collect();
    assert!(tenants.iter().all(|t| t.len() == 63));
    let docs = infra_gen::build(&infra_gen::AppConfig { tenants, ..Default::default() }).unwrap().documents().unwrap();
    let functions = resources(&docs, "aws_lambda_function");
    assert_eq!(functions.len(), names::Function::ALL.len());
    let mut largest = (0, "");
    for (name, f) in functions {
        let vars = f["environment"]["variables"].as_object().unwrap();
        for (k, v) in vars {
            let text = v.to_string();
            for tenant_thing in ["var.tenants", "var.tenant_limits", "var.api_key_generations", "local.api_keys", "aws_api_gateway_api_key"] {
                assert!(!text.contains(tenant_thing), "{name}: {k} depends on the tenants ({tenant_thing}): {text}");
            }
        }
        let size: usize = vars.keys().map(|k| k.len() + longest_value(k)).sum();
        assert!(size <= 4096, "{name}: up to {size} bytes of environment");
        if size > largest.0 {
            largest = (size, name);
        }
    }
    // The tenants' only cap is API Gateway's key quota: the validation checks their form alone.
    let rule = variable(&docs, "tenants")["validation"][0]["condition"].as_str().unwrap().to_string();
    assert!(!rule.contains("<="), "{rule}");
    eprintln!("largest function environment at 500 tenants: {} bytes of 4096 ({}), {} bytes of headroom", largest.0, largest.1, 4096 - largest.0);
}

fn make_n_deploy(vars: &[&str]) -> String {
    let out = Command::new("make")
        .args(["-n", "--no-print-directory", "deploy"])
        .args(vars)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("make runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn deploy_uses_one_region_and_puts_the_architecture_in_the_image_tag() {
    let plan = make_n_deploy(&["AWS_REGION=eu-central-2", "AGENT_ARCH=x86_64", "LAMBDA_ARCH=arm64"]);
    let applies: Vec<&str> = plan.lines().filter(|l| l.contains("terraform -chdir=generated apply")).collect();
    assert_eq!(applies.len(), 2, "{plan}");
    for apply in &applies {
        assert!(apply.contains("-var aws_region=eu-central-2"), "{apply}");
        assert!(apply.contains("-var agent_architecture=x86_64") && apply.contains("-var lambda_architecture=arm64"), "{apply}");
    }
    // Every AWS CLI step (check, push, tag) gets the same region and the agent's architecture.
    let scripts: Vec<&str> = plan.lines().filter(|l| l.contains("scripts/deploy.sh")).collect();
    assert!(scripts.len() >= 3, "{plan}");
    for s in scripts {
        assert!(s.contains("AWS_REGION=eu-central-2") && s.contains("AWS_DEFAULT_REGION=eu-central-2") && s.contains("AGENT_ARCH=x86_64"), "{s}");
    }
    assert!(plan.contains("make build LAMBDA_ARCH=arm64"), "{plan}");
    // The image's layers go to ECR zstd-compressed unless told otherwise.
    let push = plan.lines().find(|l| l.contains("scripts/deploy.sh push-image")).expect("the push step");
    assert!(push.contains("IMAGE_COMPRESSION=zstd"), "{push}");
    assert!(make_n_deploy(&["IMAGE_COMPRESSION=gzip"]).lines().any(|l| l.contains("IMAGE_COMPRESSION=gzip scripts/deploy.sh push-image")));
    // The tag hashes what the image is made of (the binary, the Dockerfile, the base's digest,
    // the compression) and names the architecture.
    let dir = std::env::temp_dir().join(format!("image-tag-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (one, two) = (dir.join("agent-1"), dir.join("agent-2"));
    std::fs::write(&one, b"agent binary one").unwrap();
    std::fs::write(&two, b"agent binary two").unwrap();
    let tag = |bin: &std::path::Path, base: &str, compression: &str, arch: &str| -> String {
        let out = Command::new("scripts/deploy.sh")
            .args(["image-tag-of", bin.to_str().unwrap(), base, compression])
            .env("AWS_REGION", "eu-central-2")
            .env("AGENT_ARCH", arch)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let base = "debian@sha256:aaaa";
    let first = tag(&one, base, "zstd", "x86_64");
    assert!(first.starts_with("agent-") && first.ends_with("-x86_64"), "{first}");
    assert_eq!(tag(&one, base, "zstd", "x86_64"), first, "the same inputs, the same tag");
    for (other, what) in [
        (tag(&two, base, "zstd", "x86_64"), "another binary"),
        (tag(&one, "debian@sha256:bbbb", "zstd", "x86_64"), "another base"),
        (tag(&one, base, "gzip", "x86_64"), "another compression"),
        (tag(&one, base, "zstd", "arm64"), "another architecture"),
    ] {
        assert_ne!(other, first, "{what} gives a new tag");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let defaults = make_n_deploy(&[]);
    assert!(defaults.contains("-var aws_region=us-east-1") && defaults.contains("-var agent_architecture=arm64"), "{defaults}");
    // One stack per region owns API Gateway's account setting; a second one is told not to take it.
    assert!(defaults.lines().filter(|l| l.contains("generated apply")).all(|l| l.contains("-var manage_api_gateway_account=true")), "{defaults}");
    let second = make_n_deploy(&["MANAGE_API_GATEWAY_ACCOUNT=false"]);
    assert!(second.lines().filter(|l| l.contains("generated apply")).all(|l| l.contains("-var manage_api_gateway_account=false")), "{second}");
    // The stack's name, in its resources and in its state's key, is the same as generated/'s defaults.
    let docs = docs();
    for (var, make) in [("project_name", "PROJECT_NAME"), ("environment", "ENVIRONMENT")] {
        let default = variable(&docs, var)["default"].as_str().unwrap().to_string();
        assert!(defaults.contains(&format!("-var {var}={default}")) && defaults.contains(&format!("{make}={default}")), "{var}: {defaults}");
    }
}

/// Every `terraform init` of deploy and destroy gets the S3 backend from deploy.sh, and deploy.sh
/// asks for the Terraform generated/ requires.
#[test]
fn deploy_and_destroy_keep_the_state_in_the_s3_backend() {
    for target in ["deploy", "destroy"] {
        let out = Command::new("make")
            .args(["-n", "--no-print-directory", target, "PROJECT_NAME=shop", "ENVIRONMENT=prod"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .unwrap();
        let plan = String::from_utf8(out.stdout).unwrap();
        let inits: Vec<&str> = plan.lines().filter(|l| l.contains("generated init")).collect();
        assert_eq!(inits.len(), 1, "{target}: {plan}");
        assert!(inits[0].contains("scripts/deploy.sh state-backend") && inits[0].contains("PROJECT_NAME=shop") && inits[0].contains("ENVIRONMENT=prod"), "{}", inits[0]);
        for l in plan.lines().filter(|l| l.contains("generated apply") || l.contains("generated destroy")) {
            assert!(l.contains("-var project_name=shop -var environment=prod"), "{l}");
        }
    }
    let versions: Value = serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../generated/versions.tf.json")).unwrap()).unwrap();
    assert_eq!(versions["terraform"]["required_version"], format!(">= {}", infra_gen::TERRAFORM_MIN_VERSION));
    let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/deploy.sh")).unwrap();
    assert!(script.contains(&format!("TF_MIN={}.0\n", infra_gen::TERRAFORM_MIN_VERSION)), "deploy.sh checks another Terraform version");
    let validate = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/validate.sh")).unwrap();
    let minor = infra_gen::TERRAFORM_MIN_VERSION.split('.').nth(1).unwrap();
    assert!(validate.contains(&format!("minor < {minor}")), "validate.sh checks another Terraform version");
}

/// `terraform destroy` reads deletion protection and force-destroy from state, so `make destroy`
/// first applies `allow_destroy_with_data=true` to every resource that depends on it.
#[test]
fn destroy_first_unprotects_every_resource_that_keeps_data() {
    let docs = docs();
    let mut guarded = std::collections::BTreeSet::new();
    for doc in docs.values() {
        for (ty, blocks) in doc.get("resource").and_then(Value::as_object).into_iter().flatten() {
            for (name, body) in blocks.as_object().unwrap() {
                if body.to_string().contains("var.allow_destroy_with_data") {
                    guarded.insert(format!("{ty}.{name}"));
                }
            }
        }
    }
    assert!(guarded.contains("aws_dynamodb_table.jobs") && guarded.contains("aws_s3_bucket.outputs"), "{guarded:?}");
    let out = Command::new("make")
        .args(["-n", "--no-print-directory", "destroy"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("make runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = plan.lines().collect();
    let apply = lines.iter().position(|l| l.contains("generated apply")).expect("an apply before the destroy");
    let destroy = lines.iter().position(|l| l.contains("generated destroy")).expect("a destroy");
    assert!(apply < destroy, "{plan}");
    for r in &guarded {
        assert!(lines[apply].contains(&format!("-target={r}")), "make destroy's apply does not unprotect {r}: {}", lines[apply]);
    }
}

/// `make rotate-key` edits the generations file, then deploys with it; without the file no
/// deploy step names one.
#[test]
fn rotate_key_deploys_with_the_generations_file() {
    let file = std::env::temp_dir().join(format!("api-keys-{}.tfvars.json", std::process::id()));
    std::fs::write(&file, r#"{"api_key_generations": {"acme": [1, 2]}}"#).unwrap();
    let make = |args: &[&str]| -> String {
        let out = Command::new("make").args(["-n", "--no-print-directory"]).args(args).current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let keys = format!("KEYS_FILE={}", file.display());
    for (target, step) in [("rotate-key", "start"), ("rotate-key-finish", "finish")] {
        let plan = make(&[target, "TENANT=acme", &keys]);
        let lines: Vec<&str> = plan.lines().collect();
        let script = lines.iter().position(|l| l.contains(&format!("scripts/rotate-key.sh {step} acme"))).unwrap_or_else(|| panic!("{plan}"));
        let applies: Vec<usize> = lines.iter().enumerate().filter(|(_, l)| l.contains("generated apply")).map(|(i, _)| i).collect();
        assert_eq!(applies.len(), 2, "{plan}");
        for i in applies {
            assert!(i > script && lines[i].contains(&format!("-var-file={}", file.display())), "{}", lines[i]);
        }
    }
    let missing = format!("KEYS_FILE={}.absent", file.display());
    assert!(!make(&["deploy", &missing]).contains("-var-file"));
    let _ = std::fs::remove_file(&file);
}

/// `make destroy` drains the cluster before Terraform deletes it: the process function (the only
/// one that starts tasks, jobs' and warm slots') is throttled to zero first, every running or
/// pending task is stopped, and the drain waits until ECS reports them STOPPED. Run against stub
/// `aws` and `terraform` commands that log what they are asked.
#[test]
fn destroy_drains_the_cluster_first() {
    let plan = Command::new("make")
        .args(["-n", "--no-print-directory", "destroy"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    let plan = String::from_utf8(plan.stdout).unwrap();
    let drain = plan.lines().position(|l| l.contains("scripts/deploy.sh drain")).unwrap_or_else(|| panic!("no drain step: {plan}"));
    let destroy = plan.lines().position(|l| l.contains("generated destroy")).unwrap();
    let init = plan.lines().position(|l| l.contains("generated init")).unwrap();
    assert!(init < drain && drain < destroy, "init, drain, then destroy: {plan}");

    let dir = std::env::temp_dir().join(format!("drain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("calls.log");
    // The cluster has two tasks; once stopped, ECS lists none (their desired status is STOPPED).
    let aws = r#"#!/usr/bin/env bash
echo "aws $*" >> "$STUB_LOG"
case "$*" in
  *"lambda get-function "*) exit 0 ;;
  *"ecs list-tasks"*"--desired-status RUNNING"*)
    if grep -q "stop-task" "$STUB_LOG"; then echo None; else printf 'arn:task/c1/t1\tarn:task/c1/t2\n'; fi ;;
  *"ecs list-tasks"*) echo None ;;
esac
"#;
    let terraform = "#!/usr/bin/env bash\necho \"terraform $*\" >> \"$STUB_LOG\"\n[ \"${*: -1}\" = ecs_cluster ] && echo c1\n";
    for (name, body) in [("aws", aws), ("terraform", terraform)] {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
    }
    let out = Command::new("scripts/deploy.sh")
        .arg("drain")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("PATH", format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()))
        .env("STUB_LOG", &log)
        .env("AWS_REGION", "eu-west-1")
        .env("PROJECT_NAME", "shop")
        .env("ENVIRONMENT", "prod")
        .env("DRAIN_POLL_SECONDS", "0")
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(out.status.success(), "{}\n{calls}", String::from_utf8_lossy(&out.stderr));
    let at = |what: &str| calls.lines().position(|l| l.contains(what)).unwrap_or_else(|| panic!("no `{what}` in:\n{calls}"));
    assert!(calls.contains("lambda put-function-concurrency --region eu-west-1 --function-name shop-prod-process --reserved-concurrent-executions 0"), "{calls}");
    assert!(at("put-function-concurrency") < at("stop-task"), "throttled before anything is stopped:\n{calls}");
    for t in ["t1", "t2"] {
        assert!(calls.contains(&format!("ecs stop-task --region eu-west-1 --cluster c1 --task arn:task/c1/{t}")), "{calls}");
    }
    assert!(calls.contains("ecs wait tasks-stopped --region eu-west-1 --cluster c1 --tasks arn:task/c1/t1 arn:task/c1/t2"), "{calls}");
    assert!(at("stop-task") < at("wait tasks-stopped"));
    let _ = std::fs::remove_dir_all(&dir);
}
