//! Where records end up: one [`Store`] trait, a SQLite and a PostgreSQL implementation.
//!
//! Inserts are idempotent on `transaction_id` (the queue delivers at least once, the store
//! makes the effect exactly once). The store also remembers `Idempotency-Key`s for the API,
//! because it is the one component every API replica shares.

pub mod citus;
pub mod postgres;
pub mod sqlite;

use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::record::StoredRecord;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database query `{operation}` did not finish within {timeout:?}")]
    Timeout {
        operation: &'static str,
        timeout: Duration,
    },
    #[error("{0}")]
    Config(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// SQLite says the file itself is damaged (`SQLITE_CORRUPT`, `SQLITE_NOTADB`); the
    /// text names the file or SQLite's words, and at open what to do.
    #[error("{0}")]
    Damaged(String),
    /// The database refused the data itself (SQLSTATE class 22/23): retrying will not help.
    #[error("the database refused the data: {0}")]
    Rejected(String),
    /// The schema is not migrated yet (a migration is pending in the background).
    #[error("the schema is not migrated yet (retrying in the background)")]
    NotMigrated,
    /// The database server reports that a node behind it is unreachable (SQLSTATE class 08
    /// in the server's own answer with Citus's "connection to the remote node host:port
    /// failed"), or a write to a distributed store did not finish in time (a worker node
    /// that hangs). Only the rows on that node's shards are refused; the worker stores the
    /// others and holds these.
    #[error("a database node is unavailable: {0}")]
    NodeUnavailable(String),
}

impl Error {
    /// Stable label for metrics (`error_type`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Unavailable(_) => "unavailable",
            Error::Timeout { .. } => "timeout",
            Error::Config(_) => "config",
            Error::Migration(_) => "migration",
            Error::Corrupt(_) => "corrupt",
            Error::Damaged(_) => "damaged",
            Error::Rejected(_) => "rejected",
            Error::NotMigrated => "not_migrated",
            Error::NodeUnavailable(_) => "node_unavailable",
        }
    }

    /// The node a [`NodeUnavailable`](Error::NodeUnavailable) names (`host:port`, from
    /// Citus's "remote node host:port", or "remote node user@host:port" in Citus 12+), if it
    /// names one.
    pub fn node(&self) -> Option<&str> {
        let Error::NodeUnavailable(text) = self else {
            return None;
        };
        let rest = text.split_once("remote node ")?.1;
        let node = rest.split(|c: char| c.is_whitespace() || c == ',').next()?;
        let node = node.rsplit_once('@').map_or(node, |(_, host)| host);
        (!node.is_empty()).then_some(node)
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Tls(inner) = &e {
            return Error::Unavailable(format!(
                "TLS with the database failed: {inner}. The URL's sslmode decides: prefer and \
                 require encrypt without verifying the server's certificate; verify-ca and \
                 verify-full need the CA that signed it in sslrootcert \
                 (postgres://…?sslmode=verify-full&sslrootcert=/path/ca.pem), and verify-full \
                 also needs the host name to match the certificate"
            ));
        }
        // PostgreSQL data exceptions (22xxx: bad encoding, NUL in text, ...) and integrity
        // violations (23xxx) are about the row, not the database being down.
        // Everything else (42501 permission denied, 25006 read-only transaction, 53100 disk
        // full, 42P01 no such table, SQLite's FULL/READONLY, lost connections) is about the
        // database, never one row: the worker must not count it toward the dead-letter queue.
        let code = e
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned());
        let data_error = code.as_deref().is_some_and(|code| {
            code.len() == 5 && (code.starts_with("22") || code.starts_with("23"))
        });
        let text = match &code {
            // pg_hba.conf refuses plaintext ("..., no encryption"): the server wants TLS.
            Some(code) if code == "28000" && e.to_string().contains("no encryption") => format!(
                "{e} (SQLSTATE {code}): the server accepts only TLS connections; set sslmode=require (or prefer) in the database URL"
            ),
            // The code is what a runbook searches for; PostgreSQL's text alone does not say it.
            Some(code) if code.len() == 5 => format!("{e} (SQLSTATE {code})"),
            // SQLite's result codes (13 = full, 8 = read-only) are in its text already.
            _ => e.to_string(),
        };
        // Class 08 in the server's own answer (not a connection of ours that broke, which is
        // no database error at all) naming a remote node, as a Citus coordinator does: a
        // node behind the server is unreachable. Other class 08 answers (PgBouncer's 08P01
        // "server conn crashed?", "no more connections allowed") are about the database
        // as a whole.
        let node_down = code
            .as_deref()
            .is_some_and(|code| code.len() == 5 && code.starts_with("08"))
            && text.contains("remote node");
        if data_error {
            Error::Rejected(text)
        } else if node_down {
            Error::NodeUnavailable(text)
        } else {
            Error::Unavailable(text)
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The id of the row [`Store::probe_write`] inserts and rolls back: the nil UUID, which
/// `Uuid::now_v7` never produces.
pub const PROBE_TRANSACTION_ID: Uuid = Uuid::nil();

pub use crate::record::Record;

/// The state of an `Idempotency-Key` after [`Store::reserve_key`].
#[derive(Debug, Clone, PartialEq)]
pub struct KeyReservation {
    pub transaction_id: Uuid,
    /// Hash of the request body the key was first used with.
    pub request_hash: String,
    /// Whether the message was already accepted by the bus.
    pub published: bool,
    /// Whether this call created the reservation.
    pub created: bool,
    /// When the key was first reserved.
    pub reserved_at: DateTime<Utc>,
}

/// Figures for `status`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StoreStats {
    /// Rows in `records`, and how that was found out.
    pub records: RecordCount,
    /// When the newest record was stored.
    pub newest_stored_at: Option<DateTime<Utc>>,
}

