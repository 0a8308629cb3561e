//! The OpenAPI 3.1 document `/openapi.json` serves.
//!
//! Paths, operations and types come from the handlers' `utoipa` annotations. [`document`]
//! then states every rule the handlers enforce that JSON Schema can express, from the same
//! constants the handlers check, plus what depends on the running instance: the topics it
//! allows and, when a token is configured, the bearer requirement. A client generated from
//! the document sends nothing the server refuses, and schemathesis (in the test command)
//! holds the server to it in both directions.

use serde_json::{Value, json};
use utoipa::OpenApi;

use super::ingest::{MAX_ATTRIBUTE_NAME, MAX_IDEMPOTENCY_KEY};
use super::{ApiSettings, INGEST, INGEST_SLASH, RECORD, TopicPolicy};
use crate::bus::{MAX_CLIENT_ATTRIBUTES, MAX_MESSAGE_BYTES, RESERVED_PREFIX};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "latamctl ingestion API",
        description = "POST messages to a topic; GET them back by transaction id once stored. \
                       `POST /ingresar-datos/` (trailing slash) is the same operation.",
    ),
    paths(
        super::ingest::post_message,
        super::ingest::get_record,
        super::healthz,
        super::readyz,
        super::metrics_text,
        openapi_json,
    ),
    components(schemas(
        super::IngestRequest,
        super::Accepted,
        super::ErrorBody,
        super::Health,
        crate::record::StoredRecord,
    )),
    tags(
        (name = "ingest", description = "Publish and read messages."),
        (name = "health", description = "Probes and metrics."),
        (name = "meta", description = "This document."),
    )
)]
pub struct ApiDoc;

/// The characters SNS and SQS carry (XML 1.0), as a JSON Schema character class body:
/// everything but the C0 controls other than tab/newline/CR, U+FFFE and U+FFFF (surrogates
/// cannot occur: a JSON Schema string is a sequence of Unicode scalar values).
/// `crate::bus::check_chars` enforces the same set.
const REFUSED_CHARS: &str = r"\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF";

/// What `str::trim` removes (Unicode White_Space), spelled out so every regex engine agrees.
const WHITESPACE: &str =
    r"\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// The document for an instance with these settings.
pub fn document(settings: &ApiSettings) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    request_rules(&mut doc, &settings.topics);
    parameter_rules(&mut doc);
    // The trailing-slash alias is the same operation under its own id.
    let mut alias = doc["paths"][INGEST].clone();
    alias["post"]["operationId"] = json!("post_message_trailing_slash");
    doc["paths"][INGEST_SLASH] = alias;
    security(&mut doc, settings.token.is_some());
    doc
}

