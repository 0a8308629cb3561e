//! Effective configuration.
//!
//! Layers, lowest to highest: built-in defaults, the config file (`latamctl.toml`),
//! environment variables (`LATAMCTL_<SECTION>_<KEY>`, plus the conventional `DATABASE_URL`),
//! then command-line flags. Every key of the file can be set through the environment: the
//! variable name is derived from the key's path, so the two can never drift apart.

mod load;
mod operator;
mod validate;

pub use operator::{KubernetesConfig, ProvisionConfig, StatusConfig};

use load::collect_leaves;
pub use load::{Overrides, SECRET_FILES, Sources, env_name, load, load_with_env, merge};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Environment variable prefix of every configuration key.
pub const ENV_PREFIX: &str = "LATAMCTL_";
/// Config file read from the working directory when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "latamctl.toml";
/// What secrets look like in printed configuration.
pub const REDACTED: &str = "<redacted>";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration{origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("environment variable {name}={value:?} is not valid: {expected}")]
    Env {
        name: String,
        value: String,
        expected: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which message bus carries messages from the API to the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// Durable on-disk queue in the data directory (one machine, zero setup).
    Embedded,
    /// AWS SNS topic fanned out to an SQS queue with a dead-letter queue.
    Aws,
}

/// Which database the worker writes and the API reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// SQLite file (WAL) in the data directory.
    Sqlite,
    /// PostgreSQL (RDS), or Citus when the extension is installed.
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The whole configuration, as read from `latamctl.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Message bus: `embedded` (on-disk queue under `data_dir`) or `aws` (SNS + SQS).
    pub bus: BusKind,
    /// Record store: `sqlite` (file under `data_dir`) or `postgres`.
    pub store: StoreKind,
    /// Directory holding the embedded queue and the SQLite database.
    pub data_dir: PathBuf,
    /// Topic names clients may post to (`topic_arn` is a name or an ARN ending in `:name`).
    pub topics: Vec<String>,
    /// System name, used as the prefix of provisioned cloud resources.
    pub name: String,
    /// Environment name (dev, prod, ...), part of provisioned resource names.
    pub environment: String,
    pub api: ApiConfig,
    pub worker: WorkerConfig,
    pub queue: QueueConfig,
    pub aws: AwsConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub provision: ProvisionConfig,
    pub status: StatusConfig,
    pub kubernetes: KubernetesConfig,
    pub telemetry: TelemetryConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address the HTTP server listens on (`host:port`; port 0 picks a free port).
    pub listen: String,
    /// Bearer token required on POST and GET when set. Secret: never printed.
    pub token: Option<String>,
    /// File holding `token` (a mounted Kubernetes Secret), so the token is on no command
    /// line and in no environment; instead of `token`.
    pub token_file: Option<PathBuf>,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Time after which a request is answered 503.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Time a POST waits for the bus to accept a message before answering 503.
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// How long an `Idempotency-Key` is remembered.
    #[serde(with = "humantime_serde")]
    pub idempotency_ttl: Duration,
    /// Most requests to the ingest routes handled at once; past it a request is answered
    /// 503 `overloaded` with `Retry-After` at once (load shedding), which bounds memory to
    /// about this many request bodies.
    pub max_in_flight: usize,
    /// How often the background task re-checks the bus, queue and store for `/readyz`
    /// (which answers from that state and never calls them itself).
    #[serde(with = "humantime_serde")]
    pub readiness_interval: Duration,
    /// A request head that has begun to arrive must be complete within this, or the
    /// connection is closed (slowloris).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no request is closed after this. Keep it longer than the
    /// load balancer's idle timeout (the ALB's 60 s), or the ALB reuses a connection the
    /// server has just closed and answers 502.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A request body must have arrived within this (shorter than `request_timeout`), or it
    /// is answered 408 and the connection closed.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Most open client connections; past it the longest-idle one is closed to make room, and
    /// when every one is busy new ones wait in the accept backlog.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Concurrent receive loops (SQS pollers).
    pub concurrency: usize,
    /// Messages received and inserted per batch; 0 = automatic: 10 on SQS (its maximum),
    /// 100 on the embedded queue (fewer fsyncs per message).
    pub batch_size: usize,
    /// Long-polling wait per receive.
    #[serde(with = "humantime_serde")]
    pub wait_time: Duration,
    /// Time a received message stays invisible to other consumers before it is redelivered.
    #[serde(with = "humantime_serde")]
    pub visibility_timeout: Duration,
    /// First delay before a failed message is retried; doubles per receive.
    #[serde(with = "humantime_serde")]
    pub retry_base_delay: Duration,
    /// Longest delay before a failed message is retried.
    #[serde(with = "humantime_serde")]
    pub retry_max_delay: Duration,
    /// Lambda worker only: how long a batch that failed store-wide stays invisible before
    /// the event source mapping receives it again (each receive counts toward the DLQ).
    #[serde(with = "humantime_serde")]
    pub store_outage_hold: Duration,
    /// Most messages held for a database node that refuses writes (a dead Citus worker)
    /// while the others are stored; past it receiving waits, so the held set stays bounded.
    pub max_held_messages: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Receives after which an unacknowledged message moves to the dead-letter queue.
    pub max_receive_count: u32,
    /// Most publishes committed together in one fsync (group commit).
    pub group_commit_max: usize,
    /// How long an unconsumed message stays in the main queue (SQS's default: 4 days).
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How long a message stays in the dead-letter queue (SQS's maximum: 14 days).
    #[serde(with = "humantime_serde")]
    pub dlq_retention: Duration,
    /// Largest size of the queue's data in `queue.db`, in bytes; past it POST answers 503
    /// `queue_full` (nothing is accepted that cannot be stored) and `status` warns from 80%.
    pub max_bytes: u64,
}

/// Default `aws.publish_in_flight`. With SNS answering in ~10 ms, 16 calls carry ~1,600
/// messages a second one by one and ~16,000 in full batches. Measured on bench/aws-emulator
/// (calls under 1 ms, wrk -c64): 64 in flight never batch (7,500 POST/s, 172 µs CPU each),
/// 16 give 11,400/s at 107 µs, 4 give 19,000/s at 58 µs.
pub const DEFAULT_PUBLISH_IN_FLIGHT: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// AWS region; falls back to the standard chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Endpoint override for emulators (moto, LocalStack); falls back to `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// ARN of the SNS topic the API publishes to.
    pub topic_arn: Option<String>,
    /// URL of the SQS queue the worker consumes.
    pub queue_url: Option<String>,
    /// URL of the dead-letter queue (for `drain` and `status`).
    pub dlq_url: Option<String>,
    /// URL of the SNS subscription's dead-letter queue: what SNS could not deliver to the
    /// queue (checked by `status`).
    pub sns_dlq_url: Option<String>,
    /// Attempts per SNS publish (first try included) before answering 503.
    pub publish_attempts: u32,
    /// SNS publish calls in flight at once per process; the POSTs that arrive while they are
    /// leave together in one `PublishBatch` (see `latamctl_sns_publish_batch_size`).
    pub publish_in_flight: usize,
    /// RDS instance identifier that `provision` and `status` check (created by Terraform).
    pub rds_instance_id: Option<String>,
    /// EKS cluster name that `provision` and `status` check (created by Terraform).
    pub eks_cluster: Option<String>,
    /// SNS topic ARN that CloudWatch alarms notify (e.g. the on-call topic).
    pub alarm_topic_arn: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// PostgreSQL URL (`postgres://user:pass@host:5432/db`). Secret: never printed.
    /// `DATABASE_URL` is accepted too.
    pub url: Option<String>,
    /// File holding `url` (a mounted Kubernetes Secret); instead of `url`. `DATABASE_URL_FILE`
    /// is accepted too.
    pub url_file: Option<PathBuf>,
    /// Host, when the connection is given in parts instead of `url` (RDS with a managed secret).
    pub host: Option<String>,
    /// Port with `host`.
    pub port: u16,
    /// Database name with `host`.
    pub name: Option<String>,
    /// User with `host` (default: the secret's `username`).
    pub user: Option<String>,
    /// Password with `host`. Secret: never printed; prefer `secret_arn`.
    pub password: Option<String>,
    /// File holding `password`; instead of `password`.
    pub password_file: Option<PathBuf>,
    /// Secrets Manager secret holding `{"username", "password"}` (RDS-managed master secret).
    pub secret_arn: Option<String>,
    /// TLS with `host`: disable, prefer, require, verify-ca, verify-full.
    pub ssl_mode: String,
    /// How often the `secret_arn` secret is re-read (RDS rotates it).
    #[serde(with = "humantime_serde")]
    pub secret_refresh: Duration,
    /// Largest connection pool per process.
    pub max_connections: u32,
    /// Apply migrations when `serve` starts.
    pub migrate_on_start: bool,
    /// Longest time one query may take.
    #[serde(with = "humantime_serde")]
    pub query_timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// Filter in `tracing` syntax (`info`, `latamctl=debug,tower_http=info`); `RUST_LOG` wins.
    pub level: String,
}

