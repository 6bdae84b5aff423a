//! `jobsctl`: the API's command-line client (not `jobs`, which every shell has as a builtin). Submit a job and wait for it with its status changes
//! shown live, save its files, read its logs (following them), list and cancel jobs.

mod client;

use clap::{ArgGroup, Parser, Subcommand};
use client::{exit, Api, Failure};
use names::api::{Accepted, JobList, JobView, LogPage, SubmitRequest};
use names::job::{JobOptions, Viewport};
use names::JobStatus;
use serde_json::Value;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const EXIT_CODES: &str = "Exit codes:
  0  done (with --wait: the job COMPLETED)
  1  the job FAILED (--wait)
  2  bad usage: an unknown flag, no API URL or key, a plain-HTTP API URL of another machine, a steps file that cannot be read
  3  the job was CANCELLED (--wait)
  4  the API refused the request (400, 403, 404, 409, 413, 415)
  5  still throttled (429) after --retries retries, each after its Retry-After
  6  the API could not be reached, failed (5xx), or answered a redirect
  7  an output could not be downloaded or saved (--download)
  8  --wait gave up after --wait-timeout; the job goes on";

#[derive(Parser, Debug)]
#[command(name = env!("CARGO_BIN_NAME"), version, about = "Browser jobs from the command line: submit, wait, download, status, logs, list, cancel, usage", after_help = EXIT_CODES)]
struct Cli {
    /// The API's base URL, e.g. https://abc123.execute-api.us-east-1.amazonaws.com/v1 (default:
    /// `terraform output api_gateway_url` of --terraform-dir)
    #[arg(long, env = "JOBS_API_URL", global = true)]
    api_url: Option<String>,
    /// The API key (default: `terraform output api_key` of --terraform-dir)
    #[arg(long, env = "JOBS_API_KEY", global = true, hide_env_values = true)]
    api_key: Option<String>,
    /// The deployed stack's Terraform directory, for the URL and key
    #[arg(long, default_value = "generated", global = true)]
    terraform_dir: PathBuf,
    /// Print the API's JSON (one object; `logs`: one event per line) instead of text
    #[arg(long, global = true)]
    json: bool,
    /// Send the API key over plain http:// to another machine (refused otherwise; http:// to this
    /// machine, the local stack, is always allowed)
    #[arg(long, env = "JOBS_ALLOW_HTTP", global = true)]
    allow_http: bool,
    /// Retries of a throttled (429) request, each after its Retry-After
    #[arg(long, default_value_t = 5, global = true)]
    retries: u32,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Submit a job (a query, a URL or a steps file), optionally wait for it and save its files
    Submit(Box<SubmitArgs>),
    /// Show a job and links to its outputs
    Status { task_id: String },
    /// Print a job's agent log lines
    Logs {
        task_id: String,
        /// Keep printing new lines until the job has finished
        #[arg(long, short)]
        follow: bool,
        /// Lines per request (1-500)
        #[arg(long, default_value_t = 200)]
        limit: u32,
    },
    /// List the tenant's jobs, newest first
    List {
        /// Only jobs in this status (QUEUED, RUNNING, COMPLETED, FAILED, ...)
        #[arg(long)]
        status: Option<String>,
        /// Jobs per page (1-100)
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Start at this page (the `next_token` a list printed)
        #[arg(long)]
        next_token: Option<String>,
        /// Every page, not only the first
        #[arg(long)]
        all: bool,
    },
    /// Cancel a job that has not finished
    Cancel { task_id: String },
    /// The tenant's jobs, running time and estimated Fargate cost by day (UTC)
    Usage {
        /// The first day, YYYY-MM-DD (default: 29 days before --to)
        #[arg(long)]
        from: Option<String>,
        /// The last day, YYYY-MM-DD (default: today); at most 93 days from --from
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).multiple(true).args(["query", "url", "steps", "goal"])))]
struct SubmitArgs {
    /// A computer-use job: what to do, in words; a model decides each action
    #[arg(long, conflicts_with_all = ["query", "url", "steps"])]
    goal: Option<String>,
    /// With --goal: the page the browser shows first
    #[arg(long, requires = "goal", value_name = "URL")]
    start_url: Option<String>,
    /// With --goal: the only domains (and their subdomains) the browser may reach
    #[arg(long, requires = "goal", value_delimiter = ',', value_name = "DOMAIN")]
    allowed_domains: Vec<String>,
    /// With --goal: tenant secrets the model may type by name (it never sees their values)
    #[arg(long, requires = "goal", value_delimiter = ',', value_name = "NAME")]
    secrets: Vec<String>,
    /// With --goal: a JSON Schema file the answer must satisfy
    #[arg(long, requires = "goal", value_name = "FILE")]
    output_schema: Option<PathBuf>,
    /// With --goal: the model, PROVIDER/ID (`bedrock/...`, or `anthropic/...` with --api-key-secret)
    #[arg(long, requires = "goal", value_name = "PROVIDER/ID")]
    model: Option<String>,
    /// With an `anthropic/` model: the tenant secret that holds its API key
    #[arg(long, requires = "model", value_name = "NAME")]
    api_key_secret: Option<String>,
    /// With --goal: the most model turns
    #[arg(long, requires = "goal", value_name = "N")]
    max_steps: Option<u32>,
    /// With --goal: the most tokens, in and out
    #[arg(long, requires = "goal", value_name = "N")]
    max_tokens: Option<u64>,
    /// With --goal: the most estimated model cost, US dollars
    #[arg(long, requires = "goal", value_name = "USD")]
    max_cost_usd: Option<f64>,
    /// Search for this
    #[arg(long, conflicts_with = "url")]
    query: Option<String>,
    /// Open this page
    #[arg(long)]
    url: Option<String>,
    /// A JSON file of steps (an array, or an object with `steps`); `-` reads stdin
    #[arg(long, value_name = "FILE")]
    steps: Option<PathBuf>,
    /// Capture the whole page, not only the viewport
    #[arg(long)]
    full_page: bool,
    /// The viewport, WIDTHxHEIGHT (default 1280x800)
    #[arg(long, value_parser = parse_viewport)]
    viewport: Option<Viewport>,
    /// The job's timeout in seconds (10-600, default 120)
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u32>,
    /// Also capture the page's HTML
    #[arg(long)]
    html: bool,
    /// Send the signed completion event to this URL
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// Submitting again with the same key and body answers the same job
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    /// Wait for the job to finish, showing its status changes
    #[arg(long)]
    wait: bool,
    /// Save every output file into DIR once the job has finished (implies --wait)
    #[arg(long, value_name = "DIR")]
    download: Option<PathBuf>,
    /// Stop waiting after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    wait_timeout: u64,
}

