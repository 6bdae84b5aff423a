//! The model's actions, done in the browser through the DevTools protocol (the agent's own
//! connection to the page, [`crate::devtools`]; waits for navigations on WebDriver), and the
//! screenshots it sees: captured at the size [`Scale`] sends, by Chromium itself (a clip with a
//! scale), so no image is decoded or resized in the agent.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use super::action::{Action, Button, Direction};
use super::screen::{Point, Scale};
use crate::browser::Browser;

/// The longest wait for the page to settle after an action.
pub const SETTLE_CAP: Duration = Duration::from_secs(5);

/// Pixels one step of `scroll_amount` scrolls (a mouse wheel's notch).
pub const SCROLL_STEP: f64 = 100.0;

/// `Input.dispatchMouseEvent`'s parameters (`button` "none" for a move).
fn mouse_event(kind: &str, at: Point, button: &str, clicks: u8, modifiers: u32) -> Value {
    let mut p = json!({ "type": kind, "x": at.x, "y": at.y, "modifiers": modifiers });
    if button != "none" {
        p["button"] = json!(button);
        p["clickCount"] = json!(clicks);
    }
    p
}

/// No isolated world yet (CDP's context ids are positive).
const NO_WORLD: i64 = 0;

/// CDP's modifier bits.
const ALT: u32 = 1;
const CTRL: u32 = 2;
const META: u32 = 4;
const SHIFT: u32 = 8;

/// Acts for one job: where the pointer is, the job's secrets for `{{secret:NAME}}`.
pub struct Executor<'a> {
    pub browser: &'a Browser,
    pub scale: Scale,
    secrets: &'a BTreeMap<String, String>,
    pointer: Point,
    /// The agent's isolated world in the page's document (see [`Executor::evaluate`]), until a
    /// navigation ends it.
    world: AtomicI64,
    /// What marks that world as this executor's.
    token: String,
}

/// What an action came to: a line for the model, whether a screenshot of the region (a zoom)
/// replaces the usual one after it, and the element it acted on (a click's, the field typed
/// into) as a CSS selector a script can find it by (`script`).
#[derive(Debug, Default)]
pub struct Done {
    pub text: Option<String>,
    pub zoomed_png_base64: Option<String>,
    pub target: Option<Value>,
}

