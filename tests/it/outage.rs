//! Database outages: the pipeline pauses and recovers by itself, and loses nothing — no
//! message burns its receive count into the dead-letter queue while PostgreSQL is away.

use std::time::{Duration, Instant};

use latamctl::bus::Queue;
use latamctl::bus::embedded::EmbeddedQueue;
use latamctl::config::QueueConfig;

use super::store::fresh_database;
use super::support::{self, Proxy, Serve, client, post, wait_stored};

async fn ready(http: &reqwest::Client, serve: &Serve) -> bool {
    matches!(http.get(serve.url("/readyz")).send().await, Ok(r) if r.status() == 200)
}

async fn wait_ready(http: &reqwest::Client, serve: &Serve, want: bool, within: Duration) {
    let deadline = Instant::now() + within;
    while ready(http, serve).await != want {
        assert!(
            Instant::now() < deadline,
            "readiness never became {want}:\n{}",
            serve.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// PostgreSQL unreachable for a while: POSTs keep being accepted into the durable queue,
/// the worker pauses instead of failing batch after batch, readiness reports the store, and
/// when PostgreSQL is back every message is stored and none is in the dead-letter queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_pauses_the_worker_and_dead_letters_nothing() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let proxy = Proxy::start(&db).await;
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let env = [
        ("LATAMCTL_STORE", "postgres"),
        ("LATAMCTL_DATABASE_URL", &proxy.url_via(&db)),
        ("LATAMCTL_DATABASE_QUERY_TIMEOUT", "1s"),
        // Few receives before the DLQ, fast retries: a worker that kept receiving during the
        // outage would dead-letter messages within seconds.
        ("LATAMCTL_QUEUE_MAX_RECEIVE_COUNT", "2"),
        ("LATAMCTL_WORKER_VISIBILITY_TIMEOUT", "1s"),
        ("LATAMCTL_WORKER_RETRY_BASE_DELAY", "100ms"),
        ("LATAMCTL_WORKER_RETRY_MAX_DELAY", "500ms"),
    ];
    let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &env, dir.path());
    let http = client();
    wait_ready(&http, &serve, true, Duration::from_secs(10)).await;

    proxy.set(false);
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(
            post(&http, &serve.base, &format!("during the outage {i}"))
                .await
                .expect("the queue still accepts"),
        );
    }
    wait_ready(&http, &serve, false, Duration::from_secs(10)).await;
    // Long enough for many visibility timeouts and retries.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let metrics = serve.metrics(&http).await;
    assert!(
        metrics.contains("latamctl_worker_paused 1"),
        "the worker did not pause:\n{metrics}"
    );

    proxy.set(true);
    wait_ready(&http, &serve, true, Duration::from_secs(30)).await;
    let missing = wait_stored(&http, &serve.base, &ids, Duration::from_secs(60)).await;
    assert!(
        missing.is_empty(),
        "{} of 50 never stored:\n{}",
        missing.len(),
        serve.logs()
    );
    assert_eq!(serve.terminate(), Some(0));
    let q = EmbeddedQueue::open(&data, &QueueConfig::default())
        .await
        .unwrap();
    let stats = q.stats().await.unwrap();
    assert_eq!(
        stats.dead_letter, 0,
        "messages dead-lettered during the outage: {stats:?}"
    );
}

/// PostgreSQL down when `serve` starts: the process starts not ready instead of exiting, and
/// migrates and becomes ready once the database answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_not_ready_when_postgres_is_down_and_migrates_later() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let proxy = Proxy::start(&db).await;
    proxy.set(false);
    let dir = support::tempdir();
    let env = [
        ("LATAMCTL_STORE", "postgres"),
        ("LATAMCTL_DATABASE_URL", &proxy.url_via(&db)),
        ("LATAMCTL_DATABASE_QUERY_TIMEOUT", "1s"),
    ];
    let serve = Serve::start(
        &["--data-dir", dir.path().join("d").to_str().unwrap()],
        &env,
        dir.path(),
    );
    let http = client();
    let body: serde_json::Value = http
        .get(serve.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "not_ready", "{body}");
    assert!(
        body["checks"]["store"]
            .as_str()
            .unwrap()
            .contains("not migrated"),
        "{body}"
    );

    proxy.set(true);
    wait_ready(&http, &serve, true, Duration::from_secs(30)).await;
    let id = post(&http, &serve.base, "after the database came up")
        .await
        .unwrap();
    assert!(
        wait_stored(&http, &serve.base, &[id], Duration::from_secs(30))
            .await
            .is_empty()
    );
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(versions, vec![1, 2]);
    assert_eq!(serve.terminate(), Some(0));
}
