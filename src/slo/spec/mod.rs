//! The SLO spec: service level objectives, their burn-rate alert policy and the threshold
//! alerts, in one OpenSLO-like YAML document (`examples/slo.yaml`, embedded as the default).
//!
//! Loading parses (unknown fields are errors) and then validates what YAML types cannot say:
//! targets inside (0, 1), latency thresholds on histogram bucket edges (so an SLI is an exact
//! bucket ratio, not an interpolation), burn rates that an SLO can actually reach, unique
//! names.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::promql::{Matchers, is_metric_name};
use super::{Error, Result};
use crate::telemetry::histogram_buckets;

mod validate;

use validate::{validate_alerts, validate_burn_rate_policies, validate_scope, validate_slos};

/// The spec every command uses when no `--slo FILE` is given.
pub const DEFAULT_SPEC: &str = include_str!("../../../examples/slo.yaml");

/// `apiVersion` this version of latamctl reads.
pub const API_VERSION: &str = "latamctl.io/v1";
/// `kind` of the document.
pub const KIND: &str = "ServiceLevels";

/// The whole document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SloSpec {
    /// Format version: `latamctl.io/v1`.
    pub api_version: String,
    /// Always `ServiceLevels`.
    pub kind: String,
    /// Names the service the objectives belong to.
    pub metadata: Metadata,
    /// Objectives, alert policy and threshold alerts.
    pub spec: ServiceLevels,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// Short name (`latamctl`): prefix of generated resource names.
    pub name: String,
    /// Human name for dashboards and alert titles.
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceLevels {
    /// Which series the rules look at and how results are grouped.
    pub scope: Scope,
    /// Base of every alert's `runbook_url` (`<base>#<alert name in lowercase>`), unless the
    /// alert sets `runbook`.
    pub runbook_base_url: String,
    /// Evaluation interval of the recording rules for windows of a day or more: they change
    /// slowly and are the costly ones.
    #[serde(with = "humantime_serde")]
    pub long_window_interval: Duration,
    /// Datadog naming (must match the OpenMetrics check of the Helm chart).
    pub datadog: DatadogSettings,
    /// Multi-window, multi-burn-rate alerts generated for every SLO (Google SRE workbook,
    /// chapter 5).
    pub burn_rate_alerts: Vec<BurnRatePolicy>,
    /// The service level objectives.
    pub slos: Vec<Slo>,
    /// Threshold alerts (seed section 5.1 and the queue).
    pub alerts: Vec<ThresholdAlert>,
    /// Synthetic tests of the public endpoint (seed 4.2), for `render synthetics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetics: Option<Synthetics>,
}

/// Datadog synthetic tests: the API from outside (and from a private location inside the
/// cluster's network), the end-to-end path, the certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Synthetics {
    /// Public base URL of the API (`https://ingest.example.com`).
    pub base_url: String,
    /// Managed locations (`aws:us-east-1`) and private locations (`pl:<id>`, the worker of
    /// `render datadog-agent`), at least one.
    pub locations: Vec<String>,
    /// Time between runs (Datadog: 30s to 7d).
    #[serde(with = "humantime_serde")]
    pub tick_every: Duration,
    /// Topic the multistep test posts to.
    pub topic: String,
    /// Longest the multistep test waits for the posted message to be stored.
    #[serde(with = "humantime_serde")]
    pub store_within: Duration,
    /// The certificate check.
    pub ssl: SslCheck,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SslCheck {
    pub host: String,
    pub port: u16,
    /// Alert when the certificate expires in fewer days than this.
    pub alert_days_before_expiry: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scope {
    /// Matchers on labels the scraper adds (not the process): every selector carries them.
    /// The Helm chart rewrites `system!=""` to `system="<release system>"`.
    pub matchers: Matchers,
    /// Labels every SLI and alert is computed per (one pipeline = one `system`).
    pub group_by: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DatadogSettings {
    /// Prefix the Datadog OpenMetrics check gives every metric (`namespace` of the check).
    pub metric_namespace: String,
    /// Tag Datadog monitors group by (the chart tags every metric `system:<system>`).
    pub group_by: Vec<String>,
}

/// One service level objective.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Slo {
    /// Identifier: the `slo` label of recorded series and alerts (`latency`, `errors`, ...).
    pub name: String,
    /// Title in dashboards and reports.
    pub display_name: String,
    /// What is measured and why this target.
    pub description: String,
    /// Fraction of good events required over the window (0.95 = 95 %).
    pub target: f64,
    /// Rolling window of the objective (`30d`).
    #[serde(with = "humantime_serde")]
    pub time_window: Duration,
    /// How good and bad events are counted.
    pub indicator: Indicator,
}

impl Slo {
    /// The fraction of events allowed to be bad: `1 - target`.
    pub fn error_budget(&self) -> f64 {
        1.0 - self.target
    }
}

/// What an SLO or alert measures. Ratio indicators yield the fraction of bad events; the
/// others a utilisation (0..1), an age in seconds or a message count.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Indicator {
    /// Requests (or queries) slower than a threshold, out of all: from histogram buckets.
    Latency(LatencySli),
    /// Bad events out of all events, both counted by counters.
    Ratio(RatioSli),
    /// Time the service is reachable and ready, out of all time (scrape-based).
    Availability(AvailabilitySli),
    /// CPU used by each process, as a fraction of the CPU it may use.
    Cpu(GaugeSli),
    /// Resident memory of each process, as a fraction of the memory it may use.
    Memory(GaugeSli),
    /// Age of the oldest message waiting in the main queue, in seconds.
    QueueAge(GaugeSli),
    /// Messages in the dead-letter queue.
    DeadLetters(GaugeSli),
    /// Used fraction of the disk the data lives on (seed 4.2): the embedded data dir's
    /// filesystem; on AWS, the RDS instance's storage.
    Disk(GaugeSli),
}

