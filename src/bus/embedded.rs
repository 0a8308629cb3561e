//! The embedded bus: a durable queue with SQS semantics in one SQLite file (`queue.db`).
//!
//! SQLite in WAL mode with `synchronous = FULL` makes every commit durable (fsync of the
//! WAL). One fsync per POST would cap throughput at the disk's fsync rate, so publishes go
//! through a single writer task that commits everything waiting in one transaction: group
//! commit. A publish returns only after the commit that holds it.
//!
//! Receive claims visible messages in one statement (`UPDATE .. RETURNING`), stamping a new
//! receipt, bumping the receive count and hiding them for the visibility timeout. A message
//! received `max_receive_count` times without an ack moves to the dead-letter queue (same
//! table, `queue = 'dlq'`) when it would be received once more, as SQS does. Several
//! processes may share one data directory (`serve --role api` next to `--role worker`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use super::{
    AckReport, Delivery, Error, OutboundMessage, Publisher, Queue, QueueAdmin, QueueName,
    QueueStats, Result,
};
use crate::config::QueueConfig;

/// File name of the queue inside the data directory.
pub const QUEUE_FILE: &str = "queue.db";

/// How often a long poll re-checks the table when no local publish wakes it (messages
/// published by another process, or whose visibility timeout expired).
const POLL_INTERVAL: Duration = Duration::from_millis(200);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/queue");

struct PendingPublish {
    message: OutboundMessage,
    done: oneshot::Sender<Result<()>>,
}

/// The on-disk queue. Cheap to clone; clones share the pool and the writer.
#[derive(Clone)]
pub struct EmbeddedQueue {
    /// Readers (stats, readiness).
    pool: SqlitePool,
    /// The one connection every write goes through: SQLite has one writer at a time, and
    /// queueing writers here (async, in order) beats SQLite's busy handler, which sleeps.
    writer: SqlitePool,
    publishes: mpsc::Sender<PendingPublish>,
    notify: Arc<Notify>,
    max_receive_count: u32,
    max_bytes: u64,
    path: PathBuf,
}

/// The next visible messages of a queue, in visibility order, at most a batch: an index
/// range on `messages_ready (queue, visible_at, seq)`, never a scan of the backlog. The
/// arguments are the statement's placeholders: queue, now, receive limit, batch size.
macro_rules! claim_candidates {
    ($queue:literal, $now:literal, $receives:literal, $limit:literal) => {
        concat!(
            "SELECT seq FROM messages WHERE queue = ",
            $queue,
            " AND visible_at <= ",
            $now,
            " AND receive_count < ",
            $receives,
            " ORDER BY visible_at, seq LIMIT ",
            $limit
        )
    };
}

/// The next visible main-queue messages, exhausted or not (the DLQ sweep looks at these).
macro_rules! sweep_candidates {
    ($now:literal, $limit:literal) => {
        concat!(
            "SELECT seq FROM messages WHERE queue = 'main' AND visible_at <= ",
            $now,
            " ORDER BY visible_at, seq LIMIT ",
            $limit
        )
    };
}

/// The claim's candidate range (`?1` queue, `?2` now, `?3` receive limit, `?4` batch), for
/// plan checks.
pub const CLAIM_CANDIDATES: &str = claim_candidates!("?1", "?2", "?3", "?4");

/// The DLQ sweep's candidate range (`?1` now, `?3` batch), for plan checks.
pub const SWEEP_CANDIDATES: &str = sweep_candidates!("?1", "?3");

/// Moves the exhausted (`?2` receives) among the next `?3` visible main-queue messages to
/// the DLQ.
const SWEEP_DEAD: &str = concat!(
    "UPDATE messages SET queue = 'dlq', receipt = NULL, visible_at = ?1 WHERE seq IN (",
    sweep_candidates!("?1", "?3"),
    ") AND receive_count >= ?2"
);

/// Claims the candidates: new receipt `?2`, invisible until `?1`.
const CLAIM: &str = concat!(
    "UPDATE messages SET visible_at = ?1, receive_count = receive_count + 1, receipt = ?2 ",
    "WHERE seq IN (",
    claim_candidates!("?3", "?4", "?5", "?6"),
    ") RETURNING seq, message_id, body, attributes, sent_at, receive_count"
);

