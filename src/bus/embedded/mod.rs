//! The embedded bus: a durable queue with SQS semantics in one SQLite file (`queue.db`).
//!
//! SQLite in WAL mode with `synchronous = FULL` makes every commit durable (fsync of the
//! WAL). One fsync per POST would cap throughput at the disk's fsync rate, so publishes go
//! through a single writer task that commits everything waiting in one transaction: group
//! commit. A publish returns only after the commit that holds it.
//!
//! Receive reads the next visible messages (one index range bounded by the batch) and claims
//! each by primary key, stamping a new receipt, bumping the receive count and hiding it for
//! the visibility timeout, inside the writer's transaction. A message received
//! `max_receive_count` times without an ack moves to the dead-letter queue (same table,
//! `queue = 'dlq'`) when it would be received once more, as SQS does. Several
//! processes may share one data directory (`serve --role api` next to `--role worker`).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use super::{
    AckReport, Delivery, Error, OutboundMessage, Publisher, Queue, QueueAdmin, QueueName,
    QueueStats, Result,
};
use crate::config::QueueConfig;
use crate::sqlite::{Readers, Writer};

/// The queue's counts at `?1` (now): visible, in flight, the oldest main-queue message's
/// `sent_at`, dead letters. Each from an index (`messages_ready`, `messages_by_age`), never
/// the table: these run every few seconds for the depth gauges, and a scan of the rows read
/// every body (`latamctl status` with 1,000,000 messages waiting: 0.23–0.36 s with the scan,
/// 0.04–0.05 s like this; the oldest is one index lookup). A test checks the plan.
pub const STATS: &str = "SELECT
       (SELECT COUNT(*) FROM messages WHERE queue = 'main' AND visible_at <= ?1),
       (SELECT COUNT(*) FROM messages WHERE queue = 'main' AND visible_at > ?1),
       (SELECT MIN(sent_at) FROM messages WHERE queue = 'main'),
       (SELECT COUNT(*) FROM messages WHERE queue = 'dlq')";

/// File name of the queue inside the data directory.
pub const QUEUE_FILE: &str = "queue.db";

/// How often a long poll re-checks the table when no local publish wakes it (messages
/// published by another process, or whose visibility timeout expired).
const POLL_INTERVAL: Duration = Duration::from_millis(200);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/queue");

mod writer;

use writer::*;
pub use writer::{
    CLAIM_ONE, DEAD_LETTER_ONE, DELETE_RECEIVED, SET_VISIBLE, STATEMENT_CACHE, claim_candidates,
};

/// The on-disk queue. Cheap to clone; clones share the readers and the writer.
#[derive(Clone)]
pub struct EmbeddedQueue {
    /// Readers (stats, peek, readiness).
    readers: Arc<Readers>,
    /// The one connection every write goes through (upkeep and redrive directly, the rest
    /// through the group-commit task in front of it).
    writer: Writer,
    writes: mpsc::Sender<Op>,
    notify: Arc<Notify>,
    max_bytes: u64,
    path: PathBuf,
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

/// What to do about a damaged `queue.db`, and what moving it aside loses.
pub fn damaged_what_to_do(path: &Path) -> String {
    crate::sqlite::what_to_do(
        path,
        "the messages accepted but not yet stored (the backlog and those in flight) and the \
         dead-letter queue; the records already stored in records.db are not affected",
    )
}

impl EmbeddedQueue {
    /// Opens (creating if needed) the queue in `data_dir`.
    pub async fn open(data_dir: &Path, config: &QueueConfig) -> Result<Self> {
        let path = crate::sqlite::prepare(data_dir, QUEUE_FILE, &MIGRATOR)
            .await
            .map_err(|e| match e {
                crate::sqlite::PrepareError::Damaged { ref path, .. } => {
                    Error::Damaged(format!("{e}\n{}", damaged_what_to_do(path)))
                }
                e => Error::Config(e.to_string()),
            })?
            .path;
        let open_error =
            |e: std::io::Error| Error::Config(format!("cannot open queue {}: {e}", path.display()));
        let conn = crate::sqlite::connect(&path, Some(JOURNAL_SIZE_LIMIT)).map_err(|e| {
            match crate::sqlite::open_damaged(&path, &e, damaged_what_to_do) {
                Some(message) => Error::Damaged(message),
                None => open_error(std::io::Error::other(e)),
            }
        })?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let writer = Writer::spawn("queue-writer", conn).map_err(open_error)?;
        let (tx, rx) = mpsc::channel(16 * 1024);
        let notify = Arc::new(Notify::new());
        tokio::spawn(group_commit_writer(
            writer.clone(),
            rx,
            notify.clone(),
            config.clone(),
        ));
        Ok(Self {
            readers: Readers::new(path.clone(), 2),
            writer,
            writes: tx,
            notify,
            max_bytes: config.max_bytes,
            path,
        })
    }

