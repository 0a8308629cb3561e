//! The worker: receive a batch, insert it idempotently, commit, then acknowledge.
//!
//! At-least-once delivery becomes exactly-once effect because the insert skips ids that
//! exist and the ack comes only after the commit. A message that cannot be decoded is never
//! acknowledged: it is retried with backoff until the queue moves it to the dead-letter
//! queue, and so is a row the database refuses (found by retrying a refused batch row by
//! row). When the store is down, the batch goes back to the queue and every poller stops
//! receiving until the store answers again: a database outage pauses the worker instead of
//! burning the messages' receive counts into the dead-letter queue.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::bus::{DecodeError, Delivery, Queue, QueueStats};
use crate::config::WorkerConfig;
use crate::store::{self, Record, Store};

/// What became of one batch.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Rows newly inserted.
    pub stored: u64,
    /// Messages whose row already existed (redeliveries).
    pub duplicates: u64,
    /// Message ids of deliveries that could not be decoded.
    pub poison: Vec<String>,
    /// Set when the insert failed: every decodable message of the batch is then failed too.
    pub store_error: Option<store::Error>,
}

impl BatchOutcome {
    /// Message ids that must not be acknowledged (for SQS `batchItemFailures`).
    pub fn failed_ids<'a>(&self, batch: &'a [Delivery]) -> Vec<&'a str> {
        batch
            .iter()
            .filter(|d| self.store_error.is_some() || self.poison.contains(&d.message_id))
            .map(|d| d.message_id.as_str())
            .collect()
    }
}

/// Decodes a batch and inserts what decodes, in one transaction. Shared by the long-running
/// worker and the Lambda handler.
pub async fn store_batch(store: &dyn Store, batch: &[Delivery]) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    let mut records: Vec<Record> = Vec::with_capacity(batch.len());
    // The delivery each record came from, index for index.
    let mut sources: Vec<&Delivery> = Vec::with_capacity(batch.len());
    let mut seen = HashSet::with_capacity(batch.len());
    for delivery in batch {
        match delivery.decode() {
            Ok(record) => {
                // The same id twice in one batch (a republished message): insert it once.
                if seen.insert(record.transaction_id) {
                    records.push(record);
                    sources.push(delivery);
                } else {
                    outcome.duplicates += 1;
                }
            }
            Err(error) => {
                report_poison(delivery, &error);
                outcome.poison.push(delivery.message_id.clone());
            }
        }
    }
    match store.insert_batch(&records).await {
        Ok(inserted) => outcome.count_stored(inserted, records.len()),
        Err(store::Error::Rejected(_)) => {
            // One row the database refuses must not hold back the rest: row by row.
            for (record, delivery) in records.iter().zip(&sources) {
                match store.insert_batch(std::slice::from_ref(record)).await {
                    Ok(inserted) => outcome.count_stored(inserted, 1),
                    Err(store::Error::Rejected(reason)) => {
                        report_rejected(delivery, &reason);
                        outcome.poison.push(delivery.message_id.clone());
                    }
                    Err(error) => {
                        outcome.store_error = Some(error);
                        break;
                    }
                }
            }
        }
        Err(error) => outcome.store_error = Some(error),
    }
    outcome
}

fn report_rejected(delivery: &Delivery, reason: &str) {
    metrics::counter!("latamctl_poison_messages_total", "reason" => "rejected_by_store")
        .increment(1);
    tracing::warn!(
        message = "The database refused a message; it will reach the dead-letter queue.",
        message_id = %delivery.message_id,
        receive_count = delivery.receive_count,
        %reason,
    );
}

impl BatchOutcome {
    fn count_stored(&mut self, inserted: u64, rows: usize) {
        self.stored += inserted;
        self.duplicates += rows as u64 - inserted;
        metrics::counter!("latamctl_messages_stored_total").increment(inserted);
        metrics::counter!("latamctl_messages_duplicate_total").increment(rows as u64 - inserted);
    }
}

