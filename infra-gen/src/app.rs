//! The app: every resource of the stack wired together. Variables keep the seed's names and
//! defaults; every shared name comes from the `names` crate.

use crate::constructs::role::Role;
use std::collections::BTreeMap;

use names::contract::{Action, EnvVar, Target};
use names::{defaults as d, Function as Fn};
use serde_json::json;

use crate::constructs::agent::{AgentProps, AgentService};
use crate::constructs::api::{ApiProps, RestApiConstruct, TenantKeys};
use crate::constructs::bucket::OutputsBucket;
use crate::constructs::function::{Function, FunctionProps};
use crate::constructs::key::Key;
use crate::constructs::network::{Network, NetworkProps};
use crate::constructs::queue::{JobQueue, QueueProps, QueueSpec};
use crate::constructs::table::JobTable;
use crate::constructs::{events, Context};
use crate::model::resources::iam::{CallerIdentity, Partition, Region};
use crate::model::resources::observability::SnsTopic;
use crate::model::resources::storage::{DynamodbTable, DynamodbTableItem};
use crate::model::{func, Error, File, Output, Stack, Val, ValMap, Variable};

/// Choices made when synthesizing (not Terraform variables: they change the resource graph).
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// One NAT gateway per AZ instead of one for the VPC.
    pub nat_per_az: bool,
    /// The tenants' default (`var.tenants`); the benchmark synthesizes 1000.
    pub tenants: Vec<String>,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig { nat_per_az: false, tenants: d::TENANTS.iter().map(|t| t.to_string()).collect() }
    }
}

/// Each tenant's own limits (`tenant_limits`) as an item of the table (`names::table::limits_key`)
/// in the sparse index's `limits` partition, which the reconciler lists and writes onto the
/// tenant's counter: only the limits set, as numbers.
fn tenant_limit_items(s: &mut Stack, table: &crate::model::Ref<DynamodbTable>, limits: &crate::model::VarRef) -> Result<(), Error> {
    use names::table as t;
    let base = func::object([
        (t::TASK_ID, func::object([("S", Val::lit(t::LIMITS_PREFIX) + &Val::expr("each.key"))])),
        (t::UNFINISHED, func::object([("S", Val::lit(t::LIMITS_PARTITION))])),
        (t::DEADLINE_AT, func::object([("N", Val::lit("0"))])),
    ]);
    let set = Val::expr(format!(
        "{{for k, v in {{ \"{}\" = each.value.max_running, \"{}\" = each.value.max_queued }} : k => {{ N = tostring(v) }} if v != null}}",
        t::MAX_RUNNING,
        t::MAX_QUEUED
    ));
    s.add_with(
        File::Storage,
        "tenant_limits",
        DynamodbTableItem { table_name: table.name(), hash_key: t::TASK_ID.into(), item: func::jsonencode(&func::merge(&[base, set])) },
        crate::model::Meta::for_each(limits.val()),
    )?;
    Ok(())
}

/// A name part AWS accepts everywhere the stack uses it: lower-case letters and digits in
/// dash-separated words (ECR refuses `--`, S3 refuses `xn--` and a trailing dash).
pub const NAME_PART_REGEX: &str = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$";
/// Prefixes S3 reserves for bucket names (every bucket name here starts with `project_name`).
pub const RESERVED_BUCKET_PREFIXES: &[&str] = &["xn--", "sthree-", "amzn-s3-demo-"];

/// Seconds the webhook function may run per batch: one attempt's 10 s, with room for its AWS
/// calls (a batch's attempts run at once).
pub const WEBHOOK_TIMEOUT_SECONDS: u32 = 30;

/// The oldest Terraform that runs generated/: S3 native state locking (`use_lockfile`) is 1.11's.
pub const TERRAFORM_MIN_VERSION: &str = "1.11";

/// The AWS provider version the generated JSON is written for (and checked against).
pub const AWS_PROVIDER_VERSION: &str = "~> 6.0";

