//! `infra-gen review` on crafted before/after stacks (snapshotted Markdown), on the project's own
//! history, and `--fail-on-broadening` through the CLI.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use infra_gen::review::Review;
use serde_json::{json, Value};

fn stack() -> BTreeMap<String, Value> {
    infra_gen::build(&infra_gen::AppConfig::default()).unwrap().documents().unwrap()
}

/// The body of `section.ty.name` wherever it lives.
fn body<'a>(docs: &'a mut BTreeMap<String, Value>, section: &str, ty: &str, name: &str) -> &'a mut Value {
    docs.values_mut()
        .find_map(|d| d.get_mut(section).and_then(|s| s.get_mut(ty)).and_then(|t| t.get_mut(name)))
        .unwrap_or_else(|| panic!("{section}.{ty}.{name} not found"))
}

fn snapshot(name: &str, review: &Review) {
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, review.to_markdown("BASE"));
    });
}

#[test]
fn added_grant_broadens() {
    let before = stack();
    let mut after = before.clone();
    let doc = body(&mut after, "data", "aws_iam_policy_document", "submit_function_policy");
    doc["statement"].as_array_mut().unwrap().push(json!({
        "sid": "ReadOutputs", "effect": "Allow", "actions": ["s3:GetObject"],
        "resources": ["${aws_s3_bucket.outputs.arn}/*"]
    }));
    let review = Review::new(&before, &after);
    assert!(review.broadens());
    assert_eq!(review.permissions_gained.len(), 1);
    assert_eq!(review.permissions_gained[0].principal, "aws_iam_role.submit_function");
    snapshot("review_added_grant", &review);
}

#[test]
fn removed_grant_does_not_broaden() {
    let before = stack();
    let mut after = before.clone();
    let doc = body(&mut after, "data", "aws_iam_policy_document", "submit_function_policy");
    doc["statement"].as_array_mut().unwrap().retain(|s| s["sid"] != "SendJobs");
    let review = Review::new(&before, &after);
    assert!(!review.broadens());
    assert_eq!(review.permissions_lost.len(), 1);
    snapshot("review_removed_grant", &review);
}

#[test]
fn widened_security_group_broadens() {
    let before = stack();
    let mut after = before.clone();
    let rule = body(&mut after, "resource", "aws_vpc_security_group_egress_rule", "agent_https");
    rule["from_port"] = json!(0);
    rule["to_port"] = json!(65535);
    let review = Review::new(&before, &after);
    assert!(review.broadens());
    assert_eq!(review.network_added.len(), 1);
    assert_eq!(review.network_removed.len(), 1);
    snapshot("review_widened_security_group", &review);
}

#[test]
fn new_public_route_broadens() {
    let before = stack();
    let mut after = before.clone();
    let routes = after.get_mut("network.tf.json").unwrap()["resource"]["aws_route"].as_object_mut().unwrap();
    routes.insert(
        "private_0_internet".into(),
        json!({
            "route_table_id": "${aws_route_table.private_0.id}",
            "destination_cidr_block": "0.0.0.0/0",
            "gateway_id": "${aws_internet_gateway.main.id}"
        }),
    );
    let review = Review::new(&before, &after);
    assert!(review.broadens());
    assert!(review.network_added.iter().any(|r| r.kind == "public subnet" && r.subject == "aws_subnet.private_0"));
    snapshot("review_new_public_route", &review);
}

#[test]
fn renamed_resource_is_a_replacement() {
    let before = stack();
    let mut after = before.clone();
    let topics = after.get_mut("observability.tf.json").unwrap()["resource"]["aws_sns_topic"].as_object_mut().unwrap();
    let topic = topics.remove("alarms").unwrap();
    topics.insert("notifications".into(), topic);
    // Every reference follows the rename.
    let text = serde_json::to_string(&after).unwrap().replace("aws_sns_topic.alarms.", "aws_sns_topic.notifications.");
    let after: BTreeMap<String, Value> = serde_json::from_str(&text).unwrap();
    let review = Review::new(&before, &after);
    assert_eq!(review.renamed, [("aws_sns_topic.alarms".to_string(), "aws_sns_topic.notifications".to_string())]);
    assert!(!review.broadens());
    snapshot("review_renamed_resource", &review);
}

#[test]
fn keyless_method_and_replacement_argument() {
    let before = stack();
    let mut after = before.clone();
    body(&mut after, "resource", "aws_api_gateway_method", "get_jobs")["api_key_required"] = json!(false);
    body(&mut after, "resource", "aws_dynamodb_table", "jobs")["hash_key"] = json!("job_id");
    let review = Review::new(&before, &after);
    assert!(review.broadens());
    assert_eq!(review.exposure_added.len(), 1);
    let table = review.changed.iter().find(|c| c.address == "aws_dynamodb_table.jobs").unwrap();
    assert_eq!(table.replaced_by, ["hash_key"]);
    snapshot("review_keyless_method", &review);
}

#[test]
fn identical_stacks_have_nothing_to_say() {
    let review = Review::new(&stack(), &stack());
    assert!(review.is_empty() && !review.broadens());
    assert!(review.to_markdown("HEAD").contains("No change"));
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The review reads any revision of the project's own `generated/`: here the first commit that had it.
#[test]
fn reviews_the_projects_own_history() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let first = git(&root, &["log", "--format=%H", "--diff-filter=A", "--", "generated/main.tf.json"]);
    let first = first.lines().last().expect("generated/main.tf.json has a history").to_string();
    let before = infra_gen::review::documents_at(&root, &first, "generated").unwrap();
    assert!(before.contains_key("main.tf.json"));
    let review = Review::new(&before, &stack());
    let md = review.to_markdown(&first);
    assert!(md.starts_with("## Infrastructure review against"), "{md}");
    let out = Command::new(env!("CARGO_BIN_EXE_infra-gen")).current_dir(&root).args(["review", "--base", &first]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), md);
}

#[test]
fn fail_on_broadening_exits_non_zero() {
    let repo = std::env::temp_dir().join(format!("infra-gen-review-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&repo);
    std::fs::create_dir_all(repo.join("generated")).unwrap();
    // The base lacks one of the grants the current synthesis has.
    let mut base = stack();
    body(&mut base, "data", "aws_iam_policy_document", "submit_function_policy")["statement"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["sid"] != "SendJobs");
    for (name, doc) in &base {
        std::fs::write(repo.join("generated").join(name), serde_json::to_string_pretty(doc).unwrap()).unwrap();
    }
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "generated"]);
    git(&repo, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]);
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_infra-gen")).current_dir(&repo).args(["review", "--base", "HEAD"]).args(extra).output().unwrap()
    };
    let plain = run(&[]);
    assert!(plain.status.success());
    assert!(String::from_utf8_lossy(&plain.stdout).contains("sqs:SendMessage"));
    let gated = run(&["--fail-on-broadening"]);
    assert_eq!(gated.status.code(), Some(3), "{}", String::from_utf8_lossy(&gated.stderr));
    let bad = Command::new(env!("CARGO_BIN_EXE_infra-gen")).current_dir(&repo).args(["review", "--base", "no-such-rev"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no-such-rev"));
    std::fs::remove_dir_all(&repo).unwrap();
}
