//! The HTTP API: `POST /ingresar-datos`, `GET /data/{id}`, health, metrics and OpenAPI.
//!
//! [`app`] builds the whole router from an [`AppState`], so tests drive it with
//! `app(state).oneshot(request)` and no socket. A worker-only process serves the same router
//! without the ingest routes (probes and metrics still work).

pub mod client;
mod error;
mod ingest;
mod openapi;
pub mod readiness;
pub mod server;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::ToSchema;

pub use error::{AppError, ErrorBody};
pub use ingest::{Accepted, IngestRequest};
pub use openapi::{ApiDoc, document as openapi_document};
pub use readiness::Readiness;

use crate::bus::{Publisher, Queue};
use crate::store::Store;

/// The probe routes: never shed, never authenticated, and not traffic (the status error
/// ratio and every SLO in `examples/slo.yaml` leave them out; a test holds the spec to this
/// list).
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
pub const PROBE_ROUTES: [&str; 3] = [HEALTHZ, READYZ, METRICS];
/// The ingest routes (the seed's Spanish route kept for compatibility) and the document.
pub const INGEST: &str = "/ingresar-datos";
pub const INGEST_SLASH: &str = "/ingresar-datos/";
pub const RECORD: &str = "/data/{transaction_id}";
pub const OPENAPI: &str = "/openapi.json";

/// Which instances serve a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    /// Instances with a publisher and a store (`serve`, `serve --role api`).
    Ingest,
    /// Every instance, worker-only ones too.
    Every,
}

/// One route of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub serves: Serves,
}

/// Every route the API serves. [`app`] builds the router from this table and
/// `/openapi.json` documents exactly these (a test holds the two together).
pub const ROUTES: [Route; 7] = [
    Route {
        method: "POST",
        path: INGEST,
        serves: Serves::Ingest,
    },
    Route {
        method: "POST",
        path: INGEST_SLASH,
        serves: Serves::Ingest,
    },
    Route {
        method: "GET",
        path: RECORD,
        serves: Serves::Ingest,
    },
    Route {
        method: "GET",
        path: OPENAPI,
        serves: Serves::Ingest,
    },
    Route {
        method: "GET",
        path: HEALTHZ,
        serves: Serves::Every,
    },
    Route {
        method: "GET",
        path: READYZ,
        serves: Serves::Every,
    },
    Route {
        method: "GET",
        path: METRICS,
        serves: Serves::Every,
    },
];

/// The handler of a route of [`ROUTES`].
fn handler(route: &Route) -> MethodRouter<AppState> {
    match (route.method, route.path) {
        ("POST", INGEST | INGEST_SLASH) => post(ingest::post_message),
        ("GET", RECORD) => get(ingest::get_record),
        ("GET", OPENAPI) => get(openapi::openapi_json),
        ("GET", HEALTHZ) => get(healthz),
        ("GET", READYZ) => get(readyz),
        ("GET", METRICS) => get(metrics_text),
        (method, path) => unreachable!("ROUTES lists {method} {path}, which has no handler"),
    }
}

/// How long a background readiness check waits for each dependency.
pub const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Which topics clients may post to.
#[derive(Debug, Clone)]
pub struct TopicPolicy {
    /// Allowed topic names.
    pub names: Vec<String>,
    /// The configured SNS topic ARN (cloud mode): an ARN from the client must equal it.
    pub topic_arn: Option<String>,
}

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub topics: TopicPolicy,
    pub token: Option<String>,
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    pub publish_timeout: Duration,
    /// Ingest requests handled at once before shedding (`api.max_in_flight`).
    pub max_in_flight: usize,
}