/// `PROVIDER/ID` as the API's `model`.
fn parse_model(s: &str, api_key_secret: Option<String>) -> Result<names::goal::ModelChoice, Failure> {
    let (provider, id) = s.split_once('/').ok_or_else(|| Failure::Usage(format!("--model `{s}` is not PROVIDER/ID, e.g. bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0")))?;
    let provider = names::goal::Provider::parse(provider).ok_or_else(|| Failure::Usage(format!("--model: the provider `{provider}` is not bedrock or anthropic")))?;
    Ok(names::goal::ModelChoice { provider, id: id.to_owned(), api_key_secret })
}

/// A JSON Schema file, as JSON (the API checks that it is a schema).
fn read_schema(path: &std::path::Path) -> Result<Value, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure::Usage(format!("--output-schema {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Failure::Usage(format!("--output-schema {}: not JSON ({e})", path.display())))
}

fn parse_viewport(s: &str) -> Result<Viewport, String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| format!("`{s}` is not WIDTHxHEIGHT, e.g. 1280x800"))?;
    let num = |v: &str| v.trim().parse::<u32>().map_err(|_| format!("`{s}` is not WIDTHxHEIGHT, e.g. 1280x800"));
    Ok(Viewport { width: num(w)?, height: num(h)? })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("{}: {f}", env!("CARGO_BIN_NAME"));
            ExitCode::from(f.exit_code())
        }
    }
}

