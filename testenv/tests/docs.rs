//! The documentation stays true to the repository (issue 25): every relative link of README.md,
//! ARCHITECTURE.md, docs/ and the crates' READMEs names a file that exists, and an anchor names a
//! heading of its file; every `make <target>` they show is a target of the Makefile. (The local-mode
//! commands themselves are run as written by `cli/tests/readme.rs`.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn documents(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for dir in ["docs", "."] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let p = entry.path();
            if dir == "docs" && p.extension().is_some_and(|e| e == "md") {
                out.push(p);
            } else if dir == "." && p.is_dir() && p.join("Cargo.toml").exists() && p.join("README.md").exists() {
                out.push(p.join("README.md"));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The text outside fenced code blocks, line by line (with line numbers).
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fence = false;
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim_start().starts_with("```") {
            fence = !fence;
            continue;
        }
        if !fence {
            out.push((i + 1, l));
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped, spaces
/// to `-`.
fn slug(heading: &str) -> String {
    heading.trim().to_lowercase().chars().filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' ')).map(|c| if c == ' ' { '-' } else { c }).collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    prose(text).into_iter().filter_map(|(_, l)| l.strip_prefix('#')).map(|h| slug(h.trim_start_matches('#'))).collect()
}

/// `[text](target)` links of a line.
fn links(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(after[..end].to_string());
        rest = &after[end..];
    }
    out
}

fn make_targets(root: &Path) -> BTreeSet<String> {
    let mut files = vec![root.join("Makefile")];
    for dir in ["agent", "functions", "."] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            if entry.path().extension().is_some_and(|e| e == "mk") {
                files.push(entry.path());
            }
        }
    }
    let mut targets = BTreeSet::new();
    for f in files {
        for line in std::fs::read_to_string(&f).unwrap_or_default().lines() {
            if line.starts_with(['\t', '#', ' ']) || line.contains(":=") || line.contains("?=") {
                continue;
            }
            if let Some((names, _)) = line.split_once(':') {
                targets.extend(names.split_whitespace().filter(|n| !n.starts_with('.') && !n.contains('$')).map(str::to_string));
            }
        }
    }
    targets
}

#[test]
fn every_link_and_make_target_the_docs_show_exists() {
    let root = testenv::root();
    let targets = make_targets(&root);
    assert!(targets.contains("test") && targets.contains("local"), "{targets:?}");
    let mut broken = Vec::new();
    for doc in documents(&root) {
        let text = std::fs::read_to_string(&doc).unwrap();
        let shown = doc.strip_prefix(&root).unwrap().display().to_string();
        for (n, line) in prose(&text) {
            for target in links(line) {
                if target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = target.split_once('#').map_or((target.as_str(), None), |(p, a)| (p, Some(a)));
                let file = if path.is_empty() { doc.clone() } else { doc.parent().unwrap().join(path) };
                if !file.exists() {
                    broken.push(format!("{shown}:{n}: `{target}`: no such file"));
                    continue;
                }
                if let Some(a) = anchor {
                    if file.extension().is_some_and(|e| e == "md") && !anchors(&std::fs::read_to_string(&file).unwrap()).contains(a) {
                        broken.push(format!("{shown}:{n}: `{target}`: no such heading"));
                    }
                }
            }
        }
        // `make <target>` wherever it is shown, code blocks included.
        for (i, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("make ") {
                let before = rest[..at].chars().last();
                let word = rest[at + 5..].split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_')).next().unwrap_or("");
                rest = &rest[at + 5..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '-') || word.is_empty() || word.starts_with('-') || word.chars().next().is_some_and(|c| c.is_uppercase()) {
                    continue; // "remake", `make SECRETS=...`: not a target
                }
                if !targets.contains(word) && word.chars().all(|c| c.is_ascii_lowercase() || c == '-') && line.contains(&format!("`make {word}")) | line.trim_start().starts_with("make ") {
                    broken.push(format!("{shown}:{}: `make {word}`: no such Makefile target", i + 1));
                }
            }
        }
    }
    assert!(broken.is_empty(), "the docs show what does not exist:\n{}", broken.join("\n"));
}

#[test]
fn anchors_are_githubs() {
    assert_eq!(slug(" Rotating a tenant's API key"), "rotating-a-tenants-api-key");
    assert_eq!(slug("Exactly once, under faults"), "exactly-once-under-faults");
    assert_eq!(links("see [a](docs/a.md#x) and [b](b.md)"), vec!["docs/a.md#x".to_string(), "b.md".into()]);
}
