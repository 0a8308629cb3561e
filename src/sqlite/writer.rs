//! The one write connection of a file, on a thread of its own, and its commit hook.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;

use super::{AUTOCHECKPOINT_FRAMES, BEFORE_WRITE, BeforeWrite, LOCK_POLL, TURN, Turn, WAITED};

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
