//! `POST /ingresar-datos` and `GET /data/{transaction_id}`.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Admitted, AppError, AppState, ErrorBody, TopicPolicy};
use crate::bus::{MAX_CLIENT_ATTRIBUTES, MAX_MESSAGE_BYTES, OutboundMessage, RESERVED_PREFIX};
use crate::record::StoredRecord;

/// Bytes the four reserved attributes add (names, `String` types, a UUID, a topic name of
/// up to 256 characters, an RFC 3339 time, a 55-character W3C `traceparent`).
const RESERVED_ATTRIBUTES_BYTES: usize = 4 * "String".len()
    + crate::bus::ATTR_TRANSACTION_ID.len()
    + 36
    + crate::bus::ATTR_TOPIC.len()
    + 256
    + crate::bus::ATTR_RECEIVED_AT.len()
    + 27
    + crate::bus::ATTR_TRACEPARENT.len()
    + 55;

/// Longest accepted `Idempotency-Key`.
pub(super) const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Longest attribute name (SNS's limit).
pub(super) const MAX_ATTRIBUTE_NAME: usize = 256;

/// The body of `POST /ingresar-datos`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestRequest {
    /// Topic name (`data-ingestion-topic`) or its SNS ARN (`arn:aws:sns:region:account:name`).
    /// Must be in the service's allow-list.
    #[schema(example = "data-ingestion-topic")]
    pub topic_arn: String,
    /// The message; at most 256 KiB of UTF-8, not empty.
    #[schema(example = "Este es un mensaje de prueba para el Challenge Latam.")]
    pub message: String,
    /// Up to 7 string attributes, stored with the message.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// The answer to an accepted message: it is durable on the bus.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct Accepted {
    /// Always `OK`.
    #[schema(example = "OK")]
    pub status: String,
    /// Id to `GET /data/{transaction_id}` with (UUIDv7).
    pub transaction_id: Uuid,
}

/// Publish a message. Answers only once the message is durable on the bus.
#[utoipa::path(post, path = "/ingresar-datos", tag = "ingest",
    request_body = IngestRequest,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Retries with the same key and body return the same transaction_id and publish once.")),
    responses(
        (status = 200, description = "Durable on the bus.", body = Accepted),
        (status = 400, description = "Invalid body, topic, message, attribute or key.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 403, description = "Topic not in the allow-list.", body = ErrorBody),
        (status = 413, description = "Body or message too large.", body = ErrorBody),
        (status = 408, description = "The body did not arrive within api.body_read_timeout (`body_timeout`); nothing accepted, the connection closes.", body = ErrorBody),
        (status = 409, description = "Another request with this Idempotency-Key is still being published (`in_progress`); retry after Retry-After.", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json.", body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with another body.", body = ErrorBody),
        (status = 429, description = "The bus is throttling.", body = ErrorBody),
        (status = 503, description = "The bus or the database is unavailable; retry.", body = ErrorBody)),
    security((), ("bearer" = [])))]
