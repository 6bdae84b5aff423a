//! One job's steps inside the browser: open the page, check how the navigation ended, capture the
//! screenshot, the facts for `result.json` and optionally the HTML.

use crate::browser::{Browser, BrowserConfig};
use crate::config::{Config, Target};
use crate::error::{AgentError, Stage};
use crate::log::Log;
use crate::proxy::{EventKind, Guard};
use base64::Engine;
use fantoccini::error::CmdError;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::time::timeout_at;

/// Chromium cannot composite taller captures reliably; longer pages are cut here and say so.
pub const MAX_FULL_PAGE_HEIGHT: u32 = 16_384;
pub const MAX_RESULTS: usize = 10;
const STEP_CAP: Duration = Duration::from_secs(20);

/// What a job has produced so far. Filled step by step, so a job stopped half-way can still
/// upload what it has.
#[derive(Default)]
pub struct Artifacts {
    pub screenshot: Option<Vec<u8>>,
    pub result: Option<Value>,
    pub html: Option<String>,
}

/// State shared between the job task and the supervisor that may stop it.
pub struct Ctx {
    pub config: Config,
    pub log: Arc<Log>,
    pub guard: Guard,
    /// This run's directory on the scratch volume, removed after the uploads.
    pub run_dir: std::path::PathBuf,
    /// When the work must be done; uploads get the time after it.
    pub work_deadline: tokio::time::Instant,
    pub stage: Mutex<Stage>,
    pub artifacts: Mutex<Artifacts>,
}

