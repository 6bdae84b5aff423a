//! The crates' files import one way (issue 25): within `functions`, `agent`, `infra-gen` and
//! `names`, no two files (modules) refer to each other, directly or round a longer circle, so a
//! reader can take the files in an order where each uses only what came before.
//!
//! A file refers to another when its code names a path into it: `crate::a::b`, `super::x`,
//! `self::c`, a `use crate::{a, b::c}` group, or a child module by its bare name (`store::X` in
//! `aws/mod.rs`). Comments (doc links included) are not code. The module tree itself is not a
//! reference: `mod x;` and a parent's re-export of its children (`pub use x::*`) are how a crate
//! lists its files, and each child's own references are counted where they are made. A binary's
//! root (`main.rs`, `src/bin/`) is a crate of its own and is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: [&str; 4] = ["functions", "agent", "infra-gen", "names"];

type Module = Vec<String>;

/// Where a reference was made: (file, line number, the line).
type Site = (PathBuf, usize, String);

fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<Module, PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "bin") {
                    walk(&path, src, out);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Module = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            match module.last().map(String::as_str) {
                Some("main") if module.len() == 1 => continue,
                Some("lib" | "mod") => {
                    module.pop();
                }
                _ => {}
            }
            out.insert(module, path);
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

/// The line without its comment (`//` outside a string literal).
fn code(line: &str) -> &str {
    let mut in_str = false;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '/' if !in_str && prev == '/' => return &line[..i - 1],
            _ => {}
        }
        prev = if prev == '\\' && c == '\\' { ' ' } else { c };
    }
    line
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The identifiers of `rest` separated by `::`, from its start.
fn segments(rest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut s = rest;
    loop {
        let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
        if end == 0 {
            break;
        }
        out.push(s[..end].to_string());
        match s[end..].strip_prefix("::") {
            Some(next) => s = next,
            None => break,
        }
    }
    out
}

