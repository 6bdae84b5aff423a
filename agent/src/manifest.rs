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
}

pub fn parse(raw: &[u8]) -> Result<Received, String> {
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
    Ok(Received { job: v.get("job").cloned().unwrap_or(Value::Null), uploads, secrets })
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
    let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().map_err(|e| e.to_string())?;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match http.delete(delete.clone()).timeout(ATTEMPT_TIMEOUT).send().await {
            Ok(r) if r.status().is_success() => {
                log.info("secrets read and deleted", serde_json::json!({ "secrets": secrets.keys().collect::<Vec<_>>() }));
                return Ok(secrets);
            }
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.without_url().to_string(),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
    }
    log.warn("the job's secrets could not be deleted", serde_json::json!({ "error": last }));
    Ok(secrets)
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
    fn another_version_or_malformed_uploads_are_refused() {
        assert!(parse(br#"{"version": 2, "job": {}, "uploads": {}}"#).unwrap_err().contains("version"));
        assert!(parse(br#"{"version": 1, "job": {}, "uploads": {"a": "http://x"}}"#).unwrap_err().contains("upload forms"));
        assert!(parse(b"<xml/>").unwrap_err().contains("not JSON"));
    }
}
