//! Logs (tracing) and metrics (Prometheus text on `/metrics`).
//!
//! Metric names follow Prometheus conventions (base units, `_total`, `_seconds`); labels are
//! bounded (route templates, error kinds). Latency histograms have bucket edges at the SLO
//! thresholds (0.1 s, 0.2 s, 0.4 s) so SLIs are exact bucket ratios, not interpolations.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Buckets of every `*_seconds` histogram: fine below 100 ms (the DB SLO), edges at 200 ms
/// (the latency SLO) and 400 ms (the latency alert).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of batch-size histograms.
pub const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0];

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();

/// The process-wide metrics registry, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_batch_size".into()), SIZE_BUCKETS)
                })
                .expect("bucket lists are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            let process = metrics_process::Collector::default();
            process.describe();
            let _ = PROCESS.set(process);
            describe_metrics();
            handle
        })
        .clone()
}

/// Renders all metrics in the Prometheus text format, process metrics refreshed.
pub fn render_metrics() -> String {
    let handle = metrics_handle();
    if let Some(process) = PROCESS.get() {
        process.collect();
    }
    handle.render()
}

/// Keeps histogram storage bounded; call periodically from a long-running process.
pub fn spawn_metrics_upkeep() {
    let handle = metrics_handle();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
}

fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by route template, method and status."
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by route template and method."
    );
    describe_counter!(
        "latamctl_messages_published_total",
        "Messages accepted by the bus (POST answered 200)."
    );
    describe_counter!(
        "latamctl_publish_errors_total",
        "Publishes that failed, by error type."
    );
    describe_counter!(
        "latamctl_retries_total",
        "Retried operations (publish, insert), the retry-rate SLI numerator."
    );
    describe_counter!(
        "latamctl_idempotent_replays_total",
        "POSTs answered from an earlier request with the same Idempotency-Key."
    );
    describe_counter!(
        "latamctl_messages_stored_total",
        "Rows inserted by the worker (duplicates excluded)."
    );
    describe_counter!(
        "latamctl_messages_duplicate_total",
        "Delivered messages whose row already existed (redeliveries)."
    );
    describe_counter!(
        "latamctl_worker_batches_total",
        "Worker batches by outcome."
    );
    describe_histogram!(
        "latamctl_worker_batch_duration_seconds",
        Unit::Seconds,
        "Time from receive to acknowledgement of a batch."
    );
    describe_histogram!("latamctl_worker_batch_size", "Messages per received batch.");
    describe_counter!(
        "latamctl_poison_messages_total",
        "Received messages that could not be decoded, by reason."
    );
    describe_gauge!(
        "latamctl_queue_depth",
        "Messages in the queue by queue (main, dlq) and state."
    );
    describe_gauge!(
        "latamctl_queue_oldest_message_age_seconds",
        Unit::Seconds,
        "Age of the oldest message in the main queue."
    );
    describe_counter!(
        "latamctl_queue_dead_lettered_total",
        "Messages moved to the dead-letter queue by the embedded queue."
    );
    describe_histogram!(
        "latamctl_db_query_duration_seconds",
        Unit::Seconds,
        "Database query latency by operation (the DB-latency SLI)."
    );
    describe_counter!(
        "latamctl_db_errors_total",
        "Database queries that failed, by operation and error type."
    );
    describe_gauge!(
        "latamctl_db_pool_connections",
        "Database pool connections by state (in_use, idle)."
    );
    describe_gauge!(
        "latamctl_ready",
        "1 when the process is ready to serve, 0 otherwise."
    );
    describe_gauge!(
        "latamctl_build_info",
        "Always 1; labels carry the version and role."
    );
}

/// Starts logging to stderr. `RUST_LOG` wins over `level`.
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_current_span(true),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init(),
    };
    // A second init (tests, nested commands) keeps the first subscriber.
    let _ = result;
}
