//! The embedded bus: the queue suite run against it, and what only it does (stale receipts,
//! reopening, stats, size cap, retention, peek).

use super::*;

async fn embedded(dir: &std::path::Path) -> (Bus, Arc<EmbeddedQueue>) {
    let q = Arc::new(
        EmbeddedQueue::open(
            dir,
            &QueueConfig {
                max_receive_count: MAX_RECEIVES,
                ..QueueConfig::default()
            },
        )
        .await
        .unwrap(),
    );
    (
        Bus {
            publisher: q.clone(),
            queue: q.clone(),
            admin: q.clone(),
            wait: Duration::from_millis(500),
            _keep: None,
        },
        q,
    )
}

#[tokio::test]
async fn embedded_publish_receive_ack() {
    let dir = super::support::tempdir();
    publish_receive_ack(&embedded(dir.path()).await.0).await;
}

#[tokio::test]
async fn embedded_redelivery_after_visibility_timeout() {
    let dir = super::support::tempdir();
    redelivery_after_visibility_timeout(&embedded(dir.path()).await.0).await;
}

#[tokio::test]
async fn embedded_release_makes_visible_again() {
    let dir = super::support::tempdir();
    release_makes_visible_again(&embedded(dir.path()).await.0).await;
}

#[tokio::test]
async fn embedded_dead_letter_and_redrive() {
    let dir = super::support::tempdir();
    let (bus, q) = embedded(dir.path()).await;
    dead_letter_after_max_receives_and_redrive(&bus).await;
    assert_eq!(q.stats().await.unwrap().dead_letter, 0);
}

