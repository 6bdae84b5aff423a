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

/// The exit codes (docs/api.md, "The command-line client").
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
    /// The API's client: follows no redirect (the key would go wherever it points).
    http: reqwest::blocking::Client,
    /// The pre-signed links' client (no key to leak): follows redirects as S3 may answer them.
    downloads: reqwest::blocking::Client,
    retries: u32,
}

/// Whether `url` names this machine (`localhost`, 127.0.0.0/8, `::1`): plain HTTP to it keeps
/// the key on the machine (the local stack).
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The longest `Retry-After` honoured as given; a longer one is waited this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

impl Api {
    /// A client of the API at `base`. Plain `http://` is refused unless it names this machine or
    /// `allow_http` says so: the key would cross the network in the clear.
    pub fn new(base: &str, key: &str, retries: u32, allow_http: bool) -> Result<Api, Failure> {
        let base = base.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
        let Some(url) = url else {
            return Err(Failure::Usage(format!("the API URL `{base}` is not an http(s) URL")));
        };
        if url.scheme() == "http" && !is_loopback(&url) && !allow_http {
            return Err(Failure::Usage(format!(
                "the API URL `{base}` is plain HTTP: the API key would cross the network unencrypted; use https:// (API Gateway's URL is), or --allow-http if you mean it"
            )));
        }
        let client = |redirects: reqwest::redirect::Policy| {
            reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .user_agent(concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION")))
                .redirect(redirects)
                .build()
                .map_err(|e| Failure::Unavailable(format!("cannot make an HTTP client: {e}")))
        };
        let http = client(reqwest::redirect::Policy::none())?;
        let downloads = client(reqwest::redirect::Policy::limited(5))?;
        Ok(Api { base, key: key.to_string(), http, downloads, retries })
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
            if resp.status().is_redirection() {
                let to = resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("nowhere").to_owned();
                return Err(Failure::Unavailable(format!(
                    "the API answered {status}, a redirect to {}; not followed (the API key would go with it): check --api-url",
                    redact(&to)
                )));
            }
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
        let resp = self.downloads.get(link).send().map_err(|e| Failure::Download(format!("cannot download {}: {}", redact(link), error_chain(&e))))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn plain_http_only_to_this_machine_unless_allowed() {
        for ok in ["https://abc.execute-api.us-east-1.amazonaws.com/v1", "http://127.0.0.1:8080/v1", "http://localhost:1/v1", "http://[::1]:9/v1"] {
            assert!(Api::new(ok, "k", 0, false).is_ok(), "{ok}");
        }
        for refused in ["http://abc.execute-api.us-east-1.amazonaws.com/v1", "http://10.0.0.5/v1", "http://localhost.example.com/v1"] {
            let Err(Failure::Usage(m)) = Api::new(refused, "k", 0, false) else { panic!("{refused} accepted") };
            assert!(m.contains("plain HTTP") && m.contains("--allow-http"), "{m}");
            assert!(Api::new(refused, "k", 0, true).is_ok(), "{refused} with --allow-http");
        }
        assert!(matches!(Api::new("ftp://x/v1", "k", 0, true), Err(Failure::Usage(_))));
    }

    /// One HTTP answer per connection from a loopback listener; returns its URL and the requests.
    fn server(answer: &'static str, requests: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            listener.set_nonblocking(false).unwrap();
            for _ in 0..requests {
                let Ok((mut conn, _)) = listener.accept() else { break };
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).unwrap_or(0);
                seen.push(String::from_utf8_lossy(&buf[..n]).to_lowercase());
                let _ = conn.write_all(answer.as_bytes());
            }
            seen
        });
        (url, handle)
    }

    /// A redirect from the API is an error naming where it pointed; the key goes nowhere else.
    #[test]
    fn a_redirect_is_not_followed_with_the_key() {
        let (elsewhere, seen_elsewhere) = server("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}", 1);
        let redirect: &'static str = Box::leak(format!("HTTP/1.1 302 Found\r\nlocation: {elsewhere}/stolen\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").into_boxed_str());
        let (api_url, seen_api) = server(redirect, 1);
        let api = Api::new(&format!("{api_url}/v1"), "the-secret-key", 0, false).unwrap();
        let Err(Failure::Unavailable(m)) = api.get("/jobs", &[]) else { panic!("a redirect was followed") };
        assert!(m.contains("302") && m.contains("/stolen") && m.contains("not followed"), "{m}");
        assert!(seen_api.join().unwrap()[0].contains("the-secret-key"), "the API got the key");
        // Nothing reached the other server: connect once ourselves so its accept returns.
        drop(std::net::TcpStream::connect(elsewhere.trim_start_matches("http://")));
        let there = seen_elsewhere.join().unwrap();
        assert!(there.iter().all(|r| !r.contains("the-secret-key")), "{there:?}");
    }
}
