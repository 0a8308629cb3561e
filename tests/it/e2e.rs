//! The real binary on a free port: end to end, crash safety, graceful shutdown, CLI errors.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use latamctl::store::sqlite::SqliteStore;
use uuid::Uuid;

use super::support::{self, Serve, client, post, wait_stored};

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

#[tokio::test]
async fn serve_reports_bad_configuration_and_exits_2() {
    let dir = support::tempdir();
    std::fs::write(
        dir.path().join("latamctl.toml"),
        "[worker]\nconcurency = 3\n",
    )
    .unwrap();
    let (code, _, stderr) = support::run(&["serve"], &[], dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("concurency") && stderr.contains("latamctl.toml"),
        "{stderr}"
    );

    let empty = support::tempdir();
    let (code, _, stderr) = support::run(
        &["serve", "--bus", "aws", "--aws-region", "us-east-1"],
        &[],
        empty.path(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("LATAMCTL_AWS_TOPIC_ARN"), "{stderr}");

    let (code, _, stderr) = support::run(
        &["serve", "--store", "postgres"],
        &[("DATABASE_URL", "")],
        empty.path(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[tokio::test]
async fn api_and_worker_roles_share_a_data_dir() {
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let data_arg = data.to_str().unwrap();
    let api = Serve::start(&["--role", "api", "--data-dir", data_arg], &[], dir.path());
    let http = client();
    let id = post(&http, &api.base, "split roles").await.unwrap();
    // No worker yet: the message waits in the queue.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = http
        .get(api.url(&format!("/data/{id}")))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    let worker = Serve::start(
        &["--role", "worker", "--data-dir", data_arg],
        &[],
        dir.path(),
    );
    let ready = http.get(worker.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let not_ingest = http
        .get(worker.url("/data/00000000-0000-7000-8000-000000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(not_ingest.status(), 404);
    let missing = wait_stored(&http, &api.base, &[id], Duration::from_secs(30)).await;
    assert!(missing.is_empty());
    assert_eq!(worker.terminate(), Some(0));
    assert_eq!(api.terminate(), Some(0));
}

#[tokio::test]
async fn config_show_redacts_secrets_and_lists_env_names() {
    let dir = support::tempdir();
    let (code, stdout, stderr) = support::run(
        &["config", "show", "-o", "json"],
        &[
            ("LATAMCTL_API_TOKEN", "t0ps3cret"),
            ("DATABASE_URL", "postgres://app:hunter2@db:5432/app"),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stdout.contains("t0ps3cret") && !stdout.contains("hunter2"),
        "{stdout}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["config"]["api"]["token"], "<redacted>");
    assert_eq!(
        v["config"]["database"]["url"],
        "postgres://app:<redacted>@db:5432/app"
    );

    let (code, stdout, _) = support::run(&["config", "show"], &[], dir.path());
    assert_eq!(code, 0);
    assert!(stdout.contains("LATAMCTL_AWS_QUEUE_URL"), "{stdout}");
}

/// Secrets from files, the way Kubernetes mounts them: `serve --api-token-file` guards the
/// API with the file's token (nothing secret on the command line), `DATABASE_URL_FILE` works
/// like `DATABASE_URL`, and `config show` names where each secret came from, not its value.
#[tokio::test]
async fn secrets_come_from_files_and_config_show_names_their_source() {
    let dir = support::tempdir();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "f1le-t0ken\n").unwrap();
    let url_file = dir.path().join("database-url");
    std::fs::write(&url_file, "postgres://app:hunter2@db:5432/app\n").unwrap();
    let token_path = token_file.to_str().unwrap();
    let url_path = url_file.to_str().unwrap();

    let (code, stdout, stderr) = support::run(
        &["config", "show", "-o", "json"],
        &[
            ("LATAMCTL_API_TOKEN_FILE", token_path),
            ("DATABASE_URL_FILE", url_path),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stdout.contains("f1le-t0ken") && !stdout.contains("hunter2"),
        "{stdout}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["config"]["api"]["token"], "<redacted>");
    assert_eq!(v["secrets"]["api.token"], format!("file {token_path}"));
    assert_eq!(v["secrets"]["database.url"], format!("file {url_path}"));
    assert_eq!(v["secrets"]["database.password"], "unset");

    // A value and its file both set: which wins would be a guess.
    let (code, _, stderr) = support::run(
        &["config", "show"],
        &[
            ("LATAMCTL_API_TOKEN_FILE", token_path),
            ("LATAMCTL_API_TOKEN", "other"),
        ],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("api.token_file"), "{stderr}");
    // A file that is not there names the key and the path.
    let (code, _, stderr) = support::run(
        &["config", "show"],
        &[("LATAMCTL_API_TOKEN_FILE", "/nonexistent/token")],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("api.token_file") && stderr.contains("/nonexistent/token"),
        "{stderr}"
    );

    let data = support::data_dir(dir.path());
    let serve = support::Serve::start(
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--api-token-file",
            token_path,
        ],
        &[],
        dir.path(),
    );
    let http = reqwest::Client::new();
    let body = serde_json::json!({"topic_arn": "data-ingestion-topic", "message": "m"});
    let url = format!("{}/ingresar-datos", serve.base);
    let denied = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let allowed = http
        .post(&url)
        .bearer_auth("f1le-t0ken")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
}

#[test]
fn example_configs_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["examples/latamctl.toml", "examples/latamctl.aws.toml"] {
        let path = root.join(file);
        let (code, stdout, stderr) = support::run(
            &[
                "config",
                "show",
                "-o",
                "json",
                "--config",
                path.to_str().unwrap(),
            ],
            &[],
            root,
        );
        assert_eq!(code, 0, "{file}: {stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["file"], path.to_str().unwrap());
    }
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

/// Peak resident memory of `serve`, from /proc (kB).
#[cfg(target_os = "linux")]
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// 200 concurrent 1 MiB bodies (the body limit) against one `serve`: every one answered
/// with JSON (413 for the oversized message, or 503 `overloaded` past `api.max_in_flight`),
/// nothing stored, the process alive, and the growth of peak RSS within what
/// `api.max_in_flight` promises: at most that many bodies (128 × 1 MiB at the defaults). The
/// process's own size (about 40 MB in a debug build, most of it the binary's mapped code) is
/// measured before and left out, so a bigger binary does not read as a leak.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_one_mib_bodies_keep_memory_bounded() {
    const LIMIT_MB: u64 = 128;
    let dir = support::tempdir();
    // The defaults: api.max_in_flight = 128, api.body_limit_bytes = 1 MiB.
    let serve = Serve::start(
        &["--data-dir", dir.path().join("d").to_str().unwrap()],
        &[],
        dir.path(),
    );
    let http = client();
    let before = peak_rss_kb(serve.child.id());
    let body = Arc::new(
        serde_json::json!({"topic_arn": "data-ingestion-topic", "message": "x".repeat(1024 * 1024 - 64)})
            .to_string(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (http, url, body) = (http.clone(), serve.url("/ingresar-datos"), body.clone());
        tasks.spawn(async move {
            let sent = http
                .post(url)
                .header("content-type", "application/json")
                .body(body.as_ref().clone())
                .send()
                .await;
            // A shed request is answered before its body is read; the server then closes
            // the connection, which a client still writing 1 MiB sees as a reset.
            let Ok(resp) = sent else {
                return (0, "closed before the body was read".to_owned());
            };
            let status = resp.status().as_u16();
            let json: serde_json::Value = resp.json().await.unwrap_or_default();
            (
                status,
                json["error"].as_str().unwrap_or_default().to_owned(),
            )
        });
    }
    let mut by_outcome = std::collections::BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        *by_outcome.entry(r.unwrap()).or_insert(0) += 1;
    }
    let peak = peak_rss_kb(serve.child.id());
    eprintln!(
        "200 x 1 MiB bodies: outcomes {by_outcome:?}; peak RSS {} MB before, {} MB after (growth limit {LIMIT_MB} MB)",
        before / 1024,
        peak / 1024
    );
    let growth_mb = peak.saturating_sub(before) / 1024;
    assert!(
        by_outcome
            .keys()
            .all(|(s, e)| (*s == 413 && e == "message_too_large")
                || (*s == 503 && e == "overloaded")
                || *s == 0),
        "{by_outcome:?}"
    );
    assert!(
        growth_mb <= LIMIT_MB,
        "peak RSS grew by {growth_mb} MB > {LIMIT_MB} MB (max_in_flight × body limit)"
    );
    let health = http.get(serve.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

/// `serve --role api` and a `--role worker` process on one data dir, under load: the api
/// takes a backlog alone, then keeps taking publishes while the worker drains it. Every
/// publish is answered 200 and every acked message is stored (both processes write
/// `queue.db`, through the cross-process lock handling in `sqlite`).
///
/// Starvation itself (SQLite's own busy handler let a release-built worker starve the api:
/// 320 of 5,000 publishes 503 with a 300,000 backlog) only shows at release speed with a
/// large backlog, so it is measured by `scripts/bench.sh --only backlog`, not asserted here:
/// this test passes with either busy handler in a debug build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_worker_processes_on_one_data_dir_under_load_lose_nothing() {
    const BACKLOG: u64 = 30_000;
    const DURING: u64 = 2_000;
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let data_arg = data.to_str().unwrap().to_owned();
    let api = Serve::start(&["--role", "api", "--data-dir", &data_arg], &[], dir.path());
    let publish = |count: u64, rate: &str| {
        let (code, out, err) = support::run(
            &[
                "publish",
                "--api",
                &api.base,
                "--count",
                &count.to_string(),
                "--rate",
                rate,
                "--concurrency",
                "32",
                "--max-p95",
                "1h",
                "-o",
                "json",
            ],
            &[],
            dir.path(),
        );
        let report: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
        (code, report)
    };
    let (code, filled) = tokio::task::block_in_place(|| publish(BACKLOG, "1000000"));
    assert_eq!(
        (code, filled["acked"].as_u64()),
        (0, Some(BACKLOG)),
        "{filled}"
    );
    // Durations in JSON read like the flags that set them, not `{"secs":20,"nanos":0}`.
    assert_eq!(filled["shape"]["period"], "20s", "{}", filled["shape"]);

    let worker = Serve::start(
        &["--role", "worker", "--data-dir", &data_arg],
        &[],
        dir.path(),
    );
    let (code, during) = tokio::task::block_in_place(|| publish(DURING, "400"));
    assert_eq!(during["errors"], serde_json::json!({}), "{during}");
    assert_eq!(
        (code, during["acked"].as_u64()),
        (0, Some(DURING)),
        "{during}"
    );

    // Nothing acked is lost: every message of both runs is stored.
    let store = SqliteStore::open(&data, Duration::from_secs(5))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while store.count().await.unwrap() < BACKLOG + DURING {
        assert!(std::time::Instant::now() < deadline, "{}", worker.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(store.count().await.unwrap(), BACKLOG + DURING);
    assert_eq!(worker.terminate(), Some(0));
    assert_eq!(api.terminate(), Some(0));
}

/// `--version` names the build's commit and features; `completions --man DIR` writes a page
/// per command, examples included; every `--help` shows examples.
#[test]
fn version_man_pages_and_help_examples() {
    let dir = support::tempdir();
    let (code, stdout, stderr) = support::run(&["--version"], &[], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("features: none"), "{stdout}");
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Some(out) = head.ok().filter(|o| o.status.success()) {
        let commit = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(
            stdout.contains(&format!("commit {commit}")),
            "{stdout} is not built from {commit}"
        );
    }

    let man = dir.path().join("man");
    let (code, stdout, stderr) = support::run(
        &["completions", "--man", man.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    for page in [
        "latamctl.1",
        "latamctl-serve.1",
        "latamctl-render-helm.1",
        "latamctl-status.1",
    ] {
        assert!(stdout.contains(page), "{page} not listed: {stdout}");
        let text = std::fs::read_to_string(man.join(page)).unwrap();
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page} is not a man page"
        );
    }
    let serve = std::fs::read_to_string(man.join("latamctl-serve.1")).unwrap();
    assert!(
        serve.contains("Examples:") && serve.contains("\\-\\-api\\-token\\-file"),
        "{serve}"
    );

    let (code, stdout, _) = support::run(&["status", "--help"], &[], dir.path());
    assert_eq!(code, 0);
    assert!(stdout.contains("Examples:\n  latamctl status"), "{stdout}");
    let (code, _, stderr) = support::run(&["completions"], &[], dir.path());
    assert_eq!(code, 2, "SHELL or --man is required: {stderr}");
}

/// `status --fleet`: ten live `serve` processes, one with a message in its dead-letter
/// queue, one whose API does not answer, one whose config file is missing. Every system has
/// its row with the right state, worst first, the summary counts them, the exit code is the
/// worst state, and `--only` filters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_fleet_reports_every_system_worst_first() {
    let dir = support::tempdir();
    let mut fleet = String::new();
    let mut servers = Vec::new();
    for i in 0..10 {
        let data = dir.path().join(format!("data{i}"));
        let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &[], dir.path());
        let config = dir.path().join(format!("sys{i}.toml"));
        std::fs::write(
            &config,
            format!("name = \"sys{i}\"\ndata_dir = \"{}\"\n", data.display()),
        )
        .unwrap();
        fleet.push_str(&format!(
            "[[system]]\nname = \"sys{i}\"\nconfig = \"sys{i}.toml\"\napi = \"{}\"\nlabels = {{ team = \"t{}\" }}\n\n",
            serve.base,
            i % 2
        ));
        servers.push((serve, data));
    }
    // A message in sys3's dead-letter queue.
    let queue = servers[3].1.join("queue.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", queue.display()))
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    sqlx::query(
        "INSERT INTO messages (message_id, queue, body, attributes, sent_at, visible_at) VALUES ('poison', 'dlq', 'x', '{}', ?, ?)",
    )
    .bind(now)
    .bind(now)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    // An API nobody listens on, and a config that is not there.
    std::fs::write(dir.path().join("down.toml"), "name = \"down\"\n").unwrap();
    fleet.push_str(
        "[[system]]\nname = \"down\"\nconfig = \"down.toml\"\napi = \"http://127.0.0.1:1\"\n\n[[system]]\nname = \"ghost\"\nconfig = \"missing.toml\"\n",
    );
    let file = dir.path().join("fleet.toml");
    std::fs::write(&file, fleet).unwrap();
    let file = file.to_str().unwrap().to_owned();

    let run = |extra: &[&str]| {
        let mut args = vec![
            "status",
            "--fleet",
            file.as_str(),
            "--window",
            "0s",
            "--no-kubernetes",
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        support::run(&args, &[], dir.path())
    };
    let (code, out, err) = tokio::task::block_in_place(|| run(&[]));
    assert_eq!(code, 2, "a failed system makes exit 2: {err}");
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let systems = report["systems"].as_array().unwrap();
    assert_eq!(systems.len(), 12, "{report}");
    let state = |name: &str| {
        systems
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no row for {name}: {report}"))
            .clone()
    };
    let ghost = state("ghost");
    assert_eq!(ghost["state"], "fail");
    assert_eq!(ghost["worst"], "config");
    assert!(
        ghost["hint"].as_str().unwrap().contains("missing.toml"),
        "{ghost}"
    );
    let down = state("down");
    assert_eq!(down["state"], "fail", "{down}");
    assert_eq!(down["worst"], "api", "{down}");
    let dlq = state("sys3");
    assert_eq!(dlq["state"], "warn", "{dlq}");
    assert_eq!(dlq["worst"], "dlq", "{dlq}");
    assert_eq!(dlq["dlq_depth"], "1", "{dlq}");
    for i in [0, 1, 2, 4, 5, 6, 7, 8, 9] {
        let row = state(&format!("sys{i}"));
        assert_eq!(row["state"], "ok", "{row}");
        assert!(row["db_latency_ms"].is_string(), "{row}");
    }
    assert_eq!(state("sys1")["labels"]["team"], "t1");
    // Worst first.
    let order: Vec<&str> = systems
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(&order[..3], ["fail", "fail", "warn"], "{order:?}");
    assert_eq!(report["summary"], "12 systems: 9 ok, 1 warn, 2 fail");
    assert_eq!(report["overall"], "fail");

    let (code, out, _) = tokio::task::block_in_place(|| run(&["--only", "warn"]));
    assert_eq!(
        code, 2,
        "the exit code is the fleet's, not the filtered rows'"
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = report["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sys3"]);

    // `slo --fleet` samples every system's /metrics while `publish --fleet` smoke-tests
    // them: the live systems have SLO rows with data, the dead API and the missing config
    // are error rows (exit 2).
    let slo_run = {
        let (file, cwd) = (file.clone(), dir.path().to_owned());
        std::thread::spawn(move || {
            support::run(
                &[
                    "slo",
                    "--fleet",
                    &file,
                    "--window",
                    "4s",
                    "--interval",
                    "1s",
                    "-o",
                    "json",
                ],
                &[],
                &cwd,
            )
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let (code, out, err) = tokio::task::block_in_place(|| {
        support::run(
            &[
                "publish",
                "--fleet",
                file.as_str(),
                "--count",
                "20",
                "--rate",
                "10",
                "--verify",
                "--verify-timeout",
                "10s",
                // The machine runs ten debug serves and other tests at once: what is checked
                // is that every system is published to and verified, not its latency.
                "--max-p95",
                "10s",
                "-o",
                "json",
            ],
            &[],
            dir.path(),
        )
    });
    assert_eq!(code, 2, "a system that cannot run makes exit 2: {err}");
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let rows = report["systems"].as_array().unwrap();
    assert_eq!(rows.len(), 12, "{report}");
    let row = |name: &str| rows.iter().find(|r| r["system"] == name).unwrap().clone();
    assert_eq!(rows[0]["system"], "ghost", "errors first: {report}");
    assert_eq!(row("ghost")["state"], "error");
    assert!(
        row("ghost")["error"]
            .as_str()
            .unwrap()
            .contains("missing.toml")
    );
    let down = row("down");
    assert_eq!(down["state"], "failed", "{down}");
    assert_eq!(down["report"]["acked"], 0, "{down}");
    for i in 0..10 {
        let r = row(&format!("sys{i}"));
        assert_eq!(r["state"], "passed", "{r}");
        assert_eq!(r["report"]["verified"]["stored"], 20, "{r}");
    }
    assert_eq!(
        report["summary"],
        "12 systems: 10 passed, 1 failed, 1 error"
    );

    let (code, out, err) = slo_run.join().unwrap();
    assert_eq!(code, 2, "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    let rows = report["systems"].as_array().unwrap();
    assert_eq!(rows.len(), 12, "{report}");
    let row = |name: &str| rows.iter().find(|r| r["system"] == name).unwrap().clone();
    for name in ["down", "ghost"] {
        assert_eq!(row(name)["state"], "error", "{report}");
    }
    for i in 0..10 {
        let r = row(&format!("sys{i}"));
        let errors = r["slos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["slo"] == "errors")
            .unwrap_or_else(|| panic!("{r}"))
            .clone();
        assert_eq!(errors["state"], "ok", "sys{i} had traffic and no 5xx: {r}");
        assert_eq!(errors["sli"], 1.0, "{r}");
    }

    // A fleet file with a typo is an error naming the file and the key.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[system]]\nname = \"a\"\nconfg = \"a.toml\"\n").unwrap();
    let (code, _, err) = support::run(
        &["status", "--fleet", bad.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml") && err.contains("confg"), "{err}");
    for (serve, _) in servers {
        drop(serve);
    }
}

/// Most series one `serve` process (api and worker, embedded) may expose. docs/operating.md's
/// "Series budget" states it and multiplies it by a fleet's size; raising it is a decision,
/// not a side effect.
const SERIES_BUDGET: usize = 400;

/// The seed's warning (4.5) that monitoring saturates as series multiply: after every route
/// and every error path has been exercised, one process exposes fewer series than the budget,
/// and no label carries a request's id, path or method as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_stay_within_the_budget_whatever_the_requests() {
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token").unwrap();
    let serve = Serve::start(
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--api-token-file",
            token.to_str().unwrap(),
        ],
        &[],
        dir.path(),
    );
    let http = client();
    let base = &serve.base;
    let post = |body: String, ct: &'static str, key: Option<&str>, auth: bool| {
        let mut req = http
            .post(format!("{base}/ingresar-datos"))
            .header("content-type", ct)
            .body(body);
        if auth {
            req = req.bearer_auth("s3cret-token");
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k.to_owned());
        }
        req.send()
    };
    let ok = serde_json::json!({"topic_arn": "data-ingestion-topic", "message": "m"}).to_string();
    let mut ids = Vec::new();
    for i in 0..50 {
        let r = post(
            serde_json::json!({"topic_arn": "data-ingestion-topic", "message": format!("m{i}")})
                .to_string(),
            "application/json",
            Some(&format!("key-{i}")),
            true,
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        ids.push(v["transaction_id"].as_str().unwrap().to_owned());
    }
    // Every error path of the ingest route.
    let cases: Vec<(String, &'static str, Option<&str>, bool, u16)> = vec![
        (ok.clone(), "application/json", None, false, 401),
        ("{".into(), "application/json", None, true, 400),
        (ok.clone(), "text/plain", None, true, 415),
        (
            serde_json::json!({"topic_arn": "nope", "message": "m"}).to_string(),
            "application/json",
            None,
            true,
            403,
        ),
        (
            serde_json::json!({"topic_arn": "data-ingestion-topic", "message": "  "}).to_string(),
            "application/json",
            None,
            true,
            400,
        ),
        (
            serde_json::json!({"topic_arn": "data-ingestion-topic", "message": "x".repeat(300 * 1024)})
                .to_string(),
            "application/json",
            None,
            true,
            413,
        ),
        (
            serde_json::json!({"topic_arn": "data-ingestion-topic", "message": "other"})
                .to_string(),
            "application/json",
            Some("key-1"),
            true,
            422,
        ),
    ];
    for (body, ct, key, auth, want) in cases {
        let r = post(body, ct, key, auth).await.unwrap();
        let status = r.status().as_u16();
        assert_eq!(
            status,
            want,
            "{ct} {key:?} {auth}: {}",
            r.text().await.unwrap()
        );
    }
    // Stored (the worker's series exist too) before the reads.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while http
        .get(format!("{base}/data/{}", ids[49]))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(std::time::Instant::now() < deadline, "not stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (path, want) in [
        (format!("/data/{}", ids[0]), 200),
        (format!("/data/{}", Uuid::now_v7()), 404),
        ("/data/not-a-uuid".to_owned(), 400),
        ("/healthz".into(), 200),
        ("/readyz".into(), 200),
        ("/openapi.json".into(), 200),
        ("/no/such/route/98765".into(), 404),
        ("/ingresar-datos".into(), 405),
    ] {
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth("s3cret-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{path}");
    }
    for method in ["PATCH", "PURGE", "FROB"] {
        let r = http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{base}/healthz"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 405);
    }
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    eprintln!("{} series", series.len());
    assert!(
        series.len() <= SERIES_BUDGET,
        "{} series, budget {SERIES_BUDGET}:\n{}",
        series.len(),
        series.join("\n")
    );
    for needle in [
        ids[0].as_str(),
        "98765",
        "not-a-uuid",
        "FROB",
        "PURGE",
        "key-1",
        "s3cret",
    ] {
        assert!(
            !text.contains(needle),
            "a label carries request input {needle:?}"
        );
    }
    // Every label value comes from a bounded set: no number-heavy or free-form values.
    let label_values = regex::Regex::new(r#"="([^"]*)""#).unwrap();
    let mut values: HashSet<&str> = HashSet::new();
    for line in &series {
        for c in label_values.captures_iter(line) {
            values.insert(c.get(1).unwrap().as_str());
        }
    }
    assert!(
        values.len() < 120,
        "{} distinct label values: {values:?}",
        values.len()
    );
}
