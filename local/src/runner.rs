//! The Fargate stand-in: finds tasks started through RunTask on the emulator and runs each (at
//! most N at a time) as a container of the agent image, the way Fargate would: with the limits,
//! user, read-only root, scratch volume, init process, capabilities and environment of the task
//! definition in generated/ (testenv::container) and the task's overrides. Where no container
//! runtime works, it runs the agent binary as a local process instead (and says so). Either way it
//! ships stdout to the emulator's CloudWatch Logs under the stream the logs handler reads, honours
//! StopTask (SIGTERM, then SIGKILL after the stop timeout), and sends ECS-shaped `Task State
//! Change` events (RUNNING, STOPPED with exit code) to the reconcile handler.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_ecs::types::DesiredStatus;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use names::ecs::{ContainerState, StopCode, TaskStateChange, TaskStatus};
use testenv::container::{Podman, RunSpec};
use testenv::taskdef::TaskDefinition;
use tokio::sync::{mpsc, watch};

/// What to run for a task.
#[derive(Clone, Debug)]
pub enum AgentCommand {
    /// A container of the agent image, as Fargate runs it.
    Container { podman: Podman, image: String },
    /// The agent binary as a local process (machines without a container runtime); `why` says
    /// why not a container.
    Agent { path: PathBuf, why: String },
    /// Test mode: a trivial program instead of the agent (e.g. `true`), for load tests of the
    /// control plane without browsers.
    Trivial(String),
}

impl AgentCommand {
    pub fn describe(&self) -> String {
        match self {
            AgentCommand::Container { image, .. } => format!("containers of {image}"),
            AgentCommand::Agent { path, why } => format!("processes of {} ({why})", path.display()),
            AgentCommand::Trivial(p) => format!("`{p}` (test mode, no agent)"),
        }
    }
}

/// The label of every container a local stack starts, with the stack's id as its value.
pub const CONTAINER_LABEL: &str = "infra-demo-local-stack";

#[derive(Clone, Debug)]
pub struct RunnerSettings {
    pub command: AgentCommand,
    /// The task definition of generated/, as registered in the emulator.
    pub task_definition: TaskDefinition,
    /// Values of the task definition's secrets (its SSM parameters in the emulator).
    pub secrets: BTreeMap<String, String>,
    /// Labels this stack's containers, so they can be found and removed.
    pub stack_id: String,
    pub max_tasks: usize,
    pub scratch: PathBuf,
    /// Extra environment for every agent (the fixture allow-list).
    pub extra_env: Vec<(String, String)>,
    /// Agent processes started, by the task's `startedBy` (the job id): lets a test check that no
    /// job ran twice.
    pub launches: Arc<std::sync::Mutex<HashMap<String, u32>>>,
    /// How long Fargate takes to provision a task (ENI, image pull, container start) before its
    /// container runs: every task waits this long after RunTask, each on its own clock (zero: at
    /// once). Fargate's is 30-60 s.
    pub provisioning_delay: Duration,
    /// How long Fargate takes to deprovision a task after its container exited (the ENI
    /// released) before the task is STOPPED: its container's stop is an event of its own first
    /// (task DEPROVISIONING, the container STOPPED with its exit code), the task's STOPPED event
    /// this long after (zero: at once).
    pub deprovisioning_delay: Duration,
    /// Faults for the functions' calls and duplicate events (testenv::faults).
    pub faults: Option<Arc<testenv::faults::Plan>>,
}

/// An asynchronous invocation is tried this often (Lambda's default: once and two retries).
const ASYNC_ATTEMPTS: u32 = 3;

/// A task found through ListTasks/DescribeTasks.
#[derive(Clone, Debug)]
struct Task {
    arn: String,
    id: String,
    started_by: Option<String>,
    group: Option<String>,
    /// The container overrides' environment.
    overrides: Vec<(String, String)>,
}

/// What a running agent process reports back to the loop.
enum Exit {
    Finished { arn: String, code: Option<i32>, stopped_by_user: bool },
}

pub struct Runner {
    app: Arc<functions::App>,
    /// The emulator's endpoint, where a stopped task's account is recorded.
    endpoint: Option<String>,
    ecs: aws_sdk_ecs::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    settings: RunnerSettings,
    /// Each task's times as ECS reports them (epoch ms): its pull began (when it was seen: the
    /// provisioning delay models the pull), it started, its container stopped.
    times: HashMap<String, (i64, Option<i64>, Option<i64>)>,
}

