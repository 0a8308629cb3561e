use super::*;

fn f(text: &str) -> Result<String> {
    filter(&[&Matchers::parse(text).unwrap()])
}

#[test]
fn matchers_become_tag_filters() {
    assert_eq!(
        f(r#"route!~"/healthz|/readyz|/metrics""#).unwrap(),
        "{route NOT IN (/healthz,/readyz,/metrics)}"
    );
    assert_eq!(
        f(r#"status=~"4..|5..""#).unwrap(),
        "{(status:4* OR status:5*)}"
    );
    assert_eq!(f(r#"status=~"5..""#).unwrap(), "{status:5*}");
    assert_eq!(
        f(r#"component="api", route="/data/{transaction_id}""#).unwrap(),
        "{component:api AND route:/data/_transaction_id_}"
    );
    assert_eq!(f("").unwrap(), "{*}");
    let e = f(r#"route=~"/data/.+""#).unwrap_err().to_string();
    assert!(
        e.contains("cannot be written as a Datadog tag filter"),
        "{e}"
    );
}

#[test]
fn metric_names_follow_openmetrics_v2() {
    let spec = SloSpec::builtin().unwrap();
    let dd = Datadog::new(&spec);
    assert_eq!(
        dd.counter(crate::metric::HTTP_REQUESTS_TOTAL),
        "latamctl.http_requests.count"
    );
    assert_eq!(dd.gauge(crate::metric::READY), "latamctl.latamctl_ready");
    assert_eq!(
        dd.distribution(crate::metric::HTTP_REQUEST_DURATION_SECONDS),
        "latamctl.http_request_duration_seconds"
    );
}

#[test]
fn terraform_holds_every_slo_alert_and_short_burn_pairs() {
    let spec = SloSpec::builtin().unwrap();
    let doc: Value = serde_json::from_str(&terraform(&spec).unwrap()).unwrap();
    let slos = doc["resource"]["datadog_service_level_objective"]
        .as_object()
        .unwrap();
    assert_eq!(slos.len(), 7);
    assert_eq!(slos["latamctl_latency"]["thresholds"][0]["target"], 95.0);
    assert_eq!(
        slos["latamctl_freshness"]["query"]["numerator"],
        "count(v: v<=5):latamctl.latamctl_stored_message_age_seconds{*}"
    );
    // A root module Terraform can init: DataDog/datadog, not the non-existent hashicorp/datadog.
    assert_eq!(
        doc["terraform"]["required_providers"]["datadog"]["source"],
        "DataDog/datadog"
    );
    assert_eq!(
        slos["latamctl_latency"]["query"]["numerator"],
        "count(v: v<=0.2):latamctl.http_request_duration_seconds{route NOT IN (/healthz,/readyz,/metrics)}"
    );
    let monitors = doc["resource"]["datadog_monitor"].as_object().unwrap();
    // 7 SLOs × 3 pairs (the 3d pair exceeds Datadog's 48h) + the threshold alerts.
    assert_eq!(monitors.len(), 7 * 3 + spec.spec.alerts.len());
    assert_eq!(
        monitors["latamctl_slow_requests"]["query"],
        "percentile(last_5m):p95:latamctl.http_request_duration_seconds{route NOT IN (/healthz,/readyz,/metrics)} by {system} > 0.4"
    );
    assert_eq!(
        monitors["latamctl_high_error_rate"]["query"],
        "min(last_3m):(sum:latamctl.http_requests.count{route NOT IN (/healthz,/readyz,/metrics) AND (status:4* OR status:5*) AND !status:404} by {system}.as_rate()) / (sum:latamctl.http_requests.count{route NOT IN (/healthz,/readyz,/metrics)} by {system}.as_rate()) > 0.01"
    );
    let burn = &monitors["latamctl_errors_burn_page_1h"];
    assert_eq!(burn["type"], "slo alert");
    assert_eq!(
        burn["query"],
        "burn_rate(\"${datadog_service_level_objective.latamctl_errors.id}\").over(\"30d\").long_window(\"1h\").short_window(\"5m\") > 14.4"
    );
}
