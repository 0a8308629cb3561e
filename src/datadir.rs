//! One engine shared by the embedded queue and the SQLite store; #28 renames it `sqlite/`
//! (files, turn, writer, readers, snapshots).
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

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

mod damage;
mod prepare;
mod snapshots;
pub use damage::{is_damaged, open_damaged, status_hint, what_to_do};
pub use prepare::{PrepareError, Prepared, prepare};
pub use snapshots::{SNAPSHOT_TTL, Snapshots};

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

/// An announcement older than this is over: its process got the lock (or is gone).
const TURN_FRESH: Duration = Duration::from_millis(2);

/// The longest a writer gives way to another process's announcement per transaction, so
/// a peer that misbehaves can slow this one down but never stop it.
const TURN_MAX_WAIT: Duration = Duration::from_millis(10);

/// Turn-taking between processes that write one database file (`serve --role api` and
/// `serve --role worker` on one data directory).
///
/// SQLite's write lock is not fair: a process that commits back to back (a worker draining
/// a backlog, its transactions a few microseconds apart) keeps winning it, and the other
/// process, polling, waits tens of milliseconds for a gap (measured: request p50 27 ms, p99
/// 90 ms while a worker drained 300,000 messages). So a writer that is waiting says so in
/// `<database>-turn`, an 8-byte shared map (its pid and when it last looked), and every
/// writer, before it begins a transaction, gives way while another process's announcement
/// is fresh. The waiter withdraws it after its transaction. A crashed waiter's announcement
/// goes stale within [`TURN_FRESH`]; the file holds no data and may be deleted at any time.
pub struct Turn {
    map: memmap2::MmapMut,
    pid: u64,
    epoch: std::time::Instant,
    epoch_us: u64,
}

/// The pid in the top 24 bits, the time (µs, wrapping) in the low 40.
const TURN_TIME_BITS: u32 = 40;
const TURN_TIME_MASK: u64 = (1 << TURN_TIME_BITS) - 1;

impl Turn {
    /// Opens (creating, `0600`) the turn file next to `database`.
    pub fn open(database: &Path) -> io::Result<Self> {
        Self::open_as(database, u64::from(std::process::id()))
    }

    /// [`Turn::open`] as process `pid` (tests play two processes in one).
    pub fn open_as(database: &Path, pid: u64) -> io::Result<Self> {
        let mut name = database.as_os_str().to_owned();
        name.push("-turn");
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(PathBuf::from(name))?;
        if file.metadata()?.len() < 8 {
            file.set_len(8)?;
        }
        // SAFETY: the mapping is 8 bytes of a file only turn-takers use, and it is only
        // read and written through the atomic in `cell`.
        let map = unsafe { memmap2::MmapOptions::new().len(8).map_mut(&file)? };
        let epoch_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as u64;
        Ok(Self {
            map,
            pid: pid & ((1 << (64 - TURN_TIME_BITS)) - 1),
            epoch: std::time::Instant::now(),
            epoch_us,
        })
    }

    fn cell(&self) -> &std::sync::atomic::AtomicU64 {
        // SAFETY: the map is 8 bytes, page-aligned, and lives as long as `self`.
        unsafe { &*(self.map.as_ptr() as *const std::sync::atomic::AtomicU64) }
    }

    /// Wall-clock µs (shared by processes), from a monotonic clock since open.
    fn now_us(&self) -> u64 {
        (self.epoch_us + self.epoch.elapsed().as_micros() as u64) & TURN_TIME_MASK
    }

    /// This process is waiting for the lock (called on every poll while it waits).
    pub fn announce(&self) {
        self.cell().store(
            (self.pid << TURN_TIME_BITS) | self.now_us(),
            Ordering::Release,
        );
    }

