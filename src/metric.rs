//! Every metric `latamctl serve` exposes, in one table: its name, kind, unit and help. The
//! producers, the descriptions (`telemetry`, from [`TABLE`]), the SLO and dashboard renderers
//! (`slo`) and `status` all use these names, so a rename cannot leave a query or a panel
//! reading a series nobody writes. A new metric is one row here.

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// The unit Prometheus' exposition states for a metric (its name already ends in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Bytes,
}

/// One row of [`TABLE`].
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Option<Unit>,
    pub help: &'static str,
}

macro_rules! metrics {
    ($($konst:ident = $name:literal, $kind:ident, $unit:ident, $help:literal;)*) => {
        $(pub const $konst: &str = $name;)*
        /// Every metric, with its kind, unit and help.
        pub const TABLE: &[Metric] = &[
            $(Metric { name: $name, kind: Kind::$kind, unit: metrics!(@unit $unit), help: $help },)*
        ];
        /// Every name in [`TABLE`].
        pub const ALL: &[&str] = &[$($name),*];
    };
    (@unit None) => { None };
    (@unit $unit:ident) => { Some(Unit::$unit) };
}

metrics! {
    ACK_ERRORS_TOTAL = "latamctl_ack_errors_total", Counter, None,
        "Stored messages whose acknowledgement failed; their redelivery is skipped as a duplicate.";
    BUILD_INFO = "latamctl_build_info", Gauge, None,
        "Always 1; labels carry the version and role.";
    CPU_LIMIT_CORES = "latamctl_cpu_limit_cores", Gauge, None,
        "CPU this process may use: its cgroup quota (a pod's CPU limit), else the machine's CPUs.";
    DATA_DIR_FREE_BYTES = "latamctl_data_dir_filesystem_free_bytes", Gauge, Bytes,
        "Free space of the filesystem holding the embedded data dir (what the data files can still use).";
    DATA_DIR_SIZE_BYTES = "latamctl_data_dir_filesystem_size_bytes", Gauge, Bytes,
        "Size of the filesystem holding the embedded data dir (queue.db, records.db).";
    DB_ERRORS_TOTAL = "latamctl_db_errors_total", Counter, None,
        "Database queries that failed, by operation and error type.";
    DB_POOL_CONNECTIONS = "latamctl_db_pool_connections", Gauge, None,
        "Database pool connections by state (in_use, idle).";
    DB_QUERY_DURATION_SECONDS = "latamctl_db_query_duration_seconds", Histogram, Seconds,
        "Database query latency by operation (the DB-latency SLI).";
    DEPENDENCY_READY = "latamctl_dependency_ready", Gauge, None,
        "1 when a dependency (publisher, queue, store) answered its last readiness check, by dependency.";
    HTTP_CONNECTIONS_CLOSED_TOTAL = "latamctl_http_connections_closed_total", Counter, None,
        "Client connections the server closed, by reason: header_timeout, idle_timeout, body_timeout, evicted (at api.max_connections).";
    HTTP_OPEN_CONNECTIONS = "latamctl_http_open_connections", Gauge, None,
        "Client connections open now (at most api.max_connections).";
    HTTP_REQUESTS_TOTAL = "http_requests_total", Counter, None,
        "HTTP requests answered, by route template, method and status.";
    HTTP_REQUEST_DURATION_SECONDS = "http_request_duration_seconds", Histogram, Seconds,
        "HTTP request latency by route template and method.";
    IDEMPOTENT_REPLAYS_TOTAL = "latamctl_idempotent_replays_total", Counter, None,
        "POSTs answered from an earlier request with the same Idempotency-Key.";
    MEMORY_LIMIT_BYTES = "latamctl_memory_limit_bytes", Gauge, Bytes,
        "Memory this process may use: its cgroup limit (a pod's memory limit), else the machine's RAM.";
    MESSAGES_DUPLICATE_TOTAL = "latamctl_messages_duplicate_total", Counter, None,
        "Delivered messages whose row already existed (redeliveries).";
    MESSAGES_PUBLISHED_TOTAL = "latamctl_messages_published_total", Counter, None,
        "Messages accepted by the bus (POST answered 200).";
    MESSAGES_STORED_TOTAL = "latamctl_messages_stored_total", Counter, None,
        "Rows inserted by the worker (duplicates excluded).";
    POISON_MESSAGES_TOTAL = "latamctl_poison_messages_total", Counter, None,
        "Received messages that could not be decoded, by reason.";
    PUBLISH_ERRORS_TOTAL = "latamctl_publish_errors_total", Counter, None,
        "Publishes that failed, by error type.";
    QUEUE_COMMIT_BATCH_SIZE = "latamctl_queue_commit_batch_size", Histogram, None,
        "Publishes per group commit of the embedded queue (one fsync each).";
    QUEUE_COMMIT_DURATION_SECONDS = "latamctl_queue_commit_duration_seconds", Histogram, Seconds,
        "Time of one group commit of the embedded queue, fsync included.";
    QUEUE_DEAD_LETTERED_TOTAL = "latamctl_queue_dead_lettered_total", Counter, None,
        "Messages moved to the dead-letter queue by the embedded queue.";
    QUEUE_DEPTH = "latamctl_queue_depth", Gauge, None,
        "Messages in the queue by queue (main, dlq) and state.";
    QUEUE_EXPIRED_TOTAL = "latamctl_queue_expired_total", Counter, None,
        "Messages the embedded queue dropped past queue.retention (or queue.dlq_retention).";
    QUEUE_FULL_TOTAL = "latamctl_queue_full_total", Counter, None,
        "Publishes the embedded queue refused at queue.max_bytes (POST answered 503 queue_full).";
    QUEUE_OLDEST_MESSAGE_AGE_SECONDS = "latamctl_queue_oldest_message_age_seconds", Gauge, Seconds,
        "Age of the oldest message in the main queue.";
    READY = "latamctl_ready", Gauge, None,
        "1 when the process is ready to serve, 0 otherwise.";
    REQUESTS_SHED_TOTAL = "latamctl_requests_shed_total", Counter, None,
        "Requests answered 503 because api.max_in_flight requests were already running.";
    RETRIES_TOTAL = "latamctl_retries_total", Counter, None,
        "Retried operations (publish, insert), the retry-rate SLI numerator.";
    SNS_PUBLISH_BATCH_SIZE = "latamctl_sns_publish_batch_size", Histogram, None,
        "Messages per SNS publish call (1 is Publish, more is PublishBatch).";
    STORED_MESSAGE_AGE_SECONDS = "latamctl_stored_message_age_seconds", Histogram, Seconds,
        "Age of each newly stored message when its row committed (stored_at - received_at): the freshness SLI.";
    VISIBILITY_CHANGE_ERRORS_TOTAL = "latamctl_visibility_change_errors_total", Counter, None,
        "Messages whose visibility change SQS refused (by its error code); such a message comes back at its old timeout.";
    WORKER_BATCHES_TOTAL = "latamctl_worker_batches_total", Counter, None,
        "Worker batches by outcome.";
    WORKER_BATCH_DURATION_SECONDS = "latamctl_worker_batch_duration_seconds", Histogram, Seconds,
        "Time from receive to acknowledgement of a batch.";
    WORKER_BATCH_SIZE = "latamctl_worker_batch_size", Histogram, None,
        "Messages per received batch.";
    WORKER_PAUSED = "latamctl_worker_paused", Gauge, None,
        "1 while the worker has stopped receiving because the store refuses writes.";
    WORKER_HELD_MESSAGES = "latamctl_worker_held_messages", Gauge, None,
        "Messages held in flight for a database node that refuses writes while the other nodes take theirs (Citus); retried until stored.";
    WORKER_RECEIVE_ERRORS_TOTAL = "latamctl_worker_receive_errors_total", Counter, None,
        "Failed receives from the queue, by error type.";
}