impl Runner {
    pub fn new(app: Arc<functions::App>, sdk: &aws_config::SdkConfig, settings: RunnerSettings) -> Runner {
        Runner {
            app,
            endpoint: sdk.endpoint_url().map(str::to_owned),
            ecs: aws_sdk_ecs::Client::new(sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(sdk),
            settings,
            times: HashMap::new(),
        }
    }

    /// ECS gives a stopped container this long between SIGTERM and SIGKILL.
    fn stop_grace(&self) -> Duration {
        Duration::from_secs(self.settings.task_definition.container.stop_timeout.unwrap_or(30).into())
    }

    /// The `ECS Task State Change` event ECS would send for `task` in `status`; a stopped task
    /// also says why and how its container exited.
    fn event(&self, task: &Task, status: TaskStatus, stopped: Option<(StopCode, &str, Option<i32>)>) -> Value {
        testenv::events::to_json(&testenv::events::task_state_change(self.detail(task, status, stopped)))
    }

    fn detail(&self, task: &Task, status: TaskStatus, stopped: Option<(StopCode, &str, Option<i32>)>) -> TaskStateChange {
        let times = self.times.get(&task.arn);
        let rfc = functions::time::rfc3339;
        TaskStateChange {
            task_arn: task.arn.clone(),
            cluster_arn: Some(self.app.config.cluster_arn.clone()),
            last_status: status,
            desired_status: Some(if status == TaskStatus::Stopped || stopped.is_some() { TaskStatus::Stopped } else { TaskStatus::Running }),
            started_by: task.started_by.clone(),
            group: task.group.clone(),
            launch_type: Some("FARGATE".into()),
            stop_code: stopped.map(|(code, _, _)| code),
            stopped_reason: stopped.map(|(_, reason, _)| reason.to_string()),
            containers: vec![ContainerState {
                name: self.app.config.container_name.clone(),
                // (An exited container is STOPPED while its task deprovisions.)
                last_status: Some(if stopped.is_some() { TaskStatus::Stopped } else { status }),
                exit_code: stopped.and_then(|(_, _, code)| code).map(i64::from),
                reason: None,
            }],
            pull_started_at: times.map(|t| rfc(t.0)),
            started_at: times.and_then(|t| t.1).map(rfc),
            execution_stopped_at: times.and_then(|t| t.2).map(rfc),
            // The STOPPED event is sent once the task has deprovisioned.
            stopped_at: (status == TaskStatus::Stopped).then(|| times.and_then(|t| t.2)).flatten().map(|at| rfc(at + self.settings.deprovisioning_delay.as_millis() as i64)),
        }
    }

    /// Delivers an event to reconcile as EventBridge does: an asynchronous invocation, so events
    /// are handled concurrently and in no promised order, retried twice when the handler fails
    /// or crashes (Lambda's asynchronous retries, their minutes shortened), and under a fault
    /// plan sometimes delivered twice.
    fn deliver(&self, event: Value) {
        deliver(self.app.clone(), self.settings.faults.clone(), event);
    }

    /// Tasks the emulator wants running.
    async fn wanted(&self) -> Result<Vec<String>, String> {
        let mut arns = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .ecs
                .list_tasks()
                .cluster(&self.app.config.cluster_arn)
                .desired_status(DesiredStatus::Running)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| format!("ListTasks: {e}"))?;
            arns.extend(page.task_arns.unwrap_or_default());
            token = page.next_token;
            if token.is_none() {
                return Ok(arns);
            }
        }
    }

    async fn describe(&mut self, arns: &[String]) -> Vec<Task> {
        let mut tasks = Vec::new();
        for chunk in arns.chunks(100) {
            let described = match self.ecs.describe_tasks().cluster(&self.app.config.cluster_arn).set_tasks(Some(chunk.to_vec())).send().await {
                Ok(d) => d.tasks.unwrap_or_default(),
                Err(e) => {
                    eprintln!("local-stack: runner: DescribeTasks: {e}");
                    continue;
                }
            };
            for t in described {
                let Some(arn) = t.task_arn.clone() else { continue };
                let mut env: Vec<(String, String)> = Vec::new();
                for o in t.overrides.and_then(|o| o.container_overrides).unwrap_or_default() {
                    if o.name.as_deref() == Some(self.app.config.container_name.as_str()) {
                        for kv in o.environment.unwrap_or_default() {
                            if let (Some(k), Some(v)) = (kv.name, kv.value) {
                                env.retain(|(name, _)| name != &k);
                                env.push((k, v));
                            }
                        }
                    }
                }
                tasks.push(Task {
                    id: functions::aws::ecs_task_id(&arn),
                    arn,
                    started_by: t.started_by,
                    group: t.group,
                    overrides: env,
                });
            }
        }
        tasks
    }

    /// The agent as a local process. It has no scratch volume: a directory of its own stands in
    /// for it (the task id's first block keeps the path short, see `stack::scratch_dir`).
    fn process_command(&self, program: &std::ffi::OsStr, task: &Task, mut env: Vec<(String, String)>) -> Command {
        let scratch = self.settings.scratch.join(task.id.split('-').next().unwrap_or(&task.id));
        let _ = std::fs::create_dir_all(&scratch);
        let scratch = scratch.display().to_string();
        env.retain(|(k, _)| k != names::env::agent::SCRATCH_DIR);
        env.extend([("HOME".to_string(), scratch.clone()), (names::env::agent::SCRATCH_DIR.to_string(), scratch)]);
        env.extend(task.overrides.iter().cloned());
        let mut cmd = Command::new(program);
        cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).envs(env).process_group(0);
        cmd
    }

    /// Starts the agent for `task`; its exit is reported on `exits`. Returns the process group id.
    async fn launch(&self, task: &Task, exits: mpsc::Sender<Exit>, stop: watch::Receiver<bool>) -> Option<i32> {
        let stream = names::logs::agent_stream(&task.id);
        let _ = self.logs.create_log_stream().log_group_name(&self.app.config.log_group).log_stream_name(&stream).send().await;
        let td = &self.settings.task_definition;
        // The container's environment: the task definition's, its secrets, then the overrides.
        let mut env: Vec<(String, String)> = td.container.environment.iter().map(|kv| (kv.name.clone(), kv.value.clone())).collect();
        env.extend(self.settings.secrets.iter().map(|(k, v)| (k.clone(), v.clone())));
        env.extend(self.settings.extra_env.iter().cloned());
        let container = format!("ls{}-{}", self.settings.stack_id, task.id);
        // A container's id, written by podman: its exit is read from the runtime's record.
        let cidfile = matches!(self.settings.command, AgentCommand::Container { .. }).then(|| std::env::temp_dir().join(format!("{container}.cid")));
        let mut cmd = match &self.settings.command {
            AgentCommand::Container { podman, image } => {
                env.extend(task.overrides.iter().cloned());
                if let Some(path) = &cidfile {
                    let _ = std::fs::remove_file(path);
                }
                let spec = RunSpec {
                    name: container.clone(),
                    image: image.clone(),
                    env,
                    secrets: self.settings.secrets.clone(),
                    labels: vec![(CONTAINER_LABEL.to_string(), self.settings.stack_id.clone())],
                    hosts: Vec::new(),
                    remove: true,
                    cidfile: cidfile.clone(),
                };
                match testenv::container::run_args(td, &spec) {
                    Ok(args) => {
                        let mut cmd = podman.tokio_command();
                        cmd.args(args);
                        cmd
                    }
                    Err(e) => {
                        eprintln!("local-stack: runner: cannot run task {}: {e}", task.id);
                        let _ = exits.send(Exit::Finished { arn: task.arn.clone(), code: None, stopped_by_user: false }).await;
                        return None;
                    }
                }
            }
            AgentCommand::Agent { path, .. } => self.process_command(path.as_os_str(), task, env),
            AgentCommand::Trivial(program) => self.process_command(std::ffi::OsStr::new(program), task, env),
        };
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("local-stack: runner: cannot start the agent for task {}: {e}", task.id);
                let _ = exits.send(Exit::Finished { arn: task.arn.clone(), code: None, stopped_by_user: false }).await;
                return None;
            }
        };
        // A process is stopped through its process group, a container through podman.
        let pgid = match &self.settings.command {
            AgentCommand::Container { .. } => None,
            _ => child.id().map(|p| p as i32),
        };
        let podman = match &self.settings.command {
            AgentCommand::Container { podman, .. } => Some(podman.clone()),
            _ => None,
        };
        let (lines_tx, mut lines_rx) = mpsc::channel::<String>(1024);
        for reader in [child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>), child.stderr.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>)].into_iter().flatten() {
            let tx = lines_tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(reader).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    // A metric line: what CloudWatch Logs would extract from the agent's log.
                    if line.contains("\"_aws\"") {
                        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                            logging::metrics::collected(&v);
                        }
                    }
                    if tx.send(line).await.is_err() {
                        break;
                    }
                }
            });
        }
        drop(lines_tx);
        // Ships log lines in batches, like the awslogs driver; at once when asked (the
        // container exited: what it wrote is shipped before its exit is reported).
        let logs = self.logs.clone();
        let group = self.app.config.log_group.clone();
        let (flush_tx, mut flush_rx) = mpsc::channel::<tokio::sync::oneshot::Sender<()>>(1);
        let shipper = tokio::spawn(async move {
            enum Next {
                Line(String),
                Quiet,
                Closed,
                Flush(tokio::sync::oneshot::Sender<()>),
            }
            let mut batch = Vec::new();
            let event = |line: String| InputLogEvent::builder().timestamp(functions::time::now_millis()).message(line).build().ok();
            loop {
                let next = tokio::select! {
                    next = tokio::time::timeout(Duration::from_millis(300), lines_rx.recv()) => match next {
                        Ok(Some(line)) => Next::Line(line),
                        Ok(None) => Next::Closed,
                        Err(_) => Next::Quiet,
                    },
                    Some(done) = flush_rx.recv() => Next::Flush(done),
                };
                let mut flushed = None;
                let closed = matches!(next, Next::Closed);
                match next {
                    Next::Line(line) => {
                        batch.extend(event(line));
                        if batch.len() < 500 {
                            continue;
                        }
                    }
                    Next::Flush(done) => {
                        while let Ok(line) = lines_rx.try_recv() {
                            batch.extend(event(line));
                        }
                        flushed = Some(done);
                    }
                    Next::Quiet | Next::Closed => {}
                }
                if !batch.is_empty() {
                    let events = std::mem::take(&mut batch);
                    if let Err(e) = logs.put_log_events().log_group_name(&group).log_stream_name(&stream).set_log_events(Some(events)).send().await {
                        eprintln!("local-stack: runner: PutLogEvents: {e}");
                    }
                }
                if let Some(done) = flushed {
                    let _ = done.send(());
                }
                if closed {
                    return;
                }
            }
        });
        let arn = task.arn.clone();
        let grace = self.stop_grace();
        let mut stop = stop;
        tokio::spawn(async move {
            use std::os::unix::process::ExitStatusExt;
            let code_of = |s: Option<std::process::ExitStatus>| s.and_then(|s| s.code().or_else(|| s.signal().map(|sig| 128 + sig)));
            let mut stopped_by_user = false;
            // A container's exit as its runtime records it, within milliseconds (the ECS agent
            // reports it from the runtime's exit event); `podman run` returns after its
            // clean-up, some 50 ms later. A process's exit is its own.
            let recorded = async {
                let Some(path) = &cidfile else { return std::future::pending().await };
                // The id is written once, at the container's creation; then only its record is
                // looked at.
                let record = loop {
                    if let Some(record) = Podman::exit_record(path) {
                        break record;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                };
                loop {
                    if let Some(code) = Podman::recorded_exit(&record) {
                        break code;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            };
            let mut early = false;
            let code = tokio::select! {
                s = child.wait() => code_of(s.ok()),
                code = recorded => {
                    early = true;
                    Some(code)
                }
                _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => {
                    stopped_by_user = true;
                    if let Some(podman) = &podman {
                        // SIGTERM, and SIGKILL after the grace period, as ECS does.
                        let mut stop = podman.tokio_command();
                        stop.args(["stop", "--time", &grace.as_secs().to_string(), &container]).stdout(Stdio::null()).stderr(Stdio::null());
                        tokio::spawn(async move { let _ = stop.status().await; });
                    }
                    if let Some(pg) = pgid {
                        // SAFETY: signals the agent's own process group.
                        unsafe { libc::kill(-pg, libc::SIGTERM); }
                    }
                    match tokio::time::timeout(grace + Duration::from_secs(5), child.wait()).await {
                        Ok(s) => code_of(s.ok()),
                        Err(_) => {
                            if let Some(pg) = pgid {
                                // SAFETY: as above; the grace period is over.
                                unsafe { libc::kill(-pg, libc::SIGKILL); }
                            }
                            code_of(child.wait().await.ok())
                        }
                    }
                }
            };
            // Nothing the agent started may outlive it.
            if let Some(pg) = pgid {
                // SAFETY: as above; the group may already be gone (ESRCH is harmless).
                unsafe { libc::kill(-pg, libc::SIGKILL); }
            }
            if early {
                // What the container wrote is shipped first (a line still on its way through
                // podman follows, as CloudWatch Logs' lines may come late), then the exit is
                // reported; podman's clean-up (the container's removal) is waited for after.
                let (done, flushed) = tokio::sync::oneshot::channel();
                if flush_tx.send(done).await.is_ok() {
                    let _ = tokio::time::timeout(Duration::from_secs(5), flushed).await;
                }
                let _ = exits.send(Exit::Finished { arn, code, stopped_by_user }).await;
                let _ = child.wait().await;
                let _ = shipper.await;
            } else {
                let _ = shipper.await;
                let _ = exits.send(Exit::Finished { arn, code, stopped_by_user }).await;
            }
            if let Some(path) = &cidfile {
                let _ = std::fs::remove_file(path);
            }
        });
        pgid
    }

    /// Runs until `shutdown` turns true; then stops every agent it started.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut known: HashSet<String> = HashSet::new();
        // Tasks seen, each with the time its provisioning ends.
        let mut pending: VecDeque<(Task, tokio::time::Instant)> = VecDeque::new();
        let mut running: BTreeMap<String, (Task, watch::Sender<bool>)> = BTreeMap::new();
        let (exits_tx, mut exits_rx) = mpsc::channel::<Exit>(256);
        // An agent's exit that woke the loop, reaped first.
        let mut woke: Option<Exit> = None;
        loop {
            // Reap finished agents first.
            while let Some(Exit::Finished { arn, code, stopped_by_user }) = woke.take().or_else(|| exits_rx.try_recv().ok()) {
                let Some((task, _)) = running.remove(&arn) else { continue };
                if let Some(t) = self.times.get_mut(&arn) {
                    t.2 = Some(functions::time::now_millis());
                }
                let (stop_code, reason) = if stopped_by_user {
                    (StopCode::UserInitiated, "Task stopped by user")
                } else {
                    (StopCode::EssentialContainerExited, "Essential container in task exited")
                };
                let stopped = Some((stop_code, reason, code));
                let (exited, detail) = (self.detail(&task, TaskStatus::Deprovisioning, stopped), self.detail(&task, TaskStatus::Stopped, stopped));
                self.times.remove(&arn);
                // ECS's own account of the task first (DescribeTasks answers it), then its event,
                // which may be lost.
                match &self.endpoint {
                    Some(endpoint) => {
                        if let Err(e) = testenv::events::record_stopped(endpoint, &detail).await {
                            eprintln!("local-stack: runner: {e}");
                        }
                    }
                    None if !stopped_by_user => {
                        let _ = self.ecs.stop_task().cluster(&self.app.config.cluster_arn).task(&task.arn).reason(reason).send().await;
                    }
                    None => {}
                }
                // The container's stop, then (once deprovisioned) the task's.
                self.deliver(testenv::events::to_json(&testenv::events::task_state_change(exited)));
                let stopped_event = testenv::events::to_json(&testenv::events::task_state_change(detail));
                match self.settings.deprovisioning_delay {
                    Duration::ZERO => self.deliver(stopped_event),
                    delay => {
                        let (app, faults) = (self.app.clone(), self.settings.faults.clone());
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            deliver(app, faults, stopped_event);
                        });
                    }
                }
            }
            if *shutdown.borrow() {
                break;
            }
            match self.wanted().await {
                Ok(wanted) => {
                    let fresh: Vec<String> = wanted.iter().filter(|a| !known.contains(*a)).cloned().collect();
                    if !fresh.is_empty() {
                        let ready_at = tokio::time::Instant::now() + self.settings.provisioning_delay;
                        for task in self.describe(&fresh).await {
                            known.insert(task.arn.clone());
                            self.times.insert(task.arn.clone(), (functions::time::now_millis(), None, None));
                            pending.push_back((task, ready_at));
                        }
                    }
                    // StopTask: a running task the emulator no longer wants.
                    let wanted: HashSet<&String> = wanted.iter().collect();
                    for (arn, (_, stop)) in &running {
                        if !wanted.contains(arn) {
                            let _ = stop.send(true);
                        }
                    }
                    pending.retain(|(t, _)| wanted.contains(&t.arn));
                    // (A task stopped before it ran leaves no times behind.)
                    self.times.retain(|arn, _| wanted.contains(arn) || running.contains_key(arn));
                }
                Err(e) => eprintln!("local-stack: runner: {e}"),
            }
            while running.len() < self.settings.max_tasks {
                // The first task in order whose provisioning is over (tasks provision at once,
                // each from its own RunTask).
                let now = tokio::time::Instant::now();
                let Some(i) = pending.iter().position(|(_, ready)| *ready <= now) else { break };
                let Some((task, _)) = pending.remove(i) else { break };
                let (stop_tx, stop_rx) = watch::channel(false);
                if let Ok(mut l) = self.settings.launches.lock() {
                    *l.entry(task.started_by.clone().unwrap_or_else(|| task.id.clone())).or_default() += 1;
                }
                if let Some(t) = self.times.get_mut(&task.arn) {
                    t.1 = Some(functions::time::now_millis());
                }
                self.launch(&task, exits_tx.clone(), stop_rx).await;
                self.deliver(self.event(&task, TaskStatus::Running, None));
                running.insert(task.arn.clone(), (task, stop_tx));
            }
            // An agent's exit is reported at once, as ECS reports a container's stop; the loop's
            // tick is for the emulator's new and stopped tasks. (A task's RUNNING event, delivered
            // asynchronously at its launch, may then be handled after its stop, as EventBridge
            // may deliver them: the job ends with the task's start time all the same.)
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = shutdown.changed() => {}
                exit = exits_rx.recv() => woke = exit,
            }
        }
        // Shutting down: stop every agent and wait for them, so nothing is left running.
        for (_, stop) in running.values() {
            let _ = stop.send(true);
        }
        while !running.is_empty() {
            match tokio::time::timeout(self.stop_grace() + Duration::from_secs(5), exits_rx.recv()).await {
                Ok(Some(Exit::Finished { arn, .. })) => {
                    running.remove(&arn);
                }
                _ => break,
            }
        }
        // Nothing of this stack may outlive it, even a container whose podman client died.
        if let AgentCommand::Container { podman, .. } = &self.settings.command {
            let label = format!("label={CONTAINER_LABEL}={}", self.settings.stack_id);
            if let Ok(out) = podman.tokio_command().args(["ps", "--all", "--quiet", "--filter", &label]).output().await {
                let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect();
                if !ids.is_empty() {
                    let _ = podman.tokio_command().args(["rm", "--force", "--volumes"]).args(&ids).output().await;
                }
            }
        }
    }
}

/// Delivers an event to reconcile as EventBridge does (see `Runner::deliver`).
fn deliver(app: Arc<functions::App>, faults: Option<Arc<testenv::faults::Plan>>, event: Value) {
    let twice = faults.as_ref().is_some_and(|p| p.duplicate(event["id"].as_str().unwrap_or_default()));
    for _ in 0..if twice { 2 } else { 1 } {
        let (app, event) = (app.clone(), event.clone());
        tokio::spawn(async move {
            for attempt in 0..ASYNC_ATTEMPTS {
                let failed = match testenv::faults::invoke(functions::reconcile::event(&app, &event)).await {
                    Ok(Ok(_)) => return,
                    Ok(Err(e)) => e.to_string(),
                    Err(crashed) => crashed.to_string(),
                };
                if attempt + 1 < ASYNC_ATTEMPTS {
                    eprintln!("local-stack: runner: reconcile failed ({failed}); retrying");
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                } else {
                    eprintln!("local-stack: runner: reconcile failed ({failed}); event dropped, as Lambda drops an asynchronous event after its retries");
                }
            }
        });
    }
}
