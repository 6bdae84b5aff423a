//! A fixture search engine on 127.0.0.1, so a local job completes with no internet: `/search?q=`
//! answers a results page in the markup the agent reads (`a.result__a`), and each result links to
//! a small page on the same server; `/slow` answers late; `/login` posts a sign-in form to
//! `/account` (for scripted jobs).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};

use crate::gateway::serve;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn query_param(query: &str, name: &str) -> String {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// The page for `req`; `form` is its url-encoded body (the sign-in form posts one).
fn page(req: &Request<()>, form: &str) -> (u16, String) {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    if path == "/search" {
        let q = escape(&query_param(query, "q"));
        let results: String = (1..=5)
            .map(|i| {
                format!(
                    r#"<div class="result"><h2><a class="result__a" href="/page/{i}?q={q}">Result {i} for {q}</a></h2><p>Snippet {i}.</p></div>"#
                )
            })
            .collect();
        (200, format!("<!doctype html><html><head><title>{q} - Fixture Search</title></head><body><h1>Results for {q}</h1>{results}</body></html>"))
    } else if path == "/slow" {
        (200, "<!doctype html><html><head><title>Slow page</title></head><body>Finally.</body></html>".into())
    } else if path == "/login" {
        // A sign-in form for scripted jobs; it shows what is typed into the password field (as
        // some pages do), so a test can see the secret is redacted wherever it lands.
        (200, "<!doctype html><html><head><title>Sign in</title></head><body><form method=post action=/account><input id=user name=user><input id=password name=password type=password><button id=go type=submit>Sign in</button></form><p id=echo></p><script>document.getElementById('password').addEventListener('input', (e) => { document.getElementById('echo').textContent = e.target.value; });</script></body></html>".into())
    } else if path == "/account" {
        let user = escape(&query_param(form, "user"));
        let chars = query_param(form, "password").chars().count();
        (200, format!("<!doctype html><html><head><title>Account</title></head><body><h1 id=welcome>Welcome, {user}</h1><p id=password-length>{chars}</p><table><tr><td class=invoice>INV-1</td></tr><tr><td class=invoice>INV-2</td></tr></table></body></html>"))
    } else if let Some(n) = path.strip_prefix("/page/") {
        let n = escape(n);
        (200, format!("<!doctype html><html><head><title>Fixture page {n}</title></head><body><h1>Fixture page {n}</h1></body></html>"))
    } else {
        (404, "<!doctype html><html><head><title>Not found</title></head><body>Not found</body></html>".into())
    }
}

/// Serves the fixture pages until the returned task is aborted.
pub async fn start(port: u16) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve(port, |req| async move {
        // `/slow?seconds=N`: answers after N seconds (at most 300), for jobs that are still
        // running when a test cancels them.
        if req.uri().path() == "/slow" {
            let secs: u64 = query_param(req.uri().query().unwrap_or(""), "seconds").parse().unwrap_or(60);
            tokio::time::sleep(std::time::Duration::from_secs(secs.min(300))).await;
        }
        let (parts, body) = req.into_parts();
        let form = match http_body_util::Limited::new(body, 64 * 1024).collect().await {
            Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
            Err(_) => String::new(),
        };
        let req = Request::from_parts(parts, ());
        let (status, body) = page(&req, &form);
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
        resp.headers_mut().insert("content-type", "text/html; charset=utf-8".parse().expect("a valid header"));
        Ok::<_, Infallible>(resp)
    })
    .await
}

