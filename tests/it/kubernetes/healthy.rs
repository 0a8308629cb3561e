//! What a healthy cluster adds to the chart's render: status, pods, KEDA's HPA, AnalysisRuns.

use super::*;

/// A healthy cluster running the rendered objects: workloads ready, one pod per replica,
/// autoscalers reporting, KEDA's HPA, an AnalysisRun that passed for each Rollout with analysis.
pub(super) fn healthy(rendered: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut live = rendered.to_vec();
    // What KEDA creates for a ScaledObject.
    for so in rendered.iter().filter(|o| o["kind"] == "ScaledObject") {
        let name = so["metadata"]["name"].as_str().unwrap();
        let target = &so["spec"]["scaleTargetRef"];
        let min = so["spec"]["minReplicaCount"].as_i64().unwrap_or(0).max(1);
        live.push(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": format!("keda-hpa-{name}"), "namespace": NAMESPACE},
            "spec": {
                "scaleTargetRef": {"apiVersion": target["apiVersion"], "kind": target["kind"].as_str().unwrap_or("Deployment"), "name": target["name"]},
                "minReplicas": min, "maxReplicas": so["spec"]["maxReplicaCount"],
            },
        }));
    }
    let replicas_of = |kind: &str, name: &str, live: &[Value]| -> i64 {
        live.iter()
            .find(|h| {
                h["kind"] == "HorizontalPodAutoscaler"
                    && h["spec"]["scaleTargetRef"]["kind"] == kind
                    && h["spec"]["scaleTargetRef"]["name"] == name
            })
            .and_then(|h| h["spec"]["minReplicas"].as_i64())
            .unwrap_or(1)
    };
    for mut o in live.clone() {
        let kind = o["kind"].as_str().unwrap().to_owned();
        let name = o["metadata"]["name"].as_str().unwrap().to_owned();
        o["metadata"]["namespace"] = json!(NAMESPACE);
        o["metadata"]["creationTimestamp"] = json!("2026-12-01T10:00:00Z");
        match kind.as_str() {
            "Deployment" | "Rollout" => {
                if o["spec"]["replicas"].is_null() {
                    // The API server defaults it; the HPA then keeps it at least at its minimum.
                    o["spec"]["replicas"] = json!(replicas_of(&kind, &name, &live));
                }
                let n = o["spec"]["replicas"].as_i64().unwrap();
                let hash = "5d8f7c9b4";
                o["status"] = json!({"replicas": n, "readyReplicas": n, "availableReplicas": n, "updatedReplicas": n});
                if kind == "Rollout" {
                    let steps = o["spec"]["strategy"]["canary"]["steps"]
                        .as_array()
                        .map_or(0, Vec::len);
                    let canary = o["spec"]["strategy"]["canary"].is_object();
                    let status = o["status"].as_object_mut().unwrap();
                    status.insert("phase".into(), json!("Healthy"));
                    status.insert("stableRS".into(), json!(hash));
                    status.insert("currentPodHash".into(), json!(hash));
                    if canary {
                        status.insert("currentStepIndex".into(), json!(steps));
                    } else {
                        status.insert(
                            "blueGreen".into(),
                            json!({"activeSelector": hash, "previewSelector": hash}),
                        );
                    }
                    let template =
                        o["spec"]["strategy"]["canary"]["analysis"]["templates"][0]["templateName"]
                            .as_str()
                            .or_else(|| {
                                ["prePromotionAnalysis", "postPromotionAnalysis"]
                                    .iter()
                                    .find_map(|k| {
                                        o["spec"]["strategy"]["blueGreen"][*k]["templates"][0]
                                        ["templateName"]
                                        .as_str()
                                    })
                            });
                    if let Some(template) = template {
                        let metrics: Vec<Value> = rendered
                            .iter()
                            .find(|t| {
                                t["kind"] == "AnalysisTemplate" && t["metadata"]["name"] == template
                            })
                            .expect("the Rollout's AnalysisTemplate is rendered")["spec"]["metrics"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|m| json!({"name": m["name"], "phase": "Successful", "count": 5}))
                            .collect();
                        out.push(json!({
                            "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
                            "metadata": {
                                "name": format!("{name}-{hash}-2"), "namespace": NAMESPACE,
                                "creationTimestamp": "2026-12-01T10:05:00Z",
                                "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": name, "uid": "1"}],
                            },
                            "spec": {"metrics": []},
                            "status": {"phase": "Successful", "metricResults": metrics},
                        }));
                    }
                }
                let template = &o["spec"]["template"];
                for i in 0..n {
                    let mut labels = template["metadata"]["labels"].clone();
                    labels["pod-template-hash"] = json!(hash);
                    if kind == "Rollout" {
                        labels["rollouts-pod-template-hash"] = json!(hash);
                    }
                    let statuses = |key: &str, running: bool| -> Vec<Value> {
                        template["spec"][key]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|c| {
                                let state = if running {
                                    json!({"running": {"startedAt": "2026-12-01T10:01:00Z"}})
                                } else {
                                    json!({"terminated": {"exitCode": 0, "reason": "Completed"}})
                                };
                                json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": running,
                                       "restartCount": 0, "state": state})
                            })
                            .collect()
                    };
                    out.push(json!({
                        "apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": format!("{name}-{hash}-p{i}"), "namespace": NAMESPACE, "labels": labels},
                        "spec": template["spec"],
                        "status": {
                            "phase": "Running",
                            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
                            "containerStatuses": statuses("containers", true),
                            "initContainerStatuses": statuses("initContainers", false),
                        },
                    }));
                }
            }
            "HorizontalPodAutoscaler" => {
                let min = o["spec"]["minReplicas"].as_i64().unwrap_or(1);
                o["status"] = json!({"currentReplicas": min, "desiredReplicas": min});
            }
            "ScaledObject" => {
                o["status"] = json!({"conditions": [
                    {"type": "Ready", "status": "True", "reason": "ScaledObjectReady"},
                    {"type": "Active", "status": "False", "reason": "ScalerNotActive"},
                ]});
            }
            "VerticalPodAutoscaler" => {
                let target = &o["spec"]["targetRef"];
                let workload = live
                    .iter()
                    .find(|w| {
                        w["kind"] == target["kind"] && w["metadata"]["name"] == target["name"]
                    })
                    .expect("the VPA's target is rendered");
                let requests = workload["spec"]["template"]["spec"]["containers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["name"] == "latamctl")
                    .unwrap()["resources"]["requests"]
                    .clone();
                o["status"] = json!({"recommendation": {"containerRecommendations": [
                    {"containerName": "latamctl", "target": requests},
                ]}});
            }
            _ => {}
        }
        out.push(o);
    }
    out
}
