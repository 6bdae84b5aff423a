//! The agent end to end with real Chromium and chromedriver: fixture pages on 127.0.0.1, uploads
//! through pre-signed PUT URLs into a moto S3 server, every object read back and checked; all of
//! it inside a loopback-only network namespace (support::env).

mod support;

use names::agent::exit;
use names::Output;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use support::{assert_completed, assert_failed, env, run_agent, scenarios, Options, Run};

fn agent() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_agent"))
}

fn run(job: Value) -> Run {
    run_agent(agent(), job, Options::default())
}

#[test]
fn search_results_are_extracted() {
    let run = run(json!({ "query": "rust lang", "options": { "capture_html": true } }));
    let result = assert_completed(&run, 1280, 800);
    assert_eq!(result["kind"], "search");
    assert_eq!(result["query"], "rust lang");
    assert_eq!(result["title"], "rust lang at Fixture Search");
    assert_eq!(result["http_status"], 200);
    assert!(result["final_url"]
        .as_str()
        .unwrap()
        .ends_with("/search?q=rust+lang"));
    let results = result["results"].as_array().unwrap();
    assert_eq!(results.len(), support::SEARCH_RESULTS.len());
    for (i, (title, url)) in support::SEARCH_RESULTS.iter().enumerate() {
        assert_eq!(results[i]["rank"], i + 1);
        assert_eq!(results[i]["title"], *title);
        // The first one was a search-engine redirect link, unwrapped.
        assert_eq!(results[i]["url"], *url);
    }
    assert!(result["timings"]["time_to_first_byte"].as_f64().is_some());
    let html = String::from_utf8(run.object(Output::Html).expect("page.html uploaded")).unwrap();
    assert!(html.contains("result__a"), "{html}");
}

#[test]
fn url_job_screenshot_has_the_requested_viewport() {
    let run = run(
        json!({ "url": env().page("/tall"), "options": { "viewport": { "width": 1024, "height": 700 } } }),
    );
    let result = assert_completed(&run, 1024, 700);
    assert_eq!(result["kind"], "url");
    assert_eq!(result["title"], "Tall page");
    assert!(result.get("results").is_none());
    assert!(run.object(Output::Html).is_none(), "no HTML unless asked");
}

#[test]
fn full_page_screenshot_is_taller_than_the_viewport() {
    scenarios::full_page(|job, opts| run_agent(agent(), job, opts));
}

#[test]
fn slow_page_is_waited_for() {
    let run = run(json!({ "url": env().page("/slow") }));
    let result = assert_completed(&run, 1280, 800);
    assert_eq!(result["title"], "Slow page");
    let ttfb = result["timings"]["time_to_first_byte"].as_f64().unwrap();
    assert!(ttfb >= 1400.0, "time to first byte {ttfb} ms");
}

#[test]
fn page_that_never_loads_hits_the_deadline() {
    scenarios::never_loading(|job, opts| run_agent(agent(), job, opts), Duration::ZERO);
}

#[test]
fn redirect_loop_fails_with_the_browser_error() {
    let run = run(json!({ "url": env().page("/loop") }));
    let error = assert_failed(&run, "navigation_failed", exit::NAVIGATION, "navigate");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("ERR_TOO_MANY_REDIRECTS"),
        "{error}"
    );
}

#[test]
fn javascript_alert_neither_blocks_nor_gets_lost() {
    let run = run(json!({ "url": env().page("/alert") }));
    let result = assert_completed(&run, 1280, 800);
    assert_eq!(result["title"], "Alert done");
    assert_eq!(
        result["dialogs"],
        json!([{ "type": "alert", "message": "hello from the fixture" }])
    );
}

#[test]
fn redirects_to_link_local_and_private_addresses_are_refused() {
    // Nothing is ever sent to these addresses: the guard refuses before it connects (and the
    // tests run in a loopback-only namespace).
    for (to, needle) in [
        (
            "http://169.254.170.2/v2/credentials",
            "169.254.170.2 is link-local",
        ),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is link-local",
        ),
        ("http://10.0.0.1/", "10.0.0.1 is private"),
        ("https://192.168.1.1/", "192.168.1.1 is private"),
        ("http://[fd00:ec2::254]/", "unique local"),
    ] {
        scenarios::redirect_refused(|job, opts| run_agent(agent(), job, opts), to, needle);
    }
}

#[test]
fn private_subresource_is_refused_and_listed_while_the_page_completes() {
    let run = run(json!({ "url": env().page("/subresource") }));
    let result = assert_completed(&run, 1280, 800);
    let blocked = result["blocked_requests"].as_array().unwrap();
    assert!(
        blocked.iter().any(|b| b["target"] == "169.254.169.254:80"
            && b["reason"].as_str().unwrap().contains("link-local")),
        "{blocked:?}"
    );
}

#[test]
fn loopback_is_refused_without_the_allow_list_even_by_name() {
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("http://{host}:{}/page", env().fixture.port());
        let run = run_agent(
            agent(),
            json!({ "url": url }),
            Options {
                egress_allow: None,
                ..Options::default()
            },
        );
        let error = assert_failed(&run, "egress_refused", exit::EGRESS_REFUSED, "navigate");
        assert!(
            error["message"].as_str().unwrap().contains("is loopback"),
            "{error}"
        );
    }
}

#[test]
fn not_found_page_is_captured_with_its_status() {
    let run = run(json!({ "url": env().page("/missing") }));
    let result = assert_completed(&run, 1280, 800);
    assert_eq!(result["http_status"], 404);
    assert_eq!(result["title"], "Not found");
}

#[test]
fn connection_refused_is_reported() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let run = run(json!({ "url": format!("http://{closed}/") }));
    let error = assert_failed(&run, "page_unreachable", exit::NAVIGATION, "navigate");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains(&closed.to_string()),
        "{error}"
    );
}

#[test]
fn invalid_job_gets_error_json_without_a_browser() {
    let run = run(json!({ "query": "a", "url": "https://example.org/" }));
    let error = assert_failed(&run, "invalid_job", exit::INVALID_JOB, "config");
    assert!(error["message"].as_str().unwrap().contains("not both"));
}

#[test]
fn sigterm_uploads_what_there_is_and_exits_promptly() {
    scenarios::stopped(
        |job, opts| run_agent(agent(), job, opts),
        Duration::from_secs(4),
        Duration::from_secs(4),
    );
}
