//! Queue semantics, one behavioural suite for every bus: publish, receive with visibility
//! timeout, redelivery, receive count, ack, release, dead-letter queue, redrive.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use latamctl::bus::embedded::EmbeddedQueue;
use latamctl::bus::{OutboundMessage, Publisher, Queue, QueueAdmin, QueueName};
use latamctl::config::QueueConfig;
use uuid::Uuid;

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

// ---- the embedded bus ----

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

/// An embedded queue holding `n` messages, and a connection of its own to `queue.db` (for
/// plans and statement counters).
async fn queue_file_with(n: usize) -> (tempfile::TempDir, rusqlite::Connection) {
    let dir = super::support::tempdir();
    let q = EmbeddedQueue::open(dir.path(), &QueueConfig::default())
        .await
        .unwrap();
    for i in 0..n {
        q.publish(&message(&format!("plan {i}"))).await.unwrap();
    }
    let conn =
        rusqlite::Connection::open(dir.path().join(latamctl::bus::embedded::QUEUE_FILE)).unwrap();
    (dir, conn)
}

/// `EXPLAIN QUERY PLAN` of `sql` with `params` bound: the plan's detail lines.
fn query_plan(
    conn: &rusqlite::Connection,
    sql: &str,
    params: Vec<rusqlite::types::Value>,
) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let mut params = params;
    params.resize(stmt.parameter_count(), rusqlite::types::Value::Null);
    stmt.query_map(rusqlite::params_from_iter(params), |r| {
        r.get::<_, String>("detail")
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// A receive reads an index range bounded by the batch, in the claim and in the DLQ sweep:
/// no scan, no sort of the backlog (the cost that made the API collapse when a worker
/// started behind 300,000 messages).
#[tokio::test]
async fn embedded_receive_plans_use_an_index_range_bounded_by_the_batch() {
    use latamctl::bus::embedded::claim_candidates;
    use rusqlite::types::Value;
    let (_dir, conn) = queue_file_with(200).await;
    conn.execute_batch("ANALYZE").unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    // One statement reads the candidates of both: the claim and the DLQ sweep.
    for (name, sql, params) in [
        (
            "claim and dlq sweep",
            claim_candidates(100),
            vec![Value::from("main".to_owned()), now.into()],
        ),
        (
            "dlq claim",
            claim_candidates(100),
            vec![Value::from("dlq".to_owned()), now.into()],
        ),
    ] {
        assert!(
            sql.contains(" LIMIT 100"),
            "{name}: not bounded by the batch: {sql}"
        );
        let plan = query_plan(&conn, &sql, params);
        assert!(
            plan.iter()
                .any(|d| d.starts_with("SEARCH") && d.contains("INDEX messages_ready")),
            "{name}: not an index range on messages_ready: {plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|d| d.contains("TEMP B-TREE") || d.starts_with("SCAN")),
            "{name}: scans or sorts the backlog: {plan:?}"
        );
    }
}

/// An ack and a visibility change look up their messages by primary key: their cost does
/// not grow with the backlog (the planner, left alone, searched every message of the queue
/// through an index on `queue`, and each ack behind 200,000 messages took milliseconds).
#[tokio::test]
async fn embedded_ack_and_release_plans_look_up_by_primary_key() {
    use latamctl::bus::embedded::{CLAIM_ONE, DEAD_LETTER_ONE, DELETE_RECEIVED, SET_VISIBLE};
    let (_dir, conn) = queue_file_with(200).await;
    conn.execute_batch("ANALYZE").unwrap();
    for (name, sql) in [
        ("ack", DELETE_RECEIVED),
        ("release", SET_VISIBLE),
        ("claim", CLAIM_ONE),
        ("dead-letter", DEAD_LETTER_ONE),
    ] {
        let plan = query_plan(&conn, sql, Vec::new());
        assert!(
            plan.iter()
                .any(|d| d.starts_with("SEARCH messages USING INTEGER PRIMARY KEY")),
            "{name}: not a primary-key lookup: {plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|d| d.contains("USING INDEX") || d.starts_with("SCAN messages")),
            "{name}: reads an index range of the queue: {plan:?}"
        );
    }
}

/// The depth gauges' counts read indexes only: every few seconds a scan of the table read
/// every row and body of the backlog (250 ms of CPU per call behind 1,000,000 messages).
#[tokio::test]
async fn embedded_stats_plan_reads_indexes_not_the_table() {
    use latamctl::bus::embedded::STATS;
    let (_dir, conn) = queue_file_with(200).await;
    conn.execute_batch("ANALYZE").unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let plan = query_plan(&conn, STATS, vec![now.into()]);
    let searches: Vec<_> = plan.iter().filter(|d| d.starts_with("SEARCH")).collect();
    assert_eq!(searches.len(), 4, "{plan:?}");
    assert!(
        searches.iter().all(|d| d.contains("USING COVERING INDEX")),
        "a count reads the table: {plan:?}"
    );
    assert!(
        !plan.iter().any(|d| d.starts_with("SCAN messages")),
        "{plan:?}"
    );
}

/// The claim and the DLQ sweep stay prepared from one receive to the next. With the batch
/// size as a bound `LIMIT ?`, SQLite expires the statement on every rebind and parses and
/// plans it again each receive: 4% of `serve`'s CPU under POST load.
#[tokio::test]
async fn embedded_receive_statements_are_not_prepared_again_on_each_receive() {
    use latamctl::bus::embedded::{CLAIM_ONE, claim_candidates};
    use rusqlite::StatementStatus;
    let (_dir, conn) = queue_file_with(20).await;
    let mut stmt = conn.prepare(&claim_candidates(5)).unwrap();
    let mut claim = conn.prepare(CLAIM_ONE).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    for receive in 0..3 {
        let seqs: Vec<i64> = stmt
            .query_map(rusqlite::params!["main", now], |r| r.get::<_, i64>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(seqs.len(), 5, "receive {receive}");
        for seq in seqs {
            let token = format!("token{receive}");
            assert_eq!(
                claim
                    .execute(rusqlite::params![now + 30_000, token, seq])
                    .unwrap(),
                1
            );
        }
    }
    assert_eq!(
        stmt.get_status(StatementStatus::RePrepare),
        0,
        "the claim was parsed and planned again on a receive"
    );
}

/// A `queue.db` made before migration 0003 (the UNIQUE index on `message_id` dropped by a
/// table rebuild) keeps its messages, their queues and the AUTOINCREMENT counter: a seq is
/// never reused, so no old receipt can match a new message.
#[tokio::test]
async fn embedded_queue_from_before_the_rebuild_keeps_its_messages_and_counter() {
    let dir = super::support::tempdir();
    let old = dir.path().join("old-migrations");
    std::fs::create_dir(&old).unwrap();
    for file in ["0001_messages.sql", "0002_retention.sql"] {
        std::fs::copy(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations/queue")
                .join(file),
            old.join(file),
        )
        .unwrap();
    }
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(data.join("queue.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::migrate::Migrator::new(old.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        let now = Utc::now().timestamp_millis();
        for (seq, queue) in [(7, "main"), (8, "dlq"), (41, "main")] {
            sqlx::query(
                "INSERT INTO messages (seq, message_id, queue, body, attributes, sent_at, visible_at)
                 VALUES (?1, ?2, ?3, 'old', '{}', ?4, ?4)",
            )
            .bind(seq)
            .bind(Uuid::now_v7().to_string())
            .bind(queue)
            .bind(now)
            .execute(&pool)
            .await
            .unwrap();
        }
        // The newest message was consumed: the counter stays at 41.
        sqlx::query("DELETE FROM messages WHERE seq = 41")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    let q = EmbeddedQueue::open(&data, &QueueConfig::default())
        .await
        .unwrap();
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.visible, stats.dead_letter), (1, 1), "{stats:?}");
    q.publish(&message("new")).await.unwrap();
    let got = q
        .receive(10, Duration::ZERO, Duration::from_secs(30))
        .await
        .unwrap();
    let seqs: Vec<i64> = got
        .iter()
        .map(|d| d.receipt.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(seqs.len(), 2, "{got:?}");
    assert_eq!(seqs[0], 7, "the old message keeps its seq");
    assert!(seqs[1] > 41, "a new message must not reuse a seq: {seqs:?}");
}