impl Indicator {
    /// Whether the indicator is a ratio of bad events (usable as an SLO).
    pub fn is_ratio(&self) -> bool {
        matches!(
            self,
            Indicator::Latency(_) | Indicator::Ratio(_) | Indicator::Availability(_)
        )
    }

    /// Whether the value is a rate over a window (and needs one).
    fn needs_window(&self) -> bool {
        matches!(
            self,
            Indicator::Latency(_)
                | Indicator::Ratio(_)
                | Indicator::Availability(_)
                | Indicator::Cpu(_)
        )
    }

    pub fn unit(&self) -> Unit {
        match self {
            Indicator::Latency(_)
            | Indicator::Ratio(_)
            | Indicator::Availability(_)
            | Indicator::Cpu(_)
            | Indicator::Memory(_)
            | Indicator::Disk(_) => Unit::Ratio,
            Indicator::QueueAge(_) => Unit::Seconds,
            Indicator::DeadLetters(_) => Unit::Count,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Indicator::Latency(_) => "latency",
            Indicator::Ratio(_) => "ratio",
            Indicator::Availability(_) => "availability",
            Indicator::Cpu(_) => "cpu",
            Indicator::Memory(_) => "memory",
            Indicator::QueueAge(_) => "queueAge",
            Indicator::DeadLetters(_) => "deadLetters",
            Indicator::Disk(_) => "disk",
        }
    }
}

/// Unit of an indicator's value, for thresholds in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Ratio,
    Seconds,
    Count,
}

impl Unit {
    /// `5%`, `300s`, `0`.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Ratio => format!("{}%", trim_float(v * 100.0)),
            Unit::Seconds => format!("{}s", trim_float(v)),
            Unit::Count => trim_float(v),
        }
    }
}

