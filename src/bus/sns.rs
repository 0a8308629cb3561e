//! Publishing to the SNS topic.
//!
//! SNS publish has its own small retry budget with full-jitter backoff (the SDK's retries
//! are off for it), so every retry is visible in `latamctl_retries_total` — the seed's
//! retry-rate SLI.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;

use super::{Error, OutboundMessage, Publisher, Result, classify};
use crate::aws::AwsClients;

fn retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::Unavailable(_) | Error::Throttled(_) | Error::Timeout(_)
    )
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