    /// This process got its turn: clears its announcement (not another's).
    pub fn withdraw(&self) {
        let cell = self.cell();
        let current = cell.load(Ordering::Acquire);
        if current >> TURN_TIME_BITS == self.pid {
            let _ = cell.compare_exchange(current, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Whether another process announced within [`TURN_FRESH`].
    pub fn other_waiting(&self) -> bool {
        let current = self.cell().load(Ordering::Acquire);
        if current == 0 || current >> TURN_TIME_BITS == self.pid {
            return false;
        }
        let age = self.now_us().wrapping_sub(current & TURN_TIME_MASK) & TURN_TIME_MASK;
        age < TURN_FRESH.as_micros() as u64
    }

    /// Waits (at most [`TURN_MAX_WAIT`]) while another process is waiting; true when it
    /// gave way at all.
    pub fn give_way(&self) -> bool {
        let started = std::time::Instant::now();
        let mut gave_way = false;
        while self.other_waiting() && started.elapsed() < TURN_MAX_WAIT {
            gave_way = true;
            std::thread::sleep(LOCK_POLL);
        }
        gave_way
    }
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Runs the writer thread's [`BeforeWrite`], if it has one.
fn before_write() {
    BEFORE_WRITE.with_borrow(|hook| hook.as_deref().map(|hook| hook()));
}

/// The WAL hook of a writer with a [`BeforeWrite`], called after each commit and before the
/// writer answers: runs it (so a read that starts after the answer sees the commit), then
/// checkpoints as `wal_autocheckpoint` would (passive: copies what no reader needs, waits
/// for nobody), except that a checkpoint a read transaction cut short is tried again
/// ([`CHECKPOINT_TRIES`] times, [`LOCK_POLL`] apart; readers renew their snapshots within
/// microseconds once the hook ran), and the hook runs again after it, so the snapshots
/// taken while it copied are renewed too and the WAL can start over at the next write.
///
/// Never fails: the commit is done when SQLite calls this, and an error here would be the
/// COMMIT's, so a stored batch would read as failed (and be redelivered). A checkpoint
/// another process runs at the same time makes ours `SQLITE_BUSY`; as with SQLite's own
/// hook, the next commit tries again.
fn after_commit(wal: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    before_write();
    if frames >= AUTOCHECKPOINT_FRAMES {
        for attempt in 1..=CHECKPOINT_TRIES {
            match wal.checkpoint_v2(rusqlite::hooks::CheckpointMode::PASSIVE) {
                Ok((log, copied)) if copied < log && attempt < CHECKPOINT_TRIES => {
                    std::thread::sleep(LOCK_POLL);
                    before_write();
                }
                Ok(_) => break,
                Err(error) => {
                    tracing::debug!(message = "Checkpoint after a commit did not run; the next commit tries again.", %error);
                    break;
                }
            }
        }
        before_write();
    }
    Ok(())
}

/// How many times [`after_commit`] tries a checkpoint that readers cut short.
const CHECKPOINT_TRIES: usize = 5;

/// The one connection every write to a file goes through, on a thread of its own. SQLite
/// has one writer at a time; queueing writes here (in order, each a closure that runs its
/// whole transaction on the thread) beats both SQLite's busy handler, which sleeps, and a
/// thread hop per statement. Writers of one file in different processes take turns
/// ([`Turn`]). Cheap to clone; the thread stops when the last clone is gone.
#[derive(Clone)]
pub struct Writer {
    jobs: std::sync::mpsc::Sender<Job>,
}

/// The writer's thread is gone (it panicked).
#[derive(Debug, thiserror::Error)]
#[error("the database writer thread stopped")]
pub struct WriterStopped;

impl Writer {
    /// Starts the writer thread `name` on `conn`, taking turns with other processes through
    /// the database's turn file (without one when it cannot be opened: only fairness is lost).
    pub fn spawn(name: &str, mut conn: Connection) -> io::Result<Self> {
        let turn = conn
            .path()
            .filter(|p| !p.is_empty())
            .and_then(|p| match Turn::open(Path::new(p)) {
                Ok(turn) => Some(Arc::new(turn)),
                Err(error) => {
                    tracing::warn!(message = "Cannot open the turn file; writers in other processes may starve this one.", path = p, %error);
                    None
                }
            });
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                TURN.set(turn.clone());
                for job in rx {
                    // A COMMIT that failed (SQLITE_FULL on a full disk, an I/O error) can
                    // leave the transaction open: roll it back, or every later BEGIN fails
                    // and the file stays unwritable after the disk has room again.
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    if let Some(turn) = &turn {
                        turn.give_way();
                    }
                    WAITED.set(false);
                    before_write();
                    job(&mut conn);
                    if WAITED.get()
                        && let Some(turn) = &turn
                    {
                        turn.withdraw();
                    }
                }
            })?;
        Ok(Self { jobs })
    }

    /// Runs `hook` on the writer's thread before each job and after each commit, just
    /// before the checkpoint SQLite runs every 1,000 WAL frames (through
    /// `sqlite3_wal_hook`). [`Snapshots`] ends its idle read transactions there: a
    /// checkpoint can only copy the frames every open read transaction has seen, and the
    /// WAL can only start over from its beginning while no reader still uses its frames.
    /// One hook per writer: a second call replaces the first.
    pub fn before_writes(&self, hook: BeforeWrite) {
        // On the writer's thread, before any later job; if the thread is gone, no write
        // needs the hook.
        let _ = self.jobs.send(Box::new(move |conn| {
            BEFORE_WRITE.set(Some(hook));
            conn.wal_hook(Some(after_commit));
        }));
    }

    /// Runs `f` on the writer's thread and returns what it returned.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> T + Send + 'static,
    ) -> Result<T, WriterStopped> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |conn| {
                let _ = done.send(f(conn));
            }))
            .map_err(|_| WriterStopped)?;
        wait.await.map_err(|_| WriterStopped)
    }
}

