//! Uploads through the pre-signed POST forms of the manifest (multipart, the file last), with
//! retries inside the deadline. A form's policy binds the key, the content type and the size; a
//! file over its size is not sent at all.

use crate::error::AgentError;
use crate::log::Log;
use names::manifest::Upload;
use names::Output;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const ATTEMPT_CAP: Duration = Duration::from_secs(30);

pub struct Uploader {
    http: reqwest::Client,
    /// By file name below the job's prefix.
    forms: BTreeMap<String, Upload>,
    log: Arc<Log>,
    /// The job's secrets, taken out of every text output.
    redactor: logging::Redactor,
}

impl Uploader {
    pub fn new(forms: BTreeMap<String, Upload>, log: Arc<Log>) -> Result<Uploader, String> {
        for (name, form) in &forms {
            let url = url::Url::parse(&form.url).map_err(|e| format!("the upload form of `{name}` has no valid URL: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("the upload form of `{name}` is not an http(s) form"));
            }
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let redactor = log.redactor();
        Ok(Uploader { http, forms, log, redactor })
    }

    pub fn can_upload(&self, output: Output) -> bool {
        self.forms.contains_key(output.file_name())
    }

    /// One of the job's fixed outputs.
    pub async fn put(&self, output: Output, body: Vec<u8>, deadline: Instant) -> Result<(), AgentError> {
        // Text a page or the job's own words could carry a secret into; the screenshot cannot be
        // redacted (a typed secret shows as a password field shows it).
        let body = match output {
            Output::Result | Output::Error | Output::Html | Output::Log => self.redactor.apply(&body),
            Output::Screenshot => body,
        };
        self.put_file(output.file_name(), output.content_type(), body, deadline).await
    }

    /// A file the steps named (a download, a PDF, extracted text), with the job's secrets
    /// redacted where the file is text. A PDF or an image cannot be: its text is compressed or
    /// drawn (as the screenshot shows a typed secret as its field shows it).
    pub async fn put_named(&self, name: &str, content_type: &str, body: Vec<u8>, deadline: Instant) -> Result<(), AgentError> {
        let body = if is_text(content_type) { self.redactor.apply(&body) } else { body };
        self.put_file(name, content_type, body, deadline).await
    }

    /// POSTs `body` as the file `name`, retrying transport errors, 408, 429 and 5xx until
    /// `deadline`. A file without a form is skipped with a warning: the process function makes a
    /// form for every file the job can produce.
    pub async fn put_file(&self, name: &str, content_type: &str, body: Vec<u8>, deadline: Instant) -> Result<(), AgentError> {
        let Some(form) = self.forms.get(name) else {
            self.log.warn("no upload form; file skipped", json!({ "file": name }));
            return Ok(());
        };
        let failed = |reason: String| AgentError::Upload { output: name.to_string(), reason };
        let bytes = body.len();
        if bytes as u64 > form.max_bytes {
            return Err(failed(format!("{bytes} bytes, over the {} its upload allows", form.max_bytes)));
        }
        let started = std::time::Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::from("no attempt fitted before the deadline");
        for attempt in 1..=ATTEMPTS {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut multipart = reqwest::multipart::Form::new();
            for (k, v) in &form.fields {
                multipart = multipart.text(k.clone(), v.clone());
            }
            let file = reqwest::multipart::Part::bytes(body.clone())
                .file_name(name.rsplit('/').next().unwrap_or(name).to_string())
                .mime_str(content_type)
                .map_err(|e| failed(format!("content type {content_type}: {e}")))?;
            multipart = multipart.part("file", file);
            let request = self.http.post(&form.url).timeout(left.min(ATTEMPT_CAP)).multipart(multipart);
            let retry = match request.send().await {
                Ok(resp) if resp.status().is_success() => {
                    self.log.info(
                        "uploaded",
                        json!({ "file": name, "bytes": bytes, "attempt": attempt, "ms": started.elapsed().as_millis() as u64 }),
                    );
                    return Ok(());
                }
                Ok(resp) => {
                    let status = resp.status();
                    let text: String = resp.text().await.unwrap_or_default().chars().take(300).collect();
                    last = format!("HTTP {status}: {text}");
                    status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429
                }
                Err(e) => {
                    last = e.without_url().to_string();
                    true
                }
            };
            self.log.warn("upload attempt failed", json!({ "file": name, "attempt": attempt, "error": last }));
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

/// Whether a file of `content_type` is text a secret could be written into as text.
fn is_text(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(essence.as_str(), "application/json" | "application/xml" | "application/javascript" | "application/x-www-form-urlencoded" | "application/x-ndjson")
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_files_are_redacted_and_binary_ones_cannot_be() {
        for text in ["text/plain", "text/csv; charset=utf-8", "application/json", "application/ld+json", "image/svg+xml", "TEXT/HTML"] {
            assert!(super::is_text(text), "{text}");
        }
        for binary in ["application/pdf", "image/png", "application/octet-stream", "application/zip"] {
            assert!(!super::is_text(binary), "{binary}");
        }
    }
}
