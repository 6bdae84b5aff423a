//! `infra-gen review`: what a change to the synthesized stack *means*, as Markdown for a pull
//! request: resources added, removed and changed (replacements flagged), IAM permissions and trust
//! gained or lost, network rules, and exposure, with every broadening marked.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde_json::Value;

use crate::review::analysis::{self, Index, NetworkRule, Permission};

/// Arguments whose change makes Terraform destroy and recreate the resource (by type; `*` = every
/// change, as for task definitions, which get a new revision).
const FORCES_REPLACEMENT: &[(&str, &[&str])] = &[
    ("aws_s3_bucket", &["bucket"]),
    ("aws_dynamodb_table", &["name", "hash_key", "range_key"]),
    ("aws_sqs_queue", &["name"]),
    ("aws_sns_topic", &["name"]),
    ("aws_lambda_function", &["function_name"]),
    ("aws_iam_role", &["name"]),
    ("aws_cloudwatch_log_group", &["name"]),
    ("aws_ecr_repository", &["name"]),
    ("aws_ecs_cluster", &["name"]),
    ("aws_ecs_task_definition", &["*"]),
    ("aws_security_group", &["name", "vpc_id", "description"]),
    ("aws_vpc", &["cidr_block"]),
    ("aws_subnet", &["cidr_block", "vpc_id", "availability_zone"]),
    ("aws_cloudwatch_event_rule", &["name"]),
    ("aws_ssm_parameter", &["name"]),
    ("aws_kms_alias", &["name"]),
    ("aws_vpc_endpoint", &["service_name", "vpc_endpoint_type", "vpc_id"]),
    ("aws_api_gateway_deployment", &["*"]),
];

/// A resource present on both sides whose arguments differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub address: String,
    pub paths: Vec<String>,
    /// Changed paths that force replacement.
    pub replaced_by: Vec<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Review {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// (from, to): the same body under a new logical name — destroyed and recreated.
    pub renamed: Vec<(String, String)>,
    pub changed: Vec<Changed>,
    pub permissions_gained: Vec<Permission>,
    pub permissions_lost: Vec<Permission>,
    pub trust_gained: Vec<(String, String)>,
    pub trust_lost: Vec<(String, String)>,
    pub network_added: Vec<NetworkRule>,
    pub network_removed: Vec<NetworkRule>,
    pub exposure_added: Vec<(String, String)>,
    pub exposure_removed: Vec<(String, String)>,
}

fn diff_paths(before: &Value, after: &Value, path: &str, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff_paths(x, y, &p, out),
                    _ => out.push(p),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() && a.iter().all(Value::is_object) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_paths(x, y, &format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a != b => out.push(path.to_string()),
        _ => {}
    }
}

fn type_of(address: &str) -> &str {
    address.trim_start_matches("data.").split('.').next().unwrap_or("")
}

fn replacement_paths(address: &str, paths: &[String]) -> Vec<String> {
    let Some((_, args)) = FORCES_REPLACEMENT.iter().find(|(t, _)| *t == type_of(address)) else { return Vec::new() };
    paths
        .iter()
        .filter(|p| args.contains(&"*") || args.iter().any(|a| p.as_str() == *a || p.starts_with(&format!("{a}."))))
        .cloned()
        .collect()
}

fn set_diff<T: Ord + Clone>(before: &BTreeSet<T>, after: &BTreeSet<T>) -> (Vec<T>, Vec<T>) {
    (after.difference(before).cloned().collect(), before.difference(after).cloned().collect())
}

