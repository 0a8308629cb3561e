//! Consuming the SQS queue the topic fans out to, and administering its dead-letter queue
//! (the queue's redrive policy) for `drain`. SQS keeps the SDK's standard retries.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};

use super::{
    AckReport, Delivery, Error, Queue, QueueAdmin, QueueName, QueueStats, Result, SqsFields,
    classify,
};
use crate::aws::{AwsClients, SQS_MAX_WAIT_SECS};

/// SQS limits: 10 messages per receive/batch call, 20 s long polling, 12 h visibility.
const SQS_MAX_BATCH: usize = 10;
const SQS_MAX_VISIBILITY_SECS: u64 = 43_200;

/// Attributes to send again on redrive. SNS may add `ErrorCode`, `ErrorMessage` and
/// `RequestID` to what it dead-letters; SQS allows 10 attributes, so those go first when
/// the message would exceed it.
fn redrive_attributes(
    attributes: &BTreeMap<String, String>,
) -> impl Iterator<Item = (&String, &String)> {
    const SNS_ADDED: [&str; 3] = ["ErrorCode", "ErrorMessage", "RequestID"];
    let over = attributes.len() > 10;
    attributes
        .iter()
        .filter(move |(k, _)| !(over && SNS_ADDED.contains(&k.as_str())))
}

/// Indices of `batch` grouped so each group's bodies and attributes stay under SQS's
/// 256 KiB per-request limit (a message alone always forms a group).
fn size_groups(batch: &[Delivery]) -> Vec<Vec<usize>> {
    const LIMIT: usize = 256 * 1024 - 8 * 1024; // headroom for entry ids and data types
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut size = 0;
    for (i, d) in batch.iter().enumerate() {
        let bytes = d.body.len()
            + d.attributes
                .iter()
                .map(|(k, v)| k.len() + v.len() + "String".len())
                .sum::<usize>();
        match groups.last_mut() {
            Some(group) if size + bytes <= LIMIT && group.len() < SQS_MAX_BATCH => {
                group.push(i);
                size += bytes;
            }
            _ => {
                groups.push(vec![i]);
                size = bytes;
            }
        }
    }
    groups
}

/// Consumes the SQS queue (and administers its dead-letter queue).
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    dlq_url: Option<String>,
}

impl SqsQueue {
    pub fn new(clients: &AwsClients, queue_url: &str, dlq_url: Option<&str>) -> Self {
        Self::with_client(clients.sqs.clone(), queue_url, dlq_url)
    }

    /// With a client built elsewhere (tests use mocked clients).
    pub fn with_client(
        client: aws_sdk_sqs::Client,
        queue_url: &str,
        dlq_url: Option<&str>,
    ) -> Self {
        Self {
            client,
            queue_url: queue_url.to_owned(),
            dlq_url: dlq_url.map(str::to_owned),
        }
    }

    fn url(&self, queue: QueueName) -> Result<&str> {
        match queue {
            QueueName::Main => Ok(&self.queue_url),
            QueueName::Dlq => self.dlq_url.as_deref().ok_or_else(|| {
                Error::Config(
                    "no dead-letter queue configured: set aws.dlq_url (LATAMCTL_AWS_DLQ_URL)"
                        .into(),
                )
            }),
        }
    }

