//! The built image (`make image`), run the way Fargate runs it: read-only root, the scratch
//! volume, user 10001, no capabilities, no privilege escalation, the memory and CPU limits, the
//! init process and the environment of the task definition in generated/ (testenv::container),
//! with the job as the process function's overrides carry it. Uploads go through pre-signed PUTs
//! into moto and are read back; everything runs in the loopback-only namespace.

mod support;

use names::Output;
use names::job::ErrorCode;
use serde_json::json;
use std::time::Duration;
use support::{assert_completed, run_container, scenarios, Options, Run};

fn run(job: serde_json::Value) -> Run {
    run_container(job, Options::default())
}

fn assert_root_unchanged(run: &Run) {
    let changes = run.root_changes.as_ref().expect("a container run");
    assert!(
        changes.is_empty(),
        "the job changed the root filesystem: {changes:?}\n{}",
        run.stdout
    );
}

#[test]
fn search_job_in_the_image_uploads_through_presigned_puts() {
    let run = run(json!({ "query": "rust lang", "options": { "capture_html": true } }));
    let result = assert_completed(&run, 1280, 800);
    assert_eq!(result["kind"], "search");
    assert_eq!(result["title"], "rust lang at Fixture Search");
    assert_eq!(
        result["results"].as_array().unwrap().len(),
        support::SEARCH_RESULTS.len()
    );
    // The image's browser, not the host's.
    let shell = image_package_version("chromium-headless-shell");
    let upstream = shell.split('-').next().unwrap();
    assert!(
        result["browser_version"]
            .as_str()
            .unwrap_or_default()
            .ends_with(upstream),
        "{} vs {shell}",
        result["browser_version"]
    );
    let html = String::from_utf8(run.object(Output::Html).expect("page.html uploaded")).unwrap();
    assert!(html.contains("result__a"));
    assert_root_unchanged(&run);
}

/// Issue 28: the image keeps only what is loaded, and still renders the fonts pages ask for by
/// name (Liberation, through fontconfig's aliases): three families, three widths.
#[test]
fn the_image_renders_the_fonts_pages_ask_for() {
    let run = run(json!({ "url": support::env().page("/fonts") }));
    let result = assert_completed(&run, 1280, 800);
    assert_eq!(result["title"], "fonts: 3 distinct widths", "{result}");
    assert_root_unchanged(&run);
}

#[test]
fn full_page_screenshot_in_the_image() {
    let run = scenarios::full_page(run_container);
    assert_root_unchanged(&run);
}

#[test]
fn redirect_to_task_metadata_is_refused_inside_the_container() {
    let run = scenarios::redirect_refused(
        run_container,
        "http://169.254.170.2/v2/credentials",
        "169.254.170.2 is link-local",
    );
    assert_root_unchanged(&run);
}

#[test]
fn never_loading_page_ends_before_its_deadline_with_error_json() {
    // The container's own start (podman, the init process) counts too: the whole run ends in time.
    let run = scenarios::never_loading(run_container, Duration::from_secs(3));
    assert_root_unchanged(&run);
}

#[test]
fn stop_task_uploads_what_there_is_and_exits_143_within_the_grace_period() {
    // ECS sends SIGKILL 30 s after SIGTERM; the agent is done long before.
    let run = scenarios::stopped(
        run_container,
        Duration::from_secs(5),
        Duration::from_secs(10),
    );
    assert_root_unchanged(&run);
}

/// The package list the image build wrote (name, version, architecture per line).
fn image_packages() -> String {
    let out = support::podman()
        .command()
        .args([
            "run",
            "--rm",
            "--network",
            "none",
        ])
        .args(testenv::container::ULIMITS)
        .args([
            "--entrypoint",
            "cat",
            &support::image(),
            "/usr/share/agent/packages.tsv",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn image_package_version(pkg: &str) -> String {
    let list = image_packages();
    list.lines()
        .find_map(|l| l.strip_prefix(&format!("{pkg}\t")))
        .and_then(|rest| rest.split('\t').next())
        .unwrap_or_else(|| panic!("{pkg} is not in the package list:\n{list}"))
        .to_string()
}

#[test]
fn the_image_records_its_packages_and_chromedriver_matches_the_browser() {
    let shell = image_package_version("chromium-headless-shell");
    assert_eq!(shell, image_package_version("chromedriver"));
    assert_eq!(shell, image_package_version("chromium-common"));
    // Nothing of the full browser, no compiler.
    let list = image_packages();
    for absent in ["chromium", "chromium-driver", "gcc", "libgtk-3-0"] {
        assert!(
            !list.lines().any(|l| l.starts_with(&format!("{absent}\t"))),
            "{absent} is in the image"
        );
    }
}

#[test]
fn a_name_that_resolves_to_a_private_address_is_refused() {
    // The container's /etc/hosts gives the name a private address; the guard resolves it itself
    // and refuses what it finds, whatever the name looks like.
    let opts = Options { hosts: vec![("intranet.test".into(), "10.0.0.5".into())], ..Options::default() };
    let run = run_container(json!({ "url": "http://intranet.test/" }), opts);
    let error = support::assert_failed(&run, ErrorCode::EgressRefused, names::agent::exit::EGRESS_REFUSED, "navigate");
    assert!(error["message"].as_str().unwrap().contains("10.0.0.5 is private"), "{error}");
    assert_root_unchanged(&run);
}
