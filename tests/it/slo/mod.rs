//! SRE as code, end to end: the rendered rules in a real Prometheus scraping a real
//! `latamctl serve`, `latamctl slo` against that Prometheus and against `/metrics`, and the
//! committed rendered files against what the binary renders.
//!
//! Children: `prometheus` (rules, dashboards, analysis and `slo` on a real Prometheus),
//! `freshness` (the freshness SLI with the worker paused), `cli` (`slo` without a
//! Prometheus), `rendered` (`render` and the committed files).
//!
//! The Prometheus tests find the server through `LATAMCTL_TEST_PROMETHEUS_BIN` (set by
//! scripts/test.sh, which installs it from Debian).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::{self, Serve, client, post};

mod cli;
mod freshness;
mod prometheus;
mod rendered;

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
