//! Logs (tracing), metrics (Prometheus text on `/metrics`) and request traces
//! (OpenTelemetry over OTLP/HTTP, off unless an endpoint is configured).
//!
//! Metric names follow Prometheus conventions (base units, `_total`, `_seconds`); labels are
//! bounded (route templates, error kinds). Latency histograms have bucket edges at the SLO
//! thresholds (0.1 s, 0.2 s, 0.4 s) so SLIs are exact bucket ratios, not interpolations.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, TelemetryConfig};

/// Buckets of every `*_seconds` histogram: fine below 100 ms (the DB SLO), edges at 200 ms
/// (the latency SLO) and 400 ms (the latency alert).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of the stored message age (the freshness SLI): seconds to minutes, with edges at
/// the freshness thresholds an SLO may pick (1 s, 5 s, 30 s, 1 min).
pub const AGE_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];
/// The bucket edges latamctl gives a histogram it writes (`None`: not one of its `_seconds`
/// histograms). SLO thresholds must be one of them.
pub fn histogram_buckets(name: &str) -> Option<&'static [f64]> {
    if name == crate::metric::STORED_MESSAGE_AGE_SECONDS {
        Some(AGE_BUCKETS)
    } else if name.ends_with("_duration_seconds") {
        Some(LATENCY_BUCKETS)
    } else {
        None
    }
}

/// Buckets of batch-size histograms.
pub const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0];

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();

/// The process-wide metrics registry, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            // Matchers must not overlap: the exporter picks any one that matches.
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(crate::metric::STORED_MESSAGE_AGE_SECONDS.into()),
                        AGE_BUCKETS,
                    )
                })
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

/// Size and free space of the filesystem holding a directory (statvfs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FsUsage {
    pub size_bytes: u64,
    /// Free for an unprivileged process (`f_bavail`: what the data files can still use).
    pub free_bytes: u64,
}

impl FsUsage {
    /// The used fraction, 0..1, as `df` counts it for a non-root user.
    pub fn used_ratio(&self) -> f64 {
        if self.size_bytes == 0 {
            return 0.0;
        }
        1.0 - self.free_bytes as f64 / self.size_bytes as f64
    }
}

/// The filesystem under `path` (seed 4.2: disk usage).
pub fn filesystem_usage(path: &std::path::Path) -> std::io::Result<FsUsage> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs writes into the zeroed struct it is given; `c` is a valid C string.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let unit = s.f_frsize as u64;
    Ok(FsUsage {
        size_bytes: s.f_blocks as u64 * unit,
        free_bytes: s.f_bavail as u64 * unit,
    })
}

/// Publishes the data dir's filesystem size and free space every `every` until `shutdown`
/// (`latamctl_data_dir_filesystem_{size,free}_bytes`): the embedded queue refuses publishes
/// once its disk is full, so this is the alert that comes before.
pub async fn report_data_dir_usage(
    dir: std::path::PathBuf,
    every: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let d = dir.clone();
        if let Ok(Ok(usage)) = tokio::task::spawn_blocking(move || filesystem_usage(&d)).await {
            metrics::gauge!(crate::metric::DATA_DIR_SIZE_BYTES).set(usage.size_bytes as f64);
            metrics::gauge!(crate::metric::DATA_DIR_FREE_BYTES).set(usage.free_bytes as f64);
        }
    }
}

/// Publishes the CPU and memory this process may use (`latamctl_cpu_limit_cores`,
/// `latamctl_memory_limit_bytes`), which the CPU and memory alerts divide usage by: the
/// cgroup limits (a pod's `resources.limits`), else the machine's.
pub fn record_resource_limits() {
    if let Some(cores) = cpu_limit_cores() {
        metrics::gauge!(crate::metric::CPU_LIMIT_CORES).set(cores);
    }
    if let Some(bytes) = memory_limit_bytes() {
        metrics::gauge!(crate::metric::MEMORY_LIMIT_BYTES).set(bytes);
    }
}

/// This process's cgroup v2 directory (`0::/path` in /proc/self/cgroup).
fn cgroup_dir() -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/')))
}

