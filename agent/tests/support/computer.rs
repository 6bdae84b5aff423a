//! What the computer-use tests and benchmark share: a browser at 1920x1080 (or another size)
//! behind an egress guard, in the loopback-only network namespace, one at a time.

use std::sync::Arc;

use agent::browser::{Browser, BrowserConfig};
use serde_json::{json, Value};

/// One at a time: a browser's drop ends every process the test process started.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `test` on this thread in the loopback-only network namespace (the browser, the servers
/// and the guard it starts with it), one test at a time.
pub fn isolated<F: std::future::Future<Output = ()>>(test: impl FnOnce() -> F) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    testenv::netns::enter_or_panic();
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(test());
}

/// A browser at 1920x1080 behind an egress guard that allows `allow` (`host:port`, ...).
pub async fn browser(allow: &str) -> (Browser, agent::proxy::Guard, std::path::PathBuf) {
    browser_at(allow, 1920, 1080).await
}

/// As [`browser`], at `width` x `height`.
pub async fn browser_at(allow: &str, width: u32, height: u32) -> (Browser, agent::proxy::Guard, std::path::PathBuf) {
    let log = Arc::new(agent::log::Log::new(""));
    let guard = agent::proxy::start(names::egress::EgressPolicy::parse(allow).unwrap(), log.clone()).await.unwrap();
    let scratch = agent::browser::tempdir(&std::env::temp_dir(), "computer-").unwrap();
    let chromium = std::env::var("AGENT_CHROMIUM").unwrap_or_else(|_| agent::config::DEFAULT_CHROMIUM.into());
    let chromedriver = std::env::var("AGENT_CHROMEDRIVER").unwrap_or_else(|_| agent::config::DEFAULT_CHROMEDRIVER.into());
    let viewport = names::job::Viewport { width, height };
    let cfg = BrowserConfig { chromium: chromium.as_ref(), chromedriver: chromedriver.as_ref(), scratch: &scratch, proxy: guard.addr, viewport };
    (Browser::launch(&cfg, &log).await.unwrap(), guard, scratch)
}

pub async fn open(browser: &Browser, url: &str) {
    browser.cdp("Page.navigate", json!({ "url": url })).await.unwrap();
    for _ in 0..100 {
        if js(browser, "return document.readyState").await == "complete" && js(browser, "return location.href").await == url {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{url} did not load");
}

pub async fn js(browser: &Browser, script: &str) -> Value {
    browser.client.execute(script, vec![]).await.unwrap()
}
