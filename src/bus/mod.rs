//! The message bus between the API and the worker.
//!
//! Three traits, because the roles need different parts: the API only publishes
//! ([`Publisher`]), the worker only consumes ([`Queue`]), and the operator commands (`drain`,
//! `status`) also reach the dead-letter queue ([`QueueAdmin`]). The embedded bus implements
//! all three on one on-disk queue; in the cloud, SNS publishes and SQS delivers.
//!
//! Wire format (the same on every bus, so one decoder serves them all): the body is the
//! client's message, untouched; the transaction id, topic and receive time travel as message
//! attributes under the reserved `latamctl.` prefix, next to the client's own attributes. This
//! is exactly what SNS raw message delivery puts on SQS. Enveloped SNS deliveries (the SNS
//! JSON notification) are unwrapped first.

pub mod embedded;
pub mod sns;
pub mod sqs;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::record::{Record, format_time};

/// Attribute carrying the transaction id.
pub const ATTR_TRANSACTION_ID: &str = "latamctl.transaction_id";
/// Attribute carrying the topic name.
pub const ATTR_TOPIC: &str = "latamctl.topic";
/// Attribute carrying the time the API accepted the message (RFC 3339).
pub const ATTR_RECEIVED_AT: &str = "latamctl.received_at";
/// Attribute carrying the W3C trace context of the request that published the message, so
/// the worker's span continues its trace (set only when traces are exported).
pub const ATTR_TRACEPARENT: &str = "latamctl.traceparent";
/// Prefix reserved for the attributes above; clients may not use it.
pub const RESERVED_PREFIX: &str = "latamctl.";
/// SNS accepts at most [`MAX_WIRE_ATTRIBUTES`] message attributes; four are ours.
pub const MAX_CLIENT_ATTRIBUTES: usize = 6;
/// SNS's largest message (body plus attributes), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Whether SNS and SQS can carry `c`: the XML 1.0 character set, `#x9 | #xA | #xD |
/// [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`. SQS refuses (or alters) anything
/// else, so both buses accept only this set: what the embedded queue takes, SQS can take too.
pub fn sqs_allows(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The first character of `text` that SNS/SQS cannot carry (see [`sqs_allows`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidChar {
    pub ch: char,
    /// 0-based position in characters.
    pub position: usize,
    /// 0-based offset in UTF-8 bytes.
    pub byte_offset: usize,
}

impl std::fmt::Display for InvalidChar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "U+{:04X} at character {} (byte {})",
            self.ch as u32, self.position, self.byte_offset
        )
    }
}

