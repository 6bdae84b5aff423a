//! Writing synthesized files to the output directory, and comparing them with what is there.
//! Only `*.tf.json` files, `README.md` and `openapi.json` belong to infra-gen: anything else in the
//! directory (Terraform's own `.terraform/`, lock file, state) is left alone.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

/// Files infra-gen owns in the output directory.
fn owned(name: &str) -> bool {
    name.ends_with(".tf.json") || name == crate::app::README || name == crate::app::OPENAPI
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: io::Error },
}

/// Names of files that are missing, different, or left over from an earlier synthesis.
pub fn stale_files(dir: &Path, files: &BTreeMap<String, String>) -> Result<Vec<String>, OutputError> {
    let mut stale = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        match fs::read_to_string(&path) {
            Ok(current) if &current == text => {}
            Ok(_) => stale.push(format!("{name}: differs")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => stale.push(format!("{name}: missing")),
            Err(source) => return Err(OutputError::Read { path: path.display().to_string(), source }),
        }
    }
    for name in existing_owned(dir)? {
        if !files.contains_key(&name) {
            stale.push(format!("{name}: no longer generated"));
        }
    }
    Ok(stale)
}

fn existing_owned(dir: &Path) -> Result<Vec<String>, OutputError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(OutputError::Read { path: dir.display().to_string(), source }),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| OutputError::Read { path: dir.display().to_string(), source })?;
        if let Some(name) = entry.file_name().to_str() {
            if owned(name) {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Writes every file whose content changed and removes owned files no longer generated.
/// Returns how many files changed.
pub fn write(dir: &Path, files: &BTreeMap<String, String>) -> Result<usize, OutputError> {
    fs::create_dir_all(dir).map_err(|source| OutputError::Write { path: dir.display().to_string(), source })?;
    let mut changed = 0;
    for (name, text) in files {
        let path = dir.join(name);
        if fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            continue;
        }
        fs::write(&path, text).map_err(|source| OutputError::Write { path: path.display().to_string(), source })?;
        changed += 1;
    }
    for name in existing_owned(dir)? {
        if !files.contains_key(&name) {
            let path = dir.join(&name);
            fs::remove_file(&path).map_err(|source| OutputError::Write { path: path.display().to_string(), source })?;
            changed += 1;
        }
    }
    Ok(changed)
}