/// WAL size kept after a checkpoint (64 MiB).
const JOURNAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

/// How often expired messages are removed and the WAL checkpointed.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Bytes the data takes in the file: pages in use (not on the free list) times page size.
async fn used_bytes<'e, E>(executor: E) -> Result<u64, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let bytes: i64 = sqlx::query_scalar(
        "SELECT (p.page_count - f.freelist_count) * s.page_size
         FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s",
    )
    .fetch_one(executor)
    .await?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

/// The queue's size as the group-commit writer tracks it: read from the file at most every
/// [`SIZE_REFRESH`] while the queue is under half its cap, estimated in between from the
/// commits (twice their payload: rows, attributes, index entries and page slack take about
/// 1.7 times it), and read before every commit past half the cap. The publish path thus pays
/// one extra query per second, not one per commit, and the cap stays exact where it matters.
#[derive(Default)]
struct SizeEstimate {
    /// Bytes at the last read plus what was committed since (`None` before the first read).
    estimate: Option<u64>,
    read_at: Option<Instant>,
}

/// How long [`SizeEstimate`] trusts its estimate far from the cap (acks and other processes
/// change the size meanwhile).
const SIZE_REFRESH: Duration = Duration::from_secs(1);

impl SizeEstimate {
    /// The used bytes when `incoming` more would exceed `max_bytes`; `None` when it fits (or
    /// the size cannot be read: the commit itself then reports a full disk).
    async fn would_exceed(
        &mut self,
        pool: &SqlitePool,
        incoming: u64,
        max_bytes: u64,
    ) -> Option<u64> {
        let stale = self.read_at.is_none_or(|t| t.elapsed() >= SIZE_REFRESH);
        let near = self
            .estimate
            .is_none_or(|e| e.saturating_add(incoming.saturating_mul(2)) > max_bytes / 2);
        if stale || near {
            match used_bytes(pool).await {
                Ok(used) => {
                    self.estimate = Some(used);
                    self.read_at = Some(Instant::now());
                }
                Err(_) => return None,
            }
        }
        let used = self.estimate.unwrap_or(0);
        (used.saturating_add(incoming) > max_bytes).then_some(used)
    }

    fn added(&mut self, payload: u64) {
        if let Some(e) = self.estimate.as_mut() {
            *e = e.saturating_add(payload.saturating_mul(2));
        }
    }
}

async fn expire(writer: &SqlitePool, config: &QueueConfig) -> Result<u64, sqlx::Error> {
    let now = now_ms();
    let mut expired = 0;
    for (queue, retention) in [("main", config.retention), ("dlq", config.dlq_retention)] {
        expired += sqlx::query("DELETE FROM messages WHERE queue = ?1 AND sent_at < ?2")
            .bind(queue)
            .bind(now.saturating_sub(millis(retention)))
            .execute(writer)
            .await?
            .rows_affected();
    }
    Ok(expired)
}

