//! The cloud bus: publish to an SNS topic, consume from the SQS queue it fans out to.
//!
//! SNS publish has its own small retry budget with full-jitter backoff (the SDK's retries
//! are off for it), so every retry is visible in `latamctl_retries_total` — the seed's
//! retry-rate SLI. SQS keeps the SDK's standard retries. The dead-letter queue is the
//! queue's redrive policy; `drain` reads it through [`QueueAdmin`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use rand::Rng;

use super::{
    AckReport, Delivery, Error, OutboundMessage, Publisher, Queue, QueueAdmin, QueueName,
    QueueStats, Result, SqsFields,
};
use crate::config::AwsConfig;

/// SQS limits: 10 messages per receive/batch call, 20 s long polling, 12 h visibility.
const SQS_MAX_BATCH: usize = 10;
const SQS_MAX_WAIT_SECS: u64 = 20;
const SQS_MAX_VISIBILITY_SECS: u64 = 43_200;

/// Shared AWS configuration and clients.
#[derive(Clone)]
pub struct AwsClients {
    pub sdk: aws_config::SdkConfig,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    /// Region and endpoint from config, else the standard chain (`AWS_REGION`,
    /// `AWS_PROFILE`, `AWS_ENDPOINT_URL`). Fails up front when no region is known.
    pub async fn from_config(aws: &AwsConfig) -> Result<Self> {
        Ok(Self::from_sdk(crate::aws::load_sdk_config(aws).await?))
    }

    /// The bus's clients on an SDK configuration already loaded.
    pub fn from_sdk(sdk: aws_config::SdkConfig) -> Self {
        // Publish: fail fast, we retry ourselves.
        let sns_config = aws_sdk_sns::config::Builder::from(&sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(Duration::from_secs(4))
                    .build(),
            )
            .build();
        // Receive long-polls for up to 20 s: the attempt timeout must exceed it.
        let sqs_config = aws_sdk_sqs::config::Builder::from(&sdk)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(SQS_MAX_WAIT_SECS + 10))
                    .build(),
            )
            .build();
        Self {
            sns: aws_sdk_sns::Client::from_conf(sns_config),
            sqs: aws_sdk_sqs::Client::from_conf(sqs_config),
            sdk,
        }
    }
}

/// [`crate::aws::classify`] as a bus error.
fn classify<E>(
    operation: &str,
    err: aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> Error
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    crate::aws::classify(operation, err).into()
}

fn retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::Unavailable(_) | Error::Throttled(_) | Error::Timeout(_)
    )
}

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

/// Full-jitter backoff: uniform in `[0, 50 ms × 2^attempt]`, at most 1 s.
fn jittered(attempt: u32) -> Duration {
    let cap_ms = (50u64 << attempt.min(5)).min(1000);
    Duration::from_millis(rand::rng().random_range(0..=cap_ms))
}

/// How long a failed publish keeps the publisher not ready when no publish succeeds since.
/// Long enough to take a pod whose publishes fail out of rotation, short enough that it
/// comes back to try again (a probe that never sends traffic could never recover).
pub const PUBLISH_FAILURE_HOLD: Duration = Duration::from_secs(10);

/// Publishes to the SNS topic.
///
/// Readiness is passive: it is the outcome of the last real publish, so it needs no
/// permission beyond `sns:Publish` and costs SNS nothing. (`sns:GetTopicAttributes` would
/// need a grant the api role does not otherwise need, and a control-plane call per probe
/// per pod, throttled at a few dozen per second per account, can take every pod out.)
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
    attempts: u32,
    /// When the last publish failed, and how, unless one succeeded since.
    last_failure: std::sync::Mutex<Option<(std::time::Instant, &'static str)>>,
}

impl SnsPublisher {
    pub fn new(clients: &AwsClients, topic_arn: &str, attempts: u32) -> Self {
        Self::with_client(clients.sns.clone(), topic_arn, attempts)
    }

    /// With a client built elsewhere (tests use mocked clients).
    pub fn with_client(client: aws_sdk_sns::Client, topic_arn: &str, attempts: u32) -> Self {
        Self {
            client,
            topic_arn: topic_arn.to_owned(),
            attempts: attempts.max(1),
            last_failure: std::sync::Mutex::new(None),
        }
    }

    fn record_outcome(&self, outcome: &Result<()>) {
        let mut last = self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(()) => *last = None,
            // The message's own fault says nothing about SNS.
            Err(Error::Rejected(_)) => {}
            Err(e) => *last = Some((std::time::Instant::now(), e.kind())),
        }
    }

    async fn publish_once(
        &self,
        message: &str,
        attributes: &HashMap<String, aws_sdk_sns::types::MessageAttributeValue>,
    ) -> Result<()> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(message)
            .set_message_attributes(Some(attributes.clone()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("sns:Publish", e))
    }
}

#[async_trait]
impl Publisher for SnsPublisher {
    async fn publish(&self, message: &OutboundMessage) -> Result<()> {
        let mut attributes = HashMap::new();
        for (name, value) in message.wire_attributes() {
            let attr = aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| Error::Rejected(e.to_string()))?;
            attributes.insert(name, attr);
        }
        let outcome = self
            .publish_with_retries(&message.message, &attributes)
            .await;
        self.record_outcome(&outcome);
        outcome
    }

    async fn ready(&self) -> Result<()> {
        let last = *self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
        match last {
            Some((at, kind)) if at.elapsed() < PUBLISH_FAILURE_HOLD => {
                let detail = format!(
                    "the last publish to {} failed ({kind}) {:.1} s ago",
                    self.topic_arn,
                    at.elapsed().as_secs_f64()
                );
                Err(match kind {
                    "throttled" => Error::Throttled(detail),
                    "config" => Error::Config(detail),
                    _ => Error::Unavailable(detail),
                })
            }
            _ => Ok(()),
        }
    }
}

impl SnsPublisher {
    async fn publish_with_retries(
        &self,
        message: &str,
        attributes: &HashMap<String, aws_sdk_sns::types::MessageAttributeValue>,
    ) -> Result<()> {
        let mut attempt = 1;
        loop {
            match self.publish_once(message, attributes).await {
                Ok(()) => return Ok(()),
                Err(e) if retryable(&e) && attempt < self.attempts => {
                    metrics::counter!(crate::metric::RETRIES_TOTAL, "operation" => "publish")
                        .increment(1);
                    tracing::debug!(message = "Retrying SNS publish.", attempt, error = %e);
                    tokio::time::sleep(jittered(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
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
                tracing::debug!(message = "Failed to change visibility.", id = %failed.id, code = %failed.code);
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
