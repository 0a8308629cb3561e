//! Router tests through `app(state).oneshot(..)`: a real embedded queue and SQLite store in a
//! temp dir, no socket.
//! Children: `routes` (each route end to end), `validation` (4xx errors for bad input),
//! `openapi` (the document and the router agree), `concurrency` (slow, failing and counted
//! dependencies under concurrent requests).

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

use super::support;

mod concurrency;
mod openapi;
mod routes;
mod validation;

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
