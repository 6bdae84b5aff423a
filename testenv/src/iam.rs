//! IAM as `generated/` declares it, enforced by the emulator (testenv/py/iam_authorize.py): each
//! function's role policy, the bucket, queue and KMS key policies and the S3 gateway endpoint's
//! policy, with their Terraform references resolved to the resources of a test or of the local
//! stack, registered with the emulator under an access key per function. SDK clients that sign
//! with a function's key are then authorized as that function's role would be on AWS; see the
//! Python module for what is checked and how a denial is answered.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::taskdef::{read_dir, Evaluator, TaskDefError};

/// The environment variable that puts a process in the VPC: the emulator as its HTTP proxy, so
/// its S3 requests arrive as through the stack's S3 gateway endpoint (the agent's process or
/// container gets it from the Fargate stand-ins; nothing else does).
pub const VPC_ROUTE_ENV: &str = "HTTP_PROXY";
/// The id the S3 gateway endpoint has in the test environment (`aws_vpc_endpoint.s3.id`).
pub const S3_ENDPOINT_ID: &str = "vpce-0testenv000000s3";
/// The VPC the endpoint belongs to (`aws:SourceVpc`).
pub const VPC_ID: &str = "vpc-0testenv00000000";

#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error(transparent)]
    Generated(#[from] TaskDefError),
    #[error("generated/ has no {0}")]
    Missing(String),
    #[error("{what} refers to {reference}, which the test environment has no value for (add it to testenv::iam::Stack::known)")]
    Unresolved { what: String, reference: String },
    #[error("registering IAM with the emulator at {endpoint}: {message}")]
    Register { endpoint: String, message: String },
}

/// The deployed names of a stack: what Terraform would know after an apply.
#[derive(Clone, Debug)]
pub struct Stack {
    pub project: String,
    pub environment: String,
    pub account: String,
    pub region: String,
    pub table: String,
    pub bucket: String,
    pub jobs_queue_url: String,
    pub jobs_dlq_url: String,
    pub webhooks_queue_url: String,
    pub webhooks_dlq_url: String,
    pub cluster_arn: String,
    /// The agent's task definition ARN (with or without its revision).
    pub task_definition: String,
    pub agent_log_group: String,
}

/// An access key of one principal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

impl Stack {
    pub fn name_prefix(&self) -> String {
        names::defaults::name_prefix(&self.project, &self.environment)
    }

    /// The stack's KMS key (`aws_kms_key.main.arn`).
    pub fn kms_key_arn(&self) -> String {
        format!("arn:aws:kms:{}:{}:key/00000000-0000-4000-8000-000000testenv", self.region, self.account)
    }

