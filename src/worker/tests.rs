//! Unit tests of the worker: batches, refused rows, the store gate, the stored ages.
use super::*;
use crate::bus::OutboundMessage;
use crate::record::StoredRecord;
use crate::store::{KeyReservation, StoreStats};
use async_trait::async_trait;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use uuid::Uuid;

#[test]
fn stored_ages_are_post_to_commit_and_skip_the_duplicates_oldest_first() {
    let now = chrono::Utc::now();
    let record = |secs_ago: i64| Record {
        transaction_id: Uuid::now_v7(),
        topic: "t".into(),
        message: "m".into(),
        attributes: Default::default(),
        received_at: now - chrono::Duration::seconds(secs_ago),
    };
    let records = [record(30), record(1), record(7)];
    assert_eq!(stored_ages(&records, 3, now), [30.0, 1.0, 7.0]);
    // One row existed: a redelivery, the oldest of the batch, readable since its insert.
    assert_eq!(stored_ages(&records, 2, now), [1.0, 7.0]);
    // A clock a little behind the API's is no negative age.
    let future = [record(-2)];
    assert_eq!(stored_ages(&future, 1, now), [0.0]);
}

/// A store that refuses the rows of `refused` ids (as PostgreSQL does with SQLSTATE
/// 22xxx), or is down altogether; it records what it stored.
#[derive(Default)]
struct PickyStore {
    refused: Vec<Uuid>,
    down: bool,
    stored: Mutex<Vec<Uuid>>,
    /// Ids on a node that is down: a batch with one of them fails with SQLSTATE 08006.
    dead: Vec<Uuid>,
    /// The node of each id, when the store can tell (Citus's placement).
    nodes: Option<std::collections::HashMap<Uuid, String>>,
    inserts: std::sync::atomic::AtomicUsize,
    /// How long each insert takes (a node that is slow to refuse).
    delay: Duration,
    /// The dead node is back: its ids are stored too.
    revived: AtomicBool,
}

#[async_trait]
impl Store for PickyStore {
    fn kind(&self) -> &'static str {
        "picky"
    }
    fn target(&self) -> String {
        "picky (test)".to_owned()
    }
    async fn migrate(&self) -> store::Result<store::MigrationReport> {
        Ok(store::MigrationReport::default())
    }
    async fn insert_batch(&self, records: &[Record]) -> store::Result<u64> {
        self.inserts.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if !self.revived.load(Ordering::SeqCst)
            && records
                .iter()
                .any(|r| self.dead.contains(&r.transaction_id))
        {
            return Err(store::Error::NodeUnavailable(
                "connection to the remote node node-b:5432 failed (SQLSTATE 08006)".into(),
            ));
        }
        if self.down {
            return Err(store::Error::Unavailable("down".into()));
        }
        if records
            .iter()
            .any(|r| self.refused.contains(&r.transaction_id))
        {
            return Err(store::Error::Rejected("invalid byte sequence".into()));
        }
        self.stored
            .lock()
            .unwrap()
            .extend(records.iter().map(|r| r.transaction_id));
        Ok(records.len() as u64)
    }
    async fn get(&self, _: Uuid) -> store::Result<Option<StoredRecord>> {
        Ok(None)
    }
    async fn reserve_key(&self, _: &str, _: &str, _: Uuid) -> store::Result<KeyReservation> {
        Err(store::Error::Unavailable("unused".into()))
    }
    async fn mark_published(&self, _: &str) -> store::Result<()> {
        Ok(())
    }
    async fn release_key(&self, _: &str) -> store::Result<()> {
        Ok(())
    }
    async fn purge_keys(&self, _: chrono::DateTime<chrono::Utc>) -> store::Result<u64> {
        Ok(0)
    }
    async fn ready(&self) -> store::Result<()> {
        Ok(())
    }
    async fn probe_write(&self) -> store::Result<()> {
        Ok(())
    }
    async fn stats(&self) -> store::Result<StoreStats> {
        Ok(StoreStats::default())
    }
    async fn placement(&self, ids: &[Uuid]) -> store::Result<Option<Vec<String>>> {
        let Some(nodes) = self.nodes.as_ref() else {
            return Ok(None);
        };
        Ok(Some(
            ids.iter()
                .map(|id| nodes.get(id).cloned().unwrap_or_default())
                .collect(),
        ))
    }
}

