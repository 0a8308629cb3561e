//! Every acknowledged message is stored: a thousand concurrent POSTs, `kill -9` mid-stream,
//! and a data dir only the service's user may read.

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

async fn count_rows(data: &std::path::Path) -> u64 {
    SqliteStore::open(data, Duration::from_secs(5))
        .await
        .unwrap()
        .count()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_concurrent_posts_are_all_stored() {
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &[], dir.path());
    let http = client();
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let (http, base, sem) = (http.clone(), serve.base.clone(), sem.clone());
        tasks.spawn(async move {
            let _permit = sem.acquire().await.unwrap();
            post(&http, &base, &format!("message {i}")).await
        });
    }
    let mut ids = Vec::new();
    while let Some(r) = tasks.join_next().await {
        ids.push(r.unwrap().expect("POST failed"));
    }
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        1000,
        "ids not unique"
    );
    let missing = wait_stored(&http, &serve.base, &ids, Duration::from_secs(60)).await;
    assert!(missing.is_empty(), "{} ids never stored", missing.len());
    assert_eq!(count_rows(&data).await, 1000);
    assert_eq!(serve.terminate(), Some(0), "graceful shutdown exits 0");
}

/// `kill -9` in the middle of a stream of POSTs; after a restart on the same data dir every
/// acknowledged id is stored, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_loses_no_acknowledged_message() {
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let data_arg = data.to_str().unwrap().to_owned();
    let serve = Serve::start(&["--data-dir", &data_arg], &[], dir.path());
    let http = client();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(std::sync::Mutex::new(Vec::<Uuid>::new()));
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = tokio::task::JoinSet::new();
    for s in 0..16 {
        let (http, base, stop, acked, attempts) = (
            http.clone(),
            serve.base.clone(),
            stop.clone(),
            acked.clone(),
            attempts.clone(),
        );
        senders.spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                attempts.fetch_add(1, Ordering::SeqCst);
                if let Ok(id) = post(&http, &base, &format!("sender {s} message {i}")).await {
                    acked.lock().unwrap().push(id);
                }
                i += 1;
            }
        });
    }
    // Let traffic and the worker run, then pull the plug mid-stream.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    serve.kill9();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    while senders.join_next().await.is_some() {}
    let acked: Vec<Uuid> = acked.lock().unwrap().clone();
    let attempts = attempts.load(Ordering::SeqCst);
    assert!(
        acked.len() > 50,
        "too little traffic before the kill: {}",
        acked.len()
    );

    let serve = Serve::start(&["--data-dir", &data_arg], &[], dir.path());
    let missing = wait_stored(&http, &serve.base, &acked, Duration::from_secs(90)).await;
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages lost after kill -9, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(3)]
    );
    // Nothing beyond what was attempted, no duplicates: rows ≤ attempts and ≥ acked.
    let rows = count_rows(&data).await;
    assert!(
        rows >= acked.len() as u64 && rows <= attempts as u64,
        "rows {rows}, acked {}, attempts {attempts}",
        acked.len()
    );
    assert_eq!(serve.terminate(), Some(0));
}

/// Every message sits in the data dir in clear text: only the service's user may read it.
/// The directory is 0700 and every SQLite file (database, -wal, -shm) 0600, also when an
/// older run left them more open.
#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = support::tempdir();
    let data = dir.path().join("private");
    // A file left world-readable by an earlier version is tightened too.
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &[], dir.path());
    let http = client();
    let id = post(&http, &serve.base, "private").await.unwrap();
    assert!(
        wait_stored(&http, &serve.base, &[id], Duration::from_secs(10))
            .await
            .is_empty()
    );
    assert_eq!(mode(&data), 0o700, "data dir");
    for name in ["queue.db", "records.db"] {
        for file in latamctl::sqlite::sqlite_files(&data.join(name)) {
            assert!(file.exists(), "{} missing", file.display());
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
    serve.kill9();
    std::fs::set_permissions(
        data.join("records.db-wal"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &[], dir.path());
    assert_eq!(
        mode(&data.join("records.db-wal")),
        0o600,
        "tightened at start"
    );
    drop(serve);
}
