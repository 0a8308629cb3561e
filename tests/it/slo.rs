//! SRE as code, end to end: the rendered rules in a real Prometheus scraping a real
//! `latamctl serve`, `latamctl slo` against that Prometheus and against `/metrics`, and the
//! committed rendered files against what the binary renders.
//!
//! The Prometheus tests find the server through `LATAMCTL_TEST_PROMETHEUS_BIN` (set by
//! scripts/test.sh, which installs it from Debian).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use latamctl::slo::SloSpec;
use serde_json::Value;

use super::support::{self, BIN, Serve, client, post};

/// A Prometheus server on a free loopback port; killed on drop.
struct Prometheus {
    child: Child,
    url: String,
    log: std::path::PathBuf,
}

impl Prometheus {
    /// Scrapes each target (host:port) every second with `rules` loaded; each gets the labels
    /// the Helm chart's monitors add (system, component, and the Argo Rollouts pod-template
    /// hash given with it) and a namespace.
    fn start(bin: &str, dir: &Path, rules: &Path, targets: &[(&str, &str)]) -> Prometheus {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: latamctl
    static_configs:
{targets}"#,
                rules = rules.display(),
                targets = targets
                    .iter()
                    .map(|(target, hash)| format!(
                        "      - targets: [\"{target}\"]\n        labels:\n          namespace: e2e-ns\n          system: e2e\n          component: api\n          rollouts_pod_template_hash: \"{hash}\"\n"
                    ))
                    .collect::<String>()
            ),
        )
        .unwrap();
        let log = dir.join("prometheus.log");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = std::process::Command::new("curl")
                .args(["-fsS", &format!("{}/-/ready", p.url)])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not become ready:\n{}",
                p.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn get(&self, http: &reqwest::Client, path: &str, query: &[(&str, &str)]) -> Value {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.url), query).unwrap();
        let body: Value = http.get(url).send().await.unwrap().json().await.unwrap();
        assert_eq!(body["status"], "success", "{body}");
        body["data"].clone()
    }

    /// An instant query: each series' labels and value.
    async fn query(&self, http: &reqwest::Client, q: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let data = self.get(http, "/api/v1/query", &[("query", q)]).await;
        data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = serde_json::from_value(s["metric"].clone()).unwrap();
                let v = s["value"][1].as_str().unwrap().parse::<f64>().unwrap();
                (labels, v)
            })
            .collect()
    }

    /// The active alerts: (name, state, value).
    async fn alerts(&self, http: &reqwest::Client) -> Vec<(String, String, f64)> {
        let data = self.get(http, "/api/v1/alerts", &[]).await;
        data["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["labels"]["alertname"].as_str().unwrap().to_owned(),
                    a["state"].as_str().unwrap().to_owned(),
                    a["value"]
                        .as_str()
                        .unwrap()
                        .parse::<f64>()
                        .unwrap_or(f64::NAN),
                )
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 500 ms until it returns `Some`, or fails after `limit` with `what`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                panic!("{what} did not happen within {limit:?}; last: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

async fn post_invalid(http: &reqwest::Client, base: &str) -> u16 {
    http.post(format!("{base}/ingresar-datos"))
        .json(&serde_json::json!({"topic_arn": "", "message": "x"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The real thing: `serve` scraped by Prometheus with the rendered rules; 10 % of the traffic
/// is rejected (400), so the recorded SLIs have known values and the 4xx+5xx alert fires.
/// The spec is the built-in one with two test overrides written into a copy: the error-rate
/// alert's `for` (3m → 3s) and the long-window evaluation interval (5m → 1s).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_evaluates_the_rendered_rules_against_serve() {
    let Some(prometheus_bin) = support::service("LATAMCTL_TEST_PROMETHEUS_BIN") else {
        return;
    };
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &[], dir.path());
    // A second, healthy `serve` of the same system: the stable ReplicaSet of an Argo Rollouts
    // release, while the first (which gets the rejected requests) is the new one.
    let stable_data = dir.path().join("stable-data");
    let stable = Serve::start(
        &["--data-dir", stable_data.to_str().unwrap()],
        &[],
        dir.path(),
    );

    let mut spec = SloSpec::builtin().unwrap();
    spec.spec.long_window_interval = Duration::from_secs(1);
    let alert = spec
        .spec
        .alerts
        .iter_mut()
        .find(|a| a.name == "LatamctlHighErrorRate")
        .unwrap();
    assert_eq!(alert.for_, Duration::from_secs(180), "the seed's 3 minutes");
    alert.for_ = Duration::from_secs(3);
    let spec_path = dir.path().join("slo.yaml");
    std::fs::write(&spec_path, serde_saphyr::to_string(&spec).unwrap()).unwrap();
    let rules = dir.path().join("rules.yaml");
    let (code, _, err) = support::run(
        &[
            "render",
            "alerts",
            "--slo",
            spec_path.to_str().unwrap(),
            "--out",
            rules.to_str().unwrap(),
        ],
        &[],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");

    let target = serve.base.trim_start_matches("http://").to_owned();
    let stable_target = stable.base.trim_start_matches("http://").to_owned();
    let prom = Prometheus::start(
        &prometheus_bin,
        dir.path(),
        &rules,
        &[(&target, "canary"), (&stable_target, "stable")],
    );
    let http = client();

    // Every series must exist before the measured traffic: rate() ignores a series' first
    // sample, so the counted increase is exactly the traffic below.
    post(&http, &serve.base, "warm-up").await.unwrap();
    assert_eq!(post_invalid(&http, &serve.base).await, 400);
    post(&http, &stable.base, "warm-up").await.unwrap();
    eventually(
        Duration::from_secs(30),
        "two scrapes of the warmed-up series",
        || async {
            let r = prom
                .query(
                    &http,
                    r#"count_over_time(http_requests_total{system="e2e",status="400"}[1m])"#,
                )
                .await;
            match r.first() {
                Some((_, n)) if *n >= 2.0 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;

    // 90 accepted, 10 rejected: 10 % errors (all 4xx), no 5xx; the stable version takes 20
    // good requests (10 of 120 for the system: still about 0.1).
    for i in 0..100 {
        if i % 10 == 9 {
            assert_eq!(post_invalid(&http, &serve.base).await, 400);
        } else {
            post(&http, &serve.base, &format!("message {i}"))
                .await
                .unwrap();
        }
        if i % 5 == 0 {
            post(&http, &stable.base, &format!("stable {i}"))
                .await
                .unwrap();
        }
    }

    let fired = eventually(
        Duration::from_secs(60),
        "LatamctlHighErrorRate firing",
        || async {
            let alerts = prom.alerts(&http).await;
            alerts
                .iter()
                .find(|(name, state, _)| name == "LatamctlHighErrorRate" && state == "firing")
                .cloned()
                .ok_or_else(|| format!("{alerts:?}"))
        },
    )
    .await;
    assert!(
        (0.05..=0.2).contains(&fired.2),
        "4xx+5xx ratio {} should be about 0.1",
        fired.2
    );

    let recorded =
        |slo: &str| format!(r#"latamctl_slo:sli_error:ratio_rate5m{{slo="{slo}",system="e2e"}}"#);
    let values = eventually(Duration::from_secs(30), "the recorded SLIs", || async {
        let mut values = BTreeMap::new();
        for slo in ["latency", "errors", "availability", "retries", "db_latency"] {
            match prom.query(&http, &recorded(slo)).await.as_slice() {
                [(labels, v)] => {
                    assert_eq!(labels["namespace"], "e2e-ns");
                    values.insert(slo, *v);
                }
                other => return Err(format!("{slo}: {other:?}")),
            }
        }
        Ok(values)
    })
    .await;
    // No 5xx series exists at all: 0, not "no data".
    assert_eq!(values["errors"], 0.0, "{values:?}");
    assert_eq!(values["availability"], 0.0, "{values:?}");
    assert_eq!(values["retries"], 0.0, "{values:?}");
    for slo in ["latency", "db_latency"] {
        assert!((0.0..=1.0).contains(&values[slo]), "{values:?}");
    }
    // The 30-day windows exist too (long-window group).
    let month = prom
        .query(
            &http,
            r#"latamctl_slo:sli_error:ratio_rate30d{slo="errors",system="e2e"}"#,
        )
        .await;
    assert_eq!(month.len(), 1, "{month:?}");
    let probe = prom
        .query(&http, r#"latamctl:up_and_ready:max{system="e2e"}"#)
        .await;
    assert_eq!(probe.first().map(|p| p.1), Some(1.0), "{probe:?}");
    // The gauges the CPU, memory and pool panels read are scraped.
    for q in [
        r#"latamctl_cpu_limit_cores{system="e2e",rollouts_pod_template_hash="canary"} > 0"#,
        r#"latamctl_memory_limit_bytes{system="e2e",rollouts_pod_template_hash="canary"} > 0"#,
        r#"latamctl_db_pool_connections{system="e2e",state="idle",rollouts_pod_template_hash="canary"}"#,
        r#"process_resident_memory_bytes{system="e2e",rollouts_pod_template_hash="canary"} > 0"#,
    ] {
        assert_eq!(prom.query(&http, q).await.len(), 1, "{q}");
    }
    let alerts = prom.alerts(&http).await;
    for quiet in [
        "LatamctlAvailabilityLow",
        "LatamctlErrorBudgetBurn",
        "LatamctlDeadLetters",
    ] {
        assert!(
            !alerts.iter().any(|(name, ..)| name == quiet),
            "{quiet} is active: {alerts:?}"
        );
    }

    // Every Grafana panel query is valid PromQL that this Prometheus answers.
    let dashboard: Value =
        serde_json::from_str(&latamctl::slo::dashboards::grafana(&spec).unwrap()).unwrap();
    let mut answered = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$namespace", ".*")
                .replace("$system", ".*");
            if !prom.query(&http, &expr).await.is_empty() {
                answered += 1;
            }
        }
    }
    assert!(
        answered >= 10,
        "only {answered} panel queries returned data"
    );

    // The Argo Rollouts analysis, as the chart's Rollout runs it: on the new ReplicaSet
    // ("canary", the serve that gets the rejected requests) the error-ratio metric fails at
    // the alert's threshold (the rollout would abort) while the slow-request metric, on fast
    // requests, passes; on the stable one (healthy) both pass, and its good requests do not
    // dilute the new version's ratio. promtool parses every query.
    let mut analysis_rules = String::from("groups:\n  - name: analysis\n    rules:\n");
    for m in latamctl::slo::rollouts::metrics(&spec) {
        let on = |hash: &str| {
            m.query
                .replace("{{args.system}}", "e2e")
                .replace("{{args.canary-hash}}", hash)
        };
        let mut value = BTreeMap::new();
        for hash in ["canary", "stable"] {
            let query = on(hash);
            let rows = prom.query(&http, &query).await;
            let v = match rows.as_slice() {
                [(_, v)] => *v,
                other => panic!("analysis {} on {hash}: {other:?} for {query}", m.name),
            };
            value.insert(hash, v);
        }
        match m.name.as_str() {
            "high-error-rate" => {
                assert!(
                    (0.05..=0.2).contains(&value["canary"]) && value["canary"] > m.threshold,
                    "error ratio {value:?} of the new version (10 % rejected) should fail the analysis (threshold {})",
                    m.threshold
                );
                assert_eq!(
                    value["stable"], 0.0,
                    "the healthy version's error ratio should be 0, passing the analysis: {value:?}"
                );
            }
            "slow-requests" => assert!(
                value.values().all(|v| *v <= m.threshold),
                "slow shares {value:?} should pass the analysis (threshold {})",
                m.threshold
            ),
            // Pipeline-wide (the worker is not in the canary): the same value on both, and
            // every message here was stored at once.
            "stale-messages" => {
                assert_eq!(value["canary"], value["stable"], "{value:?}");
                assert!(
                    value["canary"] <= m.threshold,
                    "stale share {value:?} should pass"
                );
            }
            other => panic!("unexpected analysis metric {other}"),
        }
        let query = on("canary");
        analysis_rules.push_str(&format!(
            "      - record: analysis:{}\n        expr: |\n{}\n",
            m.name.replace('-', "_"),
            query
                .lines()
                .map(|l| format!("          {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    if let Some(promtool) = support::service("LATAMCTL_TEST_PROMTOOL_BIN") {
        let file = dir.path().join("analysis-rules.yaml");
        std::fs::write(&file, &analysis_rules).unwrap();
        let out = std::process::Command::new(promtool)
            .args(["check", "rules"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Every column of the fleet dashboard answers with a row for this system.
    for expr in latamctl::slo::dashboards::fleet_queries(&spec).unwrap() {
        let expr = expr.replace("$namespace", ".*").replace("$system", ".*");
        let rows = prom.query(&http, &expr).await;
        assert!(
            rows.iter()
                .any(|(labels, _)| labels.get("system").map(String::as_str) == Some("e2e")),
            "fleet column {expr} has no row for e2e: {rows:?}"
        );
    }

    // `latamctl slo` against this Prometheus.
    let (code, out, err) = support::run(
        &[
            "slo",
            "--prometheus",
            &prom.url,
            "--scope",
            r#"system="e2e""#,
            "-o",
            "json",
        ],
        &[],
        dir.path(),
    );
    assert!(code == 0 || code == 1, "exit {code}: {err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let slos = report["slos"].as_array().unwrap();
    assert_eq!(slos.len(), 7, "{report}");
    let by_name = |n: &str| slos.iter().find(|s| s["slo"] == n).unwrap().clone();
    for name in [
        "errors",
        "availability",
        "retries",
        "freshness",
        "completeness",
    ] {
        let s = by_name(name);
        assert_eq!(s["sli"], 1.0, "{s}");
        assert_eq!(s["error_budget_remaining"], 1.0, "{s}");
        assert_eq!(s["burn_rate"], 0.0, "{s}");
        assert_eq!(s["state"], "ok", "{s}");
        assert_eq!(s["window"], "30d");
        assert_eq!(s["burn_window"], "1h");
        assert_eq!(s["scope"]["system"], "e2e");
        assert_eq!(s["scope"]["namespace"], "e2e-ns");
    }
    assert_eq!(by_name("errors")["objective"], 0.999);
    // Exit 1 exactly when a state pages or the budget is gone (latency depends on this
    // machine's speed, so it is checked for consistency, not for a value).
    let failing = slos
        .iter()
        .any(|s| s["state"] == "page" || s["state"] == "exhausted");
    assert_eq!(code, i32::from(failing), "{report}");

    // The table form names every SLO.
    let (_, table, _) = support::run(
        &[
            "slo",
            "--prometheus",
            &prom.url,
            "--scope",
            r#"system="e2e""#,
        ],
        &[],
        dir.path(),
    );
    for name in [
        "latency",
        "errors",
        "availability",
        "retries",
        "db_latency",
        "BUDGET LEFT",
    ] {
        assert!(table.contains(name), "{table}");
    }

    // `slo --fleet` against the same Prometheus: one set of queries for the fleet, each
    // system's rows from its `system` label; a system with no series is listed as no_data.
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        "[[system]]\nname = \"e2e\"\nconfig = \"e2e.toml\"\n\n[[system]]\nname = \"absent\"\nconfig = \"absent.toml\"\n",
    )
    .unwrap();
    let (fleet_code, out, err) = support::run(
        &[
            "slo",
            "--fleet",
            fleet.to_str().unwrap(),
            "--prometheus",
            &prom.url,
            "-o",
            "json",
        ],
        &[],
        dir.path(),
    );
    assert_eq!(fleet_code, code, "the same SLOs, the same exit: {err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let systems = report["systems"].as_array().unwrap();
    assert_eq!(systems.len(), 2, "{report}");
    let system = |n: &str| systems.iter().find(|s| s["system"] == n).unwrap().clone();
    let e2e = system("e2e");
    assert_eq!(e2e["slos"].as_array().unwrap().len(), 7, "{e2e}");
    let errors = e2e["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slo"] == "errors")
        .unwrap();
    assert_eq!(errors["state"], "ok", "{errors}");
    assert_eq!(errors["scope"]["system"], "e2e");
    let absent = system("absent");
    assert_eq!(absent["state"], "no_data", "{absent}");
    assert_eq!(absent["slos"].as_array().unwrap().len(), 7, "{absent}");
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .starts_with("2 systems:"),
        "{report}"
    );
    drop(prom);
    assert_eq!(serve.terminate(), Some(0));
}

#[test]
fn slo_explains_an_unreachable_prometheus() {
    let dir = support::tempdir();
    let (code, out, err) = support::run(
        &["slo", "--prometheus", "http://127.0.0.1:9", "-o", "json"],
        &[],
        dir.path(),
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "no data on stdout: {out}");
    assert!(
        err.contains("cannot query Prometheus at http://127.0.0.1:9"),
        "{err}"
    );
    assert!(err.contains("Check the URL"), "{err}");
}

/// Without Prometheus: sample a running serve's /metrics while traffic flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slo_samples_metrics_endpoints() {
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let serve = Serve::start(&["--data-dir", data.to_str().unwrap()], &[], dir.path());
    let http = client();
    post(&http, &serve.base, "before").await.unwrap();

    let base = serve.base.clone();
    let cwd = dir.path().to_owned();
    let sampler = tokio::task::spawn_blocking(move || {
        support::run(
            &[
                "slo",
                "--metrics",
                &base,
                "--window",
                "3s",
                "--interval",
                "500ms",
                "-o",
                "yaml",
            ],
            &[],
            &cwd,
        )
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    for i in 0..20 {
        post(&http, &serve.base, &format!("during {i}"))
            .await
            .unwrap();
    }
    let (code, out, err) = sampler.await.unwrap();
    assert!(code == 0 || code == 1, "exit {code}: {err}");
    let report: Value = serde_saphyr::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(
        report["source"]
            .as_str()
            .unwrap()
            .starts_with("metrics http://")
    );
    let slos = report["slos"].as_array().unwrap();
    let get = |n: &str| slos.iter().find(|s| s["slo"] == n).unwrap().clone();
    let errors = get("errors");
    assert_eq!(errors["sli"], 1.0, "{errors:?}");
    assert_eq!(errors["state"], "ok");
    assert_eq!(errors["window"], "3s");
    assert_eq!(get("availability")["sli"], 1.0);
    assert_eq!(get("retries")["sli"], 1.0);
    // The pipeline's own SLOs: every message stored within 5 s, none dead-lettered.
    let freshness = get("freshness");
    assert_eq!(freshness["sli"], 1.0, "{freshness:?}");
    assert_eq!(freshness["state"], "ok", "{freshness:?}");
    let completeness = get("completeness");
    assert_eq!(completeness["sli"], 1.0, "{completeness:?}");
    drop(serve);
}

/// The freshness SLI is the worker's view of POST-to-readable: with the worker stopped
/// (SIGSTOP) while the api keeps accepting, the messages it stores on resuming are older than
/// 5 s, and the recorded SLI of real Prometheus moves from 0 to about the stale share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_freshness_sli_moves_when_the_worker_is_paused() {
    let Some(prometheus_bin) = support::service("LATAMCTL_TEST_PROMETHEUS_BIN") else {
        return;
    };
    let dir = support::tempdir();
    let data = support::data_dir(dir.path());
    let data_arg = data.to_str().unwrap();
    let api = Serve::start(&["--data-dir", data_arg, "--role", "api"], &[], dir.path());
    let worker = Serve::start(
        &["--data-dir", data_arg, "--role", "worker"],
        &[],
        dir.path(),
    );
    let rules = dir.path().join("rules.yaml");
    let (code, _, err) = support::run(
        &["render", "alerts", "--out", rules.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let target = worker.base.trim_start_matches("http://").to_owned();
    let prom = Prometheus::start(&prometheus_bin, dir.path(), &rules, &[(&target, "stable")]);
    let http = client();
    let stored = |ids: Vec<uuid::Uuid>| {
        let (http, base) = (http.clone(), api.base.clone());
        async move {
            let missing = support::wait_stored(&http, &base, &ids, Duration::from_secs(60)).await;
            assert!(missing.is_empty(), "{} not stored", missing.len());
        }
    };
    let sli = r#"latamctl_slo:sli_error:ratio_rate5m{slo="freshness",system="e2e"}"#;

    // Warm-up, then 20 fresh messages: the SLI is 0.
    let mut ids = vec![post(&http, &api.base, "warm-up").await.unwrap()];
    stored(ids.clone()).await;
    eventually(Duration::from_secs(30), "the age histogram scraped twice", || async {
        let r = prom
            .query(&http, r#"count_over_time(latamctl_stored_message_age_seconds_count{system="e2e"}[1m])"#)
            .await;
        match r.first() {
            Some((_, n)) if *n >= 2.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    ids.clear();
    for i in 0..20 {
        ids.push(post(&http, &api.base, &format!("fresh {i}")).await.unwrap());
    }
    stored(ids.clone()).await;
    let fresh = eventually(
        Duration::from_secs(30),
        "the freshness SLI of fresh messages",
        || async {
            match prom.query(&http, sli).await.as_slice() {
                [(_, v)] if v.is_finite() => Ok(*v),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(fresh, 0.0, "every message was stored within 5 s");

    // Pause the worker, accept 20 more, wait past the 5 s threshold, resume.
    let pid = worker.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    ids.clear();
    for i in 0..20 {
        ids.push(post(&http, &api.base, &format!("late {i}")).await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    stored(ids).await;
    let stale = eventually(
        Duration::from_secs(60),
        "the freshness SLI after the pause",
        || async {
            match prom.query(&http, sli).await.as_slice() {
                [(_, v)] if *v > 0.3 => Ok(*v),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert!(stale <= 0.6, "20 of about 41 messages were late: {stale}");
    drop(prom);
    drop(worker);
    drop(api);
}

#[test]
fn render_rejects_a_bad_spec_clearly() {
    let dir = support::tempdir();
    let bad = dir.path().join("slo.yaml");
    std::fs::write(
        &bad,
        latamctl::slo::spec::DEFAULT_SPEC.replacen("target: 0.95", "target: 95", 1),
    )
    .unwrap();
    let (code, out, err) = support::run(
        &["render", "alerts", "--slo", bad.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("spec.slos[latency].target"), "{err}");
    assert!(err.contains("99.9 % is 0.999"), "{err}");
}

#[test]
fn render_writes_every_format() {
    let dir = support::tempdir();
    for (args, check) in [
        (["alerts", "prometheus"], "groups:"),
        (["alerts", "prometheus-rule"], "kind: PrometheusRule"),
        (["alerts", "datadog"], "datadog_monitor"),
        (["alerts", "cloudwatch"], "MetricAlarms"),
        (["dashboards", "grafana"], "\"schemaVersion\""),
        (["dashboards", "datadog"], "\"layout_type\""),
    ] {
        let out = dir.path().join(format!("{}-{}", args[0], args[1]));
        let (code, stdout, err) = support::run(
            &[
                "render",
                args[0],
                "--format",
                args[1],
                "--out",
                out.to_str().unwrap(),
            ],
            &[],
            dir.path(),
        );
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(stdout.is_empty(), "data goes to the file: {stdout}");
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains(check), "{args:?}");
    }
}

/// The committed copies (examples/alerts, the Helm chart's files) are what the binary
/// renders: scripts/render-artifacts.sh --check with this test's binary.
#[test]
fn rendered_artifacts_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/render-artifacts.sh"))
        .arg("--check")
        .env("LATAMCTL_BIN", BIN)
        .current_dir(root)
        .output()
        .expect("run scripts/render-artifacts.sh");
    assert!(
        out.status.success(),
        "committed rendered files are stale; run scripts/render-artifacts.sh\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