fn report_poison(delivery: &Delivery, error: &DecodeError) {
    metrics::counter!("latamctl_poison_messages_total", "reason" => error.kind()).increment(1);
    tracing::warn!(
        message = "Received a message that cannot be decoded; it will reach the dead-letter queue.",
        message_id = %delivery.message_id,
        receive_count = delivery.receive_count,
        %error,
    );
}

pub struct Worker {
    queue: Arc<dyn Queue>,
    store: Arc<dyn Store>,
    config: WorkerConfig,
    /// Closed while the store is down: no poller receives then.
    store_gate: StoreGate,
}

/// Shared by the pollers: the first to see the store fail probes it until it answers; the
/// others wait instead of receiving (and failing) more batches.
#[derive(Default)]
struct StoreGate {
    down: std::sync::atomic::AtomicBool,
    probing: tokio::sync::Mutex<()>,
    reopened: tokio::sync::Notify,
}

impl Worker {
    pub fn new(queue: Arc<dyn Queue>, store: Arc<dyn Store>, config: WorkerConfig) -> Self {
        Self {
            queue,
            store,
            config,
            store_gate: StoreGate::default(),
        }
    }

    /// Runs `concurrency` receive loops until `shutdown`; in-flight batches finish first.
    pub async fn run(self, shutdown: CancellationToken) {
        let worker = Arc::new(self);
        let mut loops = tokio::task::JoinSet::new();
        for poller in 0..worker.config.concurrency {
            let worker = worker.clone();
            let shutdown = shutdown.clone();
            loops.spawn(async move { worker.poll(poller, shutdown).await });
        }
        tracing::info!(
            message = "Worker started.",
            pollers = worker.config.concurrency,
            batch_size = worker.config.batch_size
        );
        while loops.join_next().await.is_some() {}
        tracing::info!(message = "Worker stopped.");
    }

