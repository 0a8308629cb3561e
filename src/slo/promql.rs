//! PromQL building blocks: label matchers, durations, and every indicator as an expression.
//!
//! Each SLI is a ratio of *bad* events to all events over a window (`sli_error`), so an SLO's
//! error budget is `1 - target` and its burn rate is `sli_error / budget`. Ratios of counters
//! are computed as `sum(rate(bad)) / sum(rate(total))`, grouped by the scope's labels; a
//! missing numerator (no 5xx ever answered, so no series) counts as 0, not as "no data".

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use regex::Regex;

use super::spec::{Indicator, LatencySli, RatioSli, Scope};

/// Name of the recorded error ratio of every SLO over a window (label `slo`).
pub fn sli_error_record(window: Duration) -> String {
    format!("latamctl_slo:sli_error:ratio_rate{}", duration(window))
}

/// Recorded every evaluation: 1 when at least one api replica of the scope is scraped and
/// ready, else 0 (the availability SLI's probe).
pub const AVAILABILITY_RECORD: &str = "latamctl:up_and_ready:max";

/// CPU seconds used by the process (metrics-process).
pub const CPU_SECONDS: &str = "process_cpu_seconds_total";
/// CPU the process may use, in cores (cgroup quota, else the machine's CPUs).
pub const CPU_LIMIT: &str = crate::metric::CPU_LIMIT_CORES;
/// Resident memory of the process (metrics-process).
pub const MEMORY_RESIDENT: &str = "process_resident_memory_bytes";
/// Memory the process may use (cgroup limit, else the machine's RAM).
pub const MEMORY_LIMIT: &str = crate::metric::MEMORY_LIMIT_BYTES;
/// Age of the oldest message in the main queue.
pub const QUEUE_AGE: &str = crate::metric::QUEUE_OLDEST_MESSAGE_AGE_SECONDS;
/// Messages in the queues by queue and state.
pub const QUEUE_DEPTH: &str = crate::metric::QUEUE_DEPTH;
/// Free space and size of the filesystem holding the embedded data dir.
pub const DISK_FREE: &str = crate::metric::DATA_DIR_FREE_BYTES;
pub const DISK_SIZE: &str = crate::metric::DATA_DIR_SIZE_BYTES;
/// 1 when the process is ready.
pub const READY: &str = crate::metric::READY;

/// A PromQL duration: the largest unit that divides it (`30d`, `6h`, `5m`, `90s`, `500ms`).
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    for (unit, secs) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s.is_multiple_of(secs) {
            return format!("{}{unit}", s / secs);
        }
    }
    format!("{s}s")
}

/// How a matcher compares a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    Ne,
    Re,
    NotRe,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

/// One label matcher, `name op "value"`, as PromQL writes it.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    /// The value, unescaped.
    pub value: String,
    /// Anchored like Prometheus anchors it (`^(?:value)$`), for `=~` and `!~`.
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, String> {
        if !is_label_name(name) {
            return Err(format!("`{name}` is not a valid label name"));
        }
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("`{value}` is not a valid regular expression: {e}"))?,
            ),
            MatchOp::Eq | MatchOp::Ne => None,
        };
        Ok(Self {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            regex,
        })
    }

    /// `name="value"` for a constant label name.
    pub fn eq(name: &'static str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            op: MatchOp::Eq,
            value: value.to_owned(),
            regex: None,
        }
    }

    /// Whether a series with these labels matches (a missing label is the empty string, as
    /// in Prometheus).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.name).map(String::as_str).unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::Ne, _) => v != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(v),
            (MatchOp::NotRe, Some(re)) => !re.is_match(v),
            (MatchOp::Re | MatchOp::NotRe, None) => false,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name, self.op.as_str())?;
        for c in self.value.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `s` is a valid Prometheus metric name.
pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A list of matchers as written inside `{...}`: `route!~"/healthz|/metrics", status=~"5.."`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    /// Parses `name op "value", ...` (values in double quotes, single quotes or backticks).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let name_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..name_len];
            if name.is_empty() {
                return Err(format!(
                    "expected a label name at `{rest}` (matchers look like: route!~\"/healthz|/metrics\", status=~\"5..\")"
                ));
            }
            rest = rest[name_len..].trim_start();
            let op = if let Some(r) = rest.strip_prefix("=~") {
                rest = r;
                MatchOp::Re
            } else if let Some(r) = rest.strip_prefix("!~") {
                rest = r;
                MatchOp::NotRe
            } else if let Some(r) = rest.strip_prefix("!=") {
                rest = r;
                MatchOp::Ne
            } else if let Some(r) = rest.strip_prefix('=') {
                rest = r;
                MatchOp::Eq
            } else {
                return Err(format!(
                    "expected =, !=, =~ or !~ after `{name}`, found `{rest}`"
                ));
            };
            rest = rest.trim_start();
            let (value, after) = quoted(rest)
                .ok_or_else(|| format!("expected a quoted value after `{name}{}`", op.as_str()))?;
            out.push(Matcher::new(name, op, &value)?);
            rest = after.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
            } else if !rest.is_empty() {
                return Err(format!("expected `,` between matchers, found `{rest}`"));
            }
        }
        Ok(Self(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every matcher matches.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|m| m.matches(labels))
    }
}

/// A quoted string at the start of `s`: (unescaped value, the rest after the closing quote).
fn quoted(s: &str) -> Option<(String, &str)> {
    let quote = s.chars().next().filter(|c| matches!(c, '"' | '\'' | '`'))?;
    let mut value = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Some((value, &s[i + c.len_utf8()..]));
        }
        if c == '\\' && quote != '`' {
            let (_, e) = chars.next()?;
            value.push(match e {
                'n' => '\n',
                't' => '\t',
                other => other,
            });
        } else {
            value.push(c);
        }
    }
    None
}

impl fmt::Display for Matchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for Matchers {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Matchers::parse(&s)
    }
}

impl From<Matchers> for String {
    fn from(m: Matchers) -> String {
        m.to_string()
    }
}

/// A series selector: one metric name, or several (`{__name__=~"a|b"}`), plus matchers.
#[derive(Debug, Clone)]
pub struct Selector {
    names: Vec<String>,
    matchers: Vec<Matcher>,
}

impl Selector {
    pub fn new(names: &[impl AsRef<str>]) -> Self {
        Self {
            names: names.iter().map(|n| n.as_ref().to_owned()).collect(),
            matchers: Vec::new(),
        }
    }

    pub fn metric(name: &str) -> Self {
        Self::new(&[name])
    }

    pub fn with(mut self, matchers: &Matchers) -> Self {
        self.matchers.extend(matchers.0.iter().cloned());
        self
    }

    /// Adds `name op "value"`; the caller passes valid label names.
    pub fn label(mut self, name: &str, op: MatchOp, value: &str) -> Self {
        if let Ok(m) = Matcher::new(name, op, value) {
            self.matchers.push(m);
        }
        self
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        match self.names.as_slice() {
            [one] => f.write_str(one)?,
            many => parts.push(format!("__name__=~\"{}\"", many.join("|"))),
        }
        parts.extend(self.matchers.iter().map(ToString::to_string));
        if !parts.is_empty() {
            write!(f, "{{{}}}", parts.join(", "))?;
        }
        Ok(())
    }
}

/// `sum by (labels) (...)`, or `sum(...)` with no labels.
pub fn aggregate(op: &str, by: &[String], inner: &str) -> String {
    if by.is_empty() {
        format!("{op}({inner})")
    } else {
        format!("{op} by ({}) ({inner})", by.join(", "))
    }
}

/// Label that keeps the rates of several counters apart inside one sum (see [`sum_rate`]).
const COUNTER_LABEL: &str = "latamctl_counter";

/// `sum by (labels) (rate(selector[window]))`. With several counter names, each is rated on its
/// own and tagged with its name before the union: `rate({__name__=~"a|b"})` drops the names,
/// and two counters with the same other labels (`a{system="s"}`, `b{system="s"}`) would make
/// Prometheus refuse the vector ("vector cannot contain metrics with the same labelset").
fn sum_rate(sel: &Selector, window: Duration, by: &[String]) -> String {
    let w = duration(window);
    if sel.names.len() <= 1 {
        return aggregate("sum", by, &format!("rate({sel}[{w}])"));
    }
    let parts: Vec<String> = sel
        .names
        .iter()
        .map(|name| {
            let one = Selector {
                names: vec![name.clone()],
                matchers: sel.matchers.clone(),
            };
            format!("label_replace(rate({one}[{w}]), \"{COUNTER_LABEL}\", \"{name}\", \"\", \"\")")
        })
        .collect();
    aggregate("sum", by, &parts.join(" or "))
}

