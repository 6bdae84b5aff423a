//! The stack: every declared resource, data source, variable, local and output, keyed by the
//! logical name a person chose, and its synthesis into Terraform JSON files.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::iam::{PolicyDocument, Statement};
use super::resources::iam::IamRolePolicy;
use super::block::*;
use super::val::Val;

/// An IAM role's logical name and where its inline policy goes, for grants.
#[derive(Clone, Debug)]
pub struct Grantee {
    pub(crate) logical: String,
    pub(crate) file: File,
    pub(crate) role_id: Val,
    pub(crate) role_name: String,
}

/// (type, logical name)
type Key = (String, String);
type Blocks = Vec<(Key, Block)>;

#[derive(Clone, Debug)]
struct Block {
    file: File,
    body: Value,
}

/// Everything declared so far. Logical names are chosen by people and never hashed.
#[derive(Default)]
pub struct Stack {
    resources: BTreeMap<(String, String), Block>,
    data: BTreeMap<(String, String), Block>,
    variables: BTreeMap<String, Variable>,
    locals: BTreeMap<String, Val>,
    outputs: BTreeMap<String, Output>,
    /// Inline policy statements per role, emitted at synthesis as one policy document each.
    grants: BTreeMap<String, (Grantee, Vec<Statement>)>,
    header: BTreeMap<String, (File, Value)>,
}

fn check_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_string()))
    }
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("model types always serialize to JSON")
}

impl Stack {
    pub fn new() -> Stack {
        Stack::default()
    }

    /// A top-level block other than the declarations (`terraform`, `provider`) and its file.
    pub fn set_header(&mut self, file: File, key: &str, value: Value) {
        self.header.insert(key.to_string(), (file, value));
    }

    pub fn add<T: Resource>(&mut self, file: File, name: &str, resource: T) -> Result<Ref<T>, Error> {
        self.add_with(file, name, resource, Meta::default())
    }

    pub fn add_with<T: Resource>(
        &mut self,
        file: File,
        name: &str,
        resource: T,
        meta: Meta,
    ) -> Result<Ref<T>, Error> {
        check_name(name)?;
        let key = (T::TYPE.to_string(), name.to_string());
        if self.resources.contains_key(&key) {
            return Err(Error::Duplicate(format!("{}.{name}", T::TYPE)));
        }
        let mut body = to_value(&resource);
        refuse_unset(&format!("{}.{name}", T::TYPE), &body)?;
        if let (Value::Object(b), Value::Object(m)) = (&mut body, to_value(&meta)) {
            b.extend(m);
        }
        self.resources.insert(key, Block { file, body });
        Ok(Ref::new(format!("{}.{name}", T::TYPE)))
    }

    pub fn data<T: DataSource>(&mut self, file: File, name: &str, source: T) -> Result<Ref<T>, Error> {
        self.data_with(file, name, source, Meta::default())
    }

    /// A data source with meta-arguments (a postcondition on what it read).
    pub fn data_with<T: DataSource>(&mut self, file: File, name: &str, source: T, meta: Meta) -> Result<Ref<T>, Error> {
        check_name(name)?;
        let key = (T::TYPE.to_string(), name.to_string());
        if self.data.contains_key(&key) {
            return Err(Error::Duplicate(format!("data.{}.{name}", T::TYPE)));
        }
        let mut body = to_value(&source);
        refuse_unset(&format!("data.{}.{name}", T::TYPE), &body)?;
        if let (Value::Object(b), Value::Object(m)) = (&mut body, to_value(&meta)) {
            b.extend(m);
        }
        self.data.insert(key, Block { file, body });
        Ok(Ref::new(format!("data.{}.{name}", T::TYPE)))
    }

    pub fn variable(&mut self, name: &str, mut variable: Variable) -> Result<VarRef, Error> {
        check_name(name)?;
        if self.variables.contains_key(name) {
            return Err(Error::Duplicate(format!("var.{name}")));
        }
        // In Terraform JSON a bare string is a constant: the condition must be a template.
        for v in &mut variable.validation {
            v.condition = format!("${{{}}}", v.condition.replace("{v}", &format!("var.{name}")));
        }
        self.variables.insert(name.to_string(), variable);
        Ok(VarRef(name.to_string()))
    }