fn delivery(id: &str) -> (Delivery, Uuid) {
    let m = OutboundMessage {
        transaction_id: Uuid::now_v7(),
        topic: "data-ingestion-topic".into(),
        message: "m".into(),
        attributes: Default::default(),
        received_at: chrono::Utc::now(),
        traceparent: None,
    };
    let d = Delivery {
        message_id: id.into(),
        receipt: String::new(),
        body: m.message.clone(),
        attributes: m.wire_attributes(),
        receive_count: 1,
        sent_at: None,
    };
    (d, m.transaction_id)
}

#[tokio::test]
async fn a_refused_row_is_poison_and_the_rest_of_its_batch_is_stored() {
    let (a, id_a) = delivery("a");
    let (b, id_b) = delivery("b");
    let (c, id_c) = delivery("c");
    let store = PickyStore {
        refused: vec![id_b],
        ..PickyStore::default()
    };
    let batch = vec![a, b, c];
    let outcome = store_batch(&store, &batch).await;
    assert!(outcome.store_error.is_none());
    assert_eq!(outcome.poison, vec!["b".to_owned()]);
    assert_eq!(outcome.stored, 2);
    assert_eq!(*store.stored.lock().unwrap(), vec![id_a, id_c]);
    assert_eq!(outcome.failed_ids(&batch), vec!["b"]);
}

#[tokio::test]
async fn a_store_outage_fails_the_whole_batch() {
    let (a, _) = delivery("a");
    let (b, _) = delivery("b");
    let store = PickyStore {
        down: true,
        ..PickyStore::default()
    };
    let batch = vec![a, b];
    let outcome = store_batch(&store, &batch).await;
    assert!(matches!(
        outcome.store_error,
        Some(store::Error::Unavailable(_))
    ));
    assert_eq!(outcome.failed_ids(&batch), vec!["a", "b"]);
}

/// While the store refuses writes a worker-only process is not ready; one that also
/// serves the API stays ready (its POSTs still reach the durable queue) and says so.
#[tokio::test]
async fn readiness_follows_the_store_gate() {
    use crate::api::readiness::{PAUSED, PAUSED_QUEUEING, Readiness};
    let gate = Arc::new(StoreGate::default());
    let worker_only = Readiness::new(None, None, None, Duration::from_secs(1));
    worker_only.watch_worker(gate.clone());
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(
        crate::bus::embedded::EmbeddedQueue::open(dir.path(), &Default::default())
            .await
            .unwrap(),
    );
    let with_api = Readiness::new(
        Some(queue as Arc<dyn crate::bus::Publisher>),
        None,
        None,
        Duration::from_secs(1),
    );
    with_api.refresh().await;
    with_api.watch_worker(gate.clone());
    assert!(worker_only.snapshot().0 && with_api.snapshot().0);

    gate.close(&store::Error::Unavailable("permission denied".into()));
    let (ready, checks) = worker_only.snapshot();
    assert!(!ready, "{checks:?}");
    assert_eq!(checks["worker"], PAUSED);
    let (ready, checks) = with_api.snapshot();
    assert!(ready, "{checks:?}");
    assert_eq!(checks["worker"], PAUSED_QUEUEING);

    gate.open();
    assert!(worker_only.snapshot().0);
}

#[test]
fn backoff_doubles_and_caps() {
    let base = Duration::from_millis(100);
    let max = Duration::from_secs(1);
    assert_eq!(backoff(base, max, 0), base);
    assert_eq!(backoff(base, max, 1), base);
    assert_eq!(backoff(base, max, 2), Duration::from_millis(200));
    assert_eq!(backoff(base, max, 4), Duration::from_millis(800));
    assert_eq!(backoff(base, max, 5), max);
    assert_eq!(backoff(base, max, u32::MAX), max);
}

/// The placement of `ids` on two nodes: `dead` on node-b (the one [`PickyStore`] refuses
/// for), the rest on node-a.
fn two_nodes(ids: &[Uuid], dead: &[Uuid]) -> std::collections::HashMap<Uuid, String> {
    ids.iter()
        .map(|id| {
            let node = if dead.contains(id) {
                "node-b:5432"
            } else {
                "node-a:5432"
            };
            (*id, node.to_owned())
        })
        .collect()
}

