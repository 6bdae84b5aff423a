//! The one walk over the references of Terraform JSON, used by synthesis (every reference must be
//! declared), the conformance check (and exported by its type) and the review's analysis (what
//! refers to what). It knows which strings are templates: the `terraform` block, variable types
//! and defaults, `provider` meta-arguments and `lifecycle.ignore_changes` are not; `depends_on` and
//! `lifecycle.replace_triggered_by` entries are bare references; every other string is a template.

use serde_json::Value;

use crate::expr::{interpolations, references, ExprError, Reference};

/// What the walk finds at a path: a reference, or a string that is not a valid template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Reference(Reference),
    BadTemplate(ExprError),
}

/// Every reference of a whole document, with its path (`resource.aws_sqs_queue.jobs.policy`).
pub fn document(doc: &Value, f: &mut dyn FnMut(&str, Found)) {
    let Value::Object(sections) = doc else { return };
    for (section, v) in sections {
        match section.as_str() {
            "terraform" => {}
            "variable" => {
                for (name, var) in v.as_object().into_iter().flatten() {
                    for (key, field) in var.as_object().into_iter().flatten() {
                        if !matches!(key.as_str(), "type" | "default") {
                            walk(&format!("variable.{name}.{key}"), field, false, f);
                        }
                    }
                }
            }
            _ => walk(section, v, false, f),
        }
    }
}

/// Every reference inside one value (a resource body, say), with paths below `path`.
pub fn value(path: &str, v: &Value, f: &mut dyn FnMut(&str, Found)) {
    walk(path, v, false, f)
}

/// The references inside a value, in order, template errors left out.
pub fn references_of(v: &Value) -> Vec<Reference> {
    let mut out = Vec::new();
    value("", v, &mut |_, found| {
        if let Found::Reference(r) = found {
            out.push(r);
        }
    });
    out
}

fn walk(path: &str, v: &Value, bare: bool, f: &mut dyn FnMut(&str, Found)) {
    match v {
        Value::String(s) if bare && !s.contains("${") => {
            for r in references(s) {
                f(path, Found::Reference(r));
            }
        }
        Value::String(s) => match interpolations(s) {
            Ok(exprs) => {
                for e in exprs {
                    for r in references(e) {
                        f(path, Found::Reference(r));
                    }
                }
            }
            Err(e) => f(path, Found::BadTemplate(e)),
        },
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(&format!("{path}[{i}]"), item, bare, f);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let at = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match key.as_str() {
                    "depends_on" | "replace_triggered_by" => walk(&at, item, true, f),
                    "provider" | "ignore_changes" if is_meta_position(path) => {}
                    _ => walk(&at, item, false, f),
                }
            }
        }
        _ => {}
    }
}

/// Whether `path` is a declaration body or its `lifecycle` block, where `provider` and
/// `ignore_changes` are meta-arguments rather than provider arguments.
fn is_meta_position(path: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    matches!(parts.as_slice(), ["resource" | "data", _, _] | ["resource" | "data", _, _, "lifecycle"] | [] | [""] | ["lifecycle"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn found(doc: &Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        document(doc, &mut |path, f| {
            out.push((
                path.to_string(),
                match f {
                    Found::Reference(r) => r.to_string(),
                    Found::BadTemplate(e) => format!("bad: {e}"),
                },
            ))
        });
        out
    }

    #[test]
    fn templates_bare_references_and_what_is_not_a_template() {
        let doc = json!({
            "terraform": {"required_version": "${not.a.reference}"},
            "variable": {"v": {"type": "string", "default": "${var.x}", "validation": [{"condition": "${var.v != \"\"}"}]}},
            "resource": {"aws_sqs_queue": {"q": {
                "name": "${local.prefix}-q",
                "policy": "${data.aws_iam_policy_document.p.json}",
                "depends_on": ["aws_iam_role.r"],
                "provider": "aws.other",
                "lifecycle": {"ignore_changes": ["name"], "replace_triggered_by": ["aws_kms_key.k.id"]},
                "broken": "${unclosed"
            }}}
        });
        assert_eq!(
            found(&doc),
            vec![
                ("resource.aws_sqs_queue.q.broken".to_string(), found_bad(&doc)),
                ("resource.aws_sqs_queue.q.depends_on[0]".into(), "aws_iam_role.r".into()),
                ("resource.aws_sqs_queue.q.lifecycle.replace_triggered_by[0]".into(), "aws_kms_key.k.id".into()),
                ("resource.aws_sqs_queue.q.name".into(), "local.prefix".into()),
                ("resource.aws_sqs_queue.q.policy".into(), "data.aws_iam_policy_document.p.json".into()),
                ("variable.v.validation[0].condition".into(), "var.v".into()),
            ]
        );
        let body = &doc["resource"]["aws_sqs_queue"]["q"];
        assert_eq!(references_of(body).len(), 4, "a body's references, depends_on included");
    }

    fn found_bad(doc: &Value) -> String {
        let mut bad = String::new();
        document(doc, &mut |_, f| {
            if let Found::BadTemplate(e) = f {
                bad = format!("bad: {e}");
            }
        });
        bad
    }
}