/// Read connections (`query_only`), reused, each read in a transaction of its own.
/// [`Readers::with`] runs on the caller's thread: for point reads (a primary-key lookup in
/// WAL mode never waits for the writer, and costs microseconds from the page cache, less
/// than a hop to another thread). Anything that can scan goes through
/// [`Readers::blocking`], on tokio's blocking pool. Point reads on a hot path share
/// transactions through [`Snapshots`] instead.
pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
    in_use: AtomicUsize,
}

impl Readers {
    pub fn new(path: PathBuf, max_idle: usize) -> Arc<Self> {
        Arc::new(Self {
            path,
            idle: Mutex::new(Vec::new()),
            max_idle,
            in_use: AtomicUsize::new(0),
        })
    }

    /// Connections in use and idle (the `latamctl_db_pool_connections` gauges).
    pub fn stats(&self) -> (usize, usize) {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).len();
        (self.in_use.load(Ordering::Relaxed), idle)
    }

    /// Runs `f` on an idle connection (opening one when none is idle).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = connect(&self.path, None)?;
                conn.pragma_update(None, "query_only", true)?;
                conn
            }
        };
        self.in_use.fetch_add(1, Ordering::Relaxed);
        let out = f(&conn);
        self.in_use.fetch_sub(1, Ordering::Relaxed);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
        out
    }

    /// [`Readers::with`] on tokio's blocking pool, for reads that may scan.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> rusqlite::Result<T> {
        let readers = self.clone();
        tokio::task::spawn_blocking(move || readers.with(f))
            .await
            // Only a panic in `f` gets here; it reads as the error of that read.
            .unwrap_or_else(|e| Err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two processes (played by two pids) on one turn file.
    fn pair() -> (tempfile::TempDir, Turn, Turn) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("queue.db");
        let api = Turn::open_as(&db, 101).unwrap();
        let worker = Turn::open_as(&db, 202).unwrap();
        (dir, api, worker)
    }

    #[test]
    fn a_writer_gives_way_to_another_process_that_is_waiting_and_not_to_itself() {
        let (_dir, api, worker) = pair();
        assert!(!worker.other_waiting(), "nobody announced yet");
        api.announce();
        assert!(
            worker.other_waiting(),
            "the api is waiting: the worker gives way"
        );
        assert!(
            !api.other_waiting(),
            "its own announcement does not stop the api"
        );
        assert!(worker.give_way());
        api.withdraw();
        assert!(
            !worker.other_waiting(),
            "withdrawn after the api's transaction"
        );
        assert!(!worker.give_way());
    }

    #[test]
    fn an_announcement_goes_stale_so_a_crashed_waiter_stops_nobody() {
        let (_dir, api, worker) = pair();
        api.announce();
        std::thread::sleep(TURN_FRESH + Duration::from_millis(1));
        assert!(!worker.other_waiting(), "stale after {TURN_FRESH:?}");
    }

    #[test]
    fn a_writer_withdraws_only_its_own_announcement() {
        let (_dir, api, worker) = pair();
        api.announce();
        worker.withdraw();
        assert!(
            worker.other_waiting(),
            "the worker must not clear the api's announcement"
        );
    }

    #[test]
    fn the_turn_file_is_private() {
        let (dir, _api, _worker) = pair();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("queue.db-turn"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
