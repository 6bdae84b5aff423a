//! Values of Terraform arguments: literals (escaped so Terraform never interprets them) and
//! expressions, which only typed references in this crate can create.

use std::collections::BTreeMap;
use std::ops::Add;

use serde::{Serialize, Serializer};

/// One argument value as it appears in Terraform JSON.
///
/// A `Str` holds the *rendered* template: literal text already escaped (`$${`), references already
/// wrapped in `${...}`. Concatenating two rendered templates is therefore always correct.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Val {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Val>),
    Map(BTreeMap<String, Val>),
    /// A required argument left at its default (`..Default::default()`): synthesis refuses it,
    /// naming the argument, so a model struct's `Default` can never stand in for a value.
    #[default]
    Unset,
}

/// How an unset value serializes, so that [`crate::model::Stack`] can find and name it.
pub(crate) const UNSET_MARKER: &str = "\u{1}unset\u{1}";

impl Val {
    /// A literal string: `${` and `%{` in it are escaped.
    pub fn lit(s: impl AsRef<str>) -> Val {
        Val::Str(tfjson::expr::escape_literal(s.as_ref()))
    }

    /// An expression. Crate-private: outside code gets expressions only from typed references.
    pub(crate) fn expr(e: impl AsRef<str>) -> Val {
        Val::Str(format!("${{{}}}", e.as_ref()))
    }

    /// The expression inside a value that is exactly one interpolation (`${x}` -> `x`), so it can
    /// be nested into a larger expression; a literal becomes a quoted HCL string.
    pub(crate) fn as_expr(&self) -> String {
        match self {
            Val::Str(s) => match tfjson::expr::single_interpolation(s) {
                Some(inner) => inner.to_string(),
                None => serde_json::to_string(s).expect("a string always serializes"),
            },
            Val::Int(i) => i.to_string(),
            Val::Bool(b) => b.to_string(),
            Val::List(items) => {
                format!("[{}]", items.iter().map(Val::as_expr).collect::<Vec<_>>().join(", "))
            }
            Val::Map(m) => format!(
                "{{{}}}",
                m.iter()
                    .map(|(k, v)| format!("{} = {}", serde_json::to_string(k).unwrap(), v.as_expr()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Val::Unset => serde_json::to_string(UNSET_MARKER).expect("a string always serializes"),
        }
    }

    /// The rendered string of a `Str`; `None` for other kinds.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn list<I: IntoIterator<Item = V>, V: Into<Val>>(items: I) -> Val {
        Val::List(items.into_iter().map(Into::into).collect())
    }
}

impl Serialize for Val {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::Str(v) => s.serialize_str(v),
            Val::Int(v) => s.serialize_i64(*v),
            Val::Bool(v) => s.serialize_bool(*v),
            Val::List(v) => v.serialize(s),
            Val::Map(v) => v.serialize(s),
            Val::Unset => s.serialize_str(UNSET_MARKER),
        }
    }
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::lit(s)
    }
}

impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::lit(s)
    }
}

impl From<&String> for Val {
    fn from(s: &String) -> Val {
        Val::lit(s)
    }
}

impl From<&Val> for Val {
    fn from(v: &Val) -> Val {
        v.clone()
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}

impl From<u32> for Val {
    fn from(v: u32) -> Val {
        Val::Int(v.into())
    }
}

impl From<bool> for Val {
    fn from(v: bool) -> Val {
        Val::Bool(v)
    }
}

impl<V: Into<Val>> From<Vec<V>> for Val {
    fn from(v: Vec<V>) -> Val {
        Val::list(v)
    }
}

/// Concatenates rendered templates: `prefix + "-jobs"`.
impl Add<Val> for Val {
    type Output = Val;
    fn add(self, rhs: Val) -> Val {
        match (self, rhs) {
            (Val::Str(a), Val::Str(b)) => Val::Str(a + &b),
            (a, b) => Val::Str(format!("{}{}", render_scalar(&a), render_scalar(&b))),
        }
    }
}

impl Add<&str> for Val {
    type Output = Val;
    fn add(self, rhs: &str) -> Val {
        self + Val::lit(rhs)
    }
}

impl Add<&String> for Val {
    type Output = Val;
    fn add(self, rhs: &String) -> Val {
        self + Val::lit(rhs)
    }
}

impl Add<&Val> for Val {
    type Output = Val;
    fn add(self, rhs: &Val) -> Val {
        self + rhs.clone()
    }
}

fn render_scalar(v: &Val) -> String {
    match v {
        Val::Str(s) => s.clone(),
        Val::Int(i) => i.to_string(),
        Val::Bool(b) => b.to_string(),
        other => format!("${{{}}}", other.as_expr()),
    }
}

/// A map of string values (tags, environment variables) in a stable order.
pub type ValMap = BTreeMap<String, Val>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_escaped_and_expressions_are_not() {
        assert_eq!(Val::lit("${aws:username}"), Val::Str("$${aws:username}".into()));
        assert_eq!(Val::lit("%{if}"), Val::Str("%%{if}".into()));
        assert_eq!(Val::expr("var.x"), Val::Str("${var.x}".into()));
        let joined = Val::expr("local.name_prefix") + "-jobs";
        assert_eq!(joined, Val::Str("${local.name_prefix}-jobs".into()));
    }

    #[test]
    fn nests_as_expression() {
        assert_eq!(Val::expr("var.x").as_expr(), "var.x");
        assert_eq!(Val::lit("a\"b").as_expr(), r#""a\"b""#);
        assert_eq!((Val::expr("var.x") + "-y").as_expr(), r#""${var.x}-y""#);
        assert_eq!(Val::Int(3).as_expr(), "3");
    }
}