fn run(cli: &Cli) -> Result<u8, Failure> {
    let url = setting(&cli.api_url, &cli.terraform_dir, "api_gateway_url", "--api-url or JOBS_API_URL")?;
    let key = setting(&cli.api_key, &cli.terraform_dir, "api_key", "--api-key or JOBS_API_KEY")?;
    let api = Api::new(&url, &key, cli.retries, cli.allow_http)?;
    match &cli.command {
        Command::Submit(args) => submit(cli, &api, args),
        Command::Status { task_id } => {
            let job = api.get(&job_path(task_id)?, &[])?;
            if cli.json {
                print_json(&job);
            } else {
                print_job(&typed::<JobView>(job)?);
            }
            Ok(exit::OK)
        }
        Command::Logs { task_id, follow, limit } => logs(cli, &api, task_id, *follow, *limit),
        Command::List { status, limit, next_token, all } => list(cli, &api, status.as_deref(), *limit, next_token.clone(), *all),
        Command::Usage { from, to } => {
            let query: Vec<(&str, String)> = [("from", from), ("to", to)].into_iter().filter_map(|(k, v)| v.clone().map(|v| (k, v))).collect();
            let usage = api.get(names::routes::USAGE, &query)?;
            if cli.json {
                print_json(&usage);
            } else {
                print_usage(&typed::<names::api::Usage>(usage)?);
            }
            Ok(exit::OK)
        }
        Command::Cancel { task_id } => {
            let job = api.call(reqwest::Method::DELETE, &job_path(task_id)?, &[], None, &[])?;
            if cli.json {
                print_json(&job);
            } else {
                let job = typed::<JobView>(job)?;
                println!("{} {}", job.task_id, job.status);
            }
            Ok(exit::OK)
        }
    }
}

/// A usage table: a line a day, then the totals.
fn print_usage(u: &names::api::Usage) {
    println!("tenant {}, {} to {} (UTC)", u.tenant_id, u.from, u.to);
    println!(
        "{:<12} {:>6} {:>9} {:>6} {:>9} {:>11} {:>12} {:>11} {:>10} {:>12} {:>11} {:>11} {:>11}",
        "day", "jobs", "completed", "failed", "cancelled", "run (s)", "vCPU-s", "GB-s", "task (USD)", "model in", "model out", "model (USD)", "total (USD)"
    );
    let line = |day: &str, t: &names::api::UsageTotals| {
        println!(
            "{day:<12} {:>6} {:>9} {:>6} {:>9} {:>11.1} {:>12.1} {:>11.1} {:>10.4} {:>12} {:>11} {:>11.4} {:>11.4}",
            t.jobs,
            t.completed,
            t.failed,
            t.cancelled,
            t.run_seconds,
            t.vcpu_seconds,
            t.gb_seconds,
            t.estimated_cost_usd,
            t.model_input_tokens,
            t.model_output_tokens,
            t.model_cost_usd,
            t.estimated_cost_usd + t.model_cost_usd
        )
    };
    for d in &u.days {
        line(&d.day, &d.usage);
    }
    line("total", &u.total);
}

/// A flag's (or its variable's) value, else the deployed stack's Terraform output.
fn setting(given: &Option<String>, dir: &Path, output: &str, flag: &str) -> Result<String, Failure> {
    if let Some(v) = given.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        return Ok(v.to_string());
    }
    let out = std::process::Command::new("terraform")
        .arg(format!("-chdir={}", dir.display()))
        .args(["output", "-raw", output])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() && !o.stdout.is_empty() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(_) => Err(Failure::Usage(format!("no {output}: pass {flag}, or deploy {} so `terraform output {output}` has it", dir.display()))),
        Err(_) => Err(Failure::Usage(format!("no {output}: pass {flag} (terraform, for `terraform output {output}`, is not installed)"))),
    }
}