    pub fn local(&mut self, name: &str, value: Val) -> Result<LocalRef, Error> {
        check_name(name)?;
        if self.locals.insert(name.to_string(), value).is_some() {
            return Err(Error::Duplicate(format!("local.{name}")));
        }
        Ok(LocalRef(name.to_string()))
    }

    pub fn output(&mut self, name: &str, output: Output) -> Result<(), Error> {
        check_name(name)?;
        if self.outputs.insert(name.to_string(), output).is_some() {
            return Err(Error::Duplicate(format!("output.{name}")));
        }
        Ok(())
    }

    /// Registers a role so grants can be attached to it.
    pub(crate) fn register_grantee(&mut self, grantee: Grantee) -> Result<(), Error> {
        if self.grants.contains_key(&grantee.logical) {
            return Err(Error::Duplicate(format!("role {}", grantee.logical)));
        }
        self.grants.insert(grantee.logical.clone(), (grantee, Vec::new()));
        Ok(())
    }

    /// Adds a statement to a role's inline policy. Statements with the same `sid` merge their
    /// resources, so granting twice never duplicates a statement.
    pub fn grant(&mut self, role: &Grantee, statement: Statement) -> Result<(), Error> {
        let (_, statements) = self
            .grants
            .get_mut(&role.logical)
            .ok_or_else(|| Error::Invalid(format!("role `{}` was not registered", role.logical)))?;
        if let Some(existing) = statements.iter_mut().find(|s| s.sid == statement.sid) {
            if existing.actions != statement.actions || existing.condition != statement.condition {
                return Err(Error::Invalid(format!(
                    "role `{}` has two different statements with sid {:?}",
                    role.logical, statement.sid
                )));
            }
            for r in statement.resources {
                if !existing.resources.contains(&r) {
                    existing.resources.push(r);
                }
            }
        } else {
            statements.push(statement);
        }
        Ok(())
    }

    /// Number of resources declared, including the policies grants will emit.
    pub fn resource_count(&self) -> usize {
        self.resources.len() + self.grants.values().filter(|(_, s)| !s.is_empty()).count()
    }

    /// The role policies implied by the grants: (resources, data sources).
    fn grant_blocks(&self) -> (Blocks, Blocks) {
        let mut resources = Vec::new();
        let mut data = Vec::new();
        for (logical, (grantee, statements)) in &self.grants {
            if statements.is_empty() {
                continue;
            }
            let doc_name = format!("{logical}_policy");
            let doc = PolicyDocument { statement: statements.clone() };
            data.push((
                (PolicyDocument::TYPE.to_string(), doc_name.clone()),
                Block { file: grantee.file, body: to_value(&doc) },
            ));
            let doc_ref: Ref<PolicyDocument> = Ref::new(format!("data.{}.{doc_name}", PolicyDocument::TYPE));
            let policy = IamRolePolicy {
                name: Val::lit(&grantee.role_name),
                role: grantee.role_id.clone(),
                policy: doc_ref.json(),
            };
            resources.push((
                (IamRolePolicy::TYPE.to_string(), logical.clone()),
                Block { file: grantee.file, body: to_value(&policy) },
            ));
        }
        (resources, data)
    }

