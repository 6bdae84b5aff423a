//! `local-stack` (`make local`): the whole system on this machine until Ctrl-C.

use std::path::PathBuf;

use clap::Parser;
use local_stack::runner::AgentCommand;
use testenv::container::Podman;
use local_stack::stack::{workspace_root, LocalStack, Options};

#[derive(Parser, Debug)]
#[command(about = "Run the job API, queue processing and agent locally against an AWS emulator")]
struct Cli {
    /// Port of the API on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Port of the fixture search page on 127.0.0.1 (the agent's search engine locally).
    #[arg(long, default_value_t = 8081)]
    fixture_port: u16,
    /// Tenants; each gets the API key `local-<tenant>-key`.
    #[arg(long, value_delimiter = ',', default_value = "test-tenant,other-tenant")]
    tenants: Vec<String>,
    /// API key generations, from the file scripts/rotate-key.sh writes (`make local` passes
    /// api-keys.tfvars.json when it exists): generation n > 1 of a tenant's key is
    /// `local-<tenant>-key-g<n>`, and a rotating tenant has both of its keys.
    #[arg(long, value_name = "FILE")]
    api_key_generations: Option<PathBuf>,
    /// Requests per second per API key (usage plan rate).
    #[arg(long, default_value_t = names::defaults::API_RATE_LIMIT)]
    rate_limit: u32,
    /// Burst per API key (usage plan burst).
    #[arg(long, default_value_t = names::defaults::API_BURST_LIMIT)]
    burst_limit: u32,
    /// Agents running at once; further tasks wait.
    #[arg(long, default_value_t = 2)]
    max_tasks: usize,
    /// How agent tasks run: `container` (the image, as Fargate runs it), `process` (the agent
    /// binary; for machines without a container runtime), or `auto`: a container where podman
    /// works and the image exists, else a process.
    #[arg(long, value_enum, default_value_t = Runtime::Auto)]
    agent_runtime: Runtime,
    /// The agent image for `container` (built by `make image`).
    #[arg(long, default_value = testenv::container::LOCAL_IMAGE)]
    agent_image: String,
    /// The agent binary for `process`.
    #[arg(long)]
    agent: Option<PathBuf>,
    /// Test mode: run this trivial program (e.g. `true`) instead of the agent.
    #[arg(long, conflicts_with = "agent")]
    trivial_agent: Option<String>,
    /// Origins (`host:port`) or networks the agents may reach besides the fixture page, e.g.
    /// `127.0.0.1:3000` to try jobs against a page of your own. Loopback and private addresses
    /// are otherwise refused, as in AWS.
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT", value_parser = allow_entry)]
    egress_allow: Vec<String>,
    /// A tenant secret for scripted jobs' `type` steps (`"secret": NAME`), put into the
    /// emulator's SSM where the process function reads it in AWS; repeatable. For local testing:
    /// a command line is visible to other users of the machine.
    #[arg(long, value_name = "TENANT:NAME=VALUE")]
    tenant_secret: Vec<String>,
    /// Origins (`host:port`) or networks webhooks may go to, e.g. `127.0.0.1:9000` for a receiver
    /// of your own (http is allowed locally). Loopback and private addresses are otherwise
    /// refused, as in AWS.
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT", value_parser = allow_entry)]
    webhook_allow: Vec<String>,
    /// Seconds Fargate takes to provision a task before its container runs (ENI, image pull,
    /// start; 30-60 s in AWS), added to every task: 0 starts them at once.
    #[arg(long, default_value_t = 0.0, value_parser = provisioning_seconds)]
    provisioning_delay: f64,
    /// Agent tasks kept started and waiting for a job each (Terraform `warm_pool_size`); they run
    /// beside `--max-tasks`.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    warm_pool: u32,
    /// Jobs of one tenant started at once (Terraform `tenant_max_running`).
    #[arg(long, default_value_t = names::defaults::TENANT_MAX_RUNNING, value_parser = clap::value_parser!(u32).range(1..))]
    tenant_max_running: u32,
    /// Jobs of one tenant queued at once; a submit over it is 429 (Terraform `tenant_max_queued`).
    #[arg(long, default_value_t = names::defaults::TENANT_MAX_QUEUED, value_parser = clap::value_parser!(u32).range(1..))]
    tenant_max_queued: u32,
    /// Computer-use jobs (`goal`) are served by a stand-in model service here (no model service
    /// is reachable offline), which plays this scenario: `auto` (one for each job, by the words of
    /// its goal), `sign-in` (signs in on the fixture's /desk page and answers the greeting),
    /// `invoices`, `find`, `injection`, `never-stops`, `gives-up`; `off` refuses such jobs.
    #[arg(long, default_value = "auto", value_parser = ["auto", "sign-in", "invoices", "find", "injection", "never-stops", "gives-up", "off"])]
    model_scenario: String,
}

/// One entry of an allow-list, refused at start when malformed (a URL where an origin is meant, say)
/// rather than failing every job later.
fn allow_entry(s: &str) -> Result<String, String> {
    names::egress::EgressPolicy::parse(s).map(|_| s.trim().to_string())
}

fn provisioning_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=600.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds from 0 to 600")),
    }
}

/// A command that completes a job against this stack as pasted, from any directory: the client
/// built beside this binary (`make local` builds it), else through cargo.
fn try_command(root: &std::path::Path, api_url: &str, key: &str) -> String {
    let quote = |p: &std::path::Path| {
        let p = p.display().to_string();
        if p.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c)) { p } else { format!("'{}'", p.replace('\'', r"'\''")) }
    };
    let beside = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.join("jobsctl"))).filter(|p| p.exists());
    let client = match beside {
        Some(path) => quote(&path),
        None => format!("cargo run -q --manifest-path {} -p jobsctl --", quote(&root.join("Cargo.toml"))),
    };
    format!("JOBS_API_URL={api_url} JOBS_API_KEY={key} {client} submit --query rust --wait --download out/")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Runtime {
    Auto,
    Container,
    Process,
}