/// A batch a node refused is split: by the node of each row when the store knows it (one
/// insert per node), else in halves; either way exactly the dead node's rows are held and
/// the rest stored.
#[tokio::test]
async fn a_batch_a_node_refused_is_split_by_node_or_in_halves() {
    let dir = tempfile::tempdir().unwrap();
    let queue: Arc<dyn Queue> = Arc::new(
        crate::bus::embedded::EmbeddedQueue::open(dir.path(), &Default::default())
            .await
            .unwrap(),
    );
    let batch: Vec<(Delivery, Uuid)> = (0..8).map(|i| delivery(&format!("m{i}"))).collect();
    let dead: Vec<Uuid> = batch.iter().step_by(2).map(|(_, id)| *id).collect();
    let live: Vec<Uuid> = batch.iter().skip(1).step_by(2).map(|(_, id)| *id).collect();
    let refs: Vec<&Delivery> = batch.iter().map(|(d, _)| d).collect();
    for by_node in [true, false] {
        let ids: Vec<Uuid> = batch.iter().map(|(_, id)| *id).collect();
        let nodes = by_node.then(|| two_nodes(&ids, &dead));
        let store = Arc::new(PickyStore {
            dead: dead.clone(),
            nodes,
            ..PickyStore::default()
        });
        let worker = Worker::new(queue.clone(), store.clone(), WorkerConfig::default());
        let split = worker.split(&refs, None, &Default::default()).await;
        let mut held: Vec<&str> = split
            .held
            .iter()
            .map(|(d, _)| d.message_id.as_str())
            .collect();
        held.sort();
        assert_eq!(held, ["m0", "m2", "m4", "m6"], "by node: {by_node}");
        assert!(split.committed);
        assert!(
            split
                .held
                .iter()
                .all(|(_, node)| node.as_deref() == Some("node-b:5432"))
        );
        assert_eq!(
            split.error.as_ref().and_then(|e| e.node()),
            Some("node-b:5432")
        );
        let mut stored = store.stored.lock().unwrap().clone();
        stored.sort();
        let mut want = live.clone();
        want.sort();
        assert_eq!(stored, want, "by node: {by_node}");
        let inserts = store.inserts.load(Ordering::SeqCst);
        if by_node {
            assert_eq!(inserts, 2, "one insert per node");
        } else {
            // Halves of 8 down to single rows: 2 + 4 + 8 parts, at most.
            assert!((3..=14).contains(&inserts), "{inserts} inserts");
        }
    }
}

#[test]
fn the_node_is_read_from_the_citus_error() {
    let e = store::Error::NodeUnavailable(
        "error returned from database: connection to the remote node 10.0.3.7:5432 failed with the following error: Connection refused (SQLSTATE 08006)".into(),
    );
    assert_eq!(e.node(), Some("10.0.3.7:5432"));
    assert_eq!(store::Error::NodeUnavailable("lost".into()).node(), None);
    assert_eq!(
        store::Error::Unavailable("remote node x".into()).node(),
        None
    );
}

/// Readiness says "partial" with the node while messages are held, and stays ready.
#[test]
fn readiness_reports_a_partial_worker_with_the_node() {
    use crate::api::readiness::Readiness;
    let gate = Arc::new(StoreGate::default());
    let readiness = Readiness::new(None, None, None, Duration::from_secs(1));
    readiness.watch_worker(gate.clone());
    gate.set_held(7, Some("node-b:5432".into()));
    let (ready, checks) = readiness.snapshot();
    assert!(ready, "{checks:?}");
    assert_eq!(
        checks["worker"],
        "partial: 7 messages held for a database node that refuses writes (node-b:5432); the others are stored"
    );
    gate.set_held(0, None);
    assert_eq!(readiness.snapshot().1["worker"], "ok");
}

/// A queue that counts how often each message is received.
struct CountingQueue {
    inner: crate::bus::embedded::EmbeddedQueue,
    received: Mutex<std::collections::HashMap<String, u32>>,
}

#[async_trait]
impl Queue for CountingQueue {
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> crate::bus::Result<Vec<Delivery>> {
        let batch = self.inner.receive(max, wait, visibility).await?;
        let mut received = self.received.lock().unwrap();
        for d in &batch {
            *received.entry(d.message_id.clone()).or_default() += 1;
        }
        Ok(batch)
    }
    async fn ack(&self, deliveries: &[&Delivery]) -> crate::bus::Result<crate::bus::AckReport> {
        self.inner.ack(deliveries).await
    }
    async fn release(&self, deliveries: &[&Delivery], delay: Duration) -> crate::bus::Result<()> {
        self.inner.release(deliveries, delay).await
    }
    async fn ready(&self) -> crate::bus::Result<()> {
        Queue::ready(&self.inner).await
    }
    async fn stats(&self) -> crate::bus::Result<QueueStats> {
        self.inner.stats().await
    }
}

