//! Bad input gets a clear 4xx JSON error and enqueues nothing; Content-Type rules.

use super::*;

#[tokio::test]
async fn bad_inputs_get_clear_4xx_json_errors_and_enqueue_nothing() {
    let h = harness(None).await;
    let topic = "data-ingestion-topic";
    let big = "x".repeat(256 * 1024 + 1);
    let eight: serde_json::Map<String, Value> =
        (0..8).map(|i| (format!("a{i}"), json!("v"))).collect();
    let cases: Vec<(&str, Request<Body>, u16, &str)> = vec![
        (
            "malformed json",
            post_raw("{\"topic_arn\":", Some("application/json")),
            400,
            "invalid_json",
        ),
        (
            "empty body",
            post_raw("", Some("application/json")),
            400,
            "invalid_json",
        ),
        (
            "json array",
            post_raw("[]", Some("application/json")),
            400,
            "invalid_field",
        ),
        (
            "json string",
            post_raw("\"hola\"", Some("application/json")),
            400,
            "invalid_field",
        ),
        (
            "missing message",
            post_json(json!({"topic_arn": topic})),
            400,
            "invalid_field",
        ),
        (
            "missing topic",
            post_json(json!({"message": "m"})),
            400,
            "invalid_field",
        ),
        (
            "message is a number",
            post_json(json!({"topic_arn": topic, "message": 5})),
            400,
            "invalid_field",
        ),
        (
            "topic is null",
            post_json(json!({"topic_arn": null, "message": "m"})),
            400,
            "invalid_field",
        ),
        (
            "unknown field",
            post_json(json!({"topic_arn": topic, "message": "m", "mesage": "x"})),
            400,
            "invalid_field",
        ),
        (
            "attribute not a string",
            post_json(json!({"topic_arn": topic, "message": "m", "attributes": {"a": 1}})),
            400,
            "invalid_field",
        ),
        (
            "empty message",
            post_json(json!({"topic_arn": topic, "message": ""})),
            400,
            "empty_message",
        ),
        (
            "blank message",
            post_json(json!({"topic_arn": topic, "message": "  \n "})),
            400,
            "empty_message",
        ),
        (
            "message 256 KiB + 1",
            post_json(json!({"topic_arn": topic, "message": big})),
            413,
            "message_too_large",
        ),
        (
            "NUL in message",
            post_json(json!({"topic_arn": topic, "message": "a\u{0}b"})),
            400,
            "invalid_character",
        ),
        (
            "unknown topic",
            post_json(json!({"topic_arn": "other-topic", "message": "m"})),
            403,
            "topic_not_allowed",
        ),
        (
            "ARN of another topic",
            post_json(
                json!({"topic_arn": "arn:aws:sns:us-east-1:123456789012:other", "message": "m"}),
            ),
            403,
            "topic_not_allowed",
        ),
        (
            "ARN of another account",
            post_json(
                json!({"topic_arn": "arn:aws:sns:us-east-1:999999999999:data-ingestion-topic", "message": "m"}),
            ),
            403,
            "topic_not_allowed",
        ),
        (
            "not an SNS ARN",
            post_json(json!({"topic_arn": "arn:aws:sqs:us-east-1:1:q:x", "message": "m"})),
            400,
            "invalid_topic",
        ),
        (
            "empty topic",
            post_json(json!({"topic_arn": "", "message": "m"})),
            400,
            "invalid_topic",
        ),
        (
            "topic with spaces",
            post_json(json!({"topic_arn": "data ingestion", "message": "m"})),
            400,
            "invalid_topic",
        ),
        (
            "bad UTF-8",
            post_raw(
                b"{\"topic_arn\":\"data-ingestion-topic\",\"message\":\"\xff\xfe\"}".to_vec(),
                Some("application/json"),
            ),
            400,
            "invalid_json",
        ),
        (
            "text/plain",
            post_raw("{}", Some("text/plain")),
            415,
            "unsupported_media_type",
        ),
        (
            "no content type",
            post_raw("{}", None),
            415,
            "unsupported_media_type",
        ),
        (
            "form content type",
            post_raw("a=b", Some("application/x-www-form-urlencoded")),
            415,
            "unsupported_media_type",
        ),
        (
            "body over 1 MiB",
            post_raw(vec![b' '; 1024 * 1024 + 10], Some("application/json")),
            413,
            "payload_too_large",
        ),
        (
            "8 attributes",
            post_json(json!({"topic_arn": topic, "message": "m", "attributes": eight})),
            400,
            "too_many_attributes",
        ),
        (
            "reserved attribute",
            post_json(
                json!({"topic_arn": topic, "message": "m", "attributes": {"latamctl.topic": "x"}}),
            ),
            400,
            "reserved_attribute",
        ),
        (
            "attribute name with space",
            post_json(json!({"topic_arn": topic, "message": "m", "attributes": {"bad name": "x"}})),
            400,
            "invalid_attribute",
        ),
        (
            "attribute AWS. prefix",
            post_json(json!({"topic_arn": topic, "message": "m", "attributes": {"AWS.x": "x"}})),
            400,
            "invalid_attribute",
        ),
        (
            "empty attribute value",
            post_json(json!({"topic_arn": topic, "message": "m", "attributes": {"a": ""}})),
            400,
            "invalid_attribute",
        ),
        (
            "idempotency key too long",
            Request::post("/ingresar-datos")
                .header(header::CONTENT_TYPE, "application/json")
                .header("idempotency-key", "k".repeat(300))
                .body(Body::from(
                    json!({"topic_arn": topic, "message": "m"}).to_string(),
                ))
                .unwrap(),
            400,
            "invalid_idempotency_key",
        ),
        (
            "GET malformed id",
            get("/data/not-a-uuid"),
            400,
            "invalid_transaction_id",
        ),
        (
            "GET unknown id",
            get("/data/01930000-0000-7000-8000-000000000000"),
            404,
            "not_found",
        ),
        (
            "GET on POST route",
            get("/ingresar-datos"),
            405,
            "method_not_allowed",
        ),
        (
            "DELETE a record",
            Request::delete("/data/01930000-0000-7000-8000-000000000000")
                .body(Body::empty())
                .unwrap(),
            405,
            "method_not_allowed",
        ),
        ("unknown route", get("/nope"), 404, "not_found"),
    ];
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (name, req, want_status, want_code) in cases {
        let (status, body, headers) = send(&h.router, req).await;
        let json_ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let message_ok = body["message"].as_str().is_some_and(|m| m.len() > 10);
        if status.as_u16() != want_status || body["error"] != want_code || !json_ct || !message_ok {
            failures.push(format!(
                "{name}: got {status} {body} (json: {json_ct}), want {want_status} {want_code}"
            ));
        }
        assert!(!status.is_server_error(), "{name}: 5xx {body}");
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    let stats = h.queue.stats().await.unwrap();
    assert_eq!(
        stats.visible + stats.in_flight,
        0,
        "bad input enqueued something"
    );
}

/// SQS carries only XML 1.0 characters. Both modes refuse the rest at the API, in the message
/// and in attribute values, at every boundary of every excluded range, and accept the
/// characters right next to them.
#[tokio::test]
async fn characters_sqs_cannot_carry_are_refused_in_both_modes_at_every_boundary() {
    let h = harness(None).await;
    let refused = [
        '\u{0}', '\u{1}', '\u{8}', '\u{B}', '\u{C}', '\u{E}', '\u{1F}', '\u{FFFE}', '\u{FFFF}',
    ];
    // U+D800-U+DFFF (surrogates) cannot be a Rust char; JSON's lone "\ud800" escape is
    // refused by the JSON parser (tested below).
    let accepted = [
        '\u{9}',
        '\u{A}',
        '\u{D}',
        '\u{20}',
        '\u{7F}',
        '\u{D7FF}',
        '\u{E000}',
        '\u{FFFD}',
        '\u{10000}',
        '\u{10FFFF}',
    ];
    let mut failures = Vec::new();
    for c in refused {
        let text = format!("ab{c}z");
        for (field, body) in [
            (
                "message",
                json!({"topic_arn": "data-ingestion-topic", "message": text}),
            ),
            (
                "attributes.source",
                json!({"topic_arn": "data-ingestion-topic", "message": "m", "attributes": {"source": text}}),
            ),
        ] {
            let (status, body, _) = send(&h.router, post_json(body)).await;
            let message = body["message"].as_str().unwrap_or_default();
            let want = format!(
                "{field} contains U+{:04X} at character 2 (byte 2)",
                c as u32
            );
            if status != 400 || body["error"] != "invalid_character" || !message.contains(&want) {
                failures.push(format!("U+{:04X} in {field}: {status} {body}", c as u32));
            }
        }
    }
    for c in accepted {
        let text = format!("ok{c}");
        let (status, body, _) = send(
            &h.router,
            post_json(json!({"topic_arn": "data-ingestion-topic", "message": text, "attributes": {"a": text}})),
        )
        .await;
        if status != 200 {
            failures.push(format!("U+{:04X} refused: {status} {body}", c as u32));
        }
    }
    // A lone surrogate is not valid JSON text for a Rust string.
    let (status, body, _) = send(
        &h.router,
        post_raw(
            r#"{"topic_arn":"data-ingestion-topic","message":"a\ud800b"}"#,
            Some("application/json"),
        ),
    )
    .await;
    if status != 400 {
        failures.push(format!("lone surrogate: {status} {body}"));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    let stats = h.queue.stats().await.unwrap();
    assert_eq!(
        stats.visible,
        accepted.len() as u64,
        "only the valid ones are queued"
    );
}

/// Content-Type is compared without regard to case and parameters: `application/json` and
/// any `application/*+json` are accepted, anything else is 415.
#[tokio::test]
async fn content_types_are_matched_case_insensitively() {
    let h = harness(None).await;
    let body = json!({"topic_arn": "data-ingestion-topic", "message": "m"}).to_string();
    for (ct, want) in [
        (Some("Application/JSON; charset=utf-8"), 200),
        (Some("application/vnd.latam+JSON"), 200),
        (Some("application/json"), 200),
        (Some("text/plain"), 415),
        (Some("application/"), 415),
        (Some("+json"), 415),
        (Some("application/xml"), 415),
        (None, 415),
    ] {
        let (status, body, _) = send(&h.router, post_raw(body.clone(), ct)).await;
        assert_eq!(status.as_u16(), want, "{ct:?}: {body}");
    }
}
