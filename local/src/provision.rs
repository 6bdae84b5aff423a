//! Creates, in the emulator, the resources the infra-gen model defines, named by the same `names`
//! patterns with the default project and environment: the jobs table (key, tenant index, TTL), the
//! job queue and its dead-letter queue (redrive after the same attempts), the outputs bucket, the
//! agent log group, the ECS cluster and the agent task definition (the one of
//! generated/, evaluated by testenv, with the local search page), and the network RunTask needs.

use std::path::Path;

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, KernelCapabilities, KeyValuePair, LinuxParameters, MountPoint, NetworkMode, Secret, Volume,
};
use functions::config::Config;
use names::{defaults as d, table as t};
use testenv::taskdef::TaskDefinition;

/// What the local stack serves and how it is configured.
#[derive(Clone, Debug)]
pub struct Settings {
    pub prefix: String,
    pub account: String,
    /// (tenant, API key value, API key id): one per tenant and key generation.
    pub tenants: Vec<(String, String, String)>,
    /// Visibility timeout of the job queue: short locally so a failed attempt is retried quickly.
    pub visibility_seconds: u32,
    pub search_url_template: String,
}

/// A tenant's secret for scripted jobs (`--tenant-secret TENANT:NAME=VALUE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantSecret {
    pub tenant: String,
    pub name: String,
    pub value: String,
}

impl TenantSecret {
    /// Reads `TENANT:NAME=VALUE` (the value may hold any character, `=` and `:` included) for
    /// one of `tenants`.
    pub fn parse(s: &str, tenants: &[String]) -> Result<TenantSecret, String> {
        let usage = || format!("`{}`: a tenant secret is TENANT:NAME=VALUE", s.split('=').next().unwrap_or_default());
        let (head, value) = s.split_once('=').ok_or_else(usage)?;
        let (tenant, name) = head.split_once(':').ok_or_else(usage)?;
        if !tenants.iter().any(|t| t == tenant) {
            return Err(format!("`{tenant}` is not one of the tenants ({})", tenants.join(", ")));
        }
        if names::step::name(0, "secret", name).is_err() {
            return Err(format!(
                "the secret name `{name}` must be 1 to {} letters, digits, `-` and `_`, starting with a letter or digit",
                names::step::NAME_MAX_CHARS
            ));
        }
        if value.is_empty() {
            return Err(format!("the secret `{name}` of `{tenant}` is empty"));
        }
        Ok(TenantSecret { tenant: tenant.into(), name: name.into(), value: value.into() })
    }
}

/// Puts the secrets where the process function reads them, as SecureStrings.
pub async fn put_tenant_secrets(sdk: &aws_config::SdkConfig, config: &Config, secrets: &[TenantSecret]) -> Result<(), String> {
    let ssm = aws_sdk_ssm::Client::new(sdk);
    for s in secrets {
        testenv::ssm::put_secure(&ssm, &names::ssm::tenant_secret(&config.tenant_secrets_path, &s.tenant, &s.name), &s.value).await.map_err(err("tenant secret"))?;
    }
    Ok(())
}

/// API key generations by tenant, as the Terraform variable `api_key_generations` holds them
/// (absent: `[1]`).
pub type Generations = BTreeMap<String, Vec<u32>>;

/// The generations in a `*.tfvars.json` file (`{"api_key_generations": {...}}`, the file
/// scripts/rotate-key.sh writes), checked as the Terraform variable's validations check them.
pub fn read_generations(path: &Path, tenants: &[String]) -> Result<Generations, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        api_key_generations: Generations,
    }
    let file: File = serde_json::from_str(&text).map_err(|e| format!("{}: not a tfvars JSON file with api_key_generations: {e}", path.display()))?;
    for (tenant, gens) in &file.api_key_generations {
        if !tenants.contains(tenant) {
            return Err(format!("{}: api_key_generations names {tenant}, which is not a tenant ({})", path.display(), tenants.join(", ")));
        }
        let ok = match gens.as_slice() {
            [g] => *g >= 1,
            [a, b] => *a >= 1 && *b == a + 1,
            _ => false,
        };
        if !ok {
            return Err(format!("{}: {tenant} has generations {gens:?}: one (from 1), or two consecutive while rotating", path.display()));
        }
    }
    Ok(file.api_key_generations)
}

impl Settings {
    /// Each tenant's keys: generation 1 is `local-<tenant>-key`, generation n `local-<tenant>-key-g<n>`.
    pub fn new(tenants: &[String], generations: &Generations, search_url_template: String) -> Settings {
        let keys = tenants
            .iter()
            .flat_map(|t| {
                let gens = generations.get(t).cloned().unwrap_or_else(|| vec![1]);
                gens.into_iter().map(move |g| {
                    let suffix = if g == 1 { String::new() } else { format!("-g{g}") };
                    (t.clone(), format!("local-{t}-key{suffix}"), format!("key-{t}{suffix}"))
                })
            })
            .collect();
        Settings {
            prefix: d::name_prefix(d::PROJECT_NAME, d::ENVIRONMENT),
            account: "123456789012".into(),
            tenants: keys,
            visibility_seconds: 10,
            search_url_template,
        }
    }

