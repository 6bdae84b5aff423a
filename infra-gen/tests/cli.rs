//! The command line: writing, `--check` on fresh and stale output, and errors as messages.

use std::process::Command;

fn infra_gen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_infra-gen"))
}

#[test]
fn writes_then_checks_then_names_stale_files() {
    let dir = std::env::temp_dir().join(format!("infra-gen-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = infra_gen().arg("--out").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.join("main.tf.json").exists());

    let check = infra_gen().arg("--out").arg(&dir).arg("--check").output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));

    // A hand edit, a deleted file and a leftover file are each named.
    std::fs::write(dir.join("network.tf.json"), "{}\n").unwrap();
    std::fs::remove_file(dir.join("api.tf.json")).unwrap();
    std::fs::write(dir.join("old.tf.json"), "{}\n").unwrap();
    std::fs::write(dir.join("terraform.tfstate"), "{}").unwrap();
    let check = infra_gen().arg("--out").arg(&dir).arg("--check").output().unwrap();
    assert_eq!(check.status.code(), Some(1));
    let err = String::from_utf8_lossy(&check.stderr);
    for expected in ["network.tf.json: differs", "api.tf.json: missing", "old.tf.json: no longer generated"] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(!err.contains("tfstate"), "files infra-gen does not own are not its business:\n{err}");

    // Regenerating repairs it and leaves Terraform's own files alone.
    assert!(infra_gen().arg("--out").arg(&dir).output().unwrap().status.success());
    assert!(infra_gen().arg("--out").arg(&dir).arg("--check").output().unwrap().status.success());
    assert!(dir.join("terraform.tfstate").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unwritable_output_is_a_message_not_a_panic() {
    let file = std::env::temp_dir().join(format!("infra-gen-not-a-dir-{}", std::process::id()));
    std::fs::write(&file, "x").unwrap();
    let out = infra_gen().arg("--out").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("infra-gen: cannot write"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    std::fs::remove_file(&file).unwrap();
}
