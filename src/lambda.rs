//! The worker as an SQS-triggered AWS Lambda.
//!
//! The event source mapping hands the function up to N SQS messages; the handler stores them
//! with the same [`store_batch`] as the long-running worker and answers with
//! `batchItemFailures` (the mapping is configured with `ReportBatchItemFailures`): only the
//! failed messages go back to the queue, and poison ones reach the DLQ through the queue's
//! redrive policy. The event types are defined here (a small, stable JSON shape) so the
//! handler is compiled and tested in every build; the `lambda` feature adds only the runtime
//! loop (`latamctl-lambda` binary).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use std::time::Duration;

use crate::bus::{Delivery, Queue, SqsFields};
use crate::store::{self, Store};
use crate::worker::{store_batch, store_batch_refs};

/// The SQS event a Lambda receives.
#[derive(Debug, Deserialize)]
pub struct SqsEvent {
    #[serde(rename = "Records")]
    pub records: Vec<SqsRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsRecord {
    pub message_id: String,
    #[serde(default)]
    pub receipt_handle: String,
    #[serde(default)]
    pub body: String,
    /// System attributes (`ApproximateReceiveCount`, `SentTimestamp`, ...).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub message_attributes: BTreeMap<String, SqsMessageAttribute>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsMessageAttribute {
    pub string_value: Option<String>,
    #[serde(default)]
    pub data_type: String,
}

/// The partial-batch answer.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SqsBatchResponse {
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    pub item_identifier: String,
}

impl From<SqsRecord> for Delivery {
    fn from(mut r: SqsRecord) -> Self {
        SqsFields {
            receive_count: r.attributes.remove("ApproximateReceiveCount"),
            sent_timestamp: r.attributes.remove("SentTimestamp"),
            attributes: r
                .message_attributes
                .into_iter()
                .map(|(k, v)| (k, v.string_value)),
            message_id: r.message_id,
            receipt: r.receipt_handle,
            body: r.body,
        }
        .into()
    }
}

/// Stores the event's messages; returns the ids that must be retried.
pub async fn handle(store: &dyn Store, event: SqsEvent) -> SqsBatchResponse {
    handle_with_hold(store, None, event).await
}

/// [`handle`], and on a store-wide failure (the database down, or refusing writes) keeps
/// the batch's healthy messages invisible for `hold.1` through `hold.0` before failing the
/// whole batch at once. When one database node refuses writes (a Citus worker down:
/// [`store::Error::NodeUnavailable`]), the other nodes' rows are stored and only that node's
/// messages fail (and are held), as the long-running worker does.
///
/// SQS counts a receive every time the event source mapping hands a message to the
/// function; without the hold a failed message comes back after the queue's visibility
/// timeout, so an outage of T seconds costs about T / visibility receives and a long one
/// dead-letters healthy messages. With the hold it costs T / hold
/// (`terraform/modules/lambda/README.md` has the arithmetic). Poison messages (undecodable,
/// or rows the database refuses) are not held: they reach the DLQ at the normal pace.
pub async fn handle_with_hold(
    store: &dyn Store,
    hold: Option<(&dyn Queue, Duration)>,
    event: SqsEvent,
) -> SqsBatchResponse {
    let batch: Vec<Delivery> = event.records.into_iter().map(Delivery::from).collect();
    handle_deliveries(store, hold, &batch).await
}

/// [`handle_with_hold`] on the event's messages.
pub(crate) async fn handle_deliveries(
    store: &dyn Store,
    hold: Option<(&dyn Queue, Duration)>,
    batch: &[Delivery],
) -> SqsBatchResponse {
    let outcome = store_batch(store, batch).await;
    let (mut poison, healthy): (Vec<&Delivery>, Vec<&Delivery>) = batch
        .iter()
        .partition(|d| outcome.poison.contains(&d.message_id));
    let refused = match outcome.store_error {
        None => Vec::new(),
        Some(error @ store::Error::NodeUnavailable(_)) => {
            let split = store_around_node(store, &healthy, error).await;
            if let Some(error) = &split.error {
                tracing::warn!(message = "A database node refused part of the batch; only its messages are retried.", %error, refused = split.refused.len(), stored = split.stored, count = batch.len());
            }
            poison.extend(
                healthy
                    .iter()
                    .filter(|d| split.poison.contains(&d.message_id)),
            );
            split.refused
        }
        Some(error) => {
            tracing::warn!(message = "Failed to store the batch; every message is retried.", %error, count = batch.len());
            healthy
        }
    };
    if !refused.is_empty()
        && let Some((queue, delay)) = hold
        && let Err(error) = queue.release(&refused, delay).await
    {
        tracing::warn!(message = "Failed to hold the batch; it returns after the queue's visibility timeout.", %error);
    }
    let failed: HashSet<&str> = poison
        .iter()
        .chain(&refused)
        .map(|d| d.message_id.as_str())
        .collect();
    SqsBatchResponse {
        batch_item_failures: batch
            .iter()
            .filter(|d| failed.contains(d.message_id.as_str()))
            .map(|d| BatchItemFailure {
                item_identifier: d.message_id.clone(),
            })
            .collect(),
    }
}

/// What [`store_around_node`] left.
#[derive(Default)]
struct NodeSplit<'a> {
    /// Healthy messages a node (or the database) still refuses.
    refused: Vec<&'a Delivery>,
    /// Message ids found poison on the way (rows the database refuses for their content).
    poison: Vec<String>,
    stored: u64,
    /// The last refusal, when something is still refused.
    error: Option<store::Error>,
}

/// Stores `deliveries`, which a node refused as one batch (`first`), part by part, as the
/// worker's split plans them ([`crate::worker::plan`]): by node when the store can tell, else
/// in halves (at most 2n − 1 inserts for n messages). A single part (every row on the node
/// that refused them) is not tried again. What commits is acknowledged by leaving it out of
/// the failures.
async fn store_around_node<'a>(
    store: &dyn Store,
    deliveries: &[&'a Delivery],
    first: store::Error,
) -> NodeSplit<'a> {
    let mut split = NodeSplit::default();
    let mut parts = match crate::worker::plan(store, deliveries, deliveries.len().max(1)).await {
        Ok(parts) if parts.len() > 1 => parts,
        Ok(_) => {
            split.refused = deliveries.to_vec();
            split.error = Some(first);
            return split;
        }
        Err(error) => {
            split.refused = deliveries.to_vec();
            split.error = Some(error);
            return split;
        }
    };
    while let Some(part) = parts.pop() {
        let outcome = store_batch_refs(store, &part.deliveries).await;
        split.stored += outcome.stored;
        let rest: Vec<&'a Delivery> = part
            .deliveries
            .iter()
            .copied()
            .filter(|d| !outcome.poison.contains(&d.message_id))
            .collect();
        split.poison.extend(outcome.poison);
        match outcome.store_error {
            None => {}
            Some(error)
                if matches!(error, store::Error::NodeUnavailable(_))
                    && part.halve_again(&error, rest.len()) =>
            {
                parts.extend(crate::worker::halves(&rest));
            }
            Some(error) => {
                split.refused.extend(rest);
                split.error = Some(error);
            }
        }
    }
    split
}
