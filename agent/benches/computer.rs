//! Computer-use jobs: the agent's own time per model turn, with a model that answers at once, at
//! 1280x800, against a bare DevTools screenshot of the same page, in one run. A turn here is what
//! the agent does around the model: capture the screenshot the model is sent (at the sent size,
//! base64), do the turn's action (a click, and the wait for the page to settle), record the turn,
//! answer it and build the next request. The bare screenshot is taken on the agent's own DevTools
//! connection, as the turn's is (chromedriver's relay of it is shown beside). Also the request's
//! size per turn, with old screenshots pruned. Medians and p95; not a timed test.

#[path = "../tests/support/computer.rs"]
#[allow(dead_code)]
mod computer_support;

use std::collections::BTreeMap;
use std::time::Instant;

use agent::computer::execute::Executor;
use agent::computer::messages::{Conversation, ToolResult};
use agent::computer::models::COMPUTER_20251124;
use agent::computer::run::{KEEP_SCREENSHOTS, PRUNE_BATCH};
use agent::computer::screen::Scale;
use agent::computer::action;
use base64::Engine;
use serde_json::json;

const TURNS: usize = 40;

/// A page with text, a form and a table: what a model is usually shown.
const PAGE: &str = r#"<!doctype html><html><body style="font:16px sans-serif;margin:24px">
<h1>Invoices</h1><p>Your invoices for the last twelve months. Select one to download it.</p>
<form><label for=q>Search</label> <input id=q> <button type=button onclick="this.textContent='Searched'">Search</button></form>
<table border=1 cellpadding=6>TABLE</table></body></html>"#;

fn pct(v: &mut [f64], p: usize) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) * p) / 100]
}

fn main() {
    computer_support::isolated(|| async {
        let rows: String = (1..=20).map(|i| format!("<tr><td>INV-{i:04}</td><td>2026-{:02}-01</td><td>{}.00 EUR</td></tr>", i % 12 + 1, 100 + i * 7)).collect();
        let page = PAGE.replace("TABLE", &rows);
        let (browser, _guard, scratch) = computer_support::browser_at("", 1280, 800).await;
        let url = format!("data:text/html;base64,{}", base64::engine::general_purpose::STANDARD.encode(&page));
        computer_support::open(&browser, &url).await;
        let scale = Scale::for_viewport(1280, 800);
        let secrets = BTreeMap::new();
        let mut exec = Executor::new(&browser, scale, &secrets);
        // Warm up both paths.
        for _ in 0..3 {
            browser.devtools().await.unwrap().call("Page.captureScreenshot", json!({"format": "png"})).await.unwrap();
            exec.screenshot().await.unwrap();
        }
        // The bare screenshot on the connection the agent's own go on (its DevTools WebSocket),
        // and, for reference, through chromedriver's relay.
        let (mut bare, mut relayed) = (Vec::new(), Vec::new());
        for _ in 0..TURNS {
            let t = Instant::now();
            browser.devtools().await.unwrap().call("Page.captureScreenshot", json!({"format": "png"})).await.unwrap();
            bare.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            browser.cdp("Page.captureScreenshot", json!({"format": "png"})).await.unwrap();
            relayed.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let mut conversation = Conversation::new("Find the invoice of March and download it.", &COMPUTER_20251124, scale, &[]);
        let (mut turns, mut capture, mut act, mut sizes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (bx, by) = {
            let r = computer_support::js(&browser, "const r = document.querySelector('button').getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2];").await;
            scale.to_image(agent::computer::screen::Point { x: r[0].as_f64().unwrap(), y: r[1].as_f64().unwrap() })
        };
        for i in 0..TURNS {
            // The model's turn, as if it had answered at once.
            let input = json!({"action": "left_click", "coordinate": [bx, by]});
            let response = json!({"content": [{"type": "thinking", "thinking": "Click the button.", "signature": "c2ln"},
                {"type": "tool_use", "id": format!("toolu_{i}"), "name": "computer", "input": input}], "stop_reason": "tool_use",
                "usage": {"input_tokens": 1500, "output_tokens": 80}});
            let t = Instant::now();
            let turn = conversation.record(&response).unwrap();
            let a = action::parse(&turn.tool_uses[0].input, &COMPUTER_20251124, &scale).unwrap();
            let t_act = Instant::now();
            exec.run(&a).await.unwrap();
            act.push(t_act.elapsed().as_secs_f64() * 1000.0);
            let t_shot = Instant::now();
            let png = exec.screenshot().await.unwrap();
            capture.push(t_shot.elapsed().as_secs_f64() * 1000.0);
            conversation.answer(vec![ToolResult { tool_use_id: turn.tool_uses[0].id.clone(), outcome: Ok(None), screenshot_png_base64: Some(png) }]).unwrap();
            conversation.prune_screenshots(KEEP_SCREENSHOTS, PRUNE_BATCH);
            let body = conversation.request("claude-opus-4-6", 4096).unwrap().to_string();
            turns.push(t.elapsed().as_secs_f64() * 1000.0);
            sizes.push(body.len() as f64 / 1024.0);
        }
        let bare50 = pct(&mut bare, 50);
        let turn50 = pct(&mut turns, 50);
        println!("bench-computer: {TURNS} turns at 1280x800 (screenshots sent at {}x{}), the model answering at once", scale.sent.0, scale.sent.1);
        println!("                                          p50        p95");
        println!("  bare CDP screenshot (PNG)            {:>7.1} ms {:>7.1} ms", bare50, pct(&mut bare, 95));
        println!("    the same through chromedriver      {:>7.1} ms {:>7.1} ms", pct(&mut relayed, 50), pct(&mut relayed, 95));
        println!("  agent turn overhead                  {:>7.1} ms {:>7.1} ms   ({:.2}x the bare screenshot)", turn50, pct(&mut turns, 95), turn50 / bare50);
        println!("    of which the action and its settle {:>7.1} ms {:>7.1} ms", pct(&mut act, 50), pct(&mut act, 95));
        println!("    of which the screenshot sent       {:>7.1} ms {:>7.1} ms", pct(&mut capture, 50), pct(&mut capture, 95));
        println!("  request per turn, pruned to {KEEP_SCREENSHOTS}-{} screenshots: p50 {:.0} KiB, max {:.0} KiB", KEEP_SCREENSHOTS + PRUNE_BATCH, pct(&mut sizes, 50), pct(&mut sizes, 100));
        drop(browser);
        let _ = std::fs::remove_dir_all(&scratch);
    });
}
