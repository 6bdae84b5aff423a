//! The AWS emulator the tests run against: one moto server per test binary on a free loopback
//! port, with the table, queue, bucket, log group, cluster and task definition the functions
//! use. The SDK clients reach it through the standard `AWS_ENDPOINT_URL`. testenv starts the
//! server and stops it with the test binary.
#![allow(dead_code)]

use functions::api::{ApiRequest, ApiResponse};
use functions::config::Config;
use functions::{App, Function};
use names::ecs::{ContainerState, StopCode, TaskStateChange, TaskStatus};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

pub mod runtime;

/// The stack's project and environment, whose name prefix every resource name starts with.
pub const PROJECT: &str = "fn";
pub const ENVIRONMENT: &str = "test";
pub const PREFIX: &str = "fn-test";
pub const ACCOUNT: &str = "123456789012";

pub struct Emulator {
    pub endpoint: String,
    pub port: u16,
    pub queue_url: String,
    pub webhook_queue_url: String,
    pub webhook_dlq_url: String,
    pub cluster_arn: String,
    pub task_definition: String,
    pub subnet: String,
    pub security_group: String,
    _moto: testenv::moto::Moto,
}

static EMULATOR: OnceLock<Emulator> = OnceLock::new();

pub fn emulator() -> &'static Emulator {
    EMULATOR.get_or_init(start)
}

fn start() -> Emulator {
    let venv = testenv::venv_bin(&testenv::root());
    let moto = testenv::moto::Moto::start(&testenv::root()).unwrap_or_else(|e| panic!("{e}"));
    // Tasks change state when the test says so (as ECS's do when their containers do), not one
    // step per DescribeTasks as moto would move them.
    // (On a thread of its own: its blocking client may not be dropped in a test's runtime.)
    std::thread::scope(|scope| scope.spawn(|| moto.manual_task_progression()).join().unwrap()).unwrap_or_else(|e| panic!("{e}"));
    let (endpoint, port) = (moto.endpoint.clone(), moto.port);
    // Set once, before any SDK configuration is loaded, by the first test that needs it.
    for (k, v) in moto.sdk_env() {
        std::env::set_var(k, v);
    }
    // The network RunTask needs: EC2 is not among the functions' SDKs, so boto3 (in the same
    // virtualenv as moto) creates it.
    let out = Command::new(venv.join("python"))
        .arg("-c")
        .arg(
            r#"
import boto3
ec2 = boto3.client("ec2")
vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
sg = ec2.create_security_group(GroupName="agent", Description="agent", VpcId=vpc)["GroupId"]
print(subnet, sg)
"#,
        )
        .output()
        .expect("run boto3");
    assert!(out.status.success(), "EC2 setup failed: {}", String::from_utf8_lossy(&out.stderr));
    let ids = String::from_utf8(out.stdout).unwrap();
    let mut ids = ids.split_whitespace();
    let (subnet, security_group) = (ids.next().unwrap().to_owned(), ids.next().unwrap().to_owned());

    let (queue_url, cluster_arn, task_definition, (webhook_queue_url, webhook_dlq_url)) = std::thread::spawn(|| {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let (q, c, t) = create_resources().await;
            (q, c, t, create_webhook_queues(PREFIX).await)
        })
    })
    .join()
    .unwrap();
    Emulator {
        endpoint,
        port,
        queue_url,
        webhook_queue_url,
        webhook_dlq_url,
        cluster_arn,
        task_definition,
        subnet,
        security_group,
        _moto: moto,
    }
}

pub async fn sdk() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

pub fn table() -> String {
    names::table::name(PREFIX)
}
pub fn bucket() -> String {
    names::bucket::name(PREFIX, ACCOUNT)
}
pub fn log_group() -> String {
    names::logs::agent_group(PREFIX)
}

async fn create_resources() -> (String, String, String) {
    let sdk = sdk().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    testenv::table::create_jobs_table(&ddb, &testenv::root(), &table()).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue_url =
        sqs.create_queue().queue_name(names::queue::jobs_name(PREFIX)).send().await.unwrap().queue_url.unwrap();
    testenv::s3::create_outputs_bucket(&aws_sdk_s3::Client::new(&sdk), &bucket()).await.unwrap();
    aws_sdk_cloudwatchlogs::Client::new(&sdk).create_log_group().log_group_name(log_group()).send().await.unwrap();
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let cluster = ecs.create_cluster().cluster_name(names::agent::cluster_name(PREFIX)).send().await.unwrap();
    let cluster_arn = cluster.cluster.unwrap().cluster_arn.unwrap();
    let td_arn = register_agent_task_definition(&ecs).await;
    (queue_url, cluster_arn, td_arn)
}

