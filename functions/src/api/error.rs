//! The errors an API caller acts on, and the one place they become HTTP status codes and JSON.

use serde_json::json;

/// An error answered to the API caller. `Display` is the message the caller reads; internal
/// detail never reaches it (it goes to the function's log with the request id instead).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// The body is not JSON (or not a JSON object).
    MalformedJson(String),
    /// Fields the API does not know; `field` is the first, the message names them all.
    UnknownFields(Vec<String>),
    /// A field or parameter has the wrong JSON type.
    InvalidType { field: String, expected: &'static str },
    /// A field or parameter is out of range or badly formed.
    InvalidValue { field: String, message: String },
    /// A required field is missing.
    MissingField { field: String, message: String },
    /// The body is larger than the API accepts.
    PayloadTooLarge { limit: usize },
    UnsupportedMediaType(String),
    /// The API key has no tenant, or the body names another tenant.
    Forbidden(&'static str),
    /// No such job for this tenant (another tenant's job is also not found).
    NotFound,
    /// No such route on this function.
    NoRoute,
    IdempotencyConflict,
    JobFinished(names::JobStatus),
    /// A redelivery of a job that has not finished (its event does not exist yet).
    JobNotFinished(names::JobStatus),
    /// A redelivery of a job submitted without a webhook.
    NoWebhook,
    /// A redelivery while the current round is young and still being sent; again after
    /// `retry_after` seconds (`Retry-After`).
    WebhookInFlight { retry_after: u32 },
    /// The tenant has `max_queued` jobs queued; the job was not created. Try again after
    /// `retry_after` seconds (`Retry-After`).
    TenantQueueFull { max_queued: u32, retry_after: u32 },
    /// An AWS call failed; the caller gets the request id to quote.
    Internal { request_id: String },
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::MalformedJson(why) => write!(f, "the request body is not valid JSON: {why}"),
            ApiError::UnknownFields(names) => {
                let list = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
                if names.len() == 1 {
                    write!(f, "unknown field {list}")
                } else {
                    write!(f, "unknown fields {list}")
                }
            }
            ApiError::InvalidType { field, expected } => write!(f, "`{field}` must be {expected}"),
            ApiError::InvalidValue { message, .. } | ApiError::MissingField { message, .. } => {
                f.write_str(message)
            }
            ApiError::PayloadTooLarge { limit } => {
                write!(f, "the request body is larger than {limit} bytes")
            }
            ApiError::UnsupportedMediaType(ct) => {
                write!(f, "content type `{ct}` is not supported; send application/json")
            }
            ApiError::Forbidden(why) => f.write_str(why),
            ApiError::NotFound => f.write_str("no such job"),
            ApiError::NoRoute => f.write_str("no such route"),
            ApiError::IdempotencyConflict => f.write_str(
                "this Idempotency-Key was already used with a different request body",
            ),
            ApiError::JobFinished(status) => write!(f, "the job already finished ({status})"),
            ApiError::JobNotFinished(status) => write!(f, "the job has not finished ({status}); its webhook is sent when it does"),
            ApiError::NoWebhook => f.write_str("the job was submitted without a webhook"),
            ApiError::WebhookInFlight { retry_after } => write!(
                f,
                "the job's event is still being delivered (its round began under {} s ago); redeliver after {retry_after} s",
                names::webhook::REDELIVERY_COOLDOWN_SECONDS
            ),
            ApiError::TenantQueueFull { max_queued, retry_after } => write!(
                f,
                "the tenant has {max_queued} jobs queued, its limit; the job was not created (try again in {retry_after} s, as jobs start)"
            ),
            ApiError::Internal { request_id } => write!(
                f,
                "internal error; quote request id {request_id} when reporting it"
            ),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::MalformedJson(_)
            | ApiError::UnknownFields(_)
            | ApiError::InvalidType { .. }
            | ApiError::InvalidValue { .. }
            | ApiError::MissingField { .. } => 400,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound | ApiError::NoRoute => 404,
            ApiError::IdempotencyConflict | ApiError::JobFinished(_) | ApiError::JobNotFinished(_) | ApiError::NoWebhook | ApiError::WebhookInFlight { .. } => 409,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::TenantQueueFull { .. } => 429,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Internal { .. } => 500,
        }
    }

    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::UnknownFields(_) => "unknown_field",
            ApiError::InvalidType { .. } => "invalid_type",
            ApiError::InvalidValue { .. } => "invalid_value",
            ApiError::MissingField { .. } => "missing_field",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::NoRoute => "no_route",
            ApiError::IdempotencyConflict => "idempotency_conflict",
            ApiError::JobFinished(_) => "job_finished",
            ApiError::JobNotFinished(_) => "job_not_finished",
            ApiError::NoWebhook => "no_webhook",
            ApiError::WebhookInFlight { .. } => "webhook_in_flight",
            ApiError::TenantQueueFull { .. } => "TENANT_QUEUE_FULL",
            ApiError::Internal { .. } => "internal_error",
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            ApiError::UnknownFields(names) => names.first().map(String::as_str),
            ApiError::InvalidType { field, .. }
            | ApiError::InvalidValue { field, .. }
            | ApiError::MissingField { field, .. } => Some(field),
            _ => None,
        }
    }

    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({"code": self.code(), "message": self.to_string()});
        if let Some(field) = self.field() {
            error["field"] = json!(field);
        }
        if let ApiError::Internal { request_id } = self {
            error["request_id"] = json!(request_id);
        }
        json!({ "error": error })
    }

    /// Seconds for `Retry-After`, when the client should wait before trying again.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            ApiError::TenantQueueFull { retry_after, .. } | ApiError::WebhookInFlight { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::InvalidValue { field: field.to_owned(), message: message.into() }
    }
}
