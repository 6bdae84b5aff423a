//! The model service: one request a turn, to Anthropic's Messages API with the tenant's key, or
//! to Amazon Bedrock's InvokeModel with a short-term Bedrock API key (a bearer token the process
//! function mints for this job and this model only). Throttling and overload are waited out with
//! backoff within the job's time; a refusal of the request itself is final. Keys are sent as
//! headers and appear in no error or log line.

use std::time::Duration;

use serde_json::Value;

use super::messages::{Conversation, ANTHROPIC_VERSION};

/// Where the model is and how to reach it.
#[derive(Clone)]
pub enum Endpoint {
    /// Anthropic's API (`https://api.anthropic.com`): `POST /v1/messages`, the key in `x-api-key`.
    Anthropic { base: url::Url, api_key: String },
    /// Bedrock's runtime (`https://bedrock-runtime.<region>.amazonaws.com`):
    /// `POST /model/<id>/invoke`, `Authorization: Bearer <short-term API key>`.
    Bedrock { base: url::Url, bearer: String },
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Anthropic { base, .. } => write!(f, "Anthropic({base}, key redacted)"),
            Endpoint::Bedrock { base, .. } => write!(f, "Bedrock({base}, token redacted)"),
        }
    }
}

/// Why a request got no turn.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelError {
    /// Throttled, overloaded, a server error or no answer: worth sending again (after `wait`,
    /// when the service said).
    Retryable { message: String, wait: Option<Duration> },
    /// The request itself was refused (bad request, key, model): sending it again cannot help.
    Fatal(String),
}

/// A model that answers a conversation's next turn.
pub trait ModelApi {
    fn send(&self, conversation: &Conversation) -> impl std::future::Future<Output = Result<Value, ModelError>> + Send;
}

/// A model at an endpoint.
pub struct Model {
    pub endpoint: Endpoint,
    pub id: String,
    pub max_tokens: u32,
    http: reqwest::Client,
}

/// How long one request may take (a turn with thinking takes a while).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

impl Model {
    /// `proxy`: the egress guard, through which the model's host is reached like any other.
    pub fn new(endpoint: Endpoint, id: &str, max_tokens: u32, proxy: Option<std::net::SocketAddr>) -> Result<Model, String> {
        let mut b = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).timeout(REQUEST_TIMEOUT);
        if let Some(p) = proxy {
            b = b.proxy(reqwest::Proxy::all(format!("http://{p}")).map_err(|e| e.to_string())?);
        }
        Ok(Model { endpoint, id: id.to_owned(), max_tokens, http: b.build().map_err(|e| e.to_string())? })
    }

    fn request(&self, conversation: &Conversation) -> Result<reqwest::RequestBuilder, ModelError> {
        let fatal = ModelError::Fatal;
        Ok(match &self.endpoint {
            Endpoint::Anthropic { base, api_key } => {
                let url = base.join("v1/messages").map_err(|e| fatal(e.to_string()))?;
                self.http
                    .post(url)
                    .header("x-api-key", api_key)
                    .header("anthropic-version", ANTHROPIC_VERSION)
                    .header("anthropic-beta", conversation.beta())
                    .header("content-type", "application/json")
                    .body(conversation.request(&self.id, self.max_tokens).map_err(fatal)?.to_string())
            }
            Endpoint::Bedrock { base, bearer } => {
                let mut url = base.clone();
                url.path_segments_mut().map_err(|()| fatal("the Bedrock endpoint cannot take a path".into()))?.extend(["model", &self.id, "invoke"]);
                self.http
                    .post(url)
                    .bearer_auth(bearer)
                    .header("content-type", "application/json")
                    .body(conversation.bedrock_body(self.max_tokens).map_err(fatal)?.to_string())
            }
        })
    }
}

