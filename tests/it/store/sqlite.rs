//! The suite on SQLite, with and without shared read transactions, and the WAL and
//! checkpoint cases of a store whose GETs share them.

use super::*;

use latamctl::store::sqlite::SqliteStore;

async fn sqlite() -> (SqliteStore, tempfile::TempDir) {
    let dir = support::tempdir();
    let store = SqliteStore::open(dir.path(), Duration::from_secs(5))
        .await
        .unwrap();
    (store, dir)
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
