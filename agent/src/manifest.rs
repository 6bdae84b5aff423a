//! The job's manifest (`names::manifest`): fetched once through the pre-signed GET the task's
//! environment carries, before anything else. Its upload forms are read first and alone, so even
//! a job the agent refuses gets its `error.json`.

use names::env::agent as env;
use names::manifest::{SecretLinks, Upload};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const ATTEMPTS: u32 = 4;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest manifest read (a scripted job's spec and a form per file fit in far less).
const MAX_BYTES: usize = 1024 * 1024;

/// The manifest as the agent reads it: the job stays JSON until the rules check it.
#[derive(Debug)]
pub struct Received {
    pub job: Value,
    pub uploads: BTreeMap<String, Upload>,
    pub secrets: Option<SecretLinks>,
    /// A computer-use job's model.
    pub model: Option<names::manifest::ModelGrant>,
}

pub fn parse(raw: &[u8]) -> Result<Received, String> {
    parse_manifest(raw)
}

fn parse_manifest(raw: &[u8]) -> Result<Received, String> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    let version = v.get("version").and_then(Value::as_u64);
    if version != Some(u64::from(names::manifest::VERSION)) {
        return Err(format!("the manifest's version is {version:?}; this agent reads version {}", names::manifest::VERSION));
    }
    let uploads: BTreeMap<String, Upload> = serde_json::from_value(v.get("uploads").cloned().unwrap_or(Value::Null))
        .map_err(|e| format!("the manifest's uploads are not upload forms: {e}"))?;
    let secrets = match v.get("secrets") {
        None | Some(Value::Null) => None,
        Some(s) => Some(serde_json::from_value(s.clone()).map_err(|e| format!("the manifest's secrets are not links: {e}"))?),
    };
    let model = match v.get("model") {
        None | Some(Value::Null) => None,
        Some(m) => Some(serde_json::from_value(m.clone()).map_err(|e| format!("the manifest's model is not a model grant: {e}"))?),
    };
    Ok(Received { job: v.get("job").cloned().unwrap_or(Value::Null), uploads, secrets, model })
}

/// GETs the manifest (retrying transport errors and 5xx), then parses it.
pub async fn fetch(get: &dyn Fn(&str) -> Option<String>) -> Result<Received, String> {
    let url = get(env::MANIFEST_URL).filter(|u| !u.is_empty()).ok_or_else(|| format!("{} is not set", env::MANIFEST_URL))?;
    let url = url::Url::parse(&url).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(|| format!("{} is not an http(s) URL", env::MANIFEST_URL))?;
    let raw = get_bytes(&url).await.map_err(|e| format!("the manifest could not be read: {e}"))?;
    parse(&raw)
}

/// The job's tenant secrets: read once through their link, then deleted through the other, so
/// nothing can read them again (a failed delete is logged; the reconciler deletes them when the
/// task stops, and a lifecycle rule after a day). Values by name.
pub async fn take_secrets(links: &SecretLinks, log: &crate::log::Log) -> Result<BTreeMap<String, String>, String> {
    let link = |u: &str| url::Url::parse(u).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or("the manifest's secrets link is not an http(s) URL".to_string());
    let raw = get_bytes(&link(&links.get)?).await.map_err(|e| format!("the job's secrets could not be read: {e}"))?;
    let secrets: BTreeMap<String, String> = serde_json::from_slice(&raw).map_err(|_| "the job's secrets are not an object of names and values".to_string())?;
    let delete = link(&links.delete)?;
    match delete_link(&delete).await {
        Ok(()) => log.info("secrets read and deleted", serde_json::json!({ "secrets": secrets.keys().collect::<Vec<_>>() })),
        Err(last) => log.warn("the job's secrets could not be deleted", serde_json::json!({ "error": last })),
    }
    Ok(secrets)
}

/// A pre-signed DELETE, with retries (the URL carries a signature, so errors never show it).
async fn delete_link(url: &url::Url) -> Result<(), String> {
    let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().map_err(|e| e.to_string())?;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match http.delete(url.clone()).timeout(ATTEMPT_TIMEOUT).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.without_url().to_string(),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
    }
    Err(last)
}

/// How long a warm slot waits between looks at its manifest link.
pub const SLOT_POLL: Duration = Duration::from_millis(250);
/// An idle slot leaves this long before its links expire (a link signed with role credentials
/// stops working with them).
pub const SLOT_LINK_MARGIN: Duration = Duration::from_secs(30);

