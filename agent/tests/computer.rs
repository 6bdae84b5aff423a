//! Computer-use actions in real Chromium (issue 26): what the model points at in the screenshot
//! it was sent is what the page gets. The viewport is 1920x1080, so screenshots are sent at
//! 1456x819 and every coordinate is scaled: a screenshot captured at the wrong size or place, or a
//! coordinate mapped back wrongly, misses its target here. The page is a `data:` URL, and the
//! browser runs in the loopback-only network namespace (Chromium's own calls home go nowhere).
//!
//! The tests run one at a time: a browser's drop ends every process the test process started.

use std::collections::BTreeMap;

use agent::browser::Browser;
use agent::computer::action::{self, Action};
use agent::computer::execute::Executor;
use agent::computer::messages::Conversation;
use agent::computer::model::{Endpoint, Model};
use agent::computer::models::{self, COMPUTER_20251124};
use agent::computer::run::{run, Budget, Ended, Limits, Prices};
use agent::computer::screen::{Point, Scale};
use base64::Engine;
use serde_json::{json, Value};

#[path = "support/computer.rs"]
mod computer_support;
use computer_support::{browser, isolated, js, open};

const PAGE: &str = r#"<!doctype html><html><body style="margin:0;height:4000px;background:#fff">
<input id="name" style="position:absolute;left:100px;top:100px;width:300px;height:40px;color:#f00;background:#fff">
<div id="note" style="position:absolute;left:600px;top:300px;font:32px sans-serif;color:#f00">key: s3cret</div>
<div id="target" style="position:absolute;left:960px;top:1500px;width:200px;height:100px;background:#f00"
     onclick="document.title = 'clicked at ' + event.clientX + ',' + event.clientY"></div>
</body></html>"#;

/// The RGB of pixel (x, y) of a PNG.
fn pixel(png: &[u8], x: u32, y: u32) -> (u8, u8, u8) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let i = (y as usize * info.width as usize + x as usize) * channels;
    (buf[i], buf[i + 1], buf[i + 2])
}


/// Where the model would point at the middle of `#id`: its box's centre in the screenshot's pixels.
async fn aim(browser: &Browser, scale: &Scale, id: &str) -> (i64, i64) {
    let r = js(browser, &format!("const r = document.getElementById('{id}').getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2];")).await;
    scale.to_image(Point { x: r[0].as_f64().unwrap(), y: r[1].as_f64().unwrap() })
}