    async fn poll(&self, poller: usize, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        loop {
            if self.store_gate.down.load(Ordering::SeqCst) && !self.wait_for_store(&shutdown).await
            {
                return;
            }
            let received = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                r = self.queue.receive(
                    self.config.batch_size,
                    self.config.wait_time,
                    self.config.visibility_timeout,
                ) => r,
            };
            let pause = match received {
                Ok(batch) if batch.is_empty() => {
                    failures = 0;
                    None
                }
                Ok(batch) => {
                    if !self.handle(batch).await {
                        self.store_gate.down.store(true, Ordering::SeqCst);
                    }
                    failures = 0;
                    None
                }
                Err(error) => {
                    failures += 1;
                    metrics::counter!("latamctl_worker_receive_errors_total", "error_type" => error.kind())
                        .increment(1);
                    tracing::warn!(message = "Failed to receive from the queue.", poller, %error);
                    Some(self.retry_delay(failures))
                }
            };
            if let Some(pause) = pause {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }

    /// Blocks receiving while the store is down: one poller probes `store.ready()` with
    /// backoff, the others wait for it. Returns false on shutdown.
    async fn wait_for_store(&self, shutdown: &CancellationToken) -> bool {
        let gate = &self.store_gate;
        let Ok(_probe) = gate.probing.try_lock() else {
            // Another poller is probing: wait for it to reopen the gate.
            while gate.down.load(Ordering::SeqCst) {
                let reopened = gate.reopened.notified();
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = reopened => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            return true;
        };
        metrics::gauge!("latamctl_worker_paused").set(1.0);
        tracing::warn!(message = "The store is unavailable; receiving is paused until it answers.");
        let mut attempt = 0;
        loop {
            attempt += 1;
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(self.retry_delay(attempt)) => {}
            }
            match self.store.ready().await {
                Ok(()) => break,
                Err(error) => {
                    tracing::debug!(message = "The store is still unavailable.", attempt, %error)
                }
            }
        }
        gate.down.store(false, Ordering::SeqCst);
        gate.reopened.notify_waiters();
        metrics::gauge!("latamctl_worker_paused").set(0.0);
        tracing::info!(
            message = "The store answers again; receiving resumes.",
            probes = attempt
        );
        true
    }

    /// Stores and acknowledges one batch. Returns false when the store failed.
    async fn handle(&self, batch: Vec<Delivery>) -> bool {
        let started = Instant::now();
        metrics::histogram!("latamctl_worker_batch_size").record(batch.len() as f64);
        let outcome = store_batch(self.store.as_ref(), &batch).await;

        let (poison, rest): (Vec<&Delivery>, Vec<&Delivery>) = batch
            .iter()
            .partition(|d| outcome.poison.contains(&d.message_id));
        for d in &poison {
            self.release(&[d], self.retry_delay(d.receive_count)).await;
        }

        let ok = match &outcome.store_error {
            None => {
                match self.queue.ack(&rest).await {
                    Ok(report) => {
                        for (message_id, reason) in &report.failed {
                            metrics::counter!("latamctl_ack_errors_total").increment(1);
                            tracing::warn!(message = "Failed to acknowledge a stored message; its redelivery will be skipped as a duplicate.", %message_id, %reason);
                        }
                    }
                    Err(error) => {
                        metrics::counter!("latamctl_ack_errors_total").increment(rest.len() as u64);
                        tracing::warn!(message = "Failed to acknowledge stored messages; their redelivery will be skipped as duplicates.", %error, count = rest.len());
                    }
                }
                true
            }
            Some(error) => {
                metrics::counter!("latamctl_retries_total", "operation" => "insert").increment(1);
                let attempts = rest.iter().map(|d| d.receive_count).max().unwrap_or(1);
                tracing::warn!(message = "Failed to store a batch; it goes back to the queue.", %error, count = rest.len(), receive_count = attempts);
                // Visible again soon: receiving stays paused until the store answers anyway.
                self.release(&rest, self.config.retry_base_delay).await;
                false
            }
        };
        let result = if !ok {
            "store_error"
        } else if poison.is_empty() {
            "ok"
        } else {
            "partial"
        };
        metrics::counter!("latamctl_worker_batches_total", "outcome" => result).increment(1);
        metrics::histogram!("latamctl_worker_batch_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        ok
    }

    async fn release(&self, deliveries: &[&Delivery], delay: Duration) {
        if deliveries.is_empty() {
            return;
        }
        if let Err(error) = self.queue.release(deliveries, delay).await {
            // The visibility timeout brings them back anyway.
            tracing::warn!(message = "Failed to release messages back to the queue.", %error);
        }
    }

    /// `retry_base_delay × 2^(attempt-1)`, capped at `retry_max_delay`.
    fn retry_delay(&self, attempt: u32) -> Duration {
        backoff(
            self.config.retry_base_delay,
            self.config.retry_max_delay,
            attempt,
        )
    }
}

/// Exponential backoff: `base × 2^(attempt-1)`, capped at `max`.
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    base.saturating_mul(1u32 << exp).min(max)
}

/// Publishes queue figures as gauges every `every` until `shutdown`.
pub async fn report_queue_stats(
    queue: Arc<dyn Queue>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match queue.stats().await {
            Ok(stats) => set_queue_gauges(&stats),
            Err(error) => tracing::debug!(message = "Failed to read queue stats.", %error),
        }
    }
}