/// Registers the agent's task definition (as a deploy does: again, a new revision of the family)
/// and returns its ARN with the revision.
pub async fn register_agent_task_definition(ecs: &aws_sdk_ecs::Client) -> String {
    use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode};
    let td = ecs
        .register_task_definition()
        .family(names::agent::task_family(PREFIX))
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("1024")
        .memory("2048")
        .container_definitions(
            ContainerDefinition::builder()
                .name(names::agent::CONTAINER_NAME)
                .image("agent:test")
                .memory(2048)
                .essential(true)
                .build(),
        )
        // As generated/ registers it: RunTask passes this role (iam:PassRole is authorized).
        .execution_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/{}", names::agent::execution_role_name(PREFIX)))
        .send()
        .await
        .unwrap();
    td.task_definition.unwrap().task_definition_arn.unwrap()
}

/// A webhooks queue and its dead-letter queue named for `prefix` (tests that deliver use their
/// own, so no other test takes their messages): (queue URL, DLQ URL).
pub async fn webhook_queues(prefix: &str) -> (String, String) {
    if EMULATOR.get().is_none() {
        // Started on a thread of its own (it blocks); the SDK then finds it through the environment.
        let _ = tokio::task::spawn_blocking(emulator).await;
    }
    create_webhook_queues(prefix).await
}

async fn create_webhook_queues(prefix: &str) -> (String, String) {
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let mut urls = Vec::new();
    for name in [names::queue::webhooks_name(prefix), names::queue::webhooks_dlq_name(prefix)] {
        urls.push(sqs.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap());
    }
    (urls[0].clone(), urls[1].clone())
}

/// The configuration infra-gen would set, pointing at the emulator's resources.
pub fn config() -> Config {
    let e = emulator();
    Config {
        table: table(),
        queue_url: e.queue_url.clone(),
        webhook_queue_url: e.webhook_queue_url.clone(),
        webhook_dlq_url: e.webhook_dlq_url.clone(),
        bucket: bucket(),
        cluster_arn: e.cluster_arn.clone(),
        task_definition: e.task_definition.clone(),
        link_signer_role_arn: format!("arn:aws:iam::{ACCOUNT}:role/{}", Function::Process.role_name(&names::defaults::name_prefix(PROJECT, ENVIRONMENT))),
        subnet_ids: vec![e.subnet.clone()],
        security_group_ids: vec![e.security_group.clone()],
        log_group: log_group(),
        tenant_secrets_path: names::ssm::tenants_path(PROJECT, ENVIRONMENT),
        webhook_secrets_path: names::ssm::webhooks_path(PROJECT, ENVIRONMENT),
        model_role_arn: format!("arn:aws:iam::{ACCOUNT}:role/{}", names::goal::model_role_name(&names::defaults::name_prefix(PROJECT, ENVIRONMENT))),
        computer: testenv::model::settings(None),
        name_prefix: PREFIX.into(),
        ..Config::defaults()
    }
}

/// The stack `config` points at, as IAM names it.
pub fn stack(config: &Config) -> testenv::iam::Stack {
    testenv::iam::Stack {
        project: PROJECT.into(),
        environment: ENVIRONMENT.into(),
        account: ACCOUNT.into(),
        region: names::defaults::AWS_REGION.into(),
        table: config.table.clone(),
        bucket: config.bucket.clone(),
        jobs_queue_url: config.queue_url.clone(),
        jobs_dlq_url: format!("{}/{ACCOUNT}/{}", emulator().endpoint, names::queue::dlq_name(PREFIX)),
        webhooks_queue_url: config.webhook_queue_url.clone(),
        webhooks_dlq_url: config.webhook_dlq_url.clone(),
        cluster_arn: config.cluster_arn.clone(),
        task_definition: config.task_definition.clone(),
        agent_log_group: config.log_group.clone(),
    }
}

/// An SDK configuration whose calls sign as the function acting (functions::identity): each
/// function's role, as generated/ declares it for the stack `config` points at, is registered
/// with the emulator, which authorizes every call as AWS would. Outside a handler, calls sign as
/// the test harness (unchecked).
pub async fn function_sdk(config: &Config) -> aws_config::SdkConfig {
    emulator();
    let keys = testenv::iam::register(&testenv::root(), &emulator().endpoint, &stack(config)).await.unwrap_or_else(|e| panic!("{e}"));
    let keys = keys.into_iter().map(|(f, k)| (f, (k.id, k.secret))).collect();
    let (id, secret) = testenv::moto::HARNESS_KEY;
    functions::identity::sdk_config(&keys, (id.into(), secret.into())).await
}

pub async fn app_with(config: Config) -> App {
    let sdk = function_sdk(&config).await;
    App::new(&sdk, config, Function::ALL.to_vec())
}

