//! The fault-injection suite: the real binary under load while a real fault happens, then
//! an account of every message. Each case prints one line
//!
//!     fault | acked | stored | duplicates | in DLQ | recovered in s
//!
//! (to stderr, and appended to `$LATAMCTL_FAULTS_REPORT` when set, which scripts/test.sh
//! prints at the end) and fails unless acked == stored, 0 duplicates and 0 messages in the
//! dead-letter queue. "acked" counts POSTs answered 200; "recovered" is the time from the
//! end of the fault until every acked message could be read back.
//!
//! The report line, the load and the accounting are here; the cases are in `crash` (kill -9,
//! SIGTERM), `postgres` (restart, writes refused), `sns` (endpoint cut) and `disk` (full).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use latamctl::bus::Queue;
use latamctl::bus::embedded::EmbeddedQueue;
use latamctl::config::QueueConfig;
use uuid::Uuid;

use super::support::{self, Serve, client, post, wait_stored};
// For `sns`, whose test names `super::cloud` and `super::store`.
use super::{cloud, store};

mod crash;
mod disk;
mod postgres;
mod sns;

/// One line of the suite's report.
pub(super) struct FaultLine {
    pub fault: &'static str,
    pub acked: usize,
    pub stored: usize,
    pub duplicates: u64,
    pub dlq: u64,
    pub recovered_s: f64,
}

impl FaultLine {
    pub fn check(&self) {
        self.check_with("");
    }

    /// [`check`](Self::check), with case-specific figures appended to the line.
    pub fn check_with(&self, detail: &str) {
        let line = format!(
            "{:<44} | acked {:>5} | stored {:>5} | duplicates {} | in DLQ {} | recovered in {:.1} s{detail}",
            self.fault, self.acked, self.stored, self.duplicates, self.dlq, self.recovered_s
        );
        eprintln!("FAULT {line}");
        if let Ok(path) = std::env::var("LATAMCTL_FAULTS_REPORT") {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(f, "{line}");
            }
        }
        assert!(
            self.acked > 0,
            "{}: no traffic was acknowledged",
            self.fault
        );
        assert_eq!(
            self.acked, self.stored,
            "{}: acknowledged messages lost",
            self.fault
        );
        assert_eq!(self.duplicates, 0, "{}: duplicate rows", self.fault);
        assert_eq!(
            self.dlq, 0,
            "{}: healthy messages dead-lettered",
            self.fault
        );
    }
}

/// Clients posting continuously to whatever `base` currently points at, keeping the ids
/// answered 200.
struct Load {
    base: Arc<RwLock<String>>,
    acked: Arc<Mutex<Vec<Uuid>>>,
    stop: Arc<AtomicBool>,
    tasks: tokio::task::JoinSet<()>,
}

impl Load {
    fn start(base: &str, senders: usize, pause: Duration) -> Load {
        let base = Arc::new(RwLock::new(base.to_owned()));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        for s in 0..senders {
            let (http, base, acked, stop) =
                (http.clone(), base.clone(), acked.clone(), stop.clone());
            tasks.spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let url = base.read().unwrap().clone();
                    if let Ok(id) = post(&http, &url, &format!("fault load {s}-{i}")).await {
                        acked.lock().unwrap().push(id);
                    } else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    i += 1;
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
            });
        }
        Load {
            base,
            acked,
            stop,
            tasks,
        }
    }

    fn point_at(&self, base: &str) {
        *self.base.write().unwrap() = base.to_owned();
    }

    async fn finish(mut self) -> Vec<Uuid> {
        self.stop.store(true, Ordering::SeqCst);
        while self.tasks.join_next().await.is_some() {}
        self.acked.lock().unwrap().clone()
    }
}

/// Waits until every id is readable; (stored, seconds it took).
pub(super) async fn account(base: &str, ids: &[Uuid], within: Duration) -> (usize, f64) {
    let started = Instant::now();
    let missing = wait_stored(&client(), base, ids, within).await;
    (ids.len() - missing.len(), started.elapsed().as_secs_f64())
}

pub(super) async fn embedded_dlq(data: &std::path::Path) -> u64 {
    EmbeddedQueue::open(data, &QueueConfig::default())
        .await
        .unwrap()
        .stats()
        .await
        .unwrap()
        .dead_letter
}

pub(super) async fn sqlite_duplicates(data: &std::path::Path) -> u64 {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", data.join("records.db").display()))
        .await
        .unwrap();
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) - count(DISTINCT transaction_id) FROM records")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    n as u64
}

async fn postgres_duplicates(url: &str) -> u64 {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) - count(DISTINCT transaction_id) FROM records")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    n as u64
}

/// Fast redelivery and few receives before the DLQ: a worker that spent receives during a
/// fault would dead-letter within seconds.
const STRICT_WORKER: [(&str, &str); 5] = [
    ("LATAMCTL_QUEUE_MAX_RECEIVE_COUNT", "3"),
    ("LATAMCTL_WORKER_VISIBILITY_TIMEOUT", "2s"),
    ("LATAMCTL_WORKER_RETRY_BASE_DELAY", "100ms"),
    ("LATAMCTL_WORKER_RETRY_MAX_DELAY", "1s"),
    ("LATAMCTL_WORKER_WAIT_TIME", "1s"),
];