    /// The ARN of the role `name` in the stack's account.
    pub fn role_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:role/{name}", self.account)
    }

    /// The agent's execution role, as the task definition names it.
    pub fn agent_execution_role_arn(&self) -> String {
        self.role_arn(&names::agent::execution_role_name(&self.name_prefix()))
    }

    fn queue_arn(&self, url: &str) -> String {
        let name = url.rsplit('/').next().unwrap_or_default();
        format!("arn:aws:sqs:{}:{}:{name}", self.region, self.account)
    }

    /// The values of the references the policies make, keyed as Terraform addresses them.
    fn known(&self) -> BTreeMap<String, Value> {
        let prefix = self.name_prefix();
        let logs = |group: &str| format!("arn:aws:logs:{}:{}:log-group:{group}", self.region, self.account);
        let cluster_name = self.cluster_arn.rsplit('/').next().unwrap_or_default().to_owned();
        let without_revision = match self.task_definition.rsplit_once(':') {
            Some((head, rev)) if rev.chars().all(|c| c.is_ascii_digit()) && head.contains("task-definition/") => head.to_owned(),
            _ => self.task_definition.clone(),
        };
        let mut known: BTreeMap<String, Value> = [
            ("data.aws_partition.current.partition", "aws".to_owned()),
            ("data.aws_partition.current.dns_suffix", "amazonaws.com".to_owned()),
            ("data.aws_region.current.region", self.region.clone()),
            ("data.aws_region.current.name", self.region.clone()),
            ("data.aws_caller_identity.current.account_id", self.account.clone()),
            ("aws_dynamodb_table.jobs.arn", format!("arn:aws:dynamodb:{}:{}:table/{}", self.region, self.account, self.table)),
            ("aws_dynamodb_table.jobs.name", self.table.clone()),
            ("aws_s3_bucket.outputs.arn", format!("arn:aws:s3:::{}", self.bucket)),
            ("aws_s3_bucket.outputs.id", self.bucket.clone()),
            ("aws_s3_bucket.outputs.bucket", self.bucket.clone()),
            ("aws_sqs_queue.jobs.arn", self.queue_arn(&self.jobs_queue_url)),
            ("aws_sqs_queue.jobs_dlq.arn", self.queue_arn(&self.jobs_dlq_url)),
            ("aws_sqs_queue.webhooks.arn", self.queue_arn(&self.webhooks_queue_url)),
            ("aws_sqs_queue.webhooks_dlq.arn", self.queue_arn(&self.webhooks_dlq_url)),
            ("aws_sqs_queue.jobs.id", self.jobs_queue_url.clone()),
            ("aws_sqs_queue.jobs_dlq.id", self.jobs_dlq_url.clone()),
            ("aws_sqs_queue.webhooks.id", self.webhooks_queue_url.clone()),
            ("aws_sqs_queue.webhooks_dlq.id", self.webhooks_dlq_url.clone()),
            ("aws_sqs_queue.jobs.url", self.jobs_queue_url.clone()),
            ("aws_sqs_queue.jobs_dlq.url", self.jobs_dlq_url.clone()),
            ("aws_sqs_queue.webhooks.url", self.webhooks_queue_url.clone()),
            ("aws_sqs_queue.webhooks_dlq.url", self.webhooks_dlq_url.clone()),
            ("aws_ecs_cluster.main.arn", self.cluster_arn.clone()),
            ("aws_ecs_cluster.main.name", cluster_name),
            ("aws_ecs_task_definition.agent.arn_without_revision", without_revision),
            ("aws_iam_role.agent_execution.arn", self.agent_execution_role_arn()),
            ("aws_iam_role.model_access.arn", self.role_arn(&names::goal::model_role_name(&prefix))),
            ("aws_kms_key.main.arn", self.kms_key_arn()),
            ("aws_vpc_endpoint.s3.id", S3_ENDPOINT_ID.to_owned()),
            ("aws_ecr_repository.agent.arn", format!("arn:aws:ecr:{}:{}:repository/{prefix}-agent", self.region, self.account)),
            ("aws_cloudwatch_log_group.agent.arn", logs(&self.agent_log_group)),
            ("aws_cloudwatch_log_group.agent.name", self.agent_log_group.clone()),
            ("aws_cloudwatch_log_group.flow_logs.arn", logs(&names::logs::flow_log_group(&prefix))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v)))
        .collect();
        for f in names::Function::ALL {
            let group = names::logs::function_group(&f.name(&prefix));
            known.insert(format!("aws_cloudwatch_log_group.{}.arn", f.as_str()), Value::String(logs(&group)));
            known.insert(format!("aws_iam_role.{}_function.arn", f.as_str()), Value::String(self.role_arn(&f.role_name(&prefix))));
        }
        known
    }
}

