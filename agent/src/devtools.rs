//! The agent's own DevTools connection to the page, beside chromedriver's: a WebSocket to the
//! page's target on Chromium's loopback DevTools port.
//!
//! chromedriver answers one command at a time and relays each answer through its own JSON (a
//! screenshot's megabyte of base64 is parsed and written again on its way). Here a command is
//! written as soon as it is sent and its answer awaited apart ([`Devtools::send`]), so commands
//! can be pipelined as DevTools clients do: a click's pointer move and press are in the page's
//! input queue at once, and the move does not wait for an animation frame of its own (the press
//! behind it has it dispatched at once). Commands one task sends on the connection reach the page
//! in the order it sent them.
//!
//! What needs chromedriver's knowledge of navigations (waiting for a page to load) stays on
//! WebDriver; this connection only acts and looks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

type Waiting = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>>;
type Sink = futures_util::stream::SplitSink<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>, Message>;

/// A DevTools connection to one page.
pub struct Devtools {
    sink: tokio::sync::Mutex<Sink>,
    next: AtomicU64,
    /// The commands sent and not answered yet; None once the connection has closed.
    waiting: Waiting,
    reader: tokio::task::JoinHandle<()>,
}

/// A command's answer to come: await [`Pending::answer`].
pub struct Pending {
    method: &'static str,
    rx: oneshot::Receiver<Result<Value, String>>,
}

impl Pending {
    pub async fn answer(self) -> Result<Value, String> {
        let method = self.method;
        self.rx.await.map_err(|_| format!("{method}: the DevTools connection closed"))?.map_err(|e| format!("{method}: {e}"))
    }
}

impl Devtools {
    /// Connects to the page `target` (chromedriver's window handle is the page's DevTools target
    /// id) through the DevTools port `port`.
    pub async fn connect(port: u16, target: &str) -> Result<Devtools, String> {
        let listing = async {
            let client = reqwest::Client::builder().no_proxy().build()?;
            client.get(format!("http://127.0.0.1:{port}/json/list")).send().await?.error_for_status()?.bytes().await
        };
        let body = listing.await.map_err(|e| format!("listing the browser's pages: {e}"))?;
        let list: Value = serde_json::from_slice(&body).map_err(|e| format!("listing the browser's pages: {e}"))?;
        let page = list.as_array().into_iter().flatten().find(|t| t["id"] == target).ok_or_else(|| format!("the browser has no page `{target}`"))?;
        let url = page["webSocketDebuggerUrl"].as_str().ok_or("the page has no DevTools address")?;
        Devtools::open(url).await
    }

    /// Connects to the DevTools WebSocket at `url`.
    pub async fn open(url: &str) -> Result<Devtools, String> {
        let (socket, _) = tokio_tungstenite::connect_async(url).await.map_err(|e| format!("connecting to the page's DevTools: {e}"))?;
        let (sink, mut stream) = socket.split();
        let waiting: Waiting = Arc::new(Mutex::new(Some(HashMap::new())));
        let answers = waiting.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else { continue };
                let Ok(mut reply) = serde_json::from_str::<Value>(&text) else { continue };
                // Events (no id) are not asked for here.
                let Some(id) = reply["id"].as_u64() else { continue };
                let outcome = match reply.get("error") {
                    Some(e) => Err(e["message"].as_str().unwrap_or("failed").to_string()),
                    None => Ok(reply["result"].take()),
                };
                let to = answers.lock().unwrap_or_else(|p| p.into_inner()).as_mut().and_then(|w| w.remove(&id));
                if let Some(to) = to {
                    let _ = to.send(outcome);
                }
            }
            // Closed: every command still waiting fails, and so does every one sent from now.
            answers.lock().unwrap_or_else(|p| p.into_inner()).take();
        });
        Ok(Devtools { sink: tokio::sync::Mutex::new(sink), next: AtomicU64::new(1), waiting, reader })
    }

    /// Writes `method` to the page now; its answer comes through the [`Pending`].
    pub async fn send(&self, method: &'static str, params: Value) -> Result<Pending, String> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match self.waiting.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(waiting) => waiting.insert(id, tx),
            None => return Err(format!("{method}: the DevTools connection closed")),
        };
        let text = json!({ "id": id, "method": method, "params": params }).to_string();
        if let Err(e) = self.sink.lock().await.send(Message::text(text)).await {
            if let Some(w) = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                w.remove(&id);
            }
            return Err(format!("{method}: {e}"));
        }
        Ok(Pending { method, rx })
    }

    /// Sends `method` and waits for its answer.
    pub async fn call(&self, method: &'static str, params: Value) -> Result<Value, String> {
        self.send(method, params).await?.answer().await
    }
}

impl Drop for Devtools {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DevTools endpoint on loopback that reads `n` commands, then answers them last first
    /// (the second with an error, after an event), then closes.
    async fn endpoint(n: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/devtools/page/x", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let mut got = Vec::new();
            while got.len() < n {
                let Some(Ok(Message::Text(t))) = ws.next().await else { return };
                got.push(serde_json::from_str::<Value>(&t).unwrap());
            }
            ws.send(Message::text(json!({"method": "Page.loadEventFired", "params": {}}).to_string())).await.unwrap();
            for c in got.iter().rev() {
                let reply = if c["id"] == 2 {
                    json!({"id": c["id"], "error": {"code": -32000, "message": "No node found"}})
                } else {
                    json!({"id": c["id"], "result": {"echo": c["method"], "x": c["params"]["x"]}})
                };
                ws.send(Message::text(reply.to_string())).await.unwrap();
            }
            ws.close(None).await.unwrap();
        });
        url
    }

    #[tokio::test]
    async fn pipelined_commands_are_written_in_order_and_each_gets_its_own_answer() {
        let devtools = Devtools::open(&endpoint(3).await).await.unwrap();
        let a = devtools.send("Input.dispatchMouseEvent", json!({"x": 1})).await.unwrap();
        let b = devtools.send("DOM.describeNode", json!({"x": 2})).await.unwrap();
        let c = devtools.send("Input.dispatchMouseEvent", json!({"x": 3})).await.unwrap();
        assert_eq!(c.answer().await.unwrap(), json!({"echo": "Input.dispatchMouseEvent", "x": 3}));
        assert_eq!(b.answer().await.unwrap_err(), "DOM.describeNode: No node found");
        assert_eq!(a.answer().await.unwrap(), json!({"echo": "Input.dispatchMouseEvent", "x": 1}));
    }

    #[tokio::test]
    async fn a_closed_connection_fails_what_waits_and_what_is_sent_after() {
        let devtools = Devtools::open(&endpoint(2).await).await.unwrap();
        let first = devtools.send("Runtime.evaluate", json!({"x": 1})).await.unwrap();
        // The endpoint answers once it has both (the second with an error), then closes.
        assert_eq!(devtools.call("Runtime.evaluate", json!({"x": 2})).await.unwrap_err(), "Runtime.evaluate: No node found");
        assert_eq!(first.answer().await.unwrap()["x"], 1);
        for _ in 0..50 {
            match devtools.call("Page.captureScreenshot", json!({})).await {
                Err(e) if e == "Page.captureScreenshot: the DevTools connection closed" => return,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                Ok(v) => panic!("answered after the close: {v}"),
            }
        }
        panic!("a command sent after the close did not fail as closed");
    }
}
