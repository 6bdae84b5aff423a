//! The Lambda adapters: decode each function's event into the plain types of [`crate::api`],
//! [`crate::process`] and [`crate::reconcile`], and encode their answers.

use crate::api::{self, ApiRequest, ApiResponse};
use crate::{process, reconcile, webhook, App, Function};
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_http::{Body, RequestExt};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

pub type Error = lambda_runtime::Error;

/// Runs the Lambda runtime loop for `function` until the runtime API goes away.
pub async fn run(function: Function) -> Result<(), Error> {
    let app = Arc::new(App::from_env(vec![function]).await?);
    match function {
        Function::Process => {
            lambda_runtime::run(service_fn(move |ev: LambdaEvent<SqsEvent>| {
                let app = app.clone();
                async move { Ok::<_, Error>(process::batch(&app, ev.payload).await) }
            }))
            .await
        }
        Function::Webhook => {
            lambda_runtime::run(service_fn(move |ev: LambdaEvent<SqsEvent>| {
                let app = app.clone();
                async move { Ok::<_, Error>(webhook::batch(&app, ev.payload).await) }
            }))
            .await
        }
        Function::Reconcile => {
            lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
                let app = app.clone();
                async move {
                    let outcome = reconcile::event(&app, &ev.payload).await?;
                    tracing::info!(outcome = ?outcome, "reconciled");
                    Ok::<_, Error>(serde_json::json!({"outcome": format!("{outcome:?}")}))
                }
            }))
            .await
        }
        _ => {
            lambda_http::run(service_fn(move |req: lambda_http::Request| {
                let app = app.clone();
                async move { Ok::<_, Error>(http_response(api::handle(&app, &api_request(&req)).await)) }
            }))
            .await
        }
    }
}

/// An API Gateway REST proxy request as an [`ApiRequest`].
pub fn api_request(req: &lambda_http::Request) -> ApiRequest {
    let params = req.path_parameters();
    let (mut request_id, mut api_key_id, mut resource) = (None, None, None);
    if let Some(lambda_http::request::RequestContext::ApiGatewayV1(ctx)) = req.request_context_ref() {
        request_id = ctx.request_id.clone();
        api_key_id = ctx.identity.api_key_id.clone();
        resource = ctx.resource_path.clone();
    }
    // The resource template with its parameter filled in is the path without any stage prefix.
    let path = match resource {
        Some(r) => match params.first(names::routes::TASK_ID_PARAM) {
            Some(id) => r.replace(&format!("{{{}}}", names::routes::TASK_ID_PARAM), id),
            None => r,
        },
        None => req.raw_http_path().to_owned(),
    };
    let request_id = request_id
        .or_else(|| req.lambda_context_ref().map(|c| c.request_id.clone()))
        .unwrap_or_default();
    ApiRequest {
        method: req.method().as_str().to_owned(),
        path,
        query: req.query_string_parameters().iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        headers: req
            .headers()
            .iter()
            // Kept even when not visible ASCII, so the API refuses such a value (an
            // Idempotency-Key, say) instead of taking the header as absent.
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: match req.body() {
            Body::Empty => Vec::new(),
            Body::Text(t) => t.as_bytes().to_vec(),
            Body::Binary(b) => b.clone(),
            _ => Vec::new(),
        },
        api_key_id,
        request_id,
    }
}

pub fn http_response(r: ApiResponse) -> lambda_http::Response<Body> {
    let mut resp = lambda_http::Response::new(Body::Text(r.body.to_string()));
    *resp.status_mut() = http::StatusCode::from_u16(r.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    if let Some(secs) = r.retry_after {
        resp.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header that is not visible ASCII reaches the API as it came (lossily), to be refused
    /// there; dropping it would take an invalid Idempotency-Key for none (found by the fuzz run).
    #[test]
    fn headers_that_are_not_ascii_are_kept() {
        let value = http::HeaderValue::from_bytes(&[0xd7, 0xf8, 0x9b]).unwrap();
        let req: lambda_http::Request = http::Request::builder()
            .method("POST")
            .uri("/jobs")
            .header(names::routes::IDEMPOTENCY_KEY_HEADER, value)
            .body(Body::Empty)
            .unwrap();
        let api = api_request(&req);
        let key = api.header(names::routes::IDEMPOTENCY_KEY_HEADER);
        assert!(key.is_some(), "the header was dropped");
        assert!(crate::api::request::idempotency_key(key).is_err());
    }
}
