//! The agent's task definition as `generated/` declares it, evaluated: the Terraform expressions of
//! its `aws_ecs_task_definition` (the `jsonencode([...])` of the container definitions, the
//! task's cpu and memory, its architecture) are evaluated with the variables' defaults, so the
//! tests and the local stack run the container with the limits, user, filesystem and environment
//! that a deploy would register, not with a copy kept by hand.
//!
//! References to other resources (the repository URL, the log group name) have no value before an
//! apply; they evaluate to placeholders `<type.name.attr>`, which callers replace (the image) or
//! ignore (the log configuration: the stand-ins ship stdout themselves).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use serde::Deserialize;
use serde_json::Value;
use tfjson::expr::Reference;

#[derive(Debug, thiserror::Error)]
pub enum TaskDefError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("generated/ declares {0} aws_ecs_task_definition resources; expected exactly one")]
    Count(usize),
    #[error("{what} of the task definition: cannot evaluate `{expr}`: {message}")]
    Eval {
        what: String,
        expr: String,
        message: String,
    },
    #[error("the container definitions are not what the stand-ins understand: {0}")]
    Shape(String),
}

/// The evaluated task definition.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskDefinition {
    pub family: String,
    /// CPU units (1024 = one vCPU).
    pub cpu: u32,
    /// MiB.
    pub memory: u32,
    /// `X86_64` or `ARM64`.
    pub cpu_architecture: String,
    pub container: ContainerDefinition,
    /// Names of the task's volumes (ephemeral storage on Fargate).
    pub volumes: Vec<String>,
}

