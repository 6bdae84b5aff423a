//! Chromium through chromedriver: starting both, talking WebDriver and CDP, and making sure neither
//! outlives the agent.

use crate::devtools::Devtools;
use crate::log::Log;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use names::job::Viewport;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

pub struct BrowserConfig<'a> {
    pub chromium: &'a Path,
    pub chromedriver: &'a Path,
    /// A fresh directory of this run: HOME, TMPDIR and the profile of Chromium. The caller
    /// removes it after the uploads, off the job's critical path.
    pub scratch: &'a Path,
    pub proxy: SocketAddr,
    pub viewport: Viewport,
}

pub struct Browser {
    pub client: Client,
    /// The agent's own connection to the page, beside chromedriver's (see [`crate::devtools`]),
    /// made when a computer-use job first asks for it ([`Browser::devtools`]): other jobs run on
    /// chromedriver's alone.
    devtools: tokio::sync::OnceCell<Devtools>,
    devtools_port: u16,
    pub version: String,
    _driver: tokio::process::Child,
    _chromium: tokio::process::Child,
}

/// A CDP command sent through chromedriver's `goog/cdp/execute` endpoint.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "cmd": self.cmd, "params": self.params }).to_string()),
        )
    }
}

/// Replaces the blocking dialogs before any page script runs, so an `alert()` neither stalls the
/// job nor gets lost: the messages end up in `result.json`.
const DIALOG_SHIM: &str = r#"(() => {
  const seen = [];
  Object.defineProperty(window, '__agentDialogs', { value: seen });
  window.alert = (m) => { seen.push({ type: 'alert', message: String(m) }); };
  window.confirm = (m) => { seen.push({ type: 'confirm', message: String(m) }); return true; };
  window.prompt = (m, d) => { seen.push({ type: 'prompt', message: String(m) }); return d === undefined ? null : d; };
})();"#;

impl Browser {
    pub async fn launch(cfg: &BrowserConfig<'_>, log: &Log) -> Result<Browser, String> {
        let started = Instant::now();
        let profile = cfg.scratch.join("chromium-profile");
        // A retry starts from an empty profile.
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile)
            .map_err(|e| format!("cannot create {}: {e}", profile.display()))?;
        let driver_log = cfg.scratch.join("chromedriver.log");
        // chromedriver binds a port of its own choosing and says which: a port picked here and
        // bound by it later could be taken meanwhile by another process, even another
        // chromedriver, whose session this browser would then share and lose with it.
        let mut driver = spawn(
            cfg.chromedriver,
            &["--port=0".to_string(), format!("--log-path={}", driver_log.display())],
            cfg.scratch,
            Stdio::piped(),
            Stdio::null(),
        )?;
        // Chromium starts alongside chromedriver, which then attaches to it instead of launching
        // it: the two startups overlap.
        let chromium_log = cfg.scratch.join("chromium.log");
        let stderr = std::fs::File::create(&chromium_log)
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let mut args = chromium_args(&profile, cfg.proxy, cfg.viewport);
        args.extend([
            "--remote-debugging-port=0".to_string(),
            "about:blank".to_string(),
        ]);
        let mut chromium = spawn(cfg.chromium, &args, cfg.scratch, Stdio::null(), stderr)?;
        let (ready, devtools) =
            tokio::join!(wait_driver(&mut driver), wait_devtools(&profile, &mut chromium));
        let devtools = devtools.inspect_err(|_| {
            let text = std::fs::read_to_string(&chromium_log).unwrap_or_default();
            let tail: Vec<&str> = text
                .lines()
                .rev()
                .filter(|l| !l.contains("dbus"))
                .take(10)
                .collect();
            log.error("chromium log", json!({ "tail": tail }));
        })?;
        let base = ready?;
        log.info(
            "chromium and chromedriver ready",
            json!({ "ms": started.elapsed().as_millis() as u64 }),
        );

        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("pageLoadStrategy".into(), json!("normal"));
        // Backstop for prompts the shim cannot replace (e.g. beforeunload).
        caps.insert("unhandledPromptBehavior".into(), json!("accept"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "debuggerAddress": format!("127.0.0.1:{devtools}") }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&base)
            .await
            .map_err(|e| {
                // chromedriver's own log says why it could not attach.
                let text = std::fs::read_to_string(&driver_log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                log.error("chromedriver log", json!({ "tail": tail }));
                format!("chromedriver could not attach to Chromium: {e}")
            })?;
        let mut browser = Browser {
            client,
            devtools: tokio::sync::OnceCell::new(),
            devtools_port: devtools,
            version: String::new(),
            _driver: driver,
            _chromium: chromium,
        };
        let v = browser
            .cdp("Browser.getVersion", json!({}))
            .await
            .map_err(|e| format!("Browser.getVersion: {e}"))?;
        browser.version = v["product"].as_str().unwrap_or_default().to_string();
        browser.set_viewport(cfg.viewport).await?;
        browser
            .cdp(
                "Page.addScriptToEvaluateOnNewDocument",
                json!({ "source": DIALOG_SHIM }),
            )
            .await
            .map_err(|e| format!("installing the dialog shim: {e}"))?;
        log.info(
            "browser started",
            json!({ "version": browser.version, "ms": started.elapsed().as_millis() as u64 }),
        );
        Ok(browser)
    }