/// Checks `text` against the character set SNS and SQS accept.
pub fn check_chars(text: &str) -> Result<(), InvalidChar> {
    // Fast path: printable ASCII and the three allowed controls are the common case.
    if text
        .bytes()
        .all(|b| (0x20..0x80).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'))
    {
        return Ok(());
    }
    match text
        .char_indices()
        .enumerate()
        .find(|(_, (_, c))| !sqs_allows(*c))
    {
        Some((position, (byte_offset, ch))) => Err(InvalidChar {
            ch,
            position,
            byte_offset,
        }),
        None => Ok(()),
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The bus cannot take or give messages right now (down, unreachable, saturated).
    #[error("message bus unavailable: {0}")]
    Unavailable(String),
    /// The bus asked us to slow down.
    #[error("message bus is throttling requests: {0}")]
    Throttled(String),
    /// The bus did not answer in time.
    #[error("message bus did not answer within {0:?}")]
    Timeout(Duration),
    /// The bus rejected the message itself (too large, bad attribute); retrying will not help.
    #[error("message rejected by the bus: {0}")]
    Rejected(String),
    /// Wrong configuration (missing queue URL, unknown queue).
    #[error("{0}")]
    Config(String),
    /// The queue is at its size cap (`queue.max_bytes`): nothing more can be stored.
    #[error("the queue is full: {0}")]
    Full(String),
    /// SQLite says the embedded queue's file is damaged; the text says what to do.
    #[error("{0}")]
    Damaged(String),
}

impl From<crate::aws::AwsError> for Error {
    fn from(e: crate::aws::AwsError) -> Self {
        use crate::aws::AwsError;
        match e {
            AwsError::Unavailable(d) => Error::Unavailable(d),
            AwsError::Throttled(d) => Error::Throttled(d),
            AwsError::Rejected(d) => Error::Rejected(d),
            not_found @ AwsError::NotFound(_) => Error::Config(not_found.to_string()),
            AwsError::Config(d) => Error::Config(d),
        }
    }
}

impl Error {
    /// Stable label for metrics (`error_type`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Unavailable(_) => "unavailable",
            Error::Throttled(_) => "throttled",
            Error::Timeout(_) => "timeout",
            Error::Rejected(_) => "rejected",
            Error::Config(_) => "config",
            Error::Full(_) => "full",
            Error::Damaged(_) => "damaged",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A message the API hands to the bus.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    pub transaction_id: Uuid,
    pub topic: String,
    pub message: String,
    /// The client's attributes (the reserved ones are added on the wire).
    pub attributes: BTreeMap<String, String>,
    pub received_at: DateTime<Utc>,
    /// W3C trace context of the publish (sent as [`ATTR_TRACEPARENT`]), when traces are on.
    pub traceparent: Option<String>,
}

/// SNS's most message attributes (and SQS's).
pub const MAX_WIRE_ATTRIBUTES: usize = 10;

impl OutboundMessage {
    /// All attributes sent with the message: the client's plus the reserved ones.
    pub fn wire_attributes(&self) -> BTreeMap<String, String> {
        let mut attrs = self.attributes.clone();
        attrs.insert(
            ATTR_TRANSACTION_ID.to_owned(),
            self.transaction_id.to_string(),
        );
        attrs.insert(ATTR_TOPIC.to_owned(), self.topic.clone());
        attrs.insert(ATTR_RECEIVED_AT.to_owned(), format_time(self.received_at));
        if let Some(tp) = &self.traceparent {
            attrs.insert(ATTR_TRACEPARENT.to_owned(), tp.clone());
        }
        attrs
    }
}

/// One received message, not yet acknowledged.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// The bus's id of this message (stable across redeliveries).
    pub message_id: String,
    /// Handle for this receive; acknowledging needs it.
    #[serde(skip)]
    pub receipt: String,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    /// How many times this message has been received, this time included.
    pub receive_count: u32,
    /// When the bus first accepted the message.
    pub sent_at: Option<DateTime<Utc>>,
}

/// An SQS message's fields, as `ReceiveMessage` and a Lambda SQS event both carry them.
pub struct SqsFields<A> {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    /// The `ApproximateReceiveCount` system attribute.
    pub receive_count: Option<String>,
    /// The `SentTimestamp` system attribute (epoch milliseconds).
    pub sent_timestamp: Option<String>,
    /// Message attributes with their string values (binary ones have none and are dropped).
    pub attributes: A,
}

impl<A: IntoIterator<Item = (String, Option<String>)>> From<SqsFields<A>> for Delivery {
    fn from(m: SqsFields<A>) -> Self {
        Delivery {
            message_id: m.message_id,
            receipt: m.receipt,
            body: m.body,
            attributes: m
                .attributes
                .into_iter()
                .filter_map(|(k, v)| v.map(|s| (k, s)))
                .collect(),
            // A count SQS did not send means this is the first receive.
            receive_count: m.receive_count.and_then(|v| v.parse().ok()).unwrap_or(1),
            sent_at: m
                .sent_timestamp
                .and_then(|v| v.parse::<i64>().ok())
                .and_then(DateTime::from_timestamp_millis),
        }
    }
}

/// Why a delivery could not be turned into a record. Such a message is never acknowledged:
/// it is redelivered until it reaches the dead-letter queue.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("missing attribute {0}")]
    MissingAttribute(&'static str),
    #[error("attribute {name} is not valid: {value:?}")]
    BadAttribute { name: &'static str, value: String },
    #[error("SNS envelope is not valid: {0}")]
    BadEnvelope(String),
    #[error("cannot be stored: {0}")]
    Unstorable(&'static str),
}

impl DecodeError {
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::MissingAttribute(_) => "missing_attribute",
            DecodeError::BadAttribute { .. } => "bad_attribute",
            DecodeError::BadEnvelope(_) => "bad_envelope",
            DecodeError::Unstorable(_) => "unstorable",
        }
    }
}

/// The SNS JSON notification that wraps a message when raw delivery is off.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsEnvelope {
    #[serde(rename = "Type")]
    kind: String,
    message: String,
    #[serde(default)]
    message_attributes: BTreeMap<String, SnsAttribute>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsAttribute {
    value: String,
}

impl Delivery {
    /// Turns the delivery into the record the worker stores.
    pub fn decode(&self) -> Result<Record, DecodeError> {
        if self.attributes.contains_key(ATTR_TRANSACTION_ID) {
            return decode_parts(&self.body, &self.attributes);
        }
        // Not raw delivery: the body may be the SNS envelope.
        if self.body.trim_start().starts_with('{') {
            let envelope: SnsEnvelope = serde_json::from_str(&self.body)
                .map_err(|e| DecodeError::BadEnvelope(e.to_string()))?;
            if envelope.kind != "Notification" {
                return Err(DecodeError::BadEnvelope(format!(
                    "Type is {:?}, expected \"Notification\"",
                    envelope.kind
                )));
            }
            let attrs = envelope
                .message_attributes
                .into_iter()
                .map(|(k, v)| (k, v.value))
                .collect();
            return decode_parts(&envelope.message, &attrs);
        }
        Err(DecodeError::MissingAttribute(ATTR_TRANSACTION_ID))
    }
}

fn decode_parts(body: &str, attrs: &BTreeMap<String, String>) -> Result<Record, DecodeError> {
    let get = |name: &'static str| {
        attrs
            .get(name)
            .map(String::as_str)
            .ok_or(DecodeError::MissingAttribute(name))
    };
    let id = get(ATTR_TRANSACTION_ID)?;
    let transaction_id = Uuid::parse_str(id).map_err(|_| DecodeError::BadAttribute {
        name: ATTR_TRANSACTION_ID,
        value: id.to_owned(),
    })?;
    let topic = get(ATTR_TOPIC)?;
    if !crate::config::valid_topic_name(topic) {
        return Err(DecodeError::BadAttribute {
            name: ATTR_TOPIC,
            value: topic.to_owned(),
        });
    }
    let received = get(ATTR_RECEIVED_AT)?;
    let received_at = DateTime::parse_from_rfc3339(received)
        .map_err(|_| DecodeError::BadAttribute {
            name: ATTR_RECEIVED_AT,
            value: received.to_owned(),
        })?
        .with_timezone(&Utc);
    // The API refuses NUL; a producer writing to SNS/SQS directly may not. No database
    // stores it in text, so such a message is poison, not a reason to fail a whole batch.
    if body.contains('\0') {
        return Err(DecodeError::Unstorable("the body contains a NUL character"));
    }
    let attributes: BTreeMap<String, String> = attrs
        .iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if attributes
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(DecodeError::Unstorable(
            "an attribute contains a NUL character",
        ));
    }
    Ok(Record {
        transaction_id,
        topic: topic.to_owned(),
        message: body.to_owned(),
        attributes,
        received_at,
    })
}

