//! The agent end to end with real Chromium and chromedriver: fixture pages on 127.0.0.1, uploads
//! through pre-signed PUT URLs into a moto S3 server, every object read back and checked; all of
//! it inside a loopback-only network namespace (support::env).

mod support;

use names::agent::exit;
use names::Output;
use names::job::ErrorCode;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use support::{assert_completed, assert_failed, env, fixture_origin, run_agent, scenarios, start_fixture, Options, Run};

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
    let error = assert_failed(&run, ErrorCode::NavigationFailed, exit::NAVIGATION, "navigate");
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
        // The task metadata endpoint spelled every way a URL can spell it: IPv4-mapped and
        // -translated IPv6, decimal, octal and hex IPv4. Chromium reads them all as 169.254.170.2
        // (or the IPv6 form), and the guard refuses what it reads.
        ("http://[::ffff:169.254.170.2]/v2/credentials", "link-local"),
        ("http://[::ffff:a9fe:aa02]/v2/credentials", "link-local"),
        ("http://[::ffff:0:a9fe:aa02]/v2/credentials", "link-local"),
        ("http://2852039170/v2/credentials", "169.254.170.2 is link-local"),
        ("http://0251.0376.0252.02/v2/credentials", "169.254.170.2 is link-local"),
        ("http://0xa9.0xfe.0xaa.0x2/v2/credentials", "169.254.170.2 is link-local"),
        ("http://0xa9feaa02/v2/credentials", "169.254.170.2 is link-local"),
        ("http://[64:ff9b:1::a9fe:aa02]/", "local-use NAT64"),
        // A public address on a port other than 80 and 443.
        ("http://93.184.216.34:8080/", "port 8080 is not allowed"),
    ] {
        scenarios::redirect_refused(|job, opts| run_agent(agent(), job, opts), to, needle);
    }
}

#[test]
fn a_page_reaching_for_private_addresses_gets_nothing_and_completes() {
    // fetch() and a WebSocket from the page itself, and a service worker's own request.
    for (path, targets) in [
        ("/private-requests", vec!["10.0.0.1:80", "169.254.169.254:80"]),
        ("/sw-page", vec!["10.0.0.2:80"]),
    ] {
        let run = run(json!({ "url": env().page(path) }));
        let result = assert_completed(&run, 1280, 800);
        let blocked: Vec<&str> = result["blocked_requests"].as_array().unwrap().iter().filter_map(|b| b["target"].as_str()).collect();
        for t in targets {
            assert!(blocked.contains(&t), "{path}: {t} not refused; blocked: {blocked:?}; title {}", result["title"]);
        }
    }
}