impl<'a> Executor<'a> {
    pub fn new(browser: &'a Browser, scale: Scale, secrets: &'a BTreeMap<String, String>) -> Executor<'a> {
        Executor { browser, scale, secrets, pointer: Point { x: 0.0, y: 0.0 }, world: AtomicI64::new(NO_WORLD), token: world_token() }
    }

    /// A DevTools command, on the agent's own connection to the page (see [`crate::devtools`]).
    async fn cdp(&self, cmd: &'static str, params: Value) -> Result<Value, String> {
        self.browser.devtools().await?.call(cmd, params).await
    }

    async fn mouse(&self, kind: &str, at: Point, button: &str, clicks: u8, modifiers: u32) -> Result<(), String> {
        self.cdp("Input.dispatchMouseEvent", mouse_event(kind, at, button, clicks, modifiers)).await.map(drop)
    }

    /// Does `action`, then waits for the page to settle (see [`Executor::settle`]). An error is
    /// the model's to read (a key it named that does not exist, a secret the job does not have) or
    /// the browser's.
    pub async fn run(&mut self, action: &Action) -> Result<Done, String> {
        let done = self.act(action).await?;
        if !matches!(action, Action::Screenshot | Action::CursorPosition | Action::Wait { .. } | Action::Zoom { .. } | Action::Move { .. }) {
            self.settle(matches!(action, Action::Scroll { .. })).await;
        }
        Ok(done)
    }

    /// Lets what an action started finish before the model looks again: a click that submits a
    /// form navigates a moment later, from a task the click queued, and a screenshot taken at once
    /// shows the page before. A WebDriver call whose script answers from a task queued after the
    /// action's (a zero timeout: the page's scheduler runs tasks of one priority in the order they
    /// were queued) lets those run; chromedriver then holds its answer and every command after it
    /// while a navigation they started is pending, and the document must be loaded; all within
    /// [`SETTLE_CAP`]. A wheel's scroll is applied at the next animation frame (and the page's
    /// scroll handlers run then), so after a `scroll` (`frame`) the script answers from that
    /// frame's callback instead; other actions do not wait for a frame (about 10 ms a turn): the
    /// screenshot that follows is taken from a new one.
    pub async fn settle(&self, frame: bool) {
        let until = tokio::time::Instant::now() + SETTLE_CAP;
        if let Ok(Some(state)) = tokio::time::timeout_at(until, self.browser.after_input(frame)).await {
            if state == "complete" {
                return;
            }
        }
        while tokio::time::Instant::now() < until {
            let ready = tokio::time::timeout_at(until, self.browser.client.execute("return document.readyState", vec![])).await;
            match ready {
                Ok(Ok(state)) if state == "complete" => return,
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(_) => return,
            }
        }
    }

    async fn act(&mut self, action: &Action) -> Result<Done, String> {
        match action {
            Action::Screenshot => Ok(Done::default()),
            Action::CursorPosition => {
                let (x, y) = self.scale.to_image(self.pointer);
                Ok(Done { text: Some(format!("X={x},Y={y}")), ..Done::default() })
            }
            Action::Click { button, count, at, hold } => {
                let modifiers = hold.as_deref().map(modifiers_of).transpose()?.unwrap_or(0);
                let button = match button {
                    Button::Left => "left",
                    Button::Right => "right",
                    Button::Middle => "middle",
                };
                // The move and the first press go into the page's input queue together, as
                // DevTools clients send a click: the press has the move dispatched at once, where
                // a move alone waits for the next animation frame (about 10 ms).
                let to = at.unwrap_or(self.pointer);
                let devtools = self.browser.devtools().await?;
                let moved = match *at {
                    Some(at) => Some(devtools.send("Input.dispatchMouseEvent", mouse_event("mouseMoved", at, "none", 0, 0)).await?),
                    None => None,
                };
                let pressed = devtools.send("Input.dispatchMouseEvent", mouse_event("mousePressed", to, button, 1, modifiers)).await?;
                if let Some(moved) = moved {
                    moved.answer().await?;
                }
                self.pointer = to;
                pressed.answer().await?;
                // What the press landed on, which the click is on: found before the release (the
                // click may navigate away) and after the move (a hover may have shown it).
                let target = self.target(Some(to)).await;
                self.mouse("mouseReleased", to, button, 1, modifiers).await?;
                for n in 2..=*count {
                    self.mouse("mousePressed", to, button, n, modifiers).await?;
                    self.mouse("mouseReleased", to, button, n, modifiers).await?;
                }
                Ok(Done { target, ..Done::default() })
            }
            Action::MouseDown => self.mouse("mousePressed", self.pointer, "left", 1, 0).await.map(|()| Done::default()),
            Action::MouseUp => self.mouse("mouseReleased", self.pointer, "left", 1, 0).await.map(|()| Done::default()),
            Action::Move { to } => self.move_to(Some(*to)).await.map(|_| Done::default()),
            Action::Drag { from, to } => {
                let from = self.move_to(*from).await?;
                self.mouse("mousePressed", from, "left", 1, 0).await?;
                self.move_to(Some(*to)).await?;
                self.mouse("mouseReleased", *to, "left", 1, 0).await?;
                Ok(Done::default())
            }
            Action::Scroll { at, direction, amount, hold } => {
                let modifiers = hold.as_deref().map(modifiers_of).transpose()?.unwrap_or(0);
                let at = self.move_to(*at).await?;
                let d = f64::from(*amount) * SCROLL_STEP;
                let (dx, dy) = match direction {
                    Direction::Up => (0.0, -d),
                    Direction::Down => (0.0, d),
                    Direction::Left => (-d, 0.0),
                    Direction::Right => (d, 0.0),
                };
                self.cdp("Input.dispatchMouseEvent", json!({ "type": "mouseWheel", "x": at.x, "y": at.y, "deltaX": dx, "deltaY": dy, "modifiers": modifiers }))
                    .await?;
                Ok(Done::default())
            }
            Action::Type { text } => {
                let text = with_secrets(text, self.secrets)?;
                let target = self.target(None).await;
                self.cdp("Input.insertText", json!({ "text": text })).await.map(|_| Done { target, ..Done::default() })
            }
            Action::Key { keys } => {
                let (modifiers, key) = combination(keys)?;
                self.key("rawKeyDown", &key, modifiers).await?;
                self.key("keyUp", &key, modifiers).await?;
                Ok(Done::default())
            }
            Action::HoldKey { key, seconds } => {
                let (modifiers, key) = combination(key)?;
                self.key("rawKeyDown", &key, modifiers).await?;
                tokio::time::sleep(Duration::from_secs_f64(*seconds)).await;
                self.key("keyUp", &key, modifiers).await?;
                Ok(Done::default())
            }
            Action::Wait { seconds } => {
                tokio::time::sleep(Duration::from_secs_f64(*seconds)).await;
                Ok(Done::default())
            }
            Action::Zoom { from, to } => {
                let region = Scale::for_viewport((to.x - from.x).round().max(1.0) as u32, (to.y - from.y).round().max(1.0) as u32);
                let png = self.capture(*from, region).await?;
                Ok(Done { zoomed_png_base64: Some(png), ..Done::default() })
            }
        }
    }

    /// The element at `at` (the focused one when none) as [`TARGET`] describes it; None when
    /// there is none or the page would not say.
    async fn target(&self, at: Option<Point>) -> Option<Value> {
        let (x, y) = match at {
            Some(p) => (json!(p.x), json!(p.y)),
            None => (Value::Null, Value::Null),
        };
        let found = tokio::time::timeout(SETTLE_CAP, self.evaluate(&format!("({TARGET})({x}, {y})"))).await.ok()?.ok()?;
        found.is_object().then_some(found)
    }

    /// `expression`'s value, evaluated in the agent's own isolated world of the page: it shares
    /// the DOM with the page's scripts but not their JavaScript, so a page can neither watch what
    /// the agent looks for nor change what it finds (by redefining `elementFromPoint`, say). The
    /// world is made once per document and marked with this executor's token: a navigation ends
    /// it, and a context id is only unique within a renderer process, so a call that finds no
    /// world by its id, or one without the token, makes a new world and tries again.
    async fn evaluate(&self, expression: &str) -> Result<Value, String> {
        let token = &self.token;
        let marked = format!("globalThis.agentWorld === {token:?} ? [({expression})] : null");
        for _ in 0..2 {
            let context = match self.world.load(Ordering::Relaxed) {
                NO_WORLD => {
                    let tree = self.cdp("Page.getFrameTree", json!({})).await?;
                    let frame = tree["frameTree"]["frame"]["id"].as_str().ok_or("Page.getFrameTree gave no frame")?.to_owned();
                    let world = self.cdp("Page.createIsolatedWorld", json!({ "frameId": frame, "worldName": "agent" })).await?;
                    let context = world["executionContextId"].as_i64().ok_or("Page.createIsolatedWorld gave no context")?;
                    let mark = format!("globalThis.agentWorld = {token:?}");
                    self.cdp("Runtime.evaluate", json!({ "expression": mark, "contextId": context })).await?;
                    self.world.store(context, Ordering::Relaxed);
                    context
                }
                context => context,
            };
            match self.cdp("Runtime.evaluate", json!({ "expression": marked, "contextId": context, "returnByValue": true })).await {
                Ok(out) if out.get("exceptionDetails").is_some() => return Err(format!("the page's script failed: {}", out["exceptionDetails"]["text"])),
                Ok(out) => match &out["result"]["value"] {
                    Value::Array(v) => return Ok(v.first().cloned().unwrap_or(Value::Null)),
                    // Another context now has the id: the world went with its document.
                    _ => self.world.store(NO_WORLD, Ordering::Relaxed),
                },
                Err(_) => self.world.store(NO_WORLD, Ordering::Relaxed),
            }
        }
        Err("the page has no document to evaluate in".into())
    }

    async fn move_to(&mut self, at: Option<Point>) -> Result<Point, String> {
        let Some(at) = at else { return Ok(self.pointer) };
        self.mouse("mouseMoved", at, "none", 0, 0).await?;
        self.pointer = at;
        Ok(at)
    }

    async fn key(&self, kind: &str, key: &Key, modifiers: u32) -> Result<(), String> {
        let mut p = json!({ "type": kind, "key": key.key, "code": key.code, "windowsVirtualKeyCode": key.code_number, "modifiers": modifiers });
        // A key that types (with no modifier but shift) sends its text with the key down.
        if kind == "rawKeyDown" && modifiers & !SHIFT == 0 {
            if let Some(text) = &key.text {
                p["type"] = json!("keyDown");
                p["text"] = json!(text);
            }
        }
        self.cdp("Input.dispatchKeyEvent", p).await.map(drop)
    }

    /// The screenshot the model sees: the viewport at the scale's sent size, a base64 PNG, with
    /// every secret's value on screen painted over. Encoded for speed (`optimizeForSpeed`: about
    /// 15 ms less a turn at 1280x800, the PNG about a third larger; the model's tokens depend on
    /// its size in pixels, not in bytes).
    pub async fn screenshot(&self) -> Result<String, String> {
        self.capture(Point { x: 0.0, y: 0.0 }, self.scale).await
    }

    /// Covers each place the page shows a secret's value (text, and fields that are not password
    /// fields, which the browser masks itself) with a black box, until [`Executor::unmask`]. The
    /// search runs in an isolated world of its own: the page's scripts share the DOM but not its
    /// JavaScript, so a page cannot watch the values being looked for. Returns the boxes drawn.
    async fn mask(&self) -> Result<Option<u64>, String> {
        let values: Vec<&String> = self.secrets.values().filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            return Ok(None);
        }
        let expression = format!("({MASK})({})", serde_json::to_string(&values).map_err(|e| e.to_string())?);
        let boxes = self.evaluate(&expression).await.map_err(|e| format!("the secret mask failed: {e}"))?;
        let boxes = boxes.as_u64().ok_or("the secret mask gave no count")?;
        Ok(Some(boxes))
    }

    async fn unmask(&self) -> Result<(), String> {
        self.evaluate("document.querySelectorAll('[data-agent-mask]').forEach((e) => e.remove())").await.map(drop)
    }

    /// The region of the viewport from `origin` of `region.viewport`'s size, at `region.sent`'s.
    async fn capture(&self, origin: Point, region: Scale) -> Result<String, String> {
        let masked = self.mask().await?;
        let shot = self.capture_as_is(origin, region).await;
        if masked.is_some() {
            self.unmask().await?;
        }
        shot
    }

    async fn capture_as_is(&self, origin: Point, region: Scale) -> Result<String, String> {
        // The whole viewport as it is: no clip to place.
        if region.is_identity() && origin == (Point { x: 0.0, y: 0.0 }) && region.viewport == self.scale.viewport {
            let shot = self.cdp("Page.captureScreenshot", json!({ "format": "png", "optimizeForSpeed": true })).await?;
            return shot["data"].as_str().map(str::to_owned).ok_or_else(|| "Page.captureScreenshot gave no data".into());
        }
        // A clip is in the page's coordinates: the viewport's origin is where the page is scrolled.
        let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await?;
        let page = &metrics["cssVisualViewport"];
        let (page_x, page_y) = (page["pageX"].as_f64().unwrap_or(0.0), page["pageY"].as_f64().unwrap_or(0.0));
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "optimizeForSpeed": true,
                    "clip": {
                        "x": page_x + origin.x,
                        "y": page_y + origin.y,
                        "width": region.viewport.0,
                        "height": region.viewport.1,
                        "scale": f64::from(region.sent.0) / f64::from(region.viewport.0),
                    },
                }),
            )
            .await?;
        shot["data"].as_str().map(str::to_owned).ok_or_else(|| "Page.captureScreenshot gave no data".into())
    }
}