/// What happened to each message of an acknowledgement batch.
#[derive(Debug, Default)]
pub struct AckReport {
    pub acked: usize,
    /// Messages whose receipt was no longer valid (redelivered meanwhile) or that failed.
    pub failed: Vec<(String, String)>,
}

/// Queue figures for metrics and `status`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct QueueStats {
    /// Messages waiting to be received.
    pub visible: u64,
    /// Messages received and not yet acknowledged.
    pub in_flight: u64,
    /// Age of the oldest message in the queue, in seconds.
    pub oldest_age_seconds: Option<f64>,
    /// Messages in the dead-letter queue.
    pub dead_letter: u64,
    /// Bytes the queue's data takes on disk, where the bus knows it (embedded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The size cap those bytes are held to (`queue.max_bytes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_bytes: Option<u64>,
}

/// Which of the two queues an admin operation targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum QueueName {
    Main,
    Dlq,
}

/// The publishing half: durable before `publish` returns.
#[async_trait]
pub trait Publisher: Send + Sync + 'static {
    /// Returns once the message is durable (committed to disk, or accepted by SNS).
    async fn publish(&self, message: &OutboundMessage) -> Result<()>;
    /// Whether publishing can work right now.
    async fn ready(&self) -> Result<()>;
}

/// The consuming half, with SQS semantics.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Receives up to `max` messages, waiting up to `wait` for the first; each stays invisible
    /// to other receivers for `visibility`, then is redelivered unless acknowledged.
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Delivery>>;
    /// Deletes the messages for good. Only call after their effect is committed.
    async fn ack(&self, deliveries: &[&Delivery]) -> Result<AckReport>;
    /// Makes the messages visible again after `delay` (a failed attempt).
    async fn release(&self, deliveries: &[&Delivery], delay: Duration) -> Result<()>;
    /// Whether receiving can work right now.
    async fn ready(&self) -> Result<()>;
    /// Depth, in-flight, oldest age and dead-letter depth.
    async fn stats(&self) -> Result<QueueStats>;
}

