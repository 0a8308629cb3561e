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
            ("db_latency", 0.95),
            ("freshness", 0.99),
            ("completeness", 0.9999)
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
