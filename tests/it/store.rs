//! One behavioural suite for every store: SQLite (a temp file) and PostgreSQL (a fresh
//! database on the test cluster).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use latamctl::config::{AwsConfig, DatabaseConfig};
use latamctl::store::postgres::{COUNT_BOUND, PostgresStore};
use latamctl::store::sqlite::SqliteStore;
use latamctl::store::{Record, RecordCount, Store};
use uuid::Uuid;

use super::support;

pub fn record(message: &str) -> Record {
    Record {
        transaction_id: Uuid::now_v7(),
        topic: "data-ingestion-topic".into(),
        message: message.into(),
        attributes: BTreeMap::from([("source".to_owned(), "tést ✓".to_owned())]),
        received_at: Utc::now(),
    }
}

async fn inserts_are_idempotent(store: &dyn Store) {
    let batch: Vec<Record> = (0..3).map(|i| record(&format!("m{i} ✓ ñ"))).collect();
    assert_eq!(store.insert_batch(&batch).await.unwrap(), 3);
    let mut again = batch.clone();
    again.push(record("new"));
    assert_eq!(
        store.insert_batch(&again).await.unwrap(),
        1,
        "redelivery inserted twice"
    );
    // The same id twice in one statement.
    let r = record("twice");
    assert_eq!(
        store.insert_batch(&[r.clone(), r.clone()]).await.unwrap(),
        1
    );
    assert_eq!(
        store.stats().await.unwrap().records,
        RecordCount::Exact { rows: 5 }
    );
    for r in &batch {
        let got = store.get(r.transaction_id).await.unwrap().expect("stored");
        assert_eq!(got.transaction_id, r.transaction_id);
        assert_eq!(got.message, r.message);
        assert_eq!(got.topic, r.topic);
        assert_eq!(got.attributes, r.attributes);
        assert_eq!(
            got.received_at.timestamp_micros(),
            r.received_at.timestamp_micros()
        );
        assert!(got.stored_at >= got.received_at);
    }
    assert!(store.get(Uuid::now_v7()).await.unwrap().is_none());
}

/// `get_json` answers, byte for byte, the JSON of what `get` answers: times on a whole
/// second, a whole millisecond, microseconds and nanoseconds (stored as microseconds),
/// and text that JSON must escape, in the message, the topic's neighbours and the attributes.
async fn get_json_is_the_json_of_get(store: &dyn Store) {
    let at = |nanos| chrono::DateTime::from_timestamp(1_796_227_950, nanos).unwrap();
    let attributes = [
        BTreeMap::new(),
        BTreeMap::from([("source".to_owned(), "tést ✓".to_owned())]),
        BTreeMap::from([
            (
                "a\"quote".to_owned(),
                "back\\slash\nnew line\ttab\u{1}".to_owned(),
            ),
            ("z".to_owned(), "</script> \u{2028} 😀".to_owned()),
        ]),
    ];
    let messages = [
        "plain",
        "\"quoted\" \\ \u{7f} \u{1f} \r\n ñ ✓ 😀",
        "{\"json\": [1, 2]}",
    ];
    let mut records = Vec::new();
    for (i, nanos) in [
        0,
        1_000_000,
        123_000_000,
        123_456_000,
        123_456_789,
        999_999_999,
    ]
    .into_iter()
    .enumerate()
    {
        records.push(Record {
            transaction_id: Uuid::now_v7(),
            topic: "data-ingestion-topic".into(),
            message: messages[i % messages.len()].into(),
            attributes: attributes[i % attributes.len()].clone(),
            received_at: at(nanos),
        });
    }
    assert_eq!(
        store.insert_batch(&records).await.unwrap(),
        records.len() as u64
    );
    for r in &records {
        let record = store.get(r.transaction_id).await.unwrap().expect("stored");
        let json = store
            .get_json(r.transaction_id)
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(
            String::from_utf8(json).unwrap(),
            serde_json::to_string(&record).unwrap(),
            "received_at {}",
            r.received_at
        );
    }
    assert!(store.get_json(Uuid::now_v7()).await.unwrap().is_none());
}

async fn large_batches_are_chunked(store: &dyn Store) {
    let batch: Vec<Record> = (0..2500).map(|i| record(&format!("bulk {i}"))).collect();
    assert_eq!(store.insert_batch(&batch).await.unwrap(), 2500);
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.records, RecordCount::Exact { rows: 2500 });
    assert!(stats.newest_stored_at.is_some());
}

