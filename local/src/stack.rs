//! Starting and stopping the whole local system, in order, with progress on stderr.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::gateway::{ApiKey, Gateway};
use crate::provision::{provision, Settings, TenantSecret};
use crate::runner::{AgentCommand, Runner, RunnerSettings};

#[derive(Clone, Debug)]
pub struct Options {
    pub root: PathBuf,
    pub api_port: u16,
    /// Port of the fixture search page (0 = any free port).
    pub fixture_port: u16,
    pub tenants: Vec<String>,
    /// API key generations by tenant (a rotation in progress gives a tenant two keys).
    pub api_key_generations: crate::provision::Generations,
    pub rate_limit: u32,
    pub burst_limit: u32,
    pub max_tasks: usize,
    pub command: AgentCommand,
    /// Origins (`host:port`) or networks the agents may reach besides the fixture page, for
    /// testing against one's own pages.
    pub egress_allow: Vec<String>,
    /// Tenant secrets put into the emulator's SSM, as an operator puts them into AWS's.
    pub tenant_secrets: Vec<TenantSecret>,
    /// Every tenant's limits (`tenant_max_running`, `tenant_max_queued`).
    pub tenant_limits: functions::config::TenantLimits,
    /// Fargate's provisioning time, added to every task before its container starts.
    pub provisioning_delay: Duration,
    /// Fargate's deprovisioning time, between a task's container exit and its STOPPED event.
    pub deprovisioning_delay: Duration,
    /// Warm slots kept waiting for jobs (`warm_pool_size`); they run beside `max_tasks`.
    pub warm_pool: u32,
    /// Origins (`host:port`) or networks of this machine webhooks may go to (loopback and
    /// private addresses are otherwise refused, as in AWS).
    pub webhook_allow: Vec<String>,
    /// Log progress to stderr.
    pub verbose: bool,
    /// Faults in the functions' AWS calls, crashes of their invocations and duplicate
    /// deliveries, chosen by a seed (testenv::faults); None: none.
    pub faults: Option<Arc<testenv::faults::Plan>>,
    /// Extra environment for every agent (a test's stand-in agent reads its settings there).
    pub agent_env: Vec<(String, String)>,
    /// Runs the sweep (the schedule rule's event to reconcile) this often; None: never (in AWS
    /// it runs every 5 minutes).
    pub sweep_every: Option<Duration>,
    /// The queues' visibility timeout, when not the local default.
    pub visibility_seconds: Option<u32>,
    /// Seconds before each webhook retry, when not the deployment's default.
    pub webhook_retry_seconds: Option<Vec<u32>>,
    /// The functions' recovery grace (`Config::recovery_grace_seconds`), when not the default.
    pub recovery_grace_seconds: Option<i64>,
    /// How long a webhook round may stall before the sweep ends it FAILED
    /// (`Config::webhook_stall_seconds`), when not the default.
    pub webhook_stall_seconds: Option<i64>,
    /// Computer-use jobs' model: the stand-in model service playing this scenario (`sign-in`,
    /// `never-stops`, `gives-up`), or none (such jobs are refused).
    pub model_scenario: Option<String>,
    /// Warm slots without wake queues, each looking at its manifest every 250 ms, as before
    /// issue 28 (a benchmark's baseline).
    pub poll_slots: bool,
}

/// The tenant secret that holds the stand-in model service's Anthropic API key, for a job's
/// `model.api_key_secret` (Bedrock jobs need none: their key is minted per job).
pub const STAND_IN_KEY_SECRET: &str = "anthropic-api-key";

impl Options {
    /// A quiet stack for tests and benchmarks: free ports, no limits to speak of, no pool, no
    /// provisioning delay; change what a test needs with `..`.
    pub fn quiet(tenants: &[&str], command: AgentCommand) -> Options {
        Options {
            root: workspace_root(),
            api_port: 0,
            fixture_port: 0,
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
            api_key_generations: Default::default(),
            rate_limit: 100_000,
            burst_limit: 100_000,
            max_tasks: 2,
            command,
            egress_allow: Vec::new(),
            tenant_secrets: Vec::new(),
            tenant_limits: Default::default(),
            provisioning_delay: Duration::ZERO,
            deprovisioning_delay: Duration::ZERO,
            warm_pool: 0,
            webhook_allow: Vec::new(),
            verbose: false,
            faults: None,
            agent_env: Vec::new(),
            sweep_every: None,
            visibility_seconds: None,
            webhook_retry_seconds: None,
            recovery_grace_seconds: None,
            webhook_stall_seconds: None,
            model_scenario: None,
            poll_slots: false,
        }
    }
}