/// The paths (as module paths from the crate root) a line of the file at `here` names.
fn paths(line: &str, here: &Module, children: &BTreeSet<String>) -> Vec<Module> {
    let mut out = Vec::new();
    let trimmed = line.trim_start();
    let wiring = ["mod ", "pub mod ", "pub(crate) mod ", "pub use ", "pub(crate) use "].iter().any(|p| trimmed.starts_with(p));
    let bytes: Vec<(usize, char)> = line.char_indices().collect();
    for (k, &(i, c)) in bytes.iter().enumerate() {
        if !is_ident(c) || (k > 0 && (is_ident(bytes[k - 1].1) || bytes[k - 1].1 == ':')) {
            continue;
        }
        let rest = &line[i..];
        let segs = segments(rest);
        let Some(first) = segs.first() else { continue };
        if segs.len() < 2 && !rest[first.len()..].starts_with("::{") {
            continue; // `pub(crate)`, `&self`: a keyword, not a path
        }
        let consumed: usize = segs.iter().map(String::len).sum::<usize>() + 2 * (segs.len() - 1);
        let mut base: Module = match first.as_str() {
            "crate" => Vec::new(),
            "self" => here.clone(),
            "super" => here[..here.len().saturating_sub(1)].to_vec(),
            child if !wiring && children.contains(child) && rest[child.len()..].starts_with("::") => here.clone(),
            _ => continue,
        };
        let mut tail = &segs[..];
        if first != "crate" && first != "self" && first != "super" {
            // a child by its bare name: keep it
        } else {
            tail = &segs[1..];
            while tail.first().is_some_and(|s| s == "super") {
                base.pop();
                tail = &tail[1..];
            }
        }
        let mut path = base;
        path.extend(tail.iter().cloned());
        // `crate::a::{b, c::d}`: each item of the group.
        let after = rest.get(consumed..).unwrap_or("");
        if let Some(group) = after.strip_prefix("::{") {
            let mut depth = 0;
            let mut item = String::new();
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        let mut p = path.clone();
                        p.extend(segments(item.trim()));
                        out.push(p);
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(ch);
            }
            let mut p = path.clone();
            p.extend(segments(item.trim()));
            out.push(p);
        } else {
            out.push(path);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Each module's references to other modules of its crate, with where each was made.
fn references(src: &Path) -> (BTreeMap<Module, PathBuf>, BTreeMap<Module, BTreeMap<Module, Site>>) {
    let mods = modules(src);
    let mut refs: BTreeMap<Module, BTreeMap<Module, Site>> = BTreeMap::new();
    for (here, file) in &mods {
        let children: BTreeSet<String> = mods.keys().filter(|m| m.len() == here.len() + 1 && m.starts_with(here)).map(|m| m.last().unwrap().clone()).collect();
        let text = std::fs::read_to_string(file).unwrap();
        // Inline modules (`mod tests {`), by their name and the indentation of their closing brace.
        let mut inline: Vec<(String, String)> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            if inline.last().is_some_and(|(_, indent)| raw == format!("{indent}}}")) {
                inline.pop();
                continue;
            }
            let line = code(raw);
            let trimmed = line.trim_start();
            if let Some(rest) = ["mod ", "pub mod ", "pub(crate) mod "].iter().find_map(|p| trimmed.strip_prefix(p)) {
                if let Some(inner) = rest.trim_end().strip_suffix(" {") {
                    inline.push((inner.to_string(), line[..line.len() - trimmed.len()].to_string()));
                    continue;
                }
            }
            let mut inner = here.clone();
            inner.extend(inline.iter().map(|(m, _)| m.clone()));
            let none = BTreeSet::new();
            for path in paths(line, &inner, if inline.is_empty() { &children } else { &none }) {
                // The longest prefix that is a file of the crate.
                let target = (0..=path.len()).rev().map(|k| path[..k].to_vec()).find(|p| mods.contains_key(p));
                if let Some(target) = target.filter(|t| t != here) {
                    refs.entry(here.clone()).or_default().entry(target).or_insert_with(|| (file.clone(), n + 1, line.trim().to_string()));
                }
            }
        }
    }
    (mods, refs)
}

/// A circle of references, if there is one: the modules round it, the first repeated at the end.
fn circle(mods: &BTreeMap<Module, PathBuf>, refs: &BTreeMap<Module, BTreeMap<Module, Site>>) -> Option<Vec<Module>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(m: &Module, refs: &BTreeMap<Module, BTreeMap<Module, Site>>, marks: &mut BTreeMap<Module, Mark>, stack: &mut Vec<Module>) -> Option<Vec<Module>> {
        marks.insert(m.clone(), Mark::Open);
        stack.push(m.clone());
        for next in refs.get(m).map(|r| r.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
            match marks.get(&next) {
                Some(Mark::Open) => {
                    let from = stack.iter().position(|s| *s == next).unwrap();
                    let mut c = stack[from..].to_vec();
                    c.push(next);
                    return Some(c);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(c) = visit(&next, refs, marks, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(m.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for m in mods.keys() {
        if !marks.contains_key(m) {
            if let Some(c) = visit(m, refs, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "(crate root)".into()
    } else {
        m.join("::")
    }
}

#[test]
fn no_two_files_of_a_crate_refer_to_each_other() {
    let root = testenv::root();
    let mut circles = Vec::new();
    for krate in CRATES {
        let (mods, refs) = references(&root.join(krate).join("src"));
        assert!(mods.len() > 3, "{krate}: found only {} files", mods.len());
        if let Some(c) = circle(&mods, &refs) {
            let steps: Vec<String> = c
                .windows(2)
                .map(|w| {
                    let (file, n, line) = &refs[&w[0]][&w[1]];
                    format!("  {} -> {}  ({}:{n}: {line})", name(&w[0]), name(&w[1]), file.strip_prefix(&root).unwrap_or(file).display())
                })
                .collect();
            circles.push(format!("{krate}:\n{}", steps.join("\n")));
        }
    }
    assert!(circles.is_empty(), "files that refer to each other (move what both need to a file both use):\n{}", circles.join("\n"));
}

/// The check itself finds what it must: a reference through a `use` group, `super::`, and a
/// child named bare, and a circle round three files.
#[test]
fn the_check_finds_references_and_circles() {
    let here: Module = vec!["a".into()];
    let children: BTreeSet<String> = ["kid".to_string()].into();
    let found = paths("use crate::{b::X, c};", &here, &children);
    assert_eq!(found, vec![vec!["b".to_string(), "X".into()], vec!["c".to_string()]]);
    assert_eq!(paths("let x = super::d::f();", &here, &children), vec![vec!["d".to_string(), "f".into()]]);
    assert_eq!(paths("kid::go()", &here, &children), vec![vec!["a".to_string(), "kid".into(), "go".into()]]);
    assert_eq!(paths("use self::{kid::Y};", &here, &children), vec![vec!["a".to_string(), "kid".into(), "Y".into()]]);
    assert!(paths("pub(crate) fn f(&self) {}", &here, &children).is_empty(), "keywords are not paths");
    assert!(paths("pub use kid::*;", &here, &children).is_empty(), "a re-export of a child is the tree, not a use");
    assert!(paths(code("// see crate::b"), &here, &children).is_empty());
    let m = |s: &str| -> Module { s.split("::").map(str::to_string).collect() };
    let mods: BTreeMap<Module, PathBuf> = ["a", "b", "c"].iter().map(|s| (m(s), PathBuf::from(s))).collect();
    let site = || (PathBuf::new(), 1, String::new());
    let mut refs: BTreeMap<Module, BTreeMap<Module, Site>> = BTreeMap::new();
    refs.entry(m("a")).or_default().insert(m("b"), site());
    refs.entry(m("b")).or_default().insert(m("c"), site());
    assert_eq!(circle(&mods, &refs), None);
    refs.entry(m("c")).or_default().insert(m("a"), site());
    assert_eq!(circle(&mods, &refs), Some(vec![m("a"), m("b"), m("c"), m("a")]));
}