async fn idempotency_keys(store: &dyn Store) {
    let id = Uuid::now_v7();
    let first = store.reserve_key("key-1", "hash-a", id).await.unwrap();
    assert!(first.created && !first.published);
    assert_eq!(first.transaction_id, id);
    let second = store
        .reserve_key("key-1", "hash-b", Uuid::now_v7())
        .await
        .unwrap();
    assert!(!second.created);
    assert_eq!(second.transaction_id, id, "a retry must get the first id");
    assert_eq!(second.request_hash, "hash-a");
    // Released before publishing (the publish failed): the next request reserves it anew.
    store.release_key("key-1").await.unwrap();
    let again = store.reserve_key("key-1", "hash-a", id).await.unwrap();
    assert!(again.created, "a released key is free again");
    store.mark_published("key-1").await.unwrap();
    // A published key is never released.
    store.release_key("key-1").await.unwrap();
    assert!(
        store
            .reserve_key("key-1", "hash-a", Uuid::now_v7())
            .await
            .unwrap()
            .published
    );
    assert_eq!(
        store
            .purge_keys(Utc::now() - ChronoDuration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .purge_keys(Utc::now() + ChronoDuration::hours(1))
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .reserve_key("key-1", "hash-c", Uuid::now_v7())
            .await
            .unwrap()
            .created
    );
}

async fn ready_and_empty_stats(store: &dyn Store) {
    store.ready().await.unwrap();
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.records, RecordCount::Exact { rows: 0 });
    assert!(stats.newest_stored_at.is_none());
}

async fn sqlite() -> (SqliteStore, tempfile::TempDir) {
    let dir = support::tempdir();
    let store = SqliteStore::open(dir.path(), Duration::from_secs(5))
        .await
        .unwrap();
    (store, dir)
}

/// A fresh PostgreSQL database on the test cluster; `None` when the cluster is not configured.
pub async fn fresh_database() -> Option<String> {
    fresh_database_on("LATAMCTL_TEST_DATABASE_URL").await
}

/// A fresh database on the cluster the env var `var` names.
async fn fresh_database_on(var: &str) -> Option<String> {
    let admin = support::service(var)?;
    let name = format!("t_{}", Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&admin)
        .await
        .expect("connect to the test cluster");
    // `name` is generated above from a UUID: safe to interpolate.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let mut url = reqwest::Url::parse(&admin).unwrap();
    url.set_path(&name);
    Some(url.to_string())
}

/// A store on `url` with the default settings (not migrated).
pub async fn connect(url: &str) -> PostgresStore {
    PostgresStore::connect(
        &DatabaseConfig {
            url: Some(url.to_owned()),
            ..DatabaseConfig::default()
        },
        &AwsConfig::default(),
    )
    .await
    .unwrap()
}

pub async fn postgres() -> Option<PostgresStore> {
    let url = fresh_database().await?;
    let store = connect(&url).await;
    let applied = store.apply_migrations().await.unwrap();
    assert_eq!(applied, vec![1, 2]);
    assert!(
        store.apply_migrations().await.unwrap().is_empty(),
        "migrations re-applied"
    );
    assert!(!store.is_citus().await.unwrap());
    Some(store)
}

#[tokio::test]
async fn sqlite_inserts_are_idempotent() {
    inserts_are_idempotent(&sqlite().await.0).await;
}

#[tokio::test]
async fn sqlite_get_json_is_the_json_of_get() {
    get_json_is_the_json_of_get(&sqlite().await.0).await;
}