/// `app` with every call `function` makes of `operation` struck by `fault` (at most `most`
/// times, when given), through the fault injection's HTTP client; the plan says what struck.
pub async fn app_struck(app: &App, function: Function, operation: &str, fault: testenv::faults::Fault, most: Option<usize>) -> (App, std::sync::Arc<testenv::faults::Plan>) {
    use testenv::faults::{Aim, FaultyClient, Plan, Point};
    let aim = Aim {
        seed: 1,
        target: Some((Point { function, operation: operation.into() }, fault)),
        target_per_mille: 1000,
        background_per_mille: 0,
        duplicate_per_mille: 0,
        most,
    };
    let plan = std::sync::Arc::new(Plan::new(aim));
    let sdk = function_sdk(&app.config).await.to_builder().http_client(FaultyClient::new(plan.clone(), std::sync::Arc::new(functions::identity::current))).build();
    (App::new(&sdk, app.config.clone(), Function::ALL.to_vec()), plan)
}

/// An app whose API keys `key-<tenant>` map to the given tenants.
pub async fn app(tenants: &[&str]) -> App {
    app_on_queue(tenants, None).await
}

/// As [`app`], on the job queue `queue_url` when given (the roles are registered for the queue the
/// app uses, as a deploy grants them for its own queue).
pub async fn app_on_queue(tenants: &[&str], queue_url: Option<String>) -> App {
    let mut config = config();
    if let Some(url) = queue_url {
        config.queue_url = url;
    }
    let app = app_with(config).await;
    for t in tenants {
        key_of(&app, t).await;
    }
    app
}

/// Gives `tenant` the API key `key-<tenant>`: the item Terraform writes beside the key.
pub async fn key_of(app: &App, tenant: &str) {
    let ddb = aws_sdk_dynamodb::Client::new(&sdk().await);
    testenv::table::put_api_key(&ddb, &app.config.table, &format!("key-{tenant}"), tenant).await.unwrap_or_else(|e| panic!("{e}"));
}

