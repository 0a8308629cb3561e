//! Read connections, reused, a transaction per read.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::connect;

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
