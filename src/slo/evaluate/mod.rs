//! Where each SLO stands now: SLI, error budget left and burn rate, computed from a
//! Prometheus server (the same PromQL the recording rules use) or, with no server, by
//! sampling `/metrics` endpoints over a window (counter and bucket deltas).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::exposition::{self, Sample};
use super::promql::{self, Matchers};
use super::spec::{Indicator, Scope, Slo, SloSpec};
use super::{Error, Result};

/// How an SLO stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Within budget and not burning faster than it refills.
    Ok,
    /// Spending the budget faster than the window allows (burn rate above 1).
    Burning,
    /// Burning at or above the page threshold (14.4 by default).
    Page,
    /// No budget left over the window.
    Exhausted,
    /// No events in the window (no traffic, or the series do not exist).
    NoData,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Burning => "burning",
            State::Page => "page",
            State::Exhausted => "exhausted",
            State::NoData => "no_data",
        }
    }

    /// States that make `latamctl slo` exit 1.
    pub fn is_failure(self) -> bool {
        matches!(self, State::Page | State::Exhausted)
    }
}

/// One SLO (for one scope group: namespace/system) now.
#[derive(Debug, Clone, Serialize)]
pub struct SloStatus {
    pub slo: String,
    pub display_name: String,
    /// Values of the scope's group-by labels (empty when sampling endpoints).
    pub scope: BTreeMap<String, String>,
    /// Target fraction of good events.
    pub objective: f64,
    /// Window the SLI and the budget are measured over.
    pub window: String,
    /// Fraction of good events over the window.
    pub sli: Option<f64>,
    /// Fraction of the window's error budget not spent (negative: overspent).
    pub error_budget_remaining: Option<f64>,
    /// Bad-event ratio over `burn_window` divided by the error budget.
    pub burn_rate: Option<f64>,
    pub burn_window: String,
    pub state: State,
}

/// Every SLO now.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `prometheus <url>` or `metrics <urls>`.
    pub source: String,
    /// Burn rate from which a state is `page`.
    pub page_burn_rate: f64,
    pub slos: Vec<SloStatus>,
}

impl Report {
    /// Whether any SLO has exhausted its budget or burns at the page rate.
    pub fn failed(&self) -> bool {
        self.slos.iter().any(|s| s.state.is_failure())
    }
}

/// `1 - bad / budget`: 1 = untouched, 0 = spent, below 0 = overspent.
pub fn budget_remaining(bad_ratio: f64, budget: f64) -> f64 {
    1.0 - bad_ratio / budget
}

/// `bad / budget`: 1 spends exactly the budget over the SLO window.
pub fn burn_rate(bad_ratio: f64, budget: f64) -> f64 {
    bad_ratio / budget
}

/// The state from the budget left over the window and the recent burn rate.
pub fn classify(remaining: Option<f64>, burn: Option<f64>, page: f64) -> State {
    match (remaining, burn) {
        (None, None) => State::NoData,
        (Some(r), _) if r <= 0.0 => State::Exhausted,
        (_, Some(b)) if b >= page => State::Page,
        (_, Some(b)) if b > 1.0 => State::Burning,
        _ => State::Ok,
    }
}

fn status(
    spec: &SloSpec,
    slo: &Slo,
    scope: BTreeMap<String, String>,
    window: Duration,
    burn_window: Duration,
    bad_over_window: Option<f64>,
    bad_over_burn_window: Option<f64>,
) -> SloStatus {
    let budget = slo.error_budget();
    let remaining = bad_over_window.map(|b| budget_remaining(b, budget));
    let burn = bad_over_burn_window.map(|b| burn_rate(b, budget));
    SloStatus {
        slo: slo.name.clone(),
        display_name: slo.display_name.clone(),
        scope,
        objective: slo.target,
        window: promql::duration(window),
        sli: bad_over_window.map(|b| 1.0 - b),
        error_budget_remaining: remaining,
        burn_rate: burn,
        burn_window: promql::duration(burn_window),
        state: classify(remaining, burn, spec.page_burn_rate()),
    }
}

