//! Request traces (OpenTelemetry): `serve` exports spans over OTLP/HTTP to a receiver that
//! decodes what it gets (the OTLP protobuf, as a collector would), and one POST is one trace
//! holding the API's request and publish spans and the worker's store span, the worker's
//! continuing the trace through the message's `latamctl.traceparent` attribute, on the
//! embedded queue and on SNS → SQS.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;

use super::cloud::Moto;
use super::support::{self, Serve, client};

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: BTreeMap<String, String>,
}

/// An OTLP/HTTP receiver on a free port: `POST /v1/traces` with protobuf bodies.
struct Receiver {
    endpoint: String,
    spans: Arc<Mutex<Vec<Span>>>,
    _task: tokio::task::JoinHandle<()>,
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

impl Receiver {
    async fn start() -> Receiver {
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let store = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let store = store.clone();
                    async move {
                        assert_eq!(
                            headers.get("content-type").and_then(|v| v.to_str().ok()),
                            Some("application/x-protobuf"),
                            "OTLP/HTTP protobuf"
                        );
                        let request =
                            ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                        let mut out = store.lock().unwrap();
                        for resource in request.resource_spans {
                            let service = resource
                                .resource
                                .iter()
                                .flat_map(|r| &r.attributes)
                                .find(|a| a.key == "service.name")
                                .map(|a| text(&a.value))
                                .unwrap_or_default();
                            for scope in resource.scope_spans {
                                for s in scope.spans {
                                    out.push(Span {
                                        service: service.clone(),
                                        name: s.name,
                                        trace_id: hex(&s.trace_id),
                                        span_id: hex(&s.span_id),
                                        parent_span_id: hex(&s.parent_span_id),
                                        attributes: s
                                            .attributes
                                            .iter()
                                            .map(|a| (a.key.clone(), text(&a.value)))
                                            .collect(),
                                    });
                                }
                            }
                        }
                        axum::http::StatusCode::OK
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            endpoint,
            spans,
            _task: task,
        }
    }

    /// Waits until the spans of trace `trace_id` include every name in `names`.
    async fn trace(&self, trace_id: &str, names: &[&str]) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let spans: Vec<Span> = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .cloned()
                .collect();
            if names.iter().all(|n| spans.iter().any(|s| s.name == *n)) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "trace {trace_id} has {:?}, not all of {names:?}; every span: {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>(),
                self.spans.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// As many attributes as a client may send: with ours (the trace context among them) they
/// are SNS's 10.
fn client_attributes() -> serde_json::Map<String, serde_json::Value> {
    (0..latamctl::bus::MAX_CLIENT_ATTRIBUTES)
        .map(|i| (format!("a{i}"), serde_json::json!(format!("v{i}"))))
        .collect()
}

/// POSTs one message with the most client attributes, carrying a client's W3C trace
/// context; answers the transaction id.
async fn post_traced(http: &reqwest::Client, base: &str, trace_id: &str) -> uuid::Uuid {
    let r = http
        .post(format!("{base}/ingresar-datos"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&serde_json::json!({
            "topic_arn": "data-ingestion-topic",
            "message": "traced",
            "attributes": client_attributes(),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    v["transaction_id"].as_str().unwrap().parse().unwrap()
}

/// The record is stored with the client's attributes exactly: the trace context travelled
/// beside them (and fit in the bus's attribute limit) but is not stored.
async fn check_stored(http: &reqwest::Client, serve: &Serve, id: uuid::Uuid) {
    let record: serde_json::Value = http
        .get(serve.url(&format!("/data/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        record["attributes"],
        serde_json::Value::Object(client_attributes()),
        "{record}"
    );
}

/// The request, publish and store spans of one POST form one tree in the client's trace.
fn check_one_trace(spans: &[Span], id: uuid::Uuid, service: &str) {
    let by_name = |n: &str| {
        spans
            .iter()
            .find(|s| s.name == n)
            .unwrap_or_else(|| panic!("no {n} span: {spans:?}"))
    };
    let request = by_name("request");
    let publish = by_name("publish");
    let store = by_name("store");
    assert_eq!(
        request.parent_span_id, "00f067aa0ba902b7",
        "the request continues the client's trace"
    );
    assert_eq!(publish.parent_span_id, request.span_id, "{spans:?}");
    assert_eq!(
        store.parent_span_id, publish.span_id,
        "the worker's span continues the publish through the message: {spans:?}"
    );
    assert_eq!(store.attributes["transaction_id"], id.to_string());
    assert_eq!(publish.attributes["transaction_id"], id.to_string());
    for s in [request, publish, store] {
        assert_eq!(s.service, service, "{s:?}");
    }
}

/// Fast export for the test: the batch processor's delay is the standard variable.
fn otel_env(receiver: &Receiver) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.clone()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_post_is_one_trace_on_the_embedded_queue() {
    let receiver = Receiver::start().await;
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let mut env = otel_env(&receiver);
    env.push(("OTEL_SERVICE_NAME", "ingest-e2e".to_owned()));
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &envs, dir.path());
    let http = client();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let id = post_traced(&http, &serve.base, trace_id).await;
    let spans = receiver
        .trace(trace_id, &["request", "publish", "store"])
        .await;
    check_one_trace(&spans, id, "ingest-e2e");
    check_stored(&http, &serve, id).await;
    assert_eq!(serve.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_post_is_one_trace_through_sns_and_sqs() {
    let Some(moto) = Moto::new().await else {
        return;
    };
    let receiver = Receiver::start().await;
    let dir = support::tempdir();
    let mut env = moto.serve_env();
    env.extend(otel_env(&receiver));
    env.push(("LATAMCTL_WORKER_WAIT_TIME", "1s".to_owned()));
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let serve = Serve::start(&[], &envs, dir.path());
    let http = client();
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let id = post_traced(&http, &serve.base, trace_id).await;
    let spans = receiver
        .trace(trace_id, &["request", "publish", "store"])
        .await;
    check_one_trace(&spans, id, "latamctl");
    check_stored(&http, &serve, id).await;
    assert_eq!(serve.terminate(), Some(0));
}
