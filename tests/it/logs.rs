//! Logs an SRE can alert on (issue #30): JSON lines with a top-level `message`, probes that
//! never log above DEBUG, other 5xx at ERROR rate-limited per route and status, and the log
//! level changed at run time by SIGHUP.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::{self, Serve};

/// The JSON lines of a serve's stderr.
fn json_lines(serve: &Serve) -> Vec<Value> {
    serve
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .collect()
}

async fn wait_for_log(serve: &Serve, text: &str, within: Duration) {
    let until = Instant::now() + within;
    while !serve.logs().contains(text) {
        assert!(Instant::now() < until, "no {text:?} in:\n{}", serve.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_flat_and_probe_failures_stay_quiet() {
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    // A database nobody answers on: /readyz and GET /data/{id} answer 503.
    let env = [
        ("LATAMCTL_LOG_FORMAT", "json"),
        ("LATAMCTL_STORE", "postgres"),
        (
            "LATAMCTL_DATABASE_URL",
            "postgres://latam@127.0.0.1:1/ingest",
        ),
        ("LATAMCTL_DATABASE_QUERY_TIMEOUT", "1s"),
    ];
    let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &env, dir.path());
    let http = support::client();
    for _ in 0..20 {
        let r = http.get(serve.url("/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 503);
    }
    let id = uuid::Uuid::new_v4();
    // At once, so all 20 fall in one rate-limit interval (each waits out the query timeout).
    let url = serve.url(&format!("/data/{id}"));
    let gets = (0..20).map(|_| http.get(&url).send());
    for r in futures::future::join_all(gets).await {
        let r = r.unwrap();
        assert_eq!(r.status(), 503, "{}", r.text().await.unwrap());
    }
    let page = serve.metrics(&http).await;
    assert!(
        page.lines().any(|l| l.starts_with("http_requests_total")
            && l.contains("route=\"/readyz\"")
            && l.contains("status=\"503\"")
            && l.ends_with(" 20")),
        "every probe is counted: {page}"
    );
    let lines = json_lines(&serve);
    assert!(!lines.is_empty(), "no JSON log line in:\n{}", serve.logs());

    // Every line carries the attributes log pipelines index, at the top level.
    for line in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line.get(key).is_some(), "no top-level {key}: {line}");
        }
        assert!(line.get("fields").is_none(), "{line}");
    }
    // The probes: never above DEBUG.
    let loud: Vec<&Value> = lines
        .iter()
        .filter(|l| matches!(l["level"].as_str(), Some("ERROR" | "WARN")))
        .filter(|l| l.to_string().contains("/readyz"))
        .collect();
    assert!(loud.is_empty(), "probe responses logged: {loud:?}");
    // The other 5xx: one ERROR line for 20 answers, with the request's span.
    let errors: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request answered with a server error")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = errors[0];
    assert_eq!(e["level"], "ERROR", "{e}");
    assert_eq!(e["route"], "/data/{transaction_id}", "{e}");
    assert_eq!(e["status"], 503, "{e}");
    assert_eq!(e["span"]["path"], format!("/data/{id}"), "{e}");
    assert!(e["span"]["request_id"].is_string(), "{e}");
    assert_eq!(e["suppressed_since_last"], 0, "{e}");
    assert_eq!(serve.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_the_configs_log_level_without_a_restart() {
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let config = dir.path().join("latamctl.toml");
    std::fs::write(&config, "[log]\nlevel = \"info\"\n").unwrap();
    let serve = Serve::start(
        &["--data-dir", data.to_str().unwrap()],
        &[("RUST_LOG", "")],
        dir.path(),
    );
    let http = support::client();
    let debug_line = "started processing request";
    http.get(serve.url("/healthz")).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!serve.logs().contains(debug_line), "{}", serve.logs());

    std::fs::write(&config, "[log]\nlevel = \"info,tower_http=debug\"\n").unwrap();
    let pid = serve.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_for_log(&serve, "SIGHUP: log level changed", Duration::from_secs(5)).await;
    http.get(serve.url("/healthz")).send().await.unwrap();
    wait_for_log(&serve, debug_line, Duration::from_secs(5)).await;

    // A filter that does not parse leaves the level as it is, and says why.
    std::fs::write(&config, "[log]\nlevel = \"tower_http=loud\"\n").unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status();
    wait_for_log(&serve, "the log level is unchanged", Duration::from_secs(5)).await;
    assert_eq!(serve.terminate(), Some(0));
}