/// A client of a Prometheus server's HTTP API.
pub struct PrometheusApi {
    client: reqwest::Client,
    url: String,
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorSample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

impl PrometheusApi {
    pub fn new(url: &str) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Prometheus {
                url: url.to_owned(),
                message: e.to_string(),
            })?;
        Ok(Self {
            client,
            url: url.trim_end_matches('/').to_owned(),
        })
    }

    fn fail(&self, message: impl Into<String>) -> Error {
        Error::Prometheus {
            url: self.url.clone(),
            message: message.into(),
        }
    }

    /// An instant query; returns each series' labels and value (NaN for 0/0).
    pub async fn query(&self, promql: &str) -> Result<Vec<(BTreeMap<String, String>, f64)>> {
        tracing::debug!(message = "Querying Prometheus.", query = promql);
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query", self.url),
            &[("query", promql)],
        )
        .map_err(|e| self.fail(format!("not a valid URL: {e}")))?;
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| self.fail(error_chain(&e)))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| self.fail(e.to_string()))?;
        let parsed: ApiResponse = serde_json::from_str(&body).map_err(|_| {
            self.fail(format!(
                "HTTP {status} with a body that is not the Prometheus API's JSON (is this a Prometheus server?): {}",
                body.chars().take(200).collect::<String>()
            ))
        })?;
        if parsed.status != "success" {
            return Err(self.fail(format!(
                "the query failed: {}\n  query: {promql}",
                parsed.error.unwrap_or_default()
            )));
        }
        let data = parsed
            .data
            .ok_or_else(|| self.fail("a successful answer without data"))?;
        if data.result_type != "vector" {
            return Err(self.fail(format!(
                "expected a vector result, got {}",
                data.result_type
            )));
        }
        let samples: Vec<VectorSample> = serde_json::from_value(data.result)
            .map_err(|e| self.fail(format!("unexpected result shape: {e}")))?;
        Ok(samples
            .into_iter()
            .map(|s| {
                let v = s.value.1.parse::<f64>().unwrap_or(f64::NAN);
                (s.metric, v)
            })
            .collect())
    }
}

/// The error and its causes on one line (reqwest hides "connection refused" in a source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn group_key(labels: &BTreeMap<String, String>, by: &[String]) -> BTreeMap<String, String> {
    by.iter()
        .filter_map(|l| labels.get(l).map(|v| (l.clone(), v.clone())))
        .collect()
}

/// The bad-event ratio of an SLO over `window` per scope group, as Prometheus computes it.
async fn bad_ratio(
    api: &PrometheusApi,
    slo: &Slo,
    scope: &Scope,
    window: Duration,
) -> Result<BTreeMap<BTreeMap<String, String>, f64>> {
    let Some(expr) = promql::sli_error(&slo.indicator, scope, window) else {
        return Ok(BTreeMap::new());
    };
    let mut rows = api.query(&expr).await?;
    if rows.is_empty()
        && let Indicator::Availability(a) = &slo.indicator
    {
        // The probe is recorded by the rules of `render alerts`; without them, evaluate it
        // here at a coarser step.
        let probe = promql::availability_probe(&a.matchers, scope);
        let step = if window > Duration::from_secs(86_400) {
            "1m"
        } else {
            "15s"
        };
        let expr = format!(
            "1 - avg_over_time(({probe})[{}:{step}])",
            promql::duration(window)
        );
        rows = api.query(&expr).await?;
    }
    Ok(rows
        .into_iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(labels, v)| (group_key(&labels, &scope.group_by), v))
        .collect())
}

