//! Checks a set of Terraform JSON documents against the provider schema: every type, argument and nested
//! block exists, required ones are present, blocks have the JSON shape their nesting asks for, and every
//! reference in any template resolves to a declaration (in any of the files) and an exported attribute.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use crate::expr::{ExprError, Reference};
use crate::schema::{Body, Nesting, Schema, TypeKind};

/// What is wrong at a place in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A resource or data source type the provider does not have.
    UnknownType(TypeKind),
    /// A key that is neither an argument, a nested block nor a meta-argument.
    UnknownArgument,
    /// A required argument is absent.
    MissingArgument,
    /// A required nested block is absent.
    MissingBlock,
    /// A block that appears at most once is not a JSON object.
    SingleBlockNotObject,
    /// A repeated block is not a JSON array (we always write arrays, even of one item).
    RepeatedBlockNotArray,
    /// A body or block item is not a JSON object.
    NotAnObject,
    /// The same resource, data source, variable or local is declared twice.
    Duplicate { first_file: String },
    /// A template that cannot be scanned.
    Template(ExprError),
    /// A reference to something no document declares.
    Undeclared(Reference),
    /// A reference to an attribute the referenced type does not export.
    UnknownAttribute(Reference),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::UnknownType(TypeKind::Resource) => f.write_str("unknown resource type"),
            Problem::UnknownType(TypeKind::Data) => f.write_str("unknown data source type"),
            Problem::UnknownArgument => f.write_str("unknown argument"),
            Problem::MissingArgument => f.write_str("missing required argument"),
            Problem::MissingBlock => f.write_str("missing required block"),
            Problem::SingleBlockNotObject => {
                f.write_str("block appears at most once and must be a JSON object")
            }
            Problem::RepeatedBlockNotArray => {
                f.write_str("repeated block must be a JSON array of objects")
            }
            Problem::NotAnObject => f.write_str("must be a JSON object"),
            Problem::Duplicate { first_file } => {
                write!(f, "declared again (first in {first_file})")
            }
            Problem::Template(e) => write!(f, "invalid template: {e}"),
            Problem::Undeclared(r) => write!(f, "reference to undeclared {}", declaration_of(r)),
            Problem::UnknownAttribute(r) => match r {
                Reference::Resource {
                    ty, attr: Some(a), ..
                } => write!(f, "{ty} has no attribute `{a}` ({r})"),
                Reference::Data {
                    ty, attr: Some(a), ..
                } => write!(f, "data.{ty} has no attribute `{a}` ({r})"),
                _ => write!(f, "unknown attribute in {r}"),
            },
        }
    }
}

/// `r` without its attribute: the thing that must be declared.
fn declaration_of(r: &Reference) -> String {
    match r {
        Reference::Resource { ty, name, .. } => format!("resource {ty}.{name}"),
        Reference::Data { ty, name, .. } => format!("data source data.{ty}.{name}"),
        Reference::Var(n) => format!("variable var.{n}"),
        Reference::Local(n) => format!("local local.{n}"),
    }
}

/// One finding: file, dotted path inside it (`resource.aws_x.y.block[0].key`), and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub file: String,
    pub path: String,
    pub problem: Problem,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.path, self.problem)
    }
}

/// How much was checked, so a passing report can be told from one that looked at nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Distinct resource and data source types.
    pub types: usize,
    /// Resource and data source declarations.
    pub declarations: usize,
    /// Argument keys, meta-arguments included, at every level.
    pub arguments: usize,
    /// Nested block items.
    pub blocks: usize,
    /// Reference occurrences resolved.
    pub references: usize,
}

/// The outcome of [`check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub counts: Counts,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for v in &self.violations {
            writeln!(f, "{v}")?;
        }
        let c = &self.counts;
        write!(
            f,
            "{} violation(s); checked {} types, {} declarations, {} arguments, {} blocks, {} references",
            self.violations.len(),
            c.types,
            c.declarations,
            c.arguments,
            c.blocks,
            c.references
        )
    }
}

/// Checks Terraform JSON documents (file name -> parsed JSON) against `schema`. Declarations are shared
/// across all files, as Terraform does for the files of one module.
pub fn check(files: &BTreeMap<String, Value>, schema: &Schema) -> Report {
    let mut c = Checker {
        schema,
        report: Report::default(),
        decls: Declarations::default(),
        types: BTreeSet::new(),
    };
    for (file, doc) in files {
        c.declare(file, doc);
    }
    for (file, doc) in files {
        c.check_types(file, doc);
        c.check_references(file, doc);
    }
    c.report.counts.types = c.types.len();
    c.report
}

