//! The worker: receive a batch, insert it idempotently, commit, then acknowledge.
//!
//! At-least-once delivery becomes exactly-once effect because the insert skips ids that
//! exist and the ack comes only after the commit. Only a failure that belongs to one message
//! counts toward the dead-letter queue: a body that does not decode, or a row the database
//! refuses for its content (SQLSTATE class 22/23, found by retrying a refused batch row by
//! row). Every other failure is store-wide: the batch is held in flight (visibility
//! extended, receive count untouched), every poller stops receiving, and the held batch is
//! retried until it commits — a database that answers `SELECT 1` but refuses writes pauses
//! the worker instead of burning healthy messages into the dead-letter queue.
//!
//! A distributed store (Citus) can refuse only the rows of one node: its server answers
//! SQLSTATE class 08 ([`store::Error::NodeUnavailable`]). Such a batch is split, by the
//! node that holds each row when the store can tell ([`Store::placement`]), else in halves,
//! and each part is stored on its own. The parts that commit are acknowledged; the rest
//! are held in flight in memory (visibility extended, receive count untouched) and retried
//! by one task until their node takes writes again, while receiving goes on — bounded by
//! `worker.max_held_messages`, past which receiving waits. The gate does not close for a
//! node: the database itself answers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::bus::{DecodeError, Delivery, Queue, QueueStats};
use crate::config::WorkerConfig;
use crate::store::{self, Record, Store};

mod gate;
mod held;
pub use gate::StoreGate;
use held::HeldSet;
pub(crate) use held::{halves, plan};

/// What became of one batch.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Rows newly inserted.
    pub stored: u64,
    /// Messages whose row already existed (redeliveries).
    pub duplicates: u64,
    /// Message ids of deliveries that could not be decoded.
    pub poison: Vec<String>,
    /// Set when the insert failed store-wide (anything but a row the database refused for
    /// its content): every decodable message of the batch is then failed too.
    pub store_error: Option<store::Error>,
    /// Whether a write committed (proof the store takes writes).
    pub committed: bool,
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
    let refs: Vec<&Delivery> = batch.iter().collect();
    store_batch_refs(store, &refs).await
}

/// [`store_batch`] over borrowed deliveries (the worker retries a held subset).
pub async fn store_batch_refs(store: &dyn Store, batch: &[&Delivery]) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    let mut records: Vec<Record> = Vec::with_capacity(batch.len());
    // The delivery each record came from, index for index.
    let mut sources: Vec<&Delivery> = Vec::with_capacity(batch.len());
    let mut seen = HashSet::with_capacity(batch.len());
    for &delivery in batch {
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
    if records.is_empty() {
        return outcome;
    }
    // With traces on: one span per message carrying a trace context, continuing the trace
    // of the request that published it, open while its batch is inserted.
    let spans: Vec<tracing::Span> = if crate::telemetry::tracing_enabled() {
        sources
            .iter()
            .zip(&records)
            .filter_map(|(delivery, record)| {
                let parent = delivery.attributes.get(crate::bus::ATTR_TRACEPARENT)?;
                let span = tracing::info_span!(
                    "store",
                    otel.kind = "consumer",
                    otel.status_code = tracing::field::Empty,
                    transaction_id = %record.transaction_id,
                    messaging.batch.message_count = records.len(),
                    messaging.message.delivery_count = delivery.receive_count,
                );
                crate::telemetry::continue_trace(&span, parent);
                Some(span)
            })
            .collect()
    } else {
        Vec::new()
    };
    store_records(store, &records, &sources, &mut outcome).await;
    let status = if outcome.store_error.is_some() {
        "ERROR"
    } else {
        "OK"
    };
    for span in &spans {
        span.record("otel.status_code", status);
    }
    outcome
}

