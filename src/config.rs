//! Effective configuration.
//!
//! Layers, lowest to highest: built-in defaults, the config file (`latamctl.toml`),
//! environment variables (`LATAMCTL_<SECTION>_<KEY>`, plus the conventional `DATABASE_URL`),
//! then command-line flags. Every key of the file can be set through the environment: the
//! variable name is derived from the key's path, so the two can never drift apart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
    /// RDS instance identifier that `provision` and `status` check (created by Terraform).
    pub rds_instance_id: Option<String>,
    /// EKS cluster name that `provision` and `status` check (created by Terraform).
    pub eks_cluster: Option<String>,
    /// SNS topic ARN that CloudWatch alarms notify (e.g. the on-call topic).
    pub alarm_topic_arn: Option<String>,
}

/// What `latamctl provision` creates, besides the names derived from `name`/`environment`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisionConfig {
    /// How long the main queue keeps a message.
    #[serde(with = "humantime_serde")]
    pub queue_retention: Duration,
    /// How long the dead-letter queue keeps a message (longer than the main queue: a moved
    /// message keeps its original enqueue time).
    #[serde(with = "humantime_serde")]
    pub dlq_retention: Duration,
    /// Alarm when the oldest message in the queue is older than this.
    #[serde(with = "humantime_serde")]
    pub alarm_oldest_message_age: Duration,
}

/// Thresholds of `latamctl status` (defaults from the seed's alerts and SLOs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusConfig {
    /// Longest wait for each check.
    #[serde(with = "humantime_serde")]
    pub check_timeout: Duration,
    /// Warn when the dead-letter queue holds more messages than this.
    pub dlq_warn: u64,
    /// Warn when the oldest queued message is older than this.
    #[serde(with = "humantime_serde")]
    pub oldest_message_warn: Duration,
    /// Fail when the oldest queued message is older than this.
    #[serde(with = "humantime_serde")]
    pub oldest_message_fail: Duration,
    /// Warn when the API's error ratio (4xx+5xx) is above this (seed: 1 %).
    pub error_rate_warn: f64,
    /// Warn when the API's p95 latency is above this (seed SLO: 200 ms).
    #[serde(with = "humantime_serde")]
    pub p95_warn: Duration,
    /// Warn when a database round trip takes longer than this (seed SLO: 100 ms).
    #[serde(with = "humantime_serde")]
    pub db_latency_warn: Duration,
}

/// Where `status` finds the pipeline's Kubernetes objects (`KUBECONFIG` or in-cluster).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// Check Kubernetes at all (skipped when no kubeconfig is found either way).
    pub enabled: bool,
    /// Namespace of the Helm release.
    pub namespace: String,
    /// Helm release name. The chart names Deployments `<release>-api`/`-worker` when the
    /// release name contains "latamctl", else `<release>-latamctl-api`/`-worker`.
    pub release: String,
    /// kubeconfig context (default: the current one).
    pub context: Option<String>,
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
            rds_instance_id: None,
            eks_cluster: None,
            alarm_topic_arn: None,
        }
    }
}

impl Default for ProvisionConfig {
    fn default() -> Self {
        Self {
            queue_retention: Duration::from_secs(4 * 86_400),
            dlq_retention: Duration::from_secs(14 * 86_400),
            alarm_oldest_message_age: Duration::from_secs(300),
        }
    }
}

impl Default for StatusConfig {
    fn default() -> Self {
        Self {
            check_timeout: Duration::from_secs(5),
            dlq_warn: 0,
            oldest_message_warn: Duration::from_secs(300),
            oldest_message_fail: Duration::from_secs(900),
            error_rate_warn: 0.01,
            p95_warn: Duration::from_millis(200),
            db_latency_warn: Duration::from_millis(100),
        }
    }
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            namespace: "latam".to_owned(),
            release: "latamctl".to_owned(),
            context: None,
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

/// Values set on the command line, as `(dotted.key, value)` pairs; the highest layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides(Vec<(&'static str, Value)>);

impl Overrides {
    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) -> &mut Self {
        self.0.push((key, value.into()));
        self
    }

    /// Sets `key` only when the flag was given.
    pub fn set_opt<T: Into<Value>>(&mut self, key: &'static str, value: Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.set(key, v);
        }
        self
    }

    fn to_value(&self) -> Value {
        let mut root = Value::Object(Default::default());
        for (key, value) in &self.0 {
            let path: Vec<&str> = key.split('.').collect();
            insert_path(&mut root, &path, value.clone());
        }
        root
    }
}