/// A token no page can guess, from the process's random hash keys.
fn world_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    format!("{:016x}", h.finish())
}

/// The element at the viewport's point (x, y), or the focused one when x is null, as the control a
/// person would say they used (the nearest link, button, label or field around what was hit): a
/// CSS selector that finds it alone in the page, by the most lasting handle it has (its id unless
/// the id looks generated, a test id, its name, the field a label is for, its ARIA label, a
/// link's address), `robust`; else its position in the document (`robust: false`).
const TARGET: &str = r#"(x, y) => {
  let el = x === null ? document.activeElement : document.elementFromPoint(x, y);
  if (!el || el === document.body || el === document.documentElement) return null;
  el = el.closest('a, button, label, input, select, textarea, summary, [role=button], [role=link], [onclick]') || el;
  const tag = el.tagName.toLowerCase();
  const quote = (v) => '"' + v.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
  const only = (sel) => { try { const all = document.querySelectorAll(sel); return all.length === 1 && all[0] === el; } catch (e) { return false; } };
  const tries = [];
  if (el.id && !/[0-9]{3,}|^[0-9a-f-]{16,}$|^:/i.test(el.id)) tries.push(['id', '#' + CSS.escape(el.id)]);
  for (const a of ['data-testid', 'data-test-id', 'data-test', 'data-qa', 'data-cy']) if (el.getAttribute(a)) tries.push(['test id', `[${a}=${quote(el.getAttribute(a))}]`]);
  if (el.getAttribute('name')) tries.push(['name', `${tag}[name=${quote(el.getAttribute('name'))}]`]);
  if (tag === 'label' && el.htmlFor) tries.push(['label', `label[for=${quote(el.htmlFor)}]`]);
  if (el.getAttribute('aria-label')) tries.push(['aria label', `${tag}[aria-label=${quote(el.getAttribute('aria-label'))}]`]);
  if (tag === 'a' && el.getAttribute('href')) tries.push(['link', `a[href=${quote(el.getAttribute('href'))}]`]);
  for (const [by, selector] of tries) if (only(selector)) return { selector, robust: true, by };
  const path = [];
  for (let e = el; e && e.nodeType === 1 && e !== document.documentElement; e = e.parentElement) {
    if (e !== el && e.id && only('#' + CSS.escape(e.id))) { path.unshift('#' + CSS.escape(e.id)); break; }
    let n = 1;
    for (let s = e.previousElementSibling; s; s = s.previousElementSibling) if (s.tagName === e.tagName) n++;
    path.unshift(`${e.tagName.toLowerCase()}:nth-of-type(${n})`);
  }
  const selector = path.join(' > ');
  return only(selector) ? { selector, robust: false, by: 'position' } : null;
}"#;

