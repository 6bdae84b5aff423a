//! Terraform template strings as they appear in Terraform JSON: escaping literal text so Terraform leaves it
//! alone, finding the `${ ... }` interpolations in a template, and the references an expression makes.
//!
//! This is a scanner, not an HCL parser: it knows enough of the expression syntax (nested braces, quoted
//! strings with their own templates, for expressions, function calls) to find interpolations and traversals
//! reliably in the expressions a generator writes. Template directives (`%{ if }`, `%{ for }`) are skipped,
//! not scanned for references.

use std::collections::BTreeSet;
use std::fmt;

/// Escapes a literal string so that Terraform reads it back unchanged: `${` becomes `$${` and `%{` becomes
/// `%%{`. IAM policy variables such as `${aws:username}` survive this way.
pub fn escape_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if (c == '$' || c == '%') && chars.peek() == Some(&'{') {
            out.push(c);
        }
    }
    out
}

/// A template string that cannot be scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprError {
    /// A `${` (or `%{`) with no matching `}`.
    Unterminated {
        /// Byte offset of the `$` or `%` in the template.
        offset: usize,
    },
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExprError::Unterminated { offset } => {
                write!(
                    f,
                    "template sequence opened at byte {offset} is never closed with `}}`"
                )
            }
        }
    }
}

impl std::error::Error for ExprError {}

