//! Running the agent image the way Fargate runs it, with podman: the limits, user, read-only root,
//! scratch volume, init process, stop timeout, capabilities and environment come from the
//! evaluated task definition ([`crate::taskdef`]); what Fargate adds on top (no privilege
//! escalation, no swap) is added here.
//!
//! Two differences from Fargate, both forced by this machine: the container shares the caller's
//! network namespace (`--network host`: the emulator and fixture pages are on loopback, and tests
//! run inside a loopback-only namespace), and the open-files and process limits are the host's
//! hard limits (1024) rather than Fargate's 65535.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::taskdef::TaskDefinition;

/// The image `make image` (agent/image.sh) builds for this machine.
pub const LOCAL_IMAGE: &str = "infra-demo-agent:local";

/// Arguments every podman command needs here: runc (crun fails with "cgroups in hybrid mode not
/// supported").
const RUNTIME_ARGS: [&str; 2] = ["--runtime", "runc"];
/// Every container's ulimits. podman's default nofile exceeds the host's hard limit ("setrlimit
/// RLIMIT_NOFILE: Operation not permitted"). nproc is high: RLIMIT_NPROC counts every thread of a
/// user on the whole host, and every agent container runs as one user, so a warm pool's 30 idle
/// Chromiums reached 1024 together ("pthread_create: Resource temporarily unavailable"), where on
/// Fargate each task has its own kernel and the operating system's default. 16384: above what this
/// host lets runc set (32768 passes here, 50000 does not), far above what a pool here runs.
pub const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=16384:16384",
];

#[derive(Debug, Clone, thiserror::Error)]
pub enum ContainerError {
    #[error("no container runtime: {0} is not on PATH (scripts/system-packages.sh containers installs podman and runc)")]
    Missing(&'static str),
    #[error("podman cannot run containers here: {0}")]
    Unusable(String),
    #[error("the image {0} does not exist: build it with `make image`")]
    NoImage(String),
    #[error("the task definition's secret {0} has no value (ECS would fail the task at start)")]
    Secret(String),
}

/// podman, checked to work.
#[derive(Clone, Debug)]
pub struct Podman {
    program: PathBuf,
}

fn on_path(path: &std::ffi::OsStr, program: &str) -> Option<PathBuf> {
    std::env::split_paths(path).map(|d| d.join(program)).find(|p| p.is_file())
}

impl Podman {
    /// Finds podman and runc on PATH and checks that podman answers; the error names what is
    /// missing or what podman said.
    pub fn detect() -> Result<Podman, ContainerError> {
        Podman::detect_in(&std::env::var_os("PATH").unwrap_or_default())
    }

    /// [`detect`](Self::detect) with this search path.
    pub fn detect_in(path: &std::ffi::OsStr) -> Result<Podman, ContainerError> {
        let program = on_path(path, "podman").ok_or(ContainerError::Missing("podman"))?;
        on_path(path, "runc").ok_or(ContainerError::Missing("runc"))?;
        let podman = Podman { program };
        let out = podman
            .command()
            .args(["info", "--format", "{{.Host.OCIRuntime.Name}}"])
            .output()
            .map_err(|e| ContainerError::Unusable(e.to_string()))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(ContainerError::Unusable(
                err.trim()
                    .lines()
                    .last()
                    .unwrap_or("podman info failed")
                    .to_string(),
            ));
        }
        Ok(podman)
    }

