//! Counted, slow and failing dependencies under concurrent requests and readiness floods.

use super::*;

/// Counts the calls that reach a dependency's readiness check.
#[derive(Clone)]
struct Counting<T> {
    inner: Arc<T>,
    ready_calls: Arc<std::sync::atomic::AtomicU64>,
}

impl<T> Counting<T> {
    fn count(&self) {
        self.ready_calls
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Publisher for Counting<EmbeddedQueue> {
    async fn publish(&self, m: &latamctl::bus::OutboundMessage) -> latamctl::bus::Result<()> {
        self.inner.publish(m).await
    }
    async fn ready(&self) -> latamctl::bus::Result<()> {
        self.count();
        Publisher::ready(self.inner.as_ref()).await
    }
}

#[async_trait::async_trait]
impl Store for Counting<SqliteStore> {
    fn kind(&self) -> &'static str {
        "counting"
    }
    fn target(&self) -> String {
        self.inner.target()
    }
    async fn migrate(&self) -> latamctl::store::Result<latamctl::store::MigrationReport> {
        self.inner.migrate().await
    }
    async fn insert_batch(&self, r: &[latamctl::store::Record]) -> latamctl::store::Result<u64> {
        self.inner.insert_batch(r).await
    }
    async fn get(
        &self,
        id: uuid::Uuid,
    ) -> latamctl::store::Result<Option<latamctl::record::StoredRecord>> {
        self.inner.get(id).await
    }
    async fn reserve_key(
        &self,
        key: &str,
        hash: &str,
        candidate: uuid::Uuid,
    ) -> latamctl::store::Result<latamctl::store::KeyReservation> {
        self.inner.reserve_key(key, hash, candidate).await
    }
    async fn mark_published(&self, key: &str) -> latamctl::store::Result<()> {
        self.inner.mark_published(key).await
    }
    async fn release_key(&self, key: &str) -> latamctl::store::Result<()> {
        self.inner.release_key(key).await
    }
    async fn purge_keys(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> latamctl::store::Result<u64> {
        self.inner.purge_keys(cutoff).await
    }
    async fn ready(&self) -> latamctl::store::Result<()> {
        self.count();
        self.inner.ready().await
    }
    async fn probe_write(&self) -> latamctl::store::Result<()> {
        self.count();
        self.inner.probe_write().await
    }
    async fn stats(&self) -> latamctl::store::Result<latamctl::store::StoreStats> {
        self.inner.stats().await
    }
}

/// 2,000 probes of `/readyz` make no call to the bus or the store: it answers from the
/// state the background refresh keeps (one refresh here, before serving).
#[tokio::test]
async fn a_flood_of_readiness_probes_makes_no_upstream_calls() {
    let dir = super::support::tempdir();
    let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (queue, store) = open_embedded(dir.path()).await;
    let queue = Counting {
        inner: queue,
        ready_calls: calls.clone(),
    };
    let store = Counting {
        inner: store,
        ready_calls: calls.clone(),
    };
    let state = AppState::new(
        settings(None),
        Some(Arc::new(queue) as Arc<dyn Publisher>),
        None,
        Some(Arc::new(store) as Arc<dyn Store>),
    );
    state.readiness().refresh().await;
    let after_refresh = calls.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        after_refresh, 2,
        "one refresh checks the publisher and the store"
    );
    let router = app(state.clone());
    let probes = (0..2000).map(|_| send(&router, get("/readyz")));
    for (status, body, _) in futures::future::join_all(probes).await {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["checks"]["store"], "ok");
    }
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        after_refresh,
        "/readyz called a dependency"
    );
    assert_eq!(state.readiness().refreshes(), 1);
}