#[test]
fn the_browser_inherits_none_of_the_agents_environment() {
    let task_id = support::unique_task_id();
    let scratch = support::scratch_of(&task_id).display().to_string();
    let canaries = [
        ("AWS_SECRET_ACCESS_KEY", "canary-aws-secret"),
        ("AWS_SESSION_TOKEN", "canary-aws-session"),
        ("ECS_AGENT_URI", "canary-ecs-agent"),
        ("AGENT_OPERATOR_SECRET", "canary-operator-secret"),
    ];
    let opts = Options {
        task_id: Some(task_id),
        sigterm_after: Some(Duration::from_secs(6)),
        extra_env: canaries.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Options::default()
    };
    // While the job hangs on a page, read the environment of every process the job started.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<String, String>::new()));
    let watcher = {
        let (seen, scratch) = (seen.clone(), scratch.clone());
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                    let read = |f: &str| std::fs::read(entry.path().join(f)).map(|b| String::from_utf8_lossy(&b).replace('\0', "\n")).unwrap_or_default();
                    let cmdline = read("cmdline");
                    let is_browser = cmdline.contains("chromium") || cmdline.contains("chromedriver");
                    if is_browser && cmdline.contains(&scratch) {
                        seen.lock().unwrap().insert(cmdline.lines().next().unwrap_or_default().to_string(), read("environ"));
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let run = run_agent(agent(), json!({ "url": env().page("/hang"), "options": { "timeout_seconds": 60 } }), opts);
    watcher.join().unwrap();
    run.assert_code(exit::TERMINATED);
    let seen = seen.lock().unwrap();
    assert!(seen.keys().any(|c| c.contains("chromedriver")) && seen.keys().any(|c| c.contains("chrom")), "browser processes seen: {:?}", seen.keys());
    for (cmd, environ) in seen.iter() {
        for (name, value) in canaries {
            assert!(!environ.contains(value), "{cmd} inherited {name}");
        }
        for leaked in ["AGENT_MANIFEST_URL=", "X-Amz-Signature", "x-amz-signature", "AGENT_EGRESS_ALLOW="] {
            assert!(!environ.contains(leaked), "{cmd} inherited {leaked}:\n{environ}");
        }
        // Nothing of the agent's own environment beyond the allow-list (Chromium adds variables
        // of its own for its helpers; those are not the agent's).
        let allowed = ["PATH", "HOME", "TMPDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "LANG", "LC_ALL", "TZ"];
        let agents: Vec<String> = std::env::vars().map(|(k, _)| k).chain(canaries.iter().map(|(k, _)| k.to_string())).collect();
        for line in environ.lines() {
            let name = line.split_once('=').map_or(line, |(k, _)| k);
            assert!(allowed.contains(&name) || !agents.iter().any(|a| a == name), "{cmd} inherited {name}");
        }
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
        let error = assert_failed(&run, ErrorCode::EgressRefused, exit::EGRESS_REFUSED, "navigate");
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

/// A page of one's own beside the fixture (`local-stack --egress-allow 127.0.0.1:3000`): two
/// origins on one address, each allowed, whichever the list names first.
#[test]
fn every_allowed_origin_of_one_address_is_reachable_in_either_order() {
    let fixture = fixture_origin();
    let own = start_fixture();
    for allow in [format!("{fixture},{own}"), format!("{own},{fixture}")] {
        let opts = Options { egress_allow: Some(allow.clone()), ..Options::default() };
        let run = run_agent(agent(), json!({ "url": format!("http://{own}/page") }), opts);
        assert_eq!(run.code, 0, "{allow}: {}", run.stdout);
        assert_completed(&run, 1280, 800);
    }
}

#[test]
fn connection_refused_is_reported() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let opts = Options { egress_allow: Some(closed.to_string()), ..Options::default() };
    let run = run_agent(agent(), json!({ "url": format!("http://{closed}/") }), opts);
    let error = assert_failed(&run, ErrorCode::PageUnreachable, exit::NAVIGATION, "navigate");
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
    let error = assert_failed(&run, ErrorCode::InvalidJob, exit::INVALID_JOB, "config");
    assert!(error["message"].as_str().unwrap().contains("not both"));
}

#[test]
fn a_file_over_its_upload_size_is_not_sent_and_the_job_says_so() {
    // The screenshot's form allows 1 KiB (its policy's content-length-range, which S3 enforces);
    // the agent sees the file is larger and fails the upload without sending it.
    let opts = Options { caps: vec![(Output::Screenshot, 1024)], ..Options::default() };
    let run = run_agent(agent(), json!({ "url": env().page("/page") }), opts);
    let error = assert_failed(&run, ErrorCode::UploadFailed, exit::UPLOAD, "upload");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("screenshot.png") && message.contains("over the 1024"), "{message}");
    assert!(run.object(Output::Screenshot).is_none(), "nothing was sent");
    assert!(run.object(Output::Result).is_some(), "the other outputs were");
}

#[test]
fn without_its_manifest_the_agent_exits_2_and_says_why_on_stdout() {
    use names::env::agent as var;
    for (url, why) in [
        (None, "AGENT_MANIFEST_URL is not set"),
        (Some("ftp://x/manifest.json".to_string()), "not an http(s) URL"),
        (Some(env().bucket.presign_get("jobs/none/manifest.json").unwrap()), "could not be read: HTTP 404"),
    ] {
        let mut cmd = std::process::Command::new(agent());
        cmd.env_remove(var::MANIFEST_URL).env(var::TASK_ID, "t-missing").stdout(std::process::Stdio::piped());
        if let Some(u) = &url {
            cmd.env(var::MANIFEST_URL, u);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(exit::INVALID_JOB), "{why}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(why) && stdout.contains("t-missing"), "{why}: {stdout}");
        assert!(!stdout.contains("X-Amz-Signature"), "the link's signature is never logged: {stdout}");
    }
}

#[test]
fn sigterm_uploads_what_there_is_and_exits_promptly() {
    scenarios::stopped(
        |job, opts| run_agent(agent(), job, opts),
        Duration::from_secs(4),
        Duration::from_secs(4),
    );
}

// ---- scripted jobs -------------------------------------------------------------------------

fn steps(steps: Value) -> Value {
    json!({ "steps": steps })
}

/// The step records of result.json: every step ran, in order, and passed.
fn assert_steps_ok(result: &Value, count: usize) {
    let records = result["steps"].as_array().unwrap_or_else(|| panic!("no steps in {result}"));
    assert_eq!(records.len(), count, "{result}");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["index"], i, "{r}");
        assert_eq!(r["ok"], true, "{r}");
        assert!(r["ms"].as_u64().is_some(), "{r}");
    }
}

#[test]
fn a_script_signs_in_clicks_through_pages_and_keeps_what_it_extracts() {
    let run = run(steps(json!([
        { "action": "goto", "url": env().page("/portal") },
        { "action": "type", "selector": "#user", "text": "ada" },
        { "action": "type", "selector": "#password", "text": support::LOGIN_PASSWORD },
        { "action": "select", "selector": "#plan", "value": "team" },
        { "action": "click", "selector": "#go" },
        { "action": "wait_for", "selector": "#welcome" },
        { "action": "assert", "text": "Welcome, ada" },
        { "action": "extract", "name": "plan", "selector": "#plan" },
        { "action": "click", "selector": "#invoices" },
        { "action": "wait_for", "url": "page=1" },
        { "action": "extract", "name": "numbers", "selector": ".number", "all": true },
        { "action": "screenshot", "name": "box", "selector": "#box" },
        { "action": "click", "selector": "#next" },
        { "action": "wait_for", "url": "page=2", "timeout_ms": 5000 },
        { "action": "extract", "name": "cents", "selector": ".amount", "attribute": "data-cents", "all": true },
        { "action": "pdf", "name": "page-2" },
        { "action": "screenshot", "name": "whole", "full_page": true },
        { "action": "press", "key": "End" },
    ])));
    let result = assert_completed(&run, 1280, 800);
    assert_eq!(result["kind"], "script");
    assert_eq!(result["title"], "Invoices, page 2");
    assert_steps_ok(&result, 18);
    assert_eq!(result["extracted"]["plan"], "Plan: team");
    assert_eq!(result["extracted"]["numbers"], json!(["INV-101", "INV-102", "INV-103"]));
    assert_eq!(result["extracted"]["cents"], json!(["2100", "2200", "2300"]));
    // The element alone, at its size.
    let box_png = run.file("files/box.png").expect("files/box.png uploaded");
    assert_eq!(support::png_size(&box_png), (200, 100));
    let pdf = run.file("files/page-2.pdf").expect("files/page-2.pdf uploaded");
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    assert!(pdf.len() > 1000, "{} bytes", pdf.len());
    // At least one page object (`/Type /Page`, not the `/Pages` tree).
    let text = String::from_utf8_lossy(&pdf).replace("/Type /Page", "/Type/Page");
    let pages = text.matches("/Type/Page").count() - text.matches("/Type/Pages").count();
    assert!(pages >= 1, "no page in the PDF");
    let (w, _) = support::png_size(&run.file("files/whole.png").expect("files/whole.png uploaded"));
    assert_eq!(w, 1280);
    let files: Vec<&str> = result["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(files, ["files/box.png", "files/page-2.pdf", "files/whole.png"], "{result}");
}

#[test]
fn scrolling_to_the_bottom_loads_a_lazy_list_and_waits_see_late_content() {
    let run = run(steps(json!([
        { "action": "goto", "url": env().page("/lazy") },
        { "action": "scroll", "to": "bottom" },
        { "action": "extract", "name": "items", "selector": ".item", "all": true },
        { "action": "goto", "url": env().page("/late") },
        { "action": "wait_for", "text": "Ready now", "timeout_ms": 5000 },
        { "action": "scroll", "selector": "#ready" },
    ])));
    let result = assert_completed(&run, 1280, 800);
    assert_steps_ok(&result, 6);
    let items = result["extracted"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 60, "{items:?}");
    assert_eq!(items[59], "item 60");
}

#[test]
fn a_query_job_may_go_on_with_steps() {
    let run = run(json!({ "query": "rust lang", "steps": [
        { "action": "extract", "name": "first", "selector": "a.result__a" },
    ] }));
    let result = assert_completed(&run, 1280, 800);
    assert_eq!(result["kind"], "search");
    assert_eq!(result["results"].as_array().unwrap().len(), support::SEARCH_RESULTS.len());
    assert_eq!(result["extracted"]["first"], support::SEARCH_RESULTS[0].0);
}

/// A failed step: error.json names the code and the step, result.json lists the steps up to it,
/// and the page as it was is still captured.
fn assert_step_failed(run: &Run, code: ErrorCode, step: usize) -> Value {
    let error = assert_failed(run, code, exit::STEP, "steps");
    assert_eq!(error["step"], step, "{error}");
    let result = run.json(Output::Result);
    let records = result["steps"].as_array().unwrap();
    assert_eq!(records.len(), step + 1, "{result}");
    assert_eq!(records[step]["ok"], false);
    assert_eq!(records[step]["error"]["code"], code.as_str());
    assert!(run.object(Output::Screenshot).is_some(), "the page at the failure is captured");
    error
}

#[test]
fn a_failed_assertion_fails_the_job_at_its_step() {
    let run = run(steps(json!([
        { "action": "goto", "url": env().page("/portal") },
        { "action": "type", "selector": "#user", "text": "ada" },
        { "action": "type", "selector": "#password", "text": "wrong" },
        { "action": "click", "selector": "#go" },
        { "action": "assert", "selector": "#welcome" },
        { "action": "extract", "name": "never", "selector": "p" },
    ])));
    let error = assert_step_failed(&run, ErrorCode::AssertionFailed, 4);
    assert!(error["message"].as_str().unwrap().contains("#welcome"), "{error}");
    assert_eq!(run.json(Output::Result)["title"], "Sign in failed");
}

#[test]
fn waiting_for_what_never_comes_fails_at_the_step_timeout() {
    let run = run(steps(json!([
        { "action": "goto", "url": env().page("/page") },
        { "action": "wait_for", "selector": "#never", "timeout_ms": 500 },
    ])));
    assert_step_failed(&run, ErrorCode::SelectorNotFound, 1);
    let run = self::run(steps(json!([
        { "action": "goto", "url": env().page("/page") },
        { "action": "wait_for", "text": "never there", "timeout_ms": 500 },
    ])));
    let error = assert_step_failed(&run, ErrorCode::StepTimeout, 1);
    assert!(error["message"].as_str().unwrap().contains("500 ms"), "{error}");
}

#[test]
fn a_goto_to_the_metadata_endpoint_mid_script_is_refused() {
    let run = run(steps(json!([
        { "action": "goto", "url": env().page("/page") },
        { "action": "goto", "url": "http://169.254.169.254/latest/meta-data/" },
    ])));
    let error = assert_failed(&run, ErrorCode::EgressRefused, exit::EGRESS_REFUSED, "steps");
    assert_eq!(error["step"], 1);
    assert!(error["message"].as_str().unwrap().contains("link-local"), "{error}");
}

#[test]
fn the_job_timeout_covers_every_step() {
    let timeout = *names::job::TIMEOUT_SECONDS.start();
    let run = run(json!({ "options": { "timeout_seconds": timeout }, "steps": [
        { "action": "goto", "url": env().page("/page") },
        { "action": "wait_for", "text": "A small page" },
        // Its own timeout is longer than what is left of the job's.
        { "action": "wait_for", "text": "never there", "timeout_ms": 60000 },
    ] }));
    let error = assert_failed(&run, ErrorCode::Timeout, exit::DEADLINE, "steps");
    assert_eq!(error["step"], 2, "{error}");
    assert!(run.elapsed < Duration::from_secs(timeout.into()) + Duration::from_secs(5), "{:?}", run.elapsed);
}

#[test]
fn a_tenant_secret_is_typed_read_once_and_found_in_no_output() {
    // The page echoes what is typed (as some do), so the secret reaches the page's text, the
    // extracted values and the HTML (as typed, upper-cased, and percent- and form-encoded in a
    // link): each must carry its name, never its value in any of these forms.
    let secret = support::LOGIN_PASSWORD;
    let opts = Options { secrets: vec![("portal-password".into(), secret.into())], ..Options::default() };
    let run = run_agent(
        agent(),
        json!({ "options": { "capture_html": true }, "steps": [
            { "action": "goto", "url": env().page("/portal") },
            { "action": "type", "selector": "#user", "text": "ada" },
            { "action": "type", "selector": "#password", "secret": "portal-password" },
            { "action": "extract", "name": "echo", "selector": "#echo" },
            { "action": "extract", "name": "shout", "selector": "#shout" },
            { "action": "extract", "name": "link", "selector": "#again", "attribute": "href" },
            { "action": "click", "selector": "#go" },
            { "action": "wait_for", "selector": "#welcome" },
        ] }),
        opts,
    );
    let result = assert_completed(&run, 1280, 800);
    assert_eq!(result["title"], "Account", "the secret signed in: {result}");
    assert_eq!(result["extracted"]["echo"], "[secret:portal-password]");
    let html = String::from_utf8(run.object(Output::Html).expect("page.html")).unwrap();
    let log = String::from_utf8(run.object(Output::Log).unwrap()).unwrap();
    assert!(log.contains("secrets read and deleted"), "{log}");
    assert_eq!(result["extracted"]["shout"], "[secret:portal-password]", "upper-cased by the page");
    let link = result["extracted"]["link"].as_str().unwrap();
    assert!(link.ends_with("/search?q=[secret:portal-password]&f=p=[secret:portal-password]"), "percent- and form-encoded: {link}");
    let forms = [secret.to_owned(), secret.to_uppercase(), secret.replace(' ', "%20"), secret.replace(' ', "+")];
    for (what, text) in [("result.json", result.to_string()), ("page.html", html), ("agent.log", log), ("stdout", run.stdout.clone())] {
        for form in &forms {
            assert!(!text.contains(form.as_str()), "{what} holds the secret as {form}");
        }
    }
    // Read once: the object is gone.
    assert!(env().get(&names::bucket::secrets_key(&run.task_id)).is_none(), "the secrets object is still there");
}

/// A page that wedges its browser fails the job at the step cap with what went unanswered, well
/// before its deadline, and not as a job that ran out of time.
#[test]
fn a_page_that_wedges_its_browser_fails_at_the_step_cap_and_says_so() {
    let run = run(json!({ "url": env().page("/wedged"), "options": { "timeout_seconds": 120 } }));
    run.assert_code(exit::CAPTURE);
    let error = run.json(Output::Error);
    assert_eq!(error["code"], ErrorCode::CaptureFailed.as_str(), "{error}");
    // The page stops answering once the agent has first read it after the load: in its check of
    // the navigation, or in the capture.
    assert!(matches!(error["stage"].as_str(), Some("navigate" | "capture")), "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("did not answer") && message.contains("within 20 s"), "{error}");
    assert!(run.elapsed < Duration::from_secs(100), "{:?}", run.elapsed);
}

#[test]
fn a_secret_that_was_not_handed_over_fails_before_the_browser_starts() {
    let run = run(steps(json!([
        { "action": "goto", "url": env().page("/portal") },
        { "action": "type", "selector": "#password", "secret": "nowhere" },
    ])));
    let error = assert_failed(&run, ErrorCode::SecretNotFound, exit::INVALID_JOB, "config");
    assert!(error["message"].as_str().unwrap().contains("nowhere"), "{error}");
}

fn slot(hand_over: Option<Duration>, deadline: Duration, link: Duration) -> Options {
    Options { slot: Some(support::SlotOptions { hand_over, deadline, link, release_refused: false, wake_refused: false }), ..Options::default() }
}

/// A slot that read its job's manifest but cannot delete it (the release) has not taken the job:
/// the dispatcher still sees the manifest and sends the job back to the queue when the slot's task
/// ends, so running it here as well would run it twice. It runs nothing and ends.
#[test]
fn a_slot_that_cannot_release_its_manifest_leaves_the_job_untouched() {
    let opts = Options {
        slot: Some(support::SlotOptions {
            hand_over: Some(Duration::from_secs(1)),
            deadline: Duration::from_secs(120),
            link: Duration::from_secs(600),
            release_refused: true,
            wake_refused: false,
        }),
        ..Options::default()
    };
    let run = run_agent(agent(), json!({ "url": env().page("/page") }), opts);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("could not release its job's manifest"), "{}", run.stdout);
    for output in [Output::Result, Output::Screenshot, Output::Log, Output::Error] {
        assert!(run.object(output).is_none(), "{output:?} uploaded: the job ran");
    }
    assert_eq!(run.slot_manifest_left, Some(true), "the manifest stays: the job was not taken");
}

#[test]
fn a_warm_slot_runs_the_job_handed_over_to_it_and_takes_it_once() {
    // Started without a job; the job's manifest appears at the slot's place 3 s later. The slot's
    // browser started at the default viewport before the job came; the job's own viewport is set.
    let job = json!({ "url": env().page("/tall"), "options": { "viewport": { "width": 1000, "height": 700 } } });
    let run = run_agent(agent(), job, slot(Some(Duration::from_secs(3)), Duration::from_secs(120), Duration::from_secs(600)));
    let result = assert_completed(&run, 1000, 700);
    assert_eq!(result["title"], "Tall page");
    assert_eq!(result["agent_timings_ms"]["warm_browser"], true, "{result}\n{}", run.stdout);
    assert_eq!(run.slot_manifest_left, Some(false), "the slot deleted its manifest once read (the job was taken)");
    let at = |line: &str| run.stdout.find(line).unwrap_or_else(|| panic!("no `{line}` in {}", run.stdout));
    assert!(at("the slot's browser is ready") < at("waiting for a job"), "the browser starts before the wait");
    assert!(at("the slot took its job") < at("the slot's browser takes the job"));
    assert_eq!(run.stdout.matches("chromium and chromedriver ready").count(), 1, "one browser start: {}", run.stdout);
    assert!(run.elapsed >= Duration::from_secs(3), "{:?}", run.elapsed);
}

/// A slot whose wake link fails (here every call is refused; on AWS an SQS outage, an expired
/// session) still takes its job: it looks at its manifest every 250 ms instead, and says so.
#[test]
fn a_slot_whose_wake_link_fails_looks_at_its_manifest_and_takes_its_job() {
    let mut opts = slot(Some(Duration::from_secs(2)), Duration::from_secs(120), Duration::from_secs(600));
    opts.slot.as_mut().unwrap().wake_refused = true;
    let run = run_agent(agent(), json!({ "url": env().page("/tall") }), opts);
    assert_completed(&run, 1280, 800);
    let took = run.stdout.lines().find(|l| l.contains("the slot took its job")).expect("the take");
    assert!(took.contains(r#""woken":false"#), "found by a look of its own: {took}");
    // A slot whose browser started slowly (under strace) finds its job at its first look, having
    // never waited on the link; one that waited says so once, not at every look.
    let warned = run.stdout.matches("the slot's wake link failed").count();
    let waited = !took.contains(r#""looks":1,"#);
    assert_eq!(warned, usize::from(waited), "{}", run.stdout);
    assert_eq!(run.slot_manifest_left, Some(false));
}

#[test]
fn a_slot_whose_browser_died_while_waiting_starts_a_new_one_for_its_job() {
    // The slot's first Chromium is killed 4 s after it starts; the job arrives at 7 s.
    let dir = std::env::temp_dir().join(format!("agent-{}", support::unique_task_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let real = std::env::var(names::env::agent::CHROMIUM_PATH).unwrap_or_else(|_| agent::config::DEFAULT_CHROMIUM.to_string());
    let wrapper = dir.join("chromium");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nif mkdir '{first}' 2>/dev/null; then (sleep 4; kill -9 $$) & fi\nexec '{real}' \"$@\"\n", first = dir.join("first").display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let opts = Options {
        extra_env: vec![(names::env::agent::CHROMIUM_PATH.to_string(), wrapper.display().to_string())],
        ..slot(Some(Duration::from_secs(7)), Duration::from_secs(120), Duration::from_secs(600))
    };
    let run = run_agent(agent(), json!({ "url": env().page("/tall") }), opts);
    let result = assert_completed(&run, 1280, 800);
    assert_eq!(result["agent_timings_ms"]["warm_browser"], false, "{result}");
    assert!(
        run.stdout.contains("the slot's browser cannot take the job; starting a new one") || run.stdout.contains("the slot cannot start its browser early"),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_idle_slot_leaves_before_its_link_expires() {
    // Its own deadline is 10 minutes away, but its links expire in 33 s: it leaves 30 s before.
    let run = run_agent(agent(), json!({ "url": env().page("/tall") }), slot(None, Duration::from_secs(600), Duration::from_secs(33)));
    run.assert_code(exit::OK);
    assert!(run.elapsed < Duration::from_secs(30), "left at its link's expiry less the margin, not its deadline: {:?}", run.elapsed);
    assert!(run.stdout.contains("the slot expired without a job"), "{}", run.stdout);
    assert!(run.object(Output::Error).is_none() && run.object(Output::Log).is_none(), "no job, nothing uploaded");
    assert_eq!(run.slot_manifest_left, Some(false));
}

#[test]
fn an_idle_slot_stopped_by_stoptask_exits_143() {
    let opts = Options { sigterm_after: Some(Duration::from_secs(1)), ..slot(None, Duration::from_secs(120), Duration::from_secs(600)) };
    let run = run_agent(agent(), json!({ "url": env().page("/tall") }), opts);
    run.assert_code(exit::TERMINATED);
    assert!(run.stdout.contains("stopped while waiting for a job"), "{}", run.stdout);
}
