//! SQLite store: one file (`records.db`) in the data directory, WAL mode.
//!
//! `synchronous = FULL`: the worker acknowledges a message right after this commit, so the
//! commit must survive a power cut, or an acknowledged message could be lost.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::{Error, KeyReservation, Record, Result, Store, StoreStats, StoredRecord, timed};
use crate::bus::format_time;

/// File name of the store inside the data directory.
pub const STORE_FILE: &str = "records.db";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Rows per INSERT statement (6 binds each; far below SQLite's variable limit).
const ROWS_PER_STATEMENT: usize = 500;

#[derive(Clone)]
pub struct SqliteStore {
    /// Readers (GET, stats).
    pool: SqlitePool,
    /// The one connection every write goes through (see the embedded queue for why).
    writer: SqlitePool,
    path: PathBuf,
    query_timeout: Duration,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) `records.db` in `data_dir`.
    pub async fn open(data_dir: &Path, query_timeout: Duration) -> Result<Self> {
        crate::datadir::ensure_private_dir(data_dir).map_err(|e| {
            Error::Config(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(STORE_FILE);
        crate::datadir::ensure_private_database(&path)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", path.display())))?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let open_error =
            |e: sqlx::Error| Error::Config(format!("cannot open {}: {e}", path.display()));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| Error::Migration(format!("{}: {e}", path.display())))?;
        Ok(Self {
            pool,
            writer,
            path,
            query_timeout,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Count of rows; exact (tests and `status`).
    pub async fn count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
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
    fn pool_stats(&self) -> Option<(u32, u32)> {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        Some((self.pool.size().saturating_sub(idle), idle))
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn insert_batch(&self, records: &[Record]) -> Result<u64> {
        if records.is_empty() {
            return Ok(0);
        }
        timed("insert_batch", self.query_timeout, async {
            let stored_at = format_time(Utc::now());
            let mut tx = crate::datadir::begin_immediate(&self.writer).await?;
            let mut inserted = 0;
            for chunk in records.chunks(ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO records (transaction_id, topic, message, attributes, received_at, stored_at) ",
                );
                qb.push_values(chunk, |mut row, r| {
                    row.push_bind(r.transaction_id.to_string())
                        .push_bind(&r.topic)
                        .push_bind(&r.message)
                        .push_bind(
                            serde_json::to_string(&r.attributes).unwrap_or_else(|_| "{}".into()),
                        )
                        .push_bind(format_time(r.received_at))
                        .push_bind(&stored_at);
                });
                qb.push(" ON CONFLICT (transaction_id) DO NOTHING");
                inserted += qb.build().execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok(inserted)
        })
        .await
    }

    async fn get(&self, transaction_id: Uuid) -> Result<Option<StoredRecord>> {
        timed("get", self.query_timeout, async {
            let row = sqlx::query(
                "SELECT transaction_id, topic, message, attributes, received_at, stored_at
                 FROM records WHERE transaction_id = ?1",
            )
            .bind(transaction_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let attributes: String = row.get("attributes");
            Ok(Some(StoredRecord {
                transaction_id: parse_uuid(row.get("transaction_id"))?,
                topic: row.get("topic"),
                message: row.get("message"),
                attributes: serde_json::from_str(&attributes)
                    .map_err(|e| Error::Corrupt(format!("bad attributes: {e}")))?,
                received_at: parse_time(row.get("received_at"))?,
                stored_at: parse_time(row.get("stored_at"))?,
            }))
        })
        .await
    }

    async fn reserve_key(
        &self,
        key: &str,
        request_hash: &str,
        candidate: Uuid,
    ) -> Result<KeyReservation> {
        timed("reserve_key", self.query_timeout, async {
            let mut tx = crate::datadir::begin_immediate(&self.writer).await?;
            let created = sqlx::query(
                "INSERT INTO idempotency_keys (key, request_hash, transaction_id, published, created_at)
                 VALUES (?1, ?2, ?3, 0, ?4) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(request_hash)
            .bind(candidate.to_string())
            .bind(format_time(Utc::now()))
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            let row = sqlx::query(
                "SELECT request_hash, transaction_id, published, created_at FROM idempotency_keys WHERE key = ?1",
            )
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(KeyReservation {
                transaction_id: parse_uuid(row.get("transaction_id"))?,
                request_hash: row.get("request_hash"),
                published: row.get::<i64, _>("published") != 0,
                created,
                reserved_at: parse_time(row.get("created_at"))?,
            })
        })
        .await
    }

    async fn mark_published(&self, key: &str) -> Result<()> {
        timed("mark_published", self.query_timeout, async {
            sqlx::query("UPDATE idempotency_keys SET published = 1 WHERE key = ?1")
                .bind(key)
                .execute(&self.writer)
                .await?;
            Ok(())
        })
        .await
    }

    async fn release_key(&self, key: &str) -> Result<()> {
        timed("release_key", self.query_timeout, async {
            sqlx::query("DELETE FROM idempotency_keys WHERE key = ?1 AND published = 0")
                .bind(key)
                .execute(&self.writer)
                .await?;
            Ok(())
        })
        .await
    }

    async fn purge_keys(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        timed("purge_keys", self.query_timeout, async {
            Ok(
                sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?1")
                    .bind(format_time(cutoff))
                    .execute(&self.writer)
                    .await?
                    .rows_affected(),
            )
        })
        .await
    }

    async fn ready(&self) -> Result<()> {
        timed("ready", self.query_timeout, async {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    async fn probe_write(&self) -> Result<()> {
        timed("probe_write", self.query_timeout, async {
            // BEGIN IMMEDIATE takes the write lock; the INSERT needs a writable file.
            let mut tx = crate::datadir::begin_immediate(&self.writer).await?;
            sqlx::query(
                "INSERT INTO records (transaction_id, topic, message, attributes, received_at, stored_at)
                 VALUES (?1, 'latamctl-write-probe', 'write probe', '{}', ?2, ?2)
                 ON CONFLICT (transaction_id) DO NOTHING",
            )
            .bind(super::PROBE_TRANSACTION_ID.to_string())
            .bind(format_time(Utc::now()))
            .execute(&mut *tx)
            .await?;
            tx.rollback().await?;
            Ok(())
        })
        .await
    }

    async fn stats(&self) -> Result<StoreStats> {
        timed("stats", self.query_timeout, async {
            let records = self.count().await?;
            let newest: Option<String> = sqlx::query_scalar(
                "SELECT stored_at FROM records ORDER BY transaction_id DESC LIMIT 1",
            )
            .fetch_optional(&self.pool)
            .await?;
            Ok(StoreStats {
                records,
                newest_stored_at: newest.as_deref().map(parse_time).transpose()?,
            })
        })
        .await
    }
}
