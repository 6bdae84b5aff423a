//! The conformance check against the committed AWS schema, on documents shaped like what infra-gen writes.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tfjson::{check, escape_literal, Schema};

const AWS: &str = tfjson::provider::AWS_JSON;

fn files() -> BTreeMap<String, Value> {
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                       "Resource": "${aws_s3_bucket.results.arn}/${aws:username}/*"}]
    });
    let mut files = BTreeMap::new();
    files.insert("data.tf.json".to_string(), json!({
        "resource": {
            "aws_sqs_queue": {"jobs": {"name": "jobs", "sqs_managed_sse_enabled": true,
                                       "redrive_policy": "${jsonencode({deadLetterTargetArn = aws_sqs_queue.dead.arn, maxReceiveCount = 3})}"},
                              "dead": {"name": "jobs-dead"}},
            "aws_s3_bucket": {"results": {"bucket_prefix": "results-"}},
            "aws_s3_bucket_versioning": {"results": {"bucket": "${aws_s3_bucket.results.id}",
                                                     "versioning_configuration": {"status": "Enabled"}}},
            "aws_s3_bucket_lifecycle_configuration": {"results": {
                "bucket": "${aws_s3_bucket.results.id}",
                "rule": [{"id": "expire", "status": "Enabled", "filter": [{"prefix": "tmp/"}], "expiration": [{"days": 7}]}]
            }},
            "aws_dynamodb_table": {"tasks": {
                "name": "tasks", "billing_mode": "PAY_PER_REQUEST", "hash_key": "pk",
                "attribute": [{"name": "pk", "type": "S"}],
                "ttl": {"attribute_name": "expires_at", "enabled": true},
                "point_in_time_recovery": {"enabled": true}
            }},
            "aws_iam_role": {"agent": {"assume_role_policy": "${data.aws_iam_policy_document.assume.json}"}},
            "aws_iam_role_policy": {"agent": {"role": "${aws_iam_role.agent.id}",
                                              "policy": escape_literal(&policy.to_string()).replace("$${aws_s3", "${aws_s3")}}
        },
        "data": {
            "aws_iam_policy_document": {"assume": {"statement": [{
                "actions": ["sts:AssumeRole"],
                "principals": [{"type": "Service", "identifiers": ["ecs-tasks.amazonaws.com"]}]
            }]}},
            "aws_region": {"current": {}},
            "aws_caller_identity": {"current": {}}
        },
        "output": {
            "queue_url": {"value": "${aws_sqs_queue.jobs.url}"},
            "account": {"value": "${data.aws_caller_identity.current.account_id}/${data.aws_region.current.region}"}
        }
    }));
    files
}

#[test]
fn realistic_documents_conform() {
    let schema = Schema::from_json(AWS).unwrap();
    let report = check(&files(), &schema);
    assert!(report.is_ok(), "{report}");
    assert!(
        report.counts.references == 9 && report.counts.blocks == 9,
        "{report}"
    );
}

#[test]
fn typical_mistakes_are_caught() {
    let schema = Schema::from_json(AWS).unwrap();
    let mut files = files();
    let doc = files.get_mut("data.tf.json").unwrap();
    // SDKv2 block with MaxItems 1 written as an array; attribute that does not exist; a typo.
    doc["resource"]["aws_dynamodb_table"]["tasks"]["ttl"] =
        json!([{"attribute_name": "expires_at"}]);
    doc["output"]["queue_url"]["value"] = json!("${aws_sqs_queue.jobs.queue_url}");
    doc["resource"]["aws_sqs_queue"]["dead"]["visibility_timeout"] = json!(30);
    let got: Vec<String> = check(&files, &schema)
        .violations
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(got, [
        "data.tf.json: resource.aws_dynamodb_table.tasks.ttl: block appears at most once and must be a JSON object",
        "data.tf.json: resource.aws_sqs_queue.dead.visibility_timeout: unknown argument",
        "data.tf.json: output.queue_url.value: aws_sqs_queue has no attribute `queue_url` (aws_sqs_queue.jobs.queue_url)",
    ]);
}
