//! Every error the API answers: JSON `{"error": code, "message": what to fix}`.
//!
//! Client errors keep their status and say what to change; server-side failures answer a
//! generic message and are logged in detail inside the request's span.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{bus, store};

/// The body of every error response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `topic_not_allowed`.
    pub error: String,
    /// What went wrong and what to do about it.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400 with a specific code.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    PayloadTooLarge { code: &'static str, message: String },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error(transparent)]
    Bus(#[from] bus::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("the service is shutting down")]
    ShuttingDown,
    /// More requests in flight than `api.max_in_flight`: shed at once.
    #[error("too many requests in flight")]
    Overloaded,
    /// The request body did not arrive within `api.body_read_timeout` (a trickled body).
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// Another request with the same `Idempotency-Key` is still being published.
    #[error("a request with this Idempotency-Key is in progress")]
    InProgress,
}

impl AppError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            code,
            message: message.into(),
        }
    }

    fn status_code_message(&self) -> (StatusCode, &'static str, String) {
        match self {
            AppError::BadRequest { code, message } => {
                (StatusCode::BAD_REQUEST, code, message.clone())
            }
            AppError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send the API token as `Authorization: Bearer <token>`".into(),
            ),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, "topic_not_allowed", m.clone()),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.clone()),
            AppError::Conflict(m) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                m.clone(),
            ),
            AppError::PayloadTooLarge { code, message } => {
                (StatusCode::PAYLOAD_TOO_LARGE, code, message.clone())
            }
            AppError::UnsupportedMediaType(m) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                m.clone(),
            ),
            AppError::Bus(bus::Error::Throttled(_)) => (
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                "the message bus is throttling; retry with backoff".into(),
            ),
            AppError::Bus(bus::Error::Rejected(_)) => (
                StatusCode::BAD_REQUEST,
                "rejected_by_bus",
                "the message bus refused this message (size or attributes); check the message and its attributes".into(),
            ),
            AppError::Bus(bus::Error::Full(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_full",
                "the queue is at its size cap (queue.max_bytes) and the message was not accepted: \
                 retry once the worker has caught up"
                    .into(),
            ),
            AppError::Bus(bus::Error::Timeout(t)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "publish_timeout",
                format!(
                    "the message bus did not confirm within {t:?}: the message may or may not have been \
                     accepted; retry with the same Idempotency-Key so it is stored once"
                ),
            ),
            AppError::Bus(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "bus_unavailable",
                "the message was not accepted: the message bus is unavailable; retry later \
                 (with the same Idempotency-Key to avoid duplicates)"
                    .into(),
            ),
            AppError::Store(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the database is unavailable; retry later".into(),
            ),
            AppError::ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "this instance is shutting down; retry".into(),
            ),
            AppError::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "this instance is handling as many requests as it allows (api.max_in_flight); \
                 retry after Retry-After seconds"
                    .into(),
            ),
            AppError::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the request body did not arrive within api.body_read_timeout; send the whole \
                 body at once (nothing was accepted)"
                    .into(),
            ),
            AppError::InProgress => (
                StatusCode::CONFLICT,
                "in_progress",
                "another request with this Idempotency-Key is still being published; retry \
                 after Retry-After seconds with the same key and body to get its transaction_id"
                    .into(),
            ),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.status_code_message();
        if status.is_server_error() {
            tracing::warn!(message = "Request failed.", error = %self, code);
        }
        let mut response = error_response(status, code, message);
        match status {
            StatusCode::REQUEST_TIMEOUT => {
                // The rest of the body may still be trickling in: close rather than read it.
                crate::api::server::CloseReason::BodyTimeout.count();
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            StatusCode::UNAUTHORIZED => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::TOO_MANY_REQUESTS
            | StatusCode::CONFLICT => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

/// A JSON error response.
pub fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(ErrorBody {
            error: code.to_owned(),
            message,
        }),
    )
        .into_response()
}

/// Turns error responses produced outside the handlers (no route, wrong method, body over
/// the limit, timeout) into the same JSON shape.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such route; see GET /openapi.json"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not accept that method; see GET /openapi.json",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the request body is larger than the configured limit (api.body_limit_bytes)",
        ),
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => (
            "timeout",
            "the request did not complete in time (api.request_timeout); retry later",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        s if s.is_client_error() => ("bad_request", "the request is not valid"),
        _ => (
            "internal",
            "internal error; the details are in the service's logs",
        ),
    };
    let mut out = error_response(status, code, message.to_owned());
    for name in [header::RETRY_AFTER, header::ALLOW, header::WWW_AUTHENTICATE] {
        if let Some(v) = response.headers().get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}
