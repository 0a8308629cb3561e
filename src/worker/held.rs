//! Messages held for a database node that refuses writes while the others take theirs
//! (a dead or hung Citus worker): the split of a refused batch into parts, the held set,
//! the task that retries it, and the visibility that keeps every held message invisible.
//!
//! Visibility, the one rule: a held message is never received again while it is held.
//! - A poller that sees a node refuse its batch extends the batch at once, then splits it;
//!   a split (a poller's or a retry round's) re-extends what it has not stored yet every
//!   half visibility timeout, between parts (a part is bounded by the query timeout).
//! - Messages waiting between rounds are re-extended every half visibility timeout by the
//!   retry task, whatever its round is doing.
//!
//! Each extension reaches `retry_max_delay + visibility_timeout` ahead.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{StoreGate, Worker, store_batch_refs};
use crate::bus::Delivery;
use crate::store;

/// The held messages, by message id: waiting for the next retry round, or being tried now
/// (by a round, or by a poller splitting the batch it received). One lock covers the set
/// and the count the gate (readiness, the receive bound, the gauge) reads.
#[derive(Default)]
pub(super) struct HeldSet {
    entries: Mutex<HashMap<String, Entry>>,
    /// Messages were put back to wait: the retry task may have a round to run.
    waiting: tokio::sync::Notify,
}

struct Entry {
    delivery: Delivery,
    /// Being tried now: its visibility is the trier's to keep.
    busy: bool,
    /// The node that refused it, when known.
    node: Option<String>,
}

impl HeldSet {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `deliveries` as being tried now by the caller, who then calls [`finish`](Self::finish).
    pub(super) fn claim(&self, deliveries: &[&Delivery], gate: &StoreGate) {
        let mut entries = self.lock();
        for d in deliveries {
            entries.insert(
                d.message_id.clone(),
                Entry {
                    delivery: (*d).clone(),
                    busy: true,
                    node: None,
                },
            );
        }
        publish(&entries, gate);
    }

    /// Marks every waiting message as being tried and returns them.
    fn take(&self) -> Vec<Delivery> {
        let mut entries = self.lock();
        entries
            .values_mut()
            .filter(|e| !e.busy)
            .map(|e| {
                e.busy = true;
                e.delivery.clone()
            })
            .collect()
    }

    fn has_waiting(&self) -> bool {
        self.lock().values().any(|e| !e.busy)
    }

    /// The messages waiting between rounds (not being tried).
    fn waiting(&self) -> Vec<Delivery> {
        self.lock()
            .values()
            .filter(|e| !e.busy)
            .map(|e| e.delivery.clone())
            .collect()
    }

    /// Ends a try of `tried`: what `refused` names waits for the next round, the rest (stored,
    /// or released as poison) leaves the set.
    pub(super) fn finish(
        &self,
        tried: &[&Delivery],
        refused: &[(&Delivery, Option<String>)],
        gate: &StoreGate,
    ) {
        let mut entries = self.lock();
        for d in tried {
            entries.remove(&d.message_id);
        }
        for (d, node) in refused {
            entries.insert(
                d.message_id.clone(),
                Entry {
                    delivery: (*d).clone(),
                    busy: false,
                    node: node.clone(),
                },
            );
        }
        publish(&entries, gate);
        drop(entries);
        if !refused.is_empty() {
            self.waiting.notify_one();
        }
    }

    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The nodes known to refuse writes now: those that refused a message still held.
    pub(super) fn refusing_nodes(&self) -> BTreeSet<String> {
        self.lock()
            .values()
            .filter_map(|e| e.node.clone())
            .collect()
    }
}

/// The count and the nodes named, published under the set's lock so they never go back in
/// time.
fn publish(entries: &HashMap<String, Entry>, gate: &StoreGate) {
    let nodes: BTreeSet<&str> = entries.values().filter_map(|e| e.node.as_deref()).collect();
    let nodes = (!nodes.is_empty()).then(|| nodes.into_iter().collect::<Vec<_>>().join(", "));
    gate.set_held(entries.len(), nodes);
}

/// What became of deliveries stored part by part after a node refused them.
#[derive(Default)]
pub(super) struct Split<'a> {
    /// Refused, each with the node that refused it when known: to be held.
    pub(super) held: Vec<(&'a Delivery, Option<String>)>,
    /// Whether any part committed (the store takes writes elsewhere).
    pub(super) committed: bool,
    pub(super) poison: bool,
    /// The last refusal, for the gate's log line.
    pub(super) error: Option<store::Error>,
}