/// The first of `names` found in this process's cgroup directory or the cgroup root.
fn read_cgroup(names: &[&str]) -> Option<String> {
    let dirs = cgroup_dir()
        .into_iter()
        .chain([std::path::PathBuf::from("/sys/fs/cgroup")]);
    dirs.flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find_map(|p| std::fs::read_to_string(p).ok())
}

/// `cpu.max` of cgroup v2: `max 100000` (no limit) or `<quota> <period>`.
fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut it = text.split_whitespace();
    let quota = it.next()?.parse::<f64>().ok()?;
    let period = it.next()?.parse::<f64>().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

fn cpu_limit_cores() -> Option<f64> {
    let quota = read_cgroup(&["cpu.max"])
        .and_then(|t| parse_cpu_max(&t))
        .or_else(|| {
            // cgroup v1: a quota of -1 means no limit.
            let q = read_cgroup(&["cpu/cpu.cfs_quota_us", "cpu,cpuacct/cpu.cfs_quota_us"])?;
            let p = read_cgroup(&["cpu/cpu.cfs_period_us", "cpu,cpuacct/cpu.cfs_period_us"])?;
            parse_cpu_max(&format!("{} {}", q.trim(), p.trim()))
        });
    let machine = std::thread::available_parallelism()
        .ok()
        .map(|n| n.get() as f64);
    match (quota, machine) {
        (Some(q), Some(m)) => Some(q.min(m)),
        (q, m) => q.or(m),
    }
}

/// `MemTotal` of /proc/meminfo in bytes.
fn parse_mem_total(meminfo: &str) -> Option<f64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib = line.split_whitespace().nth(1)?.parse::<f64>().ok()?;
    Some(kib * 1024.0)
}

fn memory_limit_bytes() -> Option<f64> {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| parse_mem_total(&t));
    // "max" (v2) does not parse: no limit. v1 reports a huge number instead, hence the min.
    let limit = read_cgroup(&["memory.max", "memory/memory.limit_in_bytes"])
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0);
    match (limit, machine) {
        (Some(l), Some(m)) => Some(l.min(m)),
        (l, m) => l.or(m),
    }
}

fn describe_metrics() {
    use crate::metric::{Kind, TABLE, Unit};
    for m in TABLE {
        let unit = m.unit.map(|u| match u {
            Unit::Seconds => metrics::Unit::Seconds,
            Unit::Bytes => metrics::Unit::Bytes,
        });
        match (m.kind, unit) {
            (Kind::Counter, Some(u)) => metrics::describe_counter!(m.name, u, m.help),
            (Kind::Counter, None) => metrics::describe_counter!(m.name, m.help),
            (Kind::Gauge, Some(u)) => metrics::describe_gauge!(m.name, u, m.help),
            (Kind::Gauge, None) => metrics::describe_gauge!(m.name, m.help),
            (Kind::Histogram, Some(u)) => metrics::describe_histogram!(m.name, u, m.help),
            (Kind::Histogram, None) => metrics::describe_histogram!(m.name, m.help),
        }
    }
}

/// Starts logging to stderr. `RUST_LOG` wins over `level`.
///
/// JSON lines carry `timestamp`, `level`, `target`, `message` and the event's fields at the
/// top level (the attributes Datadog, Loki and CloudWatch Logs Insights read), and the
/// current span's fields under `span` (a request's method, path and request id).
pub fn init_logging(format: LogFormat, level: &str, traces: Option<(&TelemetryConfig, &str)>) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let otel = traces.and_then(|(config, environment)| tracer(config, environment));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
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
    if result.is_ok() {
        let _ = LOG_FILTER.set(handle);
        if TRACER_PROVIDER.get().is_some() {
            TRACING.store(true, Ordering::Relaxed);
        }
    }
}

static LOG_FILTER: OnceLock<reload::Handle<EnvFilter, tracing_subscriber::Registry>> =
    OnceLock::new();

/// How [`set_log_level`] went.
#[derive(Debug, PartialEq, Eq)]
pub enum LevelChange {
    /// The new filter is in force.
    Changed,
    /// Already this filter.
    Unchanged,
    /// `RUST_LOG` is set: it wins over the config, as at start.
    PinnedByRustLog,
}

