//! Damaged data files (issue #30): `status` prints every row it can read and names the
//! damaged file with SQLite's words; `serve` refuses it with exit 2 and says what to do and
//! what each way out loses.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::support::{self, Serve};

/// A data directory with `n` stored records and an empty queue, its WALs checkpointed into
/// the files (as after a clean stop), so damage to a file is damage to its rows.
async fn data_dir_with_records(root: &Path, n: usize) -> std::path::PathBuf {
    let data = support::data_dir(root);
    let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &[], root);
    let http = support::client();
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            support::post(&http, &serve.url(""), &format!("m{i}"))
                .await
                .unwrap(),
        );
    }
    let missing = support::wait_stored(&http, &serve.url(""), &ids, Duration::from_secs(30)).await;
    assert!(missing.is_empty(), "{} not stored", missing.len());
    assert_eq!(serve.terminate(), Some(0));
    for file in ["queue.db", "records.db"] {
        let conn = rusqlite::Connection::open(data.join(file)).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    data
}

fn status(data: &Path, cwd: &Path) -> (i32, Value) {
    let (code, stdout, stderr) = support::run(
        &[
            "status",
            "-o",
            "json",
            "--no-kubernetes",
            "--window",
            "0s",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
        cwd,
    );
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("status printed no report ({e}): {stdout}\n{stderr}"));
    (code, report)
}

fn row<'a>(report: &'a Value, component: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == component)
        .unwrap_or_else(|| panic!("no {component} row in {report:#}"))
}

/// `serve` on the damaged directory: exit 2, and the steps.
fn serve_refuses(data: &Path, cwd: &Path, file: &Path, lost: &str) {
    let (code, _, stderr) = support::run(
        &[
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 2, "{stderr}");
    let file = file.display().to_string();
    for expected in [
        format!("cannot open {file}: the file is damaged"),
        format!("restore {file} from your latest backup"),
        "mv \"$f\" \"$f.damaged\"".to_string(),
        format!("Lost if you do: {lost}"),
        format!("sqlite3 {file}.damaged .recover"),
    ] {
        assert!(stderr.contains(&expected), "no {expected:?} in:\n{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_records_db_is_one_failed_row_and_serve_says_what_to_do() {
    let dir = support::tempdir();
    let data = data_dir_with_records(dir.path(), 300).await;
    let records = data.join("records.db");
    let size = std::fs::metadata(&records).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&records)
        .unwrap();
    file.set_len(size / 2).unwrap();
    drop(file);

    let (code, report) = status(&data, dir.path());
    assert_eq!(code, 2, "{report:#}");
    let database = row(&report, "database");
    assert_eq!(database["state"], "fail", "{database:#}");
    assert_eq!(database["figures"]["file"], records.display().to_string());
    let hint = database["hint"].as_str().unwrap();
    assert!(hint.contains("database disk image is malformed"), "{hint}");
    assert!(
        hint.contains("restore it from a backup, or move it aside"),
        "{hint}"
    );
    // The readable file's rows are all there.
    assert_eq!(row(&report, "queue")["state"], "ok", "{report:#}");
    assert_eq!(row(&report, "queue")["figures"]["visible"], "0");
    assert_eq!(row(&report, "dlq")["state"], "ok", "{report:#}");
    assert_eq!(row(&report, "disk")["state"], "ok", "{report:#}");

    serve_refuses(&data, dir.path(), &records, "every record stored so far");
    // Refusing changed nothing: the file is as damaged as it was, not replaced.
    assert_eq!(std::fs::metadata(&records).unwrap().len(), size / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_queue_db_fails_the_queue_rows_and_the_records_still_read() {
    let dir = support::tempdir();
    let data = data_dir_with_records(dir.path(), 200).await;
    let queue = data.join("queue.db");
    let size = std::fs::metadata(&queue).unwrap().len() as usize;
    let garbage: Vec<u8> = (0..size).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&queue, &garbage).unwrap();

    let (code, report) = status(&data, dir.path());
    assert_eq!(code, 2, "{report:#}");
    for component in ["queue", "dlq"] {
        let r = row(&report, component);
        assert_eq!(r["state"], "fail", "{r:#}");
        assert_eq!(r["figures"]["file"], queue.display().to_string());
    }
    let hint = row(&report, "queue")["hint"].as_str().unwrap();
    assert!(hint.contains("file is not a database"), "{hint}");
    let database = row(&report, "database");
    assert_eq!(database["state"], "ok", "{database:#}");
    assert_eq!(database["figures"]["records"], "200");

    serve_refuses(
        &data,
        dir.path(),
        &queue,
        "the messages accepted but not yet stored",
    );
    assert_eq!(std::fs::read(&queue).unwrap(), garbage);
}