    /// Removes messages older than their queue's retention. Returns how many.
    pub async fn expire(&self, config: &QueueConfig) -> Result<u64> {
        let config = config.clone();
        self.writer
            .run(move |conn| expire(conn, &config))
            .await
            .map_err(unavailable)?
            .map_err(unavailable)
    }

    /// Where the queue lives on disk.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one write to the group-commit writer and waits for the commit that holds it.
    async fn write<T>(&self, op: impl FnOnce(oneshot::Sender<Result<T>>) -> Op) -> Result<T> {
        let (done, wait) = oneshot::channel();
        self.writes
            .send(op(done))
            .await
            .map_err(|_| Error::Unavailable("queue writer stopped".into()))?;
        wait.await
            .map_err(|_| Error::Unavailable("queue writer stopped".into()))?
    }

    /// Claims up to `max` visible messages of `queue`; on the main queue, first moves the
    /// messages that exhausted their receives to the DLQ.
    async fn claim(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>> {
        self.write(|done| Op::Claim {
            queue,
            max,
            visibility,
            done,
        })
        .await
    }

    /// Deletes the messages whose receipt is still current.
    async fn delete(&self, queue: QueueName, deliveries: &[&Delivery]) -> Result<AckReport> {
        let mut report = AckReport::default();
        if deliveries.is_empty() {
            return Ok(report);
        }
        let receipts = parse_receipts(deliveries);
        let deleted = self
            .write(|done| Op::Delete {
                queue,
                receipts,
                done,
            })
            .await?;
        for d in deliveries {
            match parse_receipt(&d.receipt) {
                Some((seq, _)) if deleted.contains(&seq) => report.acked += 1,
                Some(_) => report.failed.push((
                    d.message_id.clone(),
                    "receipt expired: the message was received again after its visibility timeout"
                        .into(),
                )),
                None => report
                    .failed
                    .push((d.message_id.clone(), "malformed receipt".into())),
            }
        }
        Ok(report)
    }

    /// Makes the messages visible again after `delay`.
    async fn set_visible(
        &self,
        queue: QueueName,
        deliveries: &[&Delivery],
        delay: Duration,
    ) -> Result<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let visible_at = now_ms().saturating_add(millis(delay));
        let receipts = parse_receipts(deliveries);
        self.write(|done| Op::SetVisible {
            queue,
            receipts,
            visible_at,
            done,
        })
        .await
    }
}

fn parse_receipts(deliveries: &[&Delivery]) -> Vec<(i64, String)> {
    deliveries
        .iter()
        .filter_map(|d| parse_receipt(&d.receipt))
        .map(|(seq, token)| (seq, token.to_owned()))
        .collect()
}

fn queue_label(queue: QueueName) -> &'static str {
    match queue {
        QueueName::Main => "main",
        QueueName::Dlq => "dlq",
    }
}