impl From<&crate::config::Config> for ApiSettings {
    fn from(config: &crate::config::Config) -> Self {
        Self {
            topics: TopicPolicy {
                names: config.topics.clone(),
                topic_arn: config.aws.topic_arn.clone(),
            },
            token: config.api.token.clone(),
            body_limit_bytes: config.api.body_limit_bytes,
            request_timeout: config.api.request_timeout,
            publish_timeout: config.api.publish_timeout,
            max_in_flight: config.api.max_in_flight,
        }
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    publisher: Option<Arc<dyn Publisher>>,
    store: Option<Arc<dyn Store>>,
    settings: ApiSettings,
    token_digest: Option<[u8; 32]>,
    /// Ingest requests in flight ([`Admitted`]).
    in_flight: Arc<tokio::sync::Semaphore>,
    /// `/openapi.json`, rendered once for these settings.
    openapi: axum::body::Bytes,
    readiness: Arc<Readiness>,
}

impl AppState {
    /// `publisher` and `store` make this an ingest API; `queue` adds the worker's queue to
    /// readiness.
    pub fn new(
        settings: ApiSettings,
        publisher: Option<Arc<dyn Publisher>>,
        queue: Option<Arc<dyn Queue>>,
        store: Option<Arc<dyn Store>>,
    ) -> Self {
        let token_digest = settings
            .token
            .as_ref()
            .map(|t| Sha256::digest(t.as_bytes()).into());
        let readiness = Arc::new(Readiness::new(
            publisher.clone(),
            queue,
            store.clone(),
            READY_CHECK_TIMEOUT,
        ));
        let in_flight = Arc::new(tokio::sync::Semaphore::new(settings.max_in_flight.max(1)));
        let openapi = serde_json::to_vec(&openapi::document(&settings))
            .expect("the OpenAPI document serializes")
            .into();
        Self {
            inner: Arc::new(Inner {
                publisher,
                store,
                settings,
                token_digest,
                in_flight,
                openapi,
                readiness,
            }),
        }
    }

    /// The cached readiness `/readyz` answers from; refresh it with [`Readiness::run`]
    /// (and once with [`Readiness::refresh`] before serving).
    pub fn readiness(&self) -> Arc<Readiness> {
        self.inner.readiness.clone()
    }

    /// Readiness turns false; in-flight requests still complete.
    pub fn begin_shutdown(&self) {
        self.inner.readiness.begin_shutdown();
    }

    fn is_shutting_down(&self) -> bool {
        self.inner.readiness.is_shutting_down()
    }

    fn serves_ingest(&self) -> bool {
        self.inner.publisher.is_some() && self.inner.store.is_some()
    }
}

/// The whole router.
pub fn app(state: AppState) -> Router {
    // The request metrics keep handles per thread (`track_metrics`): the registry must exist
    // before the first request, not on the first scrape.
    crate::telemetry::metrics_handle();
    let settings = state.inner.settings.clone();
    // Token and load shedding are the `Admitted` extractor of each ingest handler, not
    // route layers: a layer clones the boxed services below it on every request, and the
    // nested clones were a tenth of a POST's instructions.
    let ingest = state.serves_ingest();
    let routes = ROUTES
        .iter()
        .filter(|r| ingest || r.serves == Serves::Every)
        .fold(Router::new(), |router, r| router.route(r.path, handler(r)))
        // Route layers run after routing, so the metrics see the route template and every
        // response, timeouts included (the timeout layer sits inside the metrics layer).
        .route_layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            settings.request_timeout,
        ))
        .route_layer(middleware::from_fn(track_metrics))
        .with_state(state);
    // The layers that need no route wrap the whole router once. `Router::layer` would wrap
    // every route with each of them, and a request clones the boxed services of its route
    // level by level (callgrind: ~42 boxed clones, with a malloc and a free each, per GET).
    let outer = tower::ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            // 5xx are logged by `track_metrics` (probes at DEBUG, others rate-limited), not by
            // the trace layer's default `on_failure`, which logs each one at ERROR.
            TraceLayer::new_for_http().on_failure(()).make_span_with(|req: &Request| {
                let request_id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                if !crate::telemetry::tracing_enabled() {
                    // Without traces, no field only an exporter reads: the log layer formats
                    // every field of this span on every request.
                    return tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id);
                }
                let span = tracing::info_span!("request", otel.kind = "server", method = %req.method(), path = %req.uri().path(), request_id);
                // A client's W3C trace context: this request is a span of its trace.
                if let Some(parent) = req.headers().get("traceparent").and_then(|v| v.to_str().ok()) {
                    crate::telemetry::continue_trace(&span, parent);
                }
                span
            }),
        )
        .layer(middleware::map_response(error::json_errors))
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .service(routes);
    Router::new().fallback_service(outer)
}

/// Counts every routed request and times it (`http_requests_total`,
/// `http_request_duration_seconds`).
///
/// The labels come from small fixed sets (the [`ROUTES`] templates, the methods, the status
/// codes), so each thread keeps the registered handles: a request then costs two atomic
/// updates instead of building label strings and looking the series up in the registry
/// (that was a few percent of a POST's instructions). The registry never drops series
/// (no idle timeout), so a kept handle always reaches the exposed series.
async fn track_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| ROUTES.iter().find(|r| r.path == p.as_str()))
        .map_or("unmatched", |r| r.path);
    let method = static_method(req.method());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    if status >= 500 {
        log_server_error(route, method, status);
    }
    HTTP_SERIES.with(|series| {
        let mut series = series.borrow_mut();
        series
            .requests
            .entry((route, method, status))
            .or_insert_with(|| {
                metrics::counter!(crate::metric::HTTP_REQUESTS_TOTAL, "route" => route, "method" => method, "status" => status.to_string())
            })
            .increment(1);
        series
            .durations
            .entry((route, method))
            .or_insert_with(|| {
                metrics::histogram!(crate::metric::HTTP_REQUEST_DURATION_SECONDS, "route" => route, "method" => method)
            })
            .record(elapsed);
    });
    response
}