    /// Lets the tasks an input queued run (a click's form submission is one), from a script that
    /// answers from a task queued after them (a zero timeout; `frame`: after the next animation
    /// frame, when a wheel's scroll lands). chromedriver holds the answer while a navigation they
    /// started is pending. The document's `readyState` then, if the page said.
    pub async fn after_input(&self, frame: bool) -> Option<String> {
        let after = if frame { "requestAnimationFrame(() => setTimeout(answer, 0))" } else { "setTimeout(answer, 0)" };
        let script = format!("const done = arguments[arguments.length - 1]; const answer = () => done(document.readyState); {after};");
        self.client.execute_async(&script, vec![]).await.ok().and_then(|v| v.as_str().map(str::to_owned))
    }

    /// The agent's own DevTools connection to the page, made on first use.
    pub async fn devtools(&self) -> Result<&Devtools, String> {
        self.devtools
            .get_or_try_init(|| async {
                // chromedriver's window: its handle is the page's DevTools target id.
                let window = self.client.window().await.map_err(|e| format!("chromedriver's window: {e}"))?;
                Devtools::connect(self.devtools_port, &String::from(window)).await
            })
            .await
    }

    /// The page's viewport (a warm slot's browser, started before its job, gets the job's here).
    pub async fn set_viewport(&self, viewport: Viewport) -> Result<(), String> {
        let Viewport { width, height } = viewport;
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await
        .map(drop)
        .map_err(|e| format!("setting the viewport: {e}"))
    }

    pub async fn cdp(
        &self,
        cmd: &'static str,
        params: Value,
    ) -> Result<Value, fantoccini::error::CmdError> {
        self.client.issue_cmd(Cdp { cmd, params }).await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Killing beats a WebDriver quit here: it is instant and cannot hang on a wedged page.
        kill_descendants();
    }
}

/// The flags for Chromium in a one-job container.
fn chromium_args(profile: &Path, proxy: SocketAddr, viewport: Viewport) -> Vec<String> {
    let mut args: Vec<String> = [
        "--headless=new",
        // Fargate grants neither SYS_ADMIN nor user namespaces, so Chromium's own sandbox cannot
        // start. The boundary is the throw-away one-job task: non-root user, read-only root
        // filesystem, no task-role credentials, and the egress guard below.
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--disable-breakpad",
        "--disable-crash-reporter",
        "--disable-client-side-phishing-detection",
        "--disable-domain-reliability",
        "--disable-field-trial-config",
        "--disable-search-engine-choice-screen",
        "--no-service-autorun",
        "--no-pings",
        "--metrics-recording-only",
        "--disable-features=Translate,MediaRouter,DialMediaRouteProvider,OptimizationHints,\
         CertificateTransparencyComponentUpdater,AutofillServerCommunication,LensOverlay",
        "--mute-audio",
        // What chromedriver adds when it launches Chromium itself; here it attaches instead.
        "--enable-automation",
        "--disable-hang-monitor",
        "--disable-popup-blocking",
        "--disable-prompt-on-repost",
        "--disable-background-timer-throttling",
        "--disable-backgrounding-occluded-windows",
        "--disable-renderer-backgrounding",
        "--use-mock-keychain",
        "--hide-scrollbars",
        "--password-store=basic",
        // Every request goes through the egress guard: no implicit loopback bypass, no QUIC, and
        // WebRTC may not send UDP around the proxy.
        "--proxy-bypass-list=<-loopback>",
        "--disable-quic",
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
        "--dns-prefetch-disable",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    args.push(format!("--proxy-server=http://{proxy}"));
    args.push(format!(
        "--window-size={},{}",
        viewport.width, viewport.height
    ));
    args.push(format!("--user-data-dir={}", profile.display()));
    args
}

/// Starts a helper process with its home and temp files on the scratch volume; it gets SIGKILL
/// if the agent dies.
/// The search path Chromium and chromedriver get.
const BROWSER_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// The only variables of the agent's own environment the browser inherits: locale and time zone,
/// which change how pages render, and nothing that could be a secret.
pub const BROWSER_ENV_PASSED: &[&str] = &["LANG", "LC_ALL", "TZ"];

fn spawn(
    program: &Path,
    args: &[String],
    scratch: &Path,
    stdout: Stdio,
    stderr: Stdio,
) -> Result<tokio::process::Child, String> {
    let mut cmd = tokio::process::Command::new(program);
    // A cleared environment and an allow-list: the browser is the part a page can attack, and
    // the agent's environment holds the job, its upload links, and whatever secrets and AWS or
    // ECS variables the task carries. None of that is Chromium's business.
    cmd.args(args)
        .env_clear()
        .env("PATH", BROWSER_PATH)
        .env("HOME", scratch)
        .env("TMPDIR", scratch)
        .env("XDG_CONFIG_HOME", scratch.join(".config"))
        .env("XDG_CACHE_HOME", scratch.join(".cache"))
        .envs(BROWSER_ENV_PASSED.iter().filter_map(|k| std::env::var_os(k).map(|v| (*k, v))))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; between fork and exec it only sets the death signal.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))
}

