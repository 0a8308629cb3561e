//! Each route end to end: round trip, topic ARN, bearer token, Idempotency-Key, probes, roles.

use super::*;

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
