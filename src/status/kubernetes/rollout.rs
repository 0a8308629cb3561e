//! An Argo Rollouts `Rollout`: phase, canary step and weight or blue-green ReplicaSets, and
//! the latest AnalysisRun (with the metric that failed it).

use serde_json::Value;

use super::{list_dynamic, resource};
use crate::status::{Check, State};

/// Adds the Rollout's figures to `check` and worsens it: Degraded or aborted → fail, a failed
/// analysis → fail, Paused or an inconclusive analysis → warn.
pub(super) async fn inspect(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    data: &Value,
    check: &mut Check,
) {
    let status = &data["status"];
    let phase = status["phase"].as_str().unwrap_or("Unknown");
    let message = status["message"].as_str().unwrap_or("");
    let get = format!("`kubectl argo rollouts get rollout {name} -n {namespace}`");
    check.figures.insert("phase".into(), phase.to_owned());

    let strategy = &data["spec"]["strategy"];
    if strategy.get("blueGreen").is_some() {
        let active = status["blueGreen"]["activeSelector"].as_str();
        let preview = status["blueGreen"]["previewSelector"].as_str();
        let rs = |hash: Option<&str>| hash.map_or("none".to_owned(), |h| format!("{name}-{h}"));
        check.figures.insert("active".into(), rs(active));
        if preview.is_some() && preview != active {
            check.figures.insert("preview".into(), rs(preview));
        }
    } else if let Some(steps) = strategy["canary"]["steps"].as_array() {
        let index = status["currentStepIndex"]
            .as_u64()
            .map_or(steps.len(), |i| i as usize);
        check
            .figures
            .insert("step".into(), format!("{index}/{}", steps.len()));
        let weight = status["canary"]["weights"]["canary"]["weight"]
            .as_u64()
            .unwrap_or_else(|| canary_weight(steps, index));
        check.figures.insert("weight".into(), format!("{weight}%"));
    }

    if status["abort"].as_bool() == Some(true) {
        check.worsen(
            State::Fail,
            format!("rollout aborted{}: {get} shows why; push a fixed revision, or `kubectl argo rollouts retry rollout {name} -n {namespace}`", colon(message)),
        );
    } else if phase == "Degraded" {
        check.worsen(
            State::Fail,
            format!("rollout degraded{}: {get}", colon(message)),
        );
    } else if phase == "Paused" {
        check.worsen(
            State::Warn,
            format!(
                "rollout paused{}: promote with `kubectl argo rollouts promote {name} -n {namespace}` or abort with `kubectl argo rollouts abort {name} -n {namespace}`",
                colon(message)
            ),
        );
    }

    match latest_analysis(client, namespace, name, status).await {
        Ok(Some(run)) => {
            let run_name = run.metadata.name.clone().unwrap_or_default();
            let run_phase = run.data["status"]["phase"].as_str().unwrap_or("Pending");
            check
                .figures
                .insert("analysis".into(), format!("{run_name} {run_phase}"));
            let failed = failed_metrics(&run.data);
            match run_phase {
                "Failed" | "Error" => check.worsen(
                    State::Fail,
                    format!(
                        "analysis {run_name} {}{} on metric {}: `kubectl -n {namespace} get analysisrun {run_name} -o yaml`",
                        run_phase.to_lowercase(),
                        colon(run.data["status"]["message"].as_str().unwrap_or("")),
                        if failed.is_empty() { "(none named)".to_owned() } else { failed.join(", ") }
                    ),
                ),
                "Inconclusive" => check.worsen(
                    State::Warn,
                    format!(
                        "analysis {run_name} inconclusive: the rollout waits; promote or abort it (`kubectl argo rollouts promote|abort {name} -n {namespace}`)"
                    ),
                ),
                _ => {}
            }
        }
        Ok(None) => {
            check.figures.insert("analysis".into(), "none".into());
        }
        Err(e) => check.worsen(State::Warn, format!("cannot list AnalysisRuns: {e}")),
    }
}

fn colon(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(" ({message})")
    }
}

/// The canary's weight at step `index` without traffic routing: the last `setWeight` before
/// it; 100 once every step is done.
pub(super) fn canary_weight(steps: &[Value], index: usize) -> u64 {
    if index >= steps.len() {
        return 100;
    }
    steps[..index]
        .iter()
        .rev()
        .find_map(|s| s["setWeight"].as_u64())
        .unwrap_or(0)
}

/// Names of the metrics whose phase is Failed or Error.
fn failed_metrics(run: &Value) -> Vec<String> {
    run["status"]["metricResults"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| matches!(m["phase"].as_str(), Some("Failed" | "Error")))
        .filter_map(|m| m["name"].as_str().map(str::to_owned))
        .collect()
}

/// The newest AnalysisRun of this Rollout: one the status names, or one it owns.
async fn latest_analysis(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    status: &Value,
) -> Result<Option<kube::api::DynamicObject>, kube::Error> {
    let named: Vec<&str> = [
        &status["canary"]["currentStepAnalysisRunStatus"],
        &status["canary"]["currentBackgroundAnalysisRunStatus"],
        &status["blueGreen"]["prePromotionAnalysisRunStatus"],
        &status["blueGreen"]["postPromotionAnalysisRunStatus"],
    ]
    .into_iter()
    .filter_map(|s| s["name"].as_str())
    .collect();
    let runs = list_dynamic(
        client,
        namespace,
        &resource("argoproj.io", "v1alpha1", "AnalysisRun", "analysisruns"),
    )
    .await?;
    Ok(runs
        .into_iter()
        .filter(|r| {
            let owned = r
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.kind == "Rollout" && o.name == name);
            owned
                || r.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| named.contains(&n))
        })
        .max_by_key(|r| r.metadata.creation_timestamp.as_ref().map(|t| t.0)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::canary_weight;

    #[test]
    fn weight_is_the_last_set_weight_before_the_step() {
        let steps = [
            json!({"setWeight": 10}),
            json!({"pause": {"duration": "5m"}}),
            json!({"setWeight": 50}),
            json!({"pause": {}}),
        ];
        assert_eq!(canary_weight(&steps, 0), 0);
        assert_eq!(canary_weight(&steps, 1), 10);
        assert_eq!(canary_weight(&steps, 3), 50);
        assert_eq!(canary_weight(&steps, 4), 100);
    }
}
