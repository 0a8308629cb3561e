//! Kubernetes checks: each component of the Helm release as the chart deploys it.
//!
//! - The workload is a `Deployment` or, for the api with `rollout.enabled`, an Argo Rollouts
//!   `Rollout` (read as a `DynamicObject`: no CRD crate). A Rollout reports its phase, its
//!   canary step and weight or its blue-green active/preview ReplicaSets, and its latest
//!   AnalysisRun ([`rollout`]).
//! - Its autoscalers are found by what they target, not by name: KEDA's HPA is
//!   `keda-hpa-<scaledobject>`. The ScaledObject's conditions and a VPA's recommendation
//!   against the requests and limits are shown too ([`autoscalers`]).
//! - Its pods are the ones its own selector matches: a pod that cannot pull its image, start,
//!   be scheduled, or was OOM-killed fails the row by name; the running image is compared
//!   with the expected one ([`pods`]).
//!
//! Names come from [`names::Names`], the chart's `latamctl.fullname` helper in Rust.

mod autoscalers;
pub mod names;
mod pods;
pub(crate) mod quantity;
mod rollout;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

pub use names::{Names, fullname};

use super::{Check, State};
use crate::config::KubernetesConfig;

/// Components the chart deploys, as `<fullname>-<component>`.
pub const COMPONENTS: [&str; 2] = ["api", "worker"];

/// A Kubernetes client and the API server it talks to.
pub struct Cluster {
    pub client: kube::Client,
    /// The kubeconfig context's server URL; `None` for the in-cluster config (the
    /// `kubernetes.default.svc` address says nothing about which cluster it is).
    pub server: Option<String>,
}

/// A client from `KUBECONFIG` (optionally a context) or the in-cluster config; `None` when
/// neither exists.
pub async fn client(context: Option<&str>) -> Option<Cluster> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let (config, server) = match kube::Config::from_kubeconfig(&options).await {
        Ok(c) => {
            let server = c.cluster_url.to_string();
            (c, Some(server))
        }
        Err(_) => (kube::Config::incluster().ok()?, None),
    };
    let client = kube::Client::try_from(config).ok()?;
    Some(Cluster { client, server })
}

/// What `status` looks for in the cluster.
#[derive(Debug, Clone)]
pub struct Target {
    pub namespace: String,
    pub names: Names,
    pub components: Vec<String>,
    /// The image the pods should run (`repository:tag`, or with `@digest`).
    pub expected_image: Option<String>,
}

impl Target {
    pub fn from_config(k: &KubernetesConfig) -> Self {
        Self {
            namespace: k.namespace.clone(),
            names: Names::from_config(k),
            components: k.components.clone(),
            expected_image: k.expected_image.clone(),
        }
    }
}

/// One check per component.
pub async fn check(client: kube::Client, target: Target) -> Vec<Check> {
    let futures = target
        .components
        .iter()
        .map(|component| component_check(&client, &target, component));
    futures::future::join_all(futures).await
}

/// Custom resources `status` reads, with their plurals.
pub(crate) fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Whether a kube error says the resource type itself is not served (its CRD is not
/// installed): the API server answers 404 on the whole path.
pub(crate) fn not_installed(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Lists a custom resource; an empty list when its CRD is not installed.
pub(crate) async fn list_dynamic(
    client: &kube::Client,
    namespace: &str,
    ar: &ApiResource,
) -> Result<Vec<DynamicObject>, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, ar);
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list.items),
        Err(e) if not_installed(&e) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The workload behind one component, Deployment or Rollout, reduced to what the checks use.
pub(crate) struct Workload {
    /// `Deployment` or `Rollout`.
    pub kind: &'static str,
    pub name: String,
    pub desired: i32,
    pub ready: i32,
    /// `spec.selector.matchLabels` as a label selector (`k=v,k=v`).
    pub selector: String,
    pub template: PodTemplateSpec,
    /// The Rollout object itself (spec and status), for [`rollout::inspect`].
    pub rollout: Option<Value>,
}

