//! What the local stack's tests share: one API call as a client makes it, and the wait for a
//! warm slot.
#![allow(dead_code)]

use local_stack::stack::LocalStack;
use serde_json::Value;

/// `method path` with `key`, a JSON body if given: the status and the JSON answer (Null if none).
pub async fn call(stack: &LocalStack, method: reqwest::Method, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", stack.api_url)).header(names::routes::API_KEY_HEADER, key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Waits (a minute at most) until the stack has launched its first warm slot.
pub async fn first_slot(stack: &LocalStack) {
    let started = std::time::Instant::now();
    while stack.slots_launched() < 1 {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the warm slot never started");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
