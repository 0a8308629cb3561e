//! An Argo Rollouts `AnalysisTemplate` from the SLO spec (seed 3.4: a release that breaks
//! the service is rolled back automatically): one metric per request alert of the spec (the
//! error ratio and the share of slow requests, seed 5.1), each measured on the new
//! ReplicaSet only (`rollouts_pod_template_hash`, which the chart's ServiceMonitor copies
//! from the pod label Argo Rollouts sets), plus the stale-message alert (the freshness SLO)
//! measured for the whole system, each failing at the alert's own threshold.

use super::promql::{self, MatchOp, Matcher, Matchers};
use super::spec::{Indicator, Scope, SloSpec, ThresholdAlert, trim_float, words};
use super::yaml::{self, Node};

/// Argument naming the pipeline (`system` label).
pub const ARG_SYSTEM: &str = "system";
/// Argument with the `rollouts-pod-template-hash` of the new ReplicaSet.
pub const ARG_HASH: &str = "canary-hash";
/// The label the chart's ServiceMonitor relabels the pod-template hash into.
pub const HASH_LABEL: &str = "rollouts_pod_template_hash";
/// Seconds between two measurements of a metric.
pub const INTERVAL_SECONDS: u64 = 60;
/// Measurements of each metric in one analysis run.
pub const COUNT: u64 = 5;
/// Annotation with the longest an analysis run takes, in seconds: the chart refuses a
/// blue-green `scaleDownDelaySeconds` shorter than it (Argo Rollouts would cancel the
/// post-promotion analysis when the previous version is scaled down).
pub const DURATION_ANNOTATION: &str = "latamctl.io/analysis-seconds";

/// One measured metric: its name, PromQL (Argo's `{{args.*}}` placeholders in it) and the
/// alert threshold it fails above.
pub struct AnalysisMetric {
    pub name: String,
    pub query: String,
    pub threshold: f64,
    pub alert: String,
}

/// The request alerts of the spec (latency and error ratio on the HTTP series), as queries
/// on one ReplicaSet of one system.
pub fn metrics(spec: &SloSpec) -> Vec<AnalysisMetric> {
    let scope = Scope {
        matchers: Matchers(vec![
            Matcher::new(
                ARG_SYSTEM,
                MatchOp::Eq,
                &format!("{{{{args.{ARG_SYSTEM}}}}}"),
            )
            .expect("a label name"),
            Matcher::new(HASH_LABEL, MatchOp::Eq, &format!("{{{{args.{ARG_HASH}}}}}"))
                .expect("a label name"),
        ]),
        group_by: Vec::new(),
    };
    // The worker is not part of the api's canary (it takes the new revision in a later sync
    // wave): the pipeline's freshness is measured for the whole system while the canary runs.
    let system = Scope {
        matchers: Matchers(vec![scope.matchers.0[0].clone()]),
        group_by: Vec::new(),
    };
    spec.spec
        .alerts
        .iter()
        .filter_map(|a| {
            let scope = if is_request_alert(a) {
                &scope
            } else if is_pipeline_alert(a) {
                &system
            } else {
                return None;
            };
            Some(AnalysisMetric {
                name: words(&a.name)
                    .into_iter()
                    .filter(|w| w != "latamctl")
                    .collect::<Vec<_>>()
                    .join("-"),
                query: promql::alert_value(&a.indicator, scope, a.window),
                threshold: a.threshold,
                alert: a.name.clone(),
            })
        })
        .collect()
}

/// Alerts on the stored message age (the freshness SLO's signal).
fn is_pipeline_alert(a: &ThresholdAlert) -> bool {
    matches!(&a.indicator, Indicator::Latency(l) if l.histogram == crate::metric::STORED_MESSAGE_AGE_SECONDS)
}

fn is_request_alert(a: &ThresholdAlert) -> bool {
    match &a.indicator {
        Indicator::Latency(l) => l.histogram == crate::metric::HTTP_REQUEST_DURATION_SECONDS,
        Indicator::Ratio(r) => r
            .total
            .iter()
            .any(|t| t == crate::metric::HTTP_REQUESTS_TOTAL),
        _ => false,
    }
}