/// How many rows `records` holds and how that is known: `status` runs in runbooks against
/// tables of billions of rows, sharded on Citus, where a `count(*)` is a full scan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum RecordCount {
    /// Counted: the table is small.
    Exact { rows: u64 },
    /// A count bounded at `rows` stopped there: the table is bigger, and the planner has
    /// no statistics for it yet (no ANALYZE since it grew).
    AtLeast { rows: u64 },
    /// The planner's statistics, `source` naming which.
    Estimate { rows: u64, source: &'static str },
    /// Not known without a full scan; `why` says so.
    Unknown { why: &'static str },
}

impl Default for RecordCount {
    fn default() -> Self {
        Self::Exact { rows: 0 }
    }
}

impl RecordCount {
    /// The rows counted or estimated, when known.
    pub fn rows(&self) -> Option<u64> {
        match *self {
            Self::Exact { rows } | Self::AtLeast { rows } | Self::Estimate { rows, .. } => {
                Some(rows)
            }
            Self::Unknown { .. } => None,
        }
    }

    /// The figure as `status` prints it: `200`, `>= 100000`, `~5000000`, `n/a`.
    pub fn figure(&self) -> String {
        match *self {
            Self::Exact { rows } => rows.to_string(),
            Self::AtLeast { rows } => format!(">= {rows}"),
            Self::Estimate { rows, .. } => format!("~{rows}"),
            Self::Unknown { .. } => "n/a".to_owned(),
        }
    }

    /// How the figure was found out, for the row next to it.
    pub fn basis(&self) -> String {
        match *self {
            Self::Exact { .. } => "exact count".to_owned(),
            Self::AtLeast { rows } => {
                format!("count stopped at {rows}: no statistics yet (ANALYZE records)")
            }
            Self::Estimate { source, .. } => format!("estimate from {source}"),
            Self::Unknown { why } => why.to_owned(),
        }
    }
}

/// What [`Store::migrate`] did, for `latamctl migrate`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrationReport {
    /// Versions applied by this call (or, for SQLite, by opening the file).
    pub applied_now: Vec<i64>,
    /// Every migration this binary carries for the store, in order.
    pub known: Vec<Migration>,
    /// Whether `records` is distributed by Citus; `None` where that cannot apply (SQLite).
    pub citus: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Migration {
    pub version: i64,
    pub description: String,
}

impl Migration {
    fn list(migrator: &sqlx::migrate::Migrator) -> Vec<Migration> {
        migrator
            .iter()
            .map(|m| Migration {
                version: m.version,
                description: m.description.to_string(),
            })
            .collect()
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`, for logs and metrics.
    fn kind(&self) -> &'static str;
    /// Where the records are, for logs and reports: the SQLite file, or the PostgreSQL URL
    /// with its password redacted.
    fn target(&self) -> String;
    /// Applies the pending schema migrations.
    async fn migrate(&self) -> Result<MigrationReport>;
    /// Inserts the records in one transaction; rows whose id exists are skipped. Returns how
    /// many rows were new.
    async fn insert_batch(&self, records: &[Record]) -> Result<u64>;
    /// The stored record with this id.
    async fn get(&self, transaction_id: Uuid) -> Result<Option<StoredRecord>>;
    /// The stored record with this id as `GET /data/{transaction_id}` answers it: the JSON
    /// of its [`StoredRecord`], byte for byte. A store that keeps the row in that shape
    /// writes it without building the record (the SQLite store: see
    /// [`write_record_json`]).
    async fn get_json(&self, transaction_id: Uuid) -> Result<Option<Vec<u8>>> {
        Ok(self
            .get(transaction_id)
            .await?
            .map(|record| record.to_json()))
    }
    /// Reserves `key` for `candidate`, or returns the existing reservation.
    async fn reserve_key(
        &self,
        key: &str,
        request_hash: &str,
        candidate: Uuid,
    ) -> Result<KeyReservation>;
    /// Records that the message reserved under `key` was accepted by the bus.
    async fn mark_published(&self, key: &str) -> Result<()>;
    /// Forgets the reservation of `key` if its message was never published (the publish
    /// failed for certain), so a retry publishes at once instead of waiting for it.
    async fn release_key(&self, key: &str) -> Result<()>;
    /// Forgets keys created before `cutoff`. Returns how many.
    async fn purge_keys(&self, cutoff: DateTime<Utc>) -> Result<u64>;
    /// Whether the store answers (a read: `SELECT 1`).
    async fn ready(&self) -> Result<()>;
    /// Whether a write to `records` can get through: inserts a probe row in a transaction
    /// and rolls it back. Catches what `SELECT 1` cannot: a revoked INSERT privilege, a
    /// read-only database (failover, `default_transaction_read_only`), a missing table, a lock
    /// held past the query timeout, a read-only SQLite file. It cannot see a full disk that
    /// only a commit would hit; the worker's retry of a held batch covers that.
    async fn probe_write(&self) -> Result<()>;
    /// One write probe per node of a distributed store (Citus: a row routed to a shard on
    /// each worker node, inserted and rolled back), by node name; `None` for a single
    /// database, where [`probe_write`](Store::probe_write) is the whole answer.
    async fn probe_write_nodes(&self) -> Option<Vec<(String, Result<()>)>> {
        None
    }
    /// The node that holds each id's row (index for index) on a distributed store, `None`
    /// for a single database, an error when a distributed store cannot say (its
    /// coordinator does not answer). The worker groups a batch a node refused by it, so
    /// one dead node holds only its own rows.
    async fn placement(&self, _ids: &[Uuid]) -> Result<Option<Vec<String>>> {
        Ok(None)
    }
    async fn stats(&self) -> Result<StoreStats>;
    /// Pool connections (in use, idle), for `latamctl_db_pool_connections`; `None` when the
    /// store has no pool.
    fn pool_stats(&self) -> Option<(u32, u32)> {
        None
    }
}

thread_local! {
    /// This thread's `latamctl_db_query_duration_seconds` handles, by operation.
    static QUERY_DURATIONS: std::cell::RefCell<std::collections::HashMap<&'static str, metrics::Histogram>> =
        std::cell::RefCell::default();
}

/// Runs one query with the configured timeout and records its latency
/// (`latamctl_db_query_duration_seconds{operation}`, the DB-latency SLI).
pub(crate) async fn timed<T, F>(operation: &'static str, timeout: Duration, query: F) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, query).await;
    let elapsed = started.elapsed().as_secs_f64();
    // The handle is kept per thread by operation (a fixed set): `histogram!` would build the
    // key and look the series up in the shared registry on every query, a hash and a lock
    // both runtime threads contend on (as `api::track_metrics` found for the HTTP series).
    QUERY_DURATIONS.with_borrow_mut(|handles| {
        handles
            .entry(operation)
            .or_insert_with(|| {
                // The recorder first: a handle made before it would stay a no-op for good.
                crate::telemetry::metrics_handle();
                metrics::histogram!(crate::metric::DB_QUERY_DURATION_SECONDS, "operation" => operation)
            })
            .record(elapsed)
    });
    let result = match outcome {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout { operation, timeout }),
    };
    if let Err(e) = &result {
        metrics::counter!(crate::metric::DB_ERRORS_TOTAL, "operation" => operation, "error_type" => e.kind())
            .increment(1);
    }
    result
}
