//! Kubernetes checks: the api and worker Deployments of the Helm release (ready/desired
//! replicas), their pods' restarts, and their HorizontalPodAutoscalers.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use super::{Check, State};

/// Components the chart deploys, as `<fullname>-<component>`.
pub const COMPONENTS: [&str; 2] = ["api", "worker"];

/// The chart's resource prefix for a release: the release name when it contains
/// "latamctl", else `<release>-latamctl` (as the chart's `latamctl.fullname` helper).
pub fn fullname(release: &str) -> String {
    if release.contains("latamctl") {
        release.to_owned()
    } else {
        format!("{release}-latamctl")
    }
}

/// A client from `KUBECONFIG` (optionally a context) or the in-cluster config; `None` when
/// neither exists.
pub async fn client(context: Option<&str>) -> Option<kube::Client> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = match kube::Config::from_kubeconfig(&options).await {
        Ok(c) => c,
        Err(_) => kube::Config::incluster().ok()?,
    };
    kube::Client::try_from(config).ok()
}

/// One check per component.
pub async fn check(client: kube::Client, namespace: String, release: String) -> Vec<Check> {
    let mut out = Vec::new();
    for component in COMPONENTS {
        out.push(component_check(&client, &namespace, &release, component).await);
    }
    out
}

async fn component_check(
    client: &kube::Client,
    namespace: &str,
    release: &str,
    component: &str,
) -> Check {
    let name = format!("{}-{component}", fullname(release));
    let label = format!("k8s {component}");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployment = match deployments.get_opt(&name).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Check::new(label, State::Fail)
                .figure("deployment", format!("{namespace}/{name}"))
                .hint("deployment not found: install the chart (helm-charts/latamctl) or set kubernetes.namespace/kubernetes.release");
        }
        Err(e) => {
            return Check::new(label, State::Fail)
                .figure("deployment", format!("{namespace}/{name}"))
                .hint(format!("cannot read the deployment: {e}"));
        }
    };
    let desired = deployment.spec.replicas.unwrap_or(1);
    let status = deployment.status.unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    let mut check = Check::new(label, State::Ok)
        .figure("deployment", format!("{namespace}/{name}"))
        .figure("ready", format!("{ready}/{desired}"));
    if desired > 0 && ready == 0 {
        check.worsen(
            State::Fail,
            format!("no ready pods: `kubectl -n {namespace} describe deployment {name}`"),
        );
    } else if ready < desired {
        check.worsen(
            State::Warn,
            format!("partially ready: `kubectl -n {namespace} get pods -l app.kubernetes.io/component={component}`"),
        );
    }

    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let selector =
        format!("app.kubernetes.io/instance={release},app.kubernetes.io/component={component}");
    match pods.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => {
            let statuses: Vec<_> = list
                .items
                .iter()
                .filter_map(|p| p.status.as_ref())
                .flat_map(|s| s.container_statuses.iter().flatten())
                .collect();
            let restarts: i32 = statuses.iter().map(|c| c.restart_count).sum();
            let crash_looping = statuses.iter().any(|c| {
                c.state
                    .as_ref()
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason.as_deref())
                    == Some("CrashLoopBackOff")
            });
            check = check.figure("restarts", restarts);
            if crash_looping {
                check.worsen(
                    State::Fail,
                    format!("a pod is in CrashLoopBackOff: `kubectl -n {namespace} logs -l {selector} --previous`"),
                );
            }
        }
        Err(e) => check.worsen(State::Warn, format!("cannot list pods: {e}")),
    }

    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
    match hpas.get_opt(&name).await {
        Ok(Some(hpa)) => {
            let status = hpa.status.unwrap_or_default();
            check = check.figure(
                "hpa",
                format!(
                    "{}→{} (max {})",
                    status.current_replicas.unwrap_or(0),
                    status.desired_replicas,
                    hpa.spec.max_replicas
                ),
            );
        }
        Ok(None) => check = check.figure("hpa", "none"),
        Err(e) => check.worsen(State::Warn, format!("cannot read the HPA: {e}")),
    }
    check
}

#[cfg(test)]
mod tests {
    //! A scripted fake API server (`tower_test::mock::pair`): no cluster needed.

    use http::{Request, Response, StatusCode};
    use kube::client::Body;
    use serde_json::{Value, json};

    use super::*;

