//! Turn-taking between processes that write one database file.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::LOCK_POLL;

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