/// Request traces (OpenTelemetry), off unless an OTLP endpoint is set here or in
/// `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Base URL of an OTLP/HTTP receiver (a collector, `http://otel-collector:4318`);
    /// spans go to `<url>/v1/traces` as protobuf.
    pub otlp_endpoint: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bus: BusKind::Embedded,
            store: StoreKind::Sqlite,
            data_dir: PathBuf::from("./latamctl-data"),
            topics: vec!["data-ingestion-topic".to_owned()],
            name: "latam".to_owned(),
            environment: "dev".to_owned(),
            api: ApiConfig::default(),
            worker: WorkerConfig::default(),
            queue: QueueConfig::default(),
            aws: AwsConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            provision: ProvisionConfig::default(),
            status: StatusConfig::default(),
            kubernetes: KubernetesConfig::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            topic_arn: None,
            queue_url: None,
            dlq_url: None,
            sns_dlq_url: None,
            publish_attempts: 3,
            publish_in_flight: DEFAULT_PUBLISH_IN_FLIGHT,
            rds_instance_id: None,
            eks_cluster: None,
            alarm_topic_arn: None,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            token: None,
            token_file: None,
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            publish_timeout: Duration::from_secs(5),
            idempotency_ttl: Duration::from_secs(24 * 3600),
            readiness_interval: Duration::from_secs(5),
            max_in_flight: 128,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            body_read_timeout: Duration::from_secs(5),
            max_connections: 4096,
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            batch_size: 0,
            wait_time: Duration::from_secs(20),
            visibility_timeout: Duration::from_secs(30),
            retry_base_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(60),
            store_outage_hold: Duration::from_secs(900),
            max_held_messages: 10_000,
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_receive_count: 5,
            group_commit_max: 512,
            retention: Duration::from_secs(4 * 24 * 3600),
            dlq_retention: Duration::from_secs(14 * 24 * 3600),
            max_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            url_file: None,
            host: None,
            port: 5432,
            name: None,
            user: None,
            password: None,
            password_file: None,
            secret_arn: None,
            ssl_mode: "prefer".to_owned(),
            secret_refresh: Duration::from_secs(300),
            max_connections: 10,
            migrate_on_start: true,
            query_timeout: Duration::from_secs(5),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