/// How often one route and status may log its 5xx at ERROR; the ones in between are counted
/// (`http_requests_total` counts every one) and the next line says how many were suppressed.
const SERVER_ERROR_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// A 5xx answer in the log, the way an SRE can alert on it: probes never above DEBUG (the
/// kubelet asks every few seconds while a dependency is down, and the readiness change itself
/// is logged once), other routes at ERROR at most once per [`SERVER_ERROR_LOG_INTERVAL`] per
/// route and status (log once, count always).
fn log_server_error(route: &'static str, method: &'static str, status: u16) {
    if route == "/healthz" || route == "/readyz" {
        tracing::debug!(
            message = "probe answered with a server error",
            route,
            status
        );
        return;
    }
    /// Per (route, status): when it last logged, and the answers since.
    type Logged = std::collections::HashMap<(&'static str, u16), (Option<Instant>, u64)>;
    static LAST: std::sync::Mutex<Option<Logged>> = std::sync::Mutex::new(None);
    let suppressed = {
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        let entry = last
            .get_or_insert_with(Default::default)
            .entry((route, status))
            .or_insert((None, 0));
        if entry
            .0
            .is_some_and(|at| at.elapsed() < SERVER_ERROR_LOG_INTERVAL)
        {
            entry.1 += 1;
            return;
        }
        let suppressed = entry.1;
        *entry = (Some(Instant::now()), 0);
        suppressed
    };
    tracing::error!(
        message = "request answered with a server error",
        route,
        method,
        status,
        suppressed_since_last = suppressed
    );
}

/// This thread's handles of the HTTP series, by label values.
#[derive(Default)]
struct HttpSeries {
    requests: std::collections::HashMap<(&'static str, &'static str, u16), metrics::Counter>,
    durations: std::collections::HashMap<(&'static str, &'static str), metrics::Histogram>,
}

thread_local! {
    static HTTP_SERIES: std::cell::RefCell<HttpSeries> = std::cell::RefCell::default();
}

/// The method as a label value; methods outside the standard set share one label, so a
/// client cannot grow the series by inventing methods.
fn static_method(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Admission to an ingest route, checked before the body is read: one of
/// `api.max_in_flight` slots, held until the response (past the limit the request is shed at
/// once with 503 `overloaded` instead of queueing, so memory stays bounded by the limit
/// times the body limit; probes are not limited), then the bearer token when one is
/// configured.
pub struct Admitted {
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl axum::extract::FromRequestParts<AppState> for Admitted {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, AppError> {
        let slot = state
            .inner
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                metrics::counter!(crate::metric::REQUESTS_SHED_TOTAL).increment(1);
                AppError::Overloaded
            })?;
        check_token(state, &parts.headers)?;
        Ok(Self { _slot: slot })
    }
}

/// Bearer-token check when a token is configured; the comparison is constant-time over
/// SHA-256 digests, so neither content nor length leaks through timing.
fn check_token(state: &AppState, headers: &axum::http::HeaderMap) -> Result<(), AppError> {
    if let Some(expected) = &state.inner.token_digest {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| Sha256::digest(t.trim().as_bytes()));
        let ok = presented.is_some_and(|p| bool::from(p[..].ct_eq(expected)));
        if !ok {
            return Err(AppError::Unauthorized);
        }
    }
    Ok(())
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `not_ready`.
    pub status: String,
    /// Each dependency: `ok` or a generic reason (`unavailable`, `timeout`, `throttled`,
    /// `not_migrated`, `paused: ...`); never error text.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is alive.", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        checks: BTreeMap::new(),
    })
}

/// Readiness, from the state a background task refreshes: never calls a dependency.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready to serve. `checks` holds a generic reason per dependency.", body = Health),
        (status = 503, description = "A dependency is not ready, or shutting down.", body = Health)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let (ready, checks) = state.inner.readiness.snapshot();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: if ready { "ready" } else { "not_ready" }.into(),
        checks,
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format.", content_type = "text/plain")))]
pub async fn metrics_text() -> Response {
    let body = crate::telemetry::render_metrics();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}