/// A publisher that takes its time, counting what it publishes.
struct SlowPublisher {
    inner: Arc<EmbeddedQueue>,
    delay: Duration,
    published: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl Publisher for SlowPublisher {
    async fn publish(&self, m: &latamctl::bus::OutboundMessage) -> latamctl::bus::Result<()> {
        tokio::time::sleep(self.delay).await;
        self.published
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.publish(m).await
    }
    async fn ready(&self) -> latamctl::bus::Result<()> {
        Ok(())
    }
}

/// A router over a publisher that takes `delay` per message, with `max_in_flight`.
struct SlowHarness {
    router: Router,
    queue: Arc<EmbeddedQueue>,
    publisher: Arc<SlowPublisher>,
    _dir: tempfile::TempDir,
}

async fn slow_router(delay: Duration, max_in_flight: usize) -> SlowHarness {
    let mut publisher = None;
    let (router, queue, dir) = router_over(max_in_flight, |queue| {
        let slow = Arc::new(SlowPublisher {
            inner: queue,
            delay,
            published: Default::default(),
        });
        publisher = Some(slow.clone());
        slow
    })
    .await;
    SlowHarness {
        router,
        queue,
        publisher: publisher.unwrap(),
        _dir: dir,
    }
}

/// A router whose publisher `wrap` builds around a fresh embedded queue (and a SQLite
/// store), refreshed once as `serve` does.
async fn router_over(
    max_in_flight: usize,
    wrap: impl FnOnce(Arc<EmbeddedQueue>) -> Arc<dyn Publisher>,
) -> (Router, Arc<EmbeddedQueue>, tempfile::TempDir) {
    let dir = super::support::tempdir();
    let (queue, store) = open_embedded(dir.path()).await;
    let mut settings = settings(None);
    settings.max_in_flight = max_in_flight;
    let state = AppState::new(
        settings,
        Some(wrap(queue.clone())),
        None,
        Some(store as Arc<dyn Store>),
    );
    state.readiness().refresh().await;
    (app(state), queue, dir)
}

/// Two concurrent POSTs with one Idempotency-Key publish once: the second waits for the
/// first's outcome and answers the same transaction_id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_idempotency_key_publish_once() {
    let slow = slow_router(Duration::from_millis(400), 256).await;
    let (router, queue, publisher) = (&slow.router, &slow.queue, &slow.publisher);
    let request = || {
        Request::post("/ingresar-datos")
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", "0f0e2a4c-1111-4c7e-9a59-3f3b2f1d9a01")
            .body(Body::from(
                json!({"topic_arn": "data-ingestion-topic", "message": "once"}).to_string(),
            ))
            .unwrap()
    };
    let (a, b) = tokio::join!(send(router, request()), send(router, request()));
    assert_eq!(
        (a.0, b.0),
        (StatusCode::OK, StatusCode::OK),
        "{} / {}",
        a.1,
        b.1
    );
    assert_eq!(a.1["transaction_id"], b.1["transaction_id"]);
    assert_eq!(
        publisher
            .published
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "published twice"
    );
    assert_eq!(queue.stats().await.unwrap().visible, 1);
}

/// Past `api.max_in_flight`, ingest requests are shed at once with 503 `overloaded` and
/// `Retry-After`; probes are not limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_in_flight_limit_are_shed_with_503_json() {
    let slow = slow_router(Duration::from_millis(500), 2).await;
    let (router, queue) = (slow.router.clone(), slow.queue.clone());
    let posts = (0..6).map(|i| {
        send(
            &router,
            post_json(json!({"topic_arn": "data-ingestion-topic", "message": format!("m{i}")})),
        )
    });
    let probe = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(&router, get("/readyz")).await
    };
    let (results, (probe_status, _, _)) = tokio::join!(futures::future::join_all(posts), probe);
    assert_eq!(probe_status, 200, "probes are not shed");
    let ok = results.iter().filter(|(s, _, _)| *s == 200).count();
    let shed: Vec<_> = results
        .iter()
        .filter(|(s, b, h)| {
            *s == 503 && b["error"] == "overloaded" && h.contains_key("retry-after")
        })
        .collect();
    assert_eq!((ok, shed.len()), (2, 4), "{results:?}");
    assert_eq!(
        queue.stats().await.unwrap().visible,
        2,
        "shed requests enqueue nothing"
    );
}

/// Fails its first publish (after a delay), then delegates.
struct FailsOncePublisher {
    inner: Arc<EmbeddedQueue>,
    failed: AtomicBool,
}

#[async_trait::async_trait]
impl Publisher for FailsOncePublisher {
    async fn publish(&self, m: &latamctl::bus::OutboundMessage) -> latamctl::bus::Result<()> {
        if !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Err(latamctl::bus::Error::Unavailable("down once".into()));
        }
        self.inner.publish(m).await
    }
    async fn ready(&self) -> latamctl::bus::Result<()> {
        Ok(())
    }
}

/// A publish that failed for certain releases its Idempotency-Key: the request waiting on
/// the key publishes at once (not after the in-progress wait), and the message is queued
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_publish_releases_its_idempotency_key_to_the_waiting_retry() {
    let (router, queue, _dir) = router_over(256, |queue| {
        Arc::new(FailsOncePublisher {
            inner: queue,
            failed: AtomicBool::new(false),
        })
    })
    .await;
    let request = || {
        Request::post("/ingresar-datos")
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", "6d1c4a8e-2222-4f7e-9a59-3f3b2f1d9a02")
            .body(Body::from(
                json!({"topic_arn": "data-ingestion-topic", "message": "retry me"}).to_string(),
            ))
            .unwrap()
    };
    let started = std::time::Instant::now();
    let second = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        send(&router, request()).await
    };
    let (first, second) = tokio::join!(send(&router, request()), second);
    assert_eq!(first.0, 503, "{}", first.1);
    assert_eq!(second.0, 200, "{}", second.1);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the waiting retry sat out the in-progress wait: {:?}",
        started.elapsed()
    );
    // A later retry answers the same id, and nothing more is queued.
    let (status, body, _) = send(&router, request()).await;
    assert_eq!(status, 200);
    assert_eq!(body["transaction_id"], second.1["transaction_id"]);
    assert_eq!(queue.stats().await.unwrap().visible, 1);
}