/// The `AnalysisTemplate` manifest.
pub fn analysis_template(spec: &SloSpec) -> String {
    let name = &spec.metadata.name;
    let metrics: Vec<Node> = metrics(spec)
        .into_iter()
        .map(|m| {
            let t = trim_float(m.threshold);
            Node::map()
                .with("name", Node::str(m.name))
                .with("interval", Node::str(format!("{INTERVAL_SECONDS}s")))
                .with("count", Node::str(COUNT.to_string()))
                .with("failureLimit", Node::str("1"))
                // No traffic on the new pods yet is not a failure.
                .with(
                    "successCondition",
                    Node::str(format!("len(result) == 0 || result[0] <= {t}")),
                )
                .with(
                    "failureCondition",
                    Node::str(format!("len(result) > 0 && result[0] > {t}")),
                )
                .with(
                    "provider",
                    Node::map().with(
                        "prometheus",
                        Node::map()
                            .with("address", Node::str("{{args.prometheus-address}}"))
                            .with("query", Node::block(m.query)),
                    ),
                )
        })
        .collect();
    let arg = |n: &str| Node::map().with("name", Node::str(n));
    let root = Node::map()
        .with("apiVersion", Node::str("argoproj.io/v1alpha1"))
        .with("kind", Node::str("AnalysisTemplate"))
        .with(
            "metadata",
            Node::map()
                .with("name", Node::str(format!("{name}-slo")))
                .with(
                    "labels",
                    Node::map().with("app.kubernetes.io/managed-by", Node::str("latamctl")),
                )
                .with(
                    "annotations",
                    Node::map().with(
                        DURATION_ANNOTATION,
                        Node::str((INTERVAL_SECONDS * COUNT).to_string()),
                    ),
                ),
        )
        .with(
            "spec",
            Node::map()
                .with(
                    "args",
                    Node::Seq(vec![
                        arg(ARG_SYSTEM),
                        arg(ARG_HASH),
                        arg("prometheus-address"),
                    ]),
                )
                .with("metrics", Node::Seq(metrics)),
        );
    let header = format!(
        "{}\n\nArgo Rollouts analysis of a new release: each request alert of the spec, measured on the\nnew ReplicaSet only ({HASH_LABEL}), and the stale-message alert (freshness), measured\nfor the whole system; a failed measurement aborts the rollout and traffic returns to the\nstable version.",
        super::prometheus::generated_by(spec, "analysis-template")
    );
    yaml::document(&header, &root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_template_matches_snapshot() {
        let spec = SloSpec::builtin().unwrap();
        insta::assert_snapshot!("analysis_template", analysis_template(&spec));
    }

    #[test]
    fn one_metric_per_request_alert_at_its_threshold() {
        let spec = SloSpec::builtin().unwrap();
        let m = metrics(&spec);
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["slow-requests", "high-error-rate", "stale-messages"]
        );
        let stale = &m[2];
        assert!(
            !stale.query.contains(HASH_LABEL) && stale.query.contains("system=\"{{args.system}}\""),
            "freshness is pipeline-wide: {}",
            stale.query
        );
        for metric in &m[..2] {
            assert!(
                metric
                    .query
                    .contains(&format!("{HASH_LABEL}=\"{{{{args.{ARG_HASH}}}}}\"")),
                "{}",
                metric.query
            );
            assert!(metric.query.contains("system=\"{{args.system}}\""));
            let alert = spec
                .spec
                .alerts
                .iter()
                .find(|a| a.name == metric.alert)
                .unwrap();
            assert_eq!(metric.threshold, alert.threshold);
        }
        let text = analysis_template(&spec);
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(doc["kind"], "AnalysisTemplate");
        let metrics = doc["spec"]["metrics"].as_array().unwrap();
        assert_eq!(metrics.len(), 3);
        assert_eq!(
            metrics[1]["failureCondition"],
            "len(result) > 0 && result[0] > 0.01"
        );
        assert_eq!(metrics[1]["interval"], "60s");
        assert_eq!(metrics[1]["count"], "5");
        assert_eq!(doc["metadata"]["annotations"][DURATION_ANNOTATION], "300");
    }
}