/// Where the effective configuration came from, for `config show` and error messages.
#[derive(Debug, Clone, Serialize)]
pub struct Sources {
    pub file: Option<PathBuf>,
    pub env: Vec<String>,
    /// Where each secret came from (`file /run/secrets/token`, `env LATAMCTL_API_TOKEN`,
    /// `flag`, `config file`, `unset`), never its value.
    pub secrets: BTreeMap<String, String>,
    /// Settings no layer gave that were derived from others, each with the reason
    /// (`store = postgres: ...`), logged at start and shown by `config show`.
    pub inferred: Vec<String>,
}

/// Secrets that may be read from a file (a mounted Kubernetes Secret) instead of being
/// given as a value: the value's key and the file's key.
pub const SECRET_FILES: [(&str, &str); 3] = [
    ("api.token", "api.token_file"),
    ("database.url", "database.url_file"),
    ("database.password", "database.password_file"),
];

/// Reads every `*_file` secret of `merged` into its value, and says where each secret came
/// from. A value and its file both set is an error (which one would win is a guess).
fn resolve_secret_files(
    merged: &mut Value,
    file_layer: Option<&Value>,
    env_names: &[String],
    overrides: &Overrides,
) -> Result<BTreeMap<String, String>> {
    let invalid = |message: String| Error::Invalid {
        origin: String::new(),
        message,
    };
    let pointer = |key: &str| format!("/{}", key.replace('.', "/"));
    let mut sources = BTreeMap::new();
    for (key, file_key) in SECRET_FILES {
        let file = merged
            .pointer(&pointer(file_key))
            .and_then(Value::as_str)
            .map(PathBuf::from);
        let given = merged.pointer(&pointer(key)).is_some_and(|v| !v.is_null());
        let source = match file {
            Some(path) => {
                if given {
                    return Err(invalid(format!(
                        "both `{key}` and `{file_key}` are set: keep one (the file, for a mounted secret)"
                    )));
                }
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    invalid(format!(
                        "cannot read `{file_key}` {}: {e}; mount the secret there or fix the path",
                        path.display()
                    ))
                })?;
                let secret = text.trim();
                if secret.is_empty() {
                    return Err(invalid(format!(
                        "`{file_key}` {} is empty: it must hold the {key} value",
                        path.display()
                    )));
                }
                if let Some(slot) = merged.pointer_mut(&pointer(key)) {
                    *slot = Value::String(secret.to_owned());
                }
                format!("file {}", path.display())
            }
            None if !given => "unset".to_owned(),
            None if overrides.0.iter().any(|(k, _)| *k == key) => "flag".to_owned(),
            None => {
                let path: Vec<String> = key.split('.').map(str::to_owned).collect();
                let name = env_name(&path);
                let conventional = (key == "database.url").then_some("DATABASE_URL");
                match env_names
                    .iter()
                    .find(|n| **n == name || Some(n.as_str()) == conventional)
                {
                    Some(n) => format!("env {n}"),
                    None if file_layer.and_then(|f| f.pointer(&pointer(key))).is_some() => {
                        "config file".to_owned()
                    }
                    None => "default".to_owned(),
                }
            }
        };
        sources.insert(key.to_owned(), source);
    }
    Ok(sources)
}

/// Loads the configuration: defaults < file < env < overrides.
///
/// `file` is the `--config` flag (or `LATAMCTL_CONFIG`); when absent, `./latamctl.toml` is read
/// if it exists.
pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<(Config, Sources)> {
    load_with_env(file, overrides, |name| std::env::var(name).ok())
}

/// [`load`] with an explicit environment, so tests do not touch the process environment.
pub fn load_with_env(
    file: Option<&Path>,
    overrides: &Overrides,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Config, Sources)> {
    let defaults = serde_json::to_value(Config::default()).expect("config serializes");
    let mut merged = defaults.clone();
    let mut file_layer: Option<Value> = None;

    let file_path = match file {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let p = PathBuf::from(DEFAULT_CONFIG_FILE);
            p.exists().then_some(p)
        }
    };
    if let Some(path) = &file_path {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| Error::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let value = serde_json::to_value(table).map_err(|e| Error::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        // Validate the file alone first, so an unknown key is reported against the file.
        serde_json::from_value::<Config>(value.clone()).map_err(|e| Error::Invalid {
            origin: format!(" in {}", path.display()),
            message: e.to_string(),
        })?;
        merge(&mut merged, value.clone());
        file_layer = Some(value);
    }

    let (env_value, env_names) = env_layer(&defaults, &env)?;
    merge(&mut merged, env_value);
    merge(&mut merged, overrides.to_value());
    let secrets = resolve_secret_files(&mut merged, file_layer.as_ref(), &env_names, overrides)?;
    let inferred = infer_store(&mut merged, file_layer.as_ref(), &env_names, overrides)
        .into_iter()
        .collect();

    let config: Config = serde_json::from_value(merged).map_err(|e| Error::Invalid {
        origin: String::new(),
        message: e.to_string(),
    })?;
    config.validate()?;
    Ok((
        config,
        Sources {
            file: file_path,
            env: env_names,
            secrets,
            inferred,
        },
    ))
}

