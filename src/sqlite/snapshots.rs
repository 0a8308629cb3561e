//! Point reads that share read transactions ([`Snapshots`]).
//!
//! Every SQLite read transaction in WAL mode takes and releases a shared lock on a read mark
//! in the `-shm` file: `unixShmLock` runs under a mutex all the process's connections share,
//! and calls `fcntl` whenever the process's count of holders goes between zero and one.
//! Profiled under `GET /data/{id}` (wrk, 32 connections, the two runtime threads reading at
//! once), those two calls took 13.7 % of serve's CPU: 6.8 % in `fcntl`, the rest waiting on
//! each other in `futex`. The lookup itself was under 5 %.
//!
//! A [`Snapshots`] connection keeps its read transaction open across consecutive reads, so
//! one pair of lock calls covers all the reads made in [`SNAPSHOT_TTL`]. What a read may miss
//! is bounded:
//! - a commit made through this process's [`Writer`] of the same file is seen by every read
//!   that starts after it: the writer's thread, right after the commit and before the
//!   caller hears of it, ends the idle snapshots and raises an epoch, and a snapshot in use
//!   then is renewed at its next read ([`Writer::before_writes`]);
//! - a commit made by another process (`serve --role worker` on the same data directory) is
//!   seen by every read that starts [`SNAPSHOT_TTL`] after it, or sooner.
//!
//! An open read transaction keeps checkpoints from passing its snapshot, and the WAL from
//! starting over at its beginning, so the WAL grows while read transactions stay open
//! (measured: POST and GET load together on one `serve`, the WAL of `records.db` grew to
//! 48 MB where it stays at 4 MB with a transaction per read). So:
//! - the writer's thread ends the transactions of idle connections before each write and
//!   before each checkpoint ([`Writer::before_writes`]);
//! - a sweeper task ends them once they are older than [`SNAPSHOT_TTL`], and sleeps while
//!   none is open;
//! - only a process whose own writer stores the records shares snapshots
//!   (`SqliteStore::with_shared_reads` in the store): a writer in another
//!   process cannot end them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{Writer, connect};

/// How long a read transaction serves reads: the most a read can lag a commit another
/// process made.
pub const SNAPSHOT_TTL: Duration = Duration::from_millis(1);

/// Read connections (`query_only`) for point reads, each keeping a read transaction open for
/// up to [`SNAPSHOT_TTL`] (see the module documentation). Reads run on the caller's thread.
pub struct Snapshots {
    path: PathBuf,
    /// [`SNAPSHOT_TTL`], but in tests.
    ttl: Duration,
    /// Raised by the writer's thread before each write, after each commit and after each
    /// checkpoint ([`Snapshots::end_idle`]): a snapshot older than it is renewed.
    epoch: AtomicU64,
    idle: Mutex<Vec<Reader>>,
    max_idle: usize,
    /// Whether the sweeper is awake (an idle connection may have a transaction open).
    sweeping: AtomicBool,
    wake: Arc<tokio::sync::Notify>,
}

struct Reader {
    conn: Connection,
    /// The open read transaction, if any.
    open: Option<Began>,
}

/// When a read transaction began, and [`Snapshots::epoch`] then.
#[derive(Clone, Copy)]
struct Began {
    at: Instant,
    epoch: u64,
}

impl Reader {
    /// Ends the read transaction, if one is open.
    fn end(&mut self) -> rusqlite::Result<()> {
        if self.open.take().is_some() {
            // Cached, as in [`super::immediate`]: a GET may renew its snapshot each time.
            self.conn.prepare_cached("COMMIT")?.execute([])?;
        }
        Ok(())
    }
}

impl Snapshots {
    /// Reads of the file at `path`, which `writer` writes in this process. Starts the
    /// sweeper on the current tokio runtime.
    /// Panics outside a tokio runtime.
    pub fn new(path: PathBuf, writer: &Writer, max_idle: usize) -> Arc<Self> {
        Self::with_ttl(path, writer, max_idle, SNAPSHOT_TTL)
    }