#[test]
fn actions_land_where_the_model_pointed_in_the_screenshot_it_was_sent() {
    isolated(|| async {
        let (browser, _guard, scratch) = browser("").await;
        let url = format!("data:text/html;base64,{}", base64::engine::general_purpose::STANDARD.encode(PAGE));
        open(&browser, &url).await;

        let scale = Scale::for_viewport(1920, 1080);
        assert_eq!(scale.sent, (1456, 819));
        let secrets = BTreeMap::from([("pw".to_string(), "s3cret".to_string())]);
        let mut exec = Executor::new(&browser, scale, &secrets);
        let act = |input: Value| action::parse(&input, &COMPUTER_20251124, &scale).unwrap();

        // Click into the field the screenshot shows, type, a secret by its name, a key.
        let (x, y) = aim(&browser, &scale, "name").await;
        exec.run(&act(json!({"action": "left_click", "coordinate": [x, y]}))).await.unwrap();
        assert_eq!(js(&browser, "return document.activeElement.id").await, "name");
        exec.run(&act(json!({"action": "type", "text": "user {{secret:pw}}!"}))).await.unwrap();
        exec.run(&act(json!({"action": "key", "text": "BackSpace"}))).await.unwrap();
        assert_eq!(js(&browser, "return document.getElementById('name').value").await, "user s3cret");
        assert!(exec.run(&act(json!({"action": "type", "text": "{{secret:token}}"}))).await.unwrap_err().contains("no secret `token`"));

        // The secret's value on screen, in the field and in the page's text, is painted over in
        // what the model is sent (and only there: the page is as it was after).
        let secret_box = js(&browser, "const n = document.getElementById('note').firstChild; const r = document.createRange(); r.setStart(n, 5); r.setEnd(n, 11); const b = r.getBoundingClientRect(); return [b.x + b.width / 2, b.y + b.height / 2];").await;
        let in_image = |v: &Value| scale.to_image(Point { x: v[0].as_f64().unwrap(), y: v[1].as_f64().unwrap() });
        let (sx, sy) = in_image(&secret_box);
        let (fx, fy) = aim(&browser, &scale, "name").await;
        let masked = base64::engine::general_purpose::STANDARD.decode(exec.screenshot().await.unwrap()).unwrap();
        assert_eq!((pixel(&masked, sx as u32, sy as u32), pixel(&masked, fx as u32, fy as u32)), ((0, 0, 0), (0, 0, 0)), "the secret is covered");
        assert_eq!(js(&browser, "return document.querySelectorAll('[data-agent-mask]').length").await, 0);
        let no_secrets = BTreeMap::new();
        let plain = base64::engine::general_purpose::STANDARD.decode(Executor::new(&browser, scale, &no_secrets).screenshot().await.unwrap()).unwrap();
        assert_ne!(pixel(&plain, fx as u32, fy as u32), (0, 0, 0), "without secrets nothing is covered");

        // Scroll the target into view: 10 notches of 100 px.
        exec.run(&act(json!({"action": "scroll", "coordinate": [728, 409], "scroll_direction": "down", "scroll_amount": 10}))).await.unwrap();
        assert_eq!(js(&browser, "return window.scrollY").await, 1000);

        // The screenshot is the scrolled viewport at the sent size: the red target, 500 px down
        // the viewport now, is at 0.758 of that in the image.
        let png = base64::engine::general_purpose::STANDARD.decode(exec.screenshot().await.unwrap()).unwrap();
        assert_eq!(agent::page::png_size(&png), Some((1456, 819)));
        let (tx, ty) = scale.to_image(Point { x: 1060.0, y: 550.0 });
        assert_eq!(pixel(&png, tx as u32, ty as u32), (255, 0, 0), "the target's middle at ({tx}, {ty}) of the screenshot");
        assert_eq!(pixel(&png, tx as u32, (ty - 60) as u32), (255, 255, 255), "above the target");

        // A click where the screenshot shows it lands on it, at the page's coordinates.
        let (x, y) = aim(&browser, &scale, "target").await;
        exec.run(&act(json!({"action": "left_click", "coordinate": [x, y]}))).await.unwrap();
        let title = js(&browser, "return document.title").await;
        let at: Vec<f64> = title.as_str().unwrap().trim_start_matches("clicked at ").split(',').map(|v| v.parse().unwrap()).collect();
        assert!((at[0] - 1060.0).abs() <= 2.0 && (at[1] - 550.0).abs() <= 2.0, "{title}");

        // The pointer is where the model put it, in its pixels.
        let done = exec.run(&Action::CursorPosition).await.unwrap();
        assert_eq!(done.text, Some(format!("X={x},Y={y}")));

        // A zoom is the region at the page's full resolution (within the image limits).
        let zoom = exec.run(&act(json!({"action": "zoom", "region": [tx - 20, ty - 20, tx + 20, ty + 20]}))).await.unwrap();
        let zoomed = base64::engine::general_purpose::STANDARD.decode(zoom.zoomed_png_base64.unwrap()).unwrap();
        let (zw, zh) = agent::page::png_size(&zoomed).unwrap();
        assert!((52..=54).contains(&zw) && (52..=54).contains(&zh), "{zw}x{zh}: 40 screenshot pixels are 53 of the page's");
        drop(browser);
        let _ = std::fs::remove_dir_all(&scratch);
    });
}

/// A short-term Bedrock API key's form (`bedrock-api-key-` and the base64 of a pre-signed
/// CallWithBearerToken request), signed `age` seconds ago for 15 minutes.
fn bedrock_key(age: u64) -> String {
    let signed = std::time::SystemTime::now() - std::time::Duration::from_secs(age);
    let date = time_of(signed);
    let url = format!("bedrock.amazonaws.com/?Action=CallWithBearerToken&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={date}&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=abc123&Version=1");
    format!("bedrock-api-key-{}", base64::engine::general_purpose::STANDARD.encode(url))
}

fn time_of(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let d = ::time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
    format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", d.year(), u8::from(d.month()), d.day(), d.hour(), d.minute(), d.second())
}