    async fn receive_url(
        &self,
        url: &str,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Delivery>> {
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, SQS_MAX_BATCH) as i32)
            .wait_time_seconds(wait.as_secs().min(SQS_MAX_WAIT_SECS) as i32)
            .visibility_timeout(visibility.as_secs().clamp(0, SQS_MAX_VISIBILITY_SECS) as i32)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| classify("sqs:ReceiveMessage", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let mut system = m.attributes.unwrap_or_default();
                Delivery::from(SqsFields {
                    receive_count: system
                        .remove(&MessageSystemAttributeName::ApproximateReceiveCount),
                    sent_timestamp: system.remove(&MessageSystemAttributeName::SentTimestamp),
                    attributes: m
                        .message_attributes
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.string_value)),
                    message_id: m.message_id.unwrap_or_default(),
                    receipt: m.receipt_handle.unwrap_or_default(),
                    body: m.body.unwrap_or_default(),
                })
            })
            .collect())
    }

    async fn delete_url(&self, url: &str, deliveries: &[&Delivery]) -> Result<AckReport> {
        let mut report = AckReport::default();
        for chunk in deliveries.chunks(SQS_MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&d.receipt)
                        .build()
                        .map_err(|e| Error::Rejected(e.to_string()))
                })
                .collect::<Result<Vec<_>>>()?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| classify("sqs:DeleteMessageBatch", e))?;
            report.acked += out.successful.len();
            for failed in out.failed {
                let idx: usize = failed.id.parse().unwrap_or(usize::MAX);
                let id = chunk
                    .get(idx)
                    .map(|d| d.message_id.clone())
                    .unwrap_or(failed.id);
                report.failed.push((
                    id,
                    format!("{}: {}", failed.code, failed.message.unwrap_or_default()),
                ));
            }
        }
        Ok(report)
    }

    async fn change_visibility(
        &self,
        url: &str,
        deliveries: &[&Delivery],
        delay: Duration,
    ) -> Result<()> {
        let secs = delay.as_secs().min(SQS_MAX_VISIBILITY_SECS) as i32;
        for chunk in deliveries.chunks(SQS_MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&d.receipt)
                        .visibility_timeout(secs)
                        .build()
                        .map_err(|e| Error::Rejected(e.to_string()))
                })
                .collect::<Result<Vec<_>>>()?;
            let out = self
                .client
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| classify("sqs:ChangeMessageVisibilityBatch", e))?;
            for failed in out.failed {
                // A message whose visibility did not change comes back at its old timeout:
                // a held one may be received again and spend a receive count.
                let message_id = failed
                    .id
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| chunk.get(i))
                    .map_or("unknown", |d| d.message_id.as_str());
                metrics::counter!(crate::metric::VISIBILITY_CHANGE_ERRORS_TOTAL, "code" => failed.code.clone())
                    .increment(1);
                tracing::warn!(
                    message = "Failed to change the visibility of a message.",
                    %message_id,
                    code = %failed.code,
                    reason = failed.message.as_deref().unwrap_or(""),
                );
            }
        }
        Ok(())
    }

    async fn approximate(&self, url: &str) -> Result<(u64, u64)> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| classify("sqs:GetQueueAttributes", e))?;
        let attrs = out.attributes.unwrap_or_default();
        let get = |name: QueueAttributeName| {
            attrs
                .get(&name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok((
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        ))
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Delivery>> {
        self.receive_url(&self.queue_url, max, wait, visibility)
            .await
    }

    async fn ack(&self, deliveries: &[&Delivery]) -> Result<AckReport> {
        self.delete_url(&self.queue_url, deliveries).await
    }

    async fn release(&self, deliveries: &[&Delivery], delay: Duration) -> Result<()> {
        self.change_visibility(&self.queue_url, deliveries, delay)
            .await
    }

    async fn ready(&self) -> Result<()> {
        self.client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("sqs:GetQueueAttributes", e))
    }

    async fn stats(&self) -> Result<QueueStats> {
        let (visible, in_flight) = self.approximate(&self.queue_url).await?;
        let dead_letter = match &self.dlq_url {
            Some(url) => self.approximate(url).await?.0,
            None => 0,
        };
        Ok(QueueStats {
            visible,
            in_flight,
            // SQS exposes the oldest message's age only as a CloudWatch metric.
            oldest_age_seconds: None,
            dead_letter,
            ..QueueStats::default()
        })
    }
}