/// Every minute: drop messages past their retention (as SQS does) and checkpoint the WAL,
/// so neither the table nor `queue.db-wal` grows without bound.
async fn upkeep(writer: SqlitePool, config: QueueConfig) {
    let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        tick.tick().await;
        if writer.is_closed() {
            return;
        }
        match expire(&writer, &config).await {
            Ok(0) => {}
            Ok(n) => {
                metrics::counter!("latamctl_queue_expired_total").increment(n);
                tracing::warn!(
                    message = "Removed messages past their retention.",
                    count = n
                );
            }
            Err(error) => tracing::warn!(message = "Failed to expire old messages.", %error),
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&writer)
            .await
        {
            tracing::debug!(message = "WAL checkpoint failed.", %error);
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl EmbeddedQueue {
    /// Opens (creating if needed) the queue in `data_dir`.
    pub async fn open(data_dir: &Path, config: &QueueConfig) -> Result<Self> {
        crate::datadir::ensure_private_dir(data_dir).map_err(|e| {
            Error::Config(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(QUEUE_FILE);
        crate::datadir::ensure_private_database(&path)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", path.display())))?;
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(unavailable)?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            // After a checkpoint the WAL is truncated back to this size: it cannot keep the
            // high-water mark of a burst forever.
            .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string());
        let open_error =
            |e: sqlx::Error| Error::Config(format!("cannot open queue {}: {e}", path.display()));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| Error::Config(format!("cannot migrate queue {}: {e}", path.display())))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(open_error)?;

        let (tx, rx) = mpsc::channel(16 * 1024);
        let notify = Arc::new(Notify::new());
        tokio::spawn(group_commit_writer(
            writer.clone(),
            rx,
            notify.clone(),
            config.group_commit_max.max(1),
            config.max_bytes,
        ));
        tokio::spawn(upkeep(writer.clone(), config.clone()));
        Ok(Self {
            pool,
            writer,
            publishes: tx,
            notify,
            max_receive_count: config.max_receive_count,
            max_bytes: config.max_bytes,
            path,
        })
    }

    /// Removes messages older than their queue's retention. Returns how many.
    pub async fn expire(&self, config: &QueueConfig) -> Result<u64> {
        expire(&self.writer, config).await.map_err(unavailable)
    }

    /// Where the queue lives on disk.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Claims up to `max` visible messages of `queue`; on the main queue, first moves the
    /// messages that exhausted their receives to the DLQ.
    async fn claim(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>> {
        let now = now_ms();
        let token = Uuid::new_v4().simple().to_string();
        let mut tx = crate::datadir::begin_immediate(&self.writer)
            .await
            .map_err(unavailable)?;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        // Both statements read an index range bounded by the batch (`messages_ready`, in
        // visibility order), never the whole backlog: a receive costs the same with ten
        // messages waiting or a million (tests/it/queue.rs checks the plans).
        let dead = if queue == QueueName::Main {
            // The exhausted among the next candidates move to the DLQ, as SQS does on the
            // receive that would exceed maxReceiveCount.
            sqlx::query(SWEEP_DEAD)
                .bind(now)
                .bind(i64::from(self.max_receive_count))
                .bind(limit)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?
                .rows_affected()
        } else {
            0
        };
        // On the main queue an exhausted message deeper down is skipped, never received a
        // time too many; it is swept when it reaches the head.
        let receive_limit = match queue {
            QueueName::Main => i64::from(self.max_receive_count),
            QueueName::Dlq => i64::MAX,
        };
        let rows = sqlx::query(CLAIM)
            .bind(now.saturating_add(millis(visibility)))
            .bind(&token)
            .bind(queue_label(queue))
            .bind(now)
            .bind(receive_limit)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        if dead > 0 {
            metrics::counter!("latamctl_queue_dead_lettered_total").increment(dead);
            tracing::warn!(
                message = "Moved messages to the dead-letter queue.",
                count = dead,
                max_receive_count = self.max_receive_count
            );
        }
        let mut out: Vec<Delivery> = rows
            .iter()
            .map(|row| row_to_delivery(row, Some(&token)))
            .collect::<Result<_>>()?;
        out.sort_by_key(|d| d.receipt.clone());
        Ok(out)
    }

    /// Deletes the messages whose receipt is still current.
    async fn delete(&self, queue: QueueName, deliveries: &[&Delivery]) -> Result<AckReport> {
        let mut report = AckReport::default();
        if deliveries.is_empty() {
            return Ok(report);
        }
        let mut tx = crate::datadir::begin_immediate(&self.writer)
            .await
            .map_err(unavailable)?;
        for d in deliveries {
            let Some((seq, token)) = parse_receipt(&d.receipt) else {
                report
                    .failed
                    .push((d.message_id.clone(), "malformed receipt".into()));
                continue;
            };
            let deleted =
                sqlx::query("DELETE FROM messages WHERE seq = ?1 AND receipt = ?2 AND queue = ?3")
                    .bind(seq)
                    .bind(token)
                    .bind(queue_label(queue))
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?
                    .rows_affected();
            if deleted == 1 {
                report.acked += 1;
            } else {
                report.failed.push((
                    d.message_id.clone(),
                    "receipt expired: the message was received again after its visibility timeout"
                        .into(),
                ));
            }
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(report)
    }

    /// Makes the messages visible again after `delay`.
    async fn set_visible(
        &self,
        queue: QueueName,
        deliveries: &[&Delivery],
        delay: Duration,
    ) -> Result<()> {
        let visible_at = now_ms().saturating_add(millis(delay));
        let mut tx = crate::datadir::begin_immediate(&self.writer)
            .await
            .map_err(unavailable)?;
        for d in deliveries {
            if let Some((seq, token)) = parse_receipt(&d.receipt) {
                sqlx::query(
                    "UPDATE messages SET visible_at = ?1 WHERE seq = ?2 AND receipt = ?3 AND queue = ?4",
                )
                .bind(visible_at)
                .bind(seq)
                .bind(token)
                .bind(queue_label(queue))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            }
        }
        tx.commit().await.map_err(unavailable)?;
        if delay.is_zero() {
            self.notify.notify_waiters();
        }
        Ok(())
    }
}

fn queue_label(queue: QueueName) -> &'static str {
    match queue {
        QueueName::Main => "main",
        QueueName::Dlq => "dlq",
    }
}

fn row_to_delivery(row: &sqlx::sqlite::SqliteRow, token: Option<&str>) -> Result<Delivery> {
    let seq: i64 = row.get("seq");
    let attributes: String = row.get("attributes");
    let attributes: BTreeMap<String, String> = serde_json::from_str(&attributes)
        .map_err(|e| Error::Unavailable(format!("queue row {seq} has corrupt attributes: {e}")))?;
    let sent_at: i64 = row.get("sent_at");
    let receive_count: i64 = row.get("receive_count");
    Ok(Delivery {
        message_id: row.get("message_id"),
        // `seq:token` — the ack must present the token of the latest receive.
        receipt: token.map(|t| format!("{seq:020}:{t}")).unwrap_or_default(),
        body: row.get("body"),
        attributes,
        receive_count: u32::try_from(receive_count).unwrap_or(u32::MAX),
        sent_at: DateTime::from_timestamp_millis(sent_at),
    })
}

fn parse_receipt(receipt: &str) -> Option<(i64, &str)> {
    let (seq, token) = receipt.split_once(':')?;
    Some((seq.parse().ok()?, token))
}

/// Commits everything waiting in one transaction, then answers every publisher at once.
async fn group_commit_writer(
    pool: SqlitePool,
    mut rx: mpsc::Receiver<PendingPublish>,
    notify: Arc<Notify>,
    max_batch: usize,
    max_bytes: u64,
) {
    let mut batch = Vec::with_capacity(max_batch);
    let mut size = SizeEstimate::default();
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        // A publisher that gave up (timeout, client gone) was told 503: do not commit its
        // message behind its back.
        batch.retain(|p| !p.done.is_closed());
        if batch.is_empty() {
            continue;
        }
        // The cap: refuse what would not fit rather than fill the disk.
        let incoming: u64 = batch
            .iter()
            .map(|p| p.message.message.len() as u64 + 512)
            .sum();
        if let Some(used) = size.would_exceed(&pool, incoming, max_bytes).await {
            metrics::counter!("latamctl_queue_full_total").increment(batch.len() as u64);
            let why = format!("{used} of {max_bytes} bytes used (queue.max_bytes)");
            for pending in batch.drain(..) {
                let _ = pending.done.send(Err(Error::Full(why.clone())));
            }
            continue;
        }
        let started = Instant::now();
        let result = commit_batch(&pool, &batch).await;
        metrics::histogram!("latamctl_queue_commit_batch_size").record(batch.len() as f64);
        metrics::histogram!("latamctl_queue_commit_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                size.added(incoming);
                for pending in batch.drain(..) {
                    let _ = pending.done.send(Ok(()));
                }
                notify.notify_waiters();
            }
            Err(e) => {
                tracing::error!(message = "Failed to commit published messages.", error = %e, count = batch.len());
                for pending in batch.drain(..) {
                    let _ = pending.done.send(Err(Error::Unavailable(e.to_string())));
                }
            }
        }
    }
}

async fn commit_batch(pool: &SqlitePool, batch: &[PendingPublish]) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let mut tx = crate::datadir::begin_immediate(pool).await?;
    for chunk in batch.chunks(100) {
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO messages (message_id, queue, body, attributes, sent_at, visible_at) ",
        );
        qb.push_values(chunk, |mut row, p| {
            let attrs = serde_json::to_string(&p.message.wire_attributes())
                .unwrap_or_else(|_| "{}".to_owned());
            row.push_bind(Uuid::now_v7().to_string())
                .push_bind("main")
                .push_bind(&p.message.message)
                .push_bind(attrs)
                .push_bind(now)
                .push_bind(now);
        });
        qb.build().execute(&mut *tx).await?;
    }
    tx.commit().await
}