/// What runs the agent tasks, or why nothing can.
fn agent_command(cli: &Cli, root: &std::path::Path) -> Result<AgentCommand, String> {
    if let Some(program) = &cli.trivial_agent {
        return Ok(AgentCommand::Trivial(program.clone()));
    }
    let container = || -> Result<AgentCommand, String> {
        let podman = Podman::detect().map_err(|e| e.to_string())?;
        podman.require_image(&cli.agent_image).map_err(|e| e.to_string())?;
        Ok(AgentCommand::Container { podman, image: cli.agent_image.clone() })
    };
    let process = |why: String| -> Result<AgentCommand, String> {
        let path = cli.agent.clone().unwrap_or_else(|| root.join("target/debug/agent"));
        if !path.exists() {
            return Err(format!("the agent binary {} is missing: build it with `cargo build -p agent` (make local does)", path.display()));
        }
        Ok(AgentCommand::Agent { path, why })
    };
    match cli.agent_runtime {
        Runtime::Container => container(),
        Runtime::Process => process("--agent-runtime process".into()),
        Runtime::Auto if cli.agent.is_some() => process("--agent given".into()),
        Runtime::Auto => container().or_else(|why| {
            eprintln!("local-stack: agents run as processes, not containers: {why}");
            process(why)
        }),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The handlers' JSON log lines, on stderr as in a Lambda.
    logging::init(logging::level_from_env(), std::io::stderr);
    let root = workspace_root();
    let command = match agent_command(&cli, &root) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("local-stack: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let generations = match &cli.api_key_generations {
        Some(path) => match local_stack::provision::read_generations(path, &cli.tenants) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("local-stack: {e}");
                return std::process::ExitCode::from(2);
            }
        },
        None => Default::default(),
    };
    let mut tenant_secrets = Vec::new();
    for s in &cli.tenant_secret {
        match local_stack::provision::TenantSecret::parse(s, &cli.tenants) {
            Ok(secret) => tenant_secrets.push(secret),
            Err(e) => {
                eprintln!("local-stack: --tenant-secret {e}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let options = Options {
        root: root.clone(),
        api_port: cli.port,
        fixture_port: cli.fixture_port,
        tenants: cli.tenants,
        api_key_generations: generations,
        rate_limit: cli.rate_limit,
        burst_limit: cli.burst_limit,
        max_tasks: cli.max_tasks.max(1),
        command,
        egress_allow: cli.egress_allow.clone(),
        tenant_secrets,
        tenant_limits: functions::config::TenantLimits::uniform(cli.tenant_max_running, cli.tenant_max_queued),
        webhook_allow: cli.webhook_allow.clone(),
        provisioning_delay: std::time::Duration::from_secs_f64(cli.provisioning_delay),
        warm_pool: cli.warm_pool,
        verbose: true,
        // The schedule rule's sweep, as deployed (rate(5 minutes)) but every minute.
        sweep_every: Some(std::time::Duration::from_secs(60)),
        model_scenario: (cli.model_scenario != "off").then(|| cli.model_scenario.clone()),
        ..Options::quiet(&[], AgentCommand::Trivial(String::new()))
    };
    let stack = match LocalStack::start(options).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("local-stack: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    eprintln!("local-stack: ready");
    println!("API:       {}", stack.api_url);
    for (tenant, key) in &stack.keys {
        println!("API key:   {key}   (tenant {tenant})");
    }
    for (tenant, secret) in &stack.signing_secrets {
        println!("Webhooks:  {secret}   (signing secret of tenant {tenant})");
    }
    println!("Emulator:  {}", stack.endpoint);
    println!("Agents:    {}", stack.agents);
    println!("Fixtures:  http://{}/search?q=rust", stack.fixture);
    if let Some(model) = &stack.model {
        println!(
            "Model:     stand-in at {} for goal jobs (Bedrock by default; `anthropic` with \"api_key_secret\": \"{}\")",
            model.server.url(""),
            local_stack::stack::STAND_IN_KEY_SECRET
        );
        println!(
            "Goal job:  curl -s -X POST {}/jobs -H 'x-api-key: {}' -H 'content-type: application/json' -d '{{\"goal\": \"Sign in as alice and tell me the greeting\", \"start_url\": \"http://{}/desk\", \"secrets\": [\"pw\"], \"options\": {{\"viewport\": {{\"width\": 1920, \"height\": 1080}}}}}}'   (start with --tenant-secret={}:pw={}, the desk's password)",
            stack.api_url, stack.keys[0].1, stack.fixture, stack.keys[0].0, testenv::fixture::LOGIN_PASSWORD
        );
    }
    println!("Try:       {}", try_command(&root, &stack.api_url, &stack.keys[0].1));
    println!("Or curl:   curl -s -X POST {}/jobs -H 'x-api-key: {}' -H 'content-type: application/json' -d '{{\"query\": \"rust\"}}'", stack.api_url, stack.keys[0].1);
    println!("Ctrl-C stops everything.");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
    let metrics = stack.metrics.clone();
    stack.stop(true).await;
    // What CloudWatch would have graphed: the metrics of this run (docs/operations.md, Metrics).
    // (Whoever ran it may have stopped reading: a closed stdout is not an error at exit.)
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "Metrics of this run (the functions' and the agents' EMF lines):\n{}", metrics.render());
    std::process::ExitCode::SUCCESS
}