impl Review {
    pub fn new(before: &BTreeMap<String, Value>, after: &BTreeMap<String, Value>) -> Review {
        let (b, a) = (Index::new(before), Index::new(after));
        let mut review = Review::default();

        let mut added: Vec<&String> = a.resources.keys().filter(|k| !b.resources.contains_key(*k)).collect();
        let mut removed: Vec<&String> = b.resources.keys().filter(|k| !a.resources.contains_key(*k)).collect();
        // A removed and an added resource of the same type with the same body: a rename.
        removed.retain(|old| {
            if let Some(pos) = added.iter().position(|new| type_of(new) == type_of(old) && a.resources[*new] == b.resources[*old]) {
                review.renamed.push(((*old).clone(), added.remove(pos).clone()));
                false
            } else {
                true
            }
        });
        review.added = added.into_iter().cloned().collect();
        review.removed = removed.into_iter().cloned().collect();
        for (addr, body) in &a.resources {
            if let Some(old) = b.resources.get(addr) {
                let mut paths = Vec::new();
                diff_paths(old, body, "", &mut paths);
                if !paths.is_empty() {
                    let replaced_by = replacement_paths(addr, &paths);
                    review.changed.push(Changed { address: addr.clone(), paths, replaced_by });
                }
            }
        }
        (review.permissions_gained, review.permissions_lost) = set_diff(&analysis::permissions(&b), &analysis::permissions(&a));
        (review.trust_gained, review.trust_lost) = set_diff(&analysis::trust(&b), &analysis::trust(&a));
        (review.network_added, review.network_removed) = set_diff(&analysis::network(&b), &analysis::network(&a));
        (review.exposure_added, review.exposure_removed) = set_diff(&analysis::exposure(&b), &analysis::exposure(&a));
        review
    }

    /// Whether anything became more permitted or more reachable.
    pub fn broadens(&self) -> bool {
        self.permissions_gained.iter().any(|p| p.effect == "Allow")
            || self.permissions_lost.iter().any(|p| p.effect == "Deny")
            || !self.trust_gained.is_empty()
            || self.network_added.iter().any(NetworkRule::broadens_when_added)
            || !self.exposure_added.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self == &Review::default()
    }

