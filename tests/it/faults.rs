//! The fault-injection suite: the real binary under load while a real fault happens, then
//! an account of every message. Each case prints one line
//!
//!     fault | acked | stored | duplicates | in DLQ | recovered in s
//!
//! (to stderr, and appended to `$LATAMCTL_FAULTS_REPORT` when set, which scripts/test.sh
//! prints at the end) and fails unless acked == stored, 0 duplicates and 0 messages in the
//! dead-letter queue. "acked" counts POSTs answered 200; "recovered" is the time from the
//! end of the fault until every acked message could be read back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use latamctl::bus::Queue;
use latamctl::bus::embedded::EmbeddedQueue;
use latamctl::config::QueueConfig;
use uuid::Uuid;

use super::outage::app_role_database;
use super::support::{self, Proxy, Serve, client, post, wait_stored};

/// One line of the suite's report.
pub(super) struct FaultLine {
    pub fault: &'static str,
    pub acked: usize,
    pub stored: usize,
    pub duplicates: u64,
    pub dlq: u64,
    pub recovered_s: f64,
}

impl FaultLine {
    pub fn check(&self) {
        self.check_with("");
    }

    /// [`check`](Self::check), with case-specific figures appended to the line.
    pub fn check_with(&self, detail: &str) {
        let line = format!(
            "{:<44} | acked {:>5} | stored {:>5} | duplicates {} | in DLQ {} | recovered in {:.1} s{detail}",
            self.fault, self.acked, self.stored, self.duplicates, self.dlq, self.recovered_s
        );
        eprintln!("FAULT {line}");
        if let Ok(path) = std::env::var("LATAMCTL_FAULTS_REPORT") {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(f, "{line}");
            }
        }
        assert!(
            self.acked > 0,
            "{}: no traffic was acknowledged",
            self.fault
        );
        assert_eq!(
            self.acked, self.stored,
            "{}: acknowledged messages lost",
            self.fault
        );
        assert_eq!(self.duplicates, 0, "{}: duplicate rows", self.fault);
        assert_eq!(
            self.dlq, 0,
            "{}: healthy messages dead-lettered",
            self.fault
        );
    }
}

/// Clients posting continuously to whatever `base` currently points at, keeping the ids
/// answered 200.
struct Load {
    base: Arc<RwLock<String>>,
    acked: Arc<Mutex<Vec<Uuid>>>,
    stop: Arc<AtomicBool>,
    tasks: tokio::task::JoinSet<()>,
}

impl Load {
    fn start(base: &str, senders: usize, pause: Duration) -> Load {
        let base = Arc::new(RwLock::new(base.to_owned()));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        for s in 0..senders {
            let (http, base, acked, stop) =
                (http.clone(), base.clone(), acked.clone(), stop.clone());
            tasks.spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let url = base.read().unwrap().clone();
                    if let Ok(id) = post(&http, &url, &format!("fault load {s}-{i}")).await {
                        acked.lock().unwrap().push(id);
                    } else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    i += 1;
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
            });
        }
        Load {
            base,
            acked,
            stop,
            tasks,
        }
    }

    fn point_at(&self, base: &str) {
        *self.base.write().unwrap() = base.to_owned();
    }

    async fn finish(mut self) -> Vec<Uuid> {
        self.stop.store(true, Ordering::SeqCst);
        while self.tasks.join_next().await.is_some() {}
        self.acked.lock().unwrap().clone()
    }
}

/// Waits until every id is readable; (stored, seconds it took).
pub(super) async fn account(base: &str, ids: &[Uuid], within: Duration) -> (usize, f64) {
    let started = Instant::now();
    let missing = wait_stored(&client(), base, ids, within).await;
    (ids.len() - missing.len(), started.elapsed().as_secs_f64())
}

pub(super) async fn embedded_dlq(data: &std::path::Path) -> u64 {
    EmbeddedQueue::open(data, &QueueConfig::default())
        .await
        .unwrap()
        .stats()
        .await
        .unwrap()
        .dead_letter
}

pub(super) async fn sqlite_duplicates(data: &std::path::Path) -> u64 {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", data.join("records.db").display()))
        .await
        .unwrap();
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) - count(DISTINCT transaction_id) FROM records")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    n as u64
}