impl Ctx {
    pub fn stage(&self) -> Stage {
        *self.stage.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enter(&self, stage: Stage) {
        *self.stage.lock().unwrap_or_else(|e| e.into_inner()) = stage;
        self.log.info("stage", json!({ "stage": stage.as_str() }));
    }

    /// The deadline of a step: its own cap or the job's, whichever comes first.
    fn step_deadline(&self, cap: Duration) -> tokio::time::Instant {
        (tokio::time::Instant::now() + cap).min(self.work_deadline)
    }

    fn deadline_error(&self) -> AgentError {
        AgentError::Deadline(self.config.options.timeout_seconds)
    }
}

pub async fn run(ctx: Arc<Ctx>) -> Result<(), AgentError> {
    let started = Instant::now();
    let cfg = &ctx.config;
    ctx.enter(Stage::Launch);
    let browser_cfg = BrowserConfig {
        chromium: &cfg.chromium,
        chromedriver: &cfg.chromedriver,
        scratch: &ctx.run_dir,
        proxy: ctx.guard.addr,
        viewport: cfg.options.viewport,
    };
    // One retry: a Chromium that dies while starting is rare and rarely dies twice.
    let mut attempt = 1;
    let browser = loop {
        let launched = timeout_at(
            ctx.step_deadline(Duration::from_secs(45)),
            Browser::launch(&browser_cfg, &ctx.log),
        )
        .await
        .map_err(|_| AgentError::BrowserStart("Chromium did not start in time".into()))
        .and_then(|r| r.map_err(AgentError::BrowserStart));
        match launched {
            Ok(b) => break b,
            Err(e)
                if attempt == 1
                    && ctx.work_deadline > tokio::time::Instant::now() + Duration::from_secs(5) =>
            {
                ctx.log.warn(
                    "browser start failed; retrying",
                    json!({ "error": e.to_string() }),
                );
                crate::browser::kill_descendants();
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };
    let launch_ms = started.elapsed().as_millis() as u64;

    ctx.enter(Stage::Navigate);
    let nav_started = Instant::now();
    let url = cfg.target.url().clone();
    let page_load = ctx
        .work_deadline
        .saturating_duration_since(tokio::time::Instant::now());
    let timeouts = fantoccini::wd::TimeoutConfiguration::new(
        Some(STEP_CAP),
        Some(page_load),
        Some(Duration::ZERO),
    );
    browser
        .client
        .update_timeouts(timeouts)
        .await
        .map_err(|e| AgentError::BrowserStart(format!("setting timeouts: {e}")))?;
    let mark = ctx.guard.mark();
    ctx.log.info("navigating", json!({ "url": url.as_str() }));
    let nav = timeout_at(ctx.work_deadline, browser.client.goto(url.as_str()))
        .await
        .map_err(|_| ctx.deadline_error())?;
    let final_url = timeout_at(ctx.step_deadline(STEP_CAP), browser.client.current_url())
        .await
        .ok()
        .and_then(Result::ok);
    check_navigation(&ctx, mark, nav, final_url.as_ref())?;
    let facts = script(&ctx, &browser, FACTS_SCRIPT).await?;
    // Chromium answers some failures (a redirect loop, say) with its own error page and
    // chromedriver reports the navigation as done.
    if facts["href"]
        .as_str()
        .is_some_and(|h| h.starts_with("chrome-error:"))
    {
        let mut code = facts["error_code"]
            .as_str()
            .map(str::trim)
            .unwrap_or_default()
            .to_string();
        if code.is_empty() {
            // chrome-headless-shell's error page is blank: navigating once more through CDP
            // returns the net error as `errorText`.
            let retry = timeout_at(
                ctx.step_deadline(STEP_CAP),
                browser.cdp("Page.navigate", json!({ "url": url.as_str() })),
            )
            .await;
            code = match retry {
                Ok(Ok(v)) => v["errorText"].as_str().unwrap_or_default().to_string(),
                _ => String::new(),
            };
        }
        let code = if code.is_empty() {
            "unknown network error".to_string()
        } else {
            code
        };
        return Err(AgentError::Navigation(format!(
            "net::{}",
            code.trim_start_matches("net::")
        )));
    }
    let final_url = final_url
        .map(|u| u.to_string())
        .unwrap_or_else(|| url.to_string());
    let navigate_ms = nav_started.elapsed().as_millis() as u64;
    ctx.log.info(
        "page loaded",
        json!({ "final_url": final_url, "ms": navigate_ms }),
    );

    ctx.enter(Stage::Capture);
    let capture_started = Instant::now();
    let (png, shot) = screenshot(&ctx, &browser).await?;
    ctx.artifacts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .screenshot = Some(png);
    let results = match &cfg.target {
        Target::Search { .. } => Some(search_results(
            script(&ctx, &browser, RESULTS_SCRIPT).await?,
        )),
        Target::Page { .. } => None,
    };
    if cfg.options.capture_html {
        let html = timeout_at(ctx.step_deadline(STEP_CAP), browser.client.source())
            .await
            .map_err(|_| ctx.deadline_error())?
            .map_err(|e| AgentError::Capture(format!("reading the HTML: {e}")))?;
        ctx.artifacts.lock().unwrap_or_else(|e| e.into_inner()).html = Some(html);
    }
    let capture_ms = capture_started.elapsed().as_millis() as u64;
    // Subresources the guard refused; unreachable hosts (Chromium's own background requests
    // among them) are only logged.
    let blocked: Vec<Value> = ctx
        .guard
        .events_since(0)
        .into_iter()
        .filter(|e| e.kind == EventKind::Refused)
        .map(|e| json!({ "target": e.target, "reason": e.reason }))
        .collect();

    let mut result = json!({
        "task_id": cfg.task_id,
        "kind": match cfg.target { Target::Search { .. } => "search", Target::Page { .. } => "url" },
        "requested_url": url.as_str(),
        "final_url": final_url,
        "title": facts["title"],
        "http_status": facts["timing"]["responseStatus"],
        "timings": http_timings(&facts["timing"]),
        "agent_timings_ms": {
            "browser_start": launch_ms,
            "navigate": navigate_ms,
            "capture": capture_ms,
        },
        "viewport": { "width": cfg.options.viewport.width, "height": cfg.options.viewport.height },
        "screenshot": shot,
        "dialogs": facts["dialogs"],
        "blocked_requests": blocked,
        "browser_version": browser.version,
        "agent_version": env!("CARGO_PKG_VERSION"),
        "captured_at": crate::log::now_rfc3339(),
    });
    if let Target::Search { query, .. } = &cfg.target {
        result["query"] = json!(query);
    }
    if let Some(results) = results {
        result["results"] = json!(results);
    }
    ctx.artifacts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .result = Some(result);
    drop(browser);
    Ok(())
}

/// Turns how the navigation ended into success or the error a client can act on. Refusals and
/// unreachable servers are told by the guard, which saw the connection; other failures by
/// chromedriver, which reports Chromium's net error (`net::ERR_TOO_MANY_REDIRECTS`, ...).
fn check_navigation(
    ctx: &Ctx,
    mark: usize,
    nav: Result<(), CmdError>,
    final_url: Option<&url::Url>,
) -> Result<(), AgentError> {
    let events = ctx.guard.events_since(mark);
    let authority = final_url.map(|u| {
        format!(
            "{}:{}",
            u.host_str().unwrap_or_default(),
            u.port_or_known_default().unwrap_or(0)
        )
    });
    let for_document = |kind: EventKind| {
        events
            .iter()
            .find(|e| e.kind == kind && Some(&e.target) == authority.as_ref())
            .or_else(|| {
                if nav.is_err() {
                    events.iter().find(|e| e.kind == kind)
                } else {
                    None
                }
            })
            .cloned()
    };
    if let Some(e) = for_document(EventKind::Refused) {
        return Err(AgentError::EgressRefused {
            target: e.target,
            reason: e.reason,
        });
    }
    if let Some(e) = for_document(EventKind::Unreachable) {
        return Err(AgentError::Unreachable {
            target: e.target,
            reason: e.reason,
        });
    }
    match nav {
        Ok(()) => Ok(()),
        Err(e) if e.is_timeout() => Err(ctx.deadline_error()),
        Err(CmdError::Standard(wd)) => Err(AgentError::Navigation(
            wd.message.lines().next().unwrap_or_default().to_string(),
        )),
        Err(e) => Err(AgentError::Navigation(e.to_string())),
    }
}

async fn script(ctx: &Ctx, browser: &Browser, source: &str) -> Result<Value, AgentError> {
    timeout_at(
        ctx.step_deadline(STEP_CAP),
        browser.client.execute(source, vec![]),
    )
    .await
    .map_err(|_| ctx.deadline_error())?
    .map_err(|e| AgentError::Capture(format!("reading the page: {e}")))
}

const FACTS_SCRIPT: &str = r#"
const nav = performance.getEntriesByType('navigation')[0];
const code = document.querySelector('.error-code');
return {
  href: location.href,
  error_code: code ? code.textContent : null,
  title: document.title,
  timing: nav ? nav.toJSON() : null,
  dialogs: window.__agentDialogs ? Array.from(window.__agentDialogs) : [],
};"#;

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

async fn screenshot(ctx: &Ctx, browser: &Browser) -> Result<(Vec<u8>, Value), AgentError> {
    let viewport = ctx.config.options.viewport;
    let cdp = |cmd, params| async move {
        timeout_at(ctx.step_deadline(STEP_CAP), browser.cdp(cmd, params))
            .await
            .map_err(|_| ctx.deadline_error())?
            .map_err(|e| AgentError::Capture(format!("{cmd}: {e}")))
    };
    let mut truncated = false;
    let params = if ctx.config.options.full_page {
        let metrics = cdp("Page.getLayoutMetrics", json!({})).await?;
        let content = &metrics["cssContentSize"];
        let height = content["height"].as_f64().unwrap_or(0.0).ceil() as u32;
        let height = height.max(viewport.height);
        truncated = height > MAX_FULL_PAGE_HEIGHT;
        json!({
            "format": "png",
            "captureBeyondViewport": true,
            "clip": { "x": 0, "y": 0, "width": viewport.width, "height": height.min(MAX_FULL_PAGE_HEIGHT), "scale": 1 },
        })
    } else {
        json!({ "format": "png" })
    };
    let shot = cdp("Page.captureScreenshot", params).await?;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap_or_default())
        .map_err(|e| AgentError::Capture(format!("the screenshot is not base64: {e}")))?;
    let (width, height) =
        png_size(&png).ok_or_else(|| AgentError::Capture("the screenshot is not a PNG".into()))?;
    ctx.log.info(
        "screenshot taken",
        json!({ "width": width, "height": height, "bytes": png.len() }),
    );
    Ok((
        png,
        json!({ "width": width, "height": height, "full_page": ctx.config.options.full_page, "truncated": truncated }),
    ))
}

/// Width and height from a PNG's IHDR chunk.
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if png.len() < 24 || !png.starts_with(SIGNATURE) || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&png[16..20]), be(&png[20..24])))
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

    #[test]
    fn png_size_reads_ihdr() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&1280u32.to_be_bytes());
        png.extend_from_slice(&800u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((1280, 800)));
        assert_eq!(png_size(b"GIF89a"), None);
    }
}