    /// Markdown fit for a pull-request comment.
    pub fn to_markdown(&self, base: &str) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "## Infrastructure review against `{base}`\n");
        if self.is_empty() {
            md.push_str("No change to the synthesized stack.\n");
            return md;
        }
        let _ = writeln!(
            md,
            "{} added, {} removed, {} renamed, {} changed. {}\n",
            self.added.len(),
            self.removed.len(),
            self.renamed.len(),
            self.changed.len(),
            if self.broadens() { "**Broadens permissions or exposure: review the rows marked BROADENS.**" } else { "Nothing broadens." }
        );

        if !(self.added.is_empty() && self.removed.is_empty() && self.renamed.is_empty() && self.changed.is_empty()) {
            md.push_str("### Resources\n\n| | resource | details |\n| --- | --- | --- |\n");
            for a in &self.added {
                let _ = writeln!(md, "| + | `{a}` | added |");
            }
            for r in &self.removed {
                let _ = writeln!(md, "| - | `{r}` | removed (destroyed) |");
            }
            for (from, to) in &self.renamed {
                let _ = writeln!(md, "| -/+ | `{from}` -> `{to}` | renamed logical ID: **replacement** (destroy and recreate) |");
            }
            for c in &self.changed {
                let paths = c.paths.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ");
                if c.replaced_by.is_empty() {
                    let _ = writeln!(md, "| ~ | `{}` | {paths} |", c.address);
                } else {
                    let _ = writeln!(md, "| -/+ | `{}` | {paths}: **replacement** (forced by {}) |", c.address, c.replaced_by.join(", "));
                }
            }
            md.push('\n');
        }

        if !(self.permissions_gained.is_empty() && self.permissions_lost.is_empty()) {
            md.push_str("### IAM permissions\n\n| | principal | via | effect | action | resource | condition |\n| --- | --- | --- | --- | --- | --- | --- |\n");
            let row = |md: &mut String, sign: &str, p: &Permission, broadens: bool| {
                let flag = if broadens { " BROADENS" } else { "" };
                let wide = if p.is_wide() && sign == "+" { " (wide)" } else { "" };
                let _ = writeln!(
                    md,
                    "| {sign}{flag} | `{}` | {} | {} | `{}`{wide} | `{}` | {} |",
                    p.principal,
                    if p.via.is_empty() { String::new() } else { format!("`{}`", p.via) },
                    p.effect,
                    p.action,
                    p.resource,
                    p.condition
                );
            };
            for p in &self.permissions_gained {
                row(&mut md, "+", p, p.effect == "Allow");
            }
            for p in &self.permissions_lost {
                row(&mut md, "-", p, p.effect == "Deny");
            }
            md.push('\n');
        }

        if !(self.trust_gained.is_empty() && self.trust_lost.is_empty()) {
            md.push_str("### Role trust\n\n| | role | may be assumed by |\n| --- | --- | --- |\n");
            for (role, p) in &self.trust_gained {
                let _ = writeln!(md, "| + BROADENS | `{role}` | `{p}` |");
            }
            for (role, p) in &self.trust_lost {
                let _ = writeln!(md, "| - | `{role}` | `{p}` |");
            }
            md.push('\n');
        }

        if !(self.network_added.is_empty() && self.network_removed.is_empty()) {
            md.push_str("### Network\n\n| | kind | subject | direction | protocol | ports | peer |\n| --- | --- | --- | --- | --- | --- | --- |\n");
            let row = |md: &mut String, sign: &str, r: &NetworkRule| {
                let _ = writeln!(
                    md,
                    "| {sign} | {} | `{}` | {} | {} | {} | `{}` |",
                    r.kind, r.subject, r.direction, r.protocol, r.ports, r.peer
                );
            };
            for r in &self.network_added {
                row(&mut md, if r.broadens_when_added() { "+ BROADENS" } else { "+" }, r);
            }
            for r in &self.network_removed {
                row(&mut md, "-", r);
            }
            md.push('\n');
        }

        if !(self.exposure_added.is_empty() && self.exposure_removed.is_empty()) {
            md.push_str("### Exposure\n\n| | resource | what |\n| --- | --- | --- |\n");
            for (r, what) in &self.exposure_added {
                let _ = writeln!(md, "| + BROADENS | `{r}` | {what} |");
            }
            for (r, what) in &self.exposure_removed {
                let _ = writeln!(md, "| - | `{r}` | {what} (fixed) |");
            }
            md.push('\n');
        }
        md
    }
}

/// Reads `generated/*.tf.json` as they are at a git revision.
pub fn documents_at(repo: &std::path::Path, rev: &str, dir: &str) -> Result<BTreeMap<String, Value>, String> {
    let git = |args: &[&str]| -> Result<String, String> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if !out.status.success() {
            return Err(format!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
        }
        String::from_utf8(out.stdout).map_err(|_| format!("git {} printed non-UTF-8", args.join(" ")))
    };
    let listing = git(&["ls-tree", "--name-only", rev, &format!("{dir}/")])?;
    let mut docs = BTreeMap::new();
    for path in listing.lines().filter(|p| p.ends_with(".tf.json")) {
        let text = git(&["show", &format!("{rev}:{path}")])?;
        let value: Value = serde_json::from_str(&text).map_err(|e| format!("{path} at {rev} is not JSON: {e}"))?;
        let name = path.rsplit('/').next().unwrap_or(path).to_string();
        docs.insert(name, value);
    }
    Ok(docs)
}

/// The default base: the merge base with the main branch, or `HEAD`.
pub fn default_base(repo: &std::path::Path) -> String {
    for main in ["origin/main", "main"] {
        let out = std::process::Command::new("git").arg("-C").arg(repo).args(["merge-base", "HEAD", main]).output();
        if let Ok(out) = out {
            if out.status.success() {
                let rev: String = String::from_utf8_lossy(&out.stdout).trim().chars().take(12).collect();
                if !rev.is_empty() {
                    return rev;
                }
            }
        }
    }
    "HEAD".into()
}