    /// `podman --runtime runc`, ready for a subcommand.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(RUNTIME_ARGS);
        cmd
    }

    /// Where conmon will record the exit code of the container whose id is in `cidfile` (podman's
    /// tmp dir, `exits/<id>`), once podman has written the id: the record appears within
    /// milliseconds of the exit, where `podman run` returns only after its clean-up, some 50 ms
    /// later here. This is how the ECS agent learns a container's exit (from the runtime's exit
    /// event), so the Fargate stand-in reports it from there ([`Podman::recorded_exit`]). None
    /// before the id is written, or where podman's default tmp dir is not found (`/run/libpod`
    /// as root, `$XDG_RUNTIME_DIR/libpod/tmp` rootless); the caller then waits for `podman run`.
    pub fn exit_record(cidfile: &Path) -> Option<PathBuf> {
        let id = std::fs::read_to_string(cidfile).ok()?;
        let id = id.trim();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        // SAFETY: geteuid has no preconditions.
        let tmp = if unsafe { libc::geteuid() } == 0 { PathBuf::from("/run/libpod") } else { PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?).join("libpod/tmp") };
        Some(tmp.join("exits").join(id))
    }

    /// The exit code an [`exit_record`](Self::exit_record) holds, once the container has exited.
    pub fn recorded_exit(record: &Path) -> Option<i32> {
        std::fs::read_to_string(record).ok()?.trim().parse().ok()
    }

    /// The same as a tokio command, for async callers.
    pub fn tokio_command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(RUNTIME_ARGS);
        cmd
    }

    pub fn require_image(&self, image: &str) -> Result<(), ContainerError> {
        let ok = self
            .command()
            .args(["image", "exists", image])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Ok(())
        } else {
            Err(ContainerError::NoImage(image.to_string()))
        }
    }

    /// Size of an image in bytes.
    pub fn image_size(&self, image: &str) -> Option<u64> {
        let out = self
            .command()
            .args(["image", "inspect", "--format", "{{.Size}}", image])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }

    /// Stops a container as ECS StopTask does: SIGTERM, SIGKILL after `grace_seconds`.
    pub fn stop(
        &self,
        name: &str,
        grace_seconds: u32,
    ) -> std::io::Result<std::process::ExitStatus> {
        self.command()
            .args(["stop", "--time", &grace_seconds.to_string(), name])
            .output()
            .map(|o| o.status)
    }

    /// Removes a container and its anonymous volumes, whatever its state.
    pub fn remove(&self, name: &str) {
        let _ = self
            .command()
            .args(["rm", "--force", "--volumes", name])
            .output();
    }

    /// Paths the container changed in its root filesystem (`podman diff`), mounts excluded.
    pub fn diff(&self, name: &str) -> std::io::Result<Vec<String>> {
        let out = self.command().args(["diff", name]).output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }
}

/// One container of the agent task.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub name: String,
    pub image: String,
    /// Container overrides (the job), applied over the task definition's environment.
    pub env: Vec<(String, String)>,
    /// Values of the task definition's secrets, by environment name (SSM in AWS).
    pub secrets: BTreeMap<String, String>,
    pub labels: Vec<(String, String)>,
    /// Names in the container's /etc/hosts (`--add-host name:ip`), for tests that need a name to
    /// resolve to a given address.
    pub hosts: Vec<(String, String)>,
    /// `--rm`: remove the container when it exits (off when a test inspects it afterwards).
    pub remove: bool,
    /// `--cidfile`: where podman writes the container's id (a file that must not exist yet), so
    /// its exit can be read from [`Podman::exit_code`].
    pub cidfile: Option<PathBuf>,
}

