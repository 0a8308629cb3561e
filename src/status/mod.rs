//! `latamctl status`: every component's health and key figures, for runbooks.
//!
//! Checks run concurrently, each under its own timeout; a check that cannot answer is a
//! `fail` with a hint, never a hang. Thresholds come from `[status]` in the config, with the
//! seed's numbers as defaults.

mod api;
mod aws;
mod database;
mod disk;
mod eks;
pub mod kubernetes;
mod rds;

use api::check_api;
pub use api::{HttpFigures, http_figures};
use aws::{check_sns_dlq, check_topic, oldest_age_from_cloudwatch};
use database::check_store;
use eks::check_eks;
use rds::check_rds;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::bus::{Queue, QueueStats};
use crate::cloud::CloudClients;
use crate::config::Config;
use crate::store::Store;

/// Health of one component; ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Skipped,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub component: String,
    pub state: State,
    /// Key figures, e.g. `visible: 3`.
    pub figures: BTreeMap<String, String>,
    /// What to do when not ok.
    pub hint: String,
}

impl Check {
    pub fn new(component: impl Into<String>, state: State) -> Self {
        Self {
            component: component.into(),
            state,
            figures: BTreeMap::new(),
            hint: String::new(),
        }
    }

    pub fn figure(mut self, key: &str, value: impl ToString) -> Self {
        self.figures.insert(key.to_owned(), value.to_string());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }

