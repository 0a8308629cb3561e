//! The embedded data directory (`queue.db`, `records.db` and their `-wal`/`-shm` files) is
//! private: every message is in there in clear text, so only the service's own user may read
//! it. The directory is `0700`, the files `0600` (SQLite gives a database's `-wal` and
//! `-shm` files the database file's mode, so the database file is created `0600` before
//! SQLite opens it, and modes that are too open are tightened on every start).

use std::io;
use std::path::{Path, PathBuf};

/// Creates `dir` (and its parents) if missing, mode `0700`; an existing data directory that
/// others can read is tightened to `0700`.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Makes sure the SQLite database at `path` and its `-wal`/`-shm` files exist only as
/// `0600`: creates the empty database file that way (SQLite accepts an empty file) and
/// tightens any of the three that is more open.
pub fn ensure_private_database(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        for file in sqlite_files(path) {
            match std::fs::metadata(&file) {
                Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The database file and the two files SQLite's WAL mode adds next to it.
pub fn sqlite_files(path: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_owned(), with("-wal"), with("-shm")]
}

/// `BEGIN IMMEDIATE` on the one writer connection of `pool`, recovering that connection
/// when an earlier transaction left it unusable.
///
/// When a `COMMIT` fails (SQLITE_FULL on a full disk, an I/O error) sqlx keeps counting the
/// transaction as open on that connection, and every later `begin` fails with "attempted to
/// call begin_with at non-zero transaction depth": with a pool of one writer, the queue or
/// the store would stay down after the disk has room again. A failed `BEGIN` therefore
/// closes the connection (SQLite rolls back whatever it still held, releasing the write
/// lock) and begins once more on a fresh one.
pub async fn begin_immediate(
    pool: &sqlx::SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    match pool.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => Ok(tx),
        Err(first) => {
            tracing::warn!(message = "Reopening the SQLite writer connection after a failed transaction.", error = %first);
            let mut conn = pool.acquire().await?;
            conn.close_on_drop();
            pool.begin_with("BEGIN IMMEDIATE").await
        }
    }
}
