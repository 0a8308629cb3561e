//! The pods a workload's selector matches: restarts, the failures that keep a pod from
//! serving (each named with its pod and reason), and the image they run.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{Api, ListParams};

use super::Workload;
use crate::status::{Check, State};

/// The container that runs latamctl (the chart's name for it).
const CONTAINER: &str = "latamctl";

/// Waiting reasons that mean the container will not start by itself, with what to do.
fn waiting_hint(reason: &str, namespace: &str, pod: &str, container: &str) -> Option<String> {
    Some(match reason {
        "ImagePullBackOff" | "ErrImagePull" => format!(
            "check image.repository/image.tag and the nodes' pull access to the registry (`kubectl -n {namespace} describe pod {pod}`)"
        ),
        "CreateContainerConfigError" => format!(
            "a Secret or ConfigMap the pod needs is missing (database.existingSecret, apiToken.existingSecret): `kubectl -n {namespace} describe pod {pod}`"
        ),
        "CrashLoopBackOff" => {
            format!("`kubectl -n {namespace} logs {pod} -c {container} --previous`")
        }
        _ => return None,
    })
}

pub(super) async fn inspect(
    client: &kube::Client,
    namespace: &str,
    workload: &Workload,
    expected_image: Option<&str>,
    check: &mut Check,
) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = match pods
        .list(&ListParams::default().labels(&workload.selector))
        .await
    {
        Ok(list) => list.items,
        Err(e) => return check.worsen(State::Warn, format!("cannot list pods: {e}")),
    };
    let mut restarts = 0;
    let mut images = BTreeSet::new();
    for pod in &list {
        let name = pod.metadata.name.as_deref().unwrap_or("?");
        if let Some(spec) = &pod.spec {
            images.extend(
                spec.containers
                    .iter()
                    .filter(|c| c.name == CONTAINER)
                    .filter_map(|c| c.image.clone()),
            );
        }
        let Some(status) = &pod.status else { continue };
        if status.phase.as_deref() == Some("Pending")
            && let Some(c) = status.conditions.iter().flatten().find(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })
        {
            check.worsen(
                State::Fail,
                format!(
                    "pod {name} is unschedulable ({}): no node fits its requests, affinity or tolerations; `kubectl -n {namespace} describe pod {name}`",
                    c.message.as_deref().unwrap_or("no message")
                ),
            );
        }
        let containers: Vec<&ContainerStatus> = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten())
            .collect();
        for c in containers {
            restarts += c.restart_count;
            let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
            if let Some(reason) = waiting.and_then(|w| w.reason.as_deref())
                && let Some(hint) = waiting_hint(reason, namespace, name, &c.name)
            {
                let message = waiting
                    .and_then(|w| w.message.as_deref())
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default();
                check.worsen(
                    State::Fail,
                    format!("pod {name} container {}: {reason}{message}: {hint}", c.name),
                );
            }
            let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
            if last.and_then(|t| t.reason.as_deref()) == Some("OOMKilled") {
                check.worsen(
                    State::Fail,
                    format!(
                        "pod {name} container {} was OOMKilled: raise its resources.limits.memory (or let the VPA size it)",
                        c.name
                    ),
                );
            }
        }
    }
    check.figures.insert("pods".into(), list.len().to_string());
    check
        .figures
        .insert("restarts".into(), restarts.to_string());
    if !images.is_empty() {
        check.figures.insert(
            "image".into(),
            images.iter().cloned().collect::<Vec<_>>().join(", "),
        );
    }
    if let Some(expected) = expected_image {
        let other: Vec<&String> = images.iter().filter(|i| !same_image(i, expected)).collect();
        if !other.is_empty() {
            check.worsen(
                State::Warn,
                format!(
                    "running {}, expected {expected}: a rollout has not finished, or the cluster runs another build",
                    other.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }
}

/// Whether a running image is the expected one: the same reference; or the expected one names
/// no registry (`latamctl:0a1b2c3`) and the running one is it in some registry; or the expected
/// one is a bare tag (`0a1b2c3`) and the running one carries that tag.
pub(super) fn same_image(running: &str, expected: &str) -> bool {
    if running == expected || running.ends_with(&format!("/{expected}")) {
        return true;
    }
    if !expected.contains([':', '/', '@']) {
        let without_digest = running.split('@').next().unwrap_or(running);
        let tag = without_digest
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .map(|(_, t)| t);
        return tag == Some(expected);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::same_image;

    #[test]
    fn images_match_by_reference_repository_or_tag() {
        let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/latamctl:0a1b2c3";
        assert!(same_image(ecr, ecr));
        assert!(same_image(ecr, "latamctl:0a1b2c3"));
        assert!(same_image(ecr, "0a1b2c3"));
        assert!(!same_image(ecr, "0a1b2c4"));
        assert!(!same_image(ecr, "latamctl:0a1b2c4"));
        assert!(!same_image("registry:5000/latamctl", "5000"));
        assert!(same_image("latamctl:abc@sha256:ff", "abc"));
    }
}
