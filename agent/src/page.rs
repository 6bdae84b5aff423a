//! What a job does to its page, whichever part of it runs: the job's context (its
//! configuration, log, guard, deadlines and what it has produced), navigation and how it
//! ended, scripts, and screenshots. The job's run (`job`) and its steps (`steps`) both use it.

use crate::browser::Browser;
use crate::config::Config;
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

pub(crate) const STEP_CAP: Duration = Duration::from_millis(names::step::STEP_CAP_MS as u64);

/// What a job has produced so far. Filled step by step, so a job stopped half-way can still
/// upload what it has.
#[derive(Default)]
pub struct Artifacts {
    pub screenshot: Option<Vec<u8>>,
    pub result: Option<Value>,
    pub html: Option<String>,
    /// The steps' files: (path below the job's prefix, content type, bytes).
    pub files: Vec<(String, &'static str, Vec<u8>)>,
    /// One record per step run: index, action, ok, ms, error.
    pub steps: Vec<Value>,
    /// The `extract` steps' values by name.
    pub extracted: serde_json::Map<String, Value>,
    /// A computer-use job's answer, usage and trajectory (`computer::job`).
    pub computer: Option<Value>,
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
    /// The step running (its index), while the steps run.
    pub step: Mutex<Option<usize>>,
    pub artifacts: Mutex<Artifacts>,
    /// The tenant secrets the job's steps may type, by name.
    pub secrets: std::collections::BTreeMap<String, String>,
    /// A warm slot's browser, started before the job arrived (behind this job's guard, in its
    /// run directory); the job takes it instead of launching one.
    pub warm: Mutex<Option<Browser>>,
}

impl Ctx {
    pub fn stage(&self) -> Stage {
        *self.stage.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn current_step(&self) -> Option<usize> {
        *self.step.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn enter(&self, stage: Stage) {
        *self.stage.lock().unwrap_or_else(|e| e.into_inner()) = stage;
        self.log.info("stage", json!({ "stage": stage.as_str() }));
    }

    /// The deadline of a step: its own cap or the job's, whichever comes first.
    pub(crate) fn step_deadline(&self, cap: Duration) -> tokio::time::Instant {
        (tokio::time::Instant::now() + cap).min(self.work_deadline)
    }

    pub(crate) fn deadline_error(&self) -> AgentError {
        AgentError::Deadline(self.config.options.timeout_seconds)
    }

    /// Why a browser call given until `until` (from [`Ctx::step_deadline`]) did not answer: the
    /// job's deadline when that was the limit, otherwise a capture error naming `what` and the
    /// step cap (a page that wedges its browser is not a job that ran out of time).
    pub(crate) fn silent(&self, until: tokio::time::Instant, what: &str) -> AgentError {
        if until >= self.work_deadline {
            self.deadline_error()
        } else {
            AgentError::Capture(format!("the browser did not answer {what} within {} s", STEP_CAP.as_secs()))
        }
    }

    pub(crate) fn artifacts(&self) -> std::sync::MutexGuard<'_, Artifacts> {
        self.artifacts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Navigates to `url` before `deadline`, and checks how it ended (the guard's refusals, Chromium's
/// own error page). The final URL.
pub(crate) async fn navigate(ctx: &Ctx, browser: &Browser, url: &url::Url, deadline: tokio::time::Instant) -> Result<String, AgentError> {
    let page_load = deadline.saturating_duration_since(tokio::time::Instant::now());
    let timeouts = fantoccini::wd::TimeoutConfiguration::new(Some(STEP_CAP), Some(page_load), Some(Duration::ZERO));
    browser
        .client
        .update_timeouts(timeouts)
        .await
        .map_err(|e| AgentError::BrowserStart(format!("setting timeouts: {e}")))?;
    let nav_started = Instant::now();
    let mark = ctx.guard.mark();
    ctx.log.info("navigating", json!({ "url": url.as_str() }));
    let nav = timeout_at(deadline, browser.client.goto(url.as_str()))
        .await
        .map_err(|_| ctx.deadline_error())?;
    let final_url = timeout_at(ctx.step_deadline(STEP_CAP), browser.client.current_url())
        .await
        .ok()
        .and_then(Result::ok);
    check_navigation(ctx, mark, nav, final_url.as_ref())?;
    let facts = script(ctx, browser, FACTS_SCRIPT).await?;
    // Chromium answers some failures (a redirect loop, say) with its own error page and
    // chromedriver reports the navigation as done.
    if facts["href"].as_str().is_some_and(|h| h.starts_with("chrome-error:")) {
        let mut code = facts["error_code"].as_str().map(str::trim).unwrap_or_default().to_string();
        if code.is_empty() {
            // chrome-headless-shell's error page is blank: navigating once more through CDP
            // returns the net error as `errorText`.
            let retry = timeout_at(ctx.step_deadline(STEP_CAP), browser.cdp("Page.navigate", json!({ "url": url.as_str() }))).await;
            code = match retry {
                Ok(Ok(v)) => v["errorText"].as_str().unwrap_or_default().to_string(),
                _ => String::new(),
            };
        }
        let code = if code.is_empty() { "unknown network error".to_string() } else { code };
        return Err(AgentError::Navigation(format!("net::{}", code.trim_start_matches("net::"))));
    }
    let final_url = final_url.map(|u| u.to_string()).unwrap_or_else(|| url.to_string());
    ctx.log.info("page loaded", json!({ "final_url": final_url, "ms": nav_started.elapsed().as_millis() as u64 }));
    Ok(final_url)
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

pub(crate) async fn script(ctx: &Ctx, browser: &Browser, source: &str) -> Result<Value, AgentError> {
    let until = ctx.step_deadline(STEP_CAP);
    timeout_at(until, browser.client.execute(source, vec![]))
        .await
        .map_err(|_| ctx.silent(until, "a script reading the page"))?
    .map_err(|e| AgentError::Capture(format!("reading the page: {e}")))
}

pub(crate) const FACTS_SCRIPT: &str = r#"
const nav = performance.getEntriesByType('navigation')[0];
const code = document.querySelector('.error-code');
return {
  href: location.href,
  error_code: code ? code.textContent : null,
  title: document.title,
  timing: nav ? nav.toJSON() : null,
  dialogs: window.__agentDialogs ? Array.from(window.__agentDialogs) : [],
};"#;

pub(crate) async fn screenshot(ctx: &Ctx, browser: &Browser, full_page: bool) -> Result<(Vec<u8>, Value), AgentError> {
    let viewport = ctx.config.options.viewport;
    let cdp = |cmd, params| async move {
        let until = ctx.step_deadline(STEP_CAP);
        timeout_at(until, browser.cdp(cmd, params))
            .await
            .map_err(|_| ctx.silent(until, cmd))?
            .map_err(|e| AgentError::Capture(format!("{cmd}: {e}")))
    };
    let mut truncated = false;
    let params = if full_page {
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
        json!({ "width": width, "height": height, "full_page": full_page, "truncated": truncated }),
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
    fn png_size_reads_ihdr() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&1280u32.to_be_bytes());
        png.extend_from_slice(&800u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((1280, 800)));
        assert_eq!(png_size(b"GIF89a"), None);
    }
}
