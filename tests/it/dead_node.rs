//! A dead Citus worker node stops only its own shards. There is no Citus here: a trigger on
//! `records` answers as a Citus coordinator does when a worker node is down — SQLSTATE 08006,
//! "connection to the remote node host:port failed" — for the ids whose shard that node
//! holds (here: by the id's last hex digit; ids are UUIDv7, whose first digits are the time). Everything else is the real binary, the real
//! embedded queue and real PostgreSQL.

use std::time::Duration;

use latamctl::bus::Queue;
use latamctl::bus::embedded::EmbeddedQueue;
use latamctl::config::QueueConfig;
use serde_json::Value;

use super::outage::app_role_database;
use super::support::{self, Serve, client, post, wait_stored, wait_until};

/// The node the hook calls dead, and the last hex digits of the ids on its shards: `0`
/// (the status probe's nil id) and `8`–`f`, about 9 ids in 16.
const DEAD_NODE: &str = "worker-2.citus:5432";
const DEAD_PREFIXES: [&str; 9] = ["0", "8", "9", "a", "b", "c", "d", "e", "f"];

fn on_dead_node(id: &uuid::Uuid) -> bool {
    DEAD_PREFIXES.contains(&&id.to_string()[35..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_holds_only_its_rows_and_dead_letters_nothing() {
    let Some(db) = app_role_database().await else {
        return;
    };
    // The hook: the rows of a dead node's shards are refused as Citus refuses them.
    db.exec("CREATE TABLE dead_nodes (prefix text PRIMARY KEY, node text NOT NULL)")
        .await;
    db.exec(
        "CREATE FUNCTION refuse_dead_node() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
         DECLARE dead text;
         BEGIN
           SELECT node INTO dead FROM dead_nodes WHERE prefix = right(NEW.transaction_id::text, 1);
           IF dead IS NOT NULL THEN
             RAISE EXCEPTION 'connection to the remote node % failed with the following error: Connection refused', dead
               USING ERRCODE = '08006';
           END IF;
           RETURN NEW;
         END $$",
    )
    .await;
    db.exec("CREATE TRIGGER refuse_dead_node BEFORE INSERT ON records FOR EACH ROW EXECUTE FUNCTION refuse_dead_node()")
        .await;
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let env = [
        ("LATAMCTL_STORE", "postgres"),
        ("LATAMCTL_DATABASE_URL", db.app_url.as_str()),
        ("LATAMCTL_DATABASE_QUERY_TIMEOUT", "2s"),
        // Two receives before the DLQ and a 1 s visibility: a held message whose receive
        // count were spent would be dead-lettered within seconds.
        ("LATAMCTL_QUEUE_MAX_RECEIVE_COUNT", "2"),
        ("LATAMCTL_WORKER_VISIBILITY_TIMEOUT", "1s"),
        ("LATAMCTL_WORKER_RETRY_BASE_DELAY", "100ms"),
        ("LATAMCTL_WORKER_RETRY_MAX_DELAY", "500ms"),
        ("LATAMCTL_WORKER_WAIT_TIME", "1s"),
        ("LATAMCTL_API_READINESS_INTERVAL", "300ms"),
    ];
    let serve = Serve::start(
        &["--data-dir", data.to_str().unwrap(), "--no-migrate"],
        &env,
        dir.path(),
    );
    let http = client();
    wait_until(Duration::from_secs(10), || async {
        serve.readyz(&http).await.1["status"] == "ready"
    })
    .await;

    for prefix in DEAD_PREFIXES {
        db.exec(&format!(
            "INSERT INTO dead_nodes VALUES ('{prefix}', '{DEAD_NODE}')"
        ))
        .await;
    }
    // Batches of many messages (posted concurrently) and of one, mixing both nodes.
    let mut ids = Vec::new();
    for round in 0..4 {
        let bodies: Vec<String> = (0..15).map(|i| format!("round {round} #{i}")).collect();
        let posts = bodies.iter().map(|b| post(&http, &serve.base, b));
        for id in futures::future::join_all(posts).await {
            ids.push(id.expect("the queue accepts"));
        }
        ids.push(
            post(&http, &serve.base, &format!("single {round}"))
                .await
                .unwrap(),
        );
    }
    let (dead, live): (Vec<_>, Vec<_>) = ids.iter().copied().partition(on_dead_node);
    assert!(!dead.is_empty() && !live.is_empty(), "{ids:?}");

    // The live node's rows are stored during the outage.
    let missing = wait_stored(&http, &serve.base, &live, Duration::from_secs(20)).await;
    assert!(
        missing.is_empty(),
        "{} of {} rows of the live node not stored while the other node is down:\n{}",
        missing.len(),
        live.len(),
        serve.logs()
    );
    // Many visibility timeouts and retries later, the dead node's rows are still held.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let body = serve.readyz(&http).await.1;
    let worker = body["checks"]["worker"].as_str().unwrap_or_default();
    assert!(
        worker.starts_with(&format!("partial: {} messages held", dead.len()))
            && worker.contains(DEAD_NODE),
        "{body}"
    );
    assert_eq!(
        body["status"], "ready",
        "a partial worker still works: {body}"
    );
    let metrics = serve.metrics(&http).await;
    assert!(
        metrics.contains("latamctl_worker_paused 0") || !metrics.contains("latamctl_worker_paused"),
        "the whole worker paused for one node:\n{metrics}"
    );
    assert!(
        metrics.contains(&format!("latamctl_worker_held_messages {}", dead.len())),
        "{metrics}"
    );

    // status: the write probe names the failing node.
    let (code, out, err) = support::run(
        &[
            "status",
            "--api",
            &serve.base,
            "--window",
            "0s",
            "--data-dir",
            data.to_str().unwrap(),
            "--no-kubernetes",
            "-o",
            "json",
        ],
        &[
            ("LATAMCTL_STORE", "postgres"),
            ("LATAMCTL_DATABASE_URL", db.app_url.as_str()),
        ],
        dir.path(),
    );
    let status: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}\n{err}"));
    let database = status["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "database")
        .unwrap_or_else(|| panic!("{status}"))
        .clone();
    assert_eq!(database["state"], "fail", "{database}");
    assert_eq!(database["figures"]["node"], DEAD_NODE, "{database}");
    assert!(
        database["hint"]
            .as_str()
            .unwrap()
            .contains(&format!("database node {DEAD_NODE} refuses writes")),
        "{database}"
    );
    assert_eq!(code, 2);

    // The node is back: every held row is stored, nothing is dead-lettered or left behind.
    db.exec("DELETE FROM dead_nodes").await;
    let missing = wait_stored(&http, &serve.base, &dead, Duration::from_secs(20)).await;
    assert!(
        missing.is_empty(),
        "{} held rows never stored:\n{}",
        missing.len(),
        serve.logs()
    );
    wait_until(Duration::from_secs(10), || async {
        serve.readyz(&http).await.1["checks"]["worker"] == "ok"
    })
    .await;
    assert_eq!(serve.terminate(), Some(0));
    let q = EmbeddedQueue::open(&data, &QueueConfig::default())
        .await
        .unwrap();
    let stats = q.stats().await.unwrap();
    assert_eq!(
        (stats.dead_letter, stats.visible, stats.in_flight),
        (0, 0, 0),
        "healthy messages dead-lettered or left behind: {stats:?}"
    );
}