fn selector_of(labels: Option<&std::collections::BTreeMap<String, String>>) -> String {
    labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Finds `<fullname>-<component>` as a Rollout (preferred: Argo's `workloadRef` may scale a
/// Deployment of the same name to zero) or a Deployment.
async fn find_workload(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Option<Workload>, kube::Error> {
    let rollouts: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &resource("argoproj.io", "v1alpha1", "Rollout", "rollouts"),
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let (rollout, deployment) = tokio::join!(rollouts.get_opt(name), deployments.get_opt(name));
    // A cluster without Argo Rollouts answers 404 on the whole path (not a JSON Status).
    let rollout = match rollout {
        Err(e) if not_installed(&e) => None,
        other => other?,
    };
    if let Some(r) = rollout {
        let data = r.data;
        let template = serde_json::from_value(data["spec"]["template"].clone()).unwrap_or_default();
        let labels: Option<std::collections::BTreeMap<String, String>> =
            serde_json::from_value(data["spec"]["selector"]["matchLabels"].clone()).ok();
        return Ok(Some(Workload {
            kind: "Rollout",
            name: name.to_owned(),
            desired: data["spec"]["replicas"].as_i64().unwrap_or(1) as i32,
            ready: data["status"]["readyReplicas"].as_i64().unwrap_or(0) as i32,
            selector: selector_of(labels.as_ref()),
            template,
            rollout: Some(data),
        }));
    }
    Ok(deployment?.map(|d| {
        let spec = d.spec;
        Workload {
            kind: "Deployment",
            name: name.to_owned(),
            desired: spec.replicas.unwrap_or(1),
            ready: d.status.and_then(|s| s.ready_replicas).unwrap_or(0),
            selector: selector_of(spec.selector.match_labels.as_ref()),
            template: spec.template,
            rollout: None,
        }
    }))
}

async fn component_check(client: &kube::Client, target: &Target, component: &str) -> Check {
    let namespace = target.namespace.as_str();
    let name = target.names.workload(component);
    let label = format!("k8s {component}");
    let workload = match find_workload(client, namespace, &name).await {
        Ok(Some(w)) => w,
        Ok(None) => {
            return Check::new(label, State::Fail)
                .figure("workload", format!("{namespace}/{name}"))
                .hint(format!(
                    "no Deployment or Rollout {namespace}/{name}: install the chart (helm-charts/latamctl), or set kubernetes.release, kubernetes.name_override or kubernetes.fullname_override as in the release's values; if the release disables the {component}, leave it out of kubernetes.components"
                ));
        }
        Err(e) => {
            return Check::new(label, State::Fail)
                .figure("workload", format!("{namespace}/{name}"))
                .hint(format!("cannot read the workload {namespace}/{name}: {e}"));
        }
    };
    let kind = workload.kind.to_lowercase();
    let mut check = Check::new(label, State::Ok)
        .figure("workload", format!("{kind} {namespace}/{name}"))
        .figure("ready", format!("{}/{}", workload.ready, workload.desired));
    if workload.desired > 0 && workload.ready == 0 {
        check.worsen(
            State::Fail,
            format!("no ready pods: `kubectl -n {namespace} describe {kind} {name}`"),
        );
    } else if workload.ready < workload.desired {
        check.worsen(
            State::Warn,
            format!(
                "partially ready: `kubectl -n {namespace} get pods -l {}`",
                workload.selector
            ),
        );
    }
    if let Some(data) = &workload.rollout {
        rollout::inspect(client, namespace, &name, data, &mut check).await;
    }
    pods::inspect(
        client,
        namespace,
        &workload,
        target.expected_image.as_deref(),
        &mut check,
    )
    .await;
    autoscalers::inspect(client, namespace, &workload, &mut check).await;
    check
}
