//! Publishing to the SNS topic.
//!
//! Publishes are coalesced like group commit: at most `aws.publish_in_flight`
//! ([`DEFAULT_IN_FLIGHT`]) calls are in flight,
//! and the publishes that arrive while they are take the next free slot together, in one
//! `PublishBatch` of up to 10 (within SNS's 256 KiB per request). A publish alone goes out
//! as `Publish`, so an idle pipeline's latency is unchanged. AWS authorizes `PublishBatch`
//! with `sns:Publish`: the api role needs no other grant. Each message gets its own verdict
//! (its batch entry's), and a POST is acked only after SNS accepted its entry.
//!
//! SNS publish has its own small retry budget with full-jitter backoff (the SDK's retries
//! are off for it), so every retry is visible in `latamctl_retries_total` — the seed's
//! retry-rate SLI.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sns::types::{BatchResultErrorEntry, MessageAttributeValue, PublishBatchRequestEntry};
use rand::Rng;
use tokio::sync::{Semaphore, mpsc, oneshot};

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
    inner: Arc<Inner>,
    /// The batcher's queue, started by the first publish (it needs the runtime).
    queue: OnceLock<mpsc::UnboundedSender<Pending>>,
}

/// SNS's most entries in one `PublishBatch`.
pub const SNS_MAX_BATCH: usize = 10;
/// SNS's limit on one request's bodies and attributes together (256 KiB), less headroom for
/// the entry ids and the request's own fields.
const BATCH_BYTES: usize = 256 * 1024 - 8 * 1024;
/// Publish calls in flight at once unless `aws.publish_in_flight` says otherwise (why 16:
/// [`crate::config::DEFAULT_PUBLISH_IN_FLIGHT`]). Publishes beyond them wait for a slot and
/// leave together, so under load one call carries up to ten messages.
pub const DEFAULT_IN_FLIGHT: usize = crate::config::DEFAULT_PUBLISH_IN_FLIGHT;

/// Codes with which SNS refuses a `PublishBatch` request for its shape (the batch, not a
/// message in it, is at fault).
const BATCH_REFUSALS: [&str; 5] = [
    "BatchRequestTooLong",
    "TooManyEntriesInBatchRequest",
    "BatchEntryIdsNotDistinct",
    "InvalidBatchEntryId",
    "EmptyBatchRequest",
];

/// One message waiting for a publish call, and who waits for its verdict.
struct Pending {
    message: String,
    attributes: HashMap<String, MessageAttributeValue>,
    /// What SNS counts against the request limit: the body and every attribute.
    bytes: usize,
    done: oneshot::Sender<Result<()>>,
}

struct Inner {
    client: aws_sdk_sns::Client,
    topic_arn: String,
    attempts: u32,
    /// Calls in flight at once (`aws.publish_in_flight`).
    in_flight: usize,
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
            inner: Arc::new(Inner {
                client,
                topic_arn: topic_arn.to_owned(),
                attempts: attempts.max(1),
                in_flight: DEFAULT_IN_FLIGHT,
                last_failure: std::sync::Mutex::new(None),
            }),
            queue: OnceLock::new(),
        }
    }

    /// At most `calls` publish calls in flight at once (at least 1); before the first
    /// publish.
    pub fn with_in_flight(mut self, calls: usize) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.in_flight = calls.max(1);
        }
        self
    }

    fn queue(&self) -> &mpsc::UnboundedSender<Pending> {
        self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(batcher(self.inner.clone(), rx));
            tx
        })
    }
}