pub async fn post_message(
    _admitted: Admitted,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Accepted>, AppError> {
    if state.is_shutting_down() {
        return Err(AppError::ShuttingDown);
    }
    let inner = &state.inner;
    let (Some(publisher), Some(store)) = (&inner.publisher, &inner.store) else {
        return Err(AppError::NotFound("this instance does not ingest".into()));
    };
    check_content_type(&headers)?;
    let body = body.map_err(|rejection| {
        if super::server::is_body_deadline(&rejection) {
            AppError::BodyTimeout
        } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge {
                code: "payload_too_large",
                message: format!(
                    "the request body is larger than {} bytes (api.body_limit_bytes)",
                    inner.settings.body_limit_bytes
                ),
            }
        } else {
            AppError::bad_request("invalid_body", rejection.body_text())
        }
    })?;
    let (request, topic) = validate(&inner.settings.topics, &body)?;
    let key = idempotency_key(&headers)?;

    let mut message = OutboundMessage {
        transaction_id: Uuid::now_v7(),
        topic,
        message: request.message,
        attributes: request.attributes,
        received_at: Utc::now(),
        traceparent: None,
    };

    if let Some(key) = &key {
        let hash = request_hash(&message);
        let reservation = store
            .reserve_key(key, &hash, message.transaction_id)
            .await?;
        if reservation.request_hash != hash {
            return Err(AppError::Conflict(
                "this Idempotency-Key was used with a different request body; use a new key for a new message".into(),
            ));
        }
        if !reservation.created {
            metrics::counter!(crate::metric::IDEMPOTENT_REPLAYS_TOTAL).increment(1);
            if reservation.published {
                return Ok(accepted(reservation.transaction_id));
            }
            let settle = inner.settings.publish_timeout + IN_PROGRESS_GRACE;
            let age = (Utc::now() - reservation.reserved_at)
                .to_std()
                .unwrap_or_default();
            if age < settle {
                // A concurrent request (here or on another replica) is publishing it: wait
                // for its outcome instead of publishing the same message twice.
                let waited = wait_for_publish(
                    store.as_ref(),
                    key,
                    &hash,
                    message.transaction_id,
                    settle - age,
                )
                .await?;
                match waited {
                    Waited::Published(id) => return Ok(accepted(id)),
                    // That attempt failed and released the key; this request now holds it.
                    Waited::Ours(id) => message.transaction_id = id,
                }
            } else {
                // Reserved by an attempt that can no longer be running: publish again under
                // the same id. Harmless if that attempt did publish: one row per id.
                message.transaction_id = reservation.transaction_id;
            }
        }
    }

    // With traces on, the publish is a span of the request's trace and its context travels
    // in the message, so the worker's span continues the same trace.
    let span = if crate::telemetry::tracing_enabled() {
        let span = tracing::info_span!(
            "publish",
            otel.kind = "producer",
            messaging.destination.name = %message.topic,
            transaction_id = %message.transaction_id,
        );
        message.traceparent = crate::telemetry::traceparent(&span);
        span
    } else {
        tracing::Span::none()
    };
    let timeout = inner.settings.publish_timeout;
    let publish = tracing::Instrument::instrument(publisher.publish(&message), span);
    let outcome = match tokio::time::timeout(timeout, publish).await {
        Ok(r) => r,
        Err(_) => Err(crate::bus::Error::Timeout(timeout)),
    };
    if let Err(e) = outcome {
        metrics::counter!(crate::metric::PUBLISH_ERRORS_TOTAL, "error_type" => e.kind())
            .increment(1);
        // Not published for certain (unlike a timeout, after which it may have been): let a
        // retry, or a request waiting on this key, publish at once.
        if let Some(key) = &key
            && !matches!(e, crate::bus::Error::Timeout(_))
            && let Err(error) = store.release_key(key).await
        {
            tracing::warn!(message = "Failed to release an idempotency key.", %error);
        }
        return Err(e.into());
    }
    metrics::counter!(crate::metric::MESSAGES_PUBLISHED_TOTAL).increment(1);
    if let Some(key) = &key
        && let Err(e) = store.mark_published(key).await
    {
        // The message is durable; a retry would republish the same id, which stores once.
        tracing::warn!(message = "Failed to mark idempotency key as published.", error = %e);
    }
    Ok(accepted(message.transaction_id))
}

/// The body parsed and checked against every rule `/openapi.json` states (and the size
/// rule it cannot): the request and the topic name it resolves to.
fn validate(topics: &TopicPolicy, body: &[u8]) -> Result<(IngestRequest, String), AppError> {
    let request: IngestRequest = parse_json(body)?;
    let topic = resolve_topic(topics, &request.topic_arn)?;
    validate_message(&request.message)?;
    validate_attributes(&request.attributes)?;
    // SNS counts the body and every attribute (name, type, value); ours travel too.
    let total = request.message.len()
        + request
            .attributes
            .iter()
            .map(|(k, v)| k.len() + v.len() + "String".len())
            .sum::<usize>()
        + RESERVED_ATTRIBUTES_BYTES;
    if total > MAX_MESSAGE_BYTES {
        return Err(AppError::PayloadTooLarge {
            code: "message_too_large",
            message: format!(
                "message plus attributes is {total} bytes; the limit is {MAX_MESSAGE_BYTES} (256 KiB, SNS's)"
            ),
        });
    }
    Ok((request, topic))
}

/// How much longer than `api.publish_timeout` a reservation counts as "in progress": the
/// first attempt answers within the publish timeout plus the time to mark the key.
const IN_PROGRESS_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// What a request waiting on another's `Idempotency-Key` ends with.
enum Waited {
    /// The other request published: answer its transaction id.
    Published(Uuid),
    /// The other request failed and released the key, and this one reserved it again:
    /// publish under this id.
    Ours(Uuid),
}