/// What a warm slot's wait came to.
#[derive(Debug)]
pub enum Slot {
    /// Its job's manifest, read and deleted, and how the wait went.
    Job(Received, Waited),
    /// Its deadline (or its link's expiry) came first: it exits without a job.
    Expired,
    /// Its job's manifest was read but could not be deleted (why): the job is not this slot's.
    NotReleased(String),
}

/// How a slot's wait for its job went (logged when it takes the job).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Waited {
    /// Looks at the manifest's place, the one that found it included.
    pub looks: u32,
    /// Whether the look that found it followed a wake (else a long poll's end or a poll's
    /// interval).
    pub woken: bool,
}

/// Whether the task is a warm slot: it has a slot link (and then must not have a job's link).
pub fn is_slot(get: &dyn Fn(&str) -> Option<String>) -> bool {
    get(env::SLOT_MANIFEST_URL).is_some_and(|u| !u.is_empty())
}

/// A warm slot's wait: looks at the slot's manifest link until the manifest is there (403 and 404
/// mean not yet), reads it, deletes it through the release link (which tells the dispatcher the
/// job was taken) and returns it; or gives up at the slot's deadline or before its link expires,
/// whichever is first. Between two looks it long-polls its wake link when it has one (the
/// dispatcher sends a message there once the manifest is written: the next look is at once),
/// else, or when the wake link fails, it waits [`SLOT_POLL`].
pub async fn wait_in_slot(get: &dyn Fn(&str) -> Option<String>, log: &crate::log::Log) -> Result<Slot, String> {
    let parse = |var: &str| -> Result<url::Url, String> {
        let raw = get(var).filter(|u| !u.is_empty()).ok_or_else(|| format!("{var} is not set"))?;
        url::Url::parse(&raw).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(|| format!("{var} is not an http(s) URL"))
    };
    if get(env::MANIFEST_URL).is_some_and(|u| !u.is_empty()) {
        return Err(format!("both {} and {} are set: a task is a job's or a slot's", env::MANIFEST_URL, env::SLOT_MANIFEST_URL));
    }
    let manifest = parse(env::SLOT_MANIFEST_URL)?;
    let release = parse(env::SLOT_RELEASE_URL)?;
    let wake = match get(env::SLOT_WAKE_URL).filter(|u| !u.is_empty()) {
        Some(_) => Some(parse(env::SLOT_WAKE_URL)?),
        None => None,
    };
    let deadline: i64 = get(env::SLOT_DEADLINE)
        .and_then(|d| d.trim().parse().ok())
        .ok_or_else(|| format!("{} must be epoch seconds", env::SLOT_DEADLINE))?;
    let deadline = match link_expiry(&manifest) {
        Some(expires) => deadline.min(expires - SLOT_LINK_MARGIN.as_secs() as i64),
        None => deadline,
    };
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    log.info("waiting for a job", serde_json::json!({ "until": deadline, "seconds": deadline - now(), "wake_link": wake.is_some() }));
    let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(2)).build().map_err(|e| e.to_string())?;
    let mut errors = 0u32;
    let mut wake_errors = 0u32;
    let mut waited = Waited::default();
    loop {
        if now() >= deadline {
            return Ok(Slot::Expired);
        }
        waited.looks += 1;
        match http.get(manifest.clone()).timeout(Duration::from_secs(5)).send().await {
            Ok(r) if r.status().is_success() => {
                let raw = r.bytes().await.map_err(|e| e.without_url().to_string())?;
                if raw.len() > MAX_BYTES {
                    return Err(format!("the manifest is {} bytes, over the {MAX_BYTES} read", raw.len()));
                }
                let received = parse_manifest(&raw)?;
                // The release is what makes the job this slot's: while the manifest is there, the
                // dispatcher takes the job for one never taken and queues it again when this task
                // ends. Run without it, the job would run twice.
                if let Err(e) = delete_link(&release).await {
                    return Ok(Slot::NotReleased(e));
                }
                return Ok(Slot::Job(received, waited));
            }
            Ok(r) if matches!(r.status().as_u16(), 403 | 404) => errors = 0,
            Ok(r) => {
                errors += 1;
                if errors % 20 == 1 {
                    log.warn("the slot's manifest link answered an error", serde_json::json!({ "status": r.status().as_u16() }));
                }
            }
            Err(e) => {
                errors += 1;
                if errors % 20 == 1 {
                    log.warn("the slot's manifest link could not be reached", serde_json::json!({ "error": e.without_url().to_string() }));
                }
            }
        }
        // Without a wake link, or when the look failed (a wake may have been spent on it), the
        // next look is soon.
        let Some(wake) = wake.as_ref().filter(|_| errors == 0) else {
            tokio::time::sleep(SLOT_POLL).await;
            continue;
        };
        waited.woken = false;
        // The long poll, cut short by the slot's deadline (its link outlives that by 30 s).
        let left = Duration::from_secs((deadline - now()).max(1) as u64);
        let most = Duration::from_secs(u64::from(names::pool::WAKE_WAIT_SECONDS) + 5);
        match http.get(wake.clone()).timeout(left.min(most)).send().await {
            Ok(r) if r.status().is_success() => {
                // A message (the dispatcher's wake) or none (20 s passed): look either way.
                waited.woken = r.text().await.is_ok_and(|body| body.contains("<Message>"));
                wake_errors = 0;
            }
            Err(e) if e.is_timeout() => {}
            answer => {
                wake_errors += 1;
                // Once a minute at most while it keeps failing.
                if wake_errors % 240 == 1 {
                    let why = match answer {
                        Ok(r) => serde_json::json!({ "status": r.status().as_u16() }),
                        Err(e) => serde_json::json!({ "error": e.without_url().to_string() }),
                    };
                    log.warn("the slot's wake link failed; it looks at its manifest every 250 ms", why);
                }
                tokio::time::sleep(SLOT_POLL).await;
            }
        }
    }
}