/// The columns a delivery is read from, in this order: seq, message_id, body, attributes,
/// sent_at, receive_count.
fn row_to_delivery(row: &rusqlite::Row<'_>, token: Option<&str>) -> rusqlite::Result<Delivery> {
    let seq: i64 = row.get(0)?;
    let attributes: String = row.get(3)?;
    let attributes: BTreeMap<String, String> = serde_json::from_str(&attributes).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            3,
            rusqlite::types::Type::Text,
            format!("queue row {seq} has corrupt attributes: {e}").into(),
        )
    })?;
    let sent_at: i64 = row.get(4)?;
    let receive_count: i64 = row.get(5)?;
    Ok(Delivery {
        message_id: row.get(1)?,
        // `seq:token` — the ack must present the token of the latest receive.
        receipt: token.map(|t| format!("{seq:020}:{t}")).unwrap_or_default(),
        body: row.get(2)?,
        attributes,
        receive_count: u32::try_from(receive_count).unwrap_or(u32::MAX),
        sent_at: DateTime::from_timestamp_millis(sent_at),
    })
}

fn parse_receipt(receipt: &str) -> Option<(i64, &str)> {
    let (seq, token) = receipt.split_once(':')?;
    Some((seq.parse().ok()?, token))
}

#[async_trait]
impl Publisher for EmbeddedQueue {
    async fn publish(&self, message: &OutboundMessage) -> Result<()> {
        let attributes =
            serde_json::to_string(&message.wire_attributes()).unwrap_or_else(|_| "{}".to_owned());
        self.write(|done| Op::Publish {
            message_id: Uuid::now_v7().to_string(),
            body: message.message.clone(),
            attributes,
            done,
        })
        .await
    }

    async fn ready(&self) -> Result<()> {
        if self.writes.is_closed() {
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
        self.readers
            .with(|conn| {
                conn.prepare_cached("SELECT 1 FROM messages LIMIT 1")?
                    .exists([])
            })
            .map_err(unavailable)?;
        Ok(())
    }

    async fn stats(&self) -> Result<QueueStats> {
        let now = now_ms();
        let (visible, in_flight, oldest, dead, bytes) = self
            .readers
            .blocking(move |conn| {
                let (visible, in_flight, oldest, dead) = conn.query_row(STATS, [now], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, Option<i64>>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })?;
                Ok((visible, in_flight, oldest, dead, used_bytes(conn)?))
            })
            .await
            .map_err(unavailable)?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(QueueStats {
            visible: count(visible),
            in_flight: count(in_flight),
            oldest_age_seconds: oldest.map(|t| (now - t).max(0) as f64 / 1000.0),
            dead_letter: count(dead),
            bytes: Some(bytes),
            capacity_bytes: Some(self.max_bytes),
        })
    }
}

#[async_trait]
impl QueueAdmin for EmbeddedQueue {
    /// The worker's batch on this queue (`worker.batch_size` 0): one claim, one commit.
    fn max_receive(&self) -> usize {
        100
    }

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
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        self.readers
            .blocking(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT seq, message_id, body, attributes, sent_at, receive_count FROM messages
                     WHERE queue = ?1 ORDER BY seq LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![queue_label(queue), limit], |row| {
                    row_to_delivery(row, None)
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await
            .map(Some)
            .map_err(unavailable)
    }

    async fn redrive(&self, max: usize) -> Result<u64> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let moved = self
            .writer
            .run(move |conn| {
                conn.execute(
                    "UPDATE messages SET queue = 'main', receive_count = 0, receipt = NULL, visible_at = ?1
                     WHERE seq IN (SELECT seq FROM messages WHERE queue = 'dlq' ORDER BY seq LIMIT ?2)",
                    params![now_ms(), limit],
                )
            })
            .await
            .map_err(unavailable)?
            .map_err(unavailable)?;
        self.notify.notify_waiters();
        Ok(moved as u64)
    }

    fn describe(&self, queue: QueueName) -> String {
        format!("{} ({})", self.path.display(), queue_label(queue))
    }
}