/// Gives `tenant` limits of its own: the item Terraform writes from `tenant_limits`.
pub async fn limits_of(app: &App, tenant: &str, max_running: Option<u32>, max_queued: Option<u32>) {
    let ddb = aws_sdk_dynamodb::Client::new(&sdk().await);
    testenv::table::put_limits(&ddb, &app.config.table, tenant, max_running, max_queued).await.unwrap_or_else(|e| panic!("{e}"));
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A job queue of a test's own (its URL), so the test receives only its own messages.
pub async fn own_queue(what: &str) -> String {
    if EMULATOR.get().is_none() {
        // Started on a thread of its own (it blocks); the SDK then finds it through the environment.
        let _ = tokio::task::spawn_blocking(emulator).await;
    }
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    sqs.create_queue().queue_name(unique(what)).send().await.unwrap().queue_url.unwrap()
}

/// A name no other test uses (tests share one emulator).
pub fn unique(what: &str) -> String {
    format!("{what}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub fn request(tenant: &str, method: &str, path: &str, body: &str) -> ApiRequest {
    ApiRequest {
        method: method.into(),
        path: path.into(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
        api_key_id: Some(format!("key-{tenant}")),
        request_id: "test-request".into(),
        ..ApiRequest::default()
    }
}

pub async fn call(app: &App, req: &ApiRequest) -> ApiResponse {
    functions::api::handle(app, req).await
}

pub async fn submit(app: &App, tenant: &str, body: &str) -> String {
    let r = call(app, &request(tenant, "POST", "/jobs", body)).await;
    assert_eq!(r.status, 202, "{}", r.body);
    r.body["task_id"].as_str().unwrap().to_owned()
}

pub async fn get(app: &App, tenant: &str, path: &str) -> ApiResponse {
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    let mut req = request(tenant, "GET", p, "");
    req.query = q
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    call(app, &req).await
}

/// An HTTP request to a pre-signed URL, as an API client makes it (from outside the VPC).
pub async fn http(method: &str, url: &str, body: &[u8]) -> (u16, Vec<u8>) {
    send(reqwest::Client::new(), method, url, body).await
}

/// An HTTP request to a pre-signed URL, as the agent makes it: from inside the VPC, so it reaches
/// S3 through the stack's gateway endpoint (its policy applies, and aws:SourceVpce is set).
pub async fn agent_http(method: &str, url: &str, body: &[u8]) -> (u16, Vec<u8>) {
    send(in_vpc(), method, url, body).await
}

/// An HTTP client on the VPC's route to S3 (testenv::iam::VPC_ROUTE_ENV).
pub fn in_vpc() -> reqwest::Client {
    reqwest::Client::builder().proxy(reqwest::Proxy::http(&emulator().endpoint).unwrap()).build().unwrap()
}

async fn send(client: reqwest::Client, method: &str, url: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let resp = client.request(method, url).body(body.to_vec()).send().await.unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

/// An SQS event as Lambda delivers it.
pub fn sqs_event(messages: &[(&str, u32)]) -> aws_lambda_events::event::sqs::SqsEvent {
    testenv::events::sqs_event(messages.iter().enumerate().map(|(i, (body, count))| testenv::events::Delivery::new(format!("m{i}"), *body, *count)))
}

pub fn job_message(task_id: &str) -> String {
    serde_json::json!({ names::queue::MESSAGE_TASK_ID: task_id }).to_string()
}

/// An `ECS Task State Change` event as EventBridge delivers it.
pub fn task_event(cluster: &str, task_arn: &str, task_id: &str, last_status: TaskStatus, container: ContainerState, stop_code: Option<StopCode>) -> serde_json::Value {
    let detail = TaskStateChange {
        task_arn: task_arn.into(),
        cluster_arn: Some(cluster.into()),
        last_status,
        desired_status: Some(if last_status == TaskStatus::Stopped { TaskStatus::Stopped } else { TaskStatus::Running }),
        started_by: Some(task_id.into()),
        stop_code,
        stopped_reason: stop_code.map(|_| "stopped for a test".into()),
        containers: vec![container],
        ..TaskStateChange::default()
    };
    testenv::events::to_json(&testenv::events::task_state_change(detail))
}

/// The agent container, stopped with `exit_code` and `reason`.
pub fn container(exit_code: Option<i64>, reason: Option<&str>) -> ContainerState {
    ContainerState { name: names::agent::CONTAINER_NAME.into(), last_status: Some(TaskStatus::Stopped), exit_code, reason: reason.map(str::to_owned) }
}

/// The agent container, running.
pub fn running_container() -> ContainerState {
    ContainerState { name: names::agent::CONTAINER_NAME.into(), last_status: Some(TaskStatus::Running), exit_code: None, reason: None }
}

/// Moves a job's deadline an hour into the past, so the sweep treats it as overdue.
pub async fn make_overdue(app: &App, id: &str) {
    use aws_sdk_dynamodb::types::AttributeValue;
    app.store
        .client
        .update_item()
        .table_name(&app.store.table)
        .key(names::table::TASK_ID, AttributeValue::S(id.to_owned()))
        .update_expression("SET #d = :d")
        .expression_attribute_names("#d", names::table::DEADLINE_AT)
        .expression_attribute_values(":d", AttributeValue::N((functions::time::now_millis() / 1000 - 3600).to_string()))
        .send()
        .await
        .unwrap();
}

/// A SecureString in SSM, as an operator puts it (`aws ssm put-parameter --type SecureString`).
pub async fn put_secure(name: &str, value: &str) {
    testenv::ssm::put_secure(&aws_sdk_ssm::Client::new(&sdk().await), name, value).await.unwrap();
}

/// The metric lines one app writes: its own namespace (unique), so tests running beside it in
/// this process write none of them. Each line is checked against the EMF specification.
pub struct MetricLines {
    namespace: String,
    all: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl MetricLines {
    /// From now on, `app` writes its metric lines in a namespace of its own.
    pub fn of(app: &mut App) -> MetricLines {
        let namespace = format!("test/{}", unique("metrics"));
        app.store.metrics.namespace = namespace.clone();
        app.config.metrics_namespace = namespace.clone();
        MetricLines { namespace, all: logging::metrics::buffer() }
    }

    /// How many lines it wrote, and their bytes as log lines (JSON and a newline).
    pub fn written(&self) -> (usize, usize) {
        let all = self.all.lock().unwrap();
        let mine: Vec<&serde_json::Value> = all.iter().filter(|l| l["_aws"]["CloudWatchMetrics"][0]["Namespace"] == self.namespace.as_str()).collect();
        (mine.len(), mine.iter().map(|l| l.to_string().len() + 1).sum())
    }

    /// The values of `metric` written with exactly `dimensions` (a JSON object).
    pub fn values(&self, metric: names::metrics::Metric, dimensions: serde_json::Value) -> Vec<f64> {
        let lines: Vec<serde_json::Value> = self.all.lock().unwrap().iter().filter(|l| l["_aws"]["CloudWatchMetrics"][0]["Namespace"] == self.namespace.as_str()).cloned().collect();
        let mut want: Vec<(String, String)> = dimensions.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect();
        want.sort();
        let mut out = Vec::new();
        for l in lines {
            for d in names::metrics::data(&l).unwrap_or_else(|e| panic!("not valid EMF ({e}): {l}")) {
                let mut dims = d.dimensions.clone();
                dims.sort();
                if d.metric == metric.name && dims == want {
                    out.push(d.value);
                }
            }
        }
        out
    }
}