impl Split<'_> {
    /// Nothing committed and some refusal names no node: not one node's outage but the
    /// database's (a coordinator that hangs, one that cannot say where rows live).
    pub(super) fn store_wide(&self) -> bool {
        !self.committed && self.held.iter().any(|(_, node)| node.is_none())
    }
}

/// One part of a split: its deliveries, the node the store places them on (when it can
/// tell), and whether to halve it again if refused.
pub(crate) struct Part<'a> {
    pub(crate) deliveries: Vec<&'a Delivery>,
    pub(crate) node: Option<String>,
    halve: bool,
}

impl Part<'_> {
    /// Whether the `rest` of this part that `error` refused is halved and tried again: a
    /// part of unknown placement, or one refused by a node it was not placed on (the
    /// placement is stale: a shard moved), down to single messages.
    pub(crate) fn halve_again(&self, error: &store::Error, rest: usize) -> bool {
        let named = error.node();
        let elsewhere = self.node.is_some() && named.is_some() && named != self.node.as_deref();
        rest > 1 && (self.halve || elsewhere)
    }
}

/// The parts a batch a node refused is stored in (the worker's split and the Lambda's):
/// grouped by the node of each row when the store can tell (a group a node refuses is that
/// node's), else in halves down to single messages; at most `size` messages a part. An
/// error when the store cannot say where rows live.
pub(crate) async fn plan<'a>(
    store: &dyn store::Store,
    deliveries: &[&'a Delivery],
    size: usize,
) -> store::Result<Vec<Part<'a>>> {
    let ids: Vec<uuid::Uuid> = deliveries
        .iter()
        .map(|d| d.decode().map(|r| r.transaction_id).unwrap_or_default())
        .collect();
    Ok(match store.placement(&ids).await? {
        Some(nodes) => {
            let mut by_node: std::collections::BTreeMap<String, Vec<&Delivery>> =
                Default::default();
            for (d, node) in deliveries.iter().zip(nodes) {
                by_node.entry(node).or_default().push(d);
            }
            by_node
                .into_iter()
                .flat_map(|(node, group)| {
                    group
                        .chunks(size)
                        .map(|c| Part {
                            deliveries: c.to_vec(),
                            node: Some(node.clone()),
                            halve: false,
                        })
                        .collect::<Vec<_>>()
                })
                .collect()
        }
        None if deliveries.len() > size => deliveries
            .chunks(size)
            .map(|c| Part {
                deliveries: c.to_vec(),
                node: None,
                halve: true,
            })
            .collect(),
        None => halves(deliveries),
    })
}

