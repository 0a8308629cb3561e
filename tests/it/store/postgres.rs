//! The suite on PostgreSQL, its counts, errors and migrations, and a URL alone selecting it
//! for `migrate`, `serve` and `status`.

use super::*;

use latamctl::store::postgres::COUNT_BOUND;

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
