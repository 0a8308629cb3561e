//! The worker as an SQS-triggered AWS Lambda.
//!
//! The event source mapping hands the function up to N SQS messages; the handler stores them
//! with the same [`store_batch`] as the long-running worker and answers with
//! `batchItemFailures` (the mapping is configured with `ReportBatchItemFailures`): only the
//! failed messages go back to the queue, and poison ones reach the DLQ through the queue's
//! redrive policy. The event types are defined here (a small, stable JSON shape) so the
//! handler is compiled and tested in every build; the `lambda` feature adds only the runtime
//! loop (`latamctl-lambda` binary).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use std::time::Duration;

use crate::bus::{Delivery, Queue, SqsFields};
use crate::store::Store;
use crate::worker::store_batch;

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
/// whole batch at once.
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
    let outcome = store_batch(store, &batch).await;
    if let Some(error) = &outcome.store_error {
        tracing::warn!(message = "Failed to store the batch; every message is retried.", %error, count = batch.len());
        if let Some((queue, delay)) = hold {
            let healthy: Vec<&Delivery> = batch
                .iter()
                .filter(|d| !outcome.poison.contains(&d.message_id))
                .collect();
            if let Err(error) = queue.release(&healthy, delay).await {
                tracing::warn!(message = "Failed to hold the batch; it returns after the queue's visibility timeout.", %error);
            }
        }
    }
    SqsBatchResponse {
        batch_item_failures: outcome
            .failed_ids(&batch)
            .into_iter()
            .map(|id| BatchItemFailure {
                item_identifier: id.to_owned(),
            })
            .collect(),
    }
}