/// A row in a shape the store never writes (hand-edited): `get_json` answers what `get`
/// makes of it, the re-serialized record or its error, never the text as stored.
#[tokio::test]
async fn sqlite_get_json_of_a_row_in_another_shape_is_what_get_answers() {
    let (store, dir) = sqlite().await;
    let (spaced, bad_time) = (Uuid::now_v7(), Uuid::now_v7());
    let db = rusqlite::Connection::open(dir.path().join("records.db")).unwrap();
    for (id, attributes, received_at) in [
        (
            spaced.to_string(),
            r#"{ "k" : "v" }"#,
            "2026-12-02T18:04:00.123456Z",
        ),
        (bad_time.to_string(), "{}", "yesterday"),
    ] {
        db.execute(
            "INSERT INTO records (transaction_id, topic, message, attributes, received_at, stored_at)
             VALUES (?1, 't', 'm', ?2, ?3, '2026-12-02T18:04:01.000000Z')",
            rusqlite::params![id, attributes, received_at],
        )
        .unwrap();
    }
    drop(db);
    let json = store.get_json(spaced).await.unwrap().unwrap();
    assert_eq!(
        String::from_utf8(json).unwrap(),
        format!(
            r#"{{"transaction_id":"{spaced}","topic":"t","message":"m","attributes":{{"k":"v"}},"received_at":"2026-12-02T18:04:00.123456Z","stored_at":"2026-12-02T18:04:01Z"}}"#
        ),
        "re-serialized, not copied"
    );
    let error = store.get_json(bad_time).await.unwrap_err();
    assert!(
        error.to_string().contains("bad timestamp \"yesterday\""),
        "{error}"
    );
}

#[tokio::test]
async fn sqlite_large_batches() {
    large_batches_are_chunked(&sqlite().await.0).await;
}

#[tokio::test]
async fn sqlite_idempotency_keys() {
    idempotency_keys(&sqlite().await.0).await;
}

#[tokio::test]
async fn sqlite_ready_and_stats() {
    ready_and_empty_stats(&sqlite().await.0).await;
}

/// The behavioural suite on a store whose GETs share read transactions (`serve` with both
/// roles): a GET sees every record the store wrote before it.
#[tokio::test]
async fn sqlite_with_shared_reads_passes_the_suite() {
    let shared = || async {
        let (store, dir) = sqlite().await;
        (store.with_shared_reads(), dir)
    };
    inserts_are_idempotent(&shared().await.0).await;
    get_json_is_the_json_of_get(&shared().await.0).await;
    large_batches_are_chunked(&shared().await.0).await;
    idempotency_keys(&shared().await.0).await;
}

/// GETs that share read transactions must not keep checkpoints from emptying the WAL while
/// the worker writes. Without the writer ending them, `records.db-wal` grew to the size of
/// the database (48 MB in `serve` under POST and GET load, 4 MB with a transaction per read;
/// here 29–51 MB, against 7 MB with a transaction per read and 6–7 MB now).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_shared_reads_under_write_load_leave_the_wal_bounded() {
    let (store, dir) = sqlite().await;
    let store = std::sync::Arc::new(store.with_shared_reads());
    let known = record("read me");
    store
        .insert_batch(std::slice::from_ref(&known))
        .await
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    assert!(
                        store
                            .get_json(known.transaction_id)
                            .await
                            .unwrap()
                            .is_some()
                    );
                    reads += 1;
                    tokio::task::yield_now().await;
                }
                reads
            })
        })
        .collect();
    // 40 MB of records in batches of 100 (about 10,000 WAL pages; SQLite checkpoints every
    // 1,000).
    let body = "x".repeat(4000);
    for _ in 0..100 {
        let batch: Vec<Record> = (0..100).map(|_| record(&body)).collect();
        store.insert_batch(&batch).await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reads = 0;
    for reader in readers {
        reads += reader.await.unwrap();
    }
    let wal = std::fs::metadata(dir.path().join("records.db-wal"))
        .unwrap()
        .len();
    let db = std::fs::metadata(dir.path().join("records.db"))
        .unwrap()
        .len();
    assert!(reads > 1000, "the GETs ran alongside the writes: {reads}");
    assert!(db > 40_000_000, "{db} bytes written");
    assert!(
        wal < 12_000_000,
        "records.db-wal is {wal} bytes for a {db}-byte database: checkpoints did not keep up"
    );
}