    fn deployment(name: &str, desired: i32, ready: i32) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "latam"},
            "spec": {"replicas": desired, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "latamctl"}]}}},
            "status": {"replicas": desired, "readyReplicas": ready},
        })
    }

    fn pods(restarts: &[i32], crash: bool) -> Value {
        let items: Vec<Value> = restarts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let state = if crash {
                    json!({"waiting": {"reason": "CrashLoopBackOff"}})
                } else {
                    json!({"running": {}})
                };
                json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("pod-{i}"), "namespace": "latam"},
                    "status": {"containerStatuses": [{
                        "name": "latamctl", "image": "latamctl", "imageID": "", "ready": !crash,
                        "restartCount": r, "state": state,
                    }]},
                })
            })
            .collect();
        json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items})
    }

    fn hpa(name: &str, current: i32, desired: i32) -> Value {
        json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": "latam"},
            "spec": {"maxReplicas": 10, "scaleTargetRef": {"kind": "Deployment", "name": name}},
            "status": {"currentReplicas": current, "desiredReplicas": desired},
        })
    }

    fn not_found(name: &str) -> (StatusCode, Value) {
        (
            StatusCode::NOT_FOUND,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": format!("\"{name}\" not found"), "reason": "NotFound", "code": 404}),
        )
    }

    /// A client whose API server answers by path with `respond`.
    fn fake_cluster(
        respond: impl Fn(&str) -> (StatusCode, Value) + Send + 'static,
    ) -> kube::Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (status, body) = respond(request.uri().path());
                send.send_response(
                    Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(Body::from(body.to_string().into_bytes()))
                        .expect("response"),
                );
            }
        });
        kube::Client::new(service, "latam")
    }

    const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/latam/deployments/";
    const HPAS: &str = "/apis/autoscaling/v2/namespaces/latam/horizontalpodautoscalers/";
    const PODS: &str = "/api/v1/namespaces/latam/pods";

    #[tokio::test]
    async fn ready_deployments_are_ok() {
        let client = fake_cluster(|path| match path {
            p if p.starts_with(DEPLOYMENTS) => {
                let name = p.trim_start_matches(DEPLOYMENTS);
                (StatusCode::OK, deployment(name, 2, 2))
            }
            PODS => (StatusCode::OK, pods(&[0, 1], false)),
            p if p.starts_with(HPAS) => {
                let name = p.trim_start_matches(HPAS);
                (StatusCode::OK, hpa(name, 2, 3))
            }
            other => panic!("unexpected request {other}"),
        });
        let checks = check(client, "latam".into(), "latamctl".into()).await;
        assert_eq!(checks.len(), 2);
        for c in &checks {
            assert_eq!(c.state, State::Ok, "{c:?}");
            assert_eq!(c.figures["ready"], "2/2");
            assert_eq!(c.figures["restarts"], "1");
            assert_eq!(c.figures["hpa"], "2→3 (max 10)");
        }
        assert_eq!(checks[0].component, "k8s api");
        assert_eq!(checks[0].figures["deployment"], "latam/latamctl-api");
    }

    #[tokio::test]
    async fn partially_ready_warns_and_crash_loop_fails() {
        let client = fake_cluster(|path| match path {
            p if p == format!("{DEPLOYMENTS}latamctl-api") => {
                (StatusCode::OK, deployment("latamctl-api", 3, 1))
            }
            p if p == format!("{DEPLOYMENTS}latamctl-worker") => {
                (StatusCode::OK, deployment("latamctl-worker", 2, 0))
            }
            PODS => (StatusCode::OK, pods(&[4], false)),
            p if p.starts_with(HPAS) => not_found("hpa"),
            other => panic!("unexpected request {other}"),
        });
        let checks = check(client, "latam".into(), "latamctl".into()).await;
        assert_eq!(checks[0].state, State::Warn, "{:?}", checks[0]);
        assert_eq!(checks[0].figures["ready"], "1/3");
        assert!(checks[0].hint.contains("partially ready"));
        assert_eq!(checks[0].figures["hpa"], "none");
        assert_eq!(checks[1].state, State::Fail, "{:?}", checks[1]);
        assert!(checks[1].hint.contains("no ready pods"));
    }

    #[tokio::test]
    async fn crash_looping_pods_fail() {
        let client = fake_cluster(|path| match path {
            p if p.starts_with(DEPLOYMENTS) => {
                let name = p.trim_start_matches(DEPLOYMENTS);
                (StatusCode::OK, deployment(name, 1, 1))
            }
            PODS => (StatusCode::OK, pods(&[7], true)),
            p if p.starts_with(HPAS) => not_found("hpa"),
            other => panic!("unexpected request {other}"),
        });
        let checks = check(client, "latam".into(), "latamctl".into()).await;
        assert!(checks.iter().all(|c| c.state == State::Fail), "{checks:?}");
        assert!(checks[0].hint.contains("CrashLoopBackOff"));
        assert_eq!(checks[0].figures["restarts"], "7");
    }

    #[tokio::test]
    async fn missing_deployments_fail_with_a_hint() {
        let client = fake_cluster(|path| match path {
            p if p.starts_with(DEPLOYMENTS) => not_found(p),
            other => panic!("unexpected request {other}"),
        });
        let checks = check(client, "latam".into(), "latamctl".into()).await;
        assert_eq!(checks.len(), 2);
        for c in &checks {
            assert_eq!(c.state, State::Fail);
            assert!(c.hint.contains("install the chart"), "{c:?}");
        }
    }
}