#[async_trait]
impl QueueAdmin for SqsQueue {
    async fn receive_from(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>> {
        let url = self.url(queue)?.to_owned();
        self.receive_url(&url, max, Duration::from_secs(1), visibility)
            .await
    }

    async fn delete_from(&self, queue: QueueName, deliveries: &[&Delivery]) -> Result<AckReport> {
        let url = self.url(queue)?.to_owned();
        self.delete_url(&url, deliveries).await
    }

    async fn release_to(&self, queue: QueueName, deliveries: &[&Delivery]) -> Result<()> {
        let url = self.url(queue)?.to_owned();
        self.change_visibility(&url, deliveries, Duration::ZERO)
            .await
    }

    fn describe(&self, queue: QueueName) -> String {
        self.url(queue)
            .map(str::to_owned)
            .unwrap_or_else(|e| e.to_string())
    }

    /// Receive from the DLQ, send to the main queue, delete from the DLQ only what was sent:
    /// a failure leaves a message in the DLQ (or, at worst, in both — the store keeps one
    /// row per id), never nowhere.
    async fn redrive(&self, max: usize) -> Result<u64> {
        let dlq = self.url(QueueName::Dlq)?.to_owned();
        let mut moved = 0u64;
        let mut skipped = 0usize;
        while (moved as usize) + skipped < max {
            let batch = self
                .receive_url(
                    &dlq,
                    (max - moved as usize - skipped).min(SQS_MAX_BATCH),
                    Duration::from_secs(1),
                    Duration::from_secs(60),
                )
                .await?;
            if batch.is_empty() {
                break;
            }
            // SQS refuses what is outside the XML 1.0 character set: such a message stays in
            // the DLQ (invisible for this run) instead of failing the whole redrive.
            let (batch, unsendable): (Vec<Delivery>, Vec<Delivery>) =
                batch.into_iter().partition(|d| {
                    super::check_chars(&d.body).is_ok()
                        && d.attributes.values().all(|v| super::check_chars(v).is_ok())
                });
            for d in &unsendable {
                tracing::warn!(
                    message = "A dead-lettered message holds characters SQS cannot carry; it stays in the DLQ.",
                    message_id = %d.message_id,
                );
            }
            skipped += unsendable.len();
            if batch.is_empty() {
                continue;
            }
            // SendMessageBatch carries at most 256 KiB in total: pack by size.
            let mut sent_ok: Vec<&Delivery> = Vec::with_capacity(batch.len());
            for group in size_groups(&batch) {
                let entries = group
                    .iter()
                    .map(|&i| {
                        let d = &batch[i];
                        let attrs: HashMap<String, aws_sdk_sqs::types::MessageAttributeValue> =
                            redrive_attributes(&d.attributes)
                                .filter_map(|(k, v)| {
                                    aws_sdk_sqs::types::MessageAttributeValue::builder()
                                        .data_type("String")
                                        .string_value(v)
                                        .build()
                                        .ok()
                                        .map(|a| (k.clone(), a))
                                })
                                .collect();
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(&d.body)
                            .set_message_attributes((!attrs.is_empty()).then_some(attrs))
                            .build()
                            .map_err(|e| Error::Rejected(e.to_string()))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let sent = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| classify("sqs:SendMessageBatch", e))?;
                sent_ok.extend(
                    sent.successful
                        .iter()
                        .filter_map(|s| s.id.parse::<usize>().ok().and_then(|i| batch.get(i))),
                );
            }
            let report = self.delete_url(&dlq, &sent_ok).await?;
            moved += report.acked as u64;
            if sent_ok.len() < batch.len() {
                return Err(Error::Unavailable(format!(
                    "redrive stopped: {} of {} messages could not be sent to the main queue; they stay in the DLQ",
                    batch.len() - sent_ok.len(),
                    batch.len()
                )));
            }
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(body_len: usize) -> Delivery {
        Delivery {
            message_id: "m".into(),
            receipt: String::new(),
            body: "x".repeat(body_len),
            attributes: BTreeMap::from([("latamctl.topic".to_owned(), "t".to_owned())]),
            receive_count: 1,
            sent_at: None,
        }
    }

    #[test]
    fn redrive_drops_sns_error_attributes_only_when_over_the_limit() {
        let mut attrs: BTreeMap<String, String> =
            (0..8).map(|i| (format!("a{i}"), "v".to_owned())).collect();
        attrs.insert("ErrorCode".into(), "x".into());
        assert_eq!(
            redrive_attributes(&attrs).count(),
            9,
            "under the limit: kept"
        );
        attrs.insert("ErrorMessage".into(), "x".into());
        attrs.insert("RequestID".into(), "x".into());
        let kept: Vec<&String> = redrive_attributes(&attrs).map(|(k, _)| k).collect();
        assert_eq!(kept.len(), 8);
        assert!(kept.iter().all(|k| k.starts_with('a')));
    }

    #[test]
    fn redrive_batches_stay_under_the_request_limit() {
        let big: Vec<Delivery> = (0..4).map(|_| delivery(130 * 1024)).collect();
        assert_eq!(size_groups(&big), vec![vec![0], vec![1], vec![2], vec![3]]);
        let small: Vec<Delivery> = (0..10).map(|_| delivery(100)).collect();
        assert_eq!(size_groups(&small), vec![(0..10).collect::<Vec<_>>()]);
        let mixed = vec![delivery(100), delivery(200 * 1024), delivery(100 * 1024)];
        assert_eq!(size_groups(&mixed), vec![vec![0, 1], vec![2]]);
    }
}