async fn postgres_duplicates(url: &str) -> u64 {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) - count(DISTINCT transaction_id) FROM records")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    n as u64
}

/// Fast redelivery and few receives before the DLQ: a worker that spent receives during a
/// fault would dead-letter within seconds.
const STRICT_WORKER: [(&str, &str); 5] = [
    ("LATAMCTL_QUEUE_MAX_RECEIVE_COUNT", "3"),
    ("LATAMCTL_WORKER_VISIBILITY_TIMEOUT", "2s"),
    ("LATAMCTL_WORKER_RETRY_BASE_DELAY", "100ms"),
    ("LATAMCTL_WORKER_RETRY_MAX_DELAY", "1s"),
    ("LATAMCTL_WORKER_WAIT_TIME", "1s"),
];

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

/// A PostgreSQL cluster of the test's own, so it can be restarted without touching the
/// shared one.
struct PrivatePostgres {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    url: String,
}

impl PrivatePostgres {
    fn as_postgres(cmd: &std::path::Path) -> std::process::Command {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(cmd);
            c
        } else {
            std::process::Command::new(cmd)
        }
    }

    fn start() -> Option<PrivatePostgres> {
        support::service("LATAMCTL_TEST_DATABASE_URL")?;
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())?;
        let dir = tempfile::Builder::new()
            .prefix("latamctl-pg")
            .tempdir_in("/tmp")
            .unwrap();
        let _ = std::process::Command::new("chown")
            .args(["postgres", dir.path().to_str().unwrap()])
            .status();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.path().join("data");
        let ok = Self::as_postgres(&bin.join("initdb"))
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
            ])
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "initdb failed");
        let pg = PrivatePostgres {
            bin,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
        };
        pg.ctl(&[
            "start",
            "-w",
            "-o",
            &format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off",
                pg.dir.path().display()
            ),
        ]);
        Some(pg)
    }

    fn ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        let out = Self::as_postgres(&self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Self::as_postgres(&self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

/// PostgreSQL restarted (fast shutdown, every connection dropped) while the worker drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_postgres_restart_mid_drain() {
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let mut env = vec![
        ("LATAMCTL_STORE", "postgres"),
        ("LATAMCTL_DATABASE_URL", pg.url.as_str()),
        ("LATAMCTL_DATABASE_QUERY_TIMEOUT", "2s"),
    ];
    env.extend(STRICT_WORKER);
    let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &env, dir.path());
    let load = Load::start(&serve.base, 8, Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pg.ctl(&["restart", "-m", "fast", "-w"]);
    let fixed = Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let acked = load.finish().await;
    let (stored, _) = account(&serve.base, &acked, Duration::from_secs(60)).await;
    let recovered_s = fixed.elapsed().as_secs_f64();
    assert_eq!(serve.terminate(), Some(0));
    FaultLine {
        fault: "PostgreSQL restart mid-drain",
        acked: acked.len(),
        stored,
        duplicates: postgres_duplicates(&pg.url).await,
        dlq: embedded_dlq(&data).await,
        recovered_s,
    }
    .check();
}

/// The database answers `SELECT 1` but refuses writes for 60 s (`break_sql`), then is fixed.
async fn writes_refused_for_a_minute(fault: &'static str, break_sql: &str, fix_sql: &str) {
    let Some(db) = app_role_database().await else {
        return;
    };
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let mut env = vec![
        ("LATAMCTL_STORE", "postgres"),
        ("LATAMCTL_DATABASE_URL", db.app_url.as_str()),
        ("LATAMCTL_DATABASE_QUERY_TIMEOUT", "2s"),
    ];
    env.extend(STRICT_WORKER);
    let serve = Serve::start(
        &["--data-dir", data.to_str().unwrap(), "--no-migrate"],
        &env,
        dir.path(),
    );
    let load = Load::start(&serve.base, 2, Duration::from_millis(100));
    tokio::time::sleep(Duration::from_secs(1)).await;
    db.exec(break_sql).await;
    db.reconnect_app().await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    db.exec(fix_sql).await;
    db.reconnect_app().await;
    let fixed = Instant::now();
    let acked = load.finish().await;
    let (stored, _) = account(&serve.base, &acked, Duration::from_secs(60)).await;
    let recovered_s = fixed.elapsed().as_secs_f64();
    assert_eq!(serve.terminate(), Some(0));
    let admin_url = {
        let mut u = reqwest::Url::parse(&db.app_url).unwrap();
        u.set_username("postgres").unwrap();
        u.to_string()
    };
    FaultLine {
        fault,
        acked: acked.len(),
        stored,
        duplicates: postgres_duplicates(&admin_url).await,
        dlq: embedded_dlq(&data).await,
        recovered_s,
    }
    .check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_postgres_revoke_insert_for_60_s() {
    writes_refused_for_a_minute(
        "PostgreSQL REVOKE INSERT for 60 s, then GRANT",
        "REVOKE INSERT ON records FROM {role}",
        "GRANT INSERT ON records TO {role}",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_postgres_read_only_for_60_s() {
    writes_refused_for_a_minute(
        "PostgreSQL default_transaction_read_only 60 s",
        "ALTER ROLE {role} SET default_transaction_read_only = on",
        "ALTER ROLE {role} RESET default_transaction_read_only",
    )
    .await;
}

/// The SNS endpoint unreachable for 30 s (SQS and PostgreSQL stay up): POSTs answer 503
/// meanwhile and are not acked; everything acked is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_sns_endpoint_cut_for_30_s() {
    let Some(moto) = super::cloud::Moto::new().await else {
        return;
    };
    let Some(db) = super::store::fresh_database().await else {
        return;
    };
    let proxy = Proxy::start(&moto.endpoint).await;
    let dir = support::tempdir();
    let mut env = moto.serve_env();
    env.extend([
        ("LATAMCTL_STORE", "postgres".to_owned()),
        ("LATAMCTL_DATABASE_URL", db.clone()),
        // Only SNS goes through the proxy.
        ("AWS_ENDPOINT_URL_SNS", format!("http://{}", proxy.addr)),
    ]);
    env.extend(STRICT_WORKER.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let serve = Serve::start(
        &["--data-dir", dir.path().join("d").to_str().unwrap()],
        &envs,
        dir.path(),
    );
    let load = Load::start(&serve.base, 2, Duration::from_millis(100));
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.set(false);
    tokio::time::sleep(Duration::from_secs(30)).await;
    proxy.set(true);
    let fixed = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked = load.finish().await;
    let (stored, _) = account(&serve.base, &acked, Duration::from_secs(60)).await;
    let recovered_s = fixed.elapsed().as_secs_f64();
    let (dlq_visible, _) = {
        let out = moto
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(&moto.dlq_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        let n = out
            .attributes
            .unwrap_or_default()
            .get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        (n, ())
    };
    assert_eq!(serve.terminate(), Some(0));
    FaultLine {
        fault: "SNS endpoint cut for 30 s (proxy)",
        acked: acked.len(),
        stored,
        duplicates: postgres_duplicates(&db).await,
        dlq: dlq_visible,
        recovered_s,
    }
    .check();
}

/// A loop-mounted ext4 filesystem of its own; unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
    mount: std::path::PathBuf,
}

impl SmallDisk {
    fn new(mb: u64) -> Result<SmallDisk, String> {
        let dir = support::tempdir();
        let image = dir.path().join("disk.img");
        let mount = dir.path().join("mnt");
        std::fs::create_dir_all(&mount).unwrap();
        let run = |cmd: &str, args: &[&str]| -> Result<(), String> {
            let out = std::process::Command::new(cmd)
                .args(args)
                .output()
                .map_err(|e| format!("{cmd}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{cmd} {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        };
        run(
            "truncate",
            &["-s", &format!("{mb}M"), image.to_str().unwrap()],
        )?;
        // -m 0: no blocks reserved for root, so the disk is full for this (root) process too.
        run(
            "mkfs.ext4",
            &["-q", "-F", "-m", "0", image.to_str().unwrap()],
        )?;
        run(
            "mount",
            &[
                "-o",
                "loop",
                image.to_str().unwrap(),
                mount.to_str().unwrap(),
            ],
        )?;
        Ok(SmallDisk { dir, mount })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: this test process may still hold the queue file open (its pool's tasks).
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mount)
            .status();
        let _ = &self.dir;
    }
}

/// The embedded data dir's filesystem full: POSTs fail (503, not acked) while it is full,
/// the worker's store writes fail store-wide (no DLQ), and after space is freed everything
/// acked is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_full_disk_for_the_embedded_data_dir() {
    let disk = match SmallDisk::new(40) {
        Ok(d) => d,
        Err(why) => {
            eprintln!(
                "FAULT full disk: SKIPPED, mounting a loop filesystem was refused here: {why}"
            );
            return;
        }
    };
    let data = disk.mount.join("data");
    let dir = support::tempdir();
    let serve = Serve::start(
        &["--data-dir", data.to_str().unwrap()],
        &STRICT_WORKER,
        dir.path(),
    );
    let load = Load::start(&serve.base, 4, Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Fill what is left, greedily: fallocate (so the blocks are really taken) in chunks that
    // halve whenever one is refused, until not even 64 KiB fits. One fill sized from `df`
    // raced the load, which keeps writing in between, and was refused now and then.
    let free = || {
        let out = std::process::Command::new("df")
            .args(["--output=avail", "-B1", disk.mount.to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse::<u64>().ok())
            .unwrap()
    };
    let mut fillers = Vec::new();
    let mut chunk: u64 = 8 << 20;
    while chunk >= 64 << 10 {
        let path = disk.mount.join(format!("filler-{}", fillers.len()));
        let taken = std::process::Command::new("fallocate")
            .args(["-l", &chunk.to_string(), path.to_str().unwrap()])
            .status()
            .is_ok_and(|s| s.success());
        if taken {
            fillers.push(path);
        } else {
            // A refused fallocate may leave a partial file behind.
            let _ = std::fs::remove_file(&path);
            chunk /= 2;
        }
    }
    assert!(
        free() < 1 << 20,
        "the disk is not full after filling it: {} bytes free",
        free()
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let metrics = serve.metrics(&client()).await;
    // Seed 4.2: the disk signal says so before anyone reads a 503. The gauge serve exports...
    let free_gauge: f64 = metrics
        .lines()
        .find(|l| l.starts_with("latamctl_data_dir_filesystem_free_bytes"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or_else(|| panic!("no data dir free-space gauge:\n{metrics}"));
    assert!(
        free_gauge < (2u64 << 20) as f64,
        "free bytes {free_gauge} on a full disk"
    );
    // ...and `status` fails its disk row.
    let status_config = dir.path().join("status.toml");
    std::fs::write(&status_config, format!("data_dir = {:?}\n", data)).unwrap();
    let (code, out, err) = support::run(
        &[
            "--config",
            status_config.to_str().unwrap(),
            "status",
            "--api",
            &serve.base,
            "--window",
            "0s",
            "--no-kubernetes",
            "-o",
            "json",
        ],
        &[],
        dir.path(),
    );
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let disk_row = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "disk")
        .unwrap_or_else(|| panic!("no disk row: {report}"))
        .clone();
    assert_eq!(disk_row["state"], "fail", "{disk_row}");
    assert!(
        disk_row["hint"]
            .as_str()
            .unwrap()
            .contains("refuses publishes"),
        "{disk_row}"
    );
    assert_eq!(code, 2, "{err}");
    for filler in &fillers {
        std::fs::remove_file(filler).unwrap();
    }
    let fixed = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked = load.finish().await;
    let (stored, _) = account(&serve.base, &acked, Duration::from_secs(60)).await;
    let recovered_s = fixed.elapsed().as_secs_f64();
    assert!(
        metrics.contains("status=\"503\""),
        "a full disk must answer 503 to POSTs:\n{metrics}"
    );
    if stored != acked.len() || std::env::var("LATAMCTL_FAULTS_DEBUG").is_ok() {
        let logs = serve.logs();
        let tail: Vec<&str> = logs.lines().rev().take(40).collect();
        eprintln!(
            "serve's last log lines:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    assert_eq!(serve.terminate(), Some(0));
    FaultLine {
        fault: "full disk under the embedded data dir (5 s)",
        acked: acked.len(),
        stored,
        duplicates: sqlite_duplicates(&data).await,
        dlq: embedded_dlq(&data).await,
        recovered_s,
    }
    .check();
}
