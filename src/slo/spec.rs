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
use crate::telemetry::LATENCY_BUCKETS;

/// The spec every command uses when no `--slo FILE` is given.
pub const DEFAULT_SPEC: &str = include_str!("../../examples/slo.yaml");

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
            | Indicator::Memory(_) => Unit::Ratio,
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
        validate_alerts(s, &invalid)
    }
}

/// Scope labels are label names, and the scope matches only labels recorded series keep;
/// every availability indicator looks at the same targets (the probe is recorded once).
fn validate_scope(s: &ServiceLevels, invalid: &impl Fn(String, String) -> Error) -> Result<()> {
    for label in s.scope.group_by.iter() {
        if !is_identifier(label) {
            return Err(invalid(
                "spec.scope.groupBy".into(),
                format!("`{label}` is not a label name"),
            ));
        }
    }
    // Recorded series keep only the group-by labels: a scope matcher on another label
    // would never match them again.
    for m in &s.scope.matchers.0 {
        if !s.scope.group_by.contains(&m.name) {
            return Err(invalid(
                "spec.scope".into(),
                format!(
                    "the matcher {m} is on `{}`, which is not in groupBy; add it there",
                    m.name
                ),
            ));
        }
    }
    // The availability probe is recorded once, so every availability indicator must look
    // at the same targets.
    let mut availability = s
        .slos
        .iter()
        .map(|x| &x.indicator)
        .chain(s.alerts.iter().map(|a| &a.indicator))
        .filter_map(|i| match i {
            Indicator::Availability(a) => Some(&a.matchers),
            _ => None,
        });
    if let Some(first) = availability.next()
        && let Some(other) = availability.find(|m| *m != first)
    {
        return Err(invalid(
            "availability.matchers".into(),
            format!(
                "every availability indicator must use the same matchers ({first} vs {other}): the probe is recorded once"
            ),
        ));
    }
    Ok(())
}

/// Burn-rate policies: named, with short < long windows and positive factors.
fn validate_burn_rate_policies(
    s: &ServiceLevels,
    invalid: &impl Fn(String, String) -> Error,
) -> Result<()> {
    if s.long_window_interval.is_zero() {
        return Err(invalid(
            "spec.longWindowInterval".into(),
            "must be longer than 0s".into(),
        ));
    }
    for (i, p) in s.burn_rate_alerts.iter().enumerate() {
        let field = format!("spec.burnRateAlerts[{i}]");
        if p.windows.is_empty() {
            return Err(invalid(field, "needs at least one window pair".into()));
        }
        if !is_identifier(&p.name) {
            return Err(invalid(
                format!("{field}.name"),
                format!("`{}` must be a word like `page`", p.name),
            ));
        }
        for w in &p.windows {
            if w.short >= w.long || w.short.is_zero() {
                return Err(invalid(
                    format!("{field}.windows"),
                    format!(
                        "the short window ({:?}) must be shorter than the long one ({:?}) and not 0",
                        w.short, w.long
                    ),
                ));
            }
            if w.factor <= 0.0 || !w.factor.is_finite() {
                return Err(invalid(
                    format!("{field}.windows"),
                    format!("factor {} must be a positive number", w.factor),
                ));
            }
        }
    }
    Ok(())
}

