//! One job inside the browser: open the first page (checking how the navigation ended), run the
//! job's steps, then capture the screenshot, the facts for `result.json` and optionally the HTML
//! of the page as they left it.

use crate::browser::{Browser, BrowserConfig};
use crate::config::Target;
use crate::error::{AgentError, Stage};
use crate::page::{navigate, screenshot, Ctx, FACTS_SCRIPT, STEP_CAP};
use crate::proxy::EventKind;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::timeout_at;

pub const MAX_RESULTS: usize = 10;

/// When a job's steps fail, the page as they left it is still captured, within this.
const CAPTURE_AFTER_FAILURE: Duration = Duration::from_secs(10);

pub async fn run(ctx: Arc<Ctx>) -> Result<(), AgentError> {
    let started = Instant::now();
    let cfg = &ctx.config;
    ctx.enter(Stage::Launch);
    let warm = ctx.warm.lock().unwrap_or_else(|e| e.into_inner()).take();
    let (browser, warm) = match warm {
        Some(b) => {
            let resized = timeout_at(ctx.step_deadline(WARM_CHECK), b.set_viewport(cfg.options.viewport))
                .await
                .unwrap_or_else(|_| Err("no answer".to_string()));
            match resized {
                Ok(()) => {
                    ctx.log.info("the slot's browser takes the job", json!({ "version": b.version }));
                    (b, true)
                }
                // Chromium died (or hangs) while the slot waited: a new one, as a cold task starts it.
                Err(error) => {
                    ctx.log.warn("the slot's browser cannot take the job; starting a new one", json!({ "error": error }));
                    drop(b);
                    (launch(&ctx).await?, false)
                }
            }
        }
        None => (launch(&ctx).await?, false),
    };
    let launch_ms = started.elapsed().as_millis() as u64;

    let mut navigate_ms = 0;
    if let Some(target) = &cfg.target {
        ctx.enter(Stage::Navigate);
        let nav_started = Instant::now();
        navigate(&ctx, &browser, target.url(), ctx.work_deadline).await?;
        navigate_ms = nav_started.elapsed().as_millis() as u64;
    }
    let steps_started = Instant::now();
    let steps = if let Some(goal) = &cfg.goal {
        ctx.enter(Stage::Steps);
        crate::computer::job::run(&ctx, &browser, goal).await
    } else if cfg.steps.is_empty() {
        Ok(())
    } else {
        ctx.enter(Stage::Steps);
        crate::steps::run(&ctx, &browser).await
    };
    let steps_ms = steps_started.elapsed().as_millis() as u64;
    // The page as the job (or its failing step) left it; after a failure, best effort and brief,
    // and the step's error is the job's.
    let timings = json!({ "browser_start": launch_ms, "warm_browser": warm, "navigate": navigate_ms, "steps": steps_ms });
    match steps {
        Ok(()) => {
            ctx.enter(Stage::Capture);
            capture(&ctx, &browser, timings, ctx.work_deadline).await?;
        }
        Err(e) => {
            let until = ctx.step_deadline(CAPTURE_AFTER_FAILURE);
            if let Err(c) = capture(&ctx, &browser, timings, until).await {
                ctx.log.warn("the page after the failed step could not be captured", json!({ "error": c.to_string() }));
            }
            return Err(e);
        }
    }
    drop(browser);
    Ok(())
}

/// How long a warm slot's browser may take to answer before the job starts a new one.
const WARM_CHECK: Duration = Duration::from_secs(5);

