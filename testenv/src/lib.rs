//! The one test environment of the workspace, used by the tests, the benchmarks and the local
//! stack: the moto server (started one way), a bucket with SDK-signed links, free loopback ports, loopback-only network
//! namespaces for tests that aim at addresses that must be refused, and the agent's task
//! definition read from `generated/` and run as a container the way Fargate runs it, and the jobs
//! table created from its declaration there, and a webhook receiver that verifies signatures with
//! the Standard Webhooks reference library.
//!
//! Depends on `names` and `tfjson`, never on the functions or the agent, so every crate can use it.

pub mod container;
pub mod events;
pub mod faults;
pub mod fixture;
pub mod iam;
pub mod moto;
pub mod model;
pub mod netns;
pub mod pyserver;
pub mod s3;
pub mod ssm;
pub mod table;
pub mod taskdef;
pub mod webhooks;

use std::path::{Path, PathBuf};

/// The workspace root: where `generated/`, `.tools/` and `target/` are.
pub fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The project's Python virtualenv (`scripts/tools.sh python`): moto, boto3, checkov.
pub fn venv_bin(root: &Path) -> PathBuf {
    root.join(".tools/venv/bin")
}

/// The virtualenv's Python for a cross-check against botocore (`what` names it in the note), or
/// None when there is no virtualenv (a missing one fails in CI, where `make test` installs it).
pub fn botocore_python(what: &str) -> Option<PathBuf> {
    let python = venv_bin(&root()).join("python");
    if python.exists() {
        return Some(python);
    }
    assert!(!is_ci(), "no {} (CI=true)", python.display());
    eprintln!("note: no project virtualenv; {what} skipped");
    None
}

/// A free TCP port on 127.0.0.1 (the listener is dropped; the port is free a moment later).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Whether this run is CI (`CI=true`): a tool that `make test` installs and that is missing
/// fails the run there instead of being skipped.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The Terraform binary: `TERRAFORM`, else `terraform` on `PATH`. (Tests that need it skip with a
/// note where there is none, and fail under CI, where it is part of the machine.)
pub fn terraform() -> Option<PathBuf> {
    if let Some(t) = std::env::var_os("TERRAFORM") {
        return Some(PathBuf::from(t));
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join("terraform")).find(|p| p.is_file())
}