/// `/jobs/<id>`, once the id looks like one (so a typo is not sent as a path).
fn job_path(task_id: &str) -> Result<String, Failure> {
    let ok = task_id.len() == 36 && task_id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !ok {
        return Err(Failure::Usage(format!("`{task_id}` is not a job id (the task_id a submit printed: 36 characters, a UUID)")));
    }
    Ok(format!("/jobs/{task_id}"))
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, Failure> {
    T::deserialize(&v).map_err(|e| Failure::Unavailable(format!("the API answered an unexpected body ({e}): {v}")))
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn submit(cli: &Cli, api: &Api, args: &SubmitArgs) -> Result<u8, Failure> {
    let any_option = args.full_page || args.viewport.is_some() || args.timeout.is_some() || args.html;
    let defaults = JobOptions::default();
    let request = SubmitRequest {
        query: args.query.clone(),
        url: args.url.clone(),
        options: any_option.then(|| JobOptions {
            full_page: args.full_page,
            viewport: args.viewport.unwrap_or(defaults.viewport),
            timeout_seconds: args.timeout.unwrap_or(defaults.timeout_seconds),
            capture_html: args.html,
        }),
        webhook: args.webhook.clone().map(|url| names::api::WebhookRequest { url }),
        goal: args.goal.clone(),
        start_url: args.start_url.clone(),
        allowed_domains: args.allowed_domains.clone(),
        secrets: args.secrets.clone(),
        output_schema: args.output_schema.as_deref().map(read_schema).transpose()?,
        model: args.model.as_deref().map(|m| parse_model(m, args.api_key_secret.clone())).transpose()?,
        limits: (args.max_steps.is_some() || args.max_tokens.is_some() || args.max_cost_usd.is_some()).then(|| names::goal::AskedLimits {
            max_steps: args.max_steps,
            max_tokens: args.max_tokens,
            max_cost_usd: args.max_cost_usd.map(names::goal::Usd),
        }),
        ..Default::default()
    };
    let mut body = serde_json::to_value(&request).expect("a request serializes");
    if let Some(file) = &args.steps {
        // Sent as written: the API names any step field at fault (`steps[2].selector`).
        body["steps"] = read_steps(file)?;
    }
    let headers: Vec<(&str, String)> = args.idempotency_key.iter().map(|k| (names::routes::IDEMPOTENCY_KEY_HEADER, k.clone())).collect();
    let accepted = api.call(reqwest::Method::POST, names::routes::JOBS, &[], Some(&body), &headers)?;
    let job: Accepted = typed(accepted.clone())?;
    if !(args.wait || args.download.is_some()) {
        if cli.json {
            print_json(&accepted);
        } else {
            println!("{}", job.task_id);
            eprintln!("{} {}; `{} status {}` shows it", job.task_id, job.status, env!("CARGO_BIN_NAME"), job.task_id);
        }
        return Ok(exit::OK);
    }
    if let Some(dir) = &args.download {
        std::fs::create_dir_all(dir).map_err(|e| Failure::Usage(format!("cannot create {}: {e}", dir.display())))?;
    }
    if !cli.json {
        eprintln!("submitted {}", job.task_id);
    }
    let (raw, finished) = wait(api, &job.task_id, Duration::from_secs(args.wait_timeout))?;
    if let Some(dir) = &args.download {
        download(api, &finished, dir, cli.json)?;
    }
    if cli.json {
        print_json(&raw);
    } else {
        print_job(&finished);
    }
    Ok(match finished.status {
        JobStatus::Completed => exit::OK,
        JobStatus::Cancelled => exit::JOB_CANCELLED,
        _ => exit::JOB_FAILED,
    })
}

fn read_steps(file: &Path) -> Result<Value, Failure> {
    let text = if file == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| Failure::Usage(format!("reading steps from stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| Failure::Usage(format!("cannot read the steps file {}: {e}", file.display())))?
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| Failure::Usage(format!("the steps file {} is not JSON: {e}", file.display())))?;
    match v {
        Value::Array(_) => Ok(v),
        Value::Object(mut o) if o.get("steps").is_some_and(Value::is_array) => Ok(o.remove("steps").unwrap_or_default()),
        _ => Err(Failure::Usage(format!("the steps file {} holds neither an array of steps nor an object with `steps`", file.display()))),
    }
}

/// Polls the job until it finishes, showing each status change (and a spinner with the time so
/// far where stderr is a terminal). The last answer, raw and typed.
fn wait(api: &Api, task_id: &str, timeout: Duration) -> Result<(Value, JobView), Failure> {
    let started = Instant::now();
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("a valid template"));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let mut last: Option<String> = None;
    let path = job_path(task_id)?;
    // A computer-use job's turns, from its log as they happen.
    let mut turns = TurnFollower { token: None, path: format!("{path}/logs") };
    let result = loop {
        let raw = api.get(&path, &[])?;
        let job: JobView = typed(raw.clone())?;
        if job.goal.is_some() && job.status >= JobStatus::Running {
            for line in turns.new_turns(api)? {
                let at = started.elapsed().as_secs_f64();
                spinner.suspend(|| eprintln!("{at:>7.1}s  {line}"));
            }
        }
        let mut now = job.status.as_str().to_string();
        if let Some(r) = job.queued_reason {
            now.push_str(&format!(" ({r})"));
        }
        if job.warm_start == Some(true) {
            now.push_str(" (warm start)");
        }
        if last.as_deref() != Some(now.as_str()) {
            let at = started.elapsed().as_secs_f64();
            spinner.suspend(|| eprintln!("{at:>7.1}s  {now}"));
            spinner.set_message(now.clone());
            last = Some(now);
        }
        if job.status.is_terminal() {
            break Ok((raw, job));
        }
        if started.elapsed() >= timeout {
            break Err(Failure::WaitTimedOut { task_id: task_id.to_string(), status: job.status.as_str().to_string() });
        }
        // Quick at first (a warm start is RUNNING in about a second), then every 2 s.
        std::thread::sleep(if started.elapsed() < Duration::from_secs(10) { Duration::from_millis(500) } else { Duration::from_secs(2) });
    };
    spinner.finish_and_clear();
    result
}

/// Follows a job's log for its model turns (`names::logs::MODEL_TURN` lines).
struct TurnFollower {
    token: Option<String>,
    path: String,
}

impl TurnFollower {
    /// The turns logged since the last call, a line each: `turn 2: Signing in. (left_click, type)`.
    fn new_turns(&mut self, api: &Api) -> Result<Vec<String>, Failure> {
        let mut lines = Vec::new();
        loop {
            let mut query = vec![("limit", "100".to_string())];
            if let Some(t) = &self.token {
                query.push(("next_token", t.clone()));
            }
            let page: LogPage = typed(api.get(&self.path, &query)?)?;
            for e in &page.events {
                let Ok(line) = serde_json::from_str::<Value>(&e.message) else { continue };
                if line["msg"] != names::logs::MODEL_TURN {
                    continue;
                }
                let actions: Vec<&str> = line["actions"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                let text = line["text"].as_str().unwrap_or("").trim();
                let did = if actions.is_empty() { "answered".to_string() } else { actions.join(", ") };
                let failed = line["failed"].as_u64().filter(|n| *n > 0).map(|n| format!(", {n} failed")).unwrap_or_default();
                lines.push(format!("turn {}: {text} ({did}{failed})", line["turn"]));
            }
            match page.next_token {
                Some(t) if page.count > 0 => self.token = Some(t),
                Some(t) => {
                    self.token = Some(t);
                    break;
                }
                None => break,
            }
        }
        Ok(lines)
    }
}

/// Saves every output of the job below `dir` (`screenshot.png`, `files/after-login.png`, ...).
fn download(api: &Api, job: &JobView, dir: &Path, quiet: bool) -> Result<(), Failure> {
    let Some(outputs) = &job.outputs else { return Ok(()) };
    for (name, link) in outputs.files() {
        let relative = Path::new(&name);
        // The names are the API's; still, nothing is written outside `dir`.
        if !relative.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(Failure::Download(format!("refusing to save `{name}` (not a plain relative path)")));
        }
        let bytes = api.download(link)?;
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Failure::Download(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, &bytes).map_err(|e| Failure::Download(format!("cannot write {}: {e}", path.display())))?;
        if !quiet {
            eprintln!("saved {} ({} bytes)", path.display(), bytes.len());
        }
    }
    Ok(())
}

fn print_job(job: &JobView) {
    println!("task_id      {}", job.task_id);
    println!("status       {}{}", job.status, job.queued_reason.map(|r| format!(" ({r})")).unwrap_or_default());
    if let Some(t) = job.query.as_deref().map(|q| format!("query {q:?}")).or(job.url.as_deref().map(|u| format!("url {u}"))) {
        println!("target       {t}");
    }
    if !job.steps.is_empty() {
        println!("steps        {}", job.steps.len());
    }
    if let Some(goal) = &job.goal {
        println!("goal         {goal:?}");
    }
    if let Some(model) = &job.model {
        println!("model        {}", model.key());
    }
    println!("created_at   {}", job.created_at);
    for (k, v) in [("started_at", &job.started_at), ("finished_at", &job.finished_at)] {
        if let Some(v) = v {
            println!("{k:<12} {v}");
        }
    }
    if job.warm_start == Some(true) {
        println!("warm_start   true");
    }
    if let Some(e) = &job.error {
        let step = e.step.map(|s| format!(" (step {s})")).unwrap_or_default();
        println!("error        {}: {}{step}", e.code.as_deref().unwrap_or("-"), e.message.as_deref().unwrap_or(""));
    }
    if let Some(code) = job.exit_code {
        println!("exit_code    {code}");
    }
    if let Some(w) = &job.webhook {
        println!("webhook      {} {}", w.url, w.state.map(|s| s.as_str()).unwrap_or("not sent yet"));
    }
    if let Some(a) = &job.answer {
        println!("answer       {a}");
    }
    if let Some(u) = &job.model_usage {
        println!("model_usage  {} turns, {} tokens in, {} out, ~${}", u.turns, u.all_input_tokens(), u.output_tokens, u.estimated_cost_usd.0);
    }
    if let Some(c) = &job.cost {
        println!("cost         ~${} (task ${}, model ${})", c.total_usd.0, c.task_usd.0, c.model_usd.0);
    }
    if let Some(outputs) = &job.outputs {
        for (name, link) in outputs.files() {
            println!("{name:<12} {link}");
        }
    }
}

fn logs(cli: &Cli, api: &Api, task_id: &str, follow: bool, limit: u32) -> Result<u8, Failure> {
    let path = format!("{}/logs", job_path(task_id)?);
    let mut token: Option<String> = None;
    // After the job ends, its last lines may still be on their way to CloudWatch: one more read.
    let mut after_end = 0;
    loop {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(t) = &token {
            query.push(("next_token", t.clone()));
        }
        let page: LogPage = typed(api.get(&path, &query)?)?;
        for e in &page.events {
            if cli.json {
                println!("{}", serde_json::to_string(e).unwrap_or_default());
            } else {
                println!("{} {}", e.time, e.message);
            }
        }
        match page.next_token {
            // More is there now.
            Some(next) if !page.events.is_empty() => {
                token = Some(next);
                continue;
            }
            _ => {}
        }
        if !follow {
            return Ok(exit::OK);
        }
        if page.status.is_terminal() {
            after_end += 1;
            if after_end > 2 {
                return Ok(exit::OK);
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn list(cli: &Cli, api: &Api, status: Option<&str>, limit: u32, mut token: Option<String>, all: bool) -> Result<u8, Failure> {
    let mut pages = Vec::new();
    loop {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(s) = status {
            query.push(("status", s.to_uppercase()));
        }
        if let Some(t) = &token {
            query.push(("next_token", t.clone()));
        }
        let raw = api.get(names::routes::JOBS, &query)?;
        let page: JobList = typed(raw.clone())?;
        if cli.json {
            pages.push(raw);
        } else {
            for j in &page.jobs {
                let target = j
                    .query
                    .as_deref()
                    .map(|q| format!("query {q:?}"))
                    .or(j.url.clone())
                    .or(j.goal.as_ref().map(|g| format!("goal {g:?}")))
                    .unwrap_or_else(|| format!("{} steps", j.steps.len()));
                println!("{}  {:<12}  {}  {target}", j.task_id, j.status.as_str(), j.created_at);
            }
        }
        token = page.next_token;
        match (&token, all) {
            (Some(_), true) => continue,
            (Some(t), false) if !cli.json => eprintln!("more: --next-token {t} (or --all)"),
            _ => {}
        }
        break;
    }
    if cli.json {
        // One page as the API answered it; with --all, every page's jobs in one list.
        if pages.len() == 1 {
            print_json(&pages[0]);
        } else {
            let jobs: Vec<Value> = pages.iter().flat_map(|p| p["jobs"].as_array().cloned().unwrap_or_default()).collect();
            print_json(&serde_json::json!({ "count": jobs.len(), "jobs": jobs }));
        }
    }
    Ok(exit::OK)
}