/// The fields of an ECS container definition that the stack sets. Unknown fields are an error, so
/// a new setting in infra-gen cannot be silently ignored by the container runners.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerDefinition {
    pub name: String,
    pub image: String,
    #[serde(default)]
    pub essential: bool,
    pub memory: Option<u32>,
    pub user: Option<String>,
    #[serde(default)]
    pub readonly_root_filesystem: bool,
    #[serde(default)]
    pub privileged: bool,
    pub stop_timeout: Option<u32>,
    pub linux_parameters: Option<LinuxParameters>,
    #[serde(default)]
    pub mount_points: Vec<MountPoint>,
    #[serde(default)]
    pub environment: Vec<KeyValue>,
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// awslogs: the stand-ins ship the container's stdout to the emulator's CloudWatch Logs.
    pub log_configuration: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinuxParameters {
    #[serde(default)]
    pub init_process_enabled: bool,
    #[serde(default)]
    pub capabilities: Capabilities,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub drop: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MountPoint {
    pub source_volume: String,
    pub container_path: String,
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValue {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Secret {
    pub name: String,
    pub value_from: String,
}

impl TaskDefinition {
    /// Reads `generated/` under `root` and evaluates the agent's task definition with the
    /// variables' defaults.
    pub fn from_generated(root: &Path) -> Result<TaskDefinition, TaskDefError> {
        TaskDefinition::from_dir(&root.join("generated"), &BTreeMap::new())
    }

    /// As [`from_generated`](Self::from_generated), from `dir`, with some variables set.
    pub fn from_dir(
        dir: &Path,
        vars: &BTreeMap<String, Value>,
    ) -> Result<TaskDefinition, TaskDefError> {
        let files = read_dir(dir)?;
        let mut definitions = Vec::new();
        for doc in files.values() {
            if let Some(Value::Object(tds)) = doc.pointer("/resource/aws_ecs_task_definition") {
                definitions.extend(tds.values().cloned());
            }
        }
        let [td] = definitions.as_slice() else {
            return Err(TaskDefError::Count(definitions.len()));
        };
        let eval = Evaluator::new(&files, vars);
        let get = |what: &str| -> Result<Value, TaskDefError> {
            match td.get(what) {
                Some(v) => eval.value(what, v),
                None => Err(TaskDefError::Shape(format!("no {what}"))),
            }
        };
        let number = |what: &str| -> Result<u32, TaskDefError> {
            let v = get(what)?;
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| TaskDefError::Shape(format!("{what} is {v}, not a number")))
        };
        let (family, cpu, memory) = (get("family")?, number("cpu")?, number("memory")?);
        let containers = get("container_definitions")?;
        let containers: Vec<ContainerDefinition> = match &containers {
            Value::String(s) => serde_json::from_str(s),
            other => serde_json::from_value(other.clone()),
        }
        .map_err(|e| TaskDefError::Shape(e.to_string()))?;
        let [container] = <[ContainerDefinition; 1]>::try_from(containers).map_err(|c| {
            TaskDefError::Shape(format!("{} containers; the agent task has one", c.len()))
        })?;
        let platform = td.get("runtime_platform").cloned().unwrap_or(Value::Null);
        let cpu_architecture = match platform.get("cpu_architecture") {
            Some(v) => eval.value("runtime_platform.cpu_architecture", v)?,
            None => Value::String("X86_64".into()),
        };
        let volumes = td
            .get("volume")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter_map(|v| v.get("name")?.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(TaskDefinition {
            family: family.as_str().unwrap_or_default().to_string(),
            cpu,
            memory,
            cpu_architecture: cpu_architecture.as_str().unwrap_or("X86_64").to_string(),
            container,
            volumes,
        })
    }
}

/// Every `*.tf.json` of `dir`, parsed, by file name.
pub fn read_dir(dir: &Path) -> Result<BTreeMap<String, Value>, TaskDefError> {
    let read_err = |e: &dyn std::fmt::Display| TaskDefError::Read {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| read_err(&e))? {
        let path = entry.map_err(|e| read_err(&e))?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !name.ends_with(".tf.json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| read_err(&e))?;
        let doc = serde_json::from_str(&text).map_err(|e| TaskDefError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        files.insert(name, doc);
    }
    Ok(files)
}

/// Evaluates the values of a Terraform configuration (the files of `generated/`) with its
/// variables' defaults (or given values), its locals, and resource attributes either given
/// (`known`, keyed `aws_sqs_queue.jobs.arn` or `data.aws_region.current.region`) or placeholders
/// `<type.name.attr>`.
pub struct Evaluator {
    variables: BTreeMap<String, Value>,
    locals: serde_json::Map<String, Value>,
    known: BTreeMap<String, Value>,
}

impl Evaluator {
    pub fn new(files: &BTreeMap<String, Value>, vars: &BTreeMap<String, Value>) -> Evaluator {
        let mut variables = BTreeMap::new();
        let mut locals = serde_json::Map::new();
        for doc in files.values() {
            if let Some(Value::Object(vs)) = doc.get("variable") {
                for (name, v) in vs {
                    variables.insert(name.clone(), v.get("default").cloned().unwrap_or(Value::Null));
                }
            }
            if let Some(Value::Object(ls)) = doc.get("locals") {
                locals.extend(ls.clone());
            }
        }
        variables.extend(vars.clone());
        Evaluator { variables, locals, known: BTreeMap::new() }
    }

    /// Resource and data source attributes with values (an apply would know them).
    pub fn with_known(mut self, known: BTreeMap<String, Value>) -> Evaluator {
        self.known = known;
        self
    }

    /// A Terraform JSON value: strings are templates (a string that is one interpolation is that
    /// expression's value, as in Terraform), lists and objects are evaluated element by element.
    pub fn value(&self, what: &str, v: &Value) -> Result<Value, TaskDefError> {
        match v {
            Value::String(s) => self.template(what, s, 0),
            Value::Array(items) => items
                .iter()
                .map(|i| self.value(what, i))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Value::Object(m) => m
                .iter()
                .map(|(k, i)| Ok((k.clone(), self.value(what, i)?)))
                .collect::<Result<_, _>>()
                .map(Value::Object),
            other => Ok(other.clone()),
        }
    }

    fn template(&self, what: &str, s: &str, depth: usize) -> Result<Value, TaskDefError> {
        let fail = |message: String| TaskDefError::Eval {
            what: what.to_string(),
            expr: s.to_string(),
            message,
        };
        if depth > 8 {
            return Err(fail("locals refer to each other too deeply".into()));
        }
        let parts = tfjson::expr::interpolations(s).map_err(|e| fail(e.to_string()))?;
        if parts.is_empty() {
            // No interpolation, but `$${` still stands for a literal `${`.
            return Ok(Value::String(s.replace("$${", "${")));
        }
        let mut refs = BTreeSet::new();
        for p in &parts {
            refs.extend(tfjson::expr::references(p));
        }
        let ctx = self.context(what, &refs, depth)?;
        let whole = parts.len() == 1
            && s.starts_with("${")
            && s.ends_with('}')
            && parts[0].len() + 3 == s.len();
        let value = if whole {
            let body =
                hcl::parse(&format!("v = {}\n", parts[0])).map_err(|e| fail(e.to_string()))?;
            let expr = body
                .attributes()
                .next()
                .map(|a| a.expr().clone())
                .ok_or_else(|| fail("empty expression".into()))?;
            expr.evaluate(&ctx).map_err(|e| fail(e.to_string()))?
        } else {
            let template = hcl::Template::from_str(s).map_err(|e| fail(e.to_string()))?;
            hcl::Value::String(template.evaluate(&ctx).map_err(|e| fail(e.to_string()))?)
        };
        serde_json::to_value(&value).map_err(|e| fail(e.to_string()))
    }

    fn context(
        &self,
        what: &str,
        refs: &BTreeSet<Reference>,
        depth: usize,
    ) -> Result<Context<'static>, TaskDefError> {
        let mut ctx = Context::new();
        ctx.declare_func(
            "jsonencode",
            FuncDef::builder().param(ParamType::Any).build(jsonencode),
        );
        ctx.declare_func(
            "upper",
            FuncDef::builder().param(ParamType::String).build(upper),
        );
        ctx.declare_func(
            "join",
            FuncDef::builder()
                .param(ParamType::String)
                .param(ParamType::Any)
                .build(join),
        );
        let to_hcl = |v: &Value| hcl::value::to_value(v).unwrap_or(hcl::Value::Null);
        ctx.declare_var(
            "var",
            hcl::Value::Object(
                self.variables
                    .iter()
                    .map(|(k, v)| (k.clone(), to_hcl(v)))
                    .collect(),
            ),
        );
        let mut roots: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
        let mut data: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
        let mut locals = serde_json::Map::new();
        for r in refs {
            match r {
                Reference::Resource { ty, name, attr } => placeholder(
                    roots.entry(ty.clone()).or_default(),
                    ty,
                    name,
                    attr.as_deref(),
                    "",
                    &self.known,
                ),
                Reference::Data { ty, name, attr } => placeholder(
                    data.entry(ty.clone()).or_default(),
                    ty,
                    name,
                    attr.as_deref(),
                    "data.",
                    &self.known,
                ),
                Reference::Local(name) => {
                    let Some(Value::String(expr)) = self.locals.get(name) else {
                        return Err(TaskDefError::Eval {
                            what: what.into(),
                            expr: format!("local.{name}"),
                            message: "no such local".into(),
                        });
                    };
                    locals.insert(
                        name.clone(),
                        self.template(&format!("local.{name}"), expr, depth + 1)?,
                    );
                }
                Reference::Var(_) => {}
            }
        }
        for (ty, names) in roots {
            ctx.declare_var(ty, to_hcl(&Value::Object(names)));
        }
        let data: serde_json::Map<String, Value> = data
            .into_iter()
            .map(|(k, v)| (k, Value::Object(v)))
            .collect();
        ctx.declare_var("data", to_hcl(&Value::Object(data)));
        ctx.declare_var("local", to_hcl(&Value::Object(locals)));
        Ok(ctx)
    }
}

/// The attribute's known value, or `<type.name.attr>` where it has none before an apply.
fn placeholder(
    names: &mut serde_json::Map<String, Value>,
    ty: &str,
    name: &str,
    attr: Option<&str>,
    prefix: &str,
    known: &BTreeMap<String, Value>,
) {
    let entry = names
        .entry(name.to_string())
        .or_insert_with(|| Value::Object(Default::default()));
    if let (Some(attr), Value::Object(attrs)) = (attr, entry) {
        let address = format!("{prefix}{ty}.{name}.{attr}");
        let value = known.get(&address).cloned().unwrap_or_else(|| Value::String(format!("<{address}>")));
        attrs.insert(attr.to_string(), value);
    }
}

fn jsonencode(args: FuncArgs) -> Result<hcl::Value, String> {
    serde_json::to_string(&args[0])
        .map(hcl::Value::String)
        .map_err(|e| e.to_string())
}

fn join(args: FuncArgs) -> Result<hcl::Value, String> {
    let sep = args[0].as_str().unwrap_or_default();
    let items = args[1].as_array().ok_or("join takes a list")?;
    let parts: Vec<String> = items.iter().map(|v| v.as_str().map(str::to_owned).ok_or("join takes strings")).collect::<Result<_, _>>()?;
    Ok(hcl::Value::String(parts.join(sep)))
}

fn upper(args: FuncArgs) -> Result<hcl::Value, String> {
    Ok(hcl::Value::String(
        args[0].as_str().unwrap_or_default().to_uppercase(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_task_definition_evaluates_with_the_defaults() {
        let td = TaskDefinition::from_generated(&crate::root()).unwrap();
        assert_eq!(td.cpu, names::defaults::AGENT_CPU);
        assert_eq!(td.memory, names::defaults::AGENT_MEMORY);
        assert_eq!(
            td.family,
            names::agent::task_family(&names::defaults::name_prefix(
                names::defaults::PROJECT_NAME,
                names::defaults::ENVIRONMENT
            ))
        );
        let c = &td.container;
        assert_eq!(c.name, names::agent::CONTAINER_NAME);
        assert_eq!(c.user.as_deref(), Some(names::agent::USER));
        assert!(c.readonly_root_filesystem && !c.privileged && c.essential);
        assert!(c.image.starts_with("<aws_ecr_repository."), "{}", c.image);
        assert_eq!(
            c.mount_points[0].container_path,
            names::agent::SCRATCH_MOUNT
        );
        assert!(td.volumes.contains(&c.mount_points[0].source_volume));
        let env: BTreeMap<_, _> = c
            .environment
            .iter()
            .map(|kv| (kv.name.as_str(), kv.value.as_str()))
            .collect();
        assert_eq!(
            env.get(names::env::agent::SCRATCH_DIR),
            Some(&names::agent::SCRATCH_MOUNT)
        );
        assert!(env.contains_key(names::env::agent::SEARCH_URL_TEMPLATE));
    }

    #[test]
    fn variables_override_the_defaults() {
        let vars = BTreeMap::from([
            ("agent_memory".to_string(), Value::from(4096)),
            ("agent_cpu".to_string(), Value::from(2048)),
        ]);
        let td = TaskDefinition::from_dir(&crate::root().join("generated"), &vars).unwrap();
        assert_eq!(
            (td.cpu, td.memory, td.container.memory),
            (2048, 4096, Some(4096))
        );
    }

    #[test]
    fn bad_input_is_named() {
        let dir = std::env::temp_dir().join(format!("taskdef-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.tf.json"), r#"{"resource": {}}"#).unwrap();
        let e = TaskDefinition::from_dir(&dir, &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("0 aws_ecs_task_definition"), "{e}");
        std::fs::write(
            dir.join("a.tf.json"),
            r#"{"resource": {"aws_ecs_task_definition": {"x": {"family": "f", "cpu": "${nosuch(1)}", "memory": 1, "container_definitions": "[]"}}}}"#,
        )
        .unwrap();
        let e = TaskDefinition::from_dir(&dir, &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("nosuch"), "{e}");
        std::fs::write(
            dir.join("a.tf.json"),
            r#"{"resource": {"aws_ecs_task_definition": {"x": {"family": "f", "cpu": 1, "memory": 1, "container_definitions": "[{\"name\": \"a\", \"image\": \"i\", \"healthCheck\": {}}]"}}}}"#,
        )
        .unwrap();
        let e = TaskDefinition::from_dir(&dir, &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("healthCheck"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