/// Another process checkpointing `records.db` holds SQLite's checkpoint lock, so the
/// checkpoint that follows a commit of ours answers `SQLITE_BUSY`. The commit is already done
/// then: every batch must still be acknowledged as stored (an error here would redeliver it).
#[tokio::test]
async fn sqlite_shared_reads_store_every_batch_while_another_process_checkpoints() {
    let (store, dir) = sqlite().await;
    let store = store.with_shared_reads();
    // The checkpoint lock is byte 121 of the `-shm` file (SQLite's `WAL_CKPT_LOCK`), locked
    // with `fcntl` as SQLite does, from a process of its own.
    let shm = dir.path().join("records.db-shm");
    assert!(shm.exists());
    let mut holder = std::process::Command::new("python3")
        .args([
            "-c",
            "import fcntl,sys,time; f=open(sys.argv[1],'r+b'); \
             fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 121); print('locked', flush=True); time.sleep(600)",
        ])
        .arg(&shm)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    // About 3,000 WAL pages: checkpoints are due after the first 1,000.
    let body = "x".repeat(4000);
    let mut stored = 0;
    let mut outcome = Ok(());
    for _ in 0..30 {
        let batch: Vec<Record> = (0..100).map(|_| record(&body)).collect();
        match store.insert_batch(&batch).await {
            Ok(n) => stored += n,
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    holder.kill().unwrap();
    holder.wait().unwrap();
    outcome.expect("a batch failed while another process checkpointed");
    assert_eq!(stored, 3000);
    assert_eq!(store.count().await.unwrap(), 3000);
}

#[tokio::test]
async fn postgres_inserts_are_idempotent() {
    let Some(store) = postgres().await else {
        return;
    };
    inserts_are_idempotent(&store).await;
}

#[tokio::test]
async fn postgres_get_json_is_the_json_of_get() {
    let Some(store) = postgres().await else {
        return;
    };
    get_json_is_the_json_of_get(&store).await;
}

#[tokio::test]
async fn postgres_large_batches() {
    let Some(store) = postgres().await else {
        return;
    };
    large_batches_are_chunked(&store).await;
}

#[tokio::test]
async fn postgres_idempotency_keys() {
    let Some(store) = postgres().await else {
        return;
    };
    idempotency_keys(&store).await;
}

#[tokio::test]
async fn postgres_ready_and_stats() {
    let Some(store) = postgres().await else {
        return;
    };
    ready_and_empty_stats(&store).await;
}

/// `status` never runs a full `count(*)`: past [`COUNT_BOUND`] rows it reports the planner's
/// estimate, or "at least" while the table has no statistics, and says which.
#[tokio::test]
async fn postgres_counts_a_big_table_without_a_full_scan() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let store = PostgresStore::connect(
        &DatabaseConfig {
            url: Some(url.clone()),
            ..DatabaseConfig::default()
        },
        &AwsConfig::default(),
    )
    .await
    .unwrap();
    store.apply_migrations().await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    // Autovacuum would ANALYZE the table at a moment of its choosing.
    sqlx::query("ALTER TABLE records SET (autovacuum_enabled = false)")
        .execute(&pool)
        .await
        .unwrap();
    let rows = COUNT_BOUND + 500;
    sqlx::query(
        "INSERT INTO records (transaction_id, topic, message, received_at)
         SELECT gen_random_uuid(), 'bulk', 'm', now() FROM generate_series(1, $1)",
    )
    .bind(i64::try_from(rows).unwrap())
    .execute(&pool)
    .await
    .unwrap();
    let stats = store.stats().await.unwrap();
    assert_eq!(
        stats.records,
        RecordCount::AtLeast { rows: COUNT_BOUND },
        "no statistics yet: the count stops at the bound"
    );
    assert!(stats.records.basis().contains("ANALYZE"));

    sqlx::query("ANALYZE records").execute(&pool).await.unwrap();
    let counted = store.stats().await.unwrap().records;
    let RecordCount::Estimate {
        rows: estimate,
        source,
    } = counted
    else {
        panic!("after ANALYZE the planner's estimate is used: {counted:?}");
    };
    assert_eq!(source, "pg_class.reltuples");
    assert!(
        estimate.abs_diff(rows) < rows / 10,
        "estimate {estimate} of {rows} rows"
    );
    assert_eq!(counted.figure(), format!("~{estimate}"));
}

/// A store whose database never answers (nothing listens on port 1).
pub async fn unreachable_postgres() -> PostgresStore {
    PostgresStore::connect(
        &DatabaseConfig {
            url: Some("postgres://postgres@127.0.0.1:1/none".into()),
            query_timeout: Duration::from_secs(2),
            ..DatabaseConfig::default()
        },
        &AwsConfig::default(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn postgres_unreachable_is_an_error_not_a_hang() {
    let store = unreachable_postgres().await;
    let started = std::time::Instant::now();
    assert!(store.ready().await.is_err());
    assert!(store.insert_batch(&[record("x")]).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn migrate_command_applies_then_reports_up_to_date() {
    let Some(url) = fresh_database().await else {
        return;
    };
    // Trust auth ignores the password; it must still never be printed.
    let url = url.replacen("postgres@", "postgres:pw-secret@", 1);
    let dir = support::tempdir();
    let (code, stdout, stderr) = support::run(
        &["migrate", "--store", "postgres", "-o", "json"],
        &[("DATABASE_URL", &url)],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["applied_now"], serde_json::json!([1, 2]));
    assert_eq!(v["citus"], false);
    assert!(!stdout.contains("pw-secret"), "password printed: {stdout}");
    let (code, stdout, _) = support::run(
        &["migrate", "--store", "postgres", "-o", "json"],
        &[("DATABASE_URL", &url)],
        dir.path(),
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["applied_now"], serde_json::json!([]));
}

/// The database of `url` given in parts (host, port, name), credentials from the secret
/// `arn` in moto's Secrets Manager — as the Terraform lambda module wires it.
fn secret_backed(url: &str, arn: &str, moto: &str) -> (DatabaseConfig, AwsConfig) {
    let parsed = reqwest::Url::parse(url).unwrap();
    let database = DatabaseConfig {
        host: parsed.host_str().map(str::to_owned),
        port: parsed.port().unwrap(),
        name: Some(parsed.path().trim_start_matches('/').to_owned()),
        secret_arn: Some(arn.to_owned()),
        ssl_mode: "disable".into(),
        ..DatabaseConfig::default()
    };
    let aws = AwsConfig {
        region: Some("us-east-1".into()),
        endpoint_url: Some(moto.to_owned()),
        ..AwsConfig::default()
    };
    (database, aws)
}

/// The Lambda's connection: host/name in config, credentials from a Secrets Manager secret
/// (moto), as the Terraform lambda module wires it.
#[tokio::test]
async fn postgres_credentials_from_a_secrets_manager_secret() {
    let Some(moto) = support::service("LATAMCTL_TEST_MOTO_URL") else {
        return;
    };
    let Some(url) = fresh_database().await else {
        return;
    };
    let clients = super::cloud::moto_clients(&moto).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&clients.sdk);
    let arn = secrets
        .create_secret()
        .name(format!("db-{}", Uuid::new_v4().simple()))
        .secret_string(r#"{"username":"postgres","password":"rotated-secret","engine":"postgres"}"#)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let (database, aws) = secret_backed(&url, &arn, &moto);
    // Without the secret's username the connection would use the OS user and be refused.
    let store = PostgresStore::connect(&database, &aws).await.unwrap();
    store.apply_migrations().await.unwrap();
    inserts_are_idempotent(&store).await;

    let missing = DatabaseConfig {
        secret_arn: Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:nope".into()),
        ..database
    };
    let err = PostgresStore::connect(&missing, &aws)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("database.secret_arn"), "{err}");
    assert!(!err.contains("rotated-secret"));
}

/// RDS rotates its managed secret: new connections pick up the new credentials without a
/// restart. Here the secret first names a role that does not exist, then the real one.
#[tokio::test]
async fn rotated_secret_credentials_are_picked_up() {
    let Some(moto) = support::service("LATAMCTL_TEST_MOTO_URL") else {
        return;
    };
    let Some(url) = fresh_database().await else {
        return;
    };
    let clients = super::cloud::moto_clients(&moto).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&clients.sdk);
    let arn = secrets
        .create_secret()
        .name(format!("rot-{}", Uuid::new_v4().simple()))
        .secret_string(r#"{"username":"no_such_role","password":"old"}"#)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let (mut database, aws) = secret_backed(&url, &arn, &moto);
    database.secret_refresh = Duration::from_millis(300);
    database.query_timeout = Duration::from_secs(2);
    let store = PostgresStore::connect(&database, &aws).await.unwrap();
    assert!(
        store.ready().await.is_err(),
        "a role that does not exist cannot connect"
    );
    secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(r#"{"username":"postgres","password":"rotated"}"#)
        .send()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while store.ready().await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the rotated secret was never used"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    store.apply_migrations().await.unwrap();
}

/// PostgreSQL data exceptions (SQLSTATE 22xxx) are the row's fault, not an outage: the worker
/// isolates such rows as poison instead of pausing.
#[tokio::test]
async fn postgres_data_errors_are_classified_as_rejected() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let err = sqlx::query("SELECT 1 / 0")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(matches!(
        latamctl::store::Error::from(err),
        latamctl::store::Error::Rejected(_)
    ));
    pool.close().await;
    let err = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:1/none")
        .await
        .unwrap_err();
    assert!(matches!(
        latamctl::store::Error::from(err),
        latamctl::store::Error::Unavailable(_)
    ));
}

/// `CREATE EXTENSION citus` turns TLS on with a self-signed X.509 *v1* certificate, which
/// rustls refuses to parse even when it is told not to verify; psql (OpenSSL) connects. The
/// sslmodes must mean what libpq documents: `prefer`/`require` encrypt without verifying,
/// `verify-ca`/`verify-full` verify, and a refusal names `sslmode`. The cluster (started by
/// scripts/test.sh with `openssl x509 -req`, no extensions) rejects plaintext connections,
/// so every success below is an encrypted connection.
#[tokio::test]
async fn postgres_tls_with_a_v1_certificate_follows_the_libpq_sslmodes() {
    let Some(db) = fresh_database_on("LATAMCTL_TEST_TLS_DATABASE_URL").await else {
        return;
    };
    let cert = support::service("LATAMCTL_TEST_TLS_CERT").unwrap();
    let dir = support::tempdir();
    let migrate = |url: String| {
        support::run(
            &["migrate", "-o", "json"],
            &[("DATABASE_URL", &url)],
            dir.path(),
        )
    };

    for mode in ["prefer", "require"] {
        let (code, stdout, stderr) = migrate(format!("{db}?sslmode={mode}"));
        assert_eq!(code, 0, "sslmode={mode}: {stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["store"], "postgres", "{stdout}");
    }
    let pool = sqlx::PgPool::connect(&format!("{db}?sslmode=require"))
        .await
        .unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(ssl, "sslmode=require must encrypt");

    // Verifying against the system's roots fails: the certificate is self-signed.
    let (code, _, stderr) = migrate(format!("{db}?sslmode=verify-full"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("sslmode") && stderr.contains("sslrootcert"),
        "the error must name sslmode and how to trust the server: {stderr}"
    );
    // With the certificate as the root, verify-ca passes...
    let (code, _, stderr) = migrate(format!("{db}?sslmode=verify-ca&sslrootcert={cert}"));
    assert_eq!(
        code, 0,
        "verify-ca with the server's certificate as root: {stderr}"
    );
    // ...and verify-full still checks the name: 127.0.0.1 is not CN=citus-auto-ssl.
    let (code, _, stderr) = migrate(format!("{db}?sslmode=verify-full&sslrootcert={cert}"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("sslmode"), "{stderr}");

    // Plaintext is refused by the server, and the error says so.
    let (code, _, stderr) = migrate(format!("{db}?sslmode=disable"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no encryption"), "{stderr}");
}

/// The Citus recipe (docs/cloud.md) sets only a URL: `migrate`, `serve` and `status` then use
/// PostgreSQL, not the SQLite default next to it.
#[tokio::test]
async fn a_postgres_url_alone_selects_postgres_for_migrate_serve_and_status() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let dir = support::tempdir();
    let env = [("LATAMCTL_DATABASE_URL", url.as_str())];
    let (code, stdout, stderr) = support::run(&["migrate", "-o", "json"], &env, dir.path());
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["store"], "postgres", "{stdout}");
    assert_eq!(v["applied_now"], serde_json::json!([1, 2]));
    assert!(
        stderr.contains("store = postgres"),
        "the inference is logged: {stderr}"
    );

    let data = support::data_dir(dir.path());
    let data_arg = data.to_str().unwrap();
    let serve = support::Serve::start(&["--data-dir", data_arg], &env, dir.path());
    let http = support::client();
    let id = support::post(&http, &serve.base, "to postgres")
        .await
        .unwrap();
    let missing = support::wait_stored(&http, &serve.base, &[id], Duration::from_secs(30)).await;
    assert!(missing.is_empty());
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM records WHERE transaction_id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "the record is in PostgreSQL");
    assert!(
        !data.join(latamctl::store::sqlite::STORE_FILE).exists(),
        "no SQLite store was created"
    );

    let (_, stdout, stderr) = support::run(
        &[
            "status",
            "-o",
            "json",
            "--data-dir",
            data_arg,
            "--api",
            &serve.base,
            "--window",
            "0s",
        ],
        &env,
        dir.path(),
    );
    let v: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    let db = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "database")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(db["figures"]["kind"], "postgres", "{db}");
    assert_eq!(db["figures"]["records"], "1", "{db}");
    assert_eq!(db["figures"]["records_basis"], "exact count", "{db}");
}

/// `migrate --database-url-file` (a mounted Secret): the URL comes from the file, PostgreSQL
/// is inferred from it, and nothing secret is printed; a missing or unreadable file is exit 2
/// naming the key and the path, for `serve` too.
#[tokio::test]
async fn migrate_and_serve_read_secrets_from_files() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let url = url.replacen("postgres@", "postgres:pw-from-file@", 1);
    let dir = support::tempdir();
    let file = dir.path().join("url");
    std::fs::write(&file, format!("{url}\n")).unwrap();
    let (code, stdout, stderr) = support::run(
        &[
            "migrate",
            "-o",
            "json",
            "--database-url-file",
            file.to_str().unwrap(),
        ],
        &[],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["store"], "postgres");
    assert_eq!(v["applied_now"], serde_json::json!([1, 2]));
    assert!(
        !stdout.contains("pw-from-file") && !stderr.contains("pw-from-file"),
        "secret printed: {stdout} {stderr}"
    );

    for (args, key) in [
        (vec!["migrate", "--database-url-file"], "database.url_file"),
        (
            vec!["serve", "--listen", "127.0.0.1:0", "--api-token-file"],
            "api.token_file",
        ),
    ] {
        // Missing, and unreadable (a directory: root reads any file, not a directory).
        for path in ["/nonexistent/secret", dir.path().to_str().unwrap()] {
            let mut argv = args.clone();
            argv.push(path);
            let (code, _, stderr) = support::run(&argv, &[], dir.path());
            assert_eq!(code, 2, "{argv:?}: {stderr}");
            assert!(
                stderr.contains(key) && stderr.contains(path),
                "{argv:?}: the error must name {key} and {path}: {stderr}"
            );
        }
    }
}

/// The inodes of this process's TCP sockets connected to `port` (`/proc/self/net/tcp{,6}`).
fn sockets_to(port: u16) -> Vec<std::os::fd::RawFd> {
    let mut inodes = std::collections::BTreeSet::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = fields[2]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            // State 01: ESTABLISHED.
            if remote_port == Some(port) && fields[3] == "01" {
                inodes.insert(fields[9].to_owned());
            }
        }
    }
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let link = std::fs::read_link(e.path()).ok()?;
            let inode = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
            inodes
                .contains(inode)
                .then(|| e.file_name().to_str()?.parse().ok())
                .flatten()
        })
        .collect()
}

/// sqlx 0.9.0 stopped setting `TCP_NODELAY` (sqlx #4335): with Nagle's algorithm and delayed
/// ACKs a small write followed by a read can wait ~40 ms, which TLS makes likely. Every socket
/// of the store's pool, plaintext and TLS, must carry it.
#[tokio::test]
async fn every_postgres_socket_of_the_store_has_tcp_nodelay() {
    let Some(plain) = fresh_database().await else {
        return;
    };
    let Some(tls) = fresh_database_on("LATAMCTL_TEST_TLS_DATABASE_URL").await else {
        return;
    };
    for url in [plain, format!("{tls}?sslmode=require")] {
        let port = reqwest::Url::parse(&url).unwrap().port().unwrap();
        let store = PostgresStore::connect(
            &DatabaseConfig {
                url: Some(url.clone()),
                max_connections: 4,
                ..DatabaseConfig::default()
            },
            &AwsConfig::default(),
        )
        .await
        .unwrap();
        store.apply_migrations().await.unwrap();
        // Several at once, so the pool opens more than one connection.
        let pings = (0..4).map(|_| store.ping());
        for r in futures::future::join_all(pings).await {
            r.unwrap();
        }
        let fds = sockets_to(port);
        assert!(!fds.is_empty(), "no socket to port {port} found");
        for fd in &fds {
            // SAFETY: the fd is open (just listed) and borrowed only for this call.
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(*fd) };
            let nodelay = socket2::SockRef::from(&borrowed).tcp_nodelay().unwrap();
            assert!(
                nodelay,
                "{url}: socket fd {fd} to port {port} lacks TCP_NODELAY"
            );
        }
        eprintln!("{} sockets to port {port}: all TCP_NODELAY", fds.len());
    }
}
