//! The Dockerfile cannot import the shared names, so this holds it to them.

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
fn chromium_and_chromedriver_versions_match() {
    let versions: Vec<&str> = DOCKERFILE
        .lines()
        .filter_map(|l| l.strip_prefix("ARG CHROMIUM_VERSION="))
        .collect();
    assert!(versions.len() >= 2, "every stage pins the version");
    assert!(versions.iter().all(|v| *v == versions[0]), "{versions:?}");
}
