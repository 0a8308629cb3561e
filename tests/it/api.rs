//! Router tests through `app(state).oneshot(..)`: a real embedded queue and SQLite store in a
//! temp dir, no socket.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use latamctl::api::{ApiSettings, AppState, TopicPolicy, app};
use latamctl::bus::embedded::EmbeddedQueue;
use latamctl::bus::{Publisher, Queue};
use latamctl::config::QueueConfig;
use latamctl::store::Store;
use latamctl::store::sqlite::SqliteStore;
use serde_json::{Value, json};
use tower::ServiceExt;

pub struct Harness {
    pub router: Router,
    pub queue: Arc<EmbeddedQueue>,
    pub store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

pub fn settings(token: Option<&str>) -> ApiSettings {
    ApiSettings {
        topics: TopicPolicy {
            names: vec!["data-ingestion-topic".into()],
            topic_arn: Some("arn:aws:sns:us-east-1:123456789012:data-ingestion-topic".into()),
        },
        token: token.map(str::to_owned),
        body_limit_bytes: 1024 * 1024,
        request_timeout: Duration::from_secs(10),
        publish_timeout: Duration::from_secs(5),
        max_in_flight: 256,
    }
}

/// A fresh embedded queue and SQLite store in `dir`, as `serve` opens them.
async fn open_embedded(dir: &std::path::Path) -> (Arc<EmbeddedQueue>, Arc<SqliteStore>) {
    let queue = EmbeddedQueue::open(dir, &QueueConfig::default())
        .await
        .unwrap();
    let store = SqliteStore::open(dir, Duration::from_secs(5))
        .await
        .unwrap();
    (Arc::new(queue), Arc::new(store))
}

pub async fn harness(token: Option<&str>) -> Harness {
    harness_with(settings(token), true, true).await.0
}

/// A router over a fresh embedded queue and SQLite store; `publish`/`consume` choose which
/// halves of the bus the state gets (api role, worker role, or both).
pub async fn harness_with(
    settings: ApiSettings,
    publish: bool,
    consume: bool,
) -> (Harness, AppState) {
    let dir = super::support::tempdir();
    let (queue, store) = open_embedded(dir.path()).await;
    let state = AppState::new(
        settings,
        publish.then(|| queue.clone() as Arc<dyn Publisher>),
        consume.then(|| queue.clone() as Arc<dyn Queue>),
        Some(store.clone() as Arc<dyn Store>),
    );
    // What `serve` does before it listens: one readiness check.
    state.readiness().refresh().await;
    let harness = Harness {
        router: app(state.clone()),
        queue,
        store,
        _dir: dir,
    };
    (harness, state)
}

pub async fn send(router: &Router, req: Request<Body>) -> (StatusCode, Value, header::HeaderMap) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body, headers)
}

fn post_raw(body: impl Into<Body>, content_type: Option<&str>) -> Request<Body> {
    let mut b = Request::post("/ingresar-datos");
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    b.body(body.into()).unwrap()
}