/// Inserts `records` (from `sources`, index for index) in one transaction, row by row when
/// the database refuses one of them.
async fn store_records(
    store: &dyn Store,
    records: &[Record],
    sources: &[&Delivery],
    outcome: &mut BatchOutcome,
) {
    match store.insert_batch(records).await {
        Ok(inserted) => {
            outcome.committed = true;
            outcome.count_stored(inserted, records)
        }
        Err(store::Error::Rejected(_)) => {
            // One row the database refuses must not hold back the rest: row by row.
            for (record, delivery) in records.iter().zip(sources) {
                match store.insert_batch(std::slice::from_ref(record)).await {
                    Ok(inserted) => {
                        outcome.committed = true;
                        outcome.count_stored(inserted, std::slice::from_ref(record))
                    }
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
}

fn report_rejected(delivery: &Delivery, reason: &str) {
    metrics::counter!(crate::metric::POISON_MESSAGES_TOTAL, "reason" => "rejected_by_store")
        .increment(1);
    tracing::warn!(
        message = crate::event::REJECTED_BY_STORE,
        message_id = %delivery.message_id,
        receive_count = delivery.receive_count,
        %reason,
    );
}

impl BatchOutcome {
    /// Counts a committed insert of `records`, of which `inserted` were new rows.
    fn count_stored(&mut self, inserted: u64, records: &[Record]) {
        let rows = records.len() as u64;
        self.stored += inserted;
        self.duplicates += rows - inserted;
        metrics::counter!(crate::metric::MESSAGES_STORED_TOTAL).increment(inserted);
        metrics::counter!(crate::metric::MESSAGES_DUPLICATE_TOTAL).increment(rows - inserted);
        observe_stored_ages(records, inserted as usize, chrono::Utc::now());
    }
}

/// The freshness SLI: each newly stored message's age when its row committed (`stored_at -
/// received_at`, POST to readable). When some rows of a batch already existed, the youngest
/// `inserted` ages are observed: a duplicate is a redelivery, older than the messages that
/// arrive with it, and it was readable since its first insert.
fn observe_stored_ages(records: &[Record], inserted: usize, now: chrono::DateTime<chrono::Utc>) {
    let histogram = metrics::histogram!(crate::metric::STORED_MESSAGE_AGE_SECONDS);
    for age in stored_ages(records, inserted, now) {
        histogram.record(age);
    }
}

fn stored_ages(
    records: &[Record],
    inserted: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<f64> {
    let mut ages: Vec<f64> = records
        .iter()
        .map(|r| {
            (now - r.received_at)
                .to_std()
                .map_or(0.0, |d| d.as_secs_f64())
        })
        .collect();
    if inserted < ages.len() {
        ages.sort_by(f64::total_cmp);
        ages.truncate(inserted);
    }
    ages
}

fn report_poison(delivery: &Delivery, error: &DecodeError) {
    metrics::counter!(crate::metric::POISON_MESSAGES_TOTAL, "reason" => error.kind()).increment(1);
    tracing::warn!(
        message = crate::event::POISON,
        message_id = %delivery.message_id,
        receive_count = delivery.receive_count,
        %error,
    );
}

/// What happened to one batch, for `latamctl_worker_batches_total{outcome}`.
#[derive(Default)]
struct Tally {
    /// Held store-wide (the gate closed) and retried.
    held: bool,
    /// Some messages held for a node that refuses writes.
    split_held: bool,
    poison: bool,
}

pub struct Worker {
    queue: Arc<dyn Queue>,
    store: Arc<dyn Store>,
    config: WorkerConfig,
    /// Closed while the store refuses writes: no poller receives then.
    gate: Arc<StoreGate>,
    /// Messages a node refused while others committed, retried by [`Worker::retry_held`].
    held: HeldSet,
}

impl Worker {
    pub fn new(queue: Arc<dyn Queue>, store: Arc<dyn Store>, config: WorkerConfig) -> Self {
        Self {
            queue,
            store,
            config,
            gate: Arc::new(StoreGate::default()),
            held: HeldSet::default(),
        }
    }

    /// The gate readiness reads: closed while the store refuses writes.
    pub fn gate(&self) -> Arc<StoreGate> {
        self.gate.clone()
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
        {
            let worker = worker.clone();
            let shutdown = shutdown.clone();
            loops.spawn(async move { worker.retry_held(shutdown).await });
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
            if !self.gate.wait_open(&shutdown).await {
                return;
            }
            if self.gate.held().0 >= self.config.max_held_messages.max(1) {
                // Bounded: wait for the held messages' node to take writes again.
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
                continue;
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
                    self.handle(batch, &shutdown).await;
                    failures = 0;
                    None
                }
                Err(error) => {
                    failures += 1;
                    metrics::counter!(crate::metric::WORKER_RECEIVE_ERRORS_TOTAL, "error_type" => error.kind())
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

    /// Stores and acknowledges one batch. On a store-wide failure the batch is held: its
    /// messages stay in flight (their visibility extended, their receive count untouched),
    /// receiving pauses, and the held batch itself is retried with backoff as the probe, so
    /// the gate reopens only when the very rows that failed commit. On shutdown a held
    /// batch is left in flight; it comes back after its visibility timeout. While a node
    /// refuses writes (or when one refuses this batch), the batch is stored around it
    /// ([`Worker::store_around`]).
    async fn handle(&self, batch: Vec<Delivery>, shutdown: &CancellationToken) {
        let started = Instant::now();
        metrics::histogram!(crate::metric::WORKER_BATCH_SIZE).record(batch.len() as f64);
        let mut pending: Vec<&Delivery> = batch.iter().collect();
        let mut attempt: u32 = 0;
        let mut tally = Tally::default();
        loop {
            let refusing = if tally.held {
                Default::default()
            } else {
                self.held.refusing_nodes()
            };
            let (rest, error) = if refusing.is_empty() {
                let outcome = store_batch_refs(self.store.as_ref(), &pending).await;
                let rest = self.release_poison(&pending, &outcome, &mut tally).await;
                let Some(error) = outcome.store_error else {
                    if outcome.committed {
                        self.gate.open();
                    }
                    self.ack(&rest).await;
                    break;
                };
                if !matches!(error, store::Error::NodeUnavailable(_)) {
                    (rest, error)
                } else {
                    match self
                        .store_around(rest, Some(&error), &refusing, &mut tally)
                        .await
                    {
                        None => break,
                        Some(store_wide) => store_wide,
                    }
                }
            } else {
                match self
                    .store_around(pending, None, &refusing, &mut tally)
                    .await
                {
                    None => break,
                    Some(store_wide) => store_wide,
                }
            };
            // Store-wide: not the messages' fault. Keep them, pause, retry them.
            tally.held = true;
            attempt += 1;
            self.gate.close(&error);
            metrics::counter!(crate::metric::RETRIES_TOTAL, "operation" => "insert").increment(1);
            let delay = self.retry_delay(attempt);
            // Invisible until well after the next attempt; no receive count is spent.
            self.release(&rest, delay + self.config.visibility_timeout)
                .await;
            tracing::debug!(message = "Holding a batch the store refused; retrying it.", count = rest.len(), attempt, delay_ms = delay.as_millis() as u64, %error);
            let reopened = self.gate.reopened.notified();
            tokio::select! {
                _ = shutdown.cancelled() => {
                    tracing::warn!(message = "Shutting down with a held batch; it stays in flight and is redelivered after its visibility timeout.", count = rest.len());
                    metrics::counter!(crate::metric::WORKER_BATCHES_TOTAL, "outcome" => "store_error").increment(1);
                    return;
                }
                // Another poller's write committed: the store is back, retry now.
                _ = reopened => {}
                _ = tokio::time::sleep(delay) => {}
            }
            pending = rest;
        }
        let result = if tally.split_held {
            "split"
        } else if tally.held {
            "recovered"
        } else if tally.poison {
            "partial"
        } else {
            "ok"
        };
        metrics::counter!(crate::metric::WORKER_BATCHES_TOTAL, "outcome" => result).increment(1);
        metrics::histogram!(crate::metric::WORKER_BATCH_DURATION_SECONDS)
            .record(started.elapsed().as_secs_f64());
    }

    /// The database answers, one node behind it does not: stores what the other nodes
    /// take, holds only that node's rows, and keeps receiving (bounded by
    /// `worker.max_held_messages`). `rest` is invisible for the held visibility at once,
    /// since the split may take long. Returns what to hold store-wide when the refusal is
    /// not one node's after all (nothing committed and no node to blame).
    async fn store_around<'a>(
        &self,
        rest: Vec<&'a Delivery>,
        first: Option<&store::Error>,
        skip: &std::collections::BTreeSet<String>,
        tally: &mut Tally,
    ) -> Option<(Vec<&'a Delivery>, store::Error)> {
        self.release(&rest, self.held_visibility()).await;
        self.held.claim(&rest, &self.gate);
        let split = self.split(&rest, first, skip).await;
        tally.poison |= split.poison;
        if split.committed {
            self.gate.open();
        }
        if split.store_wide()
            && let Some(error) = split.error.clone()
        {
            self.held.finish(&rest, &[], &self.gate);
            return Some((split.held.iter().map(|(d, _)| *d).collect(), error));
        }
        self.held.finish(&rest, &split.held, &self.gate);
        tally.split_held |= !split.held.is_empty();
        None
    }

    /// Releases the poison of `outcome` (a body that does not decode, a row the database
    /// refused) for redelivery after its backoff, toward the dead-letter queue; returns
    /// the rest of `batch`.
    async fn release_poison<'a>(
        &self,
        batch: &[&'a Delivery],
        outcome: &BatchOutcome,
        tally: &mut Tally,
    ) -> Vec<&'a Delivery> {
        let (poison, rest): (Vec<&Delivery>, Vec<&Delivery>) = batch
            .iter()
            .copied()
            .partition(|d| outcome.poison.contains(&d.message_id));
        for d in &poison {
            self.release(&[d], self.retry_delay(d.receive_count)).await;
        }
        tally.poison |= !poison.is_empty();
        rest
    }

    async fn ack(&self, rest: &[&Delivery]) {
        if rest.is_empty() {
            return;
        }
        match self.queue.ack(rest).await {
            Ok(report) => {
                for (message_id, reason) in &report.failed {
                    metrics::counter!(crate::metric::ACK_ERRORS_TOTAL).increment(1);
                    tracing::warn!(message = "Failed to acknowledge a stored message; its redelivery will be skipped as a duplicate.", %message_id, %reason);
                }
            }
            Err(error) => {
                metrics::counter!(crate::metric::ACK_ERRORS_TOTAL).increment(rest.len() as u64);
                tracing::warn!(message = "Failed to acknowledge stored messages; their redelivery will be skipped as duplicates.", %error, count = rest.len());
            }
        }
    }

    async fn release(&self, deliveries: &[&Delivery], delay: Duration) {
        if deliveries.is_empty() {
            return;
        }
        if let Err(error) = self.queue.release(deliveries, delay).await {
            // The visibility timeout brings them back anyway.
            tracing::warn!(message = "Failed to change the visibility of messages.", %error);
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
    crate::background::every(every, shutdown, || {
        let queue = queue.clone();
        async move {
            match queue.stats().await {
                Ok(stats) => set_queue_gauges(&stats),
                Err(error) => tracing::debug!(message = "Failed to read queue stats.", %error),
            }
        }
    })
    .await;
}

fn set_queue_gauges(stats: &QueueStats) {
    metrics::gauge!(crate::metric::QUEUE_DEPTH, "queue" => "main", "state" => "visible")
        .set(stats.visible as f64);
    metrics::gauge!(crate::metric::QUEUE_DEPTH, "queue" => "main", "state" => "in_flight")
        .set(stats.in_flight as f64);
    metrics::gauge!(crate::metric::QUEUE_DEPTH, "queue" => "dlq", "state" => "visible")
        .set(stats.dead_letter as f64);
    metrics::gauge!(crate::metric::QUEUE_OLDEST_MESSAGE_AGE_SECONDS)
        .set(stats.oldest_age_seconds.unwrap_or(0.0));
}

#[cfg(test)]
mod tests;
