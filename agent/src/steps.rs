//! A job's script (`names::step`): each step in order, each within its own cap and the job's
//! deadline, recorded (index, action, ok, milliseconds, error) for `result.json`. The first step
//! that fails ends the script with its error; the job then fails with it and the step's index.

use crate::browser::Browser;
use crate::error::AgentError;
use crate::page::{navigate, screenshot, Ctx, STEP_CAP};
use base64::Engine;
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::Locator;
use names::step::Step;
use names::step::ScrollTo;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::time::{sleep, timeout_at, Instant as Deadline};

/// A `goto` may take longer than other steps: a page load.
const GOTO_CAP: Duration = Duration::from_secs(45);
/// Scrolling to the bottom of a long, lazily loading list.
const SCROLL_CAP: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
/// Most values one `extract` step with `all` keeps.
pub const MAX_EXTRACTED: usize = 1000;

pub async fn run(ctx: &Ctx, browser: &Browser) -> Result<(), AgentError> {
    for (i, step) in ctx.config.steps.iter().enumerate() {
        *ctx.step.lock().unwrap_or_else(|e| e.into_inner()) = Some(i);
        let started = Instant::now();
        let cap = cap_of(step);
        let deadline = ctx.step_deadline(cap);
        ctx.log.info("step", json!({ "index": i, "action": step.action() }));
        let outcome = match timeout_at(deadline, one(ctx, browser, step, deadline)).await {
            // A step that waits (for an element, a text, a URL) up to its deadline gives up
            // there on its own; when that was the job's deadline, the job timed out.
            Ok(Err(AgentError::StepTimeout(_) | AgentError::SelectorNotFound(_))) if Deadline::now() + POLL >= ctx.work_deadline => Err(ctx.deadline_error()),
            Ok(r) => r,
            // Whichever came first: the job's deadline, or the step's own cap.
            Err(_) if deadline >= ctx.work_deadline => Err(ctx.deadline_error()),
            Err(_) => Err(AgentError::StepTimeout(format!("`{}` did not finish within its {} ms", step.action(), cap.as_millis()))),
        };
        let ms = started.elapsed().as_millis() as u64;
        let mut record = json!({ "index": i, "action": step.action(), "ok": outcome.is_ok(), "ms": ms });
        if let Err(e) = &outcome {
            record["error"] = json!({ "code": e.code(), "message": e.to_string() });
        }
        ctx.log.info("step done", record.clone());
        ctx.artifacts().steps.push(record);
        outcome?;
    }
    *ctx.step.lock().unwrap_or_else(|e| e.into_inner()) = None;
    Ok(())
}

