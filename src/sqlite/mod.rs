//! The SQLite engine shared by the embedded queue and the SQLite store: `files` (the private
//! data directory and its modes), `turn` (writers in two processes taking turns), `writer`
//! (the one write connection on its thread), `readers`, `snapshots`, `prepare` (migrations
//! at open) and `damage` (a file SQLite calls damaged).
//!
//! The embedded data directory: `queue.db`, `records.db` and their `-wal`/`-shm` files, and
//! the SQLite plumbing both files share ([`prepare`], [`Writer`], [`Readers`],
//! [`Snapshots`]).
//!
//! sqlx runs the migrations (the same `_sqlx_migrations` bookkeeping as the PostgreSQL
//! store); the queries run on rusqlite connections. Measured under load, sqlx's SQLite
//! driver sent every statement to a thread of its own and back, and `serve` spent about half
//! its CPU switching threads: here a whole transaction runs on the writer's thread in one
//! hop, and a point read runs on the caller's thread with no hop at all.
//!
//! The directory is private: every message is in there in clear text, so only the service's own user may read
//! it. The directory is `0700`, the files `0600` (SQLite gives a database's `-wal` and
//! `-shm` files the database file's mode, so the database file is created `0600` before
//! SQLite opens it, and modes that are too open are tightened on every start).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

mod damage;
mod files;
mod prepare;
mod readers;
mod snapshots;
mod turn;
mod writer;
pub use damage::{is_damaged, open_damaged, status_hint, what_to_do};
pub use files::{ensure_private_database, ensure_private_dir, sqlite_files};
pub use prepare::{PrepareError, Prepared, prepare};
pub use readers::Readers;
pub use snapshots::{SNAPSHOT_TTL, Snapshots};
pub use turn::Turn;
pub use writer::{Writer, WriterStopped};

/// How long a connection waits for another process's write lock (`serve --role api` and
/// `--role worker` may share a data directory) before the statement fails.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to a prepared database: WAL, `synchronous = FULL` (a commit survives a power
/// cut), [`BUSY_TIMEOUT`], and `journal_size_limit` when given (the WAL is truncated back to
/// it after a checkpoint, so it cannot keep the high-water mark of a burst forever).
pub fn connect(path: &Path, journal_size_limit: Option<u64>) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_handler(Some(wait_for_lock))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    if let Some(limit) = journal_size_limit {
        conn.pragma_update_and_check(
            None,
            "journal_size_limit",
            i64::try_from(limit).unwrap_or(i64::MAX),
            |row| row.get::<_, i64>(0),
        )?;
    }
    Ok(conn)
}

/// Runs `f` in one `BEGIN IMMEDIATE` … `COMMIT` transaction, rolled back if `f` or the
/// commit fails (or `f` panics). The two statements are prepared once per connection:
/// rusqlite's `Transaction` runs them with `execute_batch`, which parses the SQL again each
/// time (callgrind: ~2,000 instructions a statement, and a POST's life has three
/// transactions: its publish, the worker's store and ack, ~5 % of its instructions).
pub fn immediate<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    /// Rolls back on every way out that is not a commit.
    struct Open<'a>(&'a Connection);
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            if !self.0.is_autocommit() {
                let _ = self.0.execute_batch("ROLLBACK");
            }
        }
    }
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let open = Open(conn);
    let out = f(conn)?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    drop(open);
    Ok(out)
}

/// How often a connection that finds the file locked by another process looks again.
const LOCK_POLL: Duration = Duration::from_micros(100);

/// What a writer's thread runs before each write and after each commit, before SQLite's
/// checkpoint (see [`Writer::before_writes`]).
pub type BeforeWrite = Arc<dyn Fn() + Send + Sync>;

/// WAL frames after which a commit checkpoints (SQLite's default `wal_autocheckpoint`, which
/// [`Writer::before_writes`] replaces with a hook doing the same).
const AUTOCHECKPOINT_FRAMES: i32 = 1000;

thread_local! {
    /// On a writer's thread: its [`BeforeWrite`], if any.
    static BEFORE_WRITE: std::cell::RefCell<Option<BeforeWrite>> = const { std::cell::RefCell::new(None) };
    /// When this thread started waiting for the current lock.
    static WAIT_STARTED: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    /// Whether this thread waited for a lock since the flag was last cleared.
    static WAITED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The turn file of the database this (writer) thread writes, if any.
    static TURN: std::cell::RefCell<Option<Arc<Turn>>> = const { std::cell::RefCell::new(None) };
}

/// SQLite's busy handler: polls every [`LOCK_POLL`] for up to [`BUSY_TIMEOUT`], and on a
/// writer's thread announces in the [`Turn`] file that this process is waiting.
///
/// SQLite's own handler sleeps 1, 2, 5, 10 … 100 ms between looks. Against a process that
/// commits back to back (a worker draining a backlog next to `serve --role api` on one data
/// directory) the API then almost never looks in the microseconds between two of the
/// worker's transactions, and its publishes time out while the worker runs.
fn wait_for_lock(attempt: i32) -> bool {
    let now = std::time::Instant::now();
    let started = match WAIT_STARTED.get() {
        Some(t) if attempt > 0 => t,
        _ => {
            WAIT_STARTED.set(Some(now));
            now
        }
    };
    WAITED.set(true);
    if now.duration_since(started) >= BUSY_TIMEOUT {
        return false;
    }
    TURN.with_borrow(|turn| {
        if let Some(turn) = turn {
            turn.announce();
        }
    });
    std::thread::sleep(LOCK_POLL);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn immediate_commits_and_rolls_back_on_every_other_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();

        immediate(&conn, |tx| tx.execute("INSERT INTO t VALUES (1)", [])).unwrap();
        assert_eq!(rows(&conn), 1, "committed");

        let failed = immediate(&conn, |tx| {
            tx.execute("INSERT INTO t VALUES (2)", [])?;
            tx.execute("INSERT INTO nowhere VALUES (3)", [])
        });
        assert!(failed.is_err());
        assert!(conn.is_autocommit(), "no transaction left open");
        assert_eq!(
            rows(&conn),
            1,
            "the failed transaction's insert was rolled back"
        );

        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            immediate(&conn, |tx| -> rusqlite::Result<()> {
                tx.execute("INSERT INTO t VALUES (4)", [])?;
                panic!("a bug inside the transaction")
            })
        }));
        assert!(panicked.is_err());
        assert!(
            conn.is_autocommit(),
            "no transaction left open after a panic"
        );
        assert_eq!(rows(&conn), 1);

        // The cached BEGIN and COMMIT serve the next transaction as the first.
        immediate(&conn, |tx| tx.execute("INSERT INTO t VALUES (5)", [])).unwrap();
        assert_eq!(rows(&conn), 2);
    }
}
