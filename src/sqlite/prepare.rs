//! Preparing a database file: the private directory and file, WAL mode, and the
//! migrations (run by sqlx), with a damaged file told apart from other failures.

use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{BUSY_TIMEOUT, damage, ensure_private_database, ensure_private_dir};

/// Why a database file could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("cannot create data directory {}: {source}", dir.display())]
    Dir { dir: PathBuf, source: io::Error },
    #[error("cannot create {}: {source}", path.display())]
    File { path: PathBuf, source: io::Error },
    #[error("cannot open {}: {source}", path.display())]
    Open { path: PathBuf, source: sqlx::Error },
    /// SQLite says the file is not a sound database (see [`what_to_do`]).
    #[error("cannot open {}: the file is damaged ({detail})", path.display())]
    Damaged { path: PathBuf, detail: String },
    #[error("cannot migrate {}: {source}", path.display())]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },
}

/// Creates `file` in `data_dir` if needed (private, WAL mode) and applies `migrator`.
/// Returns the file's path.
pub async fn prepare(
    data_dir: &Path,
    file: &str,
    migrator: &sqlx::migrate::Migrator,
) -> Result<Prepared, PrepareError> {
    ensure_private_dir(data_dir).map_err(|source| PrepareError::Dir {
        dir: data_dir.to_owned(),
        source,
    })?;
    let path = data_dir.join(file);
    ensure_private_database(&path).map_err(|source| PrepareError::File {
        path: path.clone(),
        source,
    })?;
    let damaged = |detail: String| PrepareError::Damaged {
        path: path.clone(),
        detail,
    };
    let open = |source: sqlx::Error| match damage::sqlx_is_damaged(&source) {
        true => damaged(source.to_string()),
        false => PrepareError::Open {
            path: path.clone(),
            source,
        },
    };
    let options = SqliteConnectOptions::from_str("sqlite:")
        .map_err(open)?
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(open)?;
    let before = applied_versions(&pool).await;
    let migrated = migrator.run(&pool).await;
    let after = applied_versions(&pool).await;
    pool.close().await;
    migrated.map_err(|source| match damage::migrate_is_damaged(&source) {
        true => damaged(source.to_string()),
        false => PrepareError::Migrate {
            path: path.clone(),
            source,
        },
    })?;
    Ok(Prepared {
        path,
        applied_now: after.into_iter().filter(|v| !before.contains(v)).collect(),
    })
}

/// A database file [`prepare`] made ready.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub path: PathBuf,
    /// Migration versions applied by this call (empty when the schema was up to date).
    pub applied_now: Vec<i64>,
}

/// Versions in sqlx's migration table; none before the first migration created it.
async fn applied_versions(pool: &sqlx::SqlitePool) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(pool)
        .await
        .unwrap_or_default()
}
