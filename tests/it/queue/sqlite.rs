//! `queue.db` itself: query plans, prepared statements, and a file from older migrations.

use super::*;

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
