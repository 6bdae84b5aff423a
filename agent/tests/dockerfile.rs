//! The Dockerfile cannot import the shared names, so this holds it to them, and to the version
//! scheme: no exact pin of a package Debian's security archive replaces, chromedriver taken at the
//! installed browser's version and checked against it, the installed versions recorded.

use names::env::agent as var;

const DOCKERFILE: &str = include_str!("../Dockerfile");

#[test]
fn dockerfile_uses_the_shared_names() {
    let user = names::agent::USER;
    assert!(DOCKERFILE.contains(&format!("USER {user}")), "USER {user}");
    let (uid, gid) = user.split_once(':').unwrap();
    assert!(DOCKERFILE.contains(&format!("--uid {uid} --gid {gid}")));
    let scratch = names::agent::SCRATCH_MOUNT;
    assert!(DOCKERFILE.contains(&format!("VOLUME [\"{scratch}\"]")));
    for (name, value) in [
        (var::SCRATCH_DIR, scratch),
        (
            var::CHROMIUM_PATH,
            "/usr/lib/chromium/chromium-headless-shell",
        ),
        (var::CHROMEDRIVER_PATH, "/usr/bin/chromedriver"),
    ] {
        assert!(
            DOCKERFILE.contains(&format!("{name}={value}")),
            "ENV {name}={value}"
        );
    }
}

#[test]
fn no_package_is_pinned_to_a_version_the_archive_drops() {
    // `pkg=1.2.3` in an install line breaks the build once the security archive moves on; the
    // only `=` allowed is the optional CHROMIUM_VERSION build argument's.
    let install: Vec<&str> = DOCKERFILE
        .lines()
        .skip_while(|l| !l.contains("apt-get install"))
        .take_while(|l| !l.contains("version=$("))
        .collect();
    assert!(!install.is_empty(), "an apt-get install step");
    for line in install {
        for word in line.split_whitespace() {
            let word = word.trim_matches('"');
            if let Some((_, version)) = word.split_once('=') {
                assert!(version.starts_with("$CHROMIUM_VERSION"), "pinned: {word}");
            }
        }
    }
    assert!(
        DOCKERFILE.contains("ARG CHROMIUM_VERSION=\n"),
        "the pin is empty by default"
    );
}

#[test]
fn chromedriver_comes_at_the_browsers_version_and_is_checked() {
    assert!(DOCKERFILE.contains("version=$(dpkg-query -W -f='${Version}' chromium-headless-shell)"));
    assert!(DOCKERFILE.contains("apt-get download \"chromium-driver=$version\""));
    assert!(
        DOCKERFILE.contains("[ \"$shell\" = \"$driver\" ]"),
        "the versions are compared"
    );
    assert!(
        DOCKERFILE.contains("/usr/share/agent/packages.tsv"),
        "installed versions recorded"
    );
    // The binary comes from the workspace's build, not from a Rust image.
    assert!(!DOCKERFILE.contains("cargo build"));
    assert!(DOCKERFILE.contains("COPY agent /usr/local/bin/agent"));
}
