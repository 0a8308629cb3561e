//! SQLite store: one file (`records.db`) in the data directory, WAL mode.
//!
//! `synchronous = FULL`: the worker acknowledges a message right after this commit, so the
//! commit must survive a power cut, or an acknowledged message could be lost.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::record::StoredRecord;

use super::{
    Error, KeyReservation, Migration, MigrationReport, Record, RecordCount, Result, Store,
    StoreStats, timed,
};
use crate::record::format_time;
use crate::sqlite::{Readers, Snapshots, Writer, WriterStopped};

/// One record by id, its columns in [`crate::store::StoredText`]'s order.
const GET_RECORD: &str = "SELECT transaction_id, topic, message, attributes, received_at, stored_at \
     FROM records WHERE transaction_id = ?1";

/// File name of the store inside the data directory.
pub const STORE_FILE: &str = "records.db";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub struct SqliteStore {
    /// Readers for the probe and the counts (stats on the blocking pool).
    readers: Arc<Readers>,
    /// Readers for GET that share read transactions ([`SqliteStore::with_shared_reads`]).
    snapshots: Option<Arc<Snapshots>>,
    /// The one connection every write goes through (see [`Writer`]).
    writer: Writer,
    query_timeout: Duration,
    path: std::path::PathBuf,
    /// Migrations opening the file applied (SQLite migrates on open).
    applied_at_open: Vec<i64>,
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        // SQLite's errors are about the file (full, read-only, I/O, locked, damaged), never
        // one row: the rows are plain text the schema always takes.
        if crate::sqlite::is_damaged(&e) {
            return Error::Damaged(format!("the database file is damaged: {e}"));
        }
        Error::Unavailable(e.to_string())
    }
}

impl From<WriterStopped> for Error {
    fn from(e: WriterStopped) -> Self {
        Error::Unavailable(e.to_string())
    }
}

/// What to do about a damaged `records.db`, and what moving it aside loses.
pub fn damaged_what_to_do(path: &std::path::Path) -> String {
    crate::sqlite::what_to_do(
        path,
        "every record stored so far (GET answers 404 for their transaction ids); the \
         messages still in queue.db are not affected: the worker stores them in the new file",
    )
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) `records.db` in `data_dir`.
    pub async fn open(data_dir: &Path, query_timeout: Duration) -> Result<Self> {
        let prepared = crate::sqlite::prepare(data_dir, STORE_FILE, &MIGRATOR)
            .await
            .map_err(|e| match e {
                crate::sqlite::PrepareError::Migrate { .. } => Error::Migration(e.to_string()),
                crate::sqlite::PrepareError::Damaged { ref path, .. } => {
                    Error::Damaged(format!("{e}\n{}", damaged_what_to_do(path)))
                }
                e => Error::Config(e.to_string()),
            })?;
        let path = prepared.path;
        let open_error = |e: &dyn std::fmt::Display| {
            Error::Config(format!("cannot open {}: {e}", path.display()))
        };
        let conn = crate::sqlite::connect(&path, None).map_err(|e| {
            match crate::sqlite::open_damaged(&path, &e, damaged_what_to_do) {
                Some(message) => Error::Damaged(message),
                None => open_error(&e),
            }
        })?;
        let writer = Writer::spawn("store-writer", conn).map_err(|e| open_error(&e))?;
        Ok(Self {
            readers: Readers::new(path.clone(), 8),
            snapshots: None,
            writer,
            query_timeout,
            path,
            applied_at_open: prepared.applied_now,
        })
    }

    /// GETs share read transactions ([`Snapshots`]): for a process whose own worker stores
    /// the records (`serve` with both roles), whose writer can end them before it writes.
    /// Without it every GET reads in a transaction of its own. Call it within a tokio
    /// runtime (it starts the snapshots' sweeper task).
    pub fn with_shared_reads(mut self) -> Self {
        if self.snapshots.is_none() {
            self.snapshots = Some(Snapshots::new(self.path.clone(), &self.writer, 8));
        }
        self
    }

    /// A point read on the request's thread: in a shared snapshot when there are, else in a
    /// transaction of its own.
    fn point_read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        match &self.snapshots {
            Some(snapshots) => snapshots.read(f),
            None => self.readers.with(f),
        }
    }

    /// Count of rows; exact (tests and `status`).
    pub async fn count(&self) -> Result<u64> {
        let n: i64 = self
            .readers
            .blocking(|conn| conn.query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0)))
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer's thread.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let out = self
            .writer
            .run(move |conn: &mut Connection| crate::sqlite::immediate(conn, f))
            .await??;
        Ok(out)
    }
}

fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::Corrupt(format!("bad timestamp {s:?}: {e}")))
}

fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| Error::Corrupt(format!("bad uuid {s:?}: {e}")))
}

#[async_trait]
impl Store for SqliteStore {
    fn target(&self) -> String {
        format!("sqlite {}", self.path.display())
    }

    async fn migrate(&self) -> Result<MigrationReport> {
        Ok(MigrationReport {
            applied_now: self.applied_at_open.clone(),
            known: Migration::list(&MIGRATOR),
            citus: None,
        })
    }

    fn pool_stats(&self) -> Option<(u32, u32)> {
        // GET's connections count as idle: they are in use only for microseconds, on the
        // request's thread.
        let (in_use, idle) = self.readers.stats();
        let idle = idle + self.snapshots.as_ref().map_or(0, |s| s.idle());
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Some((n(in_use), n(idle)))
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn insert_batch(&self, records: &[Record]) -> Result<u64> {
        if records.is_empty() {
            return Ok(0);
        }
        // The rows as the table stores them, built here so the writer's thread only writes.
        let rows: Vec<[String; 5]> = records
            .iter()
            .map(|r| {
                [
                    r.transaction_id.to_string(),
                    r.topic.clone(),
                    r.message.clone(),
                    serde_json::to_string(&r.attributes).unwrap_or_else(|_| "{}".into()),
                    format_time(r.received_at),
                ]
            })
            .collect();
        timed(
            "insert_batch",
            self.query_timeout,
            self.write(move |tx| {
                let stored_at = format_time(Utc::now());
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO records (transaction_id, topic, message, attributes, received_at, stored_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (transaction_id) DO NOTHING",
                )?;
                let mut inserted = 0u64;
                for [id, topic, message, attributes, received_at] in &rows {
                    inserted += stmt.execute(params![
                        id,
                        topic,
                        message,
                        attributes,
                        received_at,
                        stored_at
                    ])? as u64;
                }
                Ok(inserted)
            }),
        )
        .await
    }

    async fn get(&self, transaction_id: Uuid) -> Result<Option<StoredRecord>> {
        timed("get", self.query_timeout, async {
            // A primary-key lookup: on the request's thread.
            let row = self.point_read(|conn| {
                conn.prepare_cached(GET_RECORD)?
                    .query_row([transaction_id.to_string()], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                            row.get::<_, String>(5)?,
                        ))
                    })
                    .optional()
            })?;
            let Some((id, topic, message, attributes, received_at, stored_at)) = row else {
                return Ok(None);
            };
            Ok(Some(StoredRecord {
                transaction_id: parse_uuid(&id)?,
                topic,
                message,
                attributes: serde_json::from_str(&attributes)
                    .map_err(|e| Error::Corrupt(format!("bad attributes: {e}")))?,
                received_at: parse_time(&received_at)?,
                stored_at: parse_time(&stored_at)?,
            }))
        })
        .await
    }

    async fn get_json(&self, transaction_id: Uuid) -> Result<Option<Vec<u8>>> {
        let written = timed("get", self.query_timeout, async {
            // The columns as the row holds them (no `String` each), written as the JSON
            // `get` would serialize; a row in another shape falls back to `get`, which
            // parses it and says what is wrong. The id is the key, formatted on the stack:
            // the row's own is that text (SQLite compares text exactly).
            let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
            let id: &str = transaction_id.hyphenated().encode_lower(&mut id);
            let written = self.point_read(|conn| {
                conn.prepare_cached(GET_RECORD)?
                    .query_row([id], |row| {
                        let text =
                            |i: usize| -> rusqlite::Result<&str> { Ok(row.get_ref(i)?.as_str()?) };
                        let mut out = Vec::new();
                        let shaped = crate::record::write_record_json(
                            &mut out,
                            crate::record::StoredText {
                                transaction_id: id,
                                topic: text(1)?,
                                message: text(2)?,
                                attributes: text(3)?,
                                received_at: text(4)?,
                                stored_at: text(5)?,
                            },
                        );
                        Ok(shaped.map(|()| out))
                    })
                    .optional()
            })?;
            Ok(written)
        })
        .await?;
        match written {
            None => Ok(None),
            Some(Some(json)) => Ok(Some(json)),
            Some(None) => Ok(self
                .get(transaction_id)
                .await?
                .map(|record| record.to_json())),
        }
    }

    async fn reserve_key(
        &self,
        key: &str,
        request_hash: &str,
        candidate: Uuid,
    ) -> Result<KeyReservation> {
        let (key, request_hash) = (key.to_owned(), request_hash.to_owned());
        timed(
            "reserve_key",
            self.query_timeout,
            self.write(move |tx| {
                let created = tx.prepare_cached(
                    "INSERT INTO idempotency_keys (key, request_hash, transaction_id, published, created_at)
                     VALUES (?1, ?2, ?3, 0, ?4) ON CONFLICT (key) DO NOTHING",
                )?
                .execute(params![
                    key,
                    request_hash,
                    candidate.to_string(),
                    format_time(Utc::now())
                ])? == 1;
                let (request_hash, transaction_id, published, created_at) = tx
                    .prepare_cached(
                        "SELECT request_hash, transaction_id, published, created_at
                         FROM idempotency_keys WHERE key = ?1",
                    )?
                    .query_row([&key], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                            row.get::<_, String>(3)?,
                        ))
                    })?;
                Ok((created, request_hash, transaction_id, published, created_at))
            }),
        )
        .await
        .and_then(|(created, request_hash, transaction_id, published, created_at)| {
            Ok(KeyReservation {
                transaction_id: parse_uuid(&transaction_id)?,
                request_hash,
                published: published != 0,
                created,
                reserved_at: parse_time(&created_at)?,
            })
        })
    }

    async fn mark_published(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        timed(
            "mark_published",
            self.query_timeout,
            self.write(move |tx| {
                tx.execute(
                    "UPDATE idempotency_keys SET published = 1 WHERE key = ?1",
                    [&key],
                )?;
                Ok(())
            }),
        )
        .await
    }

    async fn release_key(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        timed(
            "release_key",
            self.query_timeout,
            self.write(move |tx| {
                tx.execute(
                    "DELETE FROM idempotency_keys WHERE key = ?1 AND published = 0",
                    [&key],
                )?;
                Ok(())
            }),
        )
        .await
    }

    async fn purge_keys(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let cutoff = format_time(cutoff);
        timed(
            "purge_keys",
            self.query_timeout,
            self.write(move |tx| {
                Ok(tx.execute(
                    "DELETE FROM idempotency_keys WHERE created_at < ?1",
                    [&cutoff],
                )? as u64)
            }),
        )
        .await
    }

    async fn ready(&self) -> Result<()> {
        timed("ready", self.query_timeout, async {
            self.readers
                .with(|conn| conn.prepare_cached("SELECT 1")?.exists([]))?;
            Ok(())
        })
        .await
    }

    async fn probe_write(&self) -> Result<()> {
        let now = format_time(Utc::now());
        timed("probe_write", self.query_timeout, async {
            // BEGIN IMMEDIATE takes the write lock; the INSERT needs a writable file; the
            // transaction is rolled back, never committed.
            self.writer
                .run(move |conn: &mut Connection| {
                    let tx =
                        conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    tx.execute(
                        "INSERT INTO records (transaction_id, topic, message, attributes, received_at, stored_at)
                         VALUES (?1, 'latamctl-write-probe', 'write probe', '{}', ?2, ?2)
                         ON CONFLICT (transaction_id) DO NOTHING",
                        params![super::PROBE_TRANSACTION_ID.to_string(), now],
                    )?;
                    tx.rollback()
                })
                .await??;
            Ok(())
        })
        .await
    }

    async fn stats(&self) -> Result<StoreStats> {
        timed("stats", self.query_timeout, async {
            let records = self.count().await?;
            let newest: Option<String> = self
                .readers
                .blocking(|conn| {
                    conn.query_row(
                        "SELECT stored_at FROM records ORDER BY transaction_id DESC LIMIT 1",
                        [],
                        |r| r.get(0),
                    )
                    .optional()
                })
                .await?;
            Ok(StoreStats {
                // One machine's file: counting its smallest index is fast.
                records: RecordCount::Exact { rows: records },
                newest_stored_at: newest.as_deref().map(parse_time).transpose()?,
            })
        })
        .await
    }
}