/// The expression text inside every `${ ... }` of a template string, in order, without the strip markers
/// (`~`) and surrounding whitespace. Escaped `$${` is literal text and yields nothing.
pub fn interpolations(s: &str) -> Result<Vec<&str>, ExprError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1), b.get(i + 2)) {
            (b'$', Some(b'$'), Some(b'{')) | (b'%', Some(b'%'), Some(b'{')) => i += 3,
            (b'$', Some(b'{'), _) => {
                let end = sequence_end(b, i + 2).ok_or(ExprError::Unterminated { offset: i })?;
                out.push(trim_expr(&s[i + 2..end]));
                i = end + 1;
            }
            // A directive's body is an expression too; skip it whole so its braces and strings do not confuse us.
            (b'%', Some(b'{'), _) => {
                let end = sequence_end(b, i + 2).ok_or(ExprError::Unterminated { offset: i })?;
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    Ok(out)
}

/// The expression of a template that is exactly one interpolation (`${x}` -> `x`), nested templates
/// and strings inside it included; `None` for anything else.
pub fn single_interpolation(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    if !s.starts_with("${") {
        return None;
    }
    let end = sequence_end(b, 2)?;
    (end == b.len() - 1).then(|| trim_expr(&s[2..end]))
}

fn trim_expr(e: &str) -> &str {
    let e = e.trim();
    let e = e.strip_prefix('~').unwrap_or(e);
    let e = e.strip_suffix('~').unwrap_or(e);
    e.trim()
}

/// Given the index just after `${` or `%{`, the index of the `}` that closes it.
fn sequence_end(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            b'"' => i = string_end(b, i + 1, &mut |_, _| {})?,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Given the index just after an opening `"` inside an expression, the index of the closing `"`. Calls
/// `nested` with the byte range of each `${ ... }` body in the string.
fn string_end(b: &[u8], mut i: usize, nested: &mut dyn FnMut(usize, usize)) -> Option<usize> {
    while i < b.len() {
        match (b[i], b.get(i + 1), b.get(i + 2)) {
            (b'\\', _, _) => i += 2,
            (b'"', _, _) => return Some(i),
            (b'$', Some(b'$'), Some(b'{')) | (b'%', Some(b'%'), Some(b'{')) => i += 3,
            (b'$' | b'%', Some(b'{'), _) => {
                let end = sequence_end(b, i + 2)?;
                if b[i] == b'$' {
                    nested(i + 2, end);
                }
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// Something an expression refers to by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reference {
    /// `aws_sqs_queue.jobs.arn`; `attr` is the first attribute after the name (indexes skipped).
    Resource {
        ty: String,
        name: String,
        attr: Option<String>,
    },
    /// `data.aws_iam_policy_document.x.json`.
    Data {
        ty: String,
        name: String,
        attr: Option<String>,
    },
    /// `var.name`.
    Var(String),
    /// `local.name`.
    Local(String),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Resource { ty, name, attr } | Reference::Data { ty, name, attr } => {
                if matches!(self, Reference::Data { .. }) {
                    f.write_str("data.")?;
                }
                write!(f, "{ty}.{name}")?;
                if let Some(attr) = attr {
                    write!(f, ".{attr}")?;
                }
                Ok(())
            }
            Reference::Var(name) => write!(f, "var.{name}"),
            Reference::Local(name) => write!(f, "local.{name}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Ident(&'a str),
    Dot,
    Star,
    Number,
    Str,
    LBrack,
    RBrack,
    LBrace,
    LParen,
    DoubleColon,
    Other,
}

/// The references an expression (the text inside `${ ... }`, or a bare `depends_on` entry) makes, in order
/// of appearance, repeats included. `each`, `count`, `path`, `self`, `terraform` and `module` traversals,
/// for-expression variables, function names and the text of string literals are not references; templates
/// nested in string literals are scanned.
pub fn references(expr: &str) -> Vec<Reference> {
    let mut out = Vec::new();
    collect_references(expr, &mut out);
    out
}

fn collect_references(expr: &str, out: &mut Vec<Reference>) {
    let mut nested = Vec::new();
    let toks = tokenize(expr, &mut nested);

    // Names bound by `[for k, v in ...` / `{for v in ...`; they shadow anything of the same name.
    let mut bound = BTreeSet::new();
    for (i, t) in toks.iter().enumerate() {
        let opens = i > 0 && matches!(toks[i - 1], Tok::LBrack | Tok::LBrace);
        if *t == Tok::Ident("for") && opens {
            for t in &toks[i + 1..] {
                match t {
                    Tok::Ident("in") => break,
                    Tok::Ident(v) => {
                        bound.insert(*v);
                    }
                    _ => {}
                }
            }
        }
    }

    for (i, t) in toks.iter().enumerate() {
        let Tok::Ident(root) = *t else { continue };
        let after_dot = i > 0 && matches!(toks[i - 1], Tok::Dot | Tok::DoubleColon);
        let is_call = matches!(toks.get(i + 1), Some(Tok::LParen | Tok::DoubleColon));
        if after_dot || is_call || bound.contains(root) {
            continue;
        }
        let steps = traversal(&toks[i + 1..]);
        if let Some(r) = classify(root, &steps) {
            out.push(r);
        }
    }

    for (start, end) in nested {
        collect_references(trim_expr(&expr[start..end]), out);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step<'a> {
    Attr(&'a str),
    Index,
}

/// The attribute and index steps that follow a root name.
fn traversal<'a>(toks: &[Tok<'a>]) -> Vec<Step<'a>> {
    let mut steps = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match (toks[i], toks.get(i + 1)) {
            (Tok::Dot, Some(Tok::Ident(a))) => steps.push(Step::Attr(a)),
            // Legacy index (`.0`) and splat (`.*`).
            (Tok::Dot, Some(Tok::Number | Tok::Star)) => steps.push(Step::Index),
            (Tok::LBrack, _) => {
                let mut depth = 0usize;
                let mut j = i;
                loop {
                    match toks.get(j) {
                        Some(Tok::LBrack) => depth += 1,
                        Some(Tok::RBrack) => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        Some(_) => {}
                        None => return steps,
                    }
                    j += 1;
                }
                steps.push(Step::Index);
                i = j + 1;
                continue;
            }
            _ => break,
        }
        i += 2;
    }
    steps
}

fn classify(root: &str, steps: &[Step<'_>]) -> Option<Reference> {
    let attr_name = |k: usize| match steps.get(k) {
        Some(Step::Attr(a)) => Some(a.to_string()),
        _ => None,
    };
    let first_attr = |from: usize| {
        steps.iter().skip(from).find_map(|s| match s {
            Step::Attr(a) => Some(a.to_string()),
            Step::Index => None,
        })
    };
    match root {
        "var" => attr_name(0).map(Reference::Var),
        "local" => attr_name(0).map(Reference::Local),
        "data" => Some(Reference::Data {
            ty: attr_name(0)?,
            name: attr_name(1)?,
            attr: first_attr(2),
        }),
        "each" | "count" | "path" | "self" | "terraform" | "module" => None,
        ty if is_resource_type(ty) => Some(Reference::Resource {
            ty: ty.to_string(),
            name: attr_name(0)?,
            attr: first_attr(1),
        }),
        _ => None,
    }
}

/// `[a-z][a-z0-9_]*` with at least one underscore (a provider prefix), e.g. `aws_sqs_queue`.
fn is_resource_type(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.contains(&b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// Splits an expression into the tokens that matter for traversals; records the byte ranges of templates
/// nested in string literals into `nested`.
fn tokenize<'a>(s: &'a str, nested: &mut Vec<(usize, usize)>) -> Vec<Tok<'a>> {
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            c if c.is_ascii_whitespace() => i += 1,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'-')
                {
                    i += 1;
                }
                toks.push(Tok::Ident(&s[start..i]));
            }
            c if c.is_ascii_digit() => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                if matches!(b.get(i), Some(b'e' | b'E')) {
                    i += 1;
                    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'+' || b[i] == b'-') {
                        i += 1;
                    }
                }
                toks.push(Tok::Number);
            }
            b'"' => {
                let end = string_end(b, i + 1, &mut |start, end| nested.push((start, end)))
                    .unwrap_or(b.len());
                toks.push(Tok::Str);
                i = end + 1;
            }
            b'#' => i = line_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'/') => i = line_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = s[i + 2..].find("*/").map_or(b.len(), |k| i + 2 + k + 2);
            }
            b'.' if b.get(i + 1) == Some(&b'.') => {
                while i < b.len() && b[i] == b'.' {
                    i += 1;
                }
                toks.push(Tok::Other);
            }
            b':' if b.get(i + 1) == Some(&b':') => {
                toks.push(Tok::DoubleColon);
                i += 2;
            }
            _ => {
                toks.push(match c {
                    b'.' => Tok::Dot,
                    b'*' => Tok::Star,
                    b'[' => Tok::LBrack,
                    b']' => Tok::RBrack,
                    b'{' => Tok::LBrace,
                    b'(' => Tok::LParen,
                    _ => Tok::Other,
                });
                i += 1;
            }
        }
    }
    toks
}

fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |k| i + k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_literal_table() {
        let cases = [
            ("plain", "plain"),
            ("", ""),
            (
                "arn:aws:s3:::b/${aws:username}/*",
                "arn:aws:s3:::b/$${aws:username}/*",
            ),
            ("%{ if x }", "%%{ if x }"),
            ("$${already}", "$$${already}"),
            ("cost: $5 and 50%", "cost: $5 and 50%"),
            ("{not a template}", "{not a template}"),
            ("ünïcode ${x} é", "ünïcode $${x} é"),
        ];
        for (input, want) in cases {
            assert_eq!(escape_literal(input), want, "escape_literal({input:?})");
        }
    }

    #[test]
    fn escaped_literal_has_no_interpolations() {
        for s in ["${aws:username}", "a ${b} %{ if c }d%{ endif }", "$${x}"] {
            assert_eq!(interpolations(&escape_literal(s)), Ok(vec![]), "{s:?}");
        }
    }

    #[test]
    fn single_interpolations() {
        assert_eq!(single_interpolation("${var.x}"), Some("var.x"));
        assert_eq!(single_interpolation(r#"${join("", ["a${var.b}", c])}"#), Some(r#"join("", ["a${var.b}", c])"#));
        assert_eq!(single_interpolation("${var.x}-${var.y}"), None);
        assert_eq!(single_interpolation("a${var.x}"), None);
        assert_eq!(single_interpolation("${unclosed"), None);
    }

    #[test]
    fn interpolations_table() {
        let cases: &[(&str, Result<&[&str], ExprError>)] = &[
            ("no template", Ok(&[])),
            ("${aws_sqs_queue.jobs.arn}", Ok(&["aws_sqs_queue.jobs.arn"])),
            (
                "arn:${data.aws_partition.current.partition}:s3:::${var.bucket}/*",
                Ok(&["data.aws_partition.current.partition", "var.bucket"]),
            ),
            ("$${aws:username} ${var.x}", Ok(&["var.x"])),
            ("${ var.x }", Ok(&["var.x"])),
            ("${~ var.x ~}", Ok(&["var.x"])),
            (
                "${jsonencode({for k, v in aws_api_gateway_api_key.tenant : v.id => k})}",
                Ok(&["jsonencode({for k, v in aws_api_gateway_api_key.tenant : v.id => k})"]),
            ),
            (
                r#"${replace(var.name, "}", "-")}"#,
                Ok(&[r#"replace(var.name, "}", "-")"#]),
            ),
            (r#"${"${var.a}-${var.b}"}"#, Ok(&[r#""${var.a}-${var.b}""#])),
            (
                r#"${jsonencode({a = "say \"}\""})}"#,
                Ok(&[r#"jsonencode({a = "say \"}\""})"#]),
            ),
            ("%{ if var.on }on${var.x}%{ endif }", Ok(&["var.x"])),
            ("${var.x", Err(ExprError::Unterminated { offset: 0 })),
            (
                "ok ${jsonencode({a = 1}",
                Err(ExprError::Unterminated { offset: 3 }),
            ),
            (
                r#"${"unterminated}"#,
                Err(ExprError::Unterminated { offset: 0 }),
            ),
            ("%{ if x ", Err(ExprError::Unterminated { offset: 0 })),
        ];
        for (input, want) in cases {
            assert_eq!(
                interpolations(input),
                want.clone().map(<[&str]>::to_vec),
                "interpolations({input:?})"
            );
        }
    }

    fn res(ty: &str, name: &str, attr: Option<&str>) -> Reference {
        Reference::Resource {
            ty: ty.into(),
            name: name.into(),
            attr: attr.map(Into::into),
        }
    }
    fn data(ty: &str, name: &str, attr: Option<&str>) -> Reference {
        Reference::Data {
            ty: ty.into(),
            name: name.into(),
            attr: attr.map(Into::into),
        }
    }
    fn var(n: &str) -> Reference {
        Reference::Var(n.into())
    }
    fn local(n: &str) -> Reference {
        Reference::Local(n.into())
    }

    #[test]
    fn references_table() {
        let cases: Vec<(&str, Vec<Reference>)> = vec![
            (
                "aws_sqs_queue.jobs.arn",
                vec![res("aws_sqs_queue", "jobs", Some("arn"))],
            ),
            (
                "aws_sqs_queue.jobs",
                vec![res("aws_sqs_queue", "jobs", None)],
            ),
            (
                r#"aws_api_gateway_api_key.tenant["x"].id"#,
                vec![res("aws_api_gateway_api_key", "tenant", Some("id"))],
            ),
            (
                "aws_api_gateway_api_key.tenant[each.key].value",
                vec![res("aws_api_gateway_api_key", "tenant", Some("value"))],
            ),
            (
                "aws_subnet.private[0].id",
                vec![res("aws_subnet", "private", Some("id"))],
            ),
            (
                "aws_subnet.private[*].id",
                vec![res("aws_subnet", "private", Some("id"))],
            ),
            (
                "aws_subnet.private.*.id",
                vec![res("aws_subnet", "private", Some("id"))],
            ),
            (
                "aws_subnet.private.0.id",
                vec![res("aws_subnet", "private", Some("id"))],
            ),
            (
                "aws_vpc_endpoint.s3.dns_entry[0].dns_name",
                vec![res("aws_vpc_endpoint", "s3", Some("dns_entry"))],
            ),
            (
                "aws_instance.my-server.id",
                vec![res("aws_instance", "my-server", Some("id"))],
            ),
            (
                "random_id.suffix.hex",
                vec![res("random_id", "suffix", Some("hex"))],
            ),
            (
                "aws_subnet.private[var.index].id",
                vec![res("aws_subnet", "private", Some("id")), var("index")],
            ),
            (
                "data.aws_iam_policy_document.x.json",
                vec![data("aws_iam_policy_document", "x", Some("json"))],
            ),
            (
                "data.aws_availability_zones.all.names[0]",
                vec![data("aws_availability_zones", "all", Some("names"))],
            ),
            (
                "data.aws_region.current",
                vec![data("aws_region", "current", None)],
            ),
            ("var.name", vec![var("name")]),
            ("local.tags", vec![local("tags")]),
            (
                "merge(local.tags, {Name = var.name})",
                vec![local("tags"), var("name")],
            ),
            ("provider::aws::arn_parse(var.arn).region", vec![var("arn")]),
            (
                "jsonencode({for k, v in aws_api_gateway_api_key.tenant : v.id => k})",
                vec![res("aws_api_gateway_api_key", "tenant", None)],
            ),
            (
                "[for sub_net in aws_subnet.private : sub_net.id]",
                vec![res("aws_subnet", "private", None)],
            ),
            (
                "{for az_name in var.azs : az_name => az_name.x}",
                vec![var("azs")],
            ),
            (
                "[for s in var.list : s if s != local.skip]",
                vec![var("list"), local("skip")],
            ),
            (r#""aws_sqs_queue.jobs.arn is text""#, vec![]),
            (r#"format("%s-%s", var.a, "var.b")"#, vec![var("a")]),
            (
                r#""arn:${data.aws_partition.current.partition}:s3:::${var.b}""#,
                vec![
                    data("aws_partition", "current", Some("partition")),
                    var("b"),
                ],
            ),
            ("each.value.name", vec![]),
            ("each.key", vec![]),
            ("count.index", vec![]),
            ("path.module", vec![]),
            ("self.arn", vec![]),
            ("terraform.workspace", vec![]),
            ("module.net.vpc_id", vec![]),
            ("var", vec![]),
            ("data.aws_region", vec![]),
            ("aws_sqs_queue", vec![]),
            ("Foo_bar.x", vec![]),
            ("plain.x", vec![]),
            ("jsondecode(var.doc).some_key.other", vec![var("doc")]),
            (
                "var.a ? aws_sqs_queue.a.url : aws_sqs_queue.b.url",
                vec![
                    var("a"),
                    res("aws_sqs_queue", "a", Some("url")),
                    res("aws_sqs_queue", "b", Some("url")),
                ],
            ),
            ("1.5 * var.n", vec![var("n")]),
            ("var.x # aws_sqs_queue.commented.arn", vec![var("x")]),
            ("var.x /* aws_sqs_queue.commented.arn */", vec![var("x")]),
            ("[var.a, var.a]", vec![var("a"), var("a")]),
        ];
        for (input, want) in cases {
            assert_eq!(references(input), want, "references({input:?})");
        }
    }

    #[test]
    fn reference_display_round_trips() {
        for s in [
            "aws_sqs_queue.jobs.arn",
            "aws_sqs_queue.jobs",
            "data.aws_region.current.name",
            "var.x",
            "local.y",
        ] {
            assert_eq!(references(s)[0].to_string(), s);
        }
    }
}