/// The whole loop against the stand-in model, which finds the form by reading the screenshots
/// (OCR) and answers in their pixels: it signs in with a secret it never sees, through
/// Anthropic's API (throttled once first) and through Bedrock's with a bearer token; an expired
/// token ends the job with the service's refusal.
#[test]
fn a_model_signs_in_by_reading_the_screenshots_with_a_secret_it_never_sees() {
    isolated(|| async {
        let root = testenv::root();
        let fixture = testenv::fixture::Fixture::start(0).unwrap();
        let stand_in = testenv::model::ModelServer::start(&root, "sign-in", 1).unwrap();
        let allow = format!("{},127.0.0.1:{}", fixture.addr(), stand_in.server.port);
        let (browser, guard, scratch) = browser(&allow).await;
        let secrets = BTreeMap::from([("pw".to_string(), testenv::fixture::LOGIN_PASSWORD.to_string())]);
        let base = url::Url::parse(&stand_in.server.url("/")).unwrap();
        let limits = Limits { max_steps: 8, max_tokens: 100_000, max_cost_usd: 1.0 };
        let prices = Prices { input: 5.0, output: 25.0, cache_write: 6.25, cache_read: 0.5 };
        for (endpoint, model) in [
            (Endpoint::Anthropic { base: base.clone(), api_key: stand_in.key.clone() }, "claude-opus-4-6"),
            (Endpoint::Bedrock { base: base.clone(), bearer: bedrock_key(60) }, "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ] {
            open(&browser, &fixture.page("/desk")).await;
            let tool = models::tool_for(model).unwrap();
            let scale = Scale::for_viewport(1920, 1080);
            let mut conversation = Conversation::new("Sign in as alice with the password `pw`, then tell me the greeting as JSON.", tool, scale, &["pw"]);
            let model = Model::new(endpoint, model, 2048, Some(guard.addr)).unwrap();
            let mut exec = Executor::new(&browser, scale, &secrets);
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
            let (ended, steps) = run(&mut conversation, &model, &mut exec, Budget { limits, prices, deadline }).await;
            let records = stand_in.server.records();
            assert_eq!(ended, Ended::Answered(r#"{"greeting": "Welcome, alice"}"#.into()), "{steps:#?}\n{records:#?}");
            // Look, sign in (five actions in one turn), read the greeting.
            assert_eq!(steps.iter().map(|s| s.actions.len()).collect::<Vec<_>>(), vec![1, 5, 0]);
            assert_eq!(js(&browser, "return document.getElementById('welcome').textContent").await, "Welcome, alice");
            // The model named the secret; its value went nowhere near the model.
            let sent = conversation.request("m", 1).unwrap().to_string();
            assert!(sent.contains("{{secret:pw}}") && !sent.contains(testenv::fixture::LOGIN_PASSWORD));
            assert_eq!((conversation.usage.input_tokens, conversation.usage.output_tokens), (4500, 360));
        }
        let records = stand_in.server.records();
        assert_eq!(records[0]["throttled"], true, "{records:#?}");
        assert!(records[1..].iter().all(|r| r["accepted"] == true), "{records:#?}");

        // An expired Bedrock key is refused: the job ends with the service's words.
        let model = Model::new(Endpoint::Bedrock { base, bearer: bedrock_key(3600) }, "anthropic.claude-opus-4-6-v1", 2048, Some(guard.addr)).unwrap();
        let scale = Scale::for_viewport(1920, 1080);
        let mut conversation = Conversation::new("goal", models::tool_for("claude-opus-4-6").unwrap(), scale, &[]);
        let mut exec = Executor::new(&browser, scale, &secrets);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let (ended, _) = run(&mut conversation, &model, &mut exec, Budget { limits, prices, deadline }).await;
        assert_eq!(ended, Ended::ModelFailed("the model refused the request: HTTP 403: the Bedrock API key has expired".into()));
        drop(browser);
        let _ = std::fs::remove_dir_all(&scratch);
    });
}

/// A click that submits a form is done when the page it loads is: the next screenshot shows that
/// page, not the one before (the form posts to a page that answers 1.5 s late). What the click hit
/// is found in the agent's own world, which the page's scripts cannot reach: a page that redefines
/// `elementFromPoint` does not change the recorded target. Pressing Enter in the form, a key the
/// page handles with its own submit, waits the same way.
#[test]
fn a_click_waits_for_the_page_it_loads_and_the_page_cannot_steer_its_target() {
    isolated(|| async {
        let fixture = testenv::fixture::Fixture::start(0).unwrap();
        let (browser, _guard, scratch) = browser(&fixture.addr().to_string()).await;
        let scale = Scale::for_viewport(1920, 1080);
        let secrets = BTreeMap::new();
        let mut exec = Executor::new(&browser, scale, &secrets);
        let act = |input: Value| action::parse(&input, &COMPUTER_20251124, &scale).unwrap();
        for key in [false, true] {
            open(&browser, &fixture.page("/page/1")).await;
            js(&browser, "document.body.insertAdjacentHTML('beforeend', '<form method=post action=/slow><input id=q name=q style=\"font:24px sans-serif\"><button id=go type=submit style=\"font:28px sans-serif\">Send</button></form><p id=decoy>decoy</p>');
                const decoy = document.getElementById('decoy');
                Document.prototype.elementFromPoint = () => decoy;
                Element.prototype.closest = function () { return decoy; };").await;
            let (x, y) = aim(&browser, &scale, if key { "q" } else { "go" }).await;
            let done = exec.run(&act(json!({"action": "left_click", "coordinate": [x, y]}))).await.unwrap();
            let target = done.target.expect("the click's target");
            if key {
                assert_eq!(target["selector"], "#q", "{target}");
                exec.run(&act(json!({"action": "key", "text": "Return"}))).await.unwrap();
            } else {
                assert_eq!((target["selector"].as_str(), target["robust"].as_bool()), (Some("#go"), Some(true)), "{target}");
            }
            // Read as the next screenshot sees the page: on the agent's own connection (a WebDriver
            // call would itself wait for the navigation).
            let title = browser.devtools().await.unwrap().call("Runtime.evaluate", json!({"expression": "document.title", "returnByValue": true})).await.unwrap();
            assert_eq!(title["result"]["value"], "Slow page", "the action returned before the page it loaded (Enter: {key})");
            assert_eq!(js(&browser, "return document.readyState").await, "complete");
        }
        drop(browser);
        let _ = std::fs::remove_dir_all(&scratch);
    });
}