pub fn build(config: &AppConfig) -> Result<Stack, Error> {
    let mut s = Stack::new();
    s.set_header(
        File::Versions,
        "terraform",
        json!({
            "required_version": format!(">= {TERRAFORM_MIN_VERSION}"),
            "required_providers": {"aws": {"source": "hashicorp/aws", "version": AWS_PROVIDER_VERSION}},
            // State in S3, encrypted, locked by S3 itself (a lock object beside the state; no
            // DynamoDB table). Partial: `make deploy` gives bucket, key and region at init
            // (scripts/deploy.sh state-backend).
            "backend": {"s3": {"encrypt": true, "use_lockfile": true}}
        }),
    );

    // Variables: the seed's names and defaults, then what the stack adds.
    let region = s.variable("aws_region", Variable::new("string", d::AWS_REGION, "AWS region to deploy into"))?;
    let reserved = RESERVED_BUCKET_PREFIXES.iter().map(|p| format!(" && !startswith({{v}}, \"{p}\")")).collect::<String>();
    let project = s.variable(
        "project_name",
        Variable::new("string", d::PROJECT_NAME, "Project name; the start of every resource name")
            .validate(
                &format!("can(regex(\"{NAME_PART_REGEX}\", {{v}})) && length({{v}}) >= 2 && length({{v}}) <= 21{reserved}"),
                "project_name: 2-21 lower-case letters and digits, starting with a letter, in words joined by single dashes (no dash at the end), not starting with sthree- or amzn-s3-demo-.",
            ),
    )?;
    let environment = s.variable(
        "environment",
        Variable::new("string", d::ENVIRONMENT, "Environment name (dev, staging, prod)")
            .validate(
                &format!("can(regex(\"{NAME_PART_REGEX}\", {{v}})) && length({{v}}) <= 10"),
                "environment: up to 10 lower-case letters and digits, starting with a letter, in words joined by single dashes (no dash at the end).",
            ),
    )?;
    let agent_cpu = s.variable(
        "agent_cpu",
        Variable::new("number", d::AGENT_CPU, "CPU units of an agent task (1024 = 1 vCPU)")
            .validate("contains([256, 512, 1024, 2048, 4096, 8192, 16384], {v})", "agent_cpu must be a Fargate CPU size: 256, 512, 1024, 2048, 4096, 8192 or 16384."),
    )?;
    let agent_memory = s.variable(
        "agent_memory",
        Variable::new("number", d::AGENT_MEMORY, "Memory (MiB) of an agent task; must form a Fargate pair with agent_cpu (checked at plan)")
            .validate("{v} >= 512 && {v} <= 122880", "agent_memory must be between 512 and 122880 MiB."),
    )?;
    let rate = s.variable(
        "api_rate_limit",
        Variable::new("number", d::API_RATE_LIMIT, "Steady-state requests per second per API key")
            .validate("{v} > 0", "api_rate_limit must be positive."),
    )?;
    let burst = s.variable(
        "api_burst_limit",
        Variable::new("number", d::API_BURST_LIMIT, "Burst of requests per API key")
            .validate("{v} > 0", "api_burst_limit must be positive."),
    )?;
    let tenants = s.variable(
        "tenants",
        Variable::new("list(string)", json!(config.tenants), "Tenant ids; each gets its own API key")
            .validate(
                "length({v}) > 0 && alltrue([for t in {v} : can(regex(\"^[a-z0-9][a-z0-9-]{0,62}$\", t))])",
                "tenants: at least one (API Gateway's quota of API keys per region, 10,000 by default, is the limit; each rotation holds two); each up to 63 lower-case letters, digits and dashes.",
            ),
    )?;
    let max_running = s.variable(
        "tenant_max_running",
        Variable::new("number", d::TENANT_MAX_RUNNING, "Jobs of one tenant started at once; its further jobs wait, queued (tenant_limits overrides it per tenant)")
            .validate("{v} >= 1 && {v} <= 1000 && floor({v}) == {v}", "tenant_max_running must be a whole number from 1 to 1000."),
    )?;
    let max_queued = s.variable(
        "tenant_max_queued",
        Variable::new("number", d::TENANT_MAX_QUEUED, "Jobs of one tenant queued at once; a submit over it is answered 429 TENANT_QUEUE_FULL (tenant_limits overrides it per tenant)")
            .validate("{v} >= 1 && {v} <= 1000000 && floor({v}) == {v}", "tenant_max_queued must be a whole number from 1 to 1000000."),
    )?;
    let tenant_limits = s.variable(
        "tenant_limits",
        Variable::new(
            "map(object({ max_running = optional(number), max_queued = optional(number) }))",
            json!({}),
            "Per-tenant limits over tenant_max_running / tenant_max_queued, e.g. { acme = { max_running = 20 } }; they apply within a minute of a deploy (the reconciler writes them onto the tenant's counter)",
        )
        .validate("alltrue([for tenant, l in {v} : contains(var.tenants, tenant)])", "tenant_limits: every tenant named must be one of var.tenants.")
        .validate(
            "alltrue([for tenant, l in {v} : (l.max_running == null ? true : l.max_running >= 1 && l.max_running <= 1000 && floor(l.max_running) == l.max_running) && (l.max_queued == null ? true : l.max_queued >= 1 && l.max_queued <= 1000000 && floor(l.max_queued) == l.max_queued)])",
            "tenant_limits: max_running is a whole number from 1 to 1000, max_queued from 1 to 1000000.",
        ),
    )?;
    let retention = s.variable(
        "log_retention_days",
        Variable::new("number", d::LOG_RETENTION_DAYS, "Days CloudWatch keeps every log group's events")
            .validate(
                "contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], {v})",
                "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653).",
            ),
    )?;
    let expiry = s.variable(
        "output_expiry_days",
        Variable::new("number", d::OUTPUT_EXPIRY_DAYS, "Days job outputs stay in S3").validate("{v} >= 1", "output_expiry_days must be at least 1."),
    )?;
    let image_tag = s.variable(
        "agent_image_tag",
        Variable::new("string", "", "Agent image tag in ECR; `make deploy` pushes the image and sets it (agent-<hash>-<arch>); empty stops the plan"),
    )?;
    let architecture = s.variable(
        "lambda_architecture",
        Variable::new("string", "arm64", "CPU architecture of the Lambda functions: arm64 or x86_64 (`make deploy LAMBDA_ARCH=`)")
            .validate("contains([\"arm64\", \"x86_64\"], {v})", "lambda_architecture must be arm64 or x86_64."),
    )?;
    let agent_architecture = s.variable(
        "agent_architecture",
        Variable::new("string", "arm64", "CPU architecture of the agent's Fargate tasks and image: arm64 (about 20% cheaper) or x86_64 (`make deploy AGENT_ARCH=`)")
            .validate("contains([\"arm64\", \"x86_64\"], {v})", "agent_architecture must be arm64 or x86_64."),
    )?;
    let (x86, arm) = (d::FARGATE_PRICES_US_EAST_1_X86_64, d::FARGATE_PRICES_US_EAST_1_ARM64);
    let fargate_prices = s.variable(
        "fargate_prices",
        Variable::new(
            "map(object({ vcpu_hour = number, gb_hour = number }))",
            json!({
                "us-east-1/x86_64": { "vcpu_hour": x86.0, "gb_hour": x86.1 },
                "us-east-1/arm64": { "vcpu_hour": arm.0, "gb_hour": arm.1 },
            }),
            "Fargate's Linux on-demand prices (US dollars per vCPU-hour and per GB-hour) by \"<region>/<architecture>\": what GET /usage estimates a job's cost with. The default has us-east-1's; add your region's (aws.amazon.com/fargate/pricing), or its jobs are priced 0",
        )
        .validate("alltrue([for k, p in {v} : can(regex(\"^[a-z0-9-]+/(arm64|x86_64)$\", k)) && p.vcpu_hour >= 0 && p.gb_hour >= 0])", "fargate_prices: keys \"<region>/<arm64|x86_64>\", prices 0 or more."),
    )?;
    let max_attempts = s.variable(
        "max_receive_count",
        Variable::new("number", d::MAX_RECEIVE_COUNT, "Deliveries of a job message before it goes to the dead-letter queue")
            .validate("{v} >= 1 && {v} <= 10", "max_receive_count must be between 1 and 10."),
    )?;
    let zones = s.variable(
        "availability_zones",
        Variable::new("list(string)", json!([]), "Exactly two availability zone names for the subnets; empty means the region's first two available zones")
            .validate("length({v}) == 0 || length({v}) == 2", "availability_zones: give exactly two zone names, or none."),
    )?;
    let destroy_data = s.variable(
        "allow_destroy_with_data",
        Variable::new("bool", false, "Let `terraform destroy` delete the jobs table (else deletion-protected), the outputs bucket and the image repository with their contents (`make destroy` sets it)"),
    )?;
    let generations = s.variable(
        "api_key_generations",
        Variable::new(
            "map(list(number))",
            json!({}),
            "API key generations by tenant (absent: [1]). A rotation gives a tenant two consecutive generations, [n, n+1], both valid, then only [n+1] (scripts/rotate-key.sh keeps them in api-keys.tfvars.json)",
        )
        .validate(
            "alltrue([for tenant, gens in {v} : contains(var.tenants, tenant)])",
            "api_key_generations: every tenant named must be one of var.tenants.",
        )
        .validate(
            "alltrue([for tenant, gens in {v} : length(gens) >= 1 && length(gens) <= 2 && alltrue([for g in gens : g >= 1 && floor(g) == g]) && (length(gens) == 1 || gens[length(gens) - 1] == gens[0] + 1)])",
            "api_key_generations: each tenant has one generation (a whole number from 1), or two consecutive ones while its key rotates.",
        ),
    )?;
    let manage_api_account = s.variable(
        "manage_api_gateway_account",
        Variable::new(
            "bool",
            true,
            "Set the region's API Gateway CloudWatch Logs role (aws_api_gateway_account: ONE setting per account and region, shared by every REST API there). Turn it off when another stack already sets it; that role then writes this API's logs",
        ),
    )?;
    let agent_secrets = s.variable(
        "agent_secrets",
        Variable::new(
            "map(string)",
            json!({}),
            "Environment variables of the agent container filled from SSM SecureString parameters: NAME => parameter name below /<project_name>/<environment>/agent/ (none by default; the agent itself reads none)",
        )
        .validate(
            "alltrue([for name, parameter in {v} : can(regex(\"^[A-Z][A-Z0-9_]*$\", name)) && !startswith(name, \"AGENT_\") && !startswith(name, \"AWS_\") && !startswith(name, \"ECS_\") && can(regex(\"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$\", parameter))])",
            "agent_secrets: upper-case variable names not starting with AGENT_, AWS_ or ECS_, each mapped to a parameter name (letters, digits, _ . - and /) below /<project_name>/<environment>/agent/.",
        ),
    )?;
    let warm_pool = s.variable(
        "warm_pool_size",
        Variable::new(
            "number",
            names::defaults::WARM_POOL_SIZE,
            "Agent tasks kept started and waiting for jobs, each taking one job (about a second from submit to RUNNING instead of Fargate's 30-60 s); each is a running task: see docs/operations.md, Warm starts, for the cost",
        )
        .validate(
            &format!("{{v}} >= 0 && {{v}} <= {} && floor({{v}}) == {{v}}", names::defaults::MAX_WARM_POOL_SIZE),
            &format!("warm_pool_size must be a whole number from 0 to {}.", names::defaults::MAX_WARM_POOL_SIZE),
        ),
    )?;
    let retry_seconds = s.variable(
        "webhook_retry_seconds",
        Variable::new(
            "list(number)",
            json!(names::webhook::DEFAULT_RETRY_SECONDS),
            "Seconds before each retry of a failed webhook delivery (after the first attempt); then the event goes to the webhooks DLQ",
        )
        .validate(
            &format!("length({{v}}) <= 20 && alltrue([for w in {{v}} : w >= 1 && w <= {} && floor(w) == w])", names::webhook::MAX_RETRY_SECONDS),
            &format!("webhook_retry_seconds: at most 20 retries, each a whole number of seconds from 1 to {}.", names::webhook::MAX_RETRY_SECONDS),
        ),
    )?;
    let prices = |p: &names::goal::Prices| json!({ "input": p.input.0, "output": p.output.0, "cache_write": p.cache_write.0, "cache_read": p.cache_read.0 });
    let computer_models = s.variable(
        names::vars::COMPUTER_USE_MODELS,
        Variable::new(
            "map(object({ input = number, output = number, cache_write = number, cache_read = number }))",
            json!({ names::goal::DEFAULT_BEDROCK_MODEL: prices(&names::goal::SONNET_4_5_PRICES) }),
            "Computer-use jobs' models: \"bedrock/<model or inference profile id>\" (called with a key minted per job; enable the model in Bedrock's model access) or \"anthropic/<model id>\" (the tenant's own key, a tenant secret the job names), each with its prices in US dollars per million tokens (what a job's estimated cost and max_cost_usd count). Empty: no computer-use jobs",
        )
        .validate(
            &format!(
                "length({{v}}) <= {} && alltrue([for k, p in {{v}} : can(regex(\"^(bedrock|anthropic)/[A-Za-z0-9._:/-]{{1,{}}}$\", k)) && p.input >= 0 && p.output >= 0 && p.cache_write >= 0 && p.cache_read >= 0])",
                names::goal::MAX_MODELS,
                names::goal::MODEL_ID_MAX_CHARS
            ),
            &format!(
                "computer_use_models: at most {} models, keys \"bedrock/<id>\" or \"anthropic/<id>\" (ids of at most {} letters, digits and ._:/-), prices 0 or more.",
                names::goal::MAX_MODELS,
                names::goal::MODEL_ID_MAX_CHARS
            ),
        ),
    )?;
    let computer_default_model = s.variable(
        "computer_use_default_model",
        Variable::new("string", names::goal::DEFAULT_BEDROCK_MODEL, "The model of a computer-use job that names none (one of computer_use_models; empty: jobs must name one)")
            .validate("{v} == \"\" || contains(keys(var.computer_use_models), {v})", "computer_use_default_model must be empty or one of computer_use_models."),
    )?;
    let limits = |l: &names::goal::Limits| json!({ "max_steps": l.max_steps, "max_tokens": l.max_tokens, "max_cost_usd": l.max_cost_usd.0 });
    let computer_limits = s.variable(
        "computer_use_limits",
        Variable::new(
            "object({ default = object({ max_steps = number, max_tokens = number, max_cost_usd = number }), max = object({ max_steps = number, max_tokens = number, max_cost_usd = number }) })",
            json!({ "default": limits(&names::goal::DEFAULT_LIMITS), "max": limits(&names::goal::MAX_LIMITS) }),
            "Computer-use jobs' limits: what a job gets when it asks for none (default) and the most it may ask for (max): model turns, tokens, estimated model cost in US dollars",
        )
        .validate(
            &format!(
                "alltrue([for l in [{{v}}.default, {{v}}.max] : l.max_steps >= {} && l.max_steps <= {} && floor(l.max_steps) == l.max_steps && l.max_tokens >= {} && l.max_tokens <= {} && l.max_cost_usd >= {} && l.max_cost_usd <= {}])",
                names::goal::STEPS.start(), names::goal::STEPS.end(), names::goal::TOKENS.start(), names::goal::TOKENS.end(), names::goal::COST_USD.start(), names::goal::COST_USD.end()
            ),
            "computer_use_limits: max_steps a whole number from 1 to 500, max_tokens from 1000 to 100000000, max_cost_usd from 0.001 to 1000.",
        ),
    )?;
    let computer_endpoints = s.variable(
        names::vars::COMPUTER_USE_ENDPOINTS,
        Variable::new("map(string)", json!({}), "Base URLs of the model services by provider (bedrock, anthropic) over their own: for a local stand-in; leave empty in AWS")
            .validate(
                &format!("alltrue([for k, u in {{v}} : contains([\"bedrock\", \"anthropic\"], k) && can(regex(\"^https?://\", u)) && length(u) <= {}])", names::goal::ENDPOINT_MAX_CHARS),
                &format!("computer_use_endpoints: keys bedrock or anthropic, values http(s) URLs of at most {} characters.", names::goal::ENDPOINT_MAX_CHARS),
            ),
    )?;
    let search_template = s.variable(
        names::vars::AGENT_SEARCH_URL_TEMPLATE,
        Variable::new("string", names::agent::DEFAULT_SEARCH_URL_TEMPLATE, "Search page the agent opens; {query} is replaced"),
    )?;

    s.set_header(
        File::Main,
        "provider",
        json!({"aws": [{
            "region": region.val(),
            "default_tags": [{"tags": {
                "Project": project.val(),
                "Environment": environment.val(),
                "ManagedBy": "infra-gen"
            }}]
        }]}),
    );
    let prefix = s.local("name_prefix", project.val() + "-" + &environment.val())?;
    let caller = s.data(File::Main, "current", CallerIdentity {})?;
    let region_data = s.data(File::Main, "current", Region {})?;
    // A job's task size and its price in this region and architecture (0 where fargate_prices has
    // none): what each job's end adds to its tenant's usage.
    let price = func::lookup(
        &fargate_prices.val(),
        &(region_data.region() + "/" + &agent_architecture.val()),
        &func::object([("vcpu_hour", Val::Int(0)), ("gb_hour", Val::Int(0))]),
    );
    let pricing = func::jsonencode(&func::object([
        ("vcpu", Val::expr(format!("{} / 1024", agent_cpu.val().as_expr()))),
        ("memory_gb", Val::expr(format!("{} / 1024", agent_memory.val().as_expr()))),
        ("vcpu_hour", Val::expr(format!("{}.vcpu_hour", price.as_expr()))),
        ("gb_hour", Val::expr(format!("{}.gb_hour", price.as_expr()))),
    ]));
    let partition = s.data(File::Main, "current", Partition {})?;
    let ctx = Context {
        prefix: prefix.val(),
        project: project.val(),
        environment: environment.val(),
        account_id: caller.account_id(),
        region: region_data.region(),
        partition: partition.partition(),
        dns_suffix: partition.dns_suffix(),
        log_retention_days: retention.val(),
    };

    let key = Key::new(&mut s, &ctx)?;
    let alarms = s.add(
        File::Observability,
        "alarms",
        SnsTopic { name: ctx.prefix.clone() + "-alarms", kms_master_key_id: Some(key.arn()), ..Default::default() },
    )?;
    // The roles that sign the agents' upload links (by ARN: the bucket's and the S3 endpoint's
    // policies name them before they exist).
    let writers: Vec<Val> = Fn::ALL
        .into_iter()
        .filter(|f| names::contract::calls(*f).contains(&(Action::S3PutObject, Target::JobObjects)))
        .map(|f| ctx.role_arn(ctx.name(|p| f.role_name(p))))
        .collect();
    let network = Network::new(
        &mut s,
        &ctx,
        &key,
        NetworkProps { cidr: "10.0.0.0/16", nat_per_az: config.nat_per_az, zones, upload_signers: writers.clone() },
    )?;
    // Deletion protection: off only when `make destroy` says the data may go.
    let table = JobTable::new(&mut s, &ctx, &key, func::not(&destroy_data.val()))?;
    let queue = JobQueue::new(
        &mut s,
        &ctx,
        &key,
        &alarms,
        QueueProps { consumer_timeout_seconds: d::PROCESS_TIMEOUT_SECONDS, max_receive_count: max_attempts.val() },
        &QueueSpec::JOBS,
    )?;
    // A webhook attempt takes at most 10 s; a batch's attempts run at once.
    let webhooks = JobQueue::new(
        &mut s,
        &ctx,
        &key,
        &alarms,
        QueueProps { consumer_timeout_seconds: WEBHOOK_TIMEOUT_SECONDS, max_receive_count: Val::Int(d::MAX_RECEIVE_COUNT.into()) },
        &QueueSpec::WEBHOOKS,
    )?;
    let bucket = OutputsBucket::new(&mut s, &ctx, &key, expiry.val(), destroy_data.val(), &network.s3_endpoint, writers)?;
    let agent = AgentService::new(
        &mut s,
        &ctx,
        &key,
        AgentProps {
            force_delete: destroy_data.val(),
            cpu: agent_cpu,
            memory: agent_memory,
            image_tag,
            architecture: agent_architecture,
            search_url_template: search_template,
            secrets: agent_secrets,
        },
    )?;

    // Each API key's tenant, and each tenant's own limits, as items of the table the functions
    // read (not their environment, whose 4 KB would cap how many tenants there may be).
    let keys = TenantKeys::new(&mut s, &ctx, &tenants, &generations)?;
    keys.tenant_items(&mut s, &table.table)?;
    tenant_limit_items(&mut s, &table.table, &tenant_limits)?;

    // Computer-use jobs' Bedrock keys come from sessions of this role, which the process function
    // assumes with a session policy that names one job's model (functions::aws::Models); the
    // role itself may invoke any Bedrock model (the session narrows it), nothing else.
    let model_role_name = ctx.name(names::goal::model_role_name);
    let process_role_name = ctx.name(|p| Fn::Process.role_name(p));
    let model_role = Role::with_trust(
        &mut s,
        File::Functions,
        "model_access",
        model_role_name,
        vec![Role::trust_role(&ctx, "TrustTheProcessFunction", &process_role_name)],
        "Computer-use jobs: sessions of it, narrowed to one job's model, mint the job's short-term Bedrock API key",
    )?;
    model_role.grant(
        &mut s,
        crate::model::iam::Statement::allow(
            "InvokeModels",
            &["bedrock:InvokeModel"],
            vec![
                Val::lit("arn:") + &ctx.partition + ":bedrock:*::foundation-model/*",
                Val::lit("arn:") + &ctx.partition + ":bedrock:*:" + &ctx.account_id + ":inference-profile/*",
            ],
        ),
    )?;
    model_role.grant(&mut s, crate::model::iam::Statement::allow_unscoped("UseBedrockApiKeys", &["bedrock:CallWithBearerToken"])?)?;
    let computer_use = func::jsonencode(&func::object([
        ("models", computer_models.val()),
        ("default_model", computer_default_model.val()),
        ("default_limits", Val::expr(format!("{}.default", computer_limits.val().as_expr()))),
        ("max_limits", Val::expr(format!("{}.max", computer_limits.val().as_expr()))),
        ("endpoints", computer_endpoints.val()),
    ]));
    // Every value a function may read; each function gets exactly the variables the shared
    // contract (`names::contract::env_vars`) names for it.
    let subnets = func::join(",", &Val::List(network.private_subnets.iter().map(|s| s.id()).collect()));
    // Every value a function may read; a new variable in the contract is a compile error here.
    let value = |var: EnvVar| -> Val {
        match var {
            EnvVar::TableName => table.table.name(),
            EnvVar::QueueUrl => queue.queue.url(),
            EnvVar::JobTtlDays => Val::Int(d::JOB_TTL_DAYS.into()),
            EnvVar::BucketName => bucket.bucket.bucket(),
            EnvVar::LogGroup => agent.log_group.name(),
            EnvVar::ClusterArn => agent.cluster.arn(),
            EnvVar::TaskDefinition => agent.task_definition.arn(),
            // Only the process function signs agents' links: its own role.
            EnvVar::LinkSignerRoleArn => ctx.role_arn(crate::constructs::render_pattern(|p| Fn::Process.role_name(p), &ctx.prefix)),
            EnvVar::SubnetIds => subnets.clone(),
            EnvVar::SecurityGroupIds => network.agent_security_group.id(),
            EnvVar::ContainerName => names::agent::CONTAINER_NAME.into(),
            EnvVar::MaxAttempts => max_attempts.val(),
            EnvVar::TimeoutGraceSeconds => Val::Int(d::TIMEOUT_GRACE_SECONDS.into()),
            EnvVar::TenantLimitDefaults => func::jsonencode(&func::object([("max_running", max_running.val()), ("max_queued", max_queued.val())])),
            EnvVar::TenantSecretsPath => crate::constructs::render_pattern2(names::ssm::tenants_path, &ctx.project, &ctx.environment),
            EnvVar::WebhookQueueUrl => webhooks.queue.url(),
            EnvVar::WebhookDlqUrl => webhooks.dlq.url(),
            EnvVar::WebhookSecretsPath => crate::constructs::render_pattern2(names::ssm::webhooks_path, &ctx.project, &ctx.environment),
            EnvVar::WebhookRetrySeconds => func::join(",", &retry_seconds.val()),
            EnvVar::WarmPoolSize => warm_pool.val(),
            EnvVar::MetricsNamespace => crate::constructs::render_pattern2(names::metrics::namespace, &ctx.project, &ctx.environment),
            EnvVar::FargatePricing => pricing.clone(),
            EnvVar::ComputerUse => computer_use.clone(),
            EnvVar::ModelRoleArn => model_role.arn(),
            EnvVar::NamePrefix => ctx.prefix.clone(),
        }
    };
    let function = |s: &mut Stack, f: Fn, description: &'static str, timeout: u32| -> Result<Function, Error> {
        let mut environment = ValMap::new();
        for (var, _) in names::contract::env_vars(f) {
            environment.insert(var.name().to_string(), value(*var));
        }
        let function = Function::new(
            s,
            &ctx,
            &key,
            FunctionProps { function: f, description, timeout_seconds: timeout, memory_mb: 256, architecture: architecture.clone(), environment },
        )?;
        grant_contract(s, &ctx, &function, Grantors { model_role: &model_role, table: &table, queue: &queue, webhooks: &webhooks, bucket: &bucket, agent: &agent, key: &key })?;
        Ok(function)
    };

    // Each function's environment and grants come from its contract (`names::contract`).
    let submit = function(&mut s, Fn::Submit, "POST /jobs: validates and records a job, then queues it", 10)?;
    let status = function(&mut s, Fn::Status, "GET /jobs/{task_id}: a job and pre-signed links to its outputs", 10)?;
    let logs = function(&mut s, Fn::Logs, "GET /jobs/{task_id}/logs: the job container's log events", 10)?;
    let list = function(&mut s, Fn::List, "GET /jobs: the caller's jobs, newest first", 10)?;
    let cancel = function(&mut s, Fn::Cancel, "DELETE /jobs/{task_id}: cancels a job and stops its task", 10)?;
    let process = function(&mut s, Fn::Process, "Job queue consumer: claims a job and starts its agent task", d::PROCESS_TIMEOUT_SECONDS)?;
    // After the role may read the queue: a mapping created first fails its first polls.
    s.add_with(
        File::Functions,
        "process_jobs",
        crate::model::resources::compute::LambdaEventSourceMapping {
            event_source_arn: queue.queue.arn(),
            function_name: process.lambda.arn(),
            batch_size: Some(Val::Int(10)),
            maximum_batching_window_in_seconds: Some(Val::Int(d::BATCHING_WINDOW_SECONDS.into())),
            function_response_types: vec!["ReportBatchItemFailures".into()],
            scaling_config: Some(crate::model::resources::compute::ScalingConfig {
                maximum_concurrency: Val::Int(d::PROCESS_MAX_CONCURRENCY.into()),
            }),
        },
        crate::model::Meta { depends_on: vec![process.role.policy_address()], ..Default::default() },
    )?;

    let reconcile = function(
        &mut s,
        Fn::Reconcile,
        "ECS task state changes and the timeout sweep: moves jobs through their lifecycle",
        60,
    )?;
    events::task_state_changes(&mut s, &ctx, &agent, &reconcile)?;
    events::schedule(&mut s, &ctx, "rate(5 minutes)", &reconcile)?;

    let webhook = function(&mut s, Fn::Webhook, "Webhooks queue consumer: delivers finished jobs' signed events and schedules retries", WEBHOOK_TIMEOUT_SECONDS)?;
    s.add_with(
        File::Functions,
        "deliver_webhooks",
        crate::model::resources::compute::LambdaEventSourceMapping {
            event_source_arn: webhooks.queue.arn(),
            function_name: webhook.lambda.arn(),
            batch_size: Some(Val::Int(10)),
            maximum_batching_window_in_seconds: Some(Val::Int(d::BATCHING_WINDOW_SECONDS.into())),
            function_response_types: vec!["ReportBatchItemFailures".into()],
            scaling_config: Some(crate::model::resources::compute::ScalingConfig {
                maximum_concurrency: Val::Int(d::PROCESS_MAX_CONCURRENCY.into()),
            }),
        },
        crate::model::Meta { depends_on: vec![webhook.role.policy_address()], ..Default::default() },
    )?;

    process.alarm_on_errors(&mut s, &ctx, &alarms)?;
    reconcile.alarm_on_errors(&mut s, &ctx, &alarms)?;
    webhook.alarm_on_errors(&mut s, &ctx, &alarms)?;

    let by_fn: BTreeMap<Fn, &Function> =
        [&submit, &status, &logs, &list, &cancel].into_iter().map(|f| (f.function, f)).collect();
    let api = RestApiConstruct::new(
        &mut s,
        &ctx,
        &key,
        &by_fn,
        ApiProps { keys: &keys, rate_limit: rate, burst_limit: burst, manage_account: manage_api_account },
    )?;

    // What an operator watches: alarms to the topic (and an e-mail), and the dashboard.
    let alarm_email = s.variable(
        "alarm_email",
        Variable::new("string", json!(""), "E-mail address subscribed to the alarms' SNS topic (empty: none; subscribe other endpoints to the alarm_topic_arn output). AWS e-mails a confirmation link first")
            .validate(r#"{v} == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", {v}))"#, "alarm_email must be empty or an e-mail address."),
    )?;
    let failed_jobs = s.variable(
        "alarm_failed_jobs",
        Variable::new("number", 10, "Failed jobs in 15 minutes above which the jobs-failing alarm fires (docs/runbook.md#jobs-failing)")
            .validate("{v} >= 0 && floor({v}) == {v}", "alarm_failed_jobs must be a whole number, 0 or more."),
    )?;
    crate::constructs::monitoring::monitoring(
        &mut s,
        &ctx,
        &crate::constructs::monitoring::MonitoringProps {
            topic: &alarms,
            alarm_email: alarm_email.val(),
            failed_jobs_threshold: failed_jobs.val(),
            warm_pool_size: warm_pool.val(),
            jobs_queue: (queue.queue.name(), queue.dlq.name()),
            webhooks_queue: (webhooks.queue.name(), webhooks.dlq.name()),
            functions: [&submit, &status, &logs, &list, &cancel, &process, &reconcile, &webhook].into_iter().map(|f| (f.function.as_str(), f.lambda.function_name())).collect(),
            cluster_name: agent.cluster.name(),
        },
    )?;

    let out = |s: &mut Stack, name: &str, value: Val, description: &str, sensitive: bool| {
        s.output(name, Output { value, description: description.into(), sensitive: sensitive.then_some(true) })
    };
    out(&mut s, "api_gateway_url", api.stage.invoke_url(), "Base URL of the API (append /jobs)", false)?;
    out(
        &mut s,
        "api_key",
        keys.value_of(&tenants, 0),
        "API key of the first tenant, newest generation (terraform output -raw api_key)",
        true,
    )?;
    out(&mut s, "tenant_api_keys", keys.key_by_tenant(), "API key of every tenant (its newest generation), by tenant id", true)?;
    out(&mut s, "ecr_repository_url", agent.repository.repository_url(), "Push the agent image here", false)?;
    out(&mut s, "s3_bucket", bucket.bucket.bucket(), "Bucket holding job outputs", false)?;
    out(&mut s, "jobs_table", table.table.name(), "DynamoDB table of jobs", false)?;
    out(&mut s, "jobs_queue_url", queue.queue.url(), "SQS queue of jobs to start", false)?;
    out(&mut s, "jobs_dlq_url", queue.dlq.url(), "Dead-letter queue: jobs that failed every attempt", false)?;
    out(&mut s, "webhooks_dlq_url", webhooks.dlq.url(), "Dead-letter queue: webhook events that failed every attempt", false)?;
    out(&mut s, "ecs_cluster", agent.cluster.name(), "ECS cluster the agent tasks run in", false)?;
    out(&mut s, "agent_log_group", agent.log_group.name(), "CloudWatch log group of the agent containers", false)?;
    out(&mut s, "alarm_topic_arn", alarms.arn(), "SNS topic the alarms notify; subscribe to it", false)?;
    Ok(s)
}