/// The policies of `generated/` under `root`, resolved for `stack`.
pub struct Policies {
    /// Each function's role: its ARN and its identity policy.
    pub roles: BTreeMap<names::Function, (String, Value)>,
    /// The role computer-use jobs' Bedrock keys are minted from (sessions of it, narrowed by a
    /// session policy): its ARN and identity policy.
    pub model_role: (String, Value),
    /// Resource ARN (bucket, queue, key) -> its resource policy.
    pub resource_policies: BTreeMap<String, Value>,
    /// Bucket or queue ARN -> the KMS key it encrypts with.
    pub kms_keys: BTreeMap<String, String>,
    /// The S3 gateway endpoint's policy.
    pub s3_endpoint_policy: Value,
}

impl Policies {
    pub fn from_generated(root: &Path, stack: &Stack) -> Result<Policies, IamError> {
        let files = read_dir(&root.join("generated"))?;
        let mut resources: Map<String, Value> = Map::new();
        let mut documents: Map<String, Value> = Map::new();
        for doc in files.values() {
            if let Some(Value::Object(rs)) = doc.get("resource") {
                for (ty, by_name) in rs {
                    let entry = resources.entry(ty.clone()).or_insert_with(|| Value::Object(Map::new()));
                    if let (Value::Object(all), Value::Object(more)) = (entry, by_name) {
                        all.extend(more.clone());
                    }
                }
            }
            if let Some(Value::Object(ds)) = doc.pointer("/data/aws_iam_policy_document") {
                documents.extend(ds.clone());
            }
        }
        let vars = BTreeMap::from([
            ("project_name".to_owned(), Value::String(stack.project.clone())),
            ("environment".to_owned(), Value::String(stack.environment.clone())),
            ("aws_region".to_owned(), Value::String(stack.region.clone())),
        ]);
        let eval = Evaluator::new(&files, &vars).with_known(stack.known());
        let resource = |ty: &str, name: &str| -> Result<&Value, IamError> {
            resources.get(ty).and_then(|r| r.get(name)).ok_or_else(|| IamError::Missing(format!("{ty}.{name}")))
        };
        let value = |what: &str, v: &Value| -> Result<Value, IamError> {
            let v = eval.value(what, v)?;
            if let Some(reference) = placeholder_in(&v) {
                return Err(IamError::Unresolved { what: what.to_owned(), reference });
            }
            Ok(v)
        };
        // `${data.aws_iam_policy_document.NAME.json}` -> the document, as the provider renders it.
        let document = |what: &str, reference: &Value| -> Result<Value, IamError> {
            let name = reference
                .as_str()
                .and_then(|s| s.strip_prefix("${data.aws_iam_policy_document."))
                .and_then(|s| s.strip_suffix(".json}"))
                .ok_or_else(|| IamError::Missing(format!("a policy document reference in {what} (got {reference})")))?;
            let doc = documents.get(name).ok_or_else(|| IamError::Missing(format!("data.aws_iam_policy_document.{name}")))?;
            Ok(render(&value(what, doc)?))
        };

        let mut roles = BTreeMap::new();
        for f in names::Function::ALL {
            let name = format!("{}_function", f.as_str());
            let policy = document(&format!("aws_iam_role_policy.{name}"), resource("aws_iam_role_policy", &name)?.get("policy").unwrap_or(&Value::Null))?;
            roles.insert(f, (stack.role_arn(&f.role_name(&stack.name_prefix())), policy));
        }
        let mut resource_policies = BTreeMap::new();
        // Each function role's trust policy: `sts:AssumeRole` of the role is checked against it
        // (the process function assumes its own role for the links it signs).
        for f in names::Function::ALL {
            let name = format!("{}_function", f.as_str());
            let trust = document(&format!("aws_iam_role.{name}"), resource("aws_iam_role", &name)?.get("assume_role_policy").unwrap_or(&Value::Null))?;
            resource_policies.insert(stack.role_arn(&f.role_name(&stack.name_prefix())), trust);
        }
        let model_arn = stack.role_arn(&names::goal::model_role_name(&stack.name_prefix()));
        let model_policy = document("aws_iam_role_policy.model_access", resource("aws_iam_role_policy", "model_access")?.get("policy").unwrap_or(&Value::Null))?;
        let model_trust = document("aws_iam_role.model_access", resource("aws_iam_role", "model_access")?.get("assume_role_policy").unwrap_or(&Value::Null))?;
        resource_policies.insert(model_arn.clone(), model_trust);
        let model_role = (model_arn, model_policy);
        let bucket_arn = format!("arn:aws:s3:::{}", stack.bucket);
        let bucket_policy = resource("aws_s3_bucket_policy", "outputs")?;
        resource_policies.insert(bucket_arn.clone(), document("aws_s3_bucket_policy.outputs", &bucket_policy["policy"])?);
        let mut kms_keys = BTreeMap::new();
        if let Some(Value::Object(queue_policies)) = resources.get("aws_sqs_queue_policy") {
            for (name, qp) in queue_policies {
                let url = value(&format!("aws_sqs_queue_policy.{name}.queue_url"), &qp["queue_url"])?;
                let arn = stack.queue_arn(url.as_str().unwrap_or_default());
                resource_policies.insert(arn, document(&format!("aws_sqs_queue_policy.{name}"), &qp["policy"])?);
            }
        }
        if let Some(Value::Object(queues)) = resources.get("aws_sqs_queue") {
            for (name, q) in queues {
                if let Some(key) = q.get("kms_master_key_id") {
                    let url = stack.known().get(&format!("aws_sqs_queue.{name}.url")).cloned().unwrap_or(Value::Null);
                    let key = value(&format!("aws_sqs_queue.{name}.kms_master_key_id"), key)?;
                    kms_keys.insert(stack.queue_arn(url.as_str().unwrap_or_default()), key.as_str().unwrap_or_default().to_owned());
                }
            }
        }
        let sse = resource("aws_s3_bucket_server_side_encryption_configuration", "outputs")?;
        if let Some(key) = sse.pointer("/rule/0/apply_server_side_encryption_by_default/kms_master_key_id") {
            let key = value("aws_s3_bucket_server_side_encryption_configuration.outputs", key)?;
            kms_keys.insert(bucket_arn, key.as_str().unwrap_or_default().to_owned());
        }
        let key = resource("aws_kms_key", "main")?;
        resource_policies.insert(stack.kms_key_arn(), document("aws_kms_key.main", &key["policy"])?);
        let endpoint = resource("aws_vpc_endpoint", "s3")?;
        let s3_endpoint_policy = document("aws_vpc_endpoint.s3", &endpoint["policy"])?;
        Ok(Policies { roles, model_role, resource_policies, kms_keys, s3_endpoint_policy })
    }

