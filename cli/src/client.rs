//! One API call as the client makes it: the key, JSON both ways, a throttled call retried after
//! its `Retry-After`, and every failure as a [`Failure`] with its exit code.

use serde_json::Value;
use std::time::Duration;

/// How the command ended, when not well: what it prints and the exit code it returns.
#[derive(Debug)]
pub enum Failure {
    /// No API URL or key, a steps file that cannot be read, an unusable download directory.
    Usage(String),
    /// The API refused the request (a 4xx other than 429).
    Refused { status: u16, code: Option<String>, message: String },
    /// Still throttled (429) after every retry.
    Throttled(String),
    /// The API could not be reached, or it failed (5xx).
    Unavailable(String),
    /// An output could not be downloaded or saved.
    Download(String),
    /// `--wait` gave up before the job finished.
    WaitTimedOut { task_id: String, status: String },
}

/// The exit codes (README, "The command-line client").
pub mod exit {
    pub const OK: u8 = 0;
    pub const JOB_FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const JOB_CANCELLED: u8 = 3;
    pub const REFUSED: u8 = 4;
    pub const THROTTLED: u8 = 5;
    pub const UNAVAILABLE: u8 = 6;
    pub const DOWNLOAD: u8 = 7;
    pub const WAIT_TIMED_OUT: u8 = 8;
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => exit::USAGE,
            Failure::Refused { .. } => exit::REFUSED,
            Failure::Throttled(_) => exit::THROTTLED,
            Failure::Unavailable(_) => exit::UNAVAILABLE,
            Failure::Download(_) => exit::DOWNLOAD,
            Failure::WaitTimedOut { .. } => exit::WAIT_TIMED_OUT,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Usage(m) | Failure::Unavailable(m) | Failure::Download(m) => f.write_str(m),
            Failure::Refused { status, code, message } => {
                let hint = match status {
                    403 => " (check the API key: --api-key or JOBS_API_KEY)",
                    404 => " (no such job for this key's tenant)",
                    _ => "",
                };
                match code {
                    Some(c) => write!(f, "{status} {c}: {message}{hint}"),
                    None => write!(f, "{status}: {message}{hint}"),
                }
            }
            Failure::Throttled(m) => write!(f, "429: {m} (still throttled after the retries; try again later or raise --retries)"),
            Failure::WaitTimedOut { task_id, status } => {
                write!(f, "job {task_id} is still {status}; stopped waiting (--wait-timeout); `{} status {task_id}` shows it later", env!("CARGO_BIN_NAME"))
            }
        }
    }
}

pub struct Api {
    base: String,
    key: String,
    http: reqwest::blocking::Client,
    retries: u32,
}

/// The longest `Retry-After` honoured as given; a longer one is waited this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

impl Api {
    pub fn new(base: &str, key: &str, retries: u32) -> Result<Api, Failure> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(Failure::Usage(format!("the API URL `{base}` is not an http(s) URL")));
        }
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::Unavailable(format!("cannot make an HTTP client: {e}")))?;
        Ok(Api { base, key: key.to_string(), http, retries })
    }

    /// `method path` with the key and `body`; the JSON answer of a 2xx.
    pub fn call(&self, method: reqwest::Method, path: &str, query: &[(&str, String)], body: Option<&Value>, headers: &[(&str, String)]) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        loop {
            let mut req = self.http.request(method.clone(), &url).header(names::routes::API_KEY_HEADER, &self.key).query(query);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().map_err(|e| Failure::Unavailable(format!("cannot reach the API at {url}: {}", error_chain(&e))))?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let text = resp.text().unwrap_or_default();
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let (code, message) = names::api::error_message(&json).unwrap_or((None, text.chars().take(300).collect()));
            match status {
                200..=299 => return Ok(json),
                429 if attempt < self.retries => {
                    attempt += 1;
                    // Without a Retry-After (API Gateway's throttle), back off: 1, 2, 4 ... s.
                    let wait = retry_after.map(Duration::from_secs).unwrap_or(Duration::from_secs(1 << (attempt - 1).min(6))).min(MAX_RETRY_AFTER);
                    eprintln!("throttled ({}): retrying in {} s ({attempt} of {})", code.as_deref().unwrap_or(&message), wait.as_secs(), self.retries);
                    std::thread::sleep(wait);
                }
                429 => return Err(Failure::Throttled(message)),
                400..=499 => return Err(Failure::Refused { status, code, message }),
                _ => return Err(Failure::Unavailable(format!("the API failed ({status}): {message}"))),
            }
        }
    }

    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Failure> {
        self.call(reqwest::Method::GET, path, query, None, &[])
    }

    /// A pre-signed link's bytes (no API key: the link is the permission).
    pub fn download(&self, link: &str) -> Result<Vec<u8>, Failure> {
        let resp = self.http.get(link).send().map_err(|e| Failure::Download(format!("cannot download {}: {}", redact(link), error_chain(&e))))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Failure::Download(format!("downloading {} answered {status} (links last an hour: run the command again for fresh ones)", redact(link))));
        }
        resp.bytes().map(|b| b.to_vec()).map_err(|e| Failure::Download(format!("reading {}: {e}", redact(link))))
    }
}

/// A link without its query (the signature) for messages.
fn redact(link: &str) -> &str {
    link.split('?').next().unwrap_or(link)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
