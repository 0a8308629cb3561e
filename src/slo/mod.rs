//! SRE as code: one SLO spec (`examples/slo.yaml`) → recording rules, alerts and dashboards for
//! every backend, and the `latamctl slo` report.
//!
//! The spec ([`spec`]) names each SLI in terms of the metrics `latamctl serve` exposes
//! ([`crate::telemetry`]). [`promql`] turns an indicator into PromQL; the renderers
//! ([`prometheus`], [`cloudwatch`], [`datadog`], [`dashboards`]) build on it, so an SLI is
//! defined once and every backend computes the same thing. [`evaluate`] computes the SLIs
//! now, from a Prometheus server or by sampling `/metrics` endpoints ([`exposition`]).

pub mod cloudwatch;
pub mod dashboards;
pub mod datadog;
pub mod evaluate;
pub mod exposition;
pub mod prometheus;
pub mod promql;
pub mod rollouts;
pub mod spec;
mod yaml;

pub use spec::SloSpec;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read SLO spec {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("SLO spec {origin} does not parse: {message}")]
    Parse { origin: String, message: String },
    #[error("SLO spec {origin}: {field}: {message}")]
    Invalid {
        origin: String,
        field: String,
        message: String,
    },
    #[error("cannot render {backend}: {message}")]
    Render {
        backend: &'static str,
        message: String,
    },
    #[error(
        "cannot query Prometheus at {url}: {message}. Check the URL (--prometheus, e.g. \
         http://127.0.0.1:9090), that the server is up (curl {url}/-/ready) and reachable from here"
    )]
    Prometheus { url: String, message: String },
    #[error(
        "cannot read metrics from {url}: {message}. Check that `latamctl serve` runs there and \
         answers GET /metrics"
    )]
    Metrics { url: String, message: String },
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// Stable label for logs and metrics (`error_type`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Read { .. } => "read",
            Error::Parse { .. } => "parse",
            Error::Invalid { .. } => "invalid",
            Error::Render { .. } => "render",
            Error::Prometheus { .. } => "prometheus",
            Error::Metrics { .. } => "metrics",
            Error::Usage(_) => "usage",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Pretty JSON with object keys sorted, plus a final newline. serde_json's map keeps
/// insertion order only when some crate enables its `preserve_order` feature, which test
/// builds do and release builds do not: sorting makes every build render the same bytes.
pub(crate) fn canonical_json(value: &serde_json::Value, backend: &'static str) -> Result<String> {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                serde_json::Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(sorted).collect())
            }
            other => other.clone(),
        }
    }
    let mut text = serde_json::to_string_pretty(&sorted(value)).map_err(|e| Error::Render {
        backend,
        message: e.to_string(),
    })?;
    text.push('\n');
    Ok(text)
}