/// A float without binary noise: 14.4, 0.1, 5.
pub fn trim_float(v: f64) -> String {
    let s = format!("{:.6}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LatencySli {
    /// Histogram base name (`http_request_duration_seconds`).
    pub histogram: String,
    /// Events slower than this are bad; must be a bucket edge of the histogram.
    #[serde(with = "humantime_serde")]
    pub threshold: Duration,
    /// Which events count (e.g. no probes or scrapes).
    #[serde(default)]
    pub matchers: Matchers,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RatioSli {
    /// Counters whose sum counts bad events.
    pub bad: Vec<String>,
    /// Counters whose sum counts all events.
    pub total: Vec<String>,
    /// Which events count, for both bad and total.
    #[serde(default)]
    pub matchers: Matchers,
    /// Which of those events are bad (e.g. `status=~"5.."`).
    #[serde(default)]
    pub bad_matchers: Matchers,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AvailabilitySli {
    /// Which scrape targets serve users (e.g. `component="api"`).
    #[serde(default)]
    pub matchers: Matchers,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GaugeSli {
    /// Which series count (e.g. `component="worker"`).
    #[serde(default)]
    pub matchers: Matchers,
}

/// One severity of burn-rate alerting: fires when any of its window pairs burns too fast.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BurnRatePolicy {
    /// `page` or `ticket`: suffix of the alert name.
    pub name: String,
    /// Alert `severity` label.
    pub severity: String,
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for", with = "humantime_serde", default)]
    pub for_: Duration,
    /// Window pairs: the long window measures, the short one confirms it is still burning.
    pub windows: Vec<BurnRateWindow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BurnRateWindow {
    /// Long window (`1h`).
    #[serde(with = "humantime_serde")]
    pub long: Duration,
    /// Short window (`5m`, 1/12 of the long one).
    #[serde(with = "humantime_serde")]
    pub short: Duration,
    /// Burn rate both windows must exceed (14.4 = 2 % of a 30-day budget in one hour).
    pub factor: f64,
}

/// An alert on an indicator's value crossing a threshold.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ThresholdAlert {
    /// Alert name (`LatamctlHighErrorRate`).
    pub name: String,
    /// `severity` label: `critical` pages, `warning` opens a ticket.
    pub severity: String,
    /// One line: what is wrong.
    pub summary: String,
    /// What it means and what to look at first.
    pub description: String,
    /// What is measured.
    pub indicator: Indicator,
    /// Window of rates and ratios (`5m`); gauges (memory, queue) take none.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub window: Option<Duration>,
    /// Fires when the value is above this (a fraction for ratios and utilisation).
    pub threshold: f64,
    /// How long the value must stay above the threshold.
    #[serde(rename = "for", with = "humantime_serde", default)]
    pub for_: Duration,
    /// Runbook URL, instead of the one derived from `runbookBaseUrl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
}

impl SloSpec {
    /// The built-in spec (a copy of `examples/slo.yaml`).
    pub fn builtin() -> Result<Self> {
        Self::parse(DEFAULT_SPEC, "(built-in)")
    }

    /// `path`, or the built-in spec when `None`.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        match path {
            None => Self::builtin(),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| Error::Read {
                    path: p.display().to_string(),
                    source,
                })?;
                Self::parse(&text, &p.display().to_string())
            }
        }
    }

    /// Parses and validates; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let spec: SloSpec = serde_saphyr::from_str(text).map_err(|e| Error::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        spec.validate(origin)?;
        Ok(spec)
    }

    /// The SLO named `name`.
    pub fn slo(&self, name: &str) -> Option<&Slo> {
        self.spec.slos.iter().find(|s| s.name == name)
    }

    /// The highest burn-rate factor of any policy: `latamctl slo` reports a burn at or above
    /// it as `page`.
    pub fn page_burn_rate(&self) -> f64 {
        self.spec
            .burn_rate_alerts
            .iter()
            .flat_map(|p| p.windows.iter().map(|w| w.factor))
            .fold(0.0, f64::max)
    }

    /// The long window of the fastest burn-rate pair (`1h`): the window `latamctl slo`
    /// measures the burn rate over.
    pub fn page_window(&self) -> Duration {
        self.spec
            .burn_rate_alerts
            .iter()
            .flat_map(|p| p.windows.iter())
            .max_by(|a, b| a.factor.total_cmp(&b.factor))
            .map(|w| w.long)
            .unwrap_or(Duration::from_secs(3600))
    }

    /// Every window a recorded error ratio exists for: the burn-rate windows, each SLO's
    /// window and 5m, shortest first.
    pub fn recorded_windows(&self) -> Vec<Duration> {
        let mut w: Vec<Duration> = self
            .spec
            .burn_rate_alerts
            .iter()
            .flat_map(|p| p.windows.iter().flat_map(|w| [w.long, w.short]))
            .chain(self.spec.slos.iter().map(|s| s.time_window))
            .chain([Duration::from_secs(300)])
            .collect();
        w.sort();
        w.dedup();
        w
    }

    /// The runbook URL of an alert.
    pub fn runbook_url(&self, alert_name: &str, explicit: Option<&str>) -> String {
        match explicit {
            Some(url) => url.to_owned(),
            None => format!(
                "{}#{}",
                self.spec.runbook_base_url,
                alert_name.to_ascii_lowercase()
            ),
        }
    }

    fn validate(&self, origin: &str) -> Result<()> {
        let invalid = |field: String, message: String| Error::Invalid {
            origin: origin.to_owned(),
            field,
            message,
        };
        if self.api_version != API_VERSION {
            return Err(invalid(
                "apiVersion".into(),
                format!(
                    "`{}` is not supported; this latamctl reads `{API_VERSION}`",
                    self.api_version
                ),
            ));
        }
        if self.kind != KIND {
            return Err(invalid(
                "kind".into(),
                format!("must be `{KIND}`, not `{}`", self.kind),
            ));
        }
        let s = &self.spec;
        validate_scope(s, &invalid)?;
        validate_burn_rate_policies(s, &invalid)?;
        validate_slos(s, &invalid)?;
        validate_alerts(s, &invalid)?;
        validate::validate_synthetics(s, &invalid)
    }
}

/// The words of a CamelCase name, lower case, acronyms kept whole: `LatamctlHighCPU` →
/// `latamctl`, `high`, `cpu`.
pub fn words(camel: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut prev_upper = false;
    for c in camel.chars() {
        let upper = c.is_ascii_uppercase();
        if c == '_' || c == '-' {
            out.push(String::new());
        } else if upper && !prev_upper || out.is_empty() {
            out.push(c.to_ascii_lowercase().to_string());
        } else if let Some(last) = out.last_mut() {
            last.push(c.to_ascii_lowercase());
        }
        prev_upper = upper;
    }
    out.retain(|w| !w.is_empty());
    out
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests;