    /// Raises the state to `state` (never lowers it) with a hint.
    pub fn worsen(&mut self, state: State, hint: impl Into<String>) {
        if state > self.state {
            self.state = state;
        }
        let hint = hint.into();
        if !hint.is_empty() {
            if !self.hint.is_empty() {
                self.hint.push_str("; ");
            }
            self.hint.push_str(&hint);
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub overall: State,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(checks: Vec<Check>) -> Self {
        let overall = checks
            .iter()
            .map(|c| c.state)
            .filter(|s| *s != State::Skipped)
            .max()
            .unwrap_or(State::Ok);
        Self { overall, checks }
    }
}

/// What `status` checks besides the config: the API URL, and a Kubernetes client.
pub struct Targets {
    pub api: Option<String>,
    pub api_token: Option<String>,
    /// The API's error ratio and p95 are over this window (two `/metrics` samples this far
    /// apart); zero: since the API process started.
    pub api_window: Duration,
    /// Whether the bus is SNS, so its topic and subscription get a row.
    pub sns_topic: bool,
    pub cloud: Option<CloudClients>,
    /// The queue to inspect, none, or the rows that say why it could not be opened (a
    /// damaged `queue.db`): the other rows are still checked.
    pub queue: Result<Option<Arc<dyn Queue>>, Vec<Check>>,
    /// The store, likewise.
    pub store: Result<Option<Arc<dyn Store>>, Check>,
    pub kube: Option<kube::Client>,
    /// The kubeconfig context's API server, compared with the EKS cluster's endpoint.
    pub kube_server: Option<String>,
}

/// Runs every applicable check concurrently.
pub async fn run(config: &Config, targets: &Targets) -> Report {
    let t = config.status.check_timeout;
    let mut futures: Vec<std::pin::Pin<Box<dyn Future<Output = Vec<Check>> + Send + '_>>> =
        Vec::new();
    match &targets.api {
        Some(api) => futures.push(Box::pin(one(
            "api",
            t + targets.api_window,
            check_api(
                config,
                api,
                targets.api_token.as_deref(),
                targets.api_window,
            ),
        ))),
        None => futures.push(Box::pin(async {
            vec![Check::new("api", State::Skipped).hint("give --api URL to check the API")]
        })),
    }
    match &targets.queue {
        Ok(Some(queue)) => futures.push(Box::pin(many(
            "queue",
            t,
            check_queue(config, queue.clone(), targets.cloud.as_ref()),
        ))),
        Ok(None) => {}
        Err(rows) => {
            let rows = rows.clone();
            futures.push(Box::pin(async move { rows }))
        }
    }
    if let (Some(cloud), Some(url)) = (&targets.cloud, &config.aws.sns_dlq_url) {
        futures.push(Box::pin(one("sns dlq", t, check_sns_dlq(cloud, url))));
    }
    if targets.sns_topic {
        match &targets.cloud {
            Some(cloud) => futures.push(Box::pin(one("sns topic", t, check_topic(config, cloud)))),
            None => futures.push(Box::pin(async {
                vec![Check::new("sns topic", State::Fail).hint("AWS is not configured")]
            })),
        }
    }
    if config.bus == crate::config::BusKind::Embedded
        || config.store == crate::config::StoreKind::Sqlite
    {
        futures.push(Box::pin(one("disk", t, disk::check_disk(config))));
    }
    match &targets.store {
        Ok(Some(store)) => futures.push(Box::pin(one(
            "database",
            t,
            check_store(config, store.clone()),
        ))),
        Ok(None) => futures.push(Box::pin(async {
            vec![Check::new("database", State::Skipped).hint("no store configured")]
        })),
        Err(row) => {
            let row = row.clone();
            futures.push(Box::pin(async move { vec![row] }))
        }
    }
    if let (Some(cloud), Some(id)) = (&targets.cloud, &config.aws.rds_instance_id) {
        futures.push(Box::pin(one("rds", t, check_rds(config, cloud, id))));
    }
    if let (Some(cloud), Some(name)) = (&targets.cloud, &config.aws.eks_cluster) {
        futures.push(Box::pin(one(
            "eks",
            t,
            check_eks(cloud, name, targets.kube_server.as_deref()),
        )));
    }
    match &targets.kube {
        Some(client) => futures.push(Box::pin(many(
            "kubernetes",
            t,
            kubernetes::check(
                client.clone(),
                kubernetes::Target::from_config(&config.kubernetes),
            ),
        ))),
        None => futures.push(Box::pin(async {
            vec![
                Check::new("kubernetes", State::Skipped)
                    .hint("no kubeconfig (KUBECONFIG) or in-cluster config"),
            ]
        })),
    }
    let checks = futures::future::join_all(futures)
        .await
        .into_iter()
        .flatten()
        .collect();
    Report::new(checks)
}

async fn one(
    component: &'static str,
    timeout: Duration,
    check: impl Future<Output = Check>,
) -> Vec<Check> {
    many(component, timeout, async { vec![check.await] }).await
}

async fn many(
    component: &'static str,
    timeout: Duration,
    check: impl Future<Output = Vec<Check>>,
) -> Vec<Check> {
    match tokio::time::timeout(timeout, check).await {
        Ok(checks) => checks,
        Err(_) => vec![Check::new(component, State::Fail).hint(format!(
            "no answer within {}: is it reachable? (status.check_timeout)",
            humantime::format_duration(timeout)
        ))],
    }
}

async fn check_queue(
    config: &Config,
    queue: Arc<dyn Queue>,
    cloud: Option<&CloudClients>,
) -> Vec<Check> {
    let stats = match queue.stats().await {
        Ok(s) => s,
        Err(e) => {
            return vec![
                Check::new("queue", State::Fail)
                    .hint(format!("{e}: check aws.queue_url / the data directory")),
            ];
        }
    };
    let oldest = match (stats.oldest_age_seconds, cloud) {
        (Some(age), _) => Some(age),
        (None, Some(cloud)) => oldest_age_from_cloudwatch(config, cloud).await,
        (None, None) => None,
    };
    queue_checks(
        config,
        &QueueStats {
            oldest_age_seconds: oldest,
            ..stats
        },
    )
}

/// The queue and DLQ checks from their figures.
pub fn queue_checks(config: &Config, stats: &QueueStats) -> Vec<Check> {
    let s = &config.status;
    let mut queue = Check::new("queue", State::Ok)
        .figure("visible", stats.visible)
        .figure("in_flight", stats.in_flight)
        .figure(
            "oldest_age_s",
            stats
                .oldest_age_seconds
                .map(|a| format!("{a:.0}"))
                .unwrap_or_else(|| "n/a".into()),
        );
    if let (Some(bytes), Some(cap)) = (stats.bytes, stats.capacity_bytes) {
        let used = bytes as f64 / cap.max(1) as f64;
        queue = queue
            .figure("size_mb", format!("{:.1}", bytes as f64 / 1_048_576.0))
            .figure("size_used", format!("{:.0}%", used * 100.0));
        if used >= 1.0 {
            queue.worsen(
                State::Fail,
                "the queue is at queue.max_bytes: POST answers 503 queue_full; get the worker to drain it",
            );
        } else if used >= 0.8 {
            queue.worsen(
                State::Warn,
                "the queue is above 80% of queue.max_bytes: POSTs will be refused (queue_full) at 100%",
            );
        }
    }
    if let Some(age) = stats.oldest_age_seconds {
        if age > s.oldest_message_fail.as_secs_f64() {
            queue.worsen(
                State::Fail,
                "oldest message older than status.oldest_message_fail: is the worker running? scale it up",
            );
        } else if age > s.oldest_message_warn.as_secs_f64() {
            queue.worsen(
                State::Warn,
                "oldest message older than status.oldest_message_warn: the worker is falling behind",
            );
        }
    }
    let mut dlq = Check::new("dlq", State::Ok).figure("depth", stats.dead_letter);
    if stats.dead_letter > s.dlq_warn {
        dlq.worsen(
            State::Warn,
            "messages in the dead-letter queue: inspect with `latamctl drain --queue dlq --peek`, \
             fix the cause, then `latamctl drain --queue dlq --redrive`",
        );
    }
    vec![queue, dlq]
}

/// The report as a table.
pub fn table(report: &Report) -> String {
    let mut b = tabled::builder::Builder::default();
    b.push_record(["COMPONENT", "STATE", "FIGURES", "HINT"]);
    for c in &report.checks {
        let figures = c
            .figures
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        let state = serde_json::to_value(c.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        b.push_record([c.component.clone(), state, figures, c.hint.clone()]);
    }
    let mut t = b.build();
    t.with(tabled::settings::Style::sharp()).with(
        tabled::settings::Modify::new(tabled::settings::object::Columns::new(2..4))
            .with(tabled::settings::Width::wrap(60).keep_words(true)),
    );
    let overall = serde_json::to_value(report.overall)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{t}\noverall: {overall}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PROBE_ROUTES;

    const METRICS: &str = r#"# TYPE http_requests_total counter
http_requests_total{route="/ingresar-datos",method="POST",status="200"} 90
http_requests_total{route="/ingresar-datos",method="POST",status="400"} 8
http_requests_total{route="/data/{transaction_id}",method="GET",status="503"} 2
http_requests_total{route="/data/{transaction_id}",method="GET",status="404"} 20
http_requests_total{route="/readyz",method="GET",status="503"} 50
http_request_duration_seconds_bucket{route="/ingresar-datos",method="POST",le="0.1"} 80
http_request_duration_seconds_bucket{route="/ingresar-datos",method="POST",le="0.2"} 94
http_request_duration_seconds_bucket{route="/ingresar-datos",method="POST",le="0.4"} 98
http_request_duration_seconds_bucket{route="/ingresar-datos",method="POST",le="+Inf"} 98
http_request_duration_seconds_bucket{route="/data/{transaction_id}",method="GET",le="0.1"} 2
http_request_duration_seconds_bucket{route="/data/{transaction_id}",method="GET",le="0.2"} 2
http_request_duration_seconds_bucket{route="/data/{transaction_id}",method="GET",le="0.4"} 2
http_request_duration_seconds_bucket{route="/data/{transaction_id}",method="GET",le="+Inf"} 2
http_request_duration_seconds_bucket{route="/readyz",method="GET",le="0.1"} 0
http_request_duration_seconds_bucket{route="/readyz",method="GET",le="+Inf"} 50
"#;

    #[test]
    fn http_figures_exclude_probes() {
        let f = http_figures(METRICS).unwrap();
        assert_eq!(f.requests, 120);
        assert_eq!(f.errors, 10, "polling 404s are not errors");
        assert!((f.error_rate() - 10.0 / 120.0).abs() < 1e-9);
        // 96 of 100 under 0.2 s → p95 in the 0.2 bucket.
        assert_eq!(f.p95_seconds(), Some(0.2));
    }

    /// Over a window, only the requests between the two samples count: an API that erred
    /// an hour ago and is healthy now reads healthy.
    #[test]
    fn windowed_figures_count_only_the_requests_between_the_samples() {
        let earlier = http_figures(METRICS).unwrap();
        let later = http_figures(
            &METRICS
                .replace("status=\"200\"} 90", "status=\"200\"} 190")
                .replace("le=\"0.1\"} 80", "le=\"0.1\"} 180")
                .replace("le=\"0.2\"} 94", "le=\"0.2\"} 194")
                .replace("le=\"0.4\"} 98", "le=\"0.4\"} 198")
                .replace(
                    "method=\"POST\",le=\"+Inf\"} 98",
                    "method=\"POST\",le=\"+Inf\"} 198",
                ),
        )
        .unwrap();
        let window = later.since(&earlier);
        assert_eq!(window.requests, 100);
        assert_eq!(window.errors, 0, "the 10 errors were before the window");
        assert_eq!(window.p95_seconds(), Some(0.1), "all 100 under 0.1 s");
        // A restart between the samples: the later counters are the window.
        let restarted = earlier.since(&later);
        assert_eq!(restarted.requests, earlier.requests);
        assert_eq!(restarted.errors, earlier.errors);
    }

    /// Every SLO of the example spec leaves out exactly the probe routes the router serves.
    #[test]
    fn the_example_slos_exclude_exactly_the_probe_routes() {
        let spec =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/slo.yaml"))
                .unwrap();
        let wanted = format!("route!~\"{}\"", PROBE_ROUTES.join("|"));
        let matchers: Vec<&str> = spec.lines().filter(|l| l.contains("route!~")).collect();
        assert!(!matchers.is_empty());
        for line in matchers {
            assert!(line.contains(&wanted), "{line:?} does not exclude {wanted}");
        }
    }

    #[test]
    fn the_queue_warns_before_its_size_cap_and_fails_at_it() {
        let config = Config::default();
        let at = |bytes| {
            queue_checks(
                &config,
                &QueueStats {
                    bytes: Some(bytes),
                    capacity_bytes: Some(1000),
                    ..QueueStats::default()
                },
            )[0]
            .clone()
        };
        assert_eq!(at(500).state, State::Ok);
        let near = at(850);
        assert_eq!(near.state, State::Warn);
        assert!(near.hint.contains("80%"), "{near:?}");
        assert_eq!(at(1000).state, State::Fail);
    }

    #[test]
    fn queue_thresholds_warn_and_fail() {
        let config = Config::default();
        let ok = queue_checks(
            &config,
            &QueueStats {
                visible: 1,
                oldest_age_seconds: Some(10.0),
                ..QueueStats::default()
            },
        );
        assert!(ok.iter().all(|c| c.state == State::Ok));
        let slow = queue_checks(
            &config,
            &QueueStats {
                oldest_age_seconds: Some(400.0),
                dead_letter: 2,
                ..QueueStats::default()
            },
        );
        assert_eq!(slow[0].state, State::Warn);
        assert_eq!(slow[1].state, State::Warn);
        assert!(slow[1].hint.contains("--redrive"));
        let stuck = queue_checks(
            &config,
            &QueueStats {
                oldest_age_seconds: Some(1000.0),
                ..QueueStats::default()
            },
        );
        assert_eq!(stuck[0].state, State::Fail);
    }

    fn sample_report() -> Report {
        let config = Config::default();
        let mut checks = vec![
            Check::new("api", State::Ok)
                .figure("url", "http://127.0.0.1:8080")
                .figure("readyz", 200)
                .figure("requests", 1200)
                .figure("error_rate", "0.25%")
                .figure("p95_ms", "25.0"),
        ];
        checks.extend(queue_checks(
            &config,
            &QueueStats {
                visible: 12,
                in_flight: 3,
                oldest_age_seconds: Some(42.0),
                dead_letter: 1,
                ..QueueStats::default()
            },
        ));
        checks.push(
            Check::new("database", State::Ok)
                .figure("kind", "postgres")
                .figure("latency_ms", "1.2")
                .figure("records", 1_000_000),
        );
        checks.push(
            Check::new("kubernetes", State::Skipped)
                .hint("no kubeconfig (KUBECONFIG) or in-cluster config"),
        );
        Report::new(checks)
    }

    #[test]
    fn table_snapshot() {
        insta::assert_snapshot!(table(&sample_report()));
    }

    #[test]
    fn json_snapshot() {
        insta::assert_json_snapshot!(sample_report());
    }

    #[test]
    fn overall_is_the_worst_state_ignoring_skipped() {
        let r = Report::new(vec![
            Check::new("a", State::Ok),
            Check::new("b", State::Skipped),
        ]);
        assert_eq!(r.overall, State::Ok);
        let r = Report::new(vec![
            Check::new("a", State::Warn),
            Check::new("b", State::Ok),
        ]);
        assert_eq!(r.overall, State::Warn);
    }
}
