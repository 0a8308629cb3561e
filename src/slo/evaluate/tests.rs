use super::*;

#[test]
fn burn_rate_maths() {
    // 99.9 % target: budget 0.1 %. 1.44 % bad burns at 14.4x: 2 % of a 30-day budget
    // per hour.
    let budget = 1.0 - 0.999;
    assert!((burn_rate(0.0144, budget) - 14.4).abs() < 1e-9);
    assert!((budget_remaining(0.0005, budget) - 0.5).abs() < 1e-9);
    assert!(budget_remaining(0.002, budget) < 0.0);
    assert_eq!(budget_remaining(0.0, budget), 1.0);
}

#[test]
fn states_follow_budget_then_burn() {
    assert_eq!(classify(None, None, 14.4), State::NoData);
    assert_eq!(classify(Some(0.0), Some(0.1), 14.4), State::Exhausted);
    assert_eq!(classify(Some(-1.0), None, 14.4), State::Exhausted);
    assert_eq!(classify(Some(0.9), Some(14.4), 14.4), State::Page);
    assert_eq!(classify(Some(0.9), Some(2.0), 14.4), State::Burning);
    assert_eq!(classify(Some(0.9), Some(1.0), 14.4), State::Ok);
    assert_eq!(classify(Some(0.9), None, 14.4), State::Ok);
    assert!(State::Page.is_failure() && State::Exhausted.is_failure());
    assert!(!State::Burning.is_failure() && !State::NoData.is_failure());
}

fn page(requests: &[(&str, &str, u64)], slow: u64, fast: u64, ready: f64) -> Vec<Sample> {
    let mut text = String::new();
    for (route, status, n) in requests {
        text.push_str(&format!(
            "http_requests_total{{route=\"{route}\",method=\"POST\",status=\"{status}\"}} {n}\n"
        ));
    }
    text.push_str(&format!(
        "http_request_duration_seconds_bucket{{route=\"/ingresar-datos\",method=\"POST\",le=\"0.2\"}} {fast}\n"
    ));
    text.push_str(&format!(
        "http_request_duration_seconds_count{{route=\"/ingresar-datos\",method=\"POST\"}} {}\n",
        fast + slow
    ));
    text.push_str(&format!("latamctl_ready {ready}\n"));
    exposition::parse(&text).unwrap()
}

#[test]
fn sampled_deltas_give_the_slis() {
    let spec = SloSpec::builtin().unwrap();
    let mut s = Sampling::new(1);
    s.record(vec![Some(page(
        &[("/ingresar-datos", "200", 100), ("/metrics", "200", 50)],
        0,
        100,
        1.0,
    ))]);
    s.record(vec![None]);
    // 900 more requests: 9 answered 503 (a new series), 45 slower than 200 ms; scrapes
    // of /metrics do not count.
    s.record(vec![Some(page(
        &[
            ("/ingresar-datos", "200", 991),
            ("/ingresar-datos", "503", 9),
            ("/metrics", "200", 5000),
        ],
        45,
        955,
        1.0,
    ))]);
    let ratio = |name: &str| s.bad_ratio(&spec.slo(name).unwrap().indicator);
    assert!((ratio("errors").unwrap() - 0.01).abs() < 1e-12);
    assert!((ratio("latency").unwrap() - 0.05).abs() < 1e-12);
    // One round of three without an answer.
    assert!((ratio("availability").unwrap() - 1.0 / 3.0).abs() < 1e-12);
    // No retry and no publish counter at all: no data, not 0.
    assert_eq!(ratio("retries"), None);
}

#[test]
fn a_counter_reset_counts_the_new_value() {
    let spec = SloSpec::builtin().unwrap();
    let mut s = Sampling::new(1);
    s.record(vec![Some(page(
        &[("/x", "500", 50), ("/x", "200", 950)],
        0,
        0,
        1.0,
    ))]);
    s.record(vec![Some(page(
        &[("/x", "500", 1), ("/x", "200", 9)],
        0,
        0,
        1.0,
    ))]);
    let r = s.bad_ratio(&spec.slo("errors").unwrap().indicator).unwrap();
    assert!((r - 0.1).abs() < 1e-12);
}

#[test]
fn metrics_url_appends_the_path_only_when_missing() {
    assert_eq!(metrics_url("http://h:8080"), "http://h:8080/metrics");
    assert_eq!(metrics_url("http://h:8080/"), "http://h:8080/metrics");
    assert_eq!(metrics_url("http://h:8080/custom"), "http://h:8080/custom");
}