    /// Values of the task definition's secrets (`agent_secrets`, none by default) here: none.
    pub fn secrets(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("creating {what}: {e}")
}

/// The network RunTask needs (moto requires DNS hostnames and a security group). EC2 is not among
/// the functions' SDKs, so boto3 (in moto's virtualenv, pointed at the emulator by
/// AWS_ENDPOINT_URL) creates it.
const BOTO3: &str = r#"
import boto3, sys
prefix = sys.argv[1]
ec2 = boto3.client("ec2")
vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{32 + 16 * i}.0/20")["Subnet"]["SubnetId"] for i in range(2)]
sg = ec2.create_security_group(GroupName=prefix + "-agent", Description="Agent tasks: no ingress; egress to HTTP and HTTPS only", VpcId=vpc)["GroupId"]
print(",".join(subnets), sg)
"#;

pub async fn provision(root: &Path, sdk: &aws_config::SdkConfig, s: &Settings) -> Result<(Config, TaskDefinition), String> {
    let vars = BTreeMap::from([(names::vars::AGENT_SEARCH_URL_TEMPLATE.to_string(), s.search_url_template.clone().into())]);
    let td = TaskDefinition::from_dir(&root.join("generated"), &vars).map_err(|e| format!("the agent task definition: {e}"))?;
    let p = &s.prefix;
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let table = t::name(p);
    testenv::table::create_jobs_table(&ddb, root, &table).await?;
    // Each key's tenant, as Terraform writes it beside the key (the API functions read it).
    for (tenant, _, id) in &s.tenants {
        testenv::table::put_api_key(&ddb, &table, id, tenant).await?;
    }

    let sqs = aws_sdk_sqs::Client::new(sdk);
    let (queue_url, _) = queue_pair(&sqs, &names::queue::jobs_name(p), &names::queue::dlq_name(p), s.visibility_seconds).await?;
    let (webhook_queue_url, webhook_dlq_url) =
        queue_pair(&sqs, &names::queue::webhooks_name(p), &names::queue::webhooks_dlq_name(p), s.visibility_seconds).await?;

    let bucket = names::bucket::name(p, &s.account);
    testenv::s3::create_outputs_bucket(&aws_sdk_s3::Client::new(sdk), &bucket).await.map_err(err("bucket"))?;
    let log_group = names::logs::agent_group(p);
    aws_sdk_cloudwatchlogs::Client::new(sdk)
        .create_log_group()
        .log_group_name(&log_group)
        .send()
        .await
        .map_err(err("log group"))?;

    let out = tokio::process::Command::new(testenv::venv_bin(root).join("python"))
        .arg("-c")
        .arg(BOTO3)
        .arg(p)
        .output()
        .await
        .map_err(err("network"))?;
    if !out.status.success() {
        return Err(format!("creating the network: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let ids = String::from_utf8_lossy(&out.stdout).to_string();
    let mut ids = ids.split_whitespace();
    let subnets: Vec<String> = ids.next().unwrap_or_default().split(',').map(str::to_owned).collect();
    let security_group = ids.next().unwrap_or_default().to_owned();

    let ecs = aws_sdk_ecs::Client::new(sdk);
    let cluster_arn = ecs
        .create_cluster()
        .cluster_name(names::agent::cluster_name(p))
        .send()
        .await
        .map_err(err("cluster"))?
        .cluster
        .and_then(|c| c.cluster_arn)
        .unwrap_or_default();
    let task_definition = ecs
        .register_task_definition()
        .family(&td.family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu(td.cpu.to_string())
        .memory(td.memory.to_string())
        .set_volumes(Some(td.volumes.iter().map(|v| Volume::builder().name(v).build()).collect()))
        // As generated/ registers it: RunTask passes this role (authorized as iam:PassRole).
        .execution_role_arn(format!("arn:aws:iam::{}:role/{}", s.account, names::agent::execution_role_name(p)))
        .container_definitions(container_definition(&td))
        .send()
        .await
        .map_err(err("task definition"))?
        .task_definition
        .and_then(|t| t.task_definition_arn)
        .unwrap_or_default();

    let mut config = Config::defaults();
    config.table = table;
    config.queue_url = queue_url;
    config.webhook_queue_url = webhook_queue_url;
    config.webhook_dlq_url = webhook_dlq_url;
    // Local mode: receivers on this machine speak plain HTTP.
    config.webhook_allow_http = true;
    config.bucket = bucket;
    config.cluster_arn = cluster_arn;
    config.task_definition = task_definition;
    config.subnet_ids = subnets;
    config.security_group_ids = vec![security_group];
    config.log_group = log_group;
    Ok((config, td))
}

/// A queue and its dead-letter queue (redrive after the same attempts as in AWS): their URLs.
async fn queue_pair(sqs: &aws_sdk_sqs::Client, name: &str, dlq_name: &str, visibility_seconds: u32) -> Result<(String, String), String> {
    use aws_sdk_sqs::types::QueueAttributeName as Q;
    let dlq_url = sqs.create_queue().queue_name(dlq_name).send().await.map_err(err("dead-letter queue"))?.queue_url.unwrap_or_default();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(Q::QueueArn)
        .send()
        .await
        .map_err(err("dead-letter queue"))?
        .attributes
        .and_then(|a| a.get(&Q::QueueArn).cloned())
        .unwrap_or_default();
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": d::MAX_RECEIVE_COUNT}).to_string();
    let url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(Q::VisibilityTimeout, visibility_seconds.to_string())
        .attributes(Q::RedrivePolicy, redrive)
        .send()
        .await
        .map_err(err("queue"))?
        .queue_url
        .unwrap_or_default();
    Ok((url, dlq_url))
}

/// A signing secret for each tenant's webhooks, put where the webhook function reads it (in AWS,
/// scripts/webhook-secret.sh does this): (tenant, secret).
pub async fn put_signing_secrets(sdk: &aws_config::SdkConfig, config: &Config, tenants: &[String]) -> Result<Vec<(String, String)>, String> {
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let mut out = Vec::new();
    for tenant in tenants {
        let secret = functions::webhook::new_secret();
        testenv::ssm::put_secure(&ssm, &names::ssm::webhook_secret(&config.webhook_secrets_path, tenant), &secret).await.map_err(err("webhook signing secret"))?;
        out.push((tenant.clone(), secret));
    }
    Ok(out)
}

/// The evaluated container definition in the ECS API's shape; the image is the one `make image`
/// builds (the repository URL has no value before a deploy).
fn container_definition(td: &TaskDefinition) -> ContainerDefinition {
    let c = &td.container;
    let params = c.linux_parameters.clone().unwrap_or_default();
    ContainerDefinition::builder()
        .name(&c.name)
        .image(testenv::container::LOCAL_IMAGE)
        .essential(c.essential)
        .set_memory(c.memory.map(|m| m as i32))
        .set_user(c.user.clone())
        .readonly_root_filesystem(c.readonly_root_filesystem)
        .privileged(c.privileged)
        .set_stop_timeout(c.stop_timeout.map(|t| t as i32))
        .linux_parameters(
            LinuxParameters::builder()
                .init_process_enabled(params.init_process_enabled)
                .capabilities(
                    KernelCapabilities::builder()
                        .set_add(Some(params.capabilities.add.clone()))
                        .set_drop(Some(params.capabilities.drop.clone()))
                        .build(),
                )
                .build(),
        )
        .set_mount_points(Some(
            c.mount_points
                .iter()
                .map(|m| MountPoint::builder().source_volume(&m.source_volume).container_path(&m.container_path).read_only(m.read_only).build())
                .collect(),
        ))
        .set_environment(Some(c.environment.iter().map(|kv| KeyValuePair::builder().name(&kv.name).value(&kv.value).build()).collect()))
        .set_secrets(Some(
            c.secrets.iter().filter_map(|s| Secret::builder().name(&s.name).value_from(&s.value_from).build().ok()).collect(),
        ))
        .build()
}

#[cfg(test)]
mod tenant_secret_tests {
    use super::TenantSecret;

    #[test]
    fn a_tenant_secret_is_tenant_name_and_any_value() {
        let tenants = vec!["acme".to_string()];
        let s = TenantSecret::parse("acme:portal-password=a:b=c", &tenants).unwrap();
        assert_eq!((s.tenant.as_str(), s.name.as_str(), s.value.as_str()), ("acme", "portal-password", "a:b=c"));
        assert!(TenantSecret::parse("other:pw=x", &tenants).unwrap_err().contains("not one of the tenants"));
        assert!(TenantSecret::parse("acme:pw", &tenants).unwrap_err().contains("TENANT:NAME=VALUE"));
        assert!(TenantSecret::parse("acme:a/b=x", &tenants).unwrap_err().contains("letters, digits"));
        assert!(TenantSecret::parse("acme:pw=", &tenants).unwrap_err().contains("empty"));
        // The error never repeats the value.
        assert!(!TenantSecret::parse("nobody:pw=hunter2", &tenants).unwrap_err().contains("hunter2"));
    }
}