/// Exhausted messages at the head of the queue move to the DLQ on the receive that reaches
/// them, and that receive still answers the live messages behind them in full (SQS answers
/// up to MaxNumberOfMessages; a short answer would make a worker wait a poll for nothing).
/// With a visibility timeout of 0 a message is never delivered twice in one receive.
#[tokio::test]
async fn embedded_exhausted_head_moves_to_the_dlq_and_the_receive_stays_full() {
    let dir = super::support::tempdir();
    let (bus, q) = embedded(dir.path()).await;
    for i in 0..6 {
        bus.publisher
            .publish(&message(&format!("doomed {i}")))
            .await
            .unwrap();
    }
    // Receive the six first messages MAX_RECEIVES times without acking them.
    for round in 0..MAX_RECEIVES {
        let got = bus
            .queue
            .receive(6, Duration::ZERO, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(got.len(), 6, "round {round}");
        let ids: std::collections::HashSet<_> = got.iter().map(|d| &d.message_id).collect();
        assert_eq!(
            ids.len(),
            6,
            "a message twice in one receive: round {round}"
        );
        assert!(got.iter().all(|d| d.receive_count == round + 1), "{got:?}");
    }
    for i in 0..4 {
        bus.publisher
            .publish(&message(&format!("live {i}")))
            .await
            .unwrap();
    }
    let got = bus
        .queue
        .receive(4, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        got.len(),
        4,
        "the live messages behind the exhausted head: {got:?}"
    );
    assert!(
        got.iter()
            .all(|d| d.body.starts_with("live") && d.receive_count == 1),
        "{got:?}"
    );
    let stats = q.stats().await.unwrap();
    assert_eq!(stats.dead_letter, 6, "{stats:?}");
    let refs: Vec<_> = got.iter().collect();
    assert_eq!(bus.queue.ack(&refs).await.unwrap().acked, 4);
}

#[tokio::test]
async fn embedded_concurrent_publishes_arrive_once() {
    let dir = super::support::tempdir();
    concurrent_publishes_arrive_once(&embedded(dir.path()).await.0, 500).await;
}

#[tokio::test]
async fn embedded_stale_receipt_cannot_ack() {
    let dir = super::support::tempdir();
    let (bus, _) = embedded(dir.path()).await;
    bus.publisher.publish(&message("stale")).await.unwrap();
    let first = bus
        .queue
        .receive(1, Duration::ZERO, Duration::from_millis(100))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = bus
        .queue
        .receive(1, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    let stale: Vec<_> = first.iter().collect();
    let report = bus.queue.ack(&stale).await.unwrap();
    assert_eq!(report.acked, 0);
    assert_eq!(
        report.failed.len(),
        1,
        "an expired receipt deleted the redelivered message"
    );
    let fresh: Vec<_> = second.iter().collect();
    assert_eq!(bus.queue.ack(&fresh).await.unwrap().acked, 1);
}

#[tokio::test]
async fn embedded_messages_survive_reopen() {
    let dir = super::support::tempdir();
    let m = message("durable");
    {
        let (bus, _) = embedded(dir.path()).await;
        bus.publisher.publish(&m).await.unwrap();
        // Received but not acked when the process "dies".
        let got = bus
            .queue
            .receive(1, Duration::ZERO, Duration::from_millis(200))
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (bus, q) = embedded(dir.path()).await;
    let stats = q.stats().await.unwrap();
    assert_eq!(stats.visible, 1, "{stats:?}");
    let got = bus
        .queue
        .receive(1, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].decode().unwrap().transaction_id, m.transaction_id);
    assert_eq!(got[0].receive_count, 2);
}

#[tokio::test]
async fn embedded_stats_count_visible_in_flight_and_dead() {
    let dir = super::support::tempdir();
    let (bus, q) = embedded(dir.path()).await;
    for i in 0..3 {
        bus.publisher
            .publish(&message(&format!("s{i}")))
            .await
            .unwrap();
    }
    let got = bus
        .queue
        .receive(1, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let stats = q.stats().await.unwrap();
    assert_eq!(
        (stats.visible, stats.in_flight, stats.dead_letter),
        (2, 1, 0)
    );
    assert!(stats.oldest_age_seconds.is_some());
}

/// At `queue.max_bytes` the embedded queue refuses publishes (`Full`, which the API answers
/// 503 `queue_full`) instead of filling the disk; everything it accepted is there.
#[tokio::test]
async fn embedded_queue_at_its_size_cap_refuses_publishes() {
    let dir = super::support::tempdir();
    let config = QueueConfig {
        max_bytes: 256 * 1024,
        ..QueueConfig::default()
    };
    let q = EmbeddedQueue::open(dir.path(), &config).await.unwrap();
    let text = "x".repeat(2048);
    let mut accepted = 0u64;
    let refused = loop {
        match q.publish(&message(&text)).await {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 1000, "the cap never applied");
    };
    assert_eq!(refused.kind(), "full", "{refused}");
    let stats = q.stats().await.unwrap();
    assert_eq!(stats.visible, accepted, "an accepted message is missing");
    assert!(stats.bytes.unwrap() <= config.max_bytes, "{stats:?}");
    assert_eq!(stats.capacity_bytes, Some(config.max_bytes));
    // The API's answer to it.
    let body = axum::response::IntoResponse::into_response(latamctl::api::AppError::Bus(refused));
    assert_eq!(body.status(), 503);
}

/// Messages past their retention are removed (SQS's 4 days by default), in the main queue
/// and, with its own retention, in the DLQ.
#[tokio::test]
async fn embedded_queue_expires_messages_past_their_retention() {
    let dir = super::support::tempdir();
    let q = EmbeddedQueue::open(dir.path(), &QueueConfig::default())
        .await
        .unwrap();
    q.publish(&message("old")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let keep = QueueConfig::default();
    assert_eq!(q.expire(&keep).await.unwrap(), 0, "4 days have not passed");
    let short = QueueConfig {
        retention: Duration::from_millis(5),
        ..QueueConfig::default()
    };
    assert_eq!(q.expire(&short).await.unwrap(), 1);
    assert_eq!(q.stats().await.unwrap().visible, 0);
}

/// `drain --peek` on the embedded queue reads without receiving: no receive count spent,
/// nothing hidden from the worker.
#[tokio::test]
async fn embedded_peek_spends_no_receive() {
    let dir = super::support::tempdir();
    let q = EmbeddedQueue::open(dir.path(), &QueueConfig::default())
        .await
        .unwrap();
    for i in 0..3 {
        q.publish(&message(&format!("peek {i}"))).await.unwrap();
    }
    for _ in 0..2 {
        let peeked = q
            .peek(QueueName::Main, 10)
            .await
            .unwrap()
            .expect("embedded peeks");
        assert_eq!(peeked.len(), 3);
        assert!(peeked.iter().all(|d| d.receive_count == 0), "{peeked:?}");
    }
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.visible, stats.in_flight), (3, 0));
    let got = q
        .receive(10, Duration::from_millis(100), Duration::from_secs(30))
        .await
        .unwrap();
    assert!(got.iter().all(|d| d.receive_count == 1), "{got:?}");
}