fn request_rules(doc: &mut Value, topics: &TopicPolicy) {
    let request = &mut doc["components"]["schemas"]["IngestRequest"]["properties"];
    let message = &mut request["message"];
    message["minLength"] = json!(1);
    message["maxLength"] = json!(MAX_MESSAGE_BYTES);
    message["pattern"] = json!(format!(
        "^[^{REFUSED_CHARS}]*[^{REFUSED_CHARS}{WHITESPACE}][^{REFUSED_CHARS}]*$"
    ));
    message["description"] = json!(format!(
        "The message: not empty or only whitespace, at most {MAX_MESSAGE_BYTES} bytes of UTF-8 \
         (`maxLength` counts characters; the server counts bytes). Only the characters SNS and \
         SQS carry (XML 1.0: tab, newline, carriage return, U+0020-U+D7FF, U+E000-U+FFFD, \
         U+10000-U+10FFFF). Not expressible here: the message, attribute names and values and \
         about 400 bytes of the service's own attributes together must fit in {MAX_MESSAGE_BYTES} \
         bytes (413 `message_too_large`)."
    ));

    let attributes = &mut request["attributes"];
    attributes["maxProperties"] = json!(MAX_CLIENT_ATTRIBUTES);
    attributes["propertyNames"] = json!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ATTRIBUTE_NAME,
        // Dot-separated runs of letters, digits, '_' and '-': no leading, trailing or double dot.
        "pattern": "^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$",
        // SNS reserves AWS. and Amazon. in any case; the service reserves its own prefix.
        "not": {
            "pattern": format!(
                "^([Aa][Ww][Ss]|[Aa][Mm][Aa][Zz][Oo][Nn])\\.|^{}",
                regex_escape(RESERVED_PREFIX)
            )
        },
    });
    attributes["additionalProperties"] = json!({
        "type": "string",
        "minLength": 1,
        "pattern": format!("^[^{REFUSED_CHARS}]+$"),
    });
    attributes["description"] = json!(format!(
        "Up to {MAX_CLIENT_ATTRIBUTES} string attributes, stored with the message. Names: 1-256 \
         letters, digits, '_', '-' or '.', no leading, trailing or double '.', not starting \
         with AWS. or Amazon. (any case) or {RESERVED_PREFIX}. Values: not empty, the same \
         characters as the message."
    ));

    let names: Vec<String> = topics.names.iter().map(|n| regex_escape(n)).collect();
    let names = names.join("|");
    let topic = &mut request["topic_arn"];
    let (pattern, forms) = match &topics.topic_arn {
        Some(arn) => (
            format!("^({names}|{})$", regex_escape(arn)),
            format!(
                "one of the names {} or the ARN {arn}",
                topics.names.join(", ")
            ),
        ),
        None => (
            format!("^(arn:[^:]*:sns:[^:]*:[^:]*:)?({names})$"),
            format!(
                "one of the names {}, or an SNS ARN (arn:aws:sns:REGION:ACCOUNT:NAME) ending in one",
                topics.names.join(", ")
            ),
        ),
    };
    topic["pattern"] = json!(pattern);
    topic["description"] = json!(format!(
        "The topic: {forms}. A well-formed topic this instance does not allow is 403."
    ));
    topic["example"] = json!(topics.names[0]);
}

fn parameter_rules(doc: &mut Value) {
    if let Some(params) = doc["paths"][INGEST]["post"]["parameters"].as_array_mut() {
        for p in params.iter_mut().filter(|p| p["name"] == "Idempotency-Key") {
            p["schema"] = json!({
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_IDEMPOTENCY_KEY,
                "pattern": "^[!-~]+$",
            });
            p["description"] = json!(format!(
                "1-{MAX_IDEMPOTENCY_KEY} visible ASCII characters (a UUID is a good choice). \
                 Retries with the same key and body return the same transaction_id and publish \
                 once; the same key with another body is 422."
            ));
        }
    }
    if let Some(params) = doc["paths"][RECORD]["get"]["parameters"].as_array_mut() {
        for p in params.iter_mut().filter(|p| p["name"] == "transaction_id") {
            p["schema"] = json!({
                "type": "string",
                "format": "uuid",
                "pattern": "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
            });
        }
    }
}

/// With a token, the ingest operations require the bearer scheme and answer 401 without it;
/// without one, the document names no scheme at all.
fn security(doc: &mut Value, token: bool) {
    if token {
        doc["components"]["securitySchemes"] = json!({
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "The token the service is configured with (api.token or api.token_file).",
            }
        });
    }
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        for operation in operations.values_mut() {
            let guarded = operation.get("security").is_some();
            let Some(fields) = operation.as_object_mut() else {
                continue;
            };
            if guarded && token {
                fields.insert("security".into(), json!([{"bearer": []}]));
            } else {
                fields.remove("security");
                if let Some(responses) = fields.get_mut("responses").and_then(Value::as_object_mut)
                {
                    responses.remove("401");
                }
            }
        }
    }
}

/// `s` with the regex metacharacters escaped, for a literal inside a pattern.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of this instance: its topics, limits and whether a token is required.", content_type = "application/json")))]
pub async fn openapi_json(
    axum::extract::State(state): axum::extract::State<super::AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        state.inner.openapi.clone(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_literals_match_only_themselves() {
        let arn = "arn:aws:sns:us-east-1:123456789012:data.topic";
        let re = regex::Regex::new(&format!("^{}$", regex_escape(arn))).unwrap();
        assert!(re.is_match(arn));
        assert!(!re.is_match("arn:aws:sns:us-east-1:123456789012:dataXtopic"));
    }
}
