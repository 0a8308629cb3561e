//! One behavioural suite for every store: SQLite (a temp file) and PostgreSQL (a fresh
//! database on the test cluster).
//!
//! The suite and the database helpers are here; `sqlite` and `postgres` run the suite and
//! each store's own cases, `secrets` the credentials, `connections` TLS and the sockets.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use latamctl::config::{AwsConfig, DatabaseConfig};
use latamctl::store::postgres::PostgresStore;
use latamctl::store::{Record, RecordCount, Store};
use uuid::Uuid;

// `cloud` is for `secrets`, whose tests name `super::cloud`.
use super::{cloud, support};

mod connections;
mod postgres;
mod secrets;
mod sqlite;

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