/// Replaces the log filter at run time (`serve` on SIGHUP, from the re-read config).
pub fn set_log_level(level: &str) -> Result<LevelChange, String> {
    if std::env::var_os("RUST_LOG").is_some() {
        return Ok(LevelChange::PinnedByRustLog);
    }
    let filter = EnvFilter::try_new(level)
        .map_err(|e| format!("log.level {level:?} is not a filter: {e}"))?;
    let handle = LOG_FILTER
        .get()
        .ok_or_else(|| "logging is not started".to_owned())?;
    let current = handle
        .with_current(|f| f.to_string())
        .map_err(|e| e.to_string())?;
    if current == filter.to_string() {
        return Ok(LevelChange::Unchanged);
    }
    handle.reload(filter).map_err(|e| e.to_string())?;
    Ok(LevelChange::Changed)
}

static TRACER_PROVIDER: OnceLock<opentelemetry_sdk::trace::SdkTracerProvider> = OnceLock::new();
static TRACING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported: the hot paths create their trace spans only then.
pub fn tracing_enabled() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// Where spans go: `[telemetry] otlp_endpoint` (`<url>/v1/traces`), else the standard
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` the exporter reads
/// itself; `None` when none is set or `OTEL_SDK_DISABLED=true`.
fn otlp_endpoint(config: &TelemetryConfig) -> Option<Option<String>> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    match &config.otlp_endpoint {
        Some(url) => Some(Some(format!("{}/v1/traces", url.trim_end_matches('/')))),
        None if env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
            || env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() =>
        {
            Some(None)
        }
        None => None,
    }
}

/// The OpenTelemetry layer (batch export over OTLP/HTTP protobuf), when an endpoint is
/// configured. The SDK honours the standard variables: `OTEL_SERVICE_NAME` (default
/// `latamctl`), `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_BSP_*`,
/// `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`.
fn tracer<S>(
    config: &TelemetryConfig,
    environment: &str,
) -> Option<tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;

    let endpoint = otlp_endpoint(config)?;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
    if let Some(url) = endpoint {
        exporter = exporter.with_endpoint(url);
    }
    let exporter = match exporter.build() {
        Ok(e) => e,
        Err(error) => {
            eprintln!("latamctl: traces are off: cannot build the OTLP exporter: {error}");
            return None;
        }
    };
    let mut resource = opentelemetry_sdk::Resource::builder().with_attribute(
        opentelemetry::KeyValue::new("deployment.environment.name", environment.to_owned()),
    );
    if std::env::var_os("OTEL_SERVICE_NAME").is_none()
        && !std::env::var("OTEL_RESOURCE_ATTRIBUTES")
            .unwrap_or_default()
            .contains("service.name=")
    {
        resource = resource.with_service_name("latamctl");
    }
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("latamctl");
    TRACER_PROVIDER.set(provider).ok()?;
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Exports the spans still buffered (the end of `serve`, each Lambda invocation).
pub fn flush_traces() {
    if let Some(provider) = TRACER_PROVIDER.get()
        && let Err(error) = provider.force_flush()
    {
        tracing::warn!(message = "Could not export the last spans.", %error);
    }
}

/// The W3C `traceparent` of `span` (to carry in a message), when traces are on.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    use opentelemetry::propagation::TextMapPropagator as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if !tracing_enabled() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .inject_context(&span.context(), &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` continue the trace of a W3C `traceparent` (a message attribute or a request
/// header); an invalid value leaves it a root span.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if !tracing_enabled() {
        return;
    }
    let carrier =
        std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let cx = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_limits_parse() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_cpu_max("-1 100000"), None);
        assert_eq!(
            parse_mem_total("MemTotal:       16318504 kB\nMemFree: 1 kB\n"),
            Some(16_318_504.0 * 1024.0)
        );
        // This machine has at least one CPU and some memory, whatever its cgroups say.
        assert!(cpu_limit_cores().is_some_and(|c| c > 0.0));
        if cfg!(target_os = "linux") {
            assert!(memory_limit_bytes().is_some_and(|m| m > 0.0));
        }
    }
}
