//! The local-mode commands of the README and docs/ (docs/local.md), run as written: each `make local ...` line the README marks
//! (`<!-- readme-test: stack -->`) starts the stack that line starts (the command `make local`
//! would run, printed by `make local-command`), the command the stack prints under `Try:` is run
//! as pasted, and each marked client block (`<!-- readme-test: client -->`) runs in bash in a
//! directory laid out like the checkout, as a second terminal would, keeping the `export`s of the
//! blocks before it. Ctrl-C (SIGINT to the stack's process group, as a terminal sends it) must
//! stop everything. In the loopback-only namespace, where ports 8080 and 8081 are free.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Block {
    kind: String,
    code: String,
}

/// The marked ```sh blocks, in the order they appear.
fn marked_blocks(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(kind) = line.trim().strip_prefix("<!-- readme-test:").and_then(|k| k.strip_suffix("-->")) else { continue };
        let fence = lines.by_ref().find(|l| !l.trim().is_empty()).unwrap_or_default();
        assert_eq!(fence.trim(), "```sh", "a readme-test marker must stand right above a ```sh block");
        let code: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        blocks.push(Block { kind: kind.trim().to_string(), code: code.join("\n") });
    }
    blocks
}

/// A shell line without its trailing comment (`  # ...`).
fn without_comment(line: &str) -> &str {
    line.split_once("  #").map_or(line, |(cmd, _)| cmd).trim()
}

/// Runs `code` in bash in `dir`: whether it succeeded, its stdout, and both outputs for messages.
fn bash(code: &str, dir: &Path) -> (bool, String, String) {
    let out = Command::new("bash").args(["-euo", "pipefail", "-c", code]).current_dir(dir).output().expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = format!("--- stdout\n{stdout}\n--- stderr\n{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), stdout, text)
}

struct Stack {
    child: Child,
    emulator_port: u16,
    try_command: String,
}

/// Starts what `make local ARGS` starts, its stderr (the handlers' log lines) into `log`, and
/// waits for its "Ctrl-C" line.
fn start_stack(root: &Path, make_line: &str, log: &Path) -> Stack {
    let args = make_line.strip_prefix("make local").unwrap_or_else(|| panic!("`{make_line}` is not a `make local` line"));
    let (ok, stdout, out) = bash(&format!("make -s --no-print-directory local-command {args}"), root);
    assert!(ok, "make local-command{args}: {out}");
    let command = stdout.trim().to_string();
    assert!(command.starts_with("target/debug/local-stack"), "{out}");
    assert!(root.join("target/debug/local-stack").exists(), "target/debug/local-stack is missing: cargo build --workspace --bins");
    let mut child = Command::new("bash")
        .args(["-c", &format!("exec {command}")])
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("a log file"))
        .process_group(0)
        .spawn()
        .expect("local-stack starts");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("local-stack| {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut emulator_port, mut try_command) = (0, String::new());
    let started = Instant::now();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(180)).unwrap_or_else(|e| {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("`{command}` printed no ready banner ({e}); its stderr:\n{log}")
        });
        if let Some(url) = line.strip_prefix("Emulator:") {
            emulator_port = url.trim().rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{line}"));
        } else if let Some(cmd) = line.strip_prefix("Try:") {
            try_command = cmd.trim().to_string();
        } else if line.starts_with("Ctrl-C stops everything") {
            break;
        }
    }
    eprintln!("`{make_line}`: ready in {:.1} s", started.elapsed().as_secs_f64());
    assert!(emulator_port > 0 && !try_command.is_empty(), "the banner names the emulator and a command to try");
    Stack { child, emulator_port, try_command }
}