/// Every SLO from a Prometheus server. `window` overrides each SLO's own window; `scope`
/// overrides the spec's scope matchers (e.g. `system="orders"`, or empty).
pub async fn from_prometheus(
    spec: &SloSpec,
    url: &str,
    window: Option<Duration>,
    scope_matchers: Option<Matchers>,
) -> Result<Report> {
    let api = PrometheusApi::new(url)?;
    let mut scope = spec.spec.scope.clone();
    if let Some(m) = scope_matchers {
        scope.matchers = m;
    }
    // Fail early and clearly when the server is not there.
    api.query("vector(1)").await?;
    let burn_window = spec.page_window();
    let mut slos = Vec::new();
    for slo in &spec.spec.slos {
        let w = window.unwrap_or(slo.time_window);
        let over_window = bad_ratio(&api, slo, &scope, w).await?;
        let over_burn = bad_ratio(&api, slo, &scope, burn_window).await?;
        let mut groups: Vec<&BTreeMap<String, String>> =
            over_window.keys().chain(over_burn.keys()).collect();
        groups.sort();
        groups.dedup();
        if groups.is_empty() {
            slos.push(status(
                spec,
                slo,
                BTreeMap::new(),
                w,
                burn_window,
                None,
                None,
            ));
        }
        for g in groups {
            slos.push(status(
                spec,
                slo,
                g.clone(),
                w,
                burn_window,
                over_window.get(g).copied(),
                over_burn.get(g).copied(),
            ));
        }
    }
    Ok(Report {
        source: format!("prometheus {url}"),
        page_burn_rate: spec.page_burn_rate(),
        slos,
    })
}

/// What one endpoint answered at one moment.
type Snapshot = HashMap<(String, BTreeMap<String, String>), f64>;

/// Samples of `/metrics` endpoints taken over a window.
#[derive(Debug, Default)]
pub struct Sampling {
    /// Per endpoint: the first and the last snapshot that parsed.
    first: Vec<Option<Snapshot>>,
    last: Vec<Option<Snapshot>>,
    /// Probe rounds, and those in which at least one endpoint answered and was ready.
    rounds: u64,
    available_rounds: u64,
}

impl Sampling {
    fn new(endpoints: usize) -> Self {
        Self {
            first: vec![None; endpoints],
            last: vec![None; endpoints],
            ..Default::default()
        }
    }

    /// Records one probe round: per endpoint, its samples or `None` when it did not answer.
    pub fn record(&mut self, round: Vec<Option<Vec<Sample>>>) {
        self.rounds += 1;
        let mut available = false;
        for (i, samples) in round.into_iter().enumerate() {
            let Some(samples) = samples else { continue };
            let ready = samples
                .iter()
                .find(|s| s.name == promql::READY)
                .is_none_or(|s| s.value >= 1.0);
            available |= ready;
            let snapshot: Snapshot = samples
                .into_iter()
                .map(|s| ((s.name, s.labels), s.value))
                .collect();
            if i < self.first.len() {
                if self.first[i].is_none() {
                    self.first[i] = Some(snapshot);
                } else {
                    self.last[i] = Some(snapshot);
                }
            }
        }
        if available {
            self.available_rounds += 1;
        }
    }

    /// Sum over endpoints and matching series of the increase between the first and the
    /// last snapshot. A series absent at first started inside the window (all of it
    /// counts); a value below the first one means the process restarted (counter reset).
    fn increase(&self, names: &[String], matchers: &[&Matchers], le: Option<f64>) -> f64 {
        let mut total = 0.0;
        for (first, last) in self.first.iter().zip(&self.last) {
            let (Some(first), Some(last)) = (first, last) else {
                continue;
            };
            for ((name, labels), value) in last {
                if !names.iter().any(|n| n == name) || !matchers.iter().all(|m| m.matches(labels)) {
                    continue;
                }
                if let Some(edge) = le {
                    let on_edge = labels
                        .get("le")
                        .and_then(|v| v.parse::<f64>().ok())
                        .is_some_and(|v| (v - edge).abs() < 1e-9);
                    if !on_edge {
                        continue;
                    }
                }
                total += match first.get(&(name.clone(), labels.clone())) {
                    Some(before) if value >= before => value - before,
                    _ => *value,
                };
            }
        }
        total
    }