impl Config {
    /// `worker.batch_size`, with 0 resolved for the configured bus.
    pub fn effective_batch_size(&self) -> usize {
        match (self.worker.batch_size, self.bus) {
            (0, BusKind::Aws) => 10,
            (0, BusKind::Embedded) => 100,
            (n, _) => n,
        }
    }

    /// Fails with a message that says exactly what to set when a cloud key is missing.
    pub fn require<'a>(&self, value: &'a Option<String>, key: &str, why: &str) -> Result<&'a str> {
        match value.as_deref() {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => {
                let path: Vec<String> = key.split('.').map(str::to_owned).collect();
                let (section, field) = key.split_once('.').unwrap_or(("", key));
                Err(Error::Invalid {
                    origin: String::new(),
                    message: format!(
                        "{why} needs `{key}`: set it in latamctl.toml ([{section}] {field} = \"...\"), \
                         or as env {}, or with its flag",
                        env_name(&path)
                    ),
                })
            }
        }
    }

    /// The configuration as a JSON value with secrets replaced by [`REDACTED`].
    pub fn redacted(&self) -> Value {
        let mut value = serde_json::to_value(self).expect("config serializes");
        if let Some(token) = value.pointer_mut("/api/token")
            && !token.is_null()
        {
            *token = Value::String(REDACTED.to_owned());
        }
        if let Some(password) = value.pointer_mut("/database/password")
            && !password.is_null()
        {
            *password = Value::String(REDACTED.to_owned());
        }
        if let Some(url) = value.pointer_mut("/database/url")
            && let Some(s) = url.as_str()
        {
            *url = Value::String(redact_url(s));
        }
        value
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:<redacted>@host/db`.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return REDACTED.to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("REDACTED"));
    }
    // libpq-style URLs may carry the password as a query parameter too.
    if parsed.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "REDACTED".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string().replace("REDACTED", REDACTED)
}

/// SNS topic names: 1-256 characters of letters, digits, hyphens and underscores.
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A flat `key → value` view of a config value, for tables.
pub fn flatten(value: &Value) -> BTreeMap<String, String> {
    let mut leaves = Vec::new();
    collect_leaves(value, &mut Vec::new(), &mut leaves);
    leaves
        .into_iter()
        .map(|(path, v)| {
            let shown = match v {
                Value::Null => "-".to_owned(),
                Value::String(s) => s,
                other => other.to_string(),
            };
            (path.join("."), shown)
        })
        .collect()
}

#[cfg(test)]
mod tests;