#[async_trait]
impl Publisher for EmbeddedQueue {
    async fn publish(&self, message: &OutboundMessage) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.publishes
            .send(PendingPublish {
                message: message.clone(),
                done,
            })
            .await
            .map_err(|_| Error::Unavailable("queue writer stopped".into()))?;
        wait.await
            .map_err(|_| Error::Unavailable("queue writer stopped".into()))?
    }

    async fn ready(&self) -> Result<()> {
        if self.publishes.is_closed() {
            return Err(Error::Unavailable("queue writer stopped".into()));
        }
        Queue::ready(self).await
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Delivery>> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self.claim(QueueName::Main, max, visibility).await?;
            let now = Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            let nap = (deadline - now).min(POLL_INTERVAL);
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    async fn ack(&self, deliveries: &[&Delivery]) -> Result<AckReport> {
        self.delete(QueueName::Main, deliveries).await
    }

    async fn release(&self, deliveries: &[&Delivery], delay: Duration) -> Result<()> {
        self.set_visible(QueueName::Main, deliveries, delay).await
    }

    async fn ready(&self) -> Result<()> {
        sqlx::query("SELECT 1 FROM messages LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats> {
        let now = now_ms();
        let row = sqlx::query(
            "SELECT
               COALESCE(SUM(queue = 'main' AND visible_at <= ?1), 0) AS visible,
               COALESCE(SUM(queue = 'main' AND visible_at > ?1), 0) AS in_flight,
               MIN(CASE WHEN queue = 'main' THEN sent_at END) AS oldest,
               COALESCE(SUM(queue = 'dlq'), 0) AS dead
             FROM messages",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        let count = |name: &str| u64::try_from(row.get::<i64, _>(name)).unwrap_or(0);
        let oldest: Option<i64> = row.get("oldest");
        Ok(QueueStats {
            visible: count("visible"),
            in_flight: count("in_flight"),
            oldest_age_seconds: oldest.map(|t| (now - t).max(0) as f64 / 1000.0),
            dead_letter: count("dead"),
            bytes: Some(used_bytes(&self.pool).await.map_err(unavailable)?),
            capacity_bytes: Some(self.max_bytes),
        })
    }
}

#[async_trait]
impl QueueAdmin for EmbeddedQueue {
    async fn receive_from(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>> {
        self.claim(queue, max, visibility).await
    }

    async fn delete_from(&self, queue: QueueName, deliveries: &[&Delivery]) -> Result<AckReport> {
        self.delete(queue, deliveries).await
    }

    async fn release_to(&self, queue: QueueName, deliveries: &[&Delivery]) -> Result<()> {
        self.set_visible(queue, deliveries, Duration::ZERO).await
    }

    async fn peek(&self, queue: QueueName, max: usize) -> Result<Option<Vec<Delivery>>> {
        let rows = sqlx::query(
            "SELECT seq, message_id, body, attributes, sent_at, receive_count FROM messages
             WHERE queue = ?1 ORDER BY seq LIMIT ?2",
        )
        .bind(queue_label(queue))
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| row_to_delivery(row, None))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    async fn redrive(&self, max: usize) -> Result<u64> {
        let moved = sqlx::query(
            "UPDATE messages SET queue = 'main', receive_count = 0, receipt = NULL, visible_at = ?1
             WHERE seq IN (SELECT seq FROM messages WHERE queue = 'dlq' ORDER BY seq LIMIT ?2)",
        )
        .bind(now_ms())
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .execute(&self.writer)
        .await
        .map_err(unavailable)?
        .rows_affected();
        self.notify.notify_waiters();
        Ok(moved)
    }

    fn describe(&self, queue: QueueName) -> String {
        format!("{} ({})", self.path.display(), queue_label(queue))
    }
}