/// Ctrl-C as a terminal sends it; then nothing of the stack may be left.
fn interrupt(mut stack: Stack) {
    let pgid = stack.child.id() as i32;
    let started = Instant::now();
    // SAFETY: signals the stack's own process group, made for it above.
    unsafe { libc::kill(-pgid, libc::SIGINT) };
    let status = loop {
        if let Some(status) = stack.child.try_wait().expect("wait") {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "local-stack did not stop after Ctrl-C");
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!("Ctrl-C to exit: {:.2} s ({status})", started.elapsed().as_secs_f64());
    assert!(status.success(), "local-stack exits 0 on Ctrl-C: {status}");
    // SAFETY: signal 0 only asks whether any process of the group is left.
    let left = unsafe { libc::kill(-pgid, 0) } == 0;
    assert!(!left, "processes of the stack's group outlived it");
    assert!(std::net::TcpStream::connect(("127.0.0.1", stack.emulator_port)).is_err(), "the emulator still listens");
    for port in [8080, 8081] {
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} still listens");
    }
}

/// A directory that looks like the checkout to the README's commands (`$PWD/target/debug`,
/// `examples/`), so their outputs (`out/`) land outside the real one.
fn checkout_like(root: &Path) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in ["target", "examples"] {
        std::os::unix::fs::symlink(root.join(entry), dir.join(entry)).unwrap();
    }
    dir
}

#[test]
fn the_readmes_local_mode_commands_work_as_written() {
    testenv::netns::enter_or_panic();
    let root = testenv::root();
    // The README and every file of docs/, in that order (the local-mode blocks are docs/local.md's).
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs")).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "md")).collect();
    docs.sort();
    files.extend(docs);
    let blocks: Vec<Block> = files.iter().flat_map(|f| marked_blocks(&std::fs::read_to_string(f).unwrap())).collect();
    let count = |kind: &str| blocks.iter().filter(|b| b.kind == kind).count();
    assert!(count("stack") >= 2 && count("client") >= 2, "the README marks its local-mode blocks: {blocks:?}");
    let work = checkout_like(&root);

    let mut stack: Option<Stack> = None;
    let mut stacks = 0;
    let mut exports: Vec<String> = Vec::new();
    for block in &blocks {
        match block.kind.as_str() {
            "stack" => {
                let line = block.code.lines().map(without_comment).find(|l| l.starts_with("make local")).expect("a `make local` line");
                if let Some(s) = stack.take() {
                    interrupt(s);
                }
                stacks += 1;
                let s = start_stack(&root, line, &work.join(format!("stack-{stacks}.log")));
                // The command the banner prints completes a job as pasted.
                let (ok, _, out) = bash(&s.try_command, &work);
                assert!(ok, "`{}` (printed by the stack): {out}", s.try_command);
                assert!(work.join("out/screenshot.png").exists() && work.join("out/result.json").exists(), "{out}");
                stack = Some(s);
            }
            "client" => {
                assert!(stack.is_some(), "a client block before any `make local` block");
                let script = format!("{}\n{}", exports.join("\n"), block.code);
                let (ok, _, out) = bash(&script, &work);
                assert!(ok, "README block failed (the stack's log is in {}):\n{}\n{out}", work.display(), block.code);
                eprintln!("README block ran:\n{}\n{out}", block.code);
                exports.extend(block.code.lines().filter(|l| l.starts_with("export ")).map(str::to_string));
            }
            other => panic!("unknown readme-test marker `{other}`"),
        }
    }
    interrupt(stack.expect("a stack ran"));

    // What the README says the sign-in example gives.
    let result = std::fs::read_to_string(work.join("out/sign-in/result.json")).expect("the sign-in example saved its result");
    let result: serde_json::Value = serde_json::from_str(&result).unwrap();
    assert_eq!(result["extracted"]["invoices"], serde_json::json!(["INV-1", "INV-2"]), "{result}");
    for file in ["account.png", "account.pdf"] {
        assert!(work.join("out/sign-in").join(file).exists(), "{file}");
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// Bash runs the client by its name: no builtin or keyword shadows it (as `jobs` was shadowed).
#[test]
fn bash_runs_the_client_by_its_name() {
    let bin = Path::new(env!("CARGO_BIN_EXE_jobsctl"));
    let name = bin.file_name().unwrap().to_str().unwrap();
    let dir = bin.parent().unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash").args(["-c", &format!("type -t {name}; {name} --version")]).env("PATH", path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("file"), "bash does not run the binary for `{name}`: {stdout}");
    assert!(lines.next().is_some_and(|l| l.starts_with(&format!("{name} "))), "{stdout}");
}