/// Operator actions on a queue or its dead-letter queue (`latamctl drain`).
#[async_trait]
pub trait QueueAdmin: Send + Sync + 'static {
    /// Receives up to `max` messages of `queue`, hidden from other receivers for
    /// `visibility`, as a consumer would.
    async fn receive_from(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Delivery>>;
    /// Deletes received messages of `queue`.
    async fn delete_from(&self, queue: QueueName, deliveries: &[&Delivery]) -> Result<AckReport>;
    /// Makes received messages of `queue` visible again at once.
    async fn release_to(&self, queue: QueueName, deliveries: &[&Delivery]) -> Result<()>;
    /// Reads up to `max` messages of `queue` without receiving them (no receive count spent,
    /// nothing hidden); `None` where the bus cannot (SQS has no peek: `drain --peek` receives
    /// and releases there).
    async fn peek(&self, _queue: QueueName, _max: usize) -> Result<Option<Vec<Delivery>>> {
        Ok(None)
    }
    /// Moves up to `max` messages from the dead-letter queue back to the main queue. Returns
    /// how many moved.
    async fn redrive(&self, max: usize) -> Result<u64>;
    /// Where `queue` lives, for messages (`queue.db (dlq)`, a queue URL).
    fn describe(&self, queue: QueueName) -> String;
    /// The most messages one [`QueueAdmin::receive_from`] returns (SQS's 10 unless the bus
    /// takes more).
    fn max_receive(&self) -> usize {
        10
    }
}

/// [`crate::aws::classify`] as a bus error.
pub(crate) fn classify<E>(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OutboundMessage {
        OutboundMessage {
            transaction_id: Uuid::now_v7(),
            topic: "data-ingestion-topic".into(),
            message: "hola".into(),
            attributes: [("source".to_owned(), "test".to_owned())].into(),
            received_at: Utc::now(),
            traceparent: None,
        }
    }

    /// The most client attributes plus every reserved one, the trace context included, fit
    /// in SNS's limit (moto does not enforce it: it takes 11).
    #[test]
    fn the_most_client_attributes_and_ours_fit_in_sns() {
        let mut m = sample();
        m.attributes = (0..MAX_CLIENT_ATTRIBUTES)
            .map(|i| (format!("a{i}"), "v".to_owned()))
            .collect();
        m.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        let wire = m.wire_attributes();
        assert_eq!(wire.len(), MAX_WIRE_ATTRIBUTES);
        assert_eq!(wire[ATTR_TRACEPARENT], m.traceparent.clone().unwrap());
        let reserved = wire
            .keys()
            .filter(|k| k.starts_with(RESERVED_PREFIX))
            .count();
        assert_eq!(reserved + MAX_CLIENT_ATTRIBUTES, MAX_WIRE_ATTRIBUTES);
    }

    fn delivery(body: &str, attributes: BTreeMap<String, String>) -> Delivery {
        Delivery {
            message_id: "m".into(),
            receipt: "r".into(),
            body: body.into(),
            attributes,
            receive_count: 1,
            sent_at: None,
        }
    }

    #[test]
    fn raw_delivery_round_trips() {
        let msg = sample();
        let record = delivery(&msg.message, msg.wire_attributes())
            .decode()
            .unwrap();
        assert_eq!(record.transaction_id, msg.transaction_id);
        assert_eq!(record.message, "hola");
        assert_eq!(record.attributes, msg.attributes);
        assert_eq!(
            format_time(record.received_at),
            format_time(msg.received_at)
        );
    }

    #[test]
    fn sns_envelope_is_unwrapped() {
        let msg = sample();
        let attrs: serde_json::Map<String, serde_json::Value> = msg
            .wire_attributes()
            .into_iter()
            .map(|(k, v)| (k, serde_json::json!({"Type": "String", "Value": v})))
            .collect();
        let body = serde_json::json!({
            "Type": "Notification", "MessageId": "x", "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": "hola", "MessageAttributes": attrs,
        })
        .to_string();
        let record = delivery(&body, BTreeMap::new()).decode().unwrap();
        assert_eq!(record.transaction_id, msg.transaction_id);
        assert_eq!(record.message, "hola");
    }

    #[test]
    fn poison_messages_do_not_decode() {
        assert_eq!(
            delivery("garbage", BTreeMap::new()).decode().unwrap_err(),
            DecodeError::MissingAttribute(ATTR_TRANSACTION_ID)
        );
        let mut attrs = sample().wire_attributes();
        attrs.insert(ATTR_TRANSACTION_ID.into(), "not-a-uuid".into());
        assert!(matches!(
            delivery("x", attrs).decode(),
            Err(DecodeError::BadAttribute { .. })
        ));
        assert!(matches!(
            delivery("{\"Type\":\"Notification\"}", BTreeMap::new()).decode(),
            Err(DecodeError::BadEnvelope(_))
        ));
        let attrs = sample().wire_attributes();
        assert_eq!(
            delivery("a\0b", attrs).decode().unwrap_err().kind(),
            "unstorable"
        );
    }
}