/// Draws a black box over each place the page shows one of the values it is given, and returns
/// how many: each occurrence in a text node (its own boxes, through a range), and each field whose
/// value holds one (a password field is masked by the browser already). The boxes are fixed,
/// above everything and take no clicks; they hold no text.
const MASK: &str = r#"(values) => {
  const rects = [];
  const walker = document.createTreeWalker(document.body || document.documentElement, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue;
    for (const v of values) {
      for (let at = text.indexOf(v); at >= 0; at = text.indexOf(v, at + 1)) {
        const range = document.createRange();
        range.setStart(node, at);
        range.setEnd(node, at + v.length);
        rects.push(...range.getClientRects());
      }
    }
  }
  for (const field of document.querySelectorAll('input, textarea')) {
    if (field.type !== 'password' && values.some((v) => field.value.includes(v))) rects.push(field.getBoundingClientRect());
  }
  for (const r of rects) {
    const box = document.createElement('div');
    box.setAttribute('data-agent-mask', '');
    box.style.cssText = `position:fixed;left:${r.left - 2}px;top:${r.top - 2}px;width:${r.width + 4}px;height:${r.height + 4}px;background:#000;z-index:2147483647;pointer-events:none`;
    document.documentElement.appendChild(box);
  }
  return rects.length;
}"#;