#[derive(Default)]
struct Declarations {
    /// (kind, type, name) -> file.
    typed: BTreeMap<(TypeKind, String, String), String>,
    variables: BTreeMap<String, String>,
    locals: BTreeMap<String, String>,
}

struct Checker<'s> {
    schema: &'s Schema,
    report: Report,
    decls: Declarations,
    types: BTreeSet<(TypeKind, String)>,
}

fn objects(v: &Value) -> impl Iterator<Item = (&String, &Value)> {
    v.as_object().into_iter().flatten()
}

impl Checker<'_> {
    fn violation(&mut self, file: &str, path: String, problem: Problem) {
        self.report.violations.push(Violation {
            file: file.to_string(),
            path,
            problem,
        });
    }

    fn declare(&mut self, file: &str, doc: &Value) {
        let mut dups = Vec::new();
        for kind in [TypeKind::Resource, TypeKind::Data] {
            for (ty, named) in objects(&doc[kind.section()]) {
                for (name, _) in objects(named) {
                    let key = (kind, ty.clone(), name.clone());
                    if let Some(first) = self.decls.typed.get(&key) {
                        dups.push((format!("{}.{ty}.{name}", kind.section()), first.clone()));
                    } else {
                        self.decls.typed.insert(key, file.to_string());
                    }
                }
            }
        }
        for (section, map) in [
            ("variable", &mut self.decls.variables),
            ("locals", &mut self.decls.locals),
        ] {
            for (name, _) in objects(&doc[section]) {
                match map.get(name) {
                    Some(first) => dups.push((format!("{section}.{name}"), first.clone())),
                    None => {
                        map.insert(name.clone(), file.to_string());
                    }
                }
            }
        }
        for (path, first_file) in dups {
            self.violation(file, path, Problem::Duplicate { first_file });
        }
    }

    fn check_types(&mut self, file: &str, doc: &Value) {
        for kind in [TypeKind::Resource, TypeKind::Data] {
            for (ty, named) in objects(&doc[kind.section()]) {
                let type_path = format!("{}.{ty}", kind.section());
                let Some(ts) = self.schema.get(kind, ty) else {
                    self.violation(file, type_path, Problem::UnknownType(kind));
                    continue;
                };
                self.types.insert((kind, ty.clone()));
                if !named.is_object() {
                    self.violation(file, type_path.clone(), Problem::NotAnObject);
                }
                for (name, body) in objects(named) {
                    self.report.counts.declarations += 1;
                    self.check_body(file, &format!("{type_path}.{name}"), body, &ts.body, true);
                }
            }
        }
    }

    fn check_body(&mut self, file: &str, path: &str, value: &Value, schema: &Body, top: bool) {
        let Some(body) = value.as_object() else {
            self.violation(file, path.to_string(), Problem::NotAnObject);
            return;
        };
        for (key, v) in body {
            let at = format!("{path}.{key}");
            let Some(block) = schema.blocks.get(key) else {
                self.report.counts.arguments += 1;
                let meta = top && self.schema.is_meta_argument(key);
                if !meta && !schema.arguments.contains_key(key) {
                    self.violation(file, at, Problem::UnknownArgument);
                }
                continue;
            };
            match (block.nesting, v) {
                (Nesting::Single, Value::Object(_)) => {
                    self.report.counts.blocks += 1;
                    self.check_body(file, &at, v, &block.body, false);
                }
                (Nesting::List, Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        self.report.counts.blocks += 1;
                        self.check_body(file, &format!("{at}[{i}]"), item, &block.body, false);
                    }
                }
                (Nesting::Single, _) => self.violation(file, at, Problem::SingleBlockNotObject),
                (Nesting::List, _) => self.violation(file, at, Problem::RepeatedBlockNotArray),
            }
        }
        for (name, arg) in &schema.arguments {
            if arg.required && !body.contains_key(name) {
                self.violation(file, format!("{path}.{name}"), Problem::MissingArgument);
            }
        }
        for (name, block) in &schema.blocks {
            if block.required && !body.contains_key(name) {
                self.violation(file, format!("{path}.{name}"), Problem::MissingBlock);
            }
        }
    }

    /// Resolves every reference of the document ([`crate::walk`] knows which strings are templates).
    fn check_references(&mut self, file: &str, doc: &Value) {
        let mut found = Vec::new();
        crate::walk::document(doc, &mut |path, f| found.push((path.to_string(), f)));
        for (path, f) in found {
            match f {
                crate::walk::Found::Reference(r) => {
                    self.report.counts.references += 1;
                    if let Some(problem) = self.resolve(&r) {
                        self.violation(file, path, problem);
                    }
                }
                crate::walk::Found::BadTemplate(e) => self.violation(file, path, Problem::Template(e)),
            }
        }
    }

    fn resolve(&self, r: &Reference) -> Option<Problem> {
        let (kind, ty, name, attr) = match r {
            Reference::Var(n) => {
                return (!self.decls.variables.contains_key(n))
                    .then(|| Problem::Undeclared(r.clone()))
            }
            Reference::Local(n) => {
                return (!self.decls.locals.contains_key(n)).then(|| Problem::Undeclared(r.clone()))
            }
            Reference::Resource { ty, name, attr } => (TypeKind::Resource, ty, name, attr),
            Reference::Data { ty, name, attr } => (TypeKind::Data, ty, name, attr),
        };
        if !self
            .decls
            .typed
            .contains_key(&(kind, ty.clone(), name.clone()))
        {
            return Some(Problem::Undeclared(r.clone()));
        }
        // An unknown type is already reported where it is declared.
        let ts = self.schema.get(kind, ty)?;
        match attr {
            Some(a) if !ts.attributes.contains(a) => Some(Problem::UnknownAttribute(r.clone())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A tiny schema in the format of provider-schema/aws.json.
    fn schema() -> Schema {
        let opt = |ty: &str| json!({"optional": true, "type": ty});
        let req = |ty: &str| json!({"required": true, "type": ty});
        let computed = |ty: &str| json!({"computed": true, "type": ty});
        let block = |nesting: &str, min: u32, max: u32, attributes: Value, blocks: Value| {
            json!({"nesting": nesting, "min_items": min, "max_items": max, "block": {"attributes": attributes, "blocks": blocks}})
        };
        Schema::from_json(
            &json!({
                "source": {"package": "test", "provider": "hashicorp/aws", "provider_version": "0"},
                "provider": {"attributes": {}, "blocks": {}},
                "resources": {
                    "aws_sqs_queue": {
                        "attributes": {"arn": computed("string"), "id": computed("string"), "name": opt("string"),
                                       "policy": opt("string"), "tags": opt("map(string)"), "url": computed("string")},
                        "blocks": {}
                    },
                    "aws_ecs_task_definition": {
                        "attributes": {"arn": computed("string"), "id": computed("string"),
                                       "family": req("string"), "container_definitions": req("string")},
                        "blocks": {
                            "volume": block("set", 0, 0, json!({"name": req("string")}), json!({
                                "efs_volume_configuration": block("list", 0, 1, json!({"file_system_id": req("string")}), json!({}))
                            })),
                            "runtime_platform": block("list", 0, 1, json!({"cpu_architecture": opt("string")}), json!({}))
                        }
                    },
                    "aws_s3_bucket_versioning": {
                        "attributes": {"bucket": req("string"), "id": computed("string")},
                        "blocks": {"versioning_configuration": block("list", 1, 1, json!({"status": req("string")}), json!({}))}
                    }
                },
                "data_sources": {
                    "aws_iam_policy_document": {
                        "attributes": {"id": computed("string"), "json": computed("string"), "minified_json": computed("string")},
                        "blocks": {"statement": block("list", 0, 0, json!({
                            "actions": opt("list(string)"), "resources": opt("list(string)")
                        }), json!({}))}
                    }
                }
            })
            .to_string(),
        )
        .unwrap()
    }

    /// A valid set of two files that reference each other.
    fn valid() -> BTreeMap<String, Value> {
        let mut files = BTreeMap::new();
        files.insert(
            "data.tf.json".to_string(),
            json!({
                "variable": {"prefix": {"type": "string", "default": "${not.checked}"}},
                "locals": {"tags": {"app": "${var.prefix}"}},
                "resource": {"aws_sqs_queue": {"jobs": {
                    "name": "${var.prefix}-jobs",
                    "tags": "${local.tags}",
                    "policy": "${data.aws_iam_policy_document.jobs.json}",
                    "lifecycle": {"ignore_changes": ["tags"], "prevent_destroy": true}
                }}},
                "data": {"aws_iam_policy_document": {"jobs": {
                    "statement": [{
                        "actions": ["sqs:SendMessage"],
                        "resources": ["${aws_sqs_queue.jobs.arn}", "arn:aws:s3:::b/$${aws:username}/*"]
                    }]
                }}}
            }),
        );
        files.insert(
            "compute.tf.json".to_string(),
            json!({
                "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": "${whatever}"}}},
                "resource": {"aws_ecs_task_definition": {"agent": {
                    "family": "agent",
                    "container_definitions": "${jsonencode([{name = \"agent\", environment = [{name = \"QUEUE\", value = aws_sqs_queue.jobs.url}]}])}",
                    "volume": [{"name": "scratch", "efs_volume_configuration": {"file_system_id": "fs-1"}}],
                    "runtime_platform": {"cpu_architecture": "ARM64"},
                    "depends_on": ["aws_sqs_queue.jobs"],
                    "provider": "aws.other"
                }}},
                "output": {"queue_url": {"value": "${aws_sqs_queue.jobs.url}"}}
            }),
        );
        files
    }

    #[test]
    fn a_valid_set_of_documents_passes() {
        let report = check(&valid(), &schema());
        assert!(report.is_ok(), "{report}");
        assert_eq!(
            report.counts,
            Counts {
                types: 3,
                declarations: 3,
                arguments: 13,
                blocks: 4,
                references: 8
            },
            "{report}"
        );
    }

    /// Each case edits the valid documents with a JSON pointer and expects exactly these violations.
    #[test]
    fn violations_table() {
        let cases: Vec<(&str, &str, &str, Value, Vec<&str>)> = vec![
            (
                "unknown argument in a nested block",
                "compute.tf.json",
                "/resource/aws_ecs_task_definition/agent/volume/0/nam",
                json!("x"),
                vec!["compute.tf.json: resource.aws_ecs_task_definition.agent.volume[0].nam: unknown argument"],
            ),
            (
                "meta-arguments are not allowed in nested blocks",
                "compute.tf.json",
                "/resource/aws_ecs_task_definition/agent/runtime_platform/count",
                json!(1),
                vec!["compute.tf.json: resource.aws_ecs_task_definition.agent.runtime_platform.count: unknown argument"],
            ),
            (
                "missing required argument",
                "compute.tf.json",
                "/resource/aws_ecs_task_definition/agent/family",
                Value::Null,
                vec!["compute.tf.json: resource.aws_ecs_task_definition.agent.family: missing required argument"],
            ),
            (
                "missing required argument in a nested block",
                "compute.tf.json",
                "/resource/aws_ecs_task_definition/agent/volume/0/efs_volume_configuration/file_system_id",
                Value::Null,
                vec!["compute.tf.json: resource.aws_ecs_task_definition.agent.volume[0].efs_volume_configuration.file_system_id: missing required argument"],
            ),
            (
                "missing required block",
                "data.tf.json",
                "/resource/aws_s3_bucket_versioning",
                json!({"b": {"bucket": "x"}}),
                vec!["data.tf.json: resource.aws_s3_bucket_versioning.b.versioning_configuration: missing required block"],
            ),
            (
                "repeated block written as an object",
                "compute.tf.json",
                "/resource/aws_ecs_task_definition/agent/volume",
                json!({"name": "scratch"}),
                vec!["compute.tf.json: resource.aws_ecs_task_definition.agent.volume: repeated block must be a JSON array of objects"],
            ),
            (
                "single block written as an array",
                "compute.tf.json",
                "/resource/aws_ecs_task_definition/agent/runtime_platform",
                json!([{"cpu_architecture": "ARM64"}]),
                vec!["compute.tf.json: resource.aws_ecs_task_definition.agent.runtime_platform: block appears at most once and must be a JSON object"],
            ),
            (
                "block item that is not an object",
                "compute.tf.json",
                "/resource/aws_ecs_task_definition/agent/volume/0",
                json!("scratch"),
                vec!["compute.tf.json: resource.aws_ecs_task_definition.agent.volume[0]: must be a JSON object"],
            ),
            (
                "unknown resource type",
                "compute.tf.json",
                "/resource/aws_sqs_queeu",
                json!({"q": {}}),
                vec!["compute.tf.json: resource.aws_sqs_queeu: unknown resource type"],
            ),
            (
                "unknown data source type (a resource type is not a data source)",
                "compute.tf.json",
                "/data/aws_sqs_queue",
                json!({"q": {}}),
                vec!["compute.tf.json: data.aws_sqs_queue: unknown data source type"],
            ),
            (
                "dangling resource reference",
                "compute.tf.json",
                "/output/queue_url/value",
                json!("${aws_sqs_queue.work.url}"),
                vec!["compute.tf.json: output.queue_url.value: reference to undeclared resource aws_sqs_queue.work"],
            ),
            (
                "dangling data, variable and local references",
                "compute.tf.json",
                "/output/queue_url/value",
                json!("${data.aws_iam_policy_document.other.json}/${var.nope}/${local.nope}"),
                vec![
                    "compute.tf.json: output.queue_url.value: reference to undeclared data source data.aws_iam_policy_document.other",
                    "compute.tf.json: output.queue_url.value: reference to undeclared variable var.nope",
                    "compute.tf.json: output.queue_url.value: reference to undeclared local local.nope",
                ],
            ),
            (
                "dangling reference in depends_on",
                "compute.tf.json",
                "/resource/aws_ecs_task_definition/agent/depends_on/0",
                json!("aws_sqs_queue.gone"),
                vec!["compute.tf.json: resource.aws_ecs_task_definition.agent.depends_on[0]: reference to undeclared resource aws_sqs_queue.gone"],
            ),
            (
                "unknown attribute of a resource",
                "compute.tf.json",
                "/output/queue_url/value",
                json!("${aws_sqs_queue.jobs.arnn}"),
                vec!["compute.tf.json: output.queue_url.value: aws_sqs_queue has no attribute `arnn` (aws_sqs_queue.jobs.arnn)"],
            ),
            (
                "unknown attribute of a data source",
                "data.tf.json",
                "/resource/aws_sqs_queue/jobs/policy",
                json!("${data.aws_iam_policy_document.jobs.policy}"),
                vec!["data.tf.json: resource.aws_sqs_queue.jobs.policy: data.aws_iam_policy_document has no attribute `policy` (data.aws_iam_policy_document.jobs.policy)"],
            ),
            (
                "unknown attribute inside a nested jsonencode",
                "compute.tf.json",
                "/resource/aws_ecs_task_definition/agent/container_definitions",
                json!("${jsonencode([{value = aws_sqs_queue.jobs.uri}])}"),
                vec!["compute.tf.json: resource.aws_ecs_task_definition.agent.container_definitions: aws_sqs_queue has no attribute `uri` (aws_sqs_queue.jobs.uri)"],
            ),
            (
                "unterminated template",
                "compute.tf.json",
                "/output/queue_url/value",
                json!("${aws_sqs_queue.jobs.url"),
                vec!["compute.tf.json: output.queue_url.value: invalid template: template sequence opened at byte 0 is never closed with `}`"],
            ),
            (
                "duplicate declaration across files",
                "compute.tf.json",
                "/locals",
                json!({"tags": {}}),
                vec!["data.tf.json: locals.tags: declared again (first in compute.tf.json)"],
            ),
        ];
        for (what, file, pointer, value, want) in cases {
            let mut files = valid();
            set(files.get_mut(file).unwrap(), pointer, value);
            let report = check(&files, &schema());
            let got: Vec<String> = report.violations.iter().map(ToString::to_string).collect();
            assert_eq!(got, want, "{what}");
        }
    }

    /// Sets (or, with null, removes) the value at a JSON pointer, creating objects on the way.
    fn set(doc: &mut Value, pointer: &str, value: Value) {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let mut at = doc;
        for part in parent.split('/').skip(1) {
            at = match at {
                Value::Array(items) => &mut items[part.parse::<usize>().unwrap()],
                other => other
                    .as_object_mut()
                    .unwrap()
                    .entry(part)
                    .or_insert_with(|| json!({})),
            };
        }
        match (at, value) {
            (Value::Array(items), v) => items[key.parse::<usize>().unwrap()] = v,
            (Value::Object(map), Value::Null) => {
                map.remove(key);
            }
            (Value::Object(map), v) => {
                map.insert(key.to_string(), v);
            }
            (other, _) => panic!("cannot set {pointer} in {other}"),
        }
    }

    #[test]
    fn report_display_ends_with_counts() {
        let report = check(&valid(), &schema());
        assert!(
            report
                .to_string()
                .starts_with("0 violation(s); checked 3 types"),
            "{report}"
        );
    }
}