pub struct LocalStack {
    pub api_url: String,
    pub fixture: SocketAddr,
    pub endpoint: String,
    /// (tenant, API key): every key, a rotating tenant's old one first.
    pub keys: Vec<(String, String)>,
    /// (tenant, webhook signing secret).
    pub signing_secrets: Vec<(String, String)>,
    pub config: functions::config::Config,
    /// How agents run: "containers of <image>" or "processes (<why>)".
    pub agents: String,
    /// The functions as the stack runs them (a test calls a handler directly through it).
    pub app: Arc<functions::App>,
    emulator: testenv::moto::Moto,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    runner: JoinHandle<()>,
    scratch: PathBuf,
    /// Agent processes started per job id.
    pub launches: Arc<std::sync::Mutex<HashMap<String, u32>>>,
    /// The metric lines written while it runs, as series (CloudWatch's part).
    pub metrics: Arc<crate::metrics::Store>,
    /// The stand-in model service of computer-use jobs, when it runs.
    pub model: Option<testenv::model::ModelServer>,
}

/// The provisioned stack as IAM names it (what Terraform would know after an apply).
fn iam_stack(config: &functions::config::Config, endpoint: &str, account: &str) -> testenv::iam::Stack {
    let d = names::defaults::PROJECT_NAME;
    let prefix = names::defaults::name_prefix(d, names::defaults::ENVIRONMENT);
    testenv::iam::Stack {
        project: d.into(),
        environment: names::defaults::ENVIRONMENT.into(),
        account: account.into(),
        region: names::defaults::AWS_REGION.into(),
        table: config.table.clone(),
        bucket: config.bucket.clone(),
        jobs_queue_url: config.queue_url.clone(),
        jobs_dlq_url: format!("{endpoint}/{account}/{}", names::queue::dlq_name(&prefix)),
        webhooks_queue_url: config.webhook_queue_url.clone(),
        webhooks_dlq_url: config.webhook_dlq_url.clone(),
        cluster_arn: config.cluster_arn.clone(),
        task_definition: config.task_definition.clone(),
        agent_log_group: config.log_group.clone(),
    }
}

fn say(verbose: bool, what: &str) {
    if verbose {
        eprintln!("local-stack: {what}");
    }
}