/// Starts Chromium and chromedriver for the job (once more if the first Chromium dies starting).
async fn launch(ctx: &Ctx) -> Result<Browser, AgentError> {
    let cfg = &ctx.config;
    let browser_cfg = BrowserConfig {
        chromium: &cfg.chromium,
        chromedriver: &cfg.chromedriver,
        scratch: &ctx.run_dir,
        proxy: ctx.guard.addr,
        viewport: cfg.options.viewport,
    };
    // One retry: a Chromium that dies while starting is rare and rarely dies twice.
    let mut attempt = 1;
    loop {
        let launched = timeout_at(ctx.step_deadline(LAUNCH_CAP), Browser::launch(&browser_cfg, &ctx.log))
            .await
            .map_err(|_| AgentError::BrowserStart("Chromium did not start in time".into()))
            .and_then(|r| r.map_err(AgentError::BrowserStart));
        match launched {
            Ok(b) => return Ok(b),
            Err(e) if attempt == 1 && ctx.work_deadline > tokio::time::Instant::now() + Duration::from_secs(5) => {
                ctx.log.warn("browser start failed; retrying", json!({ "error": e.to_string() }));
                crate::browser::kill_descendants();
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// How long Chromium and chromedriver may take to start.
pub const LAUNCH_CAP: Duration = Duration::from_secs(45);

/// The default screenshot, the search results, the HTML, and `result.json`, of the page as it is.
async fn capture(ctx: &Ctx, browser: &Browser, mut timings: Value, until: tokio::time::Instant) -> Result<(), AgentError> {
    let cfg = &ctx.config;
    let capture_started = Instant::now();
    let cap = |d: Duration| (tokio::time::Instant::now() + d).min(until);
    let capped = cap(STEP_CAP);
    let facts = timeout_at(capped, browser.client.execute(FACTS_SCRIPT, vec![]))
        .await
        .map_err(|_| ctx.silent(capped, "a script reading the page"))?
        .map_err(|e| AgentError::Capture(format!("reading the page: {e}")))?;
    let (png, shot) = timeout_at(until, screenshot(ctx, browser, cfg.options.full_page)).await.map_err(|_| ctx.deadline_error())??;
    ctx.artifacts().screenshot = Some(png);
    let results = match &cfg.target {
        Some(Target::Search { .. }) => {
            let capped = cap(STEP_CAP);
            let found = timeout_at(capped, browser.client.execute(RESULTS_SCRIPT, vec![]))
                .await
                .map_err(|_| ctx.silent(capped, "a script reading the results"))?
                .map_err(|e| AgentError::Capture(format!("reading the results: {e}")))?;
            Some(search_results(found))
        }
        _ => None,
    };
    if cfg.options.capture_html {
        let capped = cap(STEP_CAP);
        let html = timeout_at(capped, browser.client.source())
            .await
            .map_err(|_| ctx.silent(capped, "reading the HTML"))?
            .map_err(|e| AgentError::Capture(format!("reading the HTML: {e}")))?;
        ctx.artifacts().html = Some(html);
    }
    timings["capture"] = json!(capture_started.elapsed().as_millis() as u64);
    // Subresources the guard refused; unreachable hosts (Chromium's own background requests
    // among them) are only logged.
    let blocked: Vec<Value> = ctx
        .guard
        .events_since(0)
        .into_iter()
        .filter(|e| e.kind == EventKind::Refused)
        .map(|e| json!({ "target": e.target, "reason": e.reason }))
        .collect();
    let requested = match &cfg.target {
        Some(t) => t.url().to_string(),
        None => match cfg.steps.first() {
            Some(names::step::Step::Goto { url }) => url.clone(),
            _ => String::new(),
        },
    };
    let mut result = json!({
        "task_id": cfg.task_id,
        "kind": match (&cfg.goal, &cfg.target) {
            (Some(_), _) => "goal",
            (None, Some(Target::Search { .. })) => "search",
            (None, Some(Target::Page { .. })) => "url",
            (None, None) => "script",
        },
        "requested_url": requested,
        "final_url": facts["href"],
        "title": facts["title"],
        "http_status": facts["timing"]["responseStatus"],
        "timings": http_timings(&facts["timing"]),
        "agent_timings_ms": timings,
        "viewport": { "width": cfg.options.viewport.width, "height": cfg.options.viewport.height },
        "screenshot": shot,
        "dialogs": facts["dialogs"],
        "blocked_requests": blocked,
        "browser_version": browser.version,
        "agent_version": env!("CARGO_PKG_VERSION"),
        "captured_at": crate::log::now_rfc3339(),
    });
    if let Some(Target::Search { query, .. }) = &cfg.target {
        result["query"] = json!(query);
    }
    if let Some(results) = results {
        result["results"] = json!(results);
    }
    let mut artifacts = ctx.artifacts();
    if !cfg.steps.is_empty() {
        result["steps"] = json!(artifacts.steps);
        result["extracted"] = Value::Object(artifacts.extracted.clone());
    }
    // A computer-use job's answer, usage and trajectory.
    if let Some(Value::Object(computer)) = &artifacts.computer {
        for (k, v) in computer {
            result[k] = v.clone();
        }
    }
    artifacts.result = Some(result);
    Ok(())
}

/// Result links of the default engine's HTML page first, then other common engines' layouts.
const RESULTS_SCRIPT: &str = r#"
const selectors = ['a.result__a', 'a[data-testid="result-title-a"]', 'li.b_algo h2 a', '#search a:has(h3)'];
for (const s of selectors) {
  const links = Array.from(document.querySelectorAll(s));
  if (links.length) {
    return links.slice(0, 20).map(a => ({ title: (a.innerText || a.textContent || '').trim(), url: a.href }));
  }
}
return [];"#;

/// The top results as `{rank, title, url}`, with the search engine's redirect links unwrapped.
pub fn search_results(raw: Value) -> Vec<Value> {
    raw.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let title = r["title"].as_str()?.trim().to_string();
            let url = unwrap_redirect(url::Url::parse(r["url"].as_str()?).ok()?);
            (matches!(url.scheme(), "http" | "https") && !title.is_empty()).then_some((title, url))
        })
        .take(MAX_RESULTS)
        .enumerate()
        .map(|(i, (title, url))| json!({ "rank": i + 1, "title": title, "url": url.as_str() }))
        .collect()
}

/// DuckDuckGo's HTML results link to `/l/?uddg=<target>`.
fn unwrap_redirect(url: url::Url) -> url::Url {
    if url.path() == "/l/" {
        if let Some((_, target)) = url.query_pairs().find(|(k, _)| k == "uddg") {
            if let Ok(t) = url::Url::parse(&target) {
                return t;
            }
        }
    }
    url
}

/// HTTP-level timings from the Navigation Timing entry, in milliseconds from navigation start.
/// The browser talks to the egress guard, so DNS and connect times are those of the hop to the
/// guard; request and response times are the server's.
fn http_timings(t: &Value) -> Value {
    if t.is_null() {
        return Value::Null;
    }
    let ms = |k: &str| t[k].as_f64().map(|v| (v * 10.0).round() / 10.0);
    let span = |a: &str, b: &str| match (ms(a), ms(b)) {
        (Some(a), Some(b)) if b >= a => Some(((b - a) * 10.0).round() / 10.0),
        _ => None,
    };
    json!({
        "redirect_count": t["redirectCount"],
        "redirect": span("redirectStart", "redirectEnd"),
        "dns": span("domainLookupStart", "domainLookupEnd"),
        "connect": span("connectStart", "connectEnd"),
        "request_start": ms("requestStart"),
        "time_to_first_byte": ms("responseStart"),
        "response_end": ms("responseEnd"),
        "dom_content_loaded": ms("domContentLoadedEventEnd"),
        "load": ms("loadEventEnd"),
        "transfer_size": t["transferSize"],
        "encoded_body_size": t["encodedBodySize"],
        "decoded_body_size": t["decodedBodySize"],
        "protocol": t["nextHopProtocol"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duckduckgo_redirects_are_unwrapped() {
        let raw = json!([
            { "title": " Rust ", "url": "https://duckduckgo.com/l/?uddg=https%3A%2F%2Fwww.rust-lang.org%2F&rut=x" },
            { "title": "Plain", "url": "https://example.org/a" },
            { "title": "", "url": "https://example.org/empty-title" },
            { "title": "JS", "url": "javascript:void(0)" },
        ]);
        let got = search_results(raw);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            json!({ "rank": 1, "title": "Rust", "url": "https://www.rust-lang.org/" })
        );
        assert_eq!(got[1]["url"], "https://example.org/a");
    }
}
