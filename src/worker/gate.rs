//! The store gate: whether the store takes writes, and what is held for a node that
//! refuses them. Written by the worker, read by readiness and the receive loops.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store;

/// Shared by the pollers (and read by readiness): closed by the first store-wide failure of
/// a batch, reopened only by a write that committed. A `SELECT 1` cannot reopen it: a
/// database can answer reads and refuse every write (revoked INSERT, read-only after a
/// failover, a full disk, a Citus worker node down).
#[derive(Debug, Default)]
pub struct StoreGate {
    down: AtomicBool,
    pub(super) reopened: tokio::sync::Notify,
    /// Messages held for a node that refuses writes while the others take theirs.
    held: AtomicUsize,
    /// The node named by the last refusal of the held messages, when it named one.
    held_node: std::sync::Mutex<Option<String>>,
}

impl StoreGate {
    /// Whether receiving is paused because the store refuses writes.
    pub fn is_closed(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    pub(super) fn close(&self, error: &store::Error) {
        if !self.down.swap(true, Ordering::SeqCst) {
            metrics::gauge!(crate::metric::WORKER_PAUSED).set(1.0);
            tracing::warn!(
                message = crate::event::STORE_REFUSES_WRITES,
                %error,
                error_type = error.kind(),
            );
        }
    }

    pub(super) fn open(&self) {
        if self.down.swap(false, Ordering::SeqCst) {
            metrics::gauge!(crate::metric::WORKER_PAUSED).set(0.0);
            tracing::info!(message = "A write committed again; receiving resumes.");
        }
        self.reopened.notify_waiters();
    }

    /// Messages held for a database node that refuses writes (0: none), and the node when
    /// the database named it: the worker is then partially paused.
    pub fn held(&self) -> (usize, Option<String>) {
        let node = self
            .held_node
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        (self.held.load(Ordering::SeqCst), node)
    }

    pub(super) fn set_held(&self, count: usize, node: Option<String>) {
        let before = self.held.swap(count, Ordering::SeqCst);
        *self.held_node.lock().unwrap_or_else(|e| e.into_inner()) = node.clone();
        metrics::gauge!(crate::metric::WORKER_HELD_MESSAGES).set(count as f64);
        match (before, count) {
            (0, n) if n > 0 => tracing::warn!(
                message = "A database node refuses writes; its messages are held and retried, the others are stored.",
                held = n,
                node = node.as_deref().unwrap_or("unknown"),
            ),
            (b, 0) if b > 0 => {
                tracing::info!(message = "The held messages are stored; no node refuses writes.")
            }
            _ => {}
        }
    }

    /// Waits until the gate is open; false on shutdown.
    pub(super) async fn wait_open(&self, shutdown: &CancellationToken) -> bool {
        while self.is_closed() {
            let reopened = self.reopened.notified();
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = reopened => {}
                // A missed notification costs at most this long.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        true
    }
}
