//! Bounds whatever the requests: peak memory under 200 concurrent 1 MiB bodies, and the
//! metric series one process exposes.

use super::*;

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

/// `publish` keeps what a report needs (each message's id and latency), not every finished
/// request: 60,000 messages against an API that answers at once must not grow its memory
/// with the run. (Its tasks were joined only at the end, and each finished one kept its
/// allocation until then: 558 MB of peak RSS for 400,000 messages in a release build.)
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_memory_does_not_grow_with_the_run() {
    let app = axum::Router::new().route(
        "/ingresar-datos",
        axum::routing::post(|| async {
            axum::Json(serde_json::json!({"status": "OK", "transaction_id": Uuid::now_v7()}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = support::tempdir();
    let mut child = std::process::Command::new(support::BIN)
        .args([
            "publish", "--api", &api, "--count", "60000", "--rate", "1000000",
        ])
        .args(["--concurrency", "32", "--max-p95", "1h", "-o", "json"])
        .current_dir(dir.path())
        .env_remove("LATAMCTL_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let rss = |field: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    // The size once it is sending (its code mapped, its runtime and client built).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = rss("VmRSS:").expect("publish is running");
    let mut peak = start;
    while child.try_wait().unwrap().is_none() {
        if let Some(hwm) = rss("VmHWM:") {
            peak = peak.max(hwm);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["acked"], 60000, "{report}");
    let growth_mb = peak.saturating_sub(start) / 1024;
    eprintln!(
        "publish: {} MB once sending, peak {} MB",
        start / 1024,
        peak / 1024
    );
    assert!(
        growth_mb < 40,
        "publish grew {growth_mb} MB over 60,000 messages (from {} MB): it keeps what it no longer needs",
        start / 1024
    );
}