fn set_queue_gauges(stats: &QueueStats) {
    metrics::gauge!("latamctl_queue_depth", "queue" => "main", "state" => "visible")
        .set(stats.visible as f64);
    metrics::gauge!("latamctl_queue_depth", "queue" => "main", "state" => "in_flight")
        .set(stats.in_flight as f64);
    metrics::gauge!("latamctl_queue_depth", "queue" => "dlq", "state" => "visible")
        .set(stats.dead_letter as f64);
    metrics::gauge!("latamctl_queue_oldest_message_age_seconds")
        .set(stats.oldest_age_seconds.unwrap_or(0.0));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::OutboundMessage;
    use crate::store::{KeyReservation, StoreStats, StoredRecord};
    use async_trait::async_trait;
    use std::sync::Mutex;
    use uuid::Uuid;

    /// A store that refuses the rows of `refused` ids (as PostgreSQL does with SQLSTATE
    /// 22xxx), or is down altogether; it records what it stored.
    #[derive(Default)]
    struct PickyStore {
        refused: Vec<Uuid>,
        down: bool,
        stored: Mutex<Vec<Uuid>>,
    }

    #[async_trait]
    impl Store for PickyStore {
        fn kind(&self) -> &'static str {
            "picky"
        }
        async fn insert_batch(&self, records: &[Record]) -> store::Result<u64> {
            if self.down {
                return Err(store::Error::Unavailable("down".into()));
            }
            if records
                .iter()
                .any(|r| self.refused.contains(&r.transaction_id))
            {
                return Err(store::Error::Rejected("invalid byte sequence".into()));
            }
            self.stored
                .lock()
                .unwrap()
                .extend(records.iter().map(|r| r.transaction_id));
            Ok(records.len() as u64)
        }
        async fn get(&self, _: Uuid) -> store::Result<Option<StoredRecord>> {
            Ok(None)
        }
        async fn reserve_key(&self, _: &str, _: &str, _: Uuid) -> store::Result<KeyReservation> {
            Err(store::Error::Unavailable("unused".into()))
        }
        async fn mark_published(&self, _: &str) -> store::Result<()> {
            Ok(())
        }
        async fn purge_keys(&self, _: chrono::DateTime<chrono::Utc>) -> store::Result<u64> {
            Ok(0)
        }
        async fn ready(&self) -> store::Result<()> {
            Ok(())
        }
        async fn stats(&self) -> store::Result<StoreStats> {
            Ok(StoreStats::default())
        }
    }

    fn delivery(id: &str) -> (Delivery, Uuid) {
        let m = OutboundMessage {
            transaction_id: Uuid::now_v7(),
            topic: "data-ingestion-topic".into(),
            message: "m".into(),
            attributes: Default::default(),
            received_at: chrono::Utc::now(),
        };
        let d = Delivery {
            message_id: id.into(),
            receipt: String::new(),
            body: m.message.clone(),
            attributes: m.wire_attributes(),
            receive_count: 1,
            sent_at: None,
        };
        (d, m.transaction_id)
    }

    #[tokio::test]
    async fn a_refused_row_is_poison_and_the_rest_of_its_batch_is_stored() {
        let (a, id_a) = delivery("a");
        let (b, id_b) = delivery("b");
        let (c, id_c) = delivery("c");
        let store = PickyStore {
            refused: vec![id_b],
            ..PickyStore::default()
        };
        let batch = vec![a, b, c];
        let outcome = store_batch(&store, &batch).await;
        assert!(outcome.store_error.is_none());
        assert_eq!(outcome.poison, vec!["b".to_owned()]);
        assert_eq!(outcome.stored, 2);
        assert_eq!(*store.stored.lock().unwrap(), vec![id_a, id_c]);
        assert_eq!(outcome.failed_ids(&batch), vec!["b"]);
    }

    #[tokio::test]
    async fn a_store_outage_fails_the_whole_batch() {
        let (a, _) = delivery("a");
        let (b, _) = delivery("b");
        let store = PickyStore {
            down: true,
            ..PickyStore::default()
        };
        let batch = vec![a, b];
        let outcome = store_batch(&store, &batch).await;
        assert!(matches!(
            outcome.store_error,
            Some(store::Error::Unavailable(_))
        ));
        assert_eq!(outcome.failed_ids(&batch), vec!["a", "b"]);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        assert_eq!(backoff(base, max, 0), base);
        assert_eq!(backoff(base, max, 1), base);
        assert_eq!(backoff(base, max, 2), Duration::from_millis(200));
        assert_eq!(backoff(base, max, 4), Duration::from_millis(800));
        assert_eq!(backoff(base, max, 5), max);
        assert_eq!(backoff(base, max, u32::MAX), max);
    }
}