/// A held message is never received again while it is held: not while a poller splits
/// its batch (a node slow to refuse), not while a retry round tries the others, not when
/// it is held in the middle of a round. Visibility 1 s, 150 ms per insert: a split of a
/// batch takes about 2 s, a retry round longer. Once the node is back, all is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_messages_are_never_received_twice_through_long_splits_and_rounds() {
    use crate::bus::Publisher;
    for by_node in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::QueueConfig {
            max_receive_count: 2,
            ..Default::default()
        };
        let queue = Arc::new(CountingQueue {
            inner: crate::bus::embedded::EmbeddedQueue::open(dir.path(), &config)
                .await
                .unwrap(),
            received: Mutex::default(),
        });
        let mut ids = Vec::new();
        for i in 0..60 {
            let m = OutboundMessage {
                transaction_id: Uuid::now_v7(),
                topic: "data-ingestion-topic".into(),
                message: format!("m{i}"),
                attributes: Default::default(),
                received_at: chrono::Utc::now(),
                traceparent: None,
            };
            queue.inner.publish(&m).await.unwrap();
            ids.push(m.transaction_id);
        }
        let dead: Vec<Uuid> = ids.iter().step_by(2).copied().collect();
        let nodes = by_node.then(|| two_nodes(&ids, &dead));
        let store = Arc::new(PickyStore {
            dead: dead.clone(),
            nodes,
            delay: Duration::from_millis(150),
            ..PickyStore::default()
        });
        let worker = Worker::new(
            queue.clone(),
            store.clone(),
            WorkerConfig {
                concurrency: 2,
                batch_size: 10,
                wait_time: Duration::from_millis(200),
                visibility_timeout: Duration::from_secs(1),
                retry_base_delay: Duration::from_millis(100),
                retry_max_delay: Duration::from_millis(200),
                ..WorkerConfig::default()
            },
        );
        let gate = worker.gate();
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(worker.run(shutdown.clone()));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            gate.held(),
            (30, Some("node-b:5432".to_owned())),
            "by node: {by_node}"
        );
        assert!(!gate.is_closed(), "a node's outage does not close the gate");
        store.revived.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(15);
        while store
            .stored
            .lock()
            .unwrap()
            .iter()
            .collect::<HashSet<_>>()
            .len()
            < 60
        {
            assert!(
                Instant::now() < deadline,
                "not all stored (by node: {by_node})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        shutdown.cancel();
        run.await.unwrap();
        let twice: Vec<(String, u32)> = queue
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| (id.clone(), *n))
            .collect();
        assert!(
            twice.is_empty(),
            "received again while held (by node: {by_node}): {twice:?}"
        );
        assert_eq!(gate.held().0, 0);
        let stats = queue.inner.stats().await.unwrap();
        assert_eq!(
            (stats.visible, stats.in_flight, stats.dead_letter),
            (0, 0, 0)
        );
    }
}

/// The Lambda handler with the store's placement (Citus): the batch a node refused is stored
/// by node, one insert per node (no halving), and only the dead node's messages fail; when
/// every row is on the node that refused them, none is tried a second time.
#[tokio::test]
async fn the_lambda_stores_around_a_dead_node_by_placement() {
    let batch: Vec<(Delivery, Uuid)> = ["a", "b", "c", "d", "e"].map(delivery).into();
    let ids: Vec<Uuid> = batch.iter().map(|(_, id)| *id).collect();
    let dead = vec![ids[1], ids[3]];
    let store = PickyStore {
        dead: dead.clone(),
        nodes: Some(two_nodes(&ids, &dead)),
        ..Default::default()
    };
    let deliveries: Vec<Delivery> = batch.iter().map(|(d, _)| d.clone()).collect();
    let response = crate::lambda::handle_deliveries(&store, None, &deliveries).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["b", "d"]);
    let mut stored = store.stored.lock().unwrap().clone();
    stored.sort();
    let mut alive = vec![ids[0], ids[2], ids[4]];
    alive.sort();
    assert_eq!(stored, alive);
    assert_eq!(
        store.inserts.load(Ordering::SeqCst),
        3,
        "the batch, then one per node"
    );

    let only_dead = PickyStore {
        dead: ids.clone(),
        nodes: Some(two_nodes(&ids, &ids)),
        ..Default::default()
    };
    let response = crate::lambda::handle_deliveries(&only_dead, None, &deliveries).await;
    assert_eq!(response.batch_item_failures.len(), 5);
    assert_eq!(
        only_dead.inserts.load(Ordering::SeqCst),
        1,
        "not tried again"
    );
}