/// SLOs: unique word names, a target in (0, 1), a ratio indicator, and a budget every
/// burn-rate factor can still exceed.
fn validate_slos(s: &ServiceLevels, invalid: &impl Fn(String, String) -> Error) -> Result<()> {
    let mut names = std::collections::HashSet::new();
    for slo in &s.slos {
        let field = format!("spec.slos[{}]", slo.name);
        if !is_identifier(&slo.name) {
            return Err(invalid(
                field,
                "the name must be a word (letters, digits, _)".into(),
            ));
        }
        if !names.insert(slo.name.as_str()) {
            return Err(invalid(field, "another SLO has this name".into()));
        }
        if !(slo.target > 0.0 && slo.target < 1.0) {
            return Err(invalid(
                format!("{field}.target"),
                format!(
                    "{} is not a fraction between 0 and 1 (exclusive): 99.9 % is 0.999",
                    slo.target
                ),
            ));
        }
        if slo.time_window.is_zero() {
            return Err(invalid(
                format!("{field}.timeWindow"),
                "must be longer than 0s".into(),
            ));
        }
        if !slo.indicator.is_ratio() {
            return Err(invalid(
                format!("{field}.indicator"),
                format!(
                    "a `{}` indicator is not a ratio of good events; SLOs take latency, ratio or availability",
                    slo.indicator.kind()
                ),
            ));
        }
        validate_indicator(&slo.indicator, &format!("{field}.indicator"), &invalid)?;
        for p in &s.burn_rate_alerts {
            for w in &p.windows {
                if w.factor * slo.error_budget() >= 1.0 {
                    return Err(invalid(
                        format!("{field}.target"),
                        format!(
                            "with target {} the error budget is {}, so burn rate {} of policy `{}` would need more than 100 % bad events and can never fire; raise the target or lower the factor",
                            slo.target,
                            trim_float(slo.error_budget()),
                            w.factor,
                            p.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Threshold alerts: unique CamelCase names, a window exactly for rate indicators, and a
/// threshold in the indicator's unit.
fn validate_alerts(s: &ServiceLevels, invalid: &impl Fn(String, String) -> Error) -> Result<()> {
    let mut alert_names = std::collections::HashSet::new();
    for a in &s.alerts {
        let field = format!("spec.alerts[{}]", a.name);
        if !is_identifier(&a.name) || !a.name.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Err(invalid(
                field,
                "alert names are CamelCase words (LatamctlHighErrorRate)".into(),
            ));
        }
        if !alert_names.insert(a.name.as_str()) {
            return Err(invalid(field, "another alert has this name".into()));
        }
        validate_indicator(&a.indicator, &format!("{field}.indicator"), &invalid)?;
        match (a.indicator.needs_window(), a.window) {
            (true, None) => {
                return Err(invalid(
                    format!("{field}.window"),
                    format!(
                        "a `{}` indicator is a rate: set a window such as 5m",
                        a.indicator.kind()
                    ),
                ));
            }
            (false, Some(_)) => {
                return Err(invalid(
                    format!("{field}.window"),
                    format!(
                        "a `{}` indicator is a gauge and takes no window; use `for` to require a sustained value",
                        a.indicator.kind()
                    ),
                ));
            }
            (true, Some(w)) if w.is_zero() => {
                return Err(invalid(
                    format!("{field}.window"),
                    "must be longer than 0s".into(),
                ));
            }
            _ => {}
        }
        if !a.threshold.is_finite() || a.threshold < 0.0 {
            return Err(invalid(
                format!("{field}.threshold"),
                format!("{} must be a number ≥ 0", a.threshold),
            ));
        }
        if a.indicator.unit() == Unit::Ratio && a.threshold >= 1.0 {
            return Err(invalid(
                format!("{field}.threshold"),
                format!(
                    "{} is a fraction and must be below 1: 5 % is 0.05",
                    a.threshold
                ),
            ));
        }
    }
    Ok(())
}

fn validate_indicator(
    ind: &Indicator,
    field: &str,
    invalid: &impl Fn(String, String) -> Error,
) -> Result<()> {
    match ind {
        Indicator::Latency(l) => {
            if !is_metric_name(&l.histogram) {
                return Err(invalid(
                    format!("{field}.latency.histogram"),
                    format!("`{}` is not a metric name", l.histogram),
                ));
            }
            let secs = l.threshold.as_secs_f64();
            // Every latamctl `*_seconds` histogram has these buckets (telemetry.rs): a
            // threshold between edges would make the SLI an interpolation.
            if l.histogram.ends_with("_seconds")
                && !LATENCY_BUCKETS.iter().any(|b| (b - secs).abs() < 1e-9)
            {
                let edges: Vec<String> = LATENCY_BUCKETS.iter().map(|b| format!("{b}s")).collect();
                return Err(invalid(
                    format!("{field}.latency.threshold"),
                    format!(
                        "{secs}s is not a bucket edge of {} ({}); pick an edge, or add one to LATENCY_BUCKETS in telemetry.rs",
                        l.histogram,
                        edges.join(", ")
                    ),
                ));
            }
        }
        Indicator::Ratio(r) => {
            if r.bad.is_empty() || r.total.is_empty() {
                return Err(invalid(
                    format!("{field}.ratio"),
                    "needs at least one `bad` and one `total` counter".into(),
                ));
            }
            for name in r.bad.iter().chain(&r.total) {
                if !is_metric_name(name) {
                    return Err(invalid(
                        format!("{field}.ratio"),
                        format!("`{name}` is not a metric name"),
                    ));
                }
            }
            if r.bad == r.total && r.bad_matchers.is_empty() {
                return Err(invalid(
                    format!("{field}.ratio.badMatchers"),
                    "bad and total are the same counters: badMatchers must say which events are bad".into(),
                ));
            }
        }
        Indicator::Availability(_)
        | Indicator::Cpu(_)
        | Indicator::Memory(_)
        | Indicator::QueueAge(_)
        | Indicator::DeadLetters(_) => {}
    }
    Ok(())
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
mod tests {
    use super::*;

    fn with(replace: &str, by: &str) -> String {
        assert!(DEFAULT_SPEC.contains(replace), "example lacks `{replace}`");
        DEFAULT_SPEC.replacen(replace, by, 1)
    }

    fn error_of(text: &str) -> String {
        SloSpec::parse(text, "test.yaml").unwrap_err().to_string()
    }

    /// The built-in spec (examples/slo.yaml) reads only series the service writes: the
    /// names in `crate::metric` (which the producers use), metrics-process's `process_*`.
    #[test]
    fn the_builtin_spec_reads_only_metrics_the_service_writes() {
        let spec = SloSpec::builtin().unwrap();
        let indicators = spec
            .spec
            .slos
            .iter()
            .map(|s| &s.indicator)
            .chain(spec.spec.alerts.iter().map(|a| &a.indicator));
        let mut read = Vec::new();
        for indicator in indicators {
            match indicator {
                Indicator::Latency(l) => read.push(l.histogram.clone()),
                Indicator::Ratio(r) => read.extend(r.bad.iter().chain(&r.total).cloned()),
                _ => {}
            }
        }
        assert!(!read.is_empty());
        for name in read {
            assert!(
                crate::metric::ALL.contains(&name.as_str()) || name.starts_with("process_"),
                "examples/slo.yaml reads {name}, which nothing in crate::metric writes"
            );
        }
    }

    #[test]
    fn the_builtin_spec_holds_the_seed_slos_and_alerts() {
        let spec = SloSpec::builtin().unwrap();
        let targets: Vec<(&str, f64)> = spec
            .spec
            .slos
            .iter()
            .map(|s| (s.name.as_str(), s.target))
            .collect();
        assert_eq!(
            targets,
            [
                ("latency", 0.95),
                ("errors", 0.999),
                ("availability", 0.9995),
                ("retries", 0.99),
                ("db_latency", 0.95)
            ]
        );
        for s in &spec.spec.slos {
            assert_eq!(
                s.time_window,
                Duration::from_secs(30 * 86_400),
                "{}",
                s.name
            );
        }
        let alerts: Vec<&str> = spec.spec.alerts.iter().map(|a| a.name.as_str()).collect();
        for seed in [
            "LatamctlSlowRequests",
            "LatamctlHighErrorRate",
            "LatamctlHighCPU",
            "LatamctlHighMemory",
            "LatamctlAvailabilityLow",
        ] {
            assert!(alerts.contains(&seed), "{seed} missing from {alerts:?}");
        }
        assert_eq!(spec.page_burn_rate(), 14.4);
        assert_eq!(spec.page_window(), Duration::from_secs(3600));
        let windows: Vec<String> = spec
            .recorded_windows()
            .into_iter()
            .map(crate::slo::promql::duration)
            .collect();
        assert_eq!(windows, ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]);
    }

    #[test]
    fn a_serialized_spec_parses_back_the_same() {
        let spec = SloSpec::builtin().unwrap();
        let text = serde_saphyr::to_string(&spec).unwrap();
        let back = SloSpec::parse(&text, "serialized").unwrap();
        assert_eq!(
            crate::slo::prometheus::rules_file(&back),
            crate::slo::prometheus::rules_file(&spec),
            "{text}"
        );
    }

    #[test]
    fn unknown_fields_are_errors_naming_the_field() {
        let e = error_of(&with("target: 0.95", "target: 0.95\n      targte: 0.9"));
        assert!(e.contains("targte"), "{e}");
        assert!(e.starts_with("SLO spec test.yaml does not parse"), "{e}");
    }

    #[test]
    fn invalid_values_are_explained() {
        for (from, to, needle) in [
            ("target: 0.95", "target: 95", "99.9 % is 0.999"),
            ("threshold: 200ms", "threshold: 250ms", "not a bucket edge"),
            (
                "matchers: 'route!~\"/healthz|/readyz|/metrics\"'",
                "matchers: 'route!~\"(\"'",
                "not a valid regular expression",
            ),
            (
                "apiVersion: latamctl.io/v1",
                "apiVersion: v2",
                "not supported",
            ),
            ("target: 0.99\n", "target: 0.9\n", "can never fire"),
            (
                "window: 5m\n      threshold: 0.05",
                "threshold: 0.05",
                "set a window",
            ),
            ("threshold: 0.05", "threshold: 5", "5 % is 0.05"),
            ("name: errors", "name: latency", "another SLO has this name"),
            (
                "groupBy: [namespace, system]",
                "groupBy: [namespace]",
                "not in groupBy",
            ),
            (
                "window: 10m\n      threshold: 0.001",
                "window: 10m\n      threshold: 0.001\n      for: 90s",
                "",
            ),
        ] {
            if needle.is_empty() {
                // A valid change: still parses.
                SloSpec::parse(&with(from, to), "test.yaml").unwrap();
                continue;
            }
            let e = error_of(&with(from, to));
            assert!(e.contains(needle), "{from} → {to}: {e}");
        }
        let e = error_of(&with(
            "availability:\n          matchers: 'component=\"api\"'\n      window: 10m",
            "availability:\n          matchers: 'component=\"web\"'\n      window: 10m",
        ));
        assert!(e.contains("must use the same matchers"), "{e}");
    }

    #[test]
    fn cpu_is_not_an_slo_indicator() {
        let text = with(
            "availability:\n          matchers: 'component=\"api\"'",
            "cpu: {}",
        );
        let e = error_of(&text);
        assert!(e.contains("not a ratio of good events"), "{e}");
    }

    #[test]
    fn words_split_camel_case_keeping_acronyms() {
        assert_eq!(words("LatamctlHighCPU"), ["latamctl", "high", "cpu"]);
        assert_eq!(
            words("LatamctlSlowRequests").join("-"),
            "latamctl-slow-requests"
        );
        assert_eq!(words("db_latency").join("_"), "db_latency");
    }

    #[test]
    fn trim_float_drops_binary_noise() {
        assert_eq!(trim_float(14.4), "14.4");
        assert_eq!(trim_float(0.05 * 100.0), "5");
        assert_eq!(trim_float(0.1 + 0.2), "0.3");
        assert_eq!(Unit::Ratio.format(0.0005), "0.05%");
    }
}