/// When a SigV4 pre-signed link expires (epoch seconds): `X-Amz-Date` + `X-Amz-Expires`.
pub fn link_expiry(url: &url::Url) -> Option<i64> {
    let q = |k: &str| url.query_pairs().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.into_owned());
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let signed = time::PrimitiveDateTime::parse(&q("X-Amz-Date")?, &format).ok()?.assume_utc().unix_timestamp();
    Some(signed + q("X-Amz-Expires")?.parse::<i64>().ok()?)
}

/// A pre-signed GET, with retries; the URL carries a signature, so errors never show it.
pub async fn get_bytes(url: &url::Url) -> Result<Vec<u8>, String> {
    let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().map_err(|e| e.to_string())?;
    let mut last = String::new();
    let mut backoff = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS {
        match http.get(url.clone()).timeout(ATTEMPT_TIMEOUT).send().await {
            Ok(resp) if resp.status().is_success() => {
                let body = resp.bytes().await.map_err(|e| e.without_url().to_string())?;
                if body.len() > MAX_BYTES {
                    return Err(format!("{} bytes, over the {MAX_BYTES} read", body.len()));
                }
                return Ok(body.to_vec());
            }
            Ok(resp) => {
                let status = resp.status();
                last = format!("HTTP {status}");
                if !(status.is_server_error() || status.as_u16() == 429) {
                    break;
                }
            }
            Err(e) => last = e.without_url().to_string(),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_read_even_when_the_job_is_not_valid() {
        let raw = br#"{"version": 1, "job": {"nonsense": true}, "uploads": {"error.json": {"url": "http://s3/b/", "fields": {"key": "jobs/t/error.json"}, "max_bytes": 10}}}"#;
        let m = parse(raw).unwrap();
        assert_eq!(m.uploads["error.json"].fields["key"], "jobs/t/error.json");
        assert_eq!(m.job["nonsense"], true);
        assert!(m.secrets.is_none());
    }

    #[test]
    fn a_links_expiry_is_its_signing_time_plus_its_lifetime() {
        let u = url::Url::parse("https://b.s3.amazonaws.com/slots/s/manifest.json?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261202T101500Z&X-Amz-Expires=3600&X-Amz-Signature=x").unwrap();
        assert_eq!(link_expiry(&u), Some(1_796_206_500 + 3600));
        assert_eq!(link_expiry(&url::Url::parse("https://b/k").unwrap()), None);
    }

    #[test]
    fn another_version_or_malformed_uploads_are_refused() {
        assert!(parse(br#"{"version": 2, "job": {}, "uploads": {}}"#).unwrap_err().contains("version"));
        assert!(parse(br#"{"version": 1, "job": {}, "uploads": {"a": "http://x"}}"#).unwrap_err().contains("upload forms"));
        assert!(parse(b"<xml/>").unwrap_err().contains("not JSON"));
    }
}
