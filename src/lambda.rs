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

use chrono::DateTime;
use serde::{Deserialize, Serialize};

use crate::bus::Delivery;
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
    fn from(r: SqsRecord) -> Self {
        Delivery {
            receive_count: r
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
            sent_at: r
                .attributes
                .get("SentTimestamp")
                .and_then(|v| v.parse::<i64>().ok())
                .and_then(DateTime::from_timestamp_millis),
            attributes: r
                .message_attributes
                .into_iter()
                .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
                .collect(),
            message_id: r.message_id,
            receipt: r.receipt_handle,
            body: r.body,
        }
    }
}

/// Stores the event's messages; returns the ids that must be retried.
pub async fn handle(store: &dyn Store, event: SqsEvent) -> SqsBatchResponse {
    let batch: Vec<Delivery> = event.records.into_iter().map(Delivery::from).collect();
    let outcome = store_batch(store, &batch).await;
    if let Some(error) = &outcome.store_error {
        tracing::warn!(message = "Failed to store the batch; every message is retried.", %error, count = batch.len());
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
