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
    assert_eq!(body["checks"]["store"], "not_migrated", "{body}");

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

/// A private database with the schema migrated by the superuser and a login role `app_…`
/// that owns nothing and holds only the grants the service needs — the shape of a
/// production database where the service is not the schema owner.
pub(super) struct AppRoleDatabase {
    pub(super) admin: sqlx::PgPool,
    pub(super) app_url: String,
    pub(super) role: String,
}

pub(super) async fn app_role_database() -> Option<AppRoleDatabase> {
    let url = fresh_database().await?;
    let (code, _, err) = support::run(
        &["migrate", "--store", "postgres", "--database-url", &url],
        &[],
        std::path::Path::new("."),
    );
    assert_eq!(code, 0, "migrate: {err}");
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let role = format!("app_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    // `role` is generated above: safe to interpolate.
    for sql in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&admin)
            .await
            .unwrap();
    }
    let mut app_url = reqwest::Url::parse(&url).unwrap();
    app_url.set_username(&role).unwrap();
    Some(AppRoleDatabase {
        admin,
        app_url: app_url.to_string(),
        role,
    })
}

impl AppRoleDatabase {
    pub(super) async fn exec(&self, sql: &str) {
        sqlx::query(sqlx::AssertSqlSafe(sql.replace("{role}", &self.role)))
            .execute(&self.admin)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Closes the app role's sessions, so role settings apply to the next connection.
    pub(super) async fn reconnect_app(&self) {
        self.exec(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'",
        )
        .await;
    }
}

/// The database keeps answering `SELECT 1` but refuses every write (`break_sql`) for a
/// while, then is fixed (`fix_sql`). Every healthy message posted meanwhile must be stored
/// afterwards and none may reach the dead-letter queue; meanwhile the worker is paused,
/// `/readyz` says so, and `latamctl status` shows the database failing with `sqlstate`.
async fn writes_refused_while_reads_work(break_sql: &[&str], fix_sql: &[&str], sqlstate: &str) {
    let Some(db) = app_role_database().await else {
        return;
    };
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let env = [
        ("LATAMCTL_STORE", "postgres"),
        ("LATAMCTL_DATABASE_URL", db.app_url.as_str()),
        ("LATAMCTL_DATABASE_QUERY_TIMEOUT", "2s"),
        // Two receives before the DLQ, 1 s visibility, fast retries: a worker that kept
        // receiving while writes fail would dead-letter every message within seconds.
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
    wait_ready(&http, &serve, true, Duration::from_secs(10)).await;
    let first = post(&http, &serve.base, "before the fault").await.unwrap();
    assert!(
        wait_stored(&http, &serve.base, &[first], Duration::from_secs(10))
            .await
            .is_empty()
    );

    for sql in break_sql {
        db.exec(sql).await;
    }
    db.reconnect_app().await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            post(&http, &serve.base, &format!("healthy message {i}"))
                .await
                .expect("the durable queue still accepts POSTs"),
        );
    }
    // Many visibility timeouts and retry delays.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let metrics = serve.metrics(&http).await;
    assert!(
        metrics.contains("latamctl_worker_paused 1"),
        "the worker did not pause:\n{metrics}\n{}",
        serve.logs()
    );
    let body: serde_json::Value = http
        .get(serve.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        body["checks"]["worker"]
            .as_str()
            .is_some_and(|w| w.starts_with("paused")),
        "{body}"
    );
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
    let status: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}\n{err}"));
    let database = status["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "database")
        .unwrap_or_else(|| panic!("{status}"))
        .clone();
    assert_eq!(database["state"], "fail", "{database}");
    assert!(
        database["hint"]
            .as_str()
            .unwrap_or_default()
            .contains(sqlstate),
        "the hint names SQLSTATE {sqlstate}: {database}"
    );
    assert_eq!(code, 2, "a failing database exits 2");

    for sql in fix_sql {
        db.exec(sql).await;
    }
    db.reconnect_app().await;
    let missing = wait_stored(&http, &serve.base, &ids, Duration::from_secs(30)).await;
    assert!(
        missing.is_empty(),
        "{} of 20 never stored:\n{}",
        missing.len(),
        serve.logs()
    );
    let metrics = serve.metrics(&http).await;
    assert!(metrics.contains("latamctl_worker_paused 0"), "{metrics}");
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

/// `REVOKE INSERT`: `SELECT 1` works, every INSERT answers 42501.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_insert_pauses_the_worker_and_dead_letters_nothing() {
    writes_refused_while_reads_work(
        &["REVOKE INSERT ON records FROM {role}"],
        &["GRANT INSERT ON records TO {role}"],
        "42501",
    )
    .await;
}

/// A read-only database (what a failover to a replica looks like): 25006 on every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_database_pauses_the_worker_and_dead_letters_nothing() {
    writes_refused_while_reads_work(
        &["ALTER ROLE {role} SET default_transaction_read_only = on"],
        &["ALTER ROLE {role} RESET default_transaction_read_only"],
        "25006",
    )
    .await;
}

/// The table gone (a `--no-migrate` deploy against an unmigrated database): 42P01.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_table_pauses_the_worker_and_dead_letters_nothing() {
    writes_refused_while_reads_work(
        &["ALTER TABLE records RENAME TO records_away"],
        &["ALTER TABLE records_away RENAME TO records"],
        "42P01",
    )
    .await;
}
