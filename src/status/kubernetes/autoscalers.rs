//! A workload's autoscalers, found by what they target: the HPA (the chart's, or KEDA's
//! `keda-hpa-<scaledobject>`), the KEDA ScaledObject and the VPA.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;

use super::{Workload, list_dynamic, quantity, resource};
use crate::status::{Check, State};

/// The container the chart's VPA sizes.
const CONTAINER: &str = "latamctl";

pub(super) async fn inspect(
    client: &kube::Client,
    namespace: &str,
    workload: &Workload,
    check: &mut Check,
) {
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
    let scaled = resource("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects");
    let vpas = resource(
        "autoscaling.k8s.io",
        "v1",
        "VerticalPodAutoscaler",
        "verticalpodautoscalers",
    );
    let every = ListParams::default();
    let (hpa_list, scaled_list, vpa_list) = tokio::join!(
        hpas.list(&every),
        list_dynamic(client, namespace, &scaled),
        list_dynamic(client, namespace, &vpas),
    );
    match hpa_list {
        Ok(list) => hpa(workload, list.items, check),
        Err(e) => check.worsen(State::Warn, format!("cannot list HPAs: {e}")),
    }
    match scaled_list {
        Ok(list) => scaled_object(workload, list, check),
        Err(e) => check.worsen(State::Warn, format!("cannot list ScaledObjects: {e}")),
    }
    match vpa_list {
        Ok(list) => vpa(workload, list, check),
        Err(e) => check.worsen(State::Warn, format!("cannot list VPAs: {e}")),
    }
}

fn targets(workload: &Workload, kind: Option<&str>, name: Option<&str>) -> bool {
    name == Some(workload.name.as_str()) && kind.unwrap_or("Deployment") == workload.kind
}

fn hpa(workload: &Workload, items: Vec<HorizontalPodAutoscaler>, check: &mut Check) {
    let Some(hpa) = items.into_iter().find(|h| {
        targets(
            workload,
            Some(&h.spec.scale_target_ref.kind),
            Some(&h.spec.scale_target_ref.name),
        )
    }) else {
        check.figures.insert("hpa".into(), "none".into());
        return;
    };
    let name = hpa.metadata.name.clone().unwrap_or_default();
    let max = hpa.spec.max_replicas;
    let status = hpa.status.unwrap_or_default();
    let current = status.current_replicas.unwrap_or(0);
    check.figures.insert(
        "hpa".into(),
        format!("{name} {current}→{} (max {max})", status.desired_replicas),
    );
    if max > 0 && current >= max {
        check.worsen(
            State::Warn,
            format!(
                "HPA {name} is at maxReplicas {max}: it cannot scale further; raise the maximum (values: {}) or find what loads it",
                if name.starts_with("keda-hpa-") {
                    "worker.keda.maxReplicaCount"
                } else {
                    "<component>.autoscaling.maxReplicas"
                }
            ),
        );
    }
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn scaled_object(workload: &Workload, items: Vec<DynamicObject>, check: &mut Check) {
    let Some(so) = items.into_iter().find(|o| {
        let target = &o.data["spec"]["scaleTargetRef"];
        targets(workload, target["kind"].as_str(), target["name"].as_str())
    }) else {
        return;
    };
    let name = so.metadata.name.clone().unwrap_or_default();
    let state = |kind| {
        condition(&so.data, kind)
            .and_then(|c| c["status"].as_str())
            .unwrap_or("Unknown")
            .to_owned()
    };
    let (ready, active) = (state("Ready"), state("Active"));
    check.figures.insert(
        "scaledobject".into(),
        format!("{name} ready={ready} active={active}"),
    );
    if ready != "True" {
        let message = condition(&so.data, "Ready")
            .and_then(|c| c["message"].as_str())
            .unwrap_or("no Ready condition yet");
        check.worsen(
            State::Warn,
            format!(
                "ScaledObject {name} is not ready ({message}): KEDA cannot scale the {}; `kubectl -n {} describe scaledobject {name}`",
                workload.name,
                so.metadata.namespace.as_deref().unwrap_or("")
            ),
        );
    }
}

/// The container's requests and limits in the workload's pod template.
fn resources(workload: &Workload) -> ResourceRequirements {
    workload
        .template
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == CONTAINER))
        .and_then(|c| c.resources.clone())
        .unwrap_or_default()
}

fn vpa(workload: &Workload, items: Vec<DynamicObject>, check: &mut Check) {
    let Some(vpa) = items.into_iter().find(|o| {
        let target = &o.data["spec"]["targetRef"];
        targets(workload, target["kind"].as_str(), target["name"].as_str())
    }) else {
        return;
    };
    let name = vpa.metadata.name.clone().unwrap_or_default();
    let Some(target) = vpa.data["status"]["recommendation"]["containerRecommendations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["containerName"] == CONTAINER)
        .map(|c| &c["target"])
    else {
        check
            .figures
            .insert("vpa".into(), format!("{name}: no recommendation yet"));
        return;
    };
    let res = resources(workload);
    let mut shown = Vec::new();
    for resource in ["cpu", "memory"] {
        let Some(recommended) = target[resource].as_str() else {
            continue;
        };
        let request = res
            .requests
            .as_ref()
            .and_then(|r| r.get(resource))
            .map(|q| q.0.as_str());
        shown.push(format!(
            "{resource} {recommended} (request {})",
            request.unwrap_or("none")
        ));
        let limit = res
            .limits
            .as_ref()
            .and_then(|l| l.get(resource))
            .map(|q| q.0.as_str());
        if let (Some(r), Some(l)) = (
            quantity::parse(recommended),
            limit.and_then(quantity::parse),
        ) && r > l
        {
            check.worsen(
                State::Warn,
                format!(
                    "VPA {name} recommends {resource} {recommended}, past the limit {}: raise resources.limits.{resource} of the {}, or the pods will be throttled or OOM-killed",
                    limit.unwrap_or_default(),
                    workload.name
                ),
            );
        }
    }
    check
        .figures
        .insert("vpa".into(), format!("{name}: {}", shown.join(", ")));
}