/// Indents every line of `s` by `n` spaces.
fn indent(s: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    s.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `le` label value of a bucket edge as the exporter writes it (`0.2`, `1`).
pub fn le_label(secs: f64) -> String {
    format!("{secs}")
}

/// Selectors of a latency SLI: (all requests, requests faster than the threshold).
pub fn latency_selectors(l: &LatencySli, scope: &Matchers) -> (Selector, Selector) {
    let total = Selector::metric(&format!("{}_count", l.histogram))
        .with(scope)
        .with(&l.matchers);
    let good = Selector::metric(&format!("{}_bucket", l.histogram))
        .with(scope)
        .with(&l.matchers)
        .label("le", MatchOp::Eq, &le_label(l.threshold.as_secs_f64()));
    (total, good)
}

/// Selectors of a ratio SLI: (bad events, all events).
pub fn ratio_selectors(r: &RatioSli, scope: &Matchers) -> (Selector, Selector) {
    let bad = Selector::new(&r.bad)
        .with(scope)
        .with(&r.matchers)
        .with(&r.bad_matchers);
    let total = Selector::new(&r.total).with(scope).with(&r.matchers);
    (bad, total)
}

/// The probe the availability SLI averages, evaluated at every rule evaluation: 1 when at
/// least one replica is scraped (`up`) and ready (`latamctl_ready`; a target that does not
/// export it counts as ready when up). A dead process cannot count its own failures, so the
/// scrape is the outside view.
pub fn availability_probe(matchers: &Matchers, scope: &Scope) -> String {
    let up = Selector::metric("up").with(&scope.matchers).with(matchers);
    let ready = Selector::metric(READY).with(&scope.matchers).with(matchers);
    aggregate(
        "max",
        &scope.group_by,
        &format!("\n  ({up} * {ready})\n  or\n  {up}\n"),
    )
}

/// The fraction of bad events of an SLO-able indicator over `window`; `None` for indicators
/// that are not ratios (resources, queue).
pub fn sli_error(ind: &Indicator, scope: &Scope, window: Duration) -> Option<String> {
    let by = &scope.group_by;
    match ind {
        Indicator::Latency(l) => {
            let (total, good) = latency_selectors(l, &scope.matchers);
            let total = sum_rate(&total, window, by);
            let good = sum_rate(&good, window, by);
            Some(format!(
                "(\n{}\n  -\n{}\n)\n/\n{total}",
                indent(&total, 2),
                indent(&good, 2)
            ))
        }
        Indicator::Ratio(r) => {
            let (bad, total) = ratio_selectors(r, &scope.matchers);
            let bad = sum_rate(&bad, window, by);
            let total = sum_rate(&total, window, by);
            Some(format!(
                "(\n{}\n  or\n  0 * {total}\n)\n/\n{total}",
                indent(&bad, 2)
            ))
        }
        Indicator::Availability(_) => {
            let probe = Selector::metric(AVAILABILITY_RECORD).with(&scope.matchers);
            Some(format!("1 - avg_over_time({probe}[{}])", duration(window)))
        }
        Indicator::Cpu(_)
        | Indicator::Memory(_)
        | Indicator::QueueAge(_)
        | Indicator::DeadLetters(_)
        | Indicator::Disk(_) => None,
    }
}

/// The value an alert compares with its threshold: a bad-event ratio over `window` for
/// ratio indicators, a utilisation (0..1) for resources, seconds or messages for the queue.
pub fn alert_value(ind: &Indicator, scope: &Scope, window: Option<Duration>) -> String {
    let by = &scope.group_by;
    let ratio_window = window.unwrap_or(Duration::from_secs(300));
    match ind {
        Indicator::Latency(_) | Indicator::Ratio(_) | Indicator::Availability(_) => {
            sli_error(ind, scope, ratio_window).unwrap_or_default()
        }
        // Per process: both series come from the same target, so they match one to one.
        Indicator::Cpu(r) => {
            let used = Selector::metric(CPU_SECONDS)
                .with(&scope.matchers)
                .with(&r.matchers);
            let limit = Selector::metric(CPU_LIMIT)
                .with(&scope.matchers)
                .with(&r.matchers);
            format!("rate({used}[{}])\n/\n{limit}", duration(ratio_window))
        }
        Indicator::Memory(r) => {
            let used = Selector::metric(MEMORY_RESIDENT)
                .with(&scope.matchers)
                .with(&r.matchers);
            let limit = Selector::metric(MEMORY_LIMIT)
                .with(&scope.matchers)
                .with(&r.matchers);
            format!("{used}\n/\n{limit}")
        }
        Indicator::QueueAge(r) => {
            let age = Selector::metric(QUEUE_AGE)
                .with(&scope.matchers)
                .with(&r.matchers);
            aggregate("max", by, &age.to_string())
        }
        // Per process, like memory: the filesystem each process writes its data dir on.
        Indicator::Disk(r) => {
            let free = Selector::metric(DISK_FREE)
                .with(&scope.matchers)
                .with(&r.matchers);
            let size = Selector::metric(DISK_SIZE)
                .with(&scope.matchers)
                .with(&r.matchers);
            format!("1 - {free}\n/\n{size}")
        }
        Indicator::DeadLetters(r) => {
            let dlq = Selector::metric(QUEUE_DEPTH)
                .with(&scope.matchers)
                .with(&r.matchers)
                .label("queue", MatchOp::Eq, "dlq")
                .label("state", MatchOp::Eq, "visible");
            aggregate("max", by, &dlq.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(duration(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(duration(Duration::from_secs(6 * 3600)), "6h");
        assert_eq!(duration(Duration::from_secs(300)), "5m");
        assert_eq!(duration(Duration::from_secs(90)), "90s");
        assert_eq!(duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration(Duration::ZERO), "0s");
    }

    #[test]
    fn matchers_parse_render_and_match() {
        let m =
            Matchers::parse(r#"route!~"/healthz|/readyz", status=~'5..',  system!="" ,"#).unwrap();
        assert_eq!(m.0.len(), 3);
        assert_eq!(
            m.to_string(),
            r#"route!~"/healthz|/readyz", status=~"5..", system!="""#
        );
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(m.matches(&labels(&[
            ("route", "/data/{id}"),
            ("status", "503"),
            ("system", "a")
        ])));
        // Anchored: 5.. does not match 5000; /healthz does not match /healthz/x.
        assert!(!m.matches(&labels(&[
            ("route", "/x"),
            ("status", "5000"),
            ("system", "a")
        ])));
        assert!(!m.matches(&labels(&[
            ("route", "/healthz"),
            ("status", "500"),
            ("system", "a")
        ])));
        // A missing label is "", so system!="" fails.
        assert!(!m.matches(&labels(&[("route", "/x"), ("status", "500")])));
        // Escapes survive a round trip.
        let q = Matchers::parse(r#"a="x\"y\\z""#).unwrap();
        assert_eq!(q.0[0].value, "x\"y\\z");
        assert_eq!(Matchers::parse(&q.to_string()).unwrap(), q);
    }

    #[test]
    fn bad_matchers_are_rejected_with_the_reason() {
        for (text, needle) in [
            ("route", "expected =, !=, =~ or !~"),
            ("route=/x", "quoted value"),
            (r#"route="/x" status="5""#, "expected `,`"),
            (r#"route=~"(""#, "not a valid regular expression"),
            (r#"route="/x"#, "quoted value"),
            (r#"9x="a""#, "not a valid label name"),
            (r#", a="b""#, "expected a label name"),
        ] {
            let e = Matchers::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn several_counters_are_rated_apart_before_the_sum() {
        let s = Selector::new(&["a_total", "b_total"]).label("x", MatchOp::Eq, "1");
        assert_eq!(
            sum_rate(&s, Duration::from_secs(300), &["system".to_owned()]),
            r#"sum by (system) (label_replace(rate(a_total{x="1"}[5m]), "latamctl_counter", "a_total", "", "") or label_replace(rate(b_total{x="1"}[5m]), "latamctl_counter", "b_total", "", ""))"#
        );
    }

    #[test]
    fn selectors_with_several_names_use_name_regex() {
        let s = Selector::new(&["a_total", "b_total"]).label("x", MatchOp::Eq, "1");
        assert_eq!(s.to_string(), r#"{__name__=~"a_total|b_total", x="1"}"#);
        assert_eq!(Selector::metric("up").to_string(), "up");
    }
}
