//! Queue semantics, one behavioural suite for every bus: publish, receive with visibility
//! timeout, redelivery, receive count, ack, release, dead-letter queue, redrive.
//! Children: `embedded` (the suite and what only the embedded bus does), `sqlite` (`queue.db`'s
//! query plans, prepared statements and migrations).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use latamctl::bus::embedded::EmbeddedQueue;
use latamctl::bus::{OutboundMessage, Publisher, Queue, QueueAdmin, QueueName};
use latamctl::config::QueueConfig;
use uuid::Uuid;

use super::support;

mod embedded;
mod sqlite;

/// Receives after which a message goes to the DLQ, in every suite queue.
pub const MAX_RECEIVES: u32 = 3;

/// A bus under test.
pub struct Bus {
    pub publisher: Arc<dyn Publisher>,
    pub queue: Arc<dyn Queue>,
    pub admin: Arc<dyn QueueAdmin>,
    /// Long-poll wait that reliably returns messages already published.
    pub wait: Duration,
    pub _keep: Option<Box<dyn std::any::Any + Send>>,
}

pub fn message(text: &str) -> OutboundMessage {
    OutboundMessage {
        transaction_id: Uuid::now_v7(),
        topic: "data-ingestion-topic".into(),
        message: text.into(),
        attributes: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
        received_at: Utc::now(),
        traceparent: None,
    }
}

async fn receive_all(bus: &Bus, visibility: Duration) -> Vec<latamctl::bus::Delivery> {
    bus.queue.receive(10, bus.wait, visibility).await.unwrap()
}

pub async fn publish_receive_ack(bus: &Bus) {
    let m = message("hola");
    bus.publisher.publish(&m).await.unwrap();
    let got = receive_all(bus, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].receive_count, 1);
    let record = got[0].decode().unwrap();
    assert_eq!(record.transaction_id, m.transaction_id);
    assert_eq!(record.message, "hola");
    assert_eq!(record.attributes, m.attributes);
    let refs: Vec<_> = got.iter().collect();
    let report = bus.queue.ack(&refs).await.unwrap();
    assert_eq!(report.acked, 1);
    assert!(report.failed.is_empty());
    let again = bus
        .queue
        .receive(10, Duration::from_millis(500), Duration::from_secs(30))
        .await
        .unwrap();
    assert!(again.is_empty(), "acked message came back");
}

pub async fn redelivery_after_visibility_timeout(bus: &Bus) {
    let m = message("again");
    bus.publisher.publish(&m).await.unwrap();
    let first = receive_all(bus, Duration::from_secs(1)).await;
    assert_eq!(first.len(), 1);
    let hidden = bus
        .queue
        .receive(10, Duration::ZERO, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        hidden.is_empty(),
        "message visible during its visibility timeout"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let second = receive_all(bus, Duration::from_secs(30)).await;
    assert_eq!(
        second.len(),
        1,
        "not redelivered after the visibility timeout"
    );
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_eq!(second[0].receive_count, 2);
    let refs: Vec<_> = second.iter().collect();
    assert_eq!(bus.queue.ack(&refs).await.unwrap().acked, 1);
}

pub async fn release_makes_visible_again(bus: &Bus) {
    bus.publisher.publish(&message("release")).await.unwrap();
    let got = receive_all(bus, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 1);
    let refs: Vec<_> = got.iter().collect();
    bus.queue.release(&refs, Duration::ZERO).await.unwrap();
    let again = receive_all(bus, Duration::from_secs(30)).await;
    assert_eq!(again.len(), 1, "released message not visible");
    assert_eq!(again[0].receive_count, 2);
    let refs: Vec<_> = again.iter().collect();
    bus.queue.ack(&refs).await.unwrap();
}

/// After MAX_RECEIVES receives without ack the message moves to the DLQ; redrive brings it
/// back.
pub async fn dead_letter_after_max_receives_and_redrive(bus: &Bus) {
    let m = message("poison");
    bus.publisher.publish(&m).await.unwrap();
    for n in 1..=MAX_RECEIVES {
        let got = receive_all(bus, Duration::from_secs(30)).await;
        assert_eq!(got.len(), 1, "receive {n}");
        assert_eq!(got[0].receive_count, n);
        let refs: Vec<_> = got.iter().collect();
        bus.queue.release(&refs, Duration::ZERO).await.unwrap();
    }
    let none = bus
        .queue
        .receive(10, Duration::from_secs(1), Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        none.is_empty(),
        "message received more than max_receive_count times"
    );

    let mut dead = Vec::new();
    for _ in 0..10 {
        dead = bus
            .admin
            .receive_from(QueueName::Dlq, 10, Duration::from_secs(30))
            .await
            .unwrap();
        if !dead.is_empty() {
            let refs: Vec<_> = dead.iter().collect();
            bus.admin.release_to(QueueName::Dlq, &refs).await.unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(dead.len(), 1, "message not in the DLQ");
    assert_eq!(dead[0].decode().unwrap().transaction_id, m.transaction_id);

    let moved = bus.admin.redrive(10).await.unwrap();
    assert_eq!(moved, 1);
    let back = receive_all(bus, Duration::from_secs(30)).await;
    assert_eq!(back.len(), 1, "redriven message not back in the main queue");
    assert_eq!(back[0].decode().unwrap().transaction_id, m.transaction_id);
    let refs: Vec<_> = back.iter().collect();
    bus.queue.ack(&refs).await.unwrap();
}

/// Concurrent publishes are all durable and each is received exactly once.
pub async fn concurrent_publishes_arrive_once(bus: &Bus, n: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let p = bus.publisher.clone();
        tasks.spawn(async move {
            let m = message(&format!("m{i}"));
            p.publish(&m).await.map(|_| m.transaction_id)
        });
    }
    let mut sent = HashSet::new();
    while let Some(r) = tasks.join_next().await {
        sent.insert(r.unwrap().unwrap());
    }
    let mut seen = HashSet::new();
    let mut empty_polls = 0;
    while seen.len() < n && empty_polls < 5 {
        let got = receive_all(bus, Duration::from_secs(60)).await;
        if got.is_empty() {
            empty_polls += 1;
            continue;
        }
        for d in &got {
            assert!(
                seen.insert(d.decode().unwrap().transaction_id),
                "duplicate delivery"
            );
        }
        let refs: Vec<_> = got.iter().collect();
        bus.queue.ack(&refs).await.unwrap();
    }
    assert_eq!(seen, sent);
}
