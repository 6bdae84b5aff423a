//! The egress guard: a forward HTTP proxy on loopback that Chromium is forced through
//! (`--proxy-server`, with loopback bypass switched off). It resolves every destination itself,
//! checks each address against the [`EgressPolicy`] and connects only to an address it checked, so
//! redirects, DNS answers pointing inside and subresources all meet the same rule. HTTPS arrives as
//! `CONNECT host:port` and is tunnelled without being decrypted.

use names::egress::EgressPolicy;
use crate::log::Log;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

type Body = BoxBody<Bytes, hyper::Error>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Marks responses the guard wrote itself, so they are never mistaken for the site's.
pub const GUARD_HEADER: &str = "x-agent-egress-guard";

/// What happened to one destination the browser asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The policy refused every address of the destination.
    Refused,
    /// The destination was allowed but could not be reached.
    Unreachable,
}

#[derive(Clone, Debug)]
pub struct GuardEvent {
    /// `host:port` as the browser asked for it.
    pub target: String,
    pub kind: EventKind,
    pub reason: String,
}

/// Handle on a running guard: its address and what it refused.
#[derive(Clone)]
pub struct Guard {
    pub addr: SocketAddr,
    events: Arc<Mutex<Vec<GuardEvent>>>,
    policy: Arc<std::sync::RwLock<EgressPolicy>>,
}

impl Guard {
    /// The job's policy from now on (a warm slot's guard starts before its job is known; a
    /// computer-use job narrows it to its `allowed_domains`).
    pub fn set_policy(&self, policy: EgressPolicy) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// A position in the event list, to ask later what happened since.
    pub fn mark(&self) -> usize {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn events_since(&self, mark: usize) -> Vec<GuardEvent> {
        let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events
            .get(mark..)
            .map(<[GuardEvent]>::to_vec)
            .unwrap_or_default()
    }
}

struct State {
    policy: Arc<std::sync::RwLock<EgressPolicy>>,
    events: Arc<Mutex<Vec<GuardEvent>>>,
    log: Arc<Log>,
}

impl State {
    fn record(&self, target: &str, kind: EventKind, reason: String) {
        self.log.warn(
            match kind {
                EventKind::Refused => "egress refused",
                EventKind::Unreachable => "destination unreachable",
            },
            json!({ "target": target, "reason": reason }),
        );
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(GuardEvent {
                target: target.to_string(),
                kind,
                reason,
            });
    }

    /// Resolves `host`, drops every address the policy refuses and connects to the first that
    /// answers. The address connected to is the address checked: no second lookup happens.
    async fn connect(&self, host: &str, port: u16) -> Result<TcpStream, (EventKind, String)> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((bare, port)))
                .await
                .map_err(|_| {
                    (
                        EventKind::Unreachable,
                        "name resolution timed out".to_string(),
                    )
                })?
                .map_err(|e| {
                    (
                        EventKind::Unreachable,
                        format!("name resolution failed: {e}"),
                    )
                })?
                .collect(),
        };
        let mut refusals = Vec::new();
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match self.policy.read().unwrap_or_else(|e| e.into_inner()).check(bare, a.ip(), a.port()) {
                Ok(()) => true,
                Err(why) => {
                    refusals.push(why);
                    false
                }
            })
            .collect();
        if allowed.is_empty() {
            return Err(match refusals.is_empty() {
                true => (
                    EventKind::Unreachable,
                    "the name has no addresses".to_string(),
                ),
                false => (EventKind::Refused, refusals.join("; ")),
            });
        }
        let mut last = String::new();
        for addr in allowed {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Ok(Err(e)) => last = format!("{addr}: {e}"),
                Err(_) => last = format!("{addr}: connect timed out"),
            }
        }
        Err((EventKind::Unreachable, last))
    }
}

/// Starts the guard on an ephemeral loopback port; it runs until the runtime stops.
pub async fn start(policy: EgressPolicy, log: Arc<Log>) -> std::io::Result<Guard> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let events = Arc::new(Mutex::new(Vec::new()));
    let policy = Arc::new(std::sync::RwLock::new(policy));
    let state = Arc::new(State {
        policy: policy.clone(),
        events: events.clone(),
        log,
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .preserve_header_case(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Ok(Guard { addr, events, policy })
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, hyper::Error> {
    if req.method() == Method::CONNECT {
        return Ok(tunnel(state, req).await);
    }
    forward(state, req).await
}

async fn tunnel(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let Some(authority) = req.uri().authority().cloned() else {
        return refusal(StatusCode::BAD_REQUEST, "CONNECT needs host:port");
    };
    let target = authority.as_str().to_string();
    let port = authority.port_u16().unwrap_or(443);
    let upstream = match state.connect(authority.host(), port).await {
        Ok(s) => s,
        Err((kind, reason)) => return failed(&state, &target, kind, reason),
    };
    tokio::spawn(async move {
        if let Ok(upgraded) = hyper::upgrade::on(req).await {
            let mut client = TokioIo::new(upgraded);
            let mut upstream = upstream;
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        }
    });
    Response::new(empty())
}

async fn forward(
    state: Arc<State>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, hyper::Error> {
    let uri = req.uri().clone();
    if uri.scheme_str() != Some("http") {
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            "the proxy forwards absolute http:// URLs only",
        ));
    }
    let Some(authority) = uri.authority().cloned() else {
        return Ok(refusal(StatusCode::BAD_REQUEST, "the URL has no host"));
    };
    let target = format!(
        "{}:{}",
        authority.host(),
        authority.port_u16().unwrap_or(80)
    );
    let upstream = match state
        .connect(authority.host(), authority.port_u16().unwrap_or(80))
        .await
    {
        Ok(s) => s,
        Err((kind, reason)) => return Ok(failed(&state, &target, kind, reason)),
    };
    let (mut sender, conn) =
        match hyper::client::conn::http1::handshake(TokioIo::new(upstream)).await {
            Ok(pair) => pair,
            Err(e) => {
                return Ok(failed(
                    &state,
                    &target,
                    EventKind::Unreachable,
                    e.to_string(),
                ))
            }
        };
    tokio::spawn(conn);
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    *req.uri_mut() = path.parse().unwrap_or_default();
    strip_hop_by_hop(req.headers_mut());
    if !req.headers().contains_key(hyper::header::HOST) {
        if let Ok(v) = HeaderValue::from_str(authority.as_str()) {
            req.headers_mut().insert(hyper::header::HOST, v);
        }
    }
    match sender.send_request(req).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, body.boxed()))
        }
        Err(e) => Ok(failed(
            &state,
            &target,
            EventKind::Unreachable,
            e.to_string(),
        )),
    }
}

fn failed(state: &State, target: &str, kind: EventKind, reason: String) -> Response<Body> {
    let status = match kind {
        EventKind::Refused => StatusCode::FORBIDDEN,
        EventKind::Unreachable => StatusCode::BAD_GATEWAY,
    };
    let text = format!("{target}: {reason}");
    state.record(target, kind, reason);
    refusal(status, &text)
}

fn refusal(status: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(format!("egress guard: {text}\n")))
            .map_err(|n| match n {})
            .boxed(),
    );
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        HeaderName::from_static(GUARD_HEADER),
        HeaderValue::from_static("1"),
    );
    resp
}

fn empty() -> Body {
    Empty::new().map_err(|n| match n {}).boxed()
}

/// Headers that describe one hop (browser to proxy, proxy to server) and must not be forwarded.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "upgrade",
    ] {
        headers.remove(name);
    }
}
