//! Malformed flags are refused at start, before anything runs, with the form to give instead
//! (not accepted and then failing every job).

use std::process::Command;

#[test]
fn malformed_allow_lists_are_refused_at_start_with_the_right_form() {
    let cases = [
        ("--egress-allow", "http://127.0.0.1:3000", "is a URL; give its origin, `127.0.0.1:3000`"),
        ("--egress-allow", "127.0.0.1:8082,https://fixture.test/", "give its origin, `fixture.test:443`"),
        ("--egress-allow", "127.0.0.1:port", "`127.0.0.1:port` is not a host name, an IP address or a CIDR block"),
        ("--webhook-allow", "http://127.0.0.1:9000/hook", "give its origin, `127.0.0.1:9000`"),
        ("--webhook-allow", "10.0.0.0/33", "`10.0.0.0/33` is not a host name"),
        ("--tenant-secret", "test-tenant:pw", "a tenant secret is TENANT:NAME=VALUE"),
    ];
    for (flag, value, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_local-stack")).args([flag, value]).output().expect("local-stack runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(expected), "{flag} {value}: {stderr}");
        assert!(!stderr.contains("starting the AWS emulator"), "refused before anything started: {stderr}");
    }
}