    /// What the emulator is told: each function's access key and principal, the resource and
    /// endpoint policies. The keys depend on the policies, so stacks with other resources (a test
    /// with a queue of its own) get keys of their own on the same emulator.
    pub fn registration(&self, stack: &Stack) -> (Value, BTreeMap<names::Function, AccessKey>) {
        let prefix = stack.name_prefix();
        let mut principals = Map::new();
        let mut keys = BTreeMap::new();
        for (f, (arn, policy)) in &self.roles {
            let digest = fnv(&format!("{arn}{policy}"));
            let key = AccessKey {
                id: format!("ASIA{}{digest:016X}", f.as_str().to_ascii_uppercase()),
                secret: format!("testenv-secret-{}-{digest:016x}", f.as_str()),
            };
            let role = f.role_name(&prefix);
            principals.insert(
                key.id.clone(),
                json!({
                    "arn": arn,
                    "session_arn": format!("arn:aws:sts::{}:assumed-role/{role}/{}", stack.account, f.name(&prefix)),
                    "account": stack.account,
                    "secret": key.secret,
                    "policies": [{"name": role, "policy": policy}],
                }),
            );
            keys.insert(*f, key);
        }
        // The model role: its sessions sign as it (no function holds its own key).
        let (arn, policy) = &self.model_role;
        let digest = fnv(&format!("{arn}{policy}"));
        let role = names::goal::model_role_name(&prefix);
        principals.insert(
            format!("AROAMODELACCESS{digest:016X}"),
            json!({
                "arn": arn,
                "session_arn": format!("arn:aws:sts::{}:assumed-role/{role}/{role}", stack.account),
                "account": stack.account,
                "secret": format!("testenv-secret-model-access-{digest:016x}"),
                "policies": [{"name": role, "policy": policy}],
            }),
        );
        let registration = json!({
            "principals": principals,
            "resource_policies": self.resource_policies,
            "kms_keys": self.kms_keys,
            "endpoint": {"id": S3_ENDPOINT_ID, "vpc": VPC_ID, "service": "s3", "policy": self.s3_endpoint_policy},
        });
        (registration, keys)
    }
}