    /// The Terraform JSON documents, one per file, keyed by file name.
    pub fn documents(&self) -> Result<BTreeMap<String, Value>, Error> {
        let mut resources = self.resources.clone();
        let mut data = self.data.clone();
        let (extra_resources, extra_data) = self.grant_blocks();
        for (k, b) in extra_resources {
            if resources.insert(k.clone(), b).is_some() {
                return Err(Error::Duplicate(format!("{}.{}", k.0, k.1)));
            }
        }
        for (k, b) in extra_data {
            if data.insert(k.clone(), b).is_some() {
                return Err(Error::Duplicate(format!("data.{}.{}", k.0, k.1)));
            }
        }

        let mut files: BTreeMap<File, Map<String, Value>> = BTreeMap::new();
        let mut put = |file: File, section: &str, ty: Option<&str>, name: &str, body: Value| {
            let doc = files.entry(file).or_default();
            let mut slot = doc.entry(section.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if let Some(ty) = ty {
                slot = slot
                    .as_object_mut()
                    .expect("sections are objects")
                    .entry(ty.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            slot.as_object_mut().expect("sections are objects").insert(name.to_string(), body);
        };
        for (name, v) in &self.variables {
            put(File::Main, "variable", None, name, to_value(v));
        }
        for (name, v) in &self.locals {
            put(File::Main, "locals", None, name, to_value(v));
        }
        for ((ty, name), b) in &data {
            put(b.file, "data", Some(ty), name, b.body.clone());
        }
        for ((ty, name), b) in &resources {
            put(b.file, "resource", Some(ty), name, b.body.clone());
        }
        for (name, o) in &self.outputs {
            put(File::Outputs, "output", None, name, to_value(o));
        }

        for (k, (file, v)) in &self.header {
            files.entry(*file).or_default().insert(k.clone(), v.clone());
        }
        let documents: BTreeMap<String, Value> = files
            .into_iter()
            .map(|(f, m)| (f.file_name().to_string(), Value::Object(m)))
            .collect();
        self.check_references(&documents, &resources, &data)?;
        Ok(documents)
    }

    fn check_references(
        &self,
        documents: &BTreeMap<String, Value>,
        resources: &BTreeMap<(String, String), Block>,
        data: &BTreeMap<(String, String), Block>,
    ) -> Result<(), Error> {
        use tfjson::expr::Reference;
        use tfjson::walk::Found;
        let mut unresolved = BTreeSet::new();
        let mut bad = None;
        for (file, doc) in documents {
            tfjson::walk::document(doc, &mut |path, found| match found {
                Found::BadTemplate(e) => {
                    bad.get_or_insert_with(|| Error::Expression { at: format!("{file}: {path}"), message: e.to_string() });
                }
                Found::Reference(r) => {
                    let declared = match &r {
                        Reference::Resource { ty, name, .. } => resources.contains_key(&(ty.clone(), name.clone())),
                        Reference::Data { ty, name, .. } => data.contains_key(&(ty.clone(), name.clone())),
                        Reference::Var(name) => self.variables.contains_key(name),
                        Reference::Local(name) => self.locals.contains_key(name),
                    };
                    if !declared {
                        unresolved.insert(format!("{file}: {path}: {}", describe(&r)));
                    }
                }
            });
        }
        if let Some(e) = bad {
            return Err(e);
        }
        if unresolved.is_empty() {
            Ok(())
        } else {
            Err(Error::Unresolved(unresolved.into_iter().collect()))
        }
    }

    /// Synthesizes every file: pretty JSON with sorted keys and a trailing newline.
    pub fn synth(&self) -> Result<BTreeMap<String, String>, Error> {
        Ok(self
            .documents()?
            .into_iter()
            .map(|(name, doc)| {
                let mut text = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
                text.push('\n');
                (name, text)
            })
            .collect())
    }
}

/// A required argument left at `Val::default()` is an error naming it.
fn refuse_unset(address: &str, body: &Value) -> Result<(), Error> {
    fn find(v: &Value, path: String, out: &mut Vec<String>) {
        match v {
            Value::String(s) if s.contains(super::val::UNSET_MARKER) => out.push(path),
            Value::Array(items) => items.iter().enumerate().for_each(|(i, x)| find(x, format!("{path}[{i}]"), out)),
            Value::Object(m) => m.iter().for_each(|(k, x)| find(x, if path.is_empty() { k.clone() } else { format!("{path}.{k}") }, out)),
            _ => {}
        }
    }
    let mut unset = Vec::new();
    find(body, String::new(), &mut unset);
    if unset.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(format!("{address}: required {} not set", unset.join(", "))))
    }
}

fn describe(r: &tfjson::expr::Reference) -> String {
    use tfjson::expr::Reference;
    match r {
        Reference::Resource { ty, name, .. } => format!("{ty}.{name}"),
        Reference::Data { ty, name, .. } => format!("data.{ty}.{name}"),
        Reference::Var(n) => format!("var.{n}"),
        Reference::Local(n) => format!("local.{n}"),
    }
}

#[cfg(test)]
mod unset_tests {
    use super::*;
    use crate::model::resources::storage::SqsQueue;