fn post_json(value: Value) -> Request<Body> {
    post_raw(value.to_string(), Some("application/json"))
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn post_then_get_round_trip_with_trailing_slash_and_arn() {
    let h = harness(None).await;
    let (status, body, _) = send(
        &h.router,
        Request::post("/ingresar-datos/")
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(Body::from(
                json!({
                    "topic_arn": "arn:aws:sns:us-east-1:123456789012:data-ingestion-topic",
                    "message": "hola",
                    "attributes": {"source": "test", "tenant.id": "42"}
                })
                .to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "OK");
    let id: uuid::Uuid = body["transaction_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(id.get_version_num(), 7, "transaction ids are UUIDv7");

    // Not stored until the worker runs: 404 JSON.
    let (status, body, _) = send(&h.router, get(&format!("/data/{id}"))).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not_found");

    // Play the worker once.
    let batch = h
        .queue
        .receive(10, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(batch.len(), 1);
    let outcome = latamctl::worker::store_batch(h.store.as_ref(), &batch).await;
    assert_eq!(outcome.stored, 1);

    let (status, body, headers) = send(&h.router, get(&format!("/data/{id}"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(body["transaction_id"], id.to_string());
    assert_eq!(body["topic"], "data-ingestion-topic");
    assert_eq!(body["message"], "hola");
    assert_eq!(
        body["attributes"],
        json!({"source": "test", "tenant.id": "42"})
    );
    assert!(body["received_at"].is_string() && body["stored_at"].is_string());
}

#[tokio::test]
async fn the_configured_topic_arn_maps_to_the_default_topic() {
    // provision names the SNS topic `<name>-<env>-ingest`; clients may post with its ARN.
    let mut s = settings(None);
    s.topics.topic_arn = Some("arn:aws:sns:us-east-1:123456789012:latam-dev-ingest".into());
    let (h, _) = harness_with(s, true, true).await;
    let (status, body, _) = send(
        &h.router,
        post_json(json!({"topic_arn": "arn:aws:sns:us-east-1:123456789012:latam-dev-ingest", "message": "m"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let got = h
        .queue
        .receive(1, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got[0].decode().unwrap().topic, "data-ingestion-topic");
}

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

#[tokio::test]
async fn bearer_token_guards_post_and_get_but_not_probes() {
    let h = harness(Some("s3cret-token")).await;
    let body = json!({"topic_arn": "data-ingestion-topic", "message": "m"}).to_string();
    let with = |auth: Option<&str>| {
        let mut b =
            Request::post("/ingresar-datos").header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::from(body.clone())).unwrap()
    };
    for (auth, want) in [
        (None, 401),
        (Some("Bearer wrong"), 401),
        (Some("Bearer s3cret-toke"), 401),
        (Some("Basic czNjcmV0LXRva2Vu"), 401),
        (Some("Bearer s3cret-token"), 200),
    ] {
        let (status, body, headers) = send(&h.router, with(auth)).await;
        assert_eq!(status.as_u16(), want, "{auth:?}: {body}");
        if want == 401 {
            assert_eq!(body["error"], "unauthorized");
            assert_eq!(headers.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
        }
    }
    let (status, _, _) = send(&h.router, get("/data/01930000-0000-7000-8000-000000000000")).await;
    assert_eq!(status, 401);
    for probe in ["/healthz", "/readyz", "/metrics"] {
        let (status, _, _) = send(&h.router, get(probe)).await;
        assert_eq!(status, 200, "{probe} must not need the token");
    }
}

#[tokio::test]
async fn idempotency_key_returns_the_same_id_and_enqueues_once() {
    let h = harness(None).await;
    let req = |key: &str, message: &str| {
        Request::post("/ingresar-datos")
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", key)
            .body(Body::from(
                json!({"topic_arn": "data-ingestion-topic", "message": message}).to_string(),
            ))
            .unwrap()
    };
    let (s1, b1, _) = send(&h.router, req("order-42", "hola")).await;
    let (s2, b2, _) = send(&h.router, req("order-42", "hola")).await;
    assert_eq!((s1.as_u16(), s2.as_u16()), (200, 200), "{b1} {b2}");
    assert_eq!(b1["transaction_id"], b2["transaction_id"]);

    let (s3, b3, _) = send(&h.router, req("order-42", "other body")).await;
    assert_eq!(s3, 422, "{b3}");
    assert_eq!(b3["error"], "idempotency_key_reused");

    let (s4, b4, _) = send(&h.router, req("order-43", "hola")).await;
    assert_eq!(s4, 200);
    assert_ne!(b4["transaction_id"], b1["transaction_id"]);

    let stats = h.queue.stats().await.unwrap();
    assert_eq!(stats.visible, 2, "one message per key");
    let batch = h
        .queue
        .receive(10, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    latamctl::worker::store_batch(h.store.as_ref(), &batch).await;
    assert_eq!(h.store.count().await.unwrap(), 2);
}

#[tokio::test]
async fn probes_metrics_and_openapi() {
    let h = harness(None).await;
    let (status, body, _) = send(&h.router, get("/healthz")).await;
    assert_eq!(
        (status.as_u16(), body["status"].as_str()),
        (200, Some("ok"))
    );
    let (status, body, _) = send(&h.router, get("/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["publisher"], "ok");
    assert_eq!(body["checks"]["store"], "ok");
}

/// The document and the router are one contract: every route the router serves is in
/// `/openapi.json` with its method, and nothing else is; each documented operation reaches
/// its handler (not the router's 404/405 fallback).
#[tokio::test]
async fn openapi_documents_exactly_the_routes_the_router_serves() {
    use latamctl::api::ROUTES;
    for token in [None, Some("t0ken")] {
        let h = harness(token).await;
        let (status, doc, headers) = send(&h.router, get("/openapi.json")).await;
        assert_eq!(status, 200);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |method| (method.to_uppercase(), path.clone()))
            })
            .collect();
        documented.sort();
        let mut served: Vec<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_owned(), r.path.to_owned()))
            .collect();
        served.sort();
        assert_eq!(documented, served, "/openapi.json and api::ROUTES differ");

        for route in ROUTES {
            let path = route
                .path
                .replace("{transaction_id}", "01930000-0000-7000-8000-000000000000");
            let req = Request::builder()
                .method(route.method)
                .uri(&path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let (status, body, _) = send(&h.router, req).await;
            let fallback =
                status == 405 || body["message"] == "no such route; see GET /openapi.json";
            assert!(
                !fallback,
                "{} {} is documented but not routed: {status} {body}",
                route.method, route.path
            );
            let documented = &doc["paths"][route.path][route.method.to_lowercase()]["responses"];
            assert!(
                documented[status.as_str()].is_object(),
                "{} {} answered {status}, which the document does not list: {body}",
                route.method,
                route.path
            );
        }

        // The bearer scheme is named exactly when a token is configured.
        let post = &doc["paths"]["/ingresar-datos"]["post"];
        if token.is_some() {
            assert_eq!(post["security"], json!([{"bearer": []}]));
            assert!(post["responses"]["401"].is_object());
            assert_eq!(
                doc["components"]["securitySchemes"]["bearer"]["scheme"],
                "bearer"
            );
        } else {
            assert!(post.get("security").is_none(), "{post}");
            assert!(post["responses"].get("401").is_none());
            assert!(doc["components"].get("securitySchemes").is_none());
        }
        assert!(doc["paths"]["/healthz"]["get"].get("security").is_none());
    }
}

/// Every rule the handlers enforce that a schema can express is in the document, from the
/// same constants: a client generated from it sends nothing the server refuses.
#[tokio::test]
async fn openapi_states_the_rules_the_handlers_enforce() {
    let h = harness(None).await;
    let (_, doc, _) = send(&h.router, get("/openapi.json")).await;
    let request = &doc["components"]["schemas"]["IngestRequest"]["properties"];
    assert_eq!(request["message"]["minLength"], 1);
    assert_eq!(
        request["message"]["maxLength"],
        latamctl::bus::MAX_MESSAGE_BYTES
    );
    assert_eq!(
        request["attributes"]["maxProperties"],
        latamctl::bus::MAX_CLIENT_ATTRIBUTES
    );
    assert_eq!(request["attributes"]["propertyNames"]["maxLength"], 256);
    // This instance's topic: its name or its configured ARN, nothing else.
    assert_eq!(
        request["topic_arn"]["pattern"],
        "^(data-ingestion-topic|arn:aws:sns:us-east-1:123456789012:data-ingestion-topic)$"
    );
    let id = &doc["paths"]["/data/{transaction_id}"]["get"]["parameters"][0]["schema"];
    assert_eq!(id["format"], "uuid");
    let key = &doc["paths"]["/ingresar-datos"]["post"]["parameters"][0];
    assert_eq!(key["name"], "Idempotency-Key");
    assert_eq!(key["schema"]["maxLength"], 255);
    for status in [
        "200", "400", "403", "409", "413", "415", "422", "429", "503",
    ] {
        let response = &doc["paths"]["/ingresar-datos"]["post"]["responses"][status];
        assert!(response.is_object(), "POST does not document {status}");
        if status != "200" {
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{status}"
            );
        }
    }

    // The forms the document excludes are refused: a UUID other than the hyphenated one,
    // a topic with surrounding whitespace.
    let (status, body, _) = send(&h.router, get("/data/0193000000007000800000000000000")).await;
    assert_eq!(status, 400, "{body}");
    let (status, body, _) = send(&h.router, get("/data/01930000000070008000000000000000")).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_transaction_id"))
    );
    let (status, body, _) = send(
        &h.router,
        post_json(json!({"topic_arn": " data-ingestion-topic", "message": "m"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn readiness_turns_false_on_shutdown() {
    let (h, state) = harness_with(settings(None), true, false).await;
    let router = h.router.clone();
    state.begin_shutdown();
    let (status, body, _) = send(&router, get("/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    let (status, body, _) = send(
        &router,
        post_json(json!({"topic_arn": "data-ingestion-topic", "message": "m"})),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "shutting_down");
}

#[tokio::test]
async fn worker_only_router_serves_probes_but_not_ingest() {
    let (h, _) = harness_with(settings(None), false, true).await;
    let router = h.router.clone();
    let (status, body, _) = send(&router, get("/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["queue"], "ok");
    let (status, _, _) = send(
        &router,
        post_json(json!({"topic_arn": "data-ingestion-topic", "message": "m"})),
    )
    .await;
    assert_eq!(status, 404);
}

/// Counts the calls that reach a dependency's readiness check.
#[derive(Clone)]
struct Counting<T> {
    inner: Arc<T>,
    ready_calls: Arc<std::sync::atomic::AtomicU64>,
}

impl<T> Counting<T> {
    fn count(&self) {
        self.ready_calls
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Publisher for Counting<EmbeddedQueue> {
    async fn publish(&self, m: &latamctl::bus::OutboundMessage) -> latamctl::bus::Result<()> {
        self.inner.publish(m).await
    }
    async fn ready(&self) -> latamctl::bus::Result<()> {
        self.count();
        Publisher::ready(self.inner.as_ref()).await
    }
}

#[async_trait::async_trait]
impl Store for Counting<SqliteStore> {
    fn kind(&self) -> &'static str {
        "counting"
    }
    fn target(&self) -> String {
        self.inner.target()
    }
    async fn migrate(&self) -> latamctl::store::Result<latamctl::store::MigrationReport> {
        self.inner.migrate().await
    }
    async fn insert_batch(&self, r: &[latamctl::store::Record]) -> latamctl::store::Result<u64> {
        self.inner.insert_batch(r).await
    }
    async fn get(
        &self,
        id: uuid::Uuid,
    ) -> latamctl::store::Result<Option<latamctl::record::StoredRecord>> {
        self.inner.get(id).await
    }
    async fn reserve_key(
        &self,
        key: &str,
        hash: &str,
        candidate: uuid::Uuid,
    ) -> latamctl::store::Result<latamctl::store::KeyReservation> {
        self.inner.reserve_key(key, hash, candidate).await
    }
    async fn mark_published(&self, key: &str) -> latamctl::store::Result<()> {
        self.inner.mark_published(key).await
    }
    async fn release_key(&self, key: &str) -> latamctl::store::Result<()> {
        self.inner.release_key(key).await
    }
    async fn purge_keys(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> latamctl::store::Result<u64> {
        self.inner.purge_keys(cutoff).await
    }
    async fn ready(&self) -> latamctl::store::Result<()> {
        self.count();
        self.inner.ready().await
    }
    async fn probe_write(&self) -> latamctl::store::Result<()> {
        self.count();
        self.inner.probe_write().await
    }
    async fn stats(&self) -> latamctl::store::Result<latamctl::store::StoreStats> {
        self.inner.stats().await
    }
}

/// 2,000 probes of `/readyz` make no call to the bus or the store: it answers from the
/// state the background refresh keeps (one refresh here, before serving).
#[tokio::test]
async fn a_flood_of_readiness_probes_makes_no_upstream_calls() {
    let dir = super::support::tempdir();
    let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (queue, store) = open_embedded(dir.path()).await;
    let queue = Counting {
        inner: queue,
        ready_calls: calls.clone(),
    };
    let store = Counting {
        inner: store,
        ready_calls: calls.clone(),
    };
    let state = AppState::new(
        settings(None),
        Some(Arc::new(queue) as Arc<dyn Publisher>),
        None,
        Some(Arc::new(store) as Arc<dyn Store>),
    );
    state.readiness().refresh().await;
    let after_refresh = calls.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        after_refresh, 2,
        "one refresh checks the publisher and the store"
    );
    let router = app(state.clone());
    let probes = (0..2000).map(|_| send(&router, get("/readyz")));
    for (status, body, _) in futures::future::join_all(probes).await {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["checks"]["store"], "ok");
    }
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        after_refresh,
        "/readyz called a dependency"
    );
    assert_eq!(state.readiness().refreshes(), 1);
}

/// A publisher that takes its time, counting what it publishes.
struct SlowPublisher {
    inner: Arc<EmbeddedQueue>,
    delay: Duration,
    published: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl Publisher for SlowPublisher {
    async fn publish(&self, m: &latamctl::bus::OutboundMessage) -> latamctl::bus::Result<()> {
        tokio::time::sleep(self.delay).await;
        self.published
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.publish(m).await
    }
    async fn ready(&self) -> latamctl::bus::Result<()> {
        Ok(())
    }
}

/// A router over a publisher that takes `delay` per message, with `max_in_flight`.
struct SlowHarness {
    router: Router,
    queue: Arc<EmbeddedQueue>,
    publisher: Arc<SlowPublisher>,
    _dir: tempfile::TempDir,
}

async fn slow_router(delay: Duration, max_in_flight: usize) -> SlowHarness {
    let mut publisher = None;
    let (router, queue, dir) = router_over(max_in_flight, |queue| {
        let slow = Arc::new(SlowPublisher {
            inner: queue,
            delay,
            published: Default::default(),
        });
        publisher = Some(slow.clone());
        slow
    })
    .await;
    SlowHarness {
        router,
        queue,
        publisher: publisher.unwrap(),
        _dir: dir,
    }
}

/// A router whose publisher `wrap` builds around a fresh embedded queue (and a SQLite
/// store), refreshed once as `serve` does.
async fn router_over(
    max_in_flight: usize,
    wrap: impl FnOnce(Arc<EmbeddedQueue>) -> Arc<dyn Publisher>,
) -> (Router, Arc<EmbeddedQueue>, tempfile::TempDir) {
    let dir = super::support::tempdir();
    let (queue, store) = open_embedded(dir.path()).await;
    let mut settings = settings(None);
    settings.max_in_flight = max_in_flight;
    let state = AppState::new(
        settings,
        Some(wrap(queue.clone())),
        None,
        Some(store as Arc<dyn Store>),
    );
    state.readiness().refresh().await;
    (app(state), queue, dir)
}

/// Two concurrent POSTs with one Idempotency-Key publish once: the second waits for the
/// first's outcome and answers the same transaction_id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_idempotency_key_publish_once() {
    let slow = slow_router(Duration::from_millis(400), 256).await;
    let (router, queue, publisher) = (&slow.router, &slow.queue, &slow.publisher);
    let request = || {
        Request::post("/ingresar-datos")
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", "0f0e2a4c-1111-4c7e-9a59-3f3b2f1d9a01")
            .body(Body::from(
                json!({"topic_arn": "data-ingestion-topic", "message": "once"}).to_string(),
            ))
            .unwrap()
    };
    let (a, b) = tokio::join!(send(router, request()), send(router, request()));
    assert_eq!(
        (a.0, b.0),
        (StatusCode::OK, StatusCode::OK),
        "{} / {}",
        a.1,
        b.1
    );
    assert_eq!(a.1["transaction_id"], b.1["transaction_id"]);
    assert_eq!(
        publisher
            .published
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "published twice"
    );
    assert_eq!(queue.stats().await.unwrap().visible, 1);
}

/// Past `api.max_in_flight`, ingest requests are shed at once with 503 `overloaded` and
/// `Retry-After`; probes are not limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_in_flight_limit_are_shed_with_503_json() {
    let slow = slow_router(Duration::from_millis(500), 2).await;
    let (router, queue) = (slow.router.clone(), slow.queue.clone());
    let posts = (0..6).map(|i| {
        send(
            &router,
            post_json(json!({"topic_arn": "data-ingestion-topic", "message": format!("m{i}")})),
        )
    });
    let probe = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(&router, get("/readyz")).await
    };
    let (results, (probe_status, _, _)) = tokio::join!(futures::future::join_all(posts), probe);
    assert_eq!(probe_status, 200, "probes are not shed");
    let ok = results.iter().filter(|(s, _, _)| *s == 200).count();
    let shed: Vec<_> = results
        .iter()
        .filter(|(s, b, h)| {
            *s == 503 && b["error"] == "overloaded" && h.contains_key("retry-after")
        })
        .collect();
    assert_eq!((ok, shed.len()), (2, 4), "{results:?}");
    assert_eq!(
        queue.stats().await.unwrap().visible,
        2,
        "shed requests enqueue nothing"
    );
}

/// Fails its first publish (after a delay), then delegates.
struct FailsOncePublisher {
    inner: Arc<EmbeddedQueue>,
    failed: AtomicBool,
}

#[async_trait::async_trait]
impl Publisher for FailsOncePublisher {
    async fn publish(&self, m: &latamctl::bus::OutboundMessage) -> latamctl::bus::Result<()> {
        if !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Err(latamctl::bus::Error::Unavailable("down once".into()));
        }
        self.inner.publish(m).await
    }
    async fn ready(&self) -> latamctl::bus::Result<()> {
        Ok(())
    }
}

/// A publish that failed for certain releases its Idempotency-Key: the request waiting on
/// the key publishes at once (not after the in-progress wait), and the message is queued
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_publish_releases_its_idempotency_key_to_the_waiting_retry() {
    let (router, queue, _dir) = router_over(256, |queue| {
        Arc::new(FailsOncePublisher {
            inner: queue,
            failed: AtomicBool::new(false),
        })
    })
    .await;
    let request = || {
        Request::post("/ingresar-datos")
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", "6d1c4a8e-2222-4f7e-9a59-3f3b2f1d9a02")
            .body(Body::from(
                json!({"topic_arn": "data-ingestion-topic", "message": "retry me"}).to_string(),
            ))
            .unwrap()
    };
    let started = std::time::Instant::now();
    let second = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        send(&router, request()).await
    };
    let (first, second) = tokio::join!(send(&router, request()), second);
    assert_eq!(first.0, 503, "{}", first.1);
    assert_eq!(second.0, 200, "{}", second.1);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the waiting retry sat out the in-progress wait: {:?}",
        started.elapsed()
    );
    // A later retry answers the same id, and nothing more is queued.
    let (status, body, _) = send(&router, request()).await;
    assert_eq!(status, 200);
    assert_eq!(body["transaction_id"], second.1["transaction_id"]);
    assert_eq!(queue.stats().await.unwrap().visible, 1);
}

/// The request series have bounded labels: an invented method is `other` and an unrouted
/// path makes no series, so a client cannot grow the series count (and the per-thread
/// handles `track_metrics` keeps stay few).
#[tokio::test]
async fn request_metrics_labels_are_bounded() {
    let h = harness(None).await;
    for method in ["FOO", "BAR"] {
        let req = Request::builder()
            .method(method)
            .uri("/healthz")
            .body(Body::empty())
            .unwrap();
        let (status, _, _) = send(&h.router, req).await;
        assert_eq!(status, 405);
    }
    let (status, _, _) = send(&h.router, get("/no/such/route/12345")).await;
    assert_eq!(status, 404);
    let (_, body, _) = send(&h.router, get("/metrics")).await;
    let text = body.as_str().unwrap();
    assert!(
        text.contains(r#"route="/healthz",method="other",status="405""#),
        "{text}"
    );
    // Unrouted paths are answered by the fallback, outside the route layer: no series.
    assert!(!text.contains("FOO") && !text.contains("12345"), "{text}");
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
