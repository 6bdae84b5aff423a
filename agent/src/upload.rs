//! Uploads through the pre-signed PUT URLs the job was given, with retries inside the deadline.

use crate::config::UploadUrls;
use crate::error::AgentError;
use crate::log::Log;
use names::Output;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const ATTEMPT_CAP: Duration = Duration::from_secs(30);

pub struct Uploader {
    http: reqwest::Client,
    urls: UploadUrls,
    log: Arc<Log>,
}

impl Uploader {
    pub fn new(urls: UploadUrls, log: Arc<Log>) -> Result<Uploader, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Uploader { http, urls, log })
    }

    pub fn can_upload(&self, output: Output) -> bool {
        self.urls.contains_key(&output)
    }

    /// PUTs `body` as `output`, retrying transport errors, 408, 429 and 5xx until `deadline`.
    /// An output without a URL is skipped with a warning: the API only asks for URLs of outputs
    /// the job can produce.
    pub async fn put(
        &self,
        output: Output,
        body: Vec<u8>,
        deadline: Instant,
    ) -> Result<(), AgentError> {
        let Some(url) = self.urls.get(&output) else {
            self.log.warn(
                "no upload URL; output skipped",
                json!({ "output": output.as_str() }),
            );
            return Ok(());
        };
        let failed = |reason: String| AgentError::Upload {
            output: output.file_name(),
            reason,
        };
        let bytes = body.len();
        let started = std::time::Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::from("no attempt fitted before the deadline");
        for attempt in 1..=ATTEMPTS {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let request = self
                .http
                .put(url.clone())
                .header(reqwest::header::CONTENT_TYPE, output.content_type())
                .timeout(left.min(ATTEMPT_CAP))
                .body(body.clone());
            let retry = match request.send().await {
                Ok(resp) if resp.status().is_success() => {
                    self.log.info(
                        "uploaded",
                        json!({ "output": output.as_str(), "bytes": bytes, "attempt": attempt, "ms": started.elapsed().as_millis() as u64 }),
                    );
                    return Ok(());
                }
                Ok(resp) => {
                    let status = resp.status();
                    let text: String = resp
                        .text()
                        .await
                        .unwrap_or_default()
                        .chars()
                        .take(300)
                        .collect();
                    last = format!("HTTP {status}: {text}");
                    status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429
                }
                // The URL carries a signature: log the failure without it.
                Err(e) => {
                    last = e.without_url().to_string();
                    true
                }
            };
            self.log.warn(
                "upload attempt failed",
                json!({ "output": output.as_str(), "attempt": attempt, "error": last }),
            );
            if !retry {
                break;
            }
            let wake = Instant::now() + backoff;
            if wake >= deadline {
                break;
            }
            tokio::time::sleep_until(wake).await;
            backoff *= 2;
        }
        Err(failed(last))
    }
}