    fn with_ttl(path: PathBuf, writer: &Writer, max_idle: usize, ttl: Duration) -> Arc<Self> {
        let wake = Arc::new(tokio::sync::Notify::new());
        let this = Arc::new(Self {
            path,
            ttl,
            epoch: AtomicU64::new(0),
            idle: Mutex::new(Vec::new()),
            max_idle,
            sweeping: AtomicBool::new(false),
            wake: wake.clone(),
        });
        tokio::spawn(sweep(Arc::downgrade(&this), wake));
        let weak = Arc::downgrade(&this);
        writer.before_writes(Arc::new(move || {
            if let Some(snapshots) = weak.upgrade() {
                snapshots.end_idle();
            }
        }));
        this
    }

    /// Connections idle (the `latamctl_db_pool_connections` gauge).
    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Reader>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in a read transaction at most [`SNAPSHOT_TTL`] old that has seen every
    /// commit this process's writer made before the call.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        // Loaded before the snapshot is taken (at the first step of `f`): the snapshot then
        // holds every commit whose hook raised the epoch to this.
        let epoch = self.epoch.load(Ordering::Acquire);
        let idle = self.lock().pop();
        let mut reader = match idle {
            Some(reader) => reader,
            None => {
                let conn = connect(&self.path, None)?;
                conn.pragma_update(None, "query_only", true)?;
                Reader { conn, open: None }
            }
        };
        let fresh = matches!(reader.open, Some(began)
            if began.epoch == epoch && began.at.elapsed() < self.ttl);
        if !fresh {
            reader.end()?;
            reader.conn.prepare_cached("BEGIN")?.execute([])?;
            reader.open = Some(Began {
                at: Instant::now(),
                epoch,
            });
        }
        // Whatever failed (SQLite may have rolled the transaction back already), the
        // connection is closed on return, which ends its transaction, and the error is `f`'s.
        let out = f(&reader.conn)?;
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(reader);
            drop(idle);
            if !self.sweeping.load(Ordering::Relaxed) && !self.sweeping.swap(true, Ordering::AcqRel)
            {
                self.wake.notify_one();
            }
        }
        // A connection not kept is closed on drop, which ends its transaction.
        Ok(out)
    }

    /// Ends the read transactions of all idle connections, and has those in use renewed
    /// after their read (the writer's thread calls this before each write, after each
    /// commit and after each checkpoint).
    fn end_idle(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.lock().retain_mut(|reader| reader.end().is_ok());
    }

    /// Ends the read transactions of idle connections older than [`SNAPSHOT_TTL`]; false
    /// (and the sweeper marked asleep) when none is left open.
    fn sweep(&self) -> bool {
        let mut idle = self.lock();
        let mut open = false;
        idle.retain_mut(|reader| match reader.open {
            Some(began) if began.at.elapsed() >= self.ttl => reader.end().is_ok(),
            Some(_) => {
                open = true;
                true
            }
            None => true,
        });
        if !open {
            // Under the lock that `read` pushes under: a connection pushed after this sees
            // the sweeper asleep and wakes it.
            self.sweeping.store(false, Ordering::Release);
        }
        open
    }
}

impl Drop for Snapshots {
    fn drop(&mut self) {
        // The sweeper wakes, finds the readers gone and stops.
        self.wake.notify_one();
    }
}