impl LocalStack {
    pub async fn start(o: Options) -> Result<LocalStack, String> {
        let v = o.verbose;
        let metrics = crate::metrics::Store::install();
        say(v, "starting the AWS emulator (moto server)");
        let root = o.root.clone();
        let emulator = tokio::task::spawn_blocking(move || {
            let moto = testenv::moto::Moto::start(&root)?;
            moto.manual_task_progression()?;
            Ok::<_, testenv::moto::MotoError>(moto)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        // Handlers, runner and boto3 reach the emulator through the standard SDK settings.
        for (k, val) in emulator.sdk_env() {
            std::env::set_var(k, val);
        }
        say(v, &format!("emulator on {}", emulator.endpoint));

        say(v, "starting the fixture search page");
        let site = testenv::fixture::Fixture::start(o.fixture_port).map_err(|e| format!("fixture server: {e}"))?;
        let fixture = site.addr();
        // Stopped with the stack's other tasks: this one holds the site until it is aborted.
        let fixture_task = tokio::spawn(async move {
            let _site = site;
            std::future::pending::<()>().await
        });
        let template = names::agent::search_url_template(&format!("http://{fixture}"));

        say(v, "creating the table, queues, bucket, log group, parameters, cluster and task definition");
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let mut settings = Settings::new(&o.tenants, &o.api_key_generations, template);
        if let Some(v) = o.visibility_seconds {
            settings.visibility_seconds = v;
        }
        let (mut config, task_definition) = provision(&o.root, &sdk, &settings).await?;
        // The defaults in the functions' configuration; each tenant's own limits as Terraform
        // writes them, items of the table the reconciler puts onto the tenant's counter.
        config.limits = o.tenant_limits.defaults;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        for (tenant, own) in &o.tenant_limits.tenants {
            testenv::table::put_limits(&ddb, &config.table, tenant, own.max_running, own.max_queued).await?;
        }
        if let Some(stall) = o.webhook_stall_seconds {
            config.webhook_stall_seconds = stall;
        }
        if let Some(grace) = o.recovery_grace_seconds {
            config.recovery_grace_seconds = grace;
        }
        if let Some(retries) = &o.webhook_retry_seconds {
            config.webhook_retry_seconds = retries.clone();
        }
        config.warm_pool_size = o.warm_pool;
        config.webhook_egress = names::egress::EgressPolicy::parse(&o.webhook_allow.join(","))
            .map_err(|e| format!("--webhook-allow: {e}"))?
            .with_any_port();
        // Each function's calls sign as its role, which the emulator authorizes as AWS would
        // (testenv::iam; TESTENV_IAM=off in the environment turns that off, for debugging only).
        let stack = iam_stack(&config, &emulator.endpoint, &settings.account);
        // As infra-gen sets it: the process function signs the agents' links with a session of
        // its own role.
        config.link_signer_role_arn = stack.role_arn(&names::Function::Process.role_name(&stack.name_prefix()));
        // Computer-use jobs: the stand-in model service as both providers, Bedrock's keys minted
        // from sessions of the model role and authorized by the emulator's IAM, as Bedrock would.
        config.model_role_arn = stack.role_arn(&names::goal::model_role_name(&stack.name_prefix()));
        // As infra-gen sets it: the warm slots' wake queues are named (and granted) by it.
        config.name_prefix = if o.poll_slots { String::new() } else { stack.name_prefix() };
        let mut tenant_secrets = o.tenant_secrets.clone();
        let model = match &o.model_scenario {
            None => None,
            Some(scenario) => {
                say(v, &format!("starting the stand-in model service (scenario {scenario})"));
                let (root, scenario, endpoint) = (o.root.clone(), scenario.clone(), emulator.endpoint.clone());
                let m = tokio::task::spawn_blocking(move || testenv::model::ModelServer::start_with(&root, &scenario, 0, Some(&endpoint)))
                    .await
                    .map_err(|e| e.to_string())??;
                config.computer = m.settings();
                for tenant in &o.tenants {
                    if !tenant_secrets.iter().any(|s| s.tenant == *tenant && s.name == STAND_IN_KEY_SECRET) {
                        tenant_secrets.push(crate::provision::TenantSecret { tenant: tenant.clone(), name: STAND_IN_KEY_SECRET.into(), value: m.key.clone() });
                    }
                }
                Some(m)
            }
        };
        let keys = testenv::iam::register(&o.root, &emulator.endpoint, &stack).await.map_err(|e| e.to_string())?;
        let keys = keys.into_iter().map(|(f, k)| (f, (k.id, k.secret))).collect();
        let (id, secret) = testenv::moto::HARNESS_KEY;
        let mut function_sdk = functions::identity::sdk_config(&keys, (id.into(), secret.into())).await;
        if let Some(plan) = &o.faults {
            let caller: testenv::faults::Caller = Arc::new(functions::identity::current);
            function_sdk = function_sdk.to_builder().http_client(testenv::faults::FaultyClient::new(plan.clone(), caller)).build();
        }
        let app = Arc::new(functions::App::new(&function_sdk, config.clone(), names::Function::ALL.to_vec()));
        crate::provision::put_tenant_secrets(&sdk, &config, &tenant_secrets).await?;
        let signing_secrets = crate::provision::put_signing_secrets(&sdk, &config, &o.tenants).await?;

        let (stop, stop_rx) = watch::channel(false);
        // The agents read the same list; a malformed entry would fail every job, so it fails here.
        let egress_allow: Vec<String> =
            std::iter::once(fixture.to_string()).chain(model.as_ref().map(|m| m.addr())).chain(o.egress_allow.iter().cloned()).collect();
        names::egress::EgressPolicy::parse(&egress_allow.join(",")).map_err(|e| format!("--egress-allow: {e}"))?;

        say(v, "starting the SQS pollers (jobs, webhooks), as generated/'s event source mappings poll");
        let mappings = testenv::events::mappings(&o.root)?;
        let mut tasks = Vec::new();
        use crate::poller::{Consumer, Source};
        for (consumer, queue_url) in [(Consumer::Process, &config.queue_url), (Consumer::Webhook, &config.webhook_queue_url)] {
            let function = consumer.function().as_str();
            let mapping = *mappings.get(function).ok_or_else(|| format!("generated/ has no event source mapping for {function}"))?;
            // Lambda's event source polls with the function's role: the app's client, acting as it.
            let source = Source { app: app.clone(), sqs: app.queue.client.clone(), queue_url: queue_url.clone(), consumer, mapping, faults: o.faults.clone() };
            tasks.push(tokio::spawn(crate::poller::run(source, stop_rx.clone())));
        }
        if let Some(every) = o.sweep_every {
            say(v, &format!("running the sweep every {} ms", every.as_millis()));
            let app = app.clone();
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = stop.changed() => return,
                    }
                    // A scheduled event is an asynchronous invocation like the task events; the
                    // next one comes anyway, so a failed sweep is not retried here.
                    if let Ok(Err(e)) = testenv::faults::invoke(functions::reconcile::event(&app, &testenv::events::scheduled())).await {
                        eprintln!("local-stack: sweep failed: {e}");
                    }
                }
            }));
        }

        let scratch = scratch_dir(std::process::id());
        std::fs::create_dir_all(&scratch).map_err(|e| format!("scratch directory: {e}"))?;
        let agents = o.command.describe();
        say(v, &format!("starting the Fargate stand-in (at most {} agents at a time, as {agents})", o.max_tasks));
        let launches = Arc::new(std::sync::Mutex::new(HashMap::new()));
        let runner = Runner::new(
            app.clone(),
            &sdk,
            RunnerSettings {
                command: o.command.clone(),
                task_definition,
                secrets: settings.secrets(),
                stack_id: std::process::id().to_string(),
                // Slots wait in tasks of their own: they do not take the jobs' places.
                max_tasks: o.max_tasks + o.warm_pool as usize,
                scratch: scratch.clone(),
                // The fixture page's origin (and what --egress-allow adds), nothing else of loopback:
                // not the emulator, not another agent's chromedriver or DevTools.
                // And the VPC's route to S3: the agents' requests reach the bucket through the
                // stack's gateway endpoint, whose policy (and the bucket's conditions on it) apply.
                extra_env: vec![
                    (names::env::agent::EGRESS_ALLOW.to_string(), egress_allow.join(",")),
                    (testenv::iam::VPC_ROUTE_ENV.to_string(), emulator.endpoint.clone()),
                ]
                .into_iter()
                .chain(o.agent_env.iter().cloned())
                .collect(),
                launches: launches.clone(),
                provisioning_delay: o.provisioning_delay,
                deprovisioning_delay: o.deprovisioning_delay,
                faults: o.faults.clone(),
            },
        );
        let runner = tokio::spawn(runner.run(stop_rx.clone()));
        if o.warm_pool > 0 {
            say(v, &format!("starting {} warm slots", o.warm_pool));
            // As a refill message does it (the sweep asks, process starts the slots), with the
            // process role.
            functions::identity::acting_as(names::Function::Process, functions::pool::refill(&app)).await.map_err(|e| format!("warm pool: {e}"))?;
        }

        say(v, "starting the API gateway");
        let keys: HashMap<String, ApiKey> = settings
            .tenants
            .iter()
            .map(|(tenant, value, id)| (value.clone(), ApiKey { id: id.clone(), tenant: tenant.clone() }))
            .collect();
        let gateway = Arc::new(Gateway::new((*app).clone(), keys, o.rate_limit, o.burst_limit));
        let (api, api_task) = crate::gateway::serve(o.api_port, move |req| gateway.clone().handle(req))
            .await
            .map_err(|e| format!("API gateway on 127.0.0.1:{}: {e}", o.api_port))?;

        Ok(LocalStack {
            api_url: format!("http://{api}/{}", names::routes::STAGE),
            fixture,
            endpoint: emulator.endpoint.clone(),
            keys: settings.tenants.iter().map(|(t, k, _)| (t.clone(), k.clone())).collect(),
            signing_secrets,
            config,
            agents,
            app,
            emulator,
            stop,
            tasks: tasks.into_iter().chain([fixture_task, api_task]).collect(),
            runner,
            scratch,
            launches,
            metrics,
            model,
        })
    }

    /// Warm slots' tasks started so far.
    pub fn slots_launched(&self) -> usize {
        self.launches.lock().map(|l| l.keys().filter(|k| names::pool::slot_of(k).is_some()).count()).unwrap_or(0)
    }

    /// Stops the agents (SIGTERM, then SIGKILL), the servers and the emulator.
    pub async fn stop(mut self, verbose: bool) {
        say(verbose, "stopping: agents, poller, gateway, emulator");
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(40), &mut self.runner).await;
        self.runner.abort();
        for t in &self.tasks {
            t.abort();
        }
        self.metrics.uninstall();
        tokio::task::spawn_blocking(move || self.emulator.stop()).await.ok();
        let _ = std::fs::remove_dir_all(&self.scratch);
        say(verbose, "stopped; nothing left running");
    }
}

/// Where a local stack keeps its agents' scratch directories. Short on purpose: Chromium puts Unix
/// sockets below it, and socket paths are limited to about 100 bytes.
pub fn scratch_dir(pid: u32) -> PathBuf {
    std::env::temp_dir().join(format!("ls{pid}"))
}

/// The workspace root: where `.tools/` and `target/` are.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}