/// A PostgreSQL database configured (`database.url`, `url_file` or `host`) while no layer set
/// `store` means PostgreSQL: the default `sqlite` would silently put the records in a local
/// file next to a database the operator named. An explicit `store = "sqlite"` keeps SQLite.
fn infer_store(
    merged: &mut Value,
    file_layer: Option<&Value>,
    env_names: &[String],
    overrides: &Overrides,
) -> Option<String> {
    let store_env = env_name(&["store".to_owned()]);
    let store_given = file_layer.is_some_and(|f| f.get("store").is_some())
        || env_names.contains(&store_env)
        || overrides.0.iter().any(|(k, _)| *k == "store");
    if store_given {
        return None;
    }
    let database = merged.get("database")?;
    let named = ["url", "url_file", "host"]
        .into_iter()
        .find(|key| database.get(*key).is_some_and(|v| !v.is_null()))?;
    merged["store"] = Value::String("postgres".to_owned());
    Some(format!(
        "store = postgres: database.{named} is set and store is not (set store = \"sqlite\" or --store sqlite to keep SQLite)"
    ))
}

/// Builds the environment layer: one variable per leaf key of the defaults.
fn env_layer(
    defaults: &Value,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(Value, Vec<String>)> {
    let mut leaves = Vec::new();
    collect_leaves(defaults, &mut Vec::new(), &mut leaves);
    let mut layer = Value::Object(Default::default());
    let mut names = Vec::new();
    for (path, default) in leaves {
        let name = env_name(&path);
        // An empty variable counts as unset (`FOO= latamctl ...` clears nothing by accident).
        let get = |n: &str| env(n).filter(|v| !v.is_empty());
        let raw = match get(&name) {
            Some(v) => {
                names.push(name.clone());
                Some(v)
            }
            // The conventional variable, below LATAMCTL_DATABASE_URL.
            None if name == "LATAMCTL_DATABASE_URL" => {
                get("DATABASE_URL").inspect(|_| names.push("DATABASE_URL".to_owned()))
            }
            None if name == "LATAMCTL_DATABASE_URL_FILE" => {
                get("DATABASE_URL_FILE").inspect(|_| names.push("DATABASE_URL_FILE".to_owned()))
            }
            None => None,
        };
        let Some(raw) = raw else { continue };
        let value = parse_env_value(&name, &raw, &default)?;
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        insert_path(&mut layer, &path, value);
    }
    Ok((layer, names))
}

/// `["aws", "queue_url"]` → `LATAMCTL_AWS_QUEUE_URL`.
pub fn env_name(path: &[String]) -> String {
    format!("{ENV_PREFIX}{}", path.join("_").to_uppercase())
}

fn parse_env_value(name: &str, raw: &str, default: &Value) -> Result<Value> {
    let bad = |expected: &str| Error::Env {
        name: name.to_owned(),
        value: raw.to_owned(),
        expected: expected.to_owned(),
    };
    Ok(match default {
        Value::Bool(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Bool(true),
            "false" | "0" | "no" | "off" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        Value::Number(n) if n.is_u64() => raw
            .trim()
            .parse::<u64>()
            .map(Value::from)
            .map_err(|_| bad("a non-negative integer"))?,
        Value::Number(_) => raw
            .trim()
            .parse::<f64>()
            .map(Value::from)
            .map_err(|_| bad("a number"))?,
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        _ => Value::String(raw.to_owned()),
    })
}

fn collect_leaves(value: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(k.clone());
                collect_leaves(v, path, out);
                path.pop();
            }
        }
        leaf => out.push((path.clone(), leaf.clone())),
    }
}

fn insert_path(root: &mut Value, path: &[&str], value: Value) {
    let mut cur = root;
    for (i, key) in path.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let map = cur.as_object_mut().expect("object");
        if i == path.len() - 1 {
            map.insert((*key).to_owned(), value);
            return;
        }
        cur = map
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

/// Deep merge: objects merge key by key, anything else is replaced by `top`.
/// Deep merge of JSON objects: `top` wins, objects merge key by key (config layers, Helm
/// values).
pub fn merge(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, t) => *b = t,
    }
}

