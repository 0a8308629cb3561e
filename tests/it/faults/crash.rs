//! The process dies under load: `kill -9` five times on one data dir, SIGTERM mid-batch.

use super::*;

/// `kill -9` of `serve` under load, five times on one data dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_kill_9_under_load_five_times() {
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let args = ["--data-dir", data.to_str().unwrap()];
    let serve = Serve::start(&args, &STRICT_WORKER, dir.path());
    let load = Load::start(&serve.base, 8, Duration::ZERO);
    let mut serve = Some(serve);
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        serve.take().unwrap().kill9();
        let next = Serve::start(&args, &STRICT_WORKER, dir.path());
        load.point_at(&next.base);
        serve = Some(next);
    }
    let serve = serve.unwrap();
    let acked = load.finish().await;
    let (stored, recovered_s) = account(&serve.base, &acked, Duration::from_secs(60)).await;
    assert_eq!(serve.terminate(), Some(0));
    FaultLine {
        fault: "kill -9 of serve under load (x5, one data dir)",
        acked: acked.len(),
        stored,
        duplicates: sqlite_duplicates(&data).await,
        dlq: embedded_dlq(&data).await,
        recovered_s,
    }
    .check();
}

/// SIGTERM while the worker is in the middle of batches: graceful shutdown finishes or
/// leaves them in flight; nothing acked is lost after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_sigterm_mid_batch() {
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let args = ["--data-dir", data.to_str().unwrap()];
    let serve = Serve::start(&args, &STRICT_WORKER, dir.path());
    let load = Load::start(&serve.base, 16, Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(serve.terminate(), Some(0), "SIGTERM exits 0");
    let acked = load.finish().await;
    let serve = Serve::start(&args, &STRICT_WORKER, dir.path());
    let (stored, recovered_s) = account(&serve.base, &acked, Duration::from_secs(60)).await;
    assert_eq!(serve.terminate(), Some(0));
    FaultLine {
        fault: "SIGTERM mid-batch, then restart",
        acked: acked.len(),
        stored,
        duplicates: sqlite_duplicates(&data).await,
        dlq: embedded_dlq(&data).await,
        recovered_s,
    }
    .check();
}