async fn sweep(snapshots: Weak<Snapshots>, wake: Arc<tokio::sync::Notify>) {
    loop {
        wake.notified().await;
        loop {
            let Some(snapshots) = snapshots.upgrade() else {
                return;
            };
            if !snapshots.sweep() {
                break;
            }
            let ttl = snapshots.ttl;
            drop(snapshots);
            tokio::time::sleep(ttl).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::OptionalExtension;

    /// A WAL database with a table `t (k TEXT PRIMARY KEY)`, its writer, and a connection
    /// that plays another process.
    fn database() -> (tempfile::TempDir, PathBuf, Writer, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.db");
        let other = Connection::open(&path).unwrap();
        // Answers busy at once (a checkpoint would otherwise wait for readers).
        other.busy_timeout(Duration::ZERO).unwrap();
        other
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT PRIMARY KEY);")
            .unwrap();
        let writer = Writer::spawn("test-writer", connect(&path, None).unwrap()).unwrap();
        (dir, path, writer, other)
    }

    fn has(snapshots: &Snapshots, k: &str) -> bool {
        snapshots
            .read(|conn| {
                conn.prepare_cached("SELECT 1 FROM t WHERE k = ?1")?
                    .query_row([k], |_| Ok(()))
                    .optional()
            })
            .unwrap()
            .is_some()
    }

    async fn insert(writer: &Writer, k: &'static str) {
        writer
            .run(move |conn| conn.execute("INSERT INTO t VALUES (?1)", [k]))
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_read_sees_every_commit_this_processs_writer_made_before_it() {
        // Snapshots that never expire: only the writer's hook can end or renew them, whether
        // the snapshot was idle during the write, in use (its read runs the write), or begun
        // while the write ran.
        let (_dir, path, writer, _) = database();
        let snapshots = Snapshots::with_ttl(path, &writer, 4, Duration::from_secs(3600));
        for (idle, in_use, begun) in [("a", "b", "c"), ("d", "e", "f")] {
            assert!(!has(&snapshots, idle), "{idle} not written yet");
            insert(&writer, idle).await;
            assert!(
                has(&snapshots, idle),
                "{idle} written while the snapshot was idle"
            );
            snapshots
                .read(|_| {
                    futures::executor::block_on(insert(&writer, in_use));
                    Ok(())
                })
                .unwrap();
            assert!(
                has(&snapshots, in_use),
                "{in_use} written while it was in use"
            );
            // A snapshot begun after the write started and before its commit.
            let during = snapshots.clone();
            writer
                .run(move |conn| {
                    let tx = conn.transaction()?;
                    tx.execute("INSERT INTO t VALUES (?1)", [begun])?;
                    assert!(!has(&during, begun), "not committed yet");
                    tx.commit()
                })
                .await
                .unwrap()
                .unwrap();
            assert!(has(&snapshots, begun), "{begun} committed before this read");
        }
    }

    #[tokio::test]
    async fn a_read_sees_another_processs_commit_once_the_snapshot_expired() {
        let (_dir, path, writer, other) = database();
        let snapshots = Snapshots::new(path, &writer, 4);
        assert!(!has(&snapshots, "a"));
        other.execute("INSERT INTO t VALUES ('a')", []).unwrap();
        std::thread::sleep(2 * SNAPSHOT_TTL);
        assert!(has(&snapshots, "a"), "committed {SNAPSHOT_TTL:?} before");
    }

    #[tokio::test]
    async fn a_write_ends_idle_snapshots_first_so_its_checkpoint_can_empty_the_wal() {
        // Snapshots that never expire: only the writer can end them.
        let (_dir, path, writer, _) = database();
        let snapshots = Snapshots::with_ttl(path, &writer, 4, Duration::from_secs(3600));
        insert(&writer, "a").await;
        assert!(has(&snapshots, "a"));
        let busy = writer
            .run(|conn| {
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                    row.get::<_, i64>(0)
                })
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(busy, 0, "the idle snapshot was ended before the write");
    }

    #[tokio::test]
    async fn idle_snapshots_end_so_a_checkpoint_can_empty_the_wal() {
        let (_dir, path, writer, other) = database();
        let snapshots = Snapshots::with_ttl(path, &writer, 4, Duration::from_millis(20));
        insert(&writer, "a").await;
        for _ in 0..100 {
            assert!(has(&snapshots, "a"));
        }
        let truncate = || {
            other
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                    row.get::<_, i64>(0)
                })
                .unwrap()
        };
        assert_eq!(truncate(), 1, "a read transaction is open: busy");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(truncate(), 0, "the sweeper ended it: not busy");
    }
}