/// Waits for Chromium to write the port of its DevTools endpoint into the profile.
async fn wait_devtools(
    profile: &Path,
    chromium: &mut tokio::process::Child,
) -> Result<u16, String> {
    let file = profile.join("DevToolsActivePort");
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Some(port) = text.lines().next().and_then(|l| l.trim().parse().ok()) {
                return Ok(port);
            }
        }
        if let Ok(Some(status)) = chromium.try_wait() {
            return Err(format!("Chromium exited while starting ({status})"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The port chromedriver says it bound (its first lines on stdout), once it answers ready there:
/// its base URL.
async fn wait_driver(driver: &mut tokio::process::Child) -> Result<String, String> {
    use tokio::io::AsyncBufReadExt;
    let stdout = driver.stdout.take().ok_or("chromedriver's stdout is not piped")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let port = loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                if let Some(port) = driver_port(&line) {
                    break port;
                }
            }
            Ok(None) | Err(_) => {
                let status = driver.wait().await.map(|s| s.to_string()).unwrap_or_default();
                return Err(format!("chromedriver exited while starting ({status})"));
            }
        }
    };
    // What else it prints is read and dropped: a full pipe would stall it.
    let mut rest = lines.into_inner();
    tokio::spawn(async move { tokio::io::copy(&mut rest, &mut tokio::io::sink()).await });
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await?;
    Ok(base)
}

/// The port in chromedriver's "ChromeDriver was started successfully on port 37813."
fn driver_port(line: &str) -> Option<u16> {
    let rest = line.split("started successfully on port ").nth(1)?;
    rest.trim_end().trim_end_matches('.').parse().ok()
}

async fn wait_ready(base: &str) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let status = format!("{base}/status");
    loop {
        if let Ok(resp) = http.get(&status).send().await {
            if let Ok(body) = resp.bytes().await {
                let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                if v["value"]["ready"].as_bool() == Some(true) {
                    return Ok(());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh directory under `parent` (the scratch volume; the root filesystem is read-only).
/// Kept short on purpose: Chromium puts a Unix socket below TMPDIR, and socket paths are limited
/// to 107 bytes.
pub fn tempdir(parent: &Path, prefix: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let pid = std::process::id();
    let mut last = String::new();
    for n in 0..100 {
        let dir = parent.join(format!("{prefix}{pid}-{n}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => last = format!("cannot create {}: {e}", dir.display()),
        }
    }
    Err(last)
}

/// Makes the agent the reaper of every orphan it leaves (Chromium's helpers double-fork), so
/// [`kill_descendants`] still finds them.
pub fn become_subreaper() {
    // SAFETY: plain prctl on the calling process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
    }
}

/// SIGKILLs every process below this one (chromedriver, Chromium and its helpers). Safe to call
/// from a panic hook, a signal path or a watchdog thread: it only reads /proc and sends signals.
pub fn kill_descendants() {
    kill_descendants_except(&[]);
}

/// [`kill_descendants`], sparing the subtrees of `spare` (the benchmark keeps its S3 server).
/// Returns once every process it signalled has died (at most a second): a killed renderer of a
/// loaded machine can take a moment to go, and nothing may outlive the agent.
pub fn kill_descendants_except(spare: &[i32]) {
    let me = std::process::id() as i32;
    let mut signalled: Vec<i32> = Vec::new();
    // Another round only when the last one found processes not signalled before (a fork in
    // flight).
    for _ in 0..5 {
        let spared: Vec<i32> = spare
            .iter()
            .flat_map(|&p| descendants(p).into_iter().chain([p]))
            .collect();
        let fresh: Vec<i32> = descendants(me)
            .into_iter()
            .filter(|p| !signalled.contains(p) && !spared.contains(p))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for &pid in &fresh {
            // SAFETY: sending a signal to a pid we just found as our descendant.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        signalled.extend(fresh);
        std::thread::sleep(Duration::from_millis(2));
    }
    // Reparented once their parent died, they are no longer found as descendants: wait on each.
    let until = std::time::Instant::now() + Duration::from_secs(1);
    while signalled.iter().any(|&pid| alive(pid)) && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `pid` is a process that has not died (absent or a zombie: dead).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rfind(')').map(|i| stat[i + 2..].starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

/// Live (non-zombie) descendants of `root`.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // Fields after the command name, which may itself contain spaces and parentheses.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
                continue;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next().unwrap_or("");
            let Some(ppid) = fields.next().and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            if state != "Z" {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == p)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}

#[cfg(test)]
mod tests {
    use super::driver_port;

    #[test]
    fn chromedriver_says_which_port_it_bound() {
        assert_eq!(driver_port("ChromeDriver was started successfully on port 37813."), Some(37813));
        assert_eq!(driver_port("ChromeDriver was started successfully on port 9515.\r"), Some(9515));
        assert_eq!(driver_port("Starting ChromeDriver 148.0.7778.167 (65db666a) on port 0"), None);
        assert_eq!(driver_port("Only local connections are allowed."), None);
    }
}