/// Reads the policies for `stack`, registers them with the emulator at `endpoint`, and answers
/// each function's access key.
pub async fn register(root: &Path, endpoint: &str, stack: &Stack) -> Result<BTreeMap<names::Function, AccessKey>, IamError> {
    let policies = Policies::from_generated(root, stack)?;
    let (registration, keys) = policies.registration(stack);
    let fail = |message: String| IamError::Register { endpoint: endpoint.to_owned(), message };
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/_testenv/iam"))
        .header("content-type", "application/json")
        .body(registration.to_string())
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !response.status().is_success() {
        return Err(fail(response.status().to_string()));
    }
    Ok(keys)
}

/// Ends the `sts:AssumeRole` session whose access key is `key` now, as its expiry would: the
/// emulator then refuses what it signs (S3: 400 ExpiredToken, its links included).
pub async fn expire_session(endpoint: &str, key: &str) -> Result<(), IamError> {
    let fail = |message: String| IamError::Register { endpoint: endpoint.to_owned(), message };
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/_testenv/iam"))
        .header("content-type", "application/json")
        .body(json!({ "expire": [key] }).to_string())
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !response.status().is_success() {
        return Err(fail(response.status().to_string()));
    }
    Ok(())
}

/// An `aws_iam_policy_document`'s (evaluated) attributes as the JSON policy the provider renders
/// (and AWS evaluates): a one-element list as its element, a wildcard principal as `"*"`,
/// conditions grouped by operator.
pub fn render(doc: &Value) -> Value {
    let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    let one_or_many = |v: Vec<Value>| if v.len() == 1 { v[0].clone() } else { Value::Array(v) };
    let statements: Vec<Value> = list(doc.get("statement"))
        .iter()
        .map(|s| {
            let mut out = Map::new();
            if let Some(sid) = s.get("sid") {
                out.insert("Sid".into(), sid.clone());
            }
            out.insert("Effect".into(), s.get("effect").cloned().unwrap_or_else(|| "Allow".into()));
            for (from, to) in [("actions", "Action"), ("not_actions", "NotAction"), ("resources", "Resource"), ("not_resources", "NotResource")] {
                if let Some(v) = s.get(from) {
                    out.insert(to.into(), one_or_many(list(Some(v))));
                }
            }
            for (from, to) in [("principals", "Principal"), ("not_principals", "NotPrincipal")] {
                let ps = list(s.get(from));
                if ps.is_empty() {
                    continue;
                }
                if ps.iter().any(|p| p["type"] == "*") {
                    out.insert(to.into(), "*".into());
                    continue;
                }
                let mut by_type = Map::new();
                for p in ps {
                    let ids = by_type.entry(p["type"].as_str().unwrap_or("AWS").to_owned()).or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(all) = ids {
                        all.extend(list(p.get("identifiers")));
                    }
                }
                for ids in by_type.values_mut() {
                    *ids = one_or_many(ids.as_array().cloned().unwrap_or_default());
                }
                out.insert(to.into(), Value::Object(by_type));
            }
            let conditions = list(s.get("condition"));
            if !conditions.is_empty() {
                let mut by_test = Map::new();
                for c in conditions {
                    let entry = by_test.entry(c["test"].as_str().unwrap_or_default().to_owned()).or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(vars) = entry {
                        vars.insert(c["variable"].as_str().unwrap_or_default().to_owned(), one_or_many(list(c.get("values"))));
                    }
                }
                out.insert("Condition".into(), Value::Object(by_test));
            }
            Value::Object(out)
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// A `<type.name.attr>` placeholder left in an evaluated value (a reference with no value).
fn placeholder_in(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let start = s.find("<aws_").or_else(|| s.find("<data."))?;
            let end = s[start..].find('>')? + start;
            Some(s[start + 1..end].to_owned())
        }
        Value::Array(items) => items.iter().find_map(placeholder_in),
        Value::Object(m) => m.values().find_map(placeholder_in),
        _ => None,
    }
}

/// FNV-1a: a stable digest for key ids (not a security property: the emulator's keys are
/// test-only).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack() -> Stack {
        let q = |n: &str| format!("http://127.0.0.1:1/123456789012/{n}");
        Stack {
            project: "unit".into(),
            environment: "test".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            table: "unit-test-jobs".into(),
            bucket: "unit-test-outputs-123456789012".into(),
            jobs_queue_url: q("jobs"),
            jobs_dlq_url: q("jobs-dlq"),
            webhooks_queue_url: q("webhooks"),
            webhooks_dlq_url: q("webhooks-dlq"),
            cluster_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/unit-test".into(),
            task_definition: "arn:aws:ecs:us-east-1:123456789012:task-definition/unit-test-agent:3".into(),
            agent_log_group: "/ecs/unit-test-agent".into(),
        }
    }

    /// Every reference of every policy resolves, and the documents read as the provider renders
    /// them (a wildcard principal as "*", conditions grouped by operator).
    #[test]
    fn the_generated_policies_resolve_for_a_stack() {
        let s = stack();
        let p = Policies::from_generated(&crate::root(), &s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.roles.len(), names::Function::ALL.len());
        let (arn, reconcile) = &p.roles[&names::Function::Reconcile];
        assert_eq!(arn, "arn:aws:iam::123456789012:role/unit-test-reconcile-function");
        let text = reconcile.to_string();
        assert!(text.contains("arn:aws:s3:::unit-test-outputs-123456789012/slots/*"), "{text}");
        assert!(text.contains("arn:aws:ecs:us-east-1:123456789012:task/unit-test/*"), "{text}");
        let bucket = &p.resource_policies["arn:aws:s3:::unit-test-outputs-123456789012"];
        assert!(bucket.to_string().contains(S3_ENDPOINT_ID), "{bucket}");
        assert_eq!(p.s3_endpoint_policy["Statement"][0]["Principal"], "*", "{}", p.s3_endpoint_policy);
        assert_eq!(p.kms_keys["arn:aws:sqs:us-east-1:123456789012:jobs"], s.kms_key_arn());
        let (registration, keys) = p.registration(&s);
        let key = &keys[&names::Function::Process];
        assert_eq!(registration["principals"][&key.id]["arn"], "arn:aws:iam::123456789012:role/unit-test-process-function");
        // Another stack's resources, other keys.
        let other = Stack { jobs_queue_url: "http://127.0.0.1:1/123456789012/other".into(), ..s.clone() };
        let (_, other_keys) = Policies::from_generated(&crate::root(), &other).unwrap().registration(&other);
        assert_ne!(other_keys[&names::Function::Process], keys[&names::Function::Process]);
    }

    #[test]
    fn a_reference_without_a_value_is_an_error_naming_it() {
        let v = json!({"a": ["x", "arn:<aws_sns_topic.alarms.arn>"]});
        assert_eq!(placeholder_in(&v).as_deref(), Some("aws_sns_topic.alarms.arn"));
    }
}