/// Takes a free call slot, then every message waiting (up to a batch), and sends them in one
/// call. Ends when the publisher is dropped.
async fn batcher(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(inner.in_flight));
    // The recorder first: a handle made before it would stay a no-op for good.
    crate::telemetry::metrics_handle();
    let batch_sizes = metrics::histogram!(crate::metric::SNS_PUBLISH_BATCH_SIZE);
    let mut carry: Option<Pending> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch: Vec<Pending> = Vec::new();
        let mut bytes = 0;
        while batch.len() < SNS_MAX_BATCH {
            let next = match carry.take() {
                Some(p) => p,
                None if batch.is_empty() => match rx.recv().await {
                    Some(p) => p,
                    None => return,
                },
                None => match rx.try_recv() {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            // Its caller gave up (the API answered 503): publishing it now would store a
            // message its client was told failed.
            if next.done.is_closed() {
                continue;
            }
            if !batch.is_empty() && bytes + next.bytes > BATCH_BYTES {
                carry = Some(next);
                break;
            }
            bytes += next.bytes;
            batch.push(next);
        }
        batch_sizes.record(batch.len() as f64);
        let inner = inner.clone();
        tokio::spawn(async move {
            inner.send(batch).await;
            drop(slot);
        });
    }
}

impl Inner {
    fn record_outcome(&self, outcome: &Result<()>) {
        let mut last = self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(()) => *last = None,
            // The message's own fault says nothing about SNS.
            Err(Error::Rejected(_)) => {}
            Err(e) => *last = Some((std::time::Instant::now(), e.kind())),
        }
    }

    /// Publishes `batch` and answers each message's caller.
    async fn send(&self, mut batch: Vec<Pending>) {
        if batch.len() == 1 {
            self.publish_alone(batch.pop().expect("one message")).await;
            return;
        }
        let mut attempt = 1;
        loop {
            match self.publish_batch_once(&batch).await {
                Ok(outcomes) => {
                    // SNS works if it took any entry (refusals for the messages' own faults
                    // say nothing about it: `record_outcome` skips those).
                    if outcomes.iter().any(|o| o.is_ok()) {
                        self.record_outcome(&Ok(()));
                    } else if let Some(failed) = outcomes.iter().find(|o| o.is_err()) {
                        self.record_outcome(failed);
                    }
                    let mut retry = Vec::new();
                    for (p, outcome) in batch.into_iter().zip(outcomes) {
                        match outcome {
                            Err(e) if retryable(&e) && attempt < self.attempts => retry.push(p),
                            outcome => {
                                let _ = p.done.send(outcome);
                            }
                        }
                    }
                    if retry.is_empty() {
                        return;
                    }
                    tracing::debug!(
                        message = "Retrying SNS batch entries.",
                        attempt,
                        entries = retry.len()
                    );
                    back_off(attempt, retry.len()).await;
                    attempt += 1;
                    batch = retry;
                }
                Err(e) if retryable(&e) && attempt < self.attempts => {
                    tracing::debug!(message = "Retrying SNS batch publish.", attempt, error = %e);
                    back_off(attempt, batch.len()).await;
                    attempt += 1;
                }
                // The request as a whole was refused (a limit counted differently than we
                // count it, an entry SNS judges at the request level): each message on its
                // own gets its own verdict, and a healthy one is not failed with the others.
                Err(Error::Rejected(reason)) => {
                    tracing::warn!(message = "SNS refused a PublishBatch; publishing its messages one by one.", %reason);
                    futures::future::join_all(batch.into_iter().map(|p| self.publish_alone(p)))
                        .await;
                    return;
                }
                Err(e) => {
                    self.record_outcome(&Err(e.clone()));
                    for p in batch {
                        let _ = p.done.send(Err(e.clone()));
                    }
                    return;
                }
            }
        }
    }

    /// Publishes one message with `Publish` and answers its caller.
    async fn publish_alone(&self, p: Pending) {
        let outcome = self.publish_with_retries(&p.message, &p.attributes).await;
        self.record_outcome(&outcome);
        let _ = p.done.send(outcome);
    }

    /// One `PublishBatch` call: each entry's verdict, in `batch`'s order.
    async fn publish_batch_once(&self, batch: &[Pending]) -> Result<Vec<Result<()>>> {
        let entries = batch
            .iter()
            .enumerate()
            .map(|(i, p)| {
                PublishBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message(&p.message)
                    .set_message_attributes(Some(p.attributes.clone()))
                    .build()
                    .map_err(|e| Error::Rejected(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let out = self
            .client
            .publish_batch()
            .topic_arn(&self.topic_arn)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                use aws_sdk_sns::error::ProvideErrorMetadata;
                let refused = BATCH_REFUSALS.contains(&e.code().unwrap_or_default());
                match classify("sns:Publish", e) {
                    // The batch's shape, not SNS's health or the messages: `send` falls
                    // back to one publish per message.
                    e if refused => Error::Rejected(e.to_string()),
                    e => e,
                }
            })?;
        let mut outcomes: Vec<Result<()>> = (0..batch.len())
            .map(|_| {
                Err(Error::Unavailable(
                    "SNS answered the batch without a result for this message".into(),
                ))
            })
            .collect();
        let index = |id: &str| id.parse::<usize>().ok().filter(|&i| i < batch.len());
        for ok in out.successful() {
            if let Some(i) = ok.id().and_then(index) {
                outcomes[i] = Ok(());
            }
        }
        for failed in out.failed() {
            if let Some(i) = index(failed.id()) {
                outcomes[i] = Err(entry_error(failed));
            }
        }
        Ok(outcomes)
    }

    async fn publish_once(
        &self,
        message: &str,
        attributes: &HashMap<String, MessageAttributeValue>,
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

    async fn publish_with_retries(
        &self,
        message: &str,
        attributes: &HashMap<String, MessageAttributeValue>,
    ) -> Result<()> {
        let mut attempt = 1;
        loop {
            match self.publish_once(message, attributes).await {
                Ok(()) => return Ok(()),
                Err(e) if retryable(&e) && attempt < self.attempts => {
                    tracing::debug!(message = "Retrying SNS publish.", attempt, error = %e);
                    back_off(attempt, 1).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Counts `messages` retries (`latamctl_retries_total`) and waits before attempt `attempt + 1`.
async fn back_off(attempt: u32, messages: usize) {
    metrics::counter!(crate::metric::RETRIES_TOTAL, "operation" => "publish")
        .increment(messages as u64);
    tokio::time::sleep(jittered(attempt)).await;
}

/// A batch entry SNS refused: the sender's fault is the message's (not retried); anything
/// else is SNS's, retried like a failed call.
fn entry_error(entry: &BatchResultErrorEntry) -> Error {
    let detail = format!(
        "sns:Publish: {}: {}",
        entry.code(),
        entry.message().unwrap_or("no message")
    );
    if entry.sender_fault() {
        Error::Rejected(detail)
    } else if entry.code().contains("Throttl") {
        Error::Throttled(detail)
    } else {
        Error::Unavailable(detail)
    }
}

#[async_trait]
impl Publisher for SnsPublisher {
    async fn publish(&self, message: &OutboundMessage) -> Result<()> {
        let mut attributes = HashMap::new();
        let mut bytes = message.message.len();
        for (name, value) in message.wire_attributes() {
            bytes += name.len() + value.len() + "String".len();
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| Error::Rejected(e.to_string()))?;
            attributes.insert(name, attr);
        }
        let (done, verdict) = oneshot::channel();
        self.queue()
            .send(Pending {
                message: message.message.clone(),
                attributes,
                bytes,
                done,
            })
            .map_err(|_| Error::Unavailable("the SNS publisher has stopped".into()))?;
        verdict
            .await
            .unwrap_or_else(|_| Err(Error::Unavailable("the SNS publisher has stopped".into())))
    }

    async fn ready(&self) -> Result<()> {
        let inner = &self.inner;
        let last = *inner.last_failure.lock().unwrap_or_else(|e| e.into_inner());
        match last {
            Some((at, kind)) if at.elapsed() < PUBLISH_FAILURE_HOLD => {
                let detail = format!(
                    "the last publish to {} failed ({kind}) {:.1} s ago",
                    inner.topic_arn,
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