/// Waits up to `within` for the concurrent request holding `key` to publish; 409
/// `in_progress` when it has not finished by then.
async fn wait_for_publish(
    store: &dyn crate::store::Store,
    key: &str,
    hash: &str,
    candidate: Uuid,
    within: std::time::Duration,
) -> Result<Waited, AppError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        let reservation = store.reserve_key(key, hash, candidate).await?;
        if reservation.published {
            return Ok(Waited::Published(reservation.transaction_id));
        }
        if reservation.created {
            return Ok(Waited::Ours(reservation.transaction_id));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(AppError::InProgress);
        }
    }
}

fn accepted(transaction_id: Uuid) -> Json<Accepted> {
    Json(Accepted {
        status: "OK".into(),
        transaction_id,
    })
}

/// Read a stored record.
#[utoipa::path(get, path = "/data/{transaction_id}", tag = "ingest",
    params(("transaction_id" = String, Path, description = "The id POST returned.")),
    responses(
        (status = 200, description = "The stored record.", body = StoredRecord),
        (status = 400, description = "Not a valid UUID.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
        (status = 404, description = "Not stored (yet): it may still be in the queue.", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry.", body = ErrorBody)),
    security((), ("bearer" = [])))]
pub async fn get_record(
    _admitted: Admitted,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<axum::response::Response, AppError> {
    let Some(store) = &state.inner.store else {
        return Err(AppError::NotFound(
            "this instance does not serve records".into(),
        ));
    };
    // Only the hyphenated form POST returns (the document's `format: uuid`); the parser
    // alone would also take the braced, URN and 32-digit forms.
    let id = (raw.len() == 36)
        .then(|| Uuid::parse_str(&raw).ok())
        .flatten()
        .ok_or_else(|| {
            AppError::bad_request(
                "invalid_transaction_id",
                format!(
                    "{raw:?} is not a UUID; use the transaction_id POST /ingresar-datos returned"
                ),
            )
        })?;
    // The body the store writes (what `Json(StoredRecord)` would: `Store::get_json`).
    match store.get_json(id).await? {
        Some(json) => Ok((
            [(
                header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response()),
        None => Err(AppError::NotFound(format!(
            "no record {id}: it was never accepted, or it is still in the queue; retry shortly"
        ))),
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), AppError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Compared without allocating a lowered copy (this runs on every POST).
    let mime = value.split(';').next().unwrap_or("").trim();
    // `str::get` is `None` out of range or off a character boundary.
    let head = mime.get(.."application/".len());
    let tail = mime
        .len()
        .checked_sub("+json".len())
        .and_then(|i| mime.get(i..));
    if mime.eq_ignore_ascii_case("application/json")
        || (head.is_some_and(|h| h.eq_ignore_ascii_case("application/"))
            && tail.is_some_and(|t| t.eq_ignore_ascii_case("+json")))
    {
        Ok(())
    } else if value.is_empty() {
        Err(AppError::UnsupportedMediaType(
            "missing Content-Type: send `Content-Type: application/json`".into(),
        ))
    } else {
        Err(AppError::UnsupportedMediaType(format!(
            "Content-Type {value:?} is not supported: send `Content-Type: application/json`"
        )))
    }
}

fn parse_json(body: &[u8]) -> Result<IngestRequest, AppError> {
    if body.is_empty() {
        return Err(AppError::bad_request(
            "invalid_json",
            "the body is empty: send {\"topic_arn\": \"...\", \"message\": \"...\"}",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => AppError::bad_request(
                "invalid_field",
                format!("{e}; expected {{\"topic_arn\": string, \"message\": string, \"attributes\"?: {{string: string}}}}"),
            ),
            _ => AppError::bad_request("invalid_json", format!("the body is not valid JSON: {e}")),
        }
    })
}

/// Topic name from a name or an ARN, checked against the allow-list.
fn resolve_topic(policy: &TopicPolicy, topic_arn: &str) -> Result<String, AppError> {
    // Exactly as sent: the document's pattern allows no surrounding whitespace either.
    let given = topic_arn;
    if given.is_empty() {
        return Err(AppError::bad_request(
            "invalid_topic",
            "topic_arn is empty: give a topic name (e.g. data-ingestion-topic) or its SNS ARN",
        ));
    }
    let name = if given.starts_with("arn:") {
        let parts: Vec<&str> = given.split(':').collect();
        if parts.len() != 6 || parts[2] != "sns" || parts[5].is_empty() {
            return Err(AppError::bad_request(
                "invalid_topic",
                format!("{given:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
            ));
        }
        match &policy.topic_arn {
            // The SNS topic itself: the service's first (default) topic.
            Some(configured) if configured == given => return Ok(policy.names[0].clone()),
            Some(_) => {
                return Err(AppError::Forbidden(format!(
                    "topic ARN {given:?} is not this service's topic; post to the topic name instead"
                )));
            }
            None => parts[5],
        }
    } else {
        given
    };
    if !crate::config::valid_topic_name(name) {
        return Err(AppError::bad_request(
            "invalid_topic",
            format!("{name:?} is not a valid topic name (letters, digits, '-' and '_')"),
        ));
    }
    if !policy.names.iter().any(|t| t == name) {
        return Err(AppError::Forbidden(format!(
            "topic {name:?} is not allowed here; allowed: {}",
            policy.names.join(", ")
        )));
    }
    Ok(name.to_owned())
}

fn validate_message(message: &str) -> Result<(), AppError> {
    if message.trim().is_empty() {
        return Err(AppError::bad_request(
            "empty_message",
            "message is empty: send the text to store",
        ));
    }
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(AppError::PayloadTooLarge {
            code: "message_too_large",
            message: format!(
                "message is {} bytes; the limit is {MAX_MESSAGE_BYTES} (256 KiB, SNS's)",
                message.len()
            ),
        });
    }
    if let Err(bad) = crate::bus::check_chars(message) {
        return Err(invalid_character("message", bad));
    }
    Ok(())
}

/// SNS attribute rules: names of letters, digits, `_`, `-`, `.`, at most 256 characters, no
/// leading/trailing/double dot, not starting with `AWS.`/`Amazon.`; values not empty.
fn validate_attributes(attributes: &BTreeMap<String, String>) -> Result<(), AppError> {
    if attributes.len() > MAX_CLIENT_ATTRIBUTES {
        return Err(AppError::bad_request(
            "too_many_attributes",
            format!(
                "{} attributes given; at most {MAX_CLIENT_ATTRIBUTES} are allowed",
                attributes.len()
            ),
        ));
    }
    for (name, value) in attributes {
        let lower = name.to_ascii_lowercase();
        if name.starts_with(RESERVED_PREFIX) {
            return Err(AppError::bad_request(
                "reserved_attribute",
                format!(
                    "attribute {name:?} uses the reserved prefix {RESERVED_PREFIX:?}; rename it"
                ),
            ));
        }
        let valid_name = !name.is_empty()
            && name.len() <= MAX_ATTRIBUTE_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..")
            && !lower.starts_with("aws.")
            && !lower.starts_with("amazon.");
        if !valid_name {
            return Err(AppError::bad_request(
                "invalid_attribute",
                format!(
                    "attribute name {name:?} is not valid: use 1-256 letters, digits, '_', '-' or '.' \
                     (no leading, trailing or double '.', no AWS./Amazon. prefix)"
                ),
            ));
        }
        if value.is_empty() {
            return Err(AppError::bad_request(
                "invalid_attribute",
                format!("attribute {name:?} has an empty value; give it a value or leave it out"),
            ));
        }
        if let Err(bad) = crate::bus::check_chars(value) {
            return Err(invalid_character(&format!("attributes.{name}"), bad));
        }
    }
    Ok(())
}

/// 400 for a character SNS/SQS cannot carry, naming the field, the code point and where.
fn invalid_character(field: &str, bad: crate::bus::InvalidChar) -> AppError {
    AppError::bad_request(
        "invalid_character",
        format!(
            "{field} contains {bad}, which SNS and SQS cannot carry; allowed are tab, newline, \
             carriage return and U+0020-U+D7FF, U+E000-U+FFFD, U+10000-U+10FFFF (XML 1.0): remove or encode it"
        ),
    )
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().ok().map(str::trim).unwrap_or("");
    let valid = !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY
        && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(AppError::bad_request(
            "invalid_idempotency_key",
            format!(
                "Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} visible ASCII characters (a UUID is a good choice)"
            ),
        ));
    }
    Ok(Some(key.to_owned()))
}

/// What makes two requests "the same" for an idempotency key.
fn request_hash(message: &OutboundMessage) -> String {
    let mut hasher = Sha256::new();
    for part in [message.topic.as_str(), message.message.as_str()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    for (k, v) in &message.attributes {
        for part in [k, v] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
    }
    format!("{:x}", hasher.finalize())
}