    /// The SLO's bad-event ratio over the sampled window; `None` without events. The scope
    /// matchers are not applied: the scraper adds those labels, the endpoints do not have
    /// them.
    pub fn bad_ratio(&self, ind: &Indicator) -> Option<f64> {
        let ratio = |bad: f64, total: f64| (total > 0.0).then(|| bad / total);
        match ind {
            Indicator::Latency(l) => {
                let total =
                    self.increase(&[format!("{}_count", l.histogram)], &[&l.matchers], None);
                let good = self.increase(
                    &[format!("{}_bucket", l.histogram)],
                    &[&l.matchers],
                    Some(l.threshold.as_secs_f64()),
                );
                ratio((total - good).max(0.0), total)
            }
            Indicator::Ratio(r) => {
                let bad = self.increase(&r.bad, &[&r.matchers, &r.bad_matchers], None);
                let total = self.increase(&r.total, &[&r.matchers], None);
                ratio(bad, total)
            }
            // Every endpoint given counts as a replica of the service.
            Indicator::Availability(_) => ratio(
                (self.rounds - self.available_rounds) as f64,
                self.rounds as f64,
            ),
            Indicator::Cpu(_)
            | Indicator::Memory(_)
            | Indicator::QueueAge(_)
            | Indicator::DeadLetters(_)
            | Indicator::Disk(_) => None,
        }
    }

    /// Whether at least two snapshots of some endpoint were taken.
    fn has_deltas(&self) -> bool {
        self.first
            .iter()
            .zip(&self.last)
            .any(|(a, b)| a.is_some() && b.is_some())
    }
}

/// `/metrics` of a base URL (`http://host:8080` → `http://host:8080/metrics`).
pub fn metrics_url(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let has_path = trimmed
        .split_once("://")
        .map(|(_, rest)| rest.contains('/'))
        .unwrap_or(false);
    if has_path {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/metrics")
    }
}

async fn scrape(client: &reqwest::Client, url: &str) -> Result<Vec<Sample>> {
    let fail = |message: String| Error::Metrics {
        url: url.to_owned(),
        message,
    };
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(error_chain(&e)))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    let text = resp.text().await.map_err(|e| fail(e.to_string()))?;
    exposition::parse(&text).map_err(|e| fail(format!("not the Prometheus text format: {e}")))
}

/// Samples `urls` every `interval` for `window` and computes every SLO over it.
/// `progress(elapsed)` is called after each round.
pub async fn from_endpoints(
    spec: &SloSpec,
    urls: &[String],
    window: Duration,
    interval: Duration,
    mut progress: impl FnMut(Duration),
) -> Result<Report> {
    if urls.is_empty() {
        return Err(Error::Usage("give at least one --metrics URL".into()));
    }
    let urls: Vec<String> = urls.iter().map(|u| metrics_url(u)).collect();
    let client = reqwest::Client::builder()
        .timeout(interval.clamp(Duration::from_secs(1), Duration::from_secs(10)))
        .build()
        .map_err(|e| Error::Metrics {
            url: urls.join(", "),
            message: e.to_string(),
        })?;
    let mut sampling = Sampling::new(urls.len());
    let started = Instant::now();
    let mut last_error = None;
    loop {
        let round = futures::future::join_all(urls.iter().map(|u| scrape(&client, u))).await;
        let round: Vec<Option<Vec<Sample>>> = round
            .into_iter()
            .map(|r| match r {
                Ok(samples) => Some(samples),
                Err(e) => {
                    tracing::debug!(message = "Scrape failed.", error = %e);
                    last_error = Some(e);
                    None
                }
            })
            .collect();
        sampling.record(round);
        let elapsed = started.elapsed();
        progress(elapsed);
        if elapsed >= window {
            break;
        }
        tokio::time::sleep(interval.min(window - elapsed)).await;
    }
    if !sampling.has_deltas() {
        return Err(last_error.unwrap_or_else(|| Error::Metrics {
            url: urls.join(", "),
            message: "fewer than two samples were taken".into(),
        }));
    }
    let burn_window = window;
    let slos = spec
        .spec
        .slos
        .iter()
        .map(|slo| {
            let bad = sampling.bad_ratio(&slo.indicator);
            status(spec, slo, BTreeMap::new(), window, burn_window, bad, bad)
        })
        .collect();
    Ok(Report {
        source: format!("metrics {}", urls.join(" ")),
        page_burn_rate: spec.page_burn_rate(),
        slos,
    })
}

#[cfg(test)]
mod tests;
