//! The name of every metric `latamctl serve` exposes: the producers, their descriptions
//! (`telemetry`), the SLO and dashboard renderers (`slo`) and `status` all use these, so a
//! rename cannot leave a query or a panel reading a series nobody writes.

pub const ACK_ERRORS_TOTAL: &str = "latamctl_ack_errors_total";
pub const BUILD_INFO: &str = "latamctl_build_info";
pub const CPU_LIMIT_CORES: &str = "latamctl_cpu_limit_cores";
pub const DATA_DIR_FREE_BYTES: &str = "latamctl_data_dir_filesystem_free_bytes";
pub const DATA_DIR_SIZE_BYTES: &str = "latamctl_data_dir_filesystem_size_bytes";
pub const DB_ERRORS_TOTAL: &str = "latamctl_db_errors_total";
pub const DB_POOL_CONNECTIONS: &str = "latamctl_db_pool_connections";
pub const DB_QUERY_DURATION_SECONDS: &str = "latamctl_db_query_duration_seconds";
pub const DEPENDENCY_READY: &str = "latamctl_dependency_ready";
pub const HTTP_CONNECTIONS_CLOSED_TOTAL: &str = "latamctl_http_connections_closed_total";
pub const HTTP_OPEN_CONNECTIONS: &str = "latamctl_http_open_connections";
pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";
pub const IDEMPOTENT_REPLAYS_TOTAL: &str = "latamctl_idempotent_replays_total";
pub const MEMORY_LIMIT_BYTES: &str = "latamctl_memory_limit_bytes";
pub const MESSAGES_DUPLICATE_TOTAL: &str = "latamctl_messages_duplicate_total";
pub const MESSAGES_PUBLISHED_TOTAL: &str = "latamctl_messages_published_total";
pub const MESSAGES_STORED_TOTAL: &str = "latamctl_messages_stored_total";
pub const POISON_MESSAGES_TOTAL: &str = "latamctl_poison_messages_total";
pub const PUBLISH_ERRORS_TOTAL: &str = "latamctl_publish_errors_total";
pub const QUEUE_COMMIT_BATCH_SIZE: &str = "latamctl_queue_commit_batch_size";
pub const QUEUE_COMMIT_DURATION_SECONDS: &str = "latamctl_queue_commit_duration_seconds";
pub const QUEUE_DEAD_LETTERED_TOTAL: &str = "latamctl_queue_dead_lettered_total";
pub const QUEUE_DEPTH: &str = "latamctl_queue_depth";
pub const QUEUE_EXPIRED_TOTAL: &str = "latamctl_queue_expired_total";
pub const QUEUE_FULL_TOTAL: &str = "latamctl_queue_full_total";
pub const QUEUE_OLDEST_MESSAGE_AGE_SECONDS: &str = "latamctl_queue_oldest_message_age_seconds";
pub const READY: &str = "latamctl_ready";
pub const REQUESTS_SHED_TOTAL: &str = "latamctl_requests_shed_total";
pub const RETRIES_TOTAL: &str = "latamctl_retries_total";
pub const SNS_PUBLISH_BATCH_SIZE: &str = "latamctl_sns_publish_batch_size";
pub const STORED_MESSAGE_AGE_SECONDS: &str = "latamctl_stored_message_age_seconds";
pub const WORKER_BATCHES_TOTAL: &str = "latamctl_worker_batches_total";
pub const WORKER_BATCH_DURATION_SECONDS: &str = "latamctl_worker_batch_duration_seconds";
pub const WORKER_BATCH_SIZE: &str = "latamctl_worker_batch_size";
pub const WORKER_PAUSED: &str = "latamctl_worker_paused";
pub const WORKER_HELD_MESSAGES: &str = "latamctl_worker_held_messages";
pub const WORKER_RECEIVE_ERRORS_TOTAL: &str = "latamctl_worker_receive_errors_total";

/// Every name above.
pub const ALL: [&str; 38] = [
    ACK_ERRORS_TOTAL,
    BUILD_INFO,
    CPU_LIMIT_CORES,
    DATA_DIR_FREE_BYTES,
    DATA_DIR_SIZE_BYTES,
    DB_ERRORS_TOTAL,
    DB_POOL_CONNECTIONS,
    DB_QUERY_DURATION_SECONDS,
    DEPENDENCY_READY,
    HTTP_CONNECTIONS_CLOSED_TOTAL,
    HTTP_OPEN_CONNECTIONS,
    HTTP_REQUESTS_TOTAL,
    HTTP_REQUEST_DURATION_SECONDS,
    IDEMPOTENT_REPLAYS_TOTAL,
    MEMORY_LIMIT_BYTES,
    MESSAGES_DUPLICATE_TOTAL,
    MESSAGES_PUBLISHED_TOTAL,
    MESSAGES_STORED_TOTAL,
    POISON_MESSAGES_TOTAL,
    PUBLISH_ERRORS_TOTAL,
    QUEUE_COMMIT_BATCH_SIZE,
    QUEUE_COMMIT_DURATION_SECONDS,
    QUEUE_DEAD_LETTERED_TOTAL,
    QUEUE_DEPTH,
    QUEUE_EXPIRED_TOTAL,
    QUEUE_FULL_TOTAL,
    QUEUE_OLDEST_MESSAGE_AGE_SECONDS,
    READY,
    REQUESTS_SHED_TOTAL,
    RETRIES_TOTAL,
    SNS_PUBLISH_BATCH_SIZE,
    STORED_MESSAGE_AGE_SECONDS,
    WORKER_BATCHES_TOTAL,
    WORKER_BATCH_DURATION_SECONDS,
    WORKER_BATCH_SIZE,
    WORKER_PAUSED,
    WORKER_HELD_MESSAGES,
    WORKER_RECEIVE_ERRORS_TOTAL,
];
