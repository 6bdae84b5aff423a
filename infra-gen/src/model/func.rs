//! Terraform's built-in functions and operators that the stack uses, as typed values: each takes
//! `Val`s and returns the call as a `Val`, so a construct builds an expression from values (as
//! CDKTF's `Fn` and terrars' `Func` do) and never spells one with `format!`. Arguments nest through
//! [`Val::as_expr`]: a literal becomes a quoted string, an expression its own text.

use std::collections::BTreeMap;

use super::Val;

fn call(name: &str, args: &[&Val]) -> Val {
    Val::expr(format!("{name}({})", args.iter().map(|a| a.as_expr()).collect::<Vec<_>>().join(", ")))
}

fn binary(a: &Val, op: &str, b: &Val) -> Val {
    Val::expr(format!("{} {op} {}", a.as_expr(), b.as_expr()))
}

/// `jsonencode(v)`: a value as JSON text (maps keep their keys sorted).
pub fn jsonencode(v: &Val) -> Val {
    call("jsonencode", &[v])
}

pub fn upper(v: &Val) -> Val {
    call("upper", &[v])
}

pub fn sha1(v: &Val) -> Val {
    call("sha1", &[v])
}

pub fn coalescelist(a: &Val, b: &Val) -> Val {
    call("coalescelist", &[a, b])
}

pub fn toset(v: &Val) -> Val {
    call("toset", &[v])
}

pub fn tostring(v: &Val) -> Val {
    call("tostring", &[v])
}

pub fn length(v: &Val) -> Val {
    call("length", &[v])
}

/// `join(separator, list)`.
pub fn join(separator: &str, list: &Val) -> Val {
    call("join", &[&Val::lit(separator), list])
}

/// `contains(list, value)`.
pub fn contains(list: &Val, value: &Val) -> Val {
    call("contains", &[list, value])
}

/// `lookup(map, key, default)`.
pub fn lookup(map: &Val, key: &Val, default: &Val) -> Val {
    call("lookup", &[map, key, default])
}

/// `range(start, limit, step)`: `limit` itself is not included.
pub fn range(start: i64, limit: i64, step: i64) -> Val {
    call("range", &[&Val::Int(start), &Val::Int(limit), &Val::Int(step)])
}

/// `filebase64sha256(path)`.
pub fn filebase64sha256(path: &Val) -> Val {
    call("filebase64sha256", &[path])
}

/// `a != b`.
pub fn ne(a: &Val, b: &Val) -> Val {
    binary(a, "!=", b)
}

/// `a >= b`.
pub fn ge(a: &Val, b: &Val) -> Val {
    binary(a, ">=", b)
}

/// `!v`.
pub fn not(v: &Val) -> Val {
    Val::expr(format!("!{}", v.as_expr()))
}

/// `condition ? a : b`.
pub fn cond(condition: &Val, a: &Val, b: &Val) -> Val {
    Val::expr(format!("{} ? {} : {}", condition.as_expr(), a.as_expr(), b.as_expr()))
}

/// `self.<attr>`: the resource or data source a condition is attached to.
pub fn self_attr(attr: &str) -> Val {
    Val::expr(format!("self.{attr}"))
}

/// `[for key, value in collection : body]`: a list made from each entry of a map (`body` refers to
/// the entry as `Val::for_var(key)` / `Val::for_var(value)`).
pub fn for_entries(collection: &Val, key: &str, value: &str, body: &Val) -> Val {
    Val::expr(format!("[for {key}, {value} in {} : {}]", collection.as_expr(), body.as_expr()))
}

/// A variable a for-expression binds.
pub fn bound(name: &str) -> Val {
    Val::expr(name)
}

/// `merge(a, b, ...)`: objects or maps, later keys over earlier.
pub fn merge(parts: &[Val]) -> Val {
    call("merge", &parts.iter().collect::<Vec<_>>())
}

/// An object (`{key = value, ...}`) from pairs; keys are written quoted.
pub fn object<'a>(entries: impl IntoIterator<Item = (&'a str, Val)>) -> Val {
    Val::Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<BTreeMap<_, _>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_nest_values_as_expressions() {
        let v = Val::expr("var.x");
        assert_eq!(jsonencode(&object([("a", v.clone()), ("b", Val::lit("$lit"))])).as_str(), Some("${jsonencode({\"a\" = var.x, \"b\" = \"$lit\"})}"));
        assert_eq!(contains(&lookup(&Val::Map(Default::default()), &tostring(&v), &Val::List(vec![])), &v).as_str(), Some("${contains(lookup({}, tostring(var.x), []), var.x)}"));
        assert_eq!(ne(&v, &Val::lit("")).as_str(), Some("${var.x != \"\"}"));
        assert_eq!(ge(&length(&self_attr("names")), &Val::Int(2)).as_str(), Some("${length(self.names) >= 2}"));
        assert_eq!(join(",", &Val::List(vec![v.clone()])).as_str(), Some("${join(\",\", [var.x])}"));
        assert_eq!(range(1, 4, 1).as_str(), Some("${range(1, 4, 1)}"));
    }
}