impl ModelApi for Model {
    async fn send(&self, conversation: &Conversation) -> Result<Value, ModelError> {
        let response = self.request(conversation)?.send().await.map_err(|e| ModelError::Retryable { message: e.without_url().to_string(), wait: None })?;
        let status = response.status();
        let wait = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
        let raw = response.bytes().await.map_err(|e| ModelError::Retryable { message: e.without_url().to_string(), wait: None })?;
        let body: Value = match serde_json::from_slice(&raw) {
            Ok(v) => v,
            // A gateway's HTML error page: as its status says.
            Err(_) if !status.is_success() => Value::Null,
            Err(e) => return Err(ModelError::Retryable { message: format!("the answer is not JSON: {e}"), wait: None }),
        };
        if status.is_success() {
            return Ok(body);
        }
        // Both services say why in `{"error": {"type", "message"}}` (Bedrock: `{"message"}`).
        let why = body["error"]["message"].as_str().or(body["message"].as_str()).unwrap_or("").to_owned();
        let message = format!("HTTP {}: {why}", status.as_u16());
        Err(match status.as_u16() {
            408 | 429 | 500 | 502 | 503 | 504 | 529 => ModelError::Retryable { message, wait },
            _ => ModelError::Fatal(message),
        })
    }
}

/// Sends until a turn comes back, a refusal is final, or `deadline` leaves no time for another
/// try: backoff from 1 s, doubling to 20 s, or the service's `retry-after`. The errors seen, when
/// it gives up.
pub async fn send_with_retries<M: ModelApi>(model: &M, conversation: &Conversation, deadline: tokio::time::Instant) -> Result<Value, String> {
    let mut backoff = Duration::from_secs(1);
    let mut tries = 0u32;
    loop {
        tries += 1;
        match model.send(conversation).await {
            Ok(turn) => return Ok(turn),
            Err(ModelError::Fatal(e)) => return Err(format!("the model refused the request: {e}")),
            Err(ModelError::Retryable { message, wait }) => {
                let wait = wait.unwrap_or(backoff).min(Duration::from_secs(60));
                if tokio::time::Instant::now() + wait >= deadline {
                    return Err(format!("the model did not answer in the job's time ({tries} tries; the last: {message})"));
                }
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(Duration::from_secs(20));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;
    use serde_json::json;

    use super::super::models::COMPUTER_20251124;
    use super::super::screen::Scale;
    use super::*;

    /// A request the stand-in got: method, path, headers (lower-case names), body.
    type Seen = (String, String, Vec<(String, String)>, Value);

    /// A loopback stand-in that answers its script in order (status, retry-after, body).
    async fn stand_in(script: Vec<(u16, Option<&'static str>, Value)>) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter().rev().collect::<Vec<_>>()));
        let (s, sc) = (seen.clone(), script.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s, sc) = (s.clone(), sc.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (s, sc) = (s.clone(), sc.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let headers = parts.headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
                            s.lock().unwrap().push((parts.method.to_string(), parts.uri.path().to_owned(), headers, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                            let (status, retry_after, answer) = sc.lock().unwrap().pop().unwrap_or((500, None, json!({"error": {"message": "script ended"}})));
                            let mut r = hyper::Response::builder().status(status).header("content-type", "application/json");
                            if let Some(ra) = retry_after {
                                r = r.header("retry-after", ra);
                            }
                            Ok::<_, std::convert::Infallible>(r.body(Full::new(Bytes::from(answer.to_string()))).unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        (addr, seen)
    }

    fn header<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
        seen.2.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn conversation() -> Conversation {
        Conversation::new("goal", &COMPUTER_20251124, Scale::for_viewport(1280, 800), &[])
    }

    const TURN: &str = r#"{"content": [{"type": "text", "text": "done"}], "stop_reason": "end_turn", "usage": {"input_tokens": 5, "output_tokens": 1}}"#;

    #[tokio::test]
    async fn anthropics_api_gets_the_key_version_and_beta_as_headers() {
        let (addr, seen) = stand_in(vec![(200, None, serde_json::from_str(TURN).unwrap())]).await;
        let base = url::Url::parse(&format!("http://{addr}/")).unwrap();
        let model = Model::new(Endpoint::Anthropic { base, api_key: "sk-test-123".into() }, "claude-opus-4-6", 2048, None).unwrap();
        let turn = model.send(&conversation()).await.unwrap();
        assert_eq!(turn["stop_reason"], "end_turn");
        let seen = seen.lock().unwrap();
        let r = &seen[0];
        assert_eq!((r.0.as_str(), r.1.as_str()), ("POST", "/v1/messages"));
        assert_eq!(header(r, "x-api-key"), Some("sk-test-123"));
        assert_eq!(header(r, "anthropic-version"), Some(ANTHROPIC_VERSION));
        assert_eq!(header(r, "anthropic-beta"), Some("computer-use-2025-11-24"));
        assert_eq!((r.3["model"].as_str(), r.3["max_tokens"].as_u64()), (Some("claude-opus-4-6"), Some(2048)));
        assert!(!format!("{:?}", model.endpoint).contains("sk-test"), "the key is not in the endpoint's Debug");
    }

    #[tokio::test]
    async fn bedrock_gets_the_model_in_the_path_a_bearer_token_and_the_version_in_the_body() {
        let (addr, seen) = stand_in(vec![(200, None, serde_json::from_str(TURN).unwrap())]).await;
        let base = url::Url::parse(&format!("http://{addr}")).unwrap();
        let model = Model::new(Endpoint::Bedrock { base, bearer: "bedrock-api-key-abc".into() }, "us.anthropic.claude-opus-4-5-20251101-v1:0", 1024, None).unwrap();
        model.send(&conversation()).await.unwrap();
        let seen = seen.lock().unwrap();
        let r = &seen[0];
        assert_eq!(r.1, "/model/us.anthropic.claude-opus-4-5-20251101-v1:0/invoke");
        assert_eq!(header(r, "authorization"), Some("Bearer bedrock-api-key-abc"));
        assert!(header(r, "x-api-key").is_none() && header(r, "anthropic-beta").is_none());
        assert_eq!(r.3["anthropic_version"], "bedrock-2023-05-31");
        assert_eq!(r.3["anthropic_beta"], json!(["computer-use-2025-11-24"]));
        assert!(r.3.get("model").is_none());
    }

    #[tokio::test]
    async fn overload_is_retried_after_the_wait_the_service_names_and_a_bad_request_is_final() {
        let (addr, seen) = stand_in(vec![
            (529, Some("0"), json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
            (429, Some("0"), json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})),
            (200, None, serde_json::from_str(TURN).unwrap()),
            (400, None, json!({"type": "error", "error": {"type": "invalid_request_error", "message": "image too large"}})),
        ])
        .await;
        let base = url::Url::parse(&format!("http://{addr}/")).unwrap();
        let model = Model::new(Endpoint::Anthropic { base, api_key: "k".into() }, "claude-opus-4-6", 1024, None).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let turn = send_with_retries(&model, &conversation(), deadline).await.unwrap();
        assert_eq!(turn["content"][0]["text"], "done");
        assert_eq!(seen.lock().unwrap().len(), 3);
        let e = send_with_retries(&model, &conversation(), deadline).await.unwrap_err();
        assert_eq!(e, "the model refused the request: HTTP 400: image too large");
    }

    #[tokio::test]
    async fn the_model_is_reached_through_the_egress_guard_and_its_policy_holds() {
        let (addr, seen) = stand_in(vec![(200, None, serde_json::from_str(TURN).unwrap())]).await;
        let base = url::Url::parse(&format!("http://{addr}/")).unwrap();
        let log = Arc::new(crate::log::Log::new(""));
        // Loopback is refused unless the policy names it.
        let refusing = crate::proxy::start(names::egress::EgressPolicy::default(), log.clone()).await.unwrap();
        let model = Model::new(Endpoint::Anthropic { base: base.clone(), api_key: "k".into() }, "claude-opus-4-6", 1024, Some(refusing.addr)).unwrap();
        assert!(matches!(model.send(&conversation()).await, Err(ModelError::Fatal(_))));
        assert!(seen.lock().unwrap().is_empty(), "the stand-in got nothing");
        let allowing = crate::proxy::start(names::egress::EgressPolicy::parse(&addr.to_string()).unwrap(), log).await.unwrap();
        let model = Model::new(Endpoint::Anthropic { base, api_key: "k".into() }, "claude-opus-4-6", 1024, Some(allowing.addr)).unwrap();
        model.send(&conversation()).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