/// The constructs that grant what a function's contract asks for.
struct Grantors<'a> {
    /// The role computer-use jobs' Bedrock keys are minted from.
    model_role: &'a Role,
    table: &'a JobTable,
    queue: &'a JobQueue,
    webhooks: &'a JobQueue,
    bucket: &'a OutputsBucket,
    agent: &'a AgentService,
    key: &'a Key,
}

/// Grants `function` exactly the calls of `names::contract::calls`, each through the construct that
/// owns its target, in intent-sized groups (the queue's consumer calls, the bucket's reads, the
/// agent's run); a call no construct grants is a synthesis error.
fn grant_contract(s: &mut Stack, ctx: &Context, function: &Function, g: Grantors<'_>) -> Result<(), Error> {
    use names::contract::{calls, Action::*, Target::*};
    let mut wanted: Vec<(Action, Target)> = calls(function.function).to_vec();
    let mut take = |group: &[(Action, Target)]| -> bool {
        let all = group.iter().all(|c| wanted.contains(c));
        if all {
            wanted.retain(|c| !group.contains(c));
        }
        all
    };
    let role = &function.role;
    let jobs = names::bucket::JOBS_PREFIX;
    let items: Vec<&str> = calls(function.function).iter().filter(|(_, t)| *t == Table).map(|(a, _)| a.as_str()).collect();
    if !items.is_empty() {
        let group: Vec<(Action, Target)> = calls(function.function).iter().copied().filter(|(_, t)| *t == Table).collect();
        take(&group);
        g.table.grant_items(s, role, &items)?;
    }
    if take(&[(DynamodbQuery, TenantIndex)]) {
        g.table.grant_query_index(s, role, TenantIndex)?;
    }
    if take(&[(DynamodbQuery, UnfinishedIndex)]) {
        g.table.grant_query_index(s, role, UnfinishedIndex)?;
    }
    if take(&[(SqsSendMessage, JobsQueue)]) {
        g.queue.grant_send(s, role, g.key)?;
    }
    if take(&[(SqsReceiveMessage, JobsQueue), (SqsDeleteMessage, JobsQueue), (SqsGetQueueAttributes, JobsQueue)]) {
        g.queue.grant_consume(s, role, g.key)?;
    }
    if take(&[(SqsSendMessage, WebhookQueue)]) {
        g.webhooks.grant_send(s, role, g.key)?;
    }
    if take(&[(SqsSendMessage, WebhookDlq)]) {
        g.webhooks.grant_send_dlq(s, role, g.key)?;
    }
    if take(&[(SqsReceiveMessage, WebhookQueue), (SqsDeleteMessage, WebhookQueue), (SqsGetQueueAttributes, WebhookQueue)]) {
        g.webhooks.grant_consume(s, role, g.key)?;
    }
    let slot_objects: Vec<&str> = calls(function.function).iter().filter(|(_, t)| *t == SlotObjects).map(|(a, _)| a.as_str()).collect();
    if !slot_objects.is_empty() {
        let group: Vec<(Action, Target)> = calls(function.function).iter().copied().filter(|(_, t)| *t == SlotObjects).collect();
        take(&group);
        g.bucket.grant_slots(s, role, g.key, &slot_objects)?;
    }
    let wake: Vec<&str> = calls(function.function).iter().filter(|(_, t)| *t == WakeQueues).map(|(a, _)| a.as_str()).collect();
    if !wake.is_empty() {
        let group: Vec<(Action, Target)> = calls(function.function).iter().copied().filter(|(_, t)| *t == WakeQueues).collect();
        take(&group);
        // Made at run time, one per warm slot, so named by pattern; encrypted with SQS's own key
        // (SSE-SQS, set at CreateQueue): a wake message is empty, and no KMS grant is needed.
        let queues = ctx.arn("sqs", ctx.name(|p| names::queue::wake_name(p, "*")));
        role.grant(s, crate::model::iam::Statement::allow("WarmSlotWakeQueues", &wake, vec![queues]))?;
    }
    if take(&[(SsmGetParameters, WebhookSecrets)]) {
        // One SecureString per tenant directly below the path (no deeper parameter).
        let path = crate::constructs::render_pattern2(names::ssm::webhooks_path, &ctx.project, &ctx.environment);
        role.grant(s, crate::model::iam::Statement::allow("ReadSigningSecrets", &["ssm:GetParameters"], vec![ctx.arn("ssm", Val::lit("parameter") + &path + "*")]))?;
    }
    if take(&[(S3ListBucket, Bucket), (S3GetObject, JobObjects)]) {
        g.bucket.grant_read(s, role, g.key, jobs)?;
    }
    if take(&[(S3PutObject, JobObjects)]) {
        g.bucket.grant_put(s, role, g.key, jobs)?;
    }
    if take(&[(S3GetObject, Manifests)]) {
        g.bucket.grant_read_manifests(s, role, g.key)?;
    }
    if take(&[(S3GetObject, ErrorReports)]) {
        g.bucket.grant_read_error_reports(s, role, g.key)?;
    }
    if take(&[(S3GetObject, Results)]) {
        g.bucket.grant_read_results(s, role, g.key)?;
    }
    let secret_objects: Vec<&str> =
        calls(function.function).iter().filter(|(_, t)| *t == SecretObjects).map(|(a, _)| a.as_str()).collect();
    if !secret_objects.is_empty() {
        let group: Vec<(Action, Target)> = calls(function.function).iter().copied().filter(|(_, t)| *t == SecretObjects).collect();
        take(&group);
        g.bucket.grant_secrets(s, role, g.key, &secret_objects)?;
    }
    if take(&[(S3ListBucket, ReportAndSlotListing)]) {
        g.bucket.grant_list_below(s, role, &[names::bucket::JOBS_PREFIX, names::bucket::SLOTS_PREFIX])?;
    }
    if take(&[(S3ListBucketVersions, SecretVersions)]) {
        g.bucket.grant_list_versions_below(s, role, "ListSecretVersions", names::bucket::SECRETS_PREFIX)?;
    }
    if take(&[(S3ListBucketVersions, SlotVersions)]) {
        g.bucket.grant_list_versions_below(s, role, "ListSlotVersions", names::bucket::SLOTS_PREFIX)?;
    }
    if take(&[(SsmGetParameters, TenantSecrets)]) {
        // SecureStrings under the default key (aws/ssm) need no KMS grant: that key lets every
        // principal of the account decrypt through SSM.
        let path = crate::constructs::render_pattern2(names::ssm::tenants_path, &ctx.project, &ctx.environment);
        role.grant(s, crate::model::iam::Statement::allow("ReadTenantSecrets", &["ssm:GetParameters"], vec![ctx.arn("ssm", Val::lit("parameter") + &path + "*")]))?;
    }
    if take(&[(EcsRunTask, TaskDefinition), (EcsTagResource, ClusterTasks), (IamPassRole, ExecutionRole)]) {
        g.agent.grant_run(s, ctx, role)?;
    }
    if take(&[(EcsStopTask, ClusterTasks)]) {
        g.agent.grant_stop(s, ctx, role)?;
    }
    if take(&[(EcsDescribeTasks, ClusterTasks)]) {
        g.agent.grant_describe(s, ctx, role)?;
    }
    if take(&[(StsAssumeRole, OwnRole)]) {
        // Its own role, assumed again (the role's trust allows it: constructs::Role::trust_itself).
        role.grant(s, crate::model::iam::Statement::allow("AssumeOwnRoleForLinks", &["sts:AssumeRole"], vec![role.arn()]))?;
    }
    if take(&[(StsAssumeRole, ModelRole)]) {
        role.grant(s, crate::model::iam::Statement::allow("MintModelKeys", &["sts:AssumeRole"], vec![g.model_role.arn()]))?;
    }
    if take(&[(LogsGetLogEvents, AgentLogStreams)]) {
        g.agent.grant_read_logs(s, role)?;
    }
    if wanted.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "the {} function's contract asks for {wanted:?}, which no construct grants (teach app::grant_contract)",
            function.function.as_str()
        )))
    }
}

/// Every file of `generated/` for a configuration: the Terraform JSON and the README summarizing it.
pub fn synth_files(config: &AppConfig) -> Result<BTreeMap<String, String>, Error> {
    let stack = build(config)?;
    let mut files = stack.synth()?;
    let readme = crate::review::summary::render(&stack.documents()?)
        .map_err(|e| Error::Invalid(format!("rendering README.md: {e:?}")))?;
    files.insert(README.to_string(), readme);
    let doc = names::api::openapi();
    let mut json = serde_json::to_string_pretty(&doc).map_err(|e| Error::Invalid(format!("rendering {OPENAPI}: {e}")))?;
    json.push('\n');
    files.insert(OPENAPI.to_string(), json);
    Ok(files)
}

/// The summary written beside the Terraform JSON.
pub const README: &str = "README.md";
/// The API's OpenAPI document, beside the stack that deploys it.
pub const OPENAPI: &str = "openapi.json";

/// The whole default stack, synthesized: file name -> text.
pub fn synth() -> Result<BTreeMap<String, String>, Error> {
    synth_files(&AppConfig::default())
}