/// `podman run` arguments (after `podman --runtime runc`) for `spec` as `td` declares it.
pub fn run_args(td: &TaskDefinition, spec: &RunSpec) -> Result<Vec<String>, ContainerError> {
    let c = &td.container;
    let mut a: Vec<String> = vec![
        "run".into(),
        "--name".into(),
        spec.name.clone(),
        "--pull=never".into(),
    ];
    if spec.remove {
        a.push("--rm".into());
    }
    if let Some(path) = &spec.cidfile {
        a.extend(["--cidfile".into(), path.display().to_string()]);
    }
    a.extend(["--network", "host"].map(String::from));
    a.extend(ULIMITS.map(String::from));
    if c.readonly_root_filesystem {
        // podman's --read-only alone mounts writable tmpfs on /tmp, /var/tmp and /run; Fargate does not.
        a.extend(["--read-only", "--read-only-tmpfs=false"].map(String::from));
    }
    if let Some(user) = &c.user {
        a.extend(["--user".into(), user.clone()]);
    }
    if c.privileged {
        a.push("--privileged".into());
    }
    let params = c.linux_parameters.clone().unwrap_or_default();
    for cap in &params.capabilities.drop {
        a.extend(["--cap-drop".into(), cap.clone()]);
    }
    for cap in &params.capabilities.add {
        a.extend(["--cap-add".into(), cap.clone()]);
    }
    // Fargate's containers cannot gain privileges (no setuid helpers apply to a non-root user).
    a.extend(["--security-opt", "no-new-privileges"].map(String::from));
    if params.init_process_enabled {
        a.push("--init".into());
    }
    let memory = c.memory.unwrap_or(td.memory).min(td.memory);
    a.extend([
        format!("--memory={memory}m"),
        format!("--memory-swap={memory}m"),
    ]);
    a.push(format!("--cpus={}", f64::from(td.cpu) / 1024.0));
    if let Some(t) = c.stop_timeout {
        a.push(format!("--stop-timeout={t}"));
    }
    for m in &c.mount_points {
        // A task volume without a host path is Fargate's ephemeral storage: an anonymous volume,
        // owned as the image's directory is (podman copies it up).
        let ro = if m.read_only { ",ro" } else { "" };
        a.push(format!(
            "--mount=type=volume,destination={}{ro}",
            m.container_path
        ));
    }
    for (k, v) in &spec.labels {
        a.push(format!("--label={k}={v}"));
    }
    for (name, ip) in &spec.hosts {
        a.push(format!("--add-host={name}:{ip}"));
    }
    let mut env: Vec<(String, String)> = c
        .environment
        .iter()
        .map(|kv| (kv.name.clone(), kv.value.clone()))
        .collect();
    for s in &c.secrets {
        let value = spec
            .secrets
            .get(&s.name)
            .ok_or_else(|| ContainerError::Secret(s.name.clone()))?;
        env.push((s.name.clone(), value.clone()));
    }
    for (k, v) in &spec.env {
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    for (k, v) in env {
        a.extend(["--env".into(), format!("{k}={v}")]);
    }
    a.push(spec.image.clone());
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RunSpec {
        RunSpec {
            name: "t1".into(),
            image: LOCAL_IMAGE.into(),
            env: vec![
                ("AGENT_JOB".into(), "{}".into()),
                (names::env::agent::SCRATCH_DIR.into(), "/override".into()),
            ],
            secrets: BTreeMap::from([("OPERATOR_SECRET".to_string(), "s3cret".to_string())]),
            labels: vec![("stack".into(), "x".into())],
            hosts: Vec::new(),
            remove: true,
            cidfile: None,
        }
    }

    #[test]
    fn the_run_follows_the_generated_task_definition() {
        // With an operator secret, as `agent_secrets` declares one.
        let vars = BTreeMap::from([("agent_secrets".to_string(), serde_json::json!({"OPERATOR_SECRET": "operator/secret"}))]);
        let td = TaskDefinition::from_dir(&crate::root().join("generated"), &vars).unwrap();
        assert_eq!(td.container.secrets.len(), 1);
        assert!(td.container.secrets[0].value_from.ends_with(":parameter/infra-demo/dev/agent/operator/secret"), "{:?}", td.container.secrets);
        let args = run_args(&td, &spec()).unwrap().join(" ");
        for expected in [
            "--read-only --read-only-tmpfs=false",
            &format!("--user {}", names::agent::USER),
            "--cap-drop ALL",
            "--security-opt no-new-privileges",
            "--init",
            &format!("--memory={}m", names::defaults::AGENT_MEMORY),
            "--cpus=1",
            "--stop-timeout=30",
            &format!(
                "--mount=type=volume,destination={}",
                names::agent::SCRATCH_MOUNT
            ),
            "--env AGENT_JOB={}",
            "--env AGENT_SCRATCH_DIR=/override",
            "--label=stack=x",
            "--env OPERATOR_SECRET=s3cret",
        ] {
            assert!(args.contains(expected), "{expected} missing from: {args}");
        }
        assert!(
            !args.contains(&format!(
                "AGENT_SCRATCH_DIR={}",
                names::agent::SCRATCH_MOUNT
            )),
            "the override wins"
        );
        assert!(args.ends_with(LOCAL_IMAGE));
    }

    #[test]
    fn a_missing_or_broken_runtime_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("podman-detect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tool = |name: &str, script: &str| {
            let p = dir.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        let path = dir.clone().into_os_string();
        let e = Podman::detect_in(&path).unwrap_err();
        assert!(e.to_string().contains("podman is not on PATH"), "{e}");
        tool("podman", "echo 'Error: cannot set up namespaces: Operation not permitted' >&2; exit 125");
        let e = Podman::detect_in(&path).unwrap_err();
        assert!(e.to_string().contains("runc is not on PATH"), "{e}");
        tool("runc", "exit 0");
        let e = Podman::detect_in(&path).unwrap_err();
        assert!(e.to_string().contains("cannot run containers here: Error: cannot set up namespaces"), "{e}");
        tool("podman", "echo runc");
        assert!(Podman::detect_in(&path).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_secret_without_a_value_is_refused() {
        let mut td = TaskDefinition::from_generated(&crate::root()).unwrap();
        td.container.secrets.push(crate::taskdef::Secret {
            name: "OPERATOR_SECRET".into(),
            value_from: "arn:aws:ssm:x".into(),
        });
        let mut s = spec();
        s.secrets.clear();
        let e = run_args(&td, &s).unwrap_err();
        assert!(matches!(e, ContainerError::Secret(_)), "{e}");
    }
}
