//! Messages held for a database node that refuses writes while the others take theirs
//! (a dead Citus worker): the split of a refused batch, the held set, and its retry task.

use super::{Worker, store_batch_refs};
use crate::bus::Delivery;
use crate::store;
use tokio_util::sync::CancellationToken;

/// What became of a batch split after a node refused it.
pub(super) struct Split<'a> {
    /// Refused by their node: to be held.
    pub(super) held: Vec<&'a Delivery>,
    /// Whether any part committed (the store takes writes elsewhere).
    pub(super) committed: bool,
    pub(super) poison: bool,
    /// The last refusal, for the gate's log line and the node's name.
    pub(super) error: Option<store::Error>,
}

impl Worker {
    /// Stores `deliveries` part by part: grouped by the node of each row when the store
    /// can tell (a group a node refuses is that node's), else in halves down to single
    /// messages. Acknowledges what commits; returns what a node refused.
    pub(super) async fn split<'a>(&self, deliveries: &[&'a Delivery]) -> Split<'a> {
        let mut split = Split {
            held: Vec::new(),
            committed: false,
            poison: false,
            error: None,
        };
        let ids: Vec<uuid::Uuid> = deliveries
            .iter()
            .map(|d| d.decode().map(|r| r.transaction_id).unwrap_or_default())
            .collect();
        // (group, whether to halve it further when a node refuses it)
        let mut parts: Vec<(Vec<&Delivery>, bool)> = match self.store.placement(&ids).await {
            Some(nodes) => {
                let mut by_node: std::collections::BTreeMap<String, Vec<&Delivery>> =
                    Default::default();
                for (d, node) in deliveries.iter().zip(nodes) {
                    by_node.entry(node).or_default().push(d);
                }
                by_node.into_values().map(|g| (g, false)).collect()
            }
            None => halves(deliveries),
        };
        while let Some((part, halve)) = parts.pop() {
            let outcome = store_batch_refs(self.store.as_ref(), &part).await;
            let (poison, rest): (Vec<&Delivery>, Vec<&Delivery>) = part
                .iter()
                .copied()
                .partition(|d| outcome.poison.contains(&d.message_id));
            for d in &poison {
                self.release(&[d], self.retry_delay(d.receive_count)).await;
            }
            split.poison |= !poison.is_empty();
            match outcome.store_error {
                None => {
                    split.committed |= outcome.committed;
                    self.ack(&rest).await;
                }
                Some(store::Error::NodeUnavailable(_)) if halve && rest.len() > 1 => {
                    parts.extend(halves(&rest));
                }
                Some(error) => {
                    split.held.extend(rest);
                    split.error = Some(error);
                }
            }
        }
        split
    }

    /// Adds `deliveries` to the held set, invisible until well after the next retry.
    pub(super) async fn hold(&self, deliveries: &[&Delivery], error: &store::Error) {
        if deliveries.is_empty() {
            return;
        }
        // The retry task may be mid-round: invisible past its longest delay.
        self.release(
            deliveries,
            self.config.retry_max_delay + self.config.visibility_timeout,
        )
        .await;
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(deliveries.iter().map(|d| (*d).clone()));
        // Mid-round the retry task has taken the set out: the count is the gate's plus these.
        let count = self.gate.held().0 + deliveries.len();
        self.gate.set_held(count, error.node().map(str::to_owned));
        tracing::debug!(message = "Holding messages a database node refused.", count = deliveries.len(), %error);
        self.held_added.notify_one();
    }

    /// Retries the held messages with backoff until each is stored, extending their
    /// visibility each round (their receive count is never spent). On shutdown they stay in
    /// flight and come back after their visibility timeout.
    pub(super) async fn retry_held(&self, shutdown: CancellationToken) {
        let mut attempt: u32 = 0;
        loop {
            let empty = self
                .held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty();
            if empty {
                attempt = 0;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.held_added.notified() => {}
                }
            }
            attempt += 1;
            let delay = self.retry_delay(attempt);
            // Invisible until well after this attempt.
            let batch: Vec<Delivery> =
                std::mem::take(&mut *self.held.lock().unwrap_or_else(|e| e.into_inner()));
            let refs: Vec<&Delivery> = batch.iter().collect();
            self.release(&refs, delay + self.config.visibility_timeout)
                .await;
            tokio::select! {
                _ = shutdown.cancelled() => {
                    tracing::warn!(message = "Shutting down with held messages; they stay in flight and are redelivered after their visibility timeout.", count = batch.len());
                    return;
                }
                _ = tokio::time::sleep(delay) => {}
            }
            metrics::counter!(crate::metric::RETRIES_TOTAL, "operation" => "insert").increment(1);
            let mut still: Vec<&Delivery> = Vec::new();
            let mut last_error = None;
            let size = self.config.batch_size.max(1);
            let mut extended = std::time::Instant::now();
            for (n, chunk) in refs.chunks(size).enumerate() {
                // A long round (many chunks, a slow database): keep what is still held and
                // what is not tried yet invisible, so none is received again meanwhile.
                if extended.elapsed() > self.config.visibility_timeout / 2 {
                    let mut keep: Vec<&Delivery> = still.clone();
                    keep.extend(&refs[n * size..]);
                    self.release(
                        &keep,
                        self.config.retry_max_delay + self.config.visibility_timeout,
                    )
                    .await;
                    extended = std::time::Instant::now();
                }
                let outcome = store_batch_refs(self.store.as_ref(), chunk).await;
                let (poison, rest): (Vec<&Delivery>, Vec<&Delivery>) = chunk
                    .iter()
                    .copied()
                    .partition(|d| outcome.poison.contains(&d.message_id));
                for d in &poison {
                    self.release(&[d], self.retry_delay(d.receive_count)).await;
                }
                match outcome.store_error {
                    None => {
                        if outcome.committed {
                            self.gate.open();
                        }
                        self.ack(&rest).await;
                    }
                    Some(store::Error::NodeUnavailable(_)) if rest.len() > 1 => {
                        let split = self.split(&rest).await;
                        if split.committed {
                            self.gate.open();
                        }
                        still.extend(split.held);
                        last_error = split.error.or(last_error);
                    }
                    Some(error) => {
                        still.extend(rest);
                        last_error = Some(error);
                    }
                }
            }
            let kept: Vec<Delivery> = still.into_iter().cloned().collect();
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            held.extend(kept);
            let node = last_error
                .as_ref()
                .and_then(|e| e.node().map(str::to_owned));
            let count = held.len();
            drop(held);
            self.gate.set_held(count, node);
        }
    }
}

/// `deliveries` in two halves, each to be halved again if a node refuses it.
fn halves<'a>(deliveries: &[&'a Delivery]) -> Vec<(Vec<&'a Delivery>, bool)> {
    let (a, b) = deliveries.split_at(deliveries.len() / 2);
    [a, b]
        .into_iter()
        .filter(|h| !h.is_empty())
        .map(|h| (h.to_vec(), true))
        .collect()
}