impl Config {
    fn validate(&self) -> Result<()> {
        let invalid = |message: String| Error::Invalid {
            origin: String::new(),
            message,
        };
        if self.topics.is_empty() {
            return Err(invalid(
                "`topics` is empty: list at least one topic name clients may post to".into(),
            ));
        }
        if let Some(bad) = self.topics.iter().find(|t| !valid_topic_name(t)) {
            return Err(invalid(format!(
                "topic name {bad:?} is not valid: use 1-256 letters, digits, '-' or '_'"
            )));
        }
        if self.worker.batch_size > 10 && self.bus == BusKind::Aws {
            return Err(invalid(format!(
                "worker.batch_size = {} is out of range with bus = \"aws\": SQS receives at most 10 (0 picks 10)",
                self.worker.batch_size
            )));
        }
        if self.worker.concurrency == 0 {
            return Err(invalid("worker.concurrency must be at least 1".into()));
        }
        if self.queue.max_receive_count == 0 {
            return Err(invalid("queue.max_receive_count must be at least 1".into()));
        }
        if self.provision.dlq_retention <= self.provision.queue_retention {
            return Err(invalid(
                "provision.dlq_retention must be longer than provision.queue_retention: a message moved to the DLQ keeps its original enqueue time".into(),
            ));
        }
        if self.api.body_limit_bytes < 1024 {
            return Err(invalid(
                "api.body_limit_bytes must be at least 1024 bytes".into(),
            ));
        }
        if let Some(token) = &self.api.token
            && token.trim().is_empty()
        {
            return Err(invalid(
                "api.token is set but empty: unset LATAMCTL_API_TOKEN or give it a value".into(),
            ));
        }
        Ok(())
    }

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
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("latamctl.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn precedence_is_flag_then_env_then_file_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            &dir,
            "[api]\nlisten = \"0.0.0.0:1\"\n[worker]\nconcurrency = 7\nbatch_size = 3\n",
        );
        let env = env_of(&[
            ("LATAMCTL_API_LISTEN", "0.0.0.0:2"),
            ("LATAMCTL_WORKER_CONCURRENCY", "9"),
        ]);
        let mut flags = Overrides::default();
        flags.set("api.listen", "0.0.0.0:3");
        let (cfg, sources) = load_with_env(Some(&file), &flags, env).unwrap();
        assert_eq!(cfg.api.listen, "0.0.0.0:3", "flag beats env and file");
        assert_eq!(cfg.worker.concurrency, 9, "env beats file");
        assert_eq!(cfg.worker.batch_size, 3, "file beats default");
        assert_eq!(cfg.queue.max_receive_count, 5, "default");
        assert_eq!(sources.env.len(), 2);
    }

    #[test]
    fn every_key_has_an_env_variable() {
        let env = env_of(&[
            ("LATAMCTL_AWS_QUEUE_URL", "http://q"),
            ("LATAMCTL_DATABASE_MIGRATE_ON_START", "false"),
            ("LATAMCTL_TOPICS", "a, b"),
            ("LATAMCTL_BUS", "aws"),
            ("LATAMCTL_WORKER_WAIT_TIME", "2s"),
            ("DATABASE_URL", "postgres://u:p@h/db"),
        ]);
        let (cfg, _) = load_with_env(None, &Overrides::default(), env).unwrap();
        assert_eq!(cfg.aws.queue_url.as_deref(), Some("http://q"));
        assert!(!cfg.database.migrate_on_start);
        assert_eq!(cfg.topics, vec!["a", "b"]);
        assert_eq!(cfg.bus, BusKind::Aws);
        assert_eq!(cfg.worker.wait_time, Duration::from_secs(2));
        assert_eq!(cfg.database.url.as_deref(), Some("postgres://u:p@h/db"));
    }

    /// Keys without a default are read from the environment as text; a numeric optional
    /// key would then fail to load. Every such key must be a string.
    #[test]
    fn every_key_without_a_default_accepts_text_from_the_environment() {
        let defaults = serde_json::to_value(Config::default()).unwrap();
        let mut leaves = Vec::new();
        collect_leaves(&defaults, &mut Vec::new(), &mut leaves);
        let names: Vec<String> = leaves
            .iter()
            .filter(|(_, v)| v.is_null())
            // The `*_file` secrets are paths that must exist; their own test covers them.
            .filter(|(p, _)| !SECRET_FILES.iter().any(|(_, f)| p.join(".") == *f))
            .map(|(p, _)| env_name(p))
            .collect();
        assert!(names.len() > 5);
        let env = move |k: &str| names.iter().any(|n| n == k).then(|| "123".to_owned());
        load_with_env(None, &Overrides::default(), env).unwrap();
    }

    /// The README's Citus recipe sets only a URL: the store follows it instead of the
    /// `sqlite` default, unless a layer says `store` itself.
    #[test]
    fn a_postgres_url_without_a_store_means_postgres() {
        let url = [("LATAMCTL_DATABASE_URL", "postgres://a/x")];
        let (cfg, sources) = load_with_env(None, &Overrides::default(), env_of(&url)).unwrap();
        assert_eq!(cfg.store, StoreKind::Postgres);
        assert!(
            sources.inferred[0].contains("database.url"),
            "{:?}",
            sources.inferred
        );

        let host = [("LATAMCTL_DATABASE_HOST", "db.internal")];
        let (cfg, _) = load_with_env(None, &Overrides::default(), env_of(&host)).unwrap();
        assert_eq!(cfg.store, StoreKind::Postgres);

        let explicit = [
            ("DATABASE_URL", "postgres://a/x"),
            ("LATAMCTL_STORE", "sqlite"),
        ];
        let (cfg, sources) = load_with_env(None, &Overrides::default(), env_of(&explicit)).unwrap();
        assert_eq!(cfg.store, StoreKind::Sqlite);
        assert!(sources.inferred.is_empty());

        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "store = \"sqlite\"\n");
        let (cfg, _) = load_with_env(Some(&file), &Overrides::default(), env_of(&url)).unwrap();
        assert_eq!(
            cfg.store,
            StoreKind::Sqlite,
            "the file's explicit store wins"
        );

        let mut flags = Overrides::default();
        flags.set("store", "sqlite");
        let (cfg, _) = load_with_env(None, &flags, env_of(&url)).unwrap();
        assert_eq!(cfg.store, StoreKind::Sqlite);

        let (cfg, sources) = load_with_env(None, &Overrides::default(), env_of(&[])).unwrap();
        assert_eq!(cfg.store, StoreKind::Sqlite, "nothing configured: SQLite");
        assert!(sources.inferred.is_empty());
    }

    #[test]
    fn latamctl_database_url_beats_database_url() {
        let env = env_of(&[
            ("LATAMCTL_DATABASE_URL", "postgres://a/x"),
            ("DATABASE_URL", "postgres://b/y"),
        ]);
        let (cfg, _) = load_with_env(None, &Overrides::default(), env).unwrap();
        assert_eq!(cfg.database.url.as_deref(), Some("postgres://a/x"));
    }

    #[test]
    fn unknown_file_key_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "[worker]\nconcurency = 3\n");
        let err = load_with_env(Some(&file), &Overrides::default(), env_of(&[])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("latamctl.toml"), "{msg}");
        assert!(msg.contains("concurency"), "{msg}");
    }

    #[test]
    fn bad_env_value_says_what_is_expected() {
        let env = env_of(&[("LATAMCTL_WORKER_CONCURRENCY", "many")]);
        let err = load_with_env(None, &Overrides::default(), env).unwrap_err();
        assert!(
            err.to_string().contains("LATAMCTL_WORKER_CONCURRENCY"),
            "{err}"
        );
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = load_with_env(
            Some(Path::new("/nonexistent/latamctl.toml")),
            &Overrides::default(),
            env_of(&[]),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Read { .. }));
    }

    #[test]
    fn secrets_are_redacted() {
        let env = env_of(&[
            ("LATAMCTL_API_TOKEN", "s3cret"),
            (
                "LATAMCTL_DATABASE_URL",
                "postgres://user:hunter2@db:5432/app",
            ),
        ]);
        let (cfg, _) = load_with_env(None, &Overrides::default(), env).unwrap();
        let shown = cfg.redacted().to_string();
        assert!(
            !shown.contains("s3cret") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(
            shown.contains("postgres://user:<redacted>@db:5432/app"),
            "{shown}"
        );
        let query = redact_url("postgres://db/app?sslmode=require&password=hunter2");
        assert!(
            !query.contains("hunter2") && query.contains("sslmode=require"),
            "{query}"
        );
    }

    #[test]
    fn require_says_what_to_set() {
        let cfg = Config::default();
        let err = cfg
            .require(&cfg.aws.topic_arn, "aws.topic_arn", "bus = \"aws\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("LATAMCTL_AWS_TOPIC_ARN"), "{err}");
        assert!(err.contains("[aws] topic_arn"), "{err}");
    }
}
