//! The API Gateway stand-in: serves the REST API's routes under its stage on 127.0.0.1 with API
//! Gateway's behaviour in front of the functions — `x-api-key` required (403
//! `{"message":"Forbidden"}`), unknown routes 403 `Missing Authentication Token`, per-key rate and
//! burst limits (429) — and hands each request to the same handler code as the Lambdas, as the
//! same REST proxy event (with `requestContext.identity.apiKeyId`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

/// API Gateway refuses payloads over 10 MB before any function sees them.
const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

/// Serves `handler` on 127.0.0.1:`port` (0 = any free port) until the task is aborted.
pub async fn serve<F, Fut>(port: u16, handler: F) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let handler = handler.clone();
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let service = hyper::service::service_fn(handler);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    Ok((addr, task))
}

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One API key of the usage plan.
#[derive(Clone, Debug)]
pub struct ApiKey {
    pub id: String,
    pub tenant: String,
}

pub struct Gateway {
    app: functions::App,
    /// key value -> key
    keys: HashMap<String, ApiKey>,
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

fn json_response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert("content-type", "application/json".parse().expect("a valid header"));
    resp
}

fn message(status: u16, text: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "message": text }))
}

impl Gateway {
    pub fn new(app: functions::App, keys: HashMap<String, ApiKey>, rate: u32, burst: u32) -> Gateway {
        Gateway { app, keys, rate: rate as f64, burst: burst as f64, buckets: Mutex::new(HashMap::new()) }
    }

    fn admit(&self, key_id: &str) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let b = buckets.entry(key_id.to_string()).or_insert(Bucket { tokens: self.burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
        let stage_prefix = format!("/{}", names::routes::STAGE);
        let full_path = req.uri().path().to_string();
        let Some(path) = full_path.strip_prefix(&stage_prefix).filter(|p| p.starts_with('/')).map(str::to_string) else {
            return Ok(message(403, "Missing Authentication Token"));
        };
        let method = req.method().as_str().to_string();
        let Some((route, task_id)) = functions::api::route_of(&method, &path) else {
            return Ok(message(403, "Missing Authentication Token"));
        };
        let key_value = req.headers().get(names::routes::API_KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
        let Some(key) = key_value.as_deref().and_then(|k| self.keys.get(k)).cloned() else {
            return Ok(message(403, "Forbidden"));
        };
        if !self.admit(&key.id) {
            return Ok(message(429, "Too Many Requests"));
        }

        let headers: Vec<(String, String)> =
            req.headers().iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
        let query: Vec<(String, String)> =
            form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let body = match Limited::new(req.into_body(), MAX_PAYLOAD).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return Ok(message(413, "Request Too Long")),
        };
        let (body, is_base64_encoded) = match std::str::from_utf8(&body) {
            _ if body.is_empty() => (None, false),
            Ok(text) => (Some(text.to_string()), false),
            Err(_) => (Some(base64::engine::general_purpose::STANDARD.encode(&body)), true),
        };
        let event = testenv::events::api_gateway_proxy(testenv::events::ProxyRequest {
            method,
            resource: route.path.to_string(),
            path,
            path_parameters: task_id.map(|id| (names::routes::TASK_ID_PARAM.to_string(), id)).into_iter().collect(),
            query,
            headers,
            body,
            is_base64_encoded,
            api_key: key_value,
            api_key_id: key.id.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            time_epoch_millis: functions::time::now_millis(),
        });
        // Through lambda_http's own decoding of the event, as in the deployed function.
        let lambda_request = match serde_json::to_string(&event).map_err(|e| e.to_string()).and_then(|e| lambda_http::request::from_str(&e).map_err(|e| e.to_string())) {
            Ok(r) => r,
            Err(e) => return Ok(json_response(500, &json!({"message": format!("gateway could not build the proxy event: {e}")}))),
        };
        let api_request = functions::lambda::api_request(&lambda_request);
        let response = functions::api::handle(&self.app, &api_request).await;
        let mut resp = json_response(response.status, &response.body);
        if let Some(secs) = response.retry_after {
            resp.headers_mut().insert(hyper::header::RETRY_AFTER, secs.into());
        }
        Ok(resp)
    }
}