fn cap_of(step: &Step) -> Duration {
    match step {
        Step::Goto { .. } => GOTO_CAP,
        Step::Scroll { to: Some(ScrollTo::Bottom), .. } => SCROLL_CAP,
        // Its own timeout, and time to notice it passed.
        Step::WaitFor { timeout_ms, .. } => Duration::from_millis(u64::from(timeout_ms.unwrap_or(names::step::DEFAULT_WAIT_TIMEOUT_MS))) + Duration::from_secs(2),
        _ => STEP_CAP,
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> AgentError {
    AgentError::StepFailed(format!("{what}: {e}"))
}

/// The first element `selector` matches, waiting for it to appear until `deadline`.
async fn find(browser: &Browser, selector: &str, deadline: Deadline) -> Result<Element, AgentError> {
    loop {
        match browser.client.find(Locator::Css(selector)).await {
            Ok(el) => return Ok(el),
            Err(e) if e.is_no_such_element() => {}
            Err(e) if e.is_invalid_selector() => return Err(AgentError::StepFailed(format!("`{selector}` is not a valid CSS selector"))),
            Err(e) => return Err(failed(&format!("finding `{selector}`"), e)),
        }
        if Deadline::now() + POLL >= deadline {
            return Err(AgentError::SelectorNotFound(selector.to_string()));
        }
        sleep(POLL).await;
    }
}

/// Runs a script in the page; the value it returns.
async fn js(browser: &Browser, source: &str, args: Vec<Value>) -> Result<Value, AgentError> {
    browser.client.execute(source, args).await.map_err(|e| failed("running the step in the page", e))
}

async fn one(ctx: &Ctx, browser: &Browser, step: &Step, deadline: Deadline) -> Result<(), AgentError> {
    match step {
        Step::Goto { url } => {
            let url = url::Url::parse(url).map_err(|e| AgentError::InvalidJob(format!("`{url}`: {e}")))?;
            navigate(ctx, browser, &url, deadline).await.map(|_| ())
        }
        Step::Click { selector } => {
            let el = find(browser, selector, deadline).await?;
            el.click().await.map_err(|e| failed(&format!("clicking `{selector}`"), e))?;
            // A form the click submits navigates from a task it queued: wait for it to start
            // (and load), or the next step, or the capture, sees the page before.
            let _ = timeout_at(deadline, browser.after_input(false)).await;
            Ok(())
        }
        Step::Type { selector, text, secret } => {
            let value = match (text, secret) {
                (Some(t), _) => t.as_str(),
                (None, Some(name)) => ctx
                    .secrets
                    .get(name)
                    .map(String::as_str)
                    .ok_or_else(|| AgentError::StepFailed(format!("the secret `{name}` was not handed to the job")))?,
                (None, None) => return Err(AgentError::InvalidJob("a `type` step without text".into())),
            };
            let el = find(browser, selector, deadline).await?;
            // The error says where, never what was typed.
            el.send_keys(value).await.map_err(|e| AgentError::StepFailed(format!("typing into `{selector}` failed ({})", short(&e))))
        }
        Step::Press { key } => {
            let keys = key_text(key);
            let el = browser.client.active_element().await.map_err(|e| failed("finding the focused element", e))?;
            el.send_keys(&keys).await.map_err(|e| failed(&format!("pressing {key}"), e))
        }
        Step::Select { selector, value } => {
            let el = find(browser, selector, deadline).await?;
            el.select_by_value(value).await.map_err(|e| {
                if e.is_no_such_element() {
                    AgentError::StepFailed(format!("`{selector}` has no option with the value `{value}`"))
                } else {
                    failed(&format!("choosing in `{selector}`"), e)
                }
            })
        }
        Step::WaitFor { selector, text, url, timeout_ms } => {
            let ms = timeout_ms.unwrap_or(names::step::DEFAULT_WAIT_TIMEOUT_MS);
            let until = (Deadline::now() + Duration::from_millis(ms.into())).min(deadline);
            wait_for(browser, selector.as_deref(), text.as_deref(), url.as_deref(), ms, until).await
        }
        Step::Scroll { to: Some(ScrollTo::Bottom), .. } => scroll_to_bottom(browser, deadline).await,
        Step::Scroll { selector: Some(selector), .. } => {
            let el = find(browser, selector, deadline).await?;
            js(browser, "arguments[0].scrollIntoView({block: 'center'}); return true;", vec![element_arg(&el)?]).await.map(|_| ())
        }
        Step::Scroll { .. } => Err(AgentError::InvalidJob("a `scroll` step needs `to` or `selector`".into())),
        Step::Screenshot { full_page, selector, .. } => {
            let png = match selector {
                Some(selector) => {
                    let el = find(browser, selector, deadline).await?;
                    js(browser, "arguments[0].scrollIntoView({block: 'center'}); return true;", vec![element_arg(&el)?]).await?;
                    el.screenshot().await.map_err(|e| AgentError::Capture(format!("the screenshot of `{selector}`: {}", short(&e))))?
                }
                None => screenshot(ctx, browser, full_page.unwrap_or(false)).await?.0,
            };
            store_file(ctx, step, png)
        }
        Step::Extract { name, selector, attribute, all } => {
            let got = js(browser, EXTRACT_SCRIPT, vec![json!(selector), json!(attribute), json!(all.unwrap_or(false)), json!(MAX_EXTRACTED)]).await?;
            if let Some(e) = got["invalid"].as_str() {
                return Err(AgentError::StepFailed(format!("`{selector}` is not a valid CSS selector ({e})")));
            }
            let values = got["values"].as_array().cloned().unwrap_or_default();
            let value = if all.unwrap_or(false) {
                Value::Array(values)
            } else {
                values.into_iter().next().ok_or_else(|| AgentError::SelectorNotFound(selector.clone()))?
            };
            ctx.artifacts().extracted.insert(name.clone(), value);
            Ok(())
        }
        Step::Pdf { .. } => {
            let printed = browser
                .cdp("Page.printToPDF", json!({ "printBackground": true, "preferCSSPageSize": true }))
                .await
                .map_err(|e| AgentError::Capture(format!("printing the page: {}", short(&e))))?;
            let pdf = base64::engine::general_purpose::STANDARD
                .decode(printed["data"].as_str().unwrap_or_default())
                .map_err(|e| AgentError::Capture(format!("the PDF is not base64: {e}")))?;
            if !pdf.starts_with(b"%PDF") {
                return Err(AgentError::Capture("Chromium printed something that is not a PDF".into()));
            }
            store_file(ctx, step, pdf)
        }
        Step::Assert { selector, text } => {
            let found = js(browser, ASSERT_SCRIPT, vec![json!(selector), json!(text)]).await?;
            if let Some(e) = found["invalid"].as_str() {
                return Err(AgentError::StepFailed(format!("`{}` is not a valid CSS selector ({e})", selector.as_deref().unwrap_or_default())));
            }
            if found["ok"] == true {
                return Ok(());
            }
            Err(AgentError::AssertionFailed(match (selector, text) {
                (Some(s), _) => format!("no element matches `{s}`"),
                (None, Some(t)) => format!("the page does not contain the text \"{}\"", clip(t, 200)),
                (None, None) => "nothing to check".into(),
            }))
        }
    }
}

/// Polls the condition until `until`: a visible element, a text in the page, or a URL.
async fn wait_for(browser: &Browser, selector: Option<&str>, text: Option<&str>, url: Option<&str>, ms: u32, until: Deadline) -> Result<(), AgentError> {
    let mut present = false;
    loop {
        let met = match (selector, text, url) {
            (Some(s), _, _) => match browser.client.find(Locator::Css(s)).await {
                Ok(el) => {
                    present = true;
                    el.is_displayed().await.unwrap_or(false)
                }
                Err(e) if e.is_no_such_element() => false,
                Err(e) if e.is_invalid_selector() => return Err(AgentError::StepFailed(format!("`{s}` is not a valid CSS selector"))),
                Err(e) => return Err(failed(&format!("finding `{s}`"), e)),
            },
            (None, Some(t), _) => js(browser, "return !!document.body && document.body.innerText.includes(arguments[0]);", vec![json!(t)]).await? == true,
            (None, None, Some(u)) => browser.client.current_url().await.map(|c| c.as_str().contains(u)).unwrap_or(false),
            (None, None, None) => return Err(AgentError::InvalidJob("a `wait_for` step without a condition".into())),
        };
        if met {
            return Ok(());
        }
        if Deadline::now() + POLL >= until {
            return Err(match (selector, text, url) {
                (Some(s), _, _) if !present => AgentError::SelectorNotFound(s.to_string()),
                (Some(s), _, _) => AgentError::StepTimeout(format!("`{s}` did not become visible within {ms} ms")),
                (None, Some(t), _) => AgentError::StepTimeout(format!("the text \"{}\" did not appear within {ms} ms", clip(t, 200))),
                (_, _, u) => AgentError::StepTimeout(format!("the URL did not come to contain \"{}\" within {ms} ms", u.unwrap_or_default())),
            });
        }
        sleep(POLL).await;
    }
}

/// A viewport at a time, so lazily loading content comes in, until the page stops growing at its
/// bottom (or the step's cap).
async fn scroll_to_bottom(browser: &Browser, deadline: Deadline) -> Result<(), AgentError> {
    let mut still = 0;
    let mut last_height = -1.0;
    while Deadline::now() + Duration::from_millis(300) < deadline {
        let v = js(
            browser,
            "window.scrollBy(0, window.innerHeight); const e = document.scrollingElement || document.documentElement; return [window.scrollY + window.innerHeight, e.scrollHeight];",
            vec![],
        )
        .await?;
        let (at, height) = (v[0].as_f64().unwrap_or(0.0), v[1].as_f64().unwrap_or(0.0));
        if at + 1.0 >= height && height == last_height {
            still += 1;
            // At the bottom and no longer growing: twice, a little apart.
            if still >= 2 {
                return Ok(());
            }
        } else {
            still = 0;
        }
        last_height = height;
        sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

fn element_arg(el: &Element) -> Result<Value, AgentError> {
    serde_json::to_value(el).map_err(|e| AgentError::Internal(format!("an element as a script argument: {e}")))
}

fn store_file(ctx: &Ctx, step: &Step, bytes: Vec<u8>) -> Result<(), AgentError> {
    let file = step.file().ok_or_else(|| AgentError::Internal("a step without a file stored one".into()))?;
    ctx.log.info("file captured", json!({ "file": file.path, "bytes": bytes.len() }));
    ctx.artifacts().files.push((file.path, file.content_type, bytes));
    Ok(())
}

/// The WebDriver text of a key name (`Enter` -> U+E007), or the character itself.
fn key_text(key: &str) -> String {
    let k = match key {
        "Enter" => Key::Enter,
        "Tab" => Key::Tab,
        "Escape" => Key::Escape,
        "Backspace" => Key::Backspace,
        "Delete" => Key::Delete,
        "Space" => Key::Space,
        "ArrowUp" => Key::Up,
        "ArrowDown" => Key::Down,
        "ArrowLeft" => Key::Left,
        "ArrowRight" => Key::Right,
        "Home" => Key::Home,
        "End" => Key::End,
        "PageUp" => Key::PageUp,
        "PageDown" => Key::PageDown,
        other => return other.to_string(),
    };
    char::from(k).to_string()
}

fn short(e: &fantoccini::error::CmdError) -> String {
    e.to_string().lines().next().unwrap_or_default().chars().take(300).collect()
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

/// `extract`: the text (or attribute) of the first match, or of every match (at most a cap).
const EXTRACT_SCRIPT: &str = r#"
const [selector, attribute, all, max] = arguments;
let els;
try { els = Array.from(document.querySelectorAll(selector)); } catch (e) { return { invalid: String(e.message) }; }
const value = (e) => attribute ? e.getAttribute(attribute) : (e.innerText ?? e.textContent ?? '').trim();
return { count: els.length, values: (all ? els.slice(0, max) : els.slice(0, 1)).map(value) };"#;

/// `assert`: an element, or a text in the page's visible text.
const ASSERT_SCRIPT: &str = r#"
const [selector, text] = arguments;
if (selector) {
  try { return { ok: document.querySelector(selector) !== null }; } catch (e) { return { invalid: String(e.message) }; }
}
return { ok: !!document.body && document.body.innerText.includes(text) };"#;

#[cfg(test)]
mod tests {
    #[test]
    fn key_names_become_webdriver_keys() {
        assert_eq!(super::key_text("Enter"), "\u{e007}");
        assert_eq!(super::key_text("Tab"), "\u{e004}");
        assert_eq!(super::key_text("a"), "a");
        for k in names::step::KEYS {
            assert_ne!(super::key_text(k), *k, "{k} has no WebDriver key");
        }
    }
}
