//! What `SloSpec::validate` checks beyond the types: each part of the spec in its own
//! function, every error naming the field and what to write instead.

use super::*;

/// Scope labels are label names, and the scope matches only labels recorded series keep;
/// every availability indicator looks at the same targets (the probe is recorded once).
pub(super) fn validate_scope(
    s: &ServiceLevels,
    invalid: &impl Fn(String, String) -> Error,
) -> Result<()> {
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
pub(super) fn validate_burn_rate_policies(
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
pub(super) fn validate_slos(
    s: &ServiceLevels,
    invalid: &impl Fn(String, String) -> Error,
) -> Result<()> {
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
pub(super) fn validate_alerts(
    s: &ServiceLevels,
    invalid: &impl Fn(String, String) -> Error,
) -> Result<()> {
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

pub(super) fn validate_indicator(
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
            // Every latamctl histogram has fixed buckets (telemetry.rs): a threshold between
            // edges would make the SLI an interpolation.
            if let Some(buckets) = histogram_buckets(&l.histogram)
                && !buckets.iter().any(|b| (b - secs).abs() < 1e-9)
            {
                let edges: Vec<String> = buckets.iter().map(|b| format!("{b}s")).collect();
                return Err(invalid(
                    format!("{field}.latency.threshold"),
                    format!(
                        "{secs}s is not a bucket edge of {} ({}); pick an edge, or add one to its buckets in telemetry.rs",
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
        | Indicator::DeadLetters(_)
        | Indicator::Disk(_) => {}
    }
    Ok(())
}

/// Synthetics Datadog can run: an http(s) base URL, a location, a frequency Datadog offers,
/// a certificate host and a warning period.
pub(super) fn validate_synthetics(
    s: &ServiceLevels,
    invalid: &impl Fn(String, String) -> Error,
) -> Result<()> {
    let Some(syn) = &s.synthetics else {
        return Ok(());
    };
    let field = |f: &str| format!("spec.synthetics.{f}");
    let url = syn.base_url.trim_end_matches('/');
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.contains(char::is_whitespace)
    {
        return Err(invalid(
            field("baseUrl"),
            format!(
                "`{}` is not an http(s) URL (https://ingest.example.com)",
                syn.base_url
            ),
        ));
    }
    if syn.locations.is_empty() {
        return Err(invalid(
            field("locations"),
            "list at least one location (aws:us-east-1, or pl:<id> for a private location)".into(),
        ));
    }
    let tick = syn.tick_every.as_secs();
    if !(30..=604_800).contains(&tick) || syn.tick_every.subsec_nanos() != 0 {
        return Err(invalid(
            field("tickEvery"),
            "Datadog runs tests every 30s to 7d, in whole seconds".into(),
        ));
    }
    if !crate::config::valid_topic_name(&syn.topic) {
        return Err(invalid(
            field("topic"),
            format!("`{}` is not a topic name", syn.topic),
        ));
    }
    if syn.store_within.is_zero() || syn.store_within > Duration::from_secs(60) {
        return Err(invalid(
            field("storeWithin"),
            "between 1s and 60s (a multistep test step retries for at most a minute)".into(),
        ));
    }
    if syn.ssl.host.is_empty() || syn.ssl.host.contains(['/', ':', ' ']) {
        return Err(invalid(
            field("ssl.host"),
            format!("`{}` is not a host name", syn.ssl.host),
        ));
    }
    if syn.ssl.alert_days_before_expiry == 0 {
        return Err(invalid(
            field("ssl.alertDaysBeforeExpiry"),
            "at least 1 day".into(),
        ));
    }
    Ok(())
}