/// `text` with each `{{secret:NAME}}` replaced by the job's secret: the model names secrets, it
/// never sees them.
pub fn with_secrets(text: &str, secrets: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{secret:") {
        let after = &rest[start + "{{secret:".len()..];
        let end = after.find("}}").ok_or("`{{secret:` without its closing `}}`")?;
        let name = &after[..end];
        let value = secrets.get(name).ok_or_else(|| {
            let names: Vec<&str> = secrets.keys().map(String::as_str).collect();
            format!("the job has no secret `{name}` (its secrets: {})", if names.is_empty() { "none".into() } else { names.join(", ") })
        })?;
        out.push_str(&rest[..start]);
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A key as CDP takes it.
#[derive(Debug, PartialEq)]
struct Key {
    key: String,
    code: String,
    code_number: u32,
    text: Option<String>,
}

fn modifiers_of(names: &str) -> Result<u32, String> {
    names.split('+').filter(|n| !n.is_empty()).try_fold(0, |m, n| modifier(n).map(|b| m | b).ok_or_else(|| format!("`{n}` is not a modifier key (ctrl, alt, shift, super)")))
}

fn modifier(name: &str) -> Option<u32> {
    Some(match name.to_ascii_lowercase().as_str() {
        "ctrl" | "control" | "control_l" | "control_r" => CTRL,
        "alt" | "alt_l" | "alt_r" => ALT,
        "shift" | "shift_l" | "shift_r" => SHIFT,
        "super" | "super_l" | "super_r" | "meta" | "cmd" | "win" => META,
        _ => return None,
    })
}

/// An xdotool key combination (`ctrl+shift+Tab`, `Return`, `a`): its modifiers and its key.
fn combination(keys: &str) -> Result<(u32, Key), String> {
    let parts: Vec<&str> = keys.split('+').map(str::trim).collect();
    let (last, mods) = parts.split_last().ok_or("no key")?;
    let modifiers = mods.iter().try_fold(0, |m, n| modifier(n).map(|b| m | b).ok_or_else(|| format!("`{n}` in `{keys}` is not a modifier key")))?;
    // A modifier alone (`shift`) is a key too.
    if let Some(bit) = modifier(last) {
        let (key, code, number) = match bit {
            CTRL => ("Control", "ControlLeft", 17),
            ALT => ("Alt", "AltLeft", 18),
            SHIFT => ("Shift", "ShiftLeft", 16),
            _ => ("Meta", "MetaLeft", 91),
        };
        return Ok((modifiers | bit, Key { key: key.into(), code: code.into(), code_number: number, text: None }));
    }
    let named = |key: &str, code: &str, number: u32, text: Option<&str>| Key { key: key.into(), code: code.into(), code_number: number, text: text.map(str::to_owned) };
    let key = match *last {
        "Return" | "Enter" | "KP_Enter" => named("Enter", "Enter", 13, Some("\r")),
        "Tab" => named("Tab", "Tab", 9, None),
        "BackSpace" | "Backspace" => named("Backspace", "Backspace", 8, None),
        "Escape" | "Esc" => named("Escape", "Escape", 27, None),
        "Delete" => named("Delete", "Delete", 46, None),
        "space" | "Space" => named(" ", "Space", 32, Some(" ")),
        "Home" => named("Home", "Home", 36, None),
        "End" => named("End", "End", 35, None),
        "Page_Up" | "Prior" => named("PageUp", "PageUp", 33, None),
        "Page_Down" | "Next" => named("PageDown", "PageDown", 34, None),
        "Left" => named("ArrowLeft", "ArrowLeft", 37, None),
        "Up" => named("ArrowUp", "ArrowUp", 38, None),
        "Right" => named("ArrowRight", "ArrowRight", 39, None),
        "Down" => named("ArrowDown", "ArrowDown", 40, None),
        k if k.chars().count() == 1 => {
            let c = k.chars().next().unwrap_or(' ');
            let upper = c.to_ascii_uppercase();
            let code = if c.is_ascii_alphabetic() {
                format!("Key{upper}")
            } else if c.is_ascii_digit() {
                format!("Digit{c}")
            } else {
                String::new()
            };
            let text = if modifiers & SHIFT != 0 { upper.to_string() } else { c.to_string() };
            Key { key: text.clone(), code, code_number: u32::from(upper), text: Some(text) }
        }
        k if k.len() > 1 && k.starts_with('F') && k[1..].parse::<u32>().is_ok_and(|n| (1..=12).contains(&n)) => {
            let n: u32 = k[1..].parse().unwrap_or(1);
            named(k, k, 111 + n, None)
        }
        other => return Err(format!("`{other}` is not a key this agent knows (xdotool names: Return, Tab, BackSpace, Escape, Delete, space, Home, End, Page_Up, Page_Down, Left, Up, Right, Down, F1-F12, a character)")),
    };
    Ok((modifiers, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_typed_by_its_name() {
        let secrets = BTreeMap::from([("pw".to_string(), "s3cret".to_string())]);
        assert_eq!(with_secrets("user {{secret:pw}}!", &secrets).unwrap(), "user s3cret!");
        assert_eq!(with_secrets("no secret", &secrets).unwrap(), "no secret");
        assert!(with_secrets("{{secret:other}}", &secrets).unwrap_err().contains("no secret `other` (its secrets: pw)"));
        assert!(with_secrets("{{secret:pw", &secrets).unwrap_err().contains("closing"));
    }

    #[test]
    fn xdotool_key_names_become_cdp_keys() {
        let (m, k) = combination("ctrl+a").unwrap();
        assert_eq!((m, k.key.as_str(), k.code.as_str(), k.code_number), (CTRL, "a", "KeyA", 65));
        let (m, k) = combination("Return").unwrap();
        assert_eq!((m, k.key.as_str(), k.text.as_deref()), (0, "Enter", Some("\r")));
        let (m, k) = combination("shift+Tab").unwrap();
        assert_eq!((m, k.key.as_str()), (SHIFT, "Tab"));
        let (m, k) = combination("shift").unwrap();
        assert_eq!((m, k.key.as_str()), (SHIFT, "Shift"));
        assert_eq!(combination("F5").unwrap().1.code_number, 116);
        assert!(combination("hyper+x").unwrap_err().contains("not a modifier"));
        assert!(combination("Launch_Rockets").unwrap_err().contains("not a key this agent knows"));
        assert_eq!(modifiers_of("ctrl+shift"), Ok(CTRL | SHIFT));
    }
}