impl Worker {
    /// Stores `deliveries` part by part: grouped by the node of each row when the store
    /// can tell (a group a node refuses is that node's), else in halves down to single
    /// messages, at most a batch per part. Acknowledges what commits and releases poison;
    /// returns what a node refused. `deliveries` were made invisible for
    /// [`held_visibility`](Self::held_visibility) just before. `first` is the refusal of all of `deliveries` as one
    /// batch, when the caller just saw it: a part that is all of them is not tried again.
    /// A part the store places on a node in `skip` (known to refuse writes now) is held
    /// without a try: a node that hangs would cost a query timeout per part.
    pub(super) async fn split<'a>(
        &self,
        deliveries: &[&'a Delivery],
        first: Option<&store::Error>,
        skip: &BTreeSet<String>,
    ) -> Split<'a> {
        let mut split = Split::default();
        // Unresolved (0, in tests) is SQS's batch.
        let size = match self.config.batch_size {
            0 => 10,
            n => n,
        };
        let mut parts = match plan(self.store.as_ref(), deliveries, size).await {
            Ok(parts) => parts,
            Err(error) => {
                // A distributed store that cannot say where rows live: nobody's node.
                split.held = deliveries.iter().map(|d| (*d, None)).collect();
                split.error = Some(error);
                return split;
            }
        };
        let whole = parts.len() == 1;
        let mut first = first.cloned().filter(|_| whole);
        let mut extended = Instant::now();
        while let Some(part) = parts.pop() {
            if let Some(node) = part.node.as_ref().filter(|n| skip.contains(*n)) {
                split
                    .held
                    .extend(part.deliveries.iter().map(|d| (*d, Some(node.clone()))));
                continue;
            }
            if extended.elapsed() > self.config.visibility_timeout / 2 {
                // A long split (many parts, a node that hangs each one until the query
                // timeout): keep what is refused and what is not tried yet invisible.
                let mut keep: Vec<&Delivery> = split.held.iter().map(|(d, _)| *d).collect();
                keep.extend(&part.deliveries);
                keep.extend(parts.iter().flat_map(|p| p.deliveries.iter().copied()));
                self.release(&keep, self.held_visibility()).await;
                extended = Instant::now();
            }
            let outcome = match first.take() {
                Some(error) => super::BatchOutcome {
                    store_error: Some(error),
                    ..Default::default()
                },
                None => store_batch_refs(self.store.as_ref(), &part.deliveries).await,
            };
            split.committed |= outcome.committed;
            let mut tally = super::Tally::default();
            let rest = self
                .release_poison(&part.deliveries, &outcome, &mut tally)
                .await;
            split.poison |= tally.poison;
            match outcome.store_error {
                None => self.ack(&rest).await,
                Some(error @ store::Error::NodeUnavailable(_)) => {
                    if part.halve_again(&error, rest.len()) {
                        parts.extend(halves(&rest));
                    } else {
                        let node = error.node().map(str::to_owned).or(part.node);
                        split
                            .held
                            .extend(rest.into_iter().map(|d| (d, node.clone())));
                        split.error = Some(error);
                    }
                }
                Some(error) => {
                    split.held.extend(rest.into_iter().map(|d| (d, None)));
                    split.error = Some(error);
                }
            }
        }
        split
    }

    /// How far ahead a held message's visibility is extended: past the longest retry delay.
    pub(super) fn held_visibility(&self) -> Duration {
        self.config.retry_max_delay + self.config.visibility_timeout
    }

    /// Retries the held messages with backoff until each is stored (their receive count is
    /// never spent), and keeps those waiting between rounds invisible. On shutdown they
    /// stay in flight and come back after their visibility timeout.
    pub(super) async fn retry_held(&self, shutdown: CancellationToken) {
        let every = (self.config.visibility_timeout / 2).max(Duration::from_millis(50));
        let mut extend = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        extend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let rounds = self.retry_rounds();
        tokio::pin!(rounds);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let count = self.held.len();
                    if count > 0 {
                        tracing::warn!(message = "Shutting down with held messages; they stay in flight and are redelivered after their visibility timeout.", count);
                    }
                    return;
                }
                () = &mut rounds => {}
                _ = extend.tick() => {
                    let waiting = self.held.waiting();
                    let refs: Vec<&Delivery> = waiting.iter().collect();
                    self.release(&refs, self.held_visibility()).await;
                }
            }
        }
    }

    /// One retry round after another, with backoff while a node keeps refusing.
    async fn retry_rounds(&self) {
        let mut attempt: u32 = 0;
        loop {
            let notified = self.held.waiting.notified();
            if !self.held.has_waiting() {
                attempt = 0;
                notified.await;
                continue;
            }
            attempt += 1;
            tokio::time::sleep(self.retry_delay(attempt)).await;
            let batch = self.held.take();
            if batch.is_empty() {
                continue;
            }
            metrics::counter!(crate::metric::RETRIES_TOTAL, "operation" => "insert").increment(1);
            let refs: Vec<&Delivery> = batch.iter().collect();
            // The split keeps them invisible from now on (the extender no longer does).
            self.release(&refs, self.held_visibility()).await;
            let split = self.split(&refs, None, &BTreeSet::new()).await;
            if split.committed {
                self.gate.open();
            } else if split.store_wide()
                && let Some(error) = &split.error
            {
                self.gate.close(error);
            }
            self.held.finish(&refs, &split.held, &self.gate);
        }
    }
}

/// `deliveries` in two halves, each to be halved again if a node refuses it.
pub(crate) fn halves<'a>(deliveries: &[&'a Delivery]) -> Vec<Part<'a>> {
    let (a, b) = deliveries.split_at(deliveries.len() / 2);
    [a, b]
        .into_iter()
        .filter(|h| !h.is_empty())
        .map(|h| Part {
            deliveries: h.to_vec(),
            node: None,
            halve: true,
        })
        .collect()
}