    #[test]
    fn a_required_argument_left_at_its_default_is_named() {
        let mut s = Stack::new();
        let e = s.add(File::Storage, "q", SqsQueue { ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("aws_sqs_queue.q: required name not set"), "{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::resources::storage::SqsQueue;

    fn queue(name: Val) -> SqsQueue {
        SqsQueue {
            name,
            visibility_timeout_seconds: None,
            message_retention_seconds: None,
            receive_wait_time_seconds: None,
            kms_master_key_id: None,
            kms_data_key_reuse_period_seconds: None,
            redrive_policy: None,
            tags: None,
        }
    }

    #[test]
    fn duplicate_and_invalid_names_are_errors() {
        let mut s = Stack::new();
        s.add(File::Storage, "jobs", queue("a".into())).unwrap();
        assert_eq!(
            s.add(File::Storage, "jobs", queue("b".into())).unwrap_err(),
            Error::Duplicate("aws_sqs_queue.jobs".into())
        );
        assert_eq!(s.add(File::Storage, "Jobs-1", queue("c".into())).unwrap_err(), Error::InvalidName("Jobs-1".into()));
        s.variable("x", Variable::new("string", "d", "x")).unwrap();
        assert!(matches!(s.variable("x", Variable::new("string", "d", "x")), Err(Error::Duplicate(_))));
    }

    #[test]
    fn references_to_undeclared_names_are_reported_not_panicked() {
        let mut other = Stack::new();
        let foreign = other.add(File::Storage, "elsewhere", queue("x".into())).unwrap();
        let mut s = Stack::new();
        // A reference from another stack, and a variable this one never declared.
        s.add(File::Storage, "jobs", queue(foreign.arn() + "-" + &Val::expr("var.missing"))).unwrap();
        let err = s.synth().unwrap_err();
        let Error::Unresolved(items) = &err else { panic!("expected Unresolved, got {err:?}") };
        assert_eq!(items.len(), 2, "{items:?}");
        assert!(err.to_string().contains("aws_sqs_queue.elsewhere"), "{err}");
        assert!(err.to_string().contains("var.missing"), "{err}");
    }

    #[test]
    fn literals_survive_synthesis_escaped_and_options_are_omitted() {
        let mut s = Stack::new();
        s.add(File::Storage, "jobs", queue("${aws:username}-%{x}".into())).unwrap();
        let text = &s.synth().unwrap()["storage.tf.json"];
        assert!(text.contains(r#""name": "$${aws:username}-%%{x}""#), "{text}");
        assert!(!text.contains("null"), "{text}");
        assert!(!text.contains("visibility_timeout_seconds"), "{text}");
    }

    #[test]
    fn grants_merge_by_sid_and_emit_one_policy_per_role() {
        use crate::model::iam::Statement;
        let mut s = Stack::new();
        let q = s.add(File::Storage, "jobs", queue("q".into())).unwrap();
        let grantee = Grantee { logical: "worker".into(), file: File::Functions, role_id: Val::lit("r"), role_name: "worker".into() };
        s.register_grantee(grantee.clone()).unwrap();
        s.grant(&grantee, Statement::allow("Send", &["sqs:SendMessage"], vec![q.arn()])).unwrap();
        s.grant(&grantee, Statement::allow("Send", &["sqs:SendMessage"], vec![q.arn()])).unwrap();
        let docs = s.documents().unwrap();
        let doc = &docs["functions.tf.json"]["data"]["aws_iam_policy_document"]["worker_policy"];
        assert_eq!(doc["statement"].as_array().unwrap().len(), 1);
        assert_eq!(doc["statement"][0]["resources"].as_array().unwrap().len(), 1);
        assert!(s.grant(&grantee, Statement::allow("Send", &["sqs:DeleteMessage"], vec![q.arn()])).is_err());
        assert!(Statement::allow_unscoped("Bad", &["sqs:SendMessage"]).is_err());
    }
}
