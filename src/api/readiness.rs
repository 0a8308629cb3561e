//! Readiness as a cached state.
//!
//! `GET /readyz` is unauthenticated, probed by kubelets and load balancers, and reachable
//! through the ingress: it must cost nothing upstream and leak nothing. A background task
//! ([`Readiness::run`]) checks each dependency every `api.readiness_interval` with its own
//! timeout and keeps only a generic reason per dependency (`ok`, `unavailable`, `timeout`,
//! ...); `/readyz` answers from that state without touching the bus or the database, so a
//! flood of probes cannot throttle SNS's control plane or load the database. The error
//! detail goes to the log, once per change of state, and to
//! `latamctl_dependency_ready{dependency}`.
//!
//! The worker's [`StoreGate`] is read live: while the store refuses writes the worker is
//! `paused`. A worker-only process is then not ready; a process that also serves the API
//! stays ready, because its POSTs still land in the durable queue.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::{Publisher, Queue};
use crate::store::Store;
use crate::worker::StoreGate;

/// Reason of a dependency that was never checked yet.
pub const UNKNOWN: &str = "unknown";
/// Reason of a healthy dependency.
pub const OK: &str = "ok";
/// The worker's reason while the store refuses writes and POSTs are still queued.
pub const PAUSED_QUEUEING: &str = "paused: the store refuses writes; POSTs are queued";
/// The worker's reason while the store refuses writes (worker-only process).
pub const PAUSED: &str = "paused: the store refuses writes";

/// The cached state of every dependency a process uses.
pub struct Readiness {
    publisher: Option<Arc<dyn Publisher>>,
    queue: Option<Arc<dyn Queue>>,
    store: Option<Arc<dyn Store>>,
    gate: OnceLock<Arc<StoreGate>>,
    serves_api: bool,
    timeout: Duration,
    checks: RwLock<BTreeMap<&'static str, &'static str>>,
    refreshes: AtomicU64,
    /// Set at SIGTERM: not ready from then on, whatever the dependencies say.
    shutting_down: AtomicBool,
}

impl Readiness {
    pub fn new(
        publisher: Option<Arc<dyn Publisher>>,
        queue: Option<Arc<dyn Queue>>,
        store: Option<Arc<dyn Store>>,
        timeout: Duration,
    ) -> Self {
        let mut checks = BTreeMap::new();
        for (name, present) in [
            ("publisher", publisher.is_some()),
            ("queue", queue.is_some()),
            ("store", store.is_some()),
        ] {
            if present {
                checks.insert(name, UNKNOWN);
            }
        }
        Self {
            serves_api: publisher.is_some(),
            publisher,
            queue,
            store,
            gate: OnceLock::new(),
            timeout,
            checks: RwLock::new(checks),
            refreshes: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Makes the worker's gate part of readiness.
    pub fn watch_worker(&self, gate: Arc<StoreGate>) {
        let _ = self.gate.set(gate);
    }

    /// How many refreshes ran (each one call per dependency).
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// The cached reasons and whether they add up to ready. Never calls a dependency.
    pub fn snapshot(&self) -> (bool, BTreeMap<String, String>) {
        let cached = self.checks.read().unwrap_or_else(|e| e.into_inner());
        let mut ready = cached.values().all(|v| *v == OK);
        let mut checks: BTreeMap<String, String> = cached
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(gate) = self.gate.get() {
            let reason = match (gate.is_closed(), self.serves_api, gate.held()) {
                (false, _, (0, _)) => OK.to_owned(),
                // One node refuses writes, the others take theirs: still doing work.
                (false, _, (held, node)) => format!(
                    "partial: {held} messages held for a database node that refuses writes{}; the others are stored",
                    node.map(|n| format!(" ({n})")).unwrap_or_default()
                ),
                (true, true, _) => PAUSED_QUEUEING.to_owned(),
                (true, false, _) => {
                    ready = false;
                    PAUSED.to_owned()
                }
            };
            checks.insert("worker".into(), reason);
        }
        if self.is_shutting_down() {
            checks.insert("process".into(), "shutting_down".into());
            ready = false;
        }
        (ready, checks)
    }

    /// Checks every dependency once, concurrently, each within the timeout.
    pub async fn refresh(&self) {
        let timeout = self.timeout;
        let publisher = async {
            match &self.publisher {
                Some(p) => Some(bounded(timeout, p.ready(), |e| e.kind()).await),
                None => None,
            }
        };
        let queue = async {
            match &self.queue {
                Some(q) => Some(bounded(timeout, q.ready(), |e| e.kind()).await),
                None => None,
            }
        };
        let store = async {
            match &self.store {
                Some(s) => Some(bounded(timeout, s.ready(), |e| e.kind()).await),
                None => None,
            }
        };
        let (p, q, s) = tokio::join!(publisher, queue, store);
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let mut checks = self.checks.write().unwrap_or_else(|e| e.into_inner());
        for (name, outcome) in [("publisher", p), ("queue", q), ("store", s)] {
            let Some((reason, detail)) = outcome else {
                continue;
            };
            metrics::gauge!(crate::metric::DEPENDENCY_READY, "dependency" => name)
                .set(if reason == OK { 1.0 } else { 0.0 });
            let before = checks.insert(name, reason);
            if before == Some(reason) {
                continue;
            }
            // Logged once per change: a dependency that stays down does not flood the log.
            match detail {
                Some(error) => tracing::warn!(
                    message = "A dependency is not ready.",
                    dependency = name,
                    reason,
                    %error
                ),
                None if before.is_some_and(|b| b != UNKNOWN) => {
                    tracing::info!(message = "A dependency is ready again.", dependency = name)
                }
                None => {}
            }
        }
        drop(checks);
        self.publish_gauge();
    }

    /// Not ready from now on (SIGTERM): the load balancer stops sending new requests while
    /// in-flight ones complete.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.publish_gauge();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// `latamctl_ready` (what the availability SLI reads) from the cached state.
    fn publish_gauge(&self) {
        let ready = self.snapshot().0;
        metrics::gauge!(crate::metric::READY).set(if ready { 1.0 } else { 0.0 });
    }

    /// Refreshes every `every` until `shutdown`, keeping `latamctl_ready` current.
    pub async fn run(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        crate::background::every(every, shutdown, || {
            let readiness = self.clone();
            async move { readiness.refresh().await }
        })
        .await;
    }
}

/// Runs one check within `timeout`: the generic reason, and the error text for the log.
async fn bounded<E: std::fmt::Display>(
    timeout: Duration,
    check: impl std::future::Future<Output = Result<(), E>>,
    kind: impl Fn(&E) -> &'static str,
) -> (&'static str, Option<String>) {
    match tokio::time::timeout(timeout, check).await {
        Ok(Ok(())) => (OK, None),
        Ok(Err(e)) => (kind(&e), Some(e.to_string())),
        Err(_) => (
            "timeout",
            Some(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            )),
        ),
    }
}
