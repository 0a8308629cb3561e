//! `latamctl status` against a fake Kubernetes API server built from what the chart renders.
//!
//! The fixture is the artifact: for every values file in the repo (`examples/values-*.yaml` of
//! the latamctl chart, `deploy/gitops/*/values.yaml`, and `render helm --env dev|prod`),
//! discovered here so a new file is covered without editing this test, the chart is rendered
//! with helm-python-sdk (`scripts/render_chart.py`) and the fake server serves those objects,
//! with only the `status` a healthy cluster would add (and what the controllers create: the
//! pods, KEDA's `keda-hpa-<name>` HPA, the Rollout's AnalysisRun). Each failure `status`
//! promises to name is then injected into those objects, one at a time, and the row, its hint
//! and the exit code are checked through the real binary.
//!
//! Needs `LATAMCTL_TEST_HELM_PYTHON` (a Python with helm-python-sdk; scripts/test.sh sets it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::support;

const NAMESPACE: &str = "latam";

pub(super) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Renders the latamctl chart: every object, as the API server would store them.
pub(super) fn render(python: &str, values: &[&Path], sets: &[&str], release: &str) -> Vec<Value> {
    let mut cmd = std::process::Command::new(python);
    cmd.arg(root().join("scripts/render_chart.py"))
        .arg(root().join("helm-charts/latamctl"))
        .args(["--release", release, "--namespace", NAMESPACE]);
    for v in values {
        cmd.arg("--values").arg(v);
    }
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().expect("run scripts/render_chart.py");
    assert!(
        out.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("render_chart.py prints JSON")
}

/// Every values file of the latamctl chart in the repo, plus the two `render helm` outputs.
pub(super) fn values_files(work: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // values-citus.yaml is the postgres-citus chart's (as scripts/check_helm.py).
        if name.starts_with("values-") && name.ends_with(".yaml") && !name.contains("citus") {
            out.push((format!("examples/{name}"), path));
        }
    }
    for entry in std::fs::read_dir(root().join("deploy/gitops")).unwrap() {
        let path = entry.unwrap().path().join("values.yaml");
        if path.exists() {
            let env = path
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy();
            out.push((format!("deploy/gitops/{env}/values.yaml"), path));
        }
    }
    let renders: [(&str, Vec<&str>); 2] = [
        (
            "dev",
            vec![
                "--config",
                "tests/fixtures/latamctl.cloud-minimal.toml",
                "--terraform-outputs",
                "tests/fixtures/terraform-outputs.json",
            ],
        ),
        (
            "prod",
            vec![
                "--config",
                "examples/latamctl.aws.toml",
                "--api-token-secret",
                "latamctl-api-token",
            ],
        ),
    ];
    for (env, args) in renders {
        let file = work.join(format!("render-helm-{env}.yaml"));
        let file_arg = file.to_string_lossy().into_owned();
        let mut all = vec!["render", "helm", "--env", env, "--image-tag", "0a1b2c3"];
        all.extend(args);
        all.extend(["--out", &file_arg]);
        let (code, _, err) = support::run(&all, &[], &root());
        assert_eq!(code, 0, "render helm --env {env}: {err}");
        out.push((format!("render helm --env {env}"), file));
    }
    out.sort();
    assert!(out.len() >= 5, "values files not found: {out:?}");
    out
}

fn plural(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else if lower.ends_with('s') {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    }
}

/// `(group/version, plural)` of an object; core objects have group/version `v1`.
fn resource_of(o: &Value) -> (String, String) {
    (
        o["apiVersion"].as_str().unwrap().to_owned(),
        plural(o["kind"].as_str().unwrap()),
    )
}

/// A healthy cluster running the rendered objects: workloads ready, one pod per replica,
/// autoscalers reporting, KEDA's HPA, an AnalysisRun that passed for each Rollout with analysis.
fn healthy(rendered: &[Value]) -> Vec<Value> {
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

/// The fake API server's objects and the resource types it serves.
#[derive(Clone, Default)]
struct Cluster {
    objects: Arc<Mutex<Vec<Value>>>,
    /// `group/version/plural` of the custom resources whose CRD is installed.
    crds: Arc<Mutex<Vec<String>>>,
}

impl Cluster {
    fn load(&self, objects: Vec<Value>) {
        let mut crds: Vec<String> = objects
            .iter()
            .map(resource_of)
            .filter(|(gv, _)| {
                gv.contains('.') && !gv.starts_with("networking.k8s.io") && !gv.starts_with("rbac")
            })
            .map(|(gv, p)| format!("{gv}/{p}"))
            .collect();
        if objects.iter().any(|o| o["kind"] == "Rollout") {
            crds.push("argoproj.io/v1alpha1/analysisruns".into());
        }
        *self.objects.lock().unwrap() = objects;
        *self.crds.lock().unwrap() = crds;
    }

    /// Changes the objects of `kind` named `name` (all of that kind when `None`).
    fn edit(&self, kind: &str, name: Option<&str>, f: impl Fn(&mut Value)) {
        let mut objects = self.objects.lock().unwrap();
        let mut hit = false;
        for o in objects.iter_mut().filter(|o| o["kind"] == kind) {
            if name.is_none_or(|n| o["metadata"]["name"] == n) {
                f(o);
                hit = true;
            }
        }
        assert!(hit, "no {kind} {name:?} to edit");
    }

    fn find(&self, kind: &str, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        self.objects
            .lock()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == kind && pred(o))
            .cloned()
    }
}

fn not_found_page() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

fn matches_selector(o: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    selector.split(',').all(|pair| {
        let (k, v) = pair.split_once('=').expect("equality selectors only");
        o["metadata"]["labels"][k] == v
    })
}

/// GET on the REST paths kube-rs asks for: one object, or a list with `labelSelector`.
async fn serve_path(
    State(cluster): State<Cluster>,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let path = uri.path();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group_version, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("v1".to_owned(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return not_found_page(),
    };
    let (namespace, plural, name) = match rest {
        ["namespaces", ns, plural] => (*ns, *plural, None),
        ["namespaces", ns, plural, name] => (*ns, *plural, Some(*name)),
        _ => return not_found_page(),
    };
    let builtin =
        ["v1", "apps/v1", "autoscaling/v2", "policy/v1"].contains(&group_version.as_str());
    if !builtin
        && !cluster
            .crds
            .lock()
            .unwrap()
            .contains(&format!("{group_version}/{plural}"))
    {
        return not_found_page();
    }
    let objects = cluster.objects.lock().unwrap().clone();
    let of_type = objects.into_iter().filter(|o| {
        let (gv, p) = resource_of(o);
        gv == group_version && p == plural && o["metadata"]["namespace"] == namespace
    });
    match name {
        Some(name) => match of_type.into_iter().find(|o| o["metadata"]["name"] == name) {
            Some(o) => axum::Json(o).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                axum::Json(json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("{plural} \"{name}\" not found"), "reason": "NotFound", "code": 404,
                })),
            )
                .into_response(),
        },
        None => {
            let items: Vec<Value> = of_type
                .filter(|o| matches_selector(o, query.get("labelSelector")))
                .collect();
            axum::Json(json!({
                "apiVersion": group_version, "kind": "List",
                "metadata": {"resourceVersion": "1"}, "items": items,
            }))
            .into_response()
        }
    }
}

/// Starts the fake API server on a free port; returns the kubeconfig that points at it.
fn start(cluster: Cluster, dir: &Path) -> PathBuf {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().fallback(serve_path).with_state(cluster);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {NAMESPACE}\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: fake\n"
        ),
    )
    .unwrap();
    kubeconfig
}

/// How the operator describes the release to `status`, from its values file.
struct Release {
    name: String,
    name_override: Option<String>,
    fullname_override: Option<String>,
    components: Vec<&'static str>,
}

impl Release {
    fn from_values(release: &str, values: &Value) -> Self {
        let text = |k: &str| {
            values[k]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let enabled = |c: &str| values[c]["enabled"].as_bool() != Some(false);
        Self {
            name: release.to_owned(),
            name_override: text("nameOverride"),
            fullname_override: text("fullnameOverride"),
            components: ["api", "worker"]
                .into_iter()
                .filter(|c| enabled(c))
                .collect(),
        }
    }

    fn toml(&self, data_dir: &Path, expected_image: Option<&str>) -> String {
        let mut s = format!(
            "data_dir = {:?}\n[kubernetes]\nnamespace = \"{NAMESPACE}\"\nrelease = {:?}\ncomponents = {:?}\n",
            data_dir, self.name, self.components
        );
        for (k, v) in [
            ("name_override", &self.name_override),
            ("fullname_override", &self.fullname_override),
        ] {
            if let Some(v) = v {
                s.push_str(&format!("{k} = {v:?}\n"));
            }
        }
        if let Some(image) = expected_image {
            s.push_str(&format!("expected_image = {image:?}\n"));
        }
        s
    }
}

/// `latamctl status -o json` with the case's config: (exit code, report).
struct Status<'a> {
    dir: &'a Path,
    kubeconfig: &'a Path,
    api: &'a str,
    data_dir: PathBuf,
}

impl Status<'_> {
    fn run(&self, release: &Release, expected_image: Option<&str>) -> (i32, Value) {
        let config = self.dir.join("status.toml");
        std::fs::write(&config, release.toml(&self.data_dir, expected_image)).unwrap();
        let config = config.to_string_lossy().into_owned();
        let kubeconfig = self.kubeconfig.to_string_lossy().into_owned();
        let (code, out, err) = support::run(
            &[
                "--config", &config, "status", "--api", self.api, "--window", "0s", "-o", "json",
            ],
            &[("KUBECONFIG", kubeconfig.as_str())],
            self.dir,
        );
        let report: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("status printed no JSON ({e}): {out}\n{err}"));
        (code, report)
    }
}

fn row<'a>(report: &'a Value, component: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == component)
        .unwrap_or_else(|| panic!("no {component} row in {report:#}"))
}

fn not_ok(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] != "ok" && c["state"] != "skipped")
        .map(|c| format!("{}: {} ({})", c["component"], c["state"], c["hint"]))
        .collect()
}

/// The shared setup: an embedded `serve` (so the api, queue and database rows are ok and the
/// exit code is the Kubernetes rows'), the fake cluster and its kubeconfig.
struct Harness {
    _dir: tempfile::TempDir,
    _serve: support::Serve,
    dir: PathBuf,
    cluster: Cluster,
    kubeconfig: PathBuf,
    api: String,
}

impl Harness {
    fn start() -> Self {
        let dir = support::tempdir();
        let path = dir.path().to_path_buf();
        let serve = support::Serve::start(&[], &[], &path);
        let cluster = Cluster::default();
        let kubeconfig = start(cluster.clone(), &path);
        let api = serve.base.clone();
        Self {
            _dir: dir,
            _serve: serve,
            dir: path,
            cluster,
            kubeconfig,
            api,
        }
    }

    fn status(&self) -> Status<'_> {
        Status {
            dir: &self.dir,
            kubeconfig: &self.kubeconfig,
            api: &self.api,
            data_dir: self.dir.join("latamctl-data"),
        }
    }
}

/// A failure injected into a healthy cluster: which row must show it, in which state, with
/// which words in its hint.
struct Fault {
    what: &'static str,
    component: &'static str,
    state: &'static str,
    exit: i32,
    hint: Vec<String>,
}

#[test]
fn status_reads_every_shape_the_chart_deploys() {
    let Some(python) = support::service("LATAMCTL_TEST_HELM_PYTHON") else {
        return;
    };
    let h = Harness::start();
    let status = h.status();
    let mut covered = Vec::new();
    let mut cases: Vec<(String, PathBuf, Vec<&str>)> = values_files(&h.dir)
        .into_iter()
        .map(|(label, file)| (label, file, Vec::new()))
        .collect();
    // The chart's other Rollout strategy, which no values file in the repo picks: prod's
    // values with blue-green (behind a non-ALB ingress, which Argo Rollouts requires).
    cases.push((
        "deploy/gitops/prod/values.yaml with rollout.strategy=blueGreen".into(),
        root().join("deploy/gitops/prod/values.yaml"),
        vec!["rollout.strategy=blueGreen", "api.ingress.className=nginx"],
    ));
    for (label, file, sets) in cases {
        let values: Value = serde_saphyr::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let rendered = render(&python, &[&file], &sets, "latamctl");
        let release = Release::from_values("latamctl", &values);
        let base = healthy(&rendered);
        h.cluster.load(base.clone());

        // All ready: every row ok, exit 0.
        let (code, report) = status.run(&release, None);
        assert_eq!(
            code,
            0,
            "{label}: all ready must exit 0: {:?}",
            not_ok(&report)
        );
        for component in &release.components {
            let r = row(&report, &format!("k8s {component}"));
            assert_eq!(
                r["figures"]["ready"].as_str().unwrap().split('/').next(),
                r["figures"]["ready"].as_str().unwrap().split('/').nth(1),
                "{label}: {r}"
            );
        }
        let has = |kind: &str| rendered.iter().any(|o| o["kind"] == kind);
        if has("Rollout") {
            let r = row(&report, "k8s api");
            assert!(
                r["figures"]["workload"]
                    .as_str()
                    .unwrap()
                    .starts_with("rollout "),
                "{label}: {r}"
            );
            assert_eq!(r["figures"]["phase"], "Healthy", "{label}");
            assert!(
                r["figures"]["analysis"]
                    .as_str()
                    .unwrap()
                    .ends_with("Successful"),
                "{label}: {r}"
            );
            let blue_green = rendered
                .iter()
                .any(|o| o["kind"] == "Rollout" && o["spec"]["strategy"]["blueGreen"].is_object());
            if blue_green {
                assert_eq!(
                    r["figures"]["active"], "latamctl-api-5d8f7c9b4",
                    "{label}: {r}"
                );
                assert!(r["figures"].get("step").is_none(), "{label}: {r}");
            } else {
                assert!(
                    r["figures"]["step"].as_str().unwrap().contains('/'),
                    "{label}: {r}"
                );
            }
        }
        if has("ScaledObject") {
            let r = row(&report, "k8s worker");
            assert!(
                r["figures"]["hpa"]
                    .as_str()
                    .unwrap()
                    .starts_with("keda-hpa-"),
                "{label}: KEDA's HPA found by its target: {r}"
            );
            assert!(
                r["figures"]["scaledobject"]
                    .as_str()
                    .unwrap()
                    .contains("ready=True"),
                "{label}: {r}"
            );
        }

        // Each failure, one at a time, on the objects the chart rendered.
        let component = release.components[0];
        let workload_name = |c: &str| -> String {
            ["Rollout", "Deployment"]
                .iter()
                .find_map(|k| {
                    h.cluster.find(k, |o| {
                        o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
                            == c
                    })
                })
                .unwrap()["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let pod_of = |c: &str| -> String {
            h.cluster
                .find("Pod", |o| {
                    o["metadata"]["labels"]["app.kubernetes.io/component"] == c
                })
                .unwrap()["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let mut faults: Vec<(Fault, Box<dyn Fn()>)> = Vec::new();
        for reason in [
            "ImagePullBackOff",
            "ErrImagePull",
            "CreateContainerConfigError",
            "CrashLoopBackOff",
        ] {
            let cluster = h.cluster.clone();
            let pod = pod_of(component);
            faults.push((
                Fault {
                    what: reason,
                    component,
                    state: "fail",
                    exit: 2,
                    hint: vec![pod.clone(), reason.into()],
                },
                Box::new(move || {
                    cluster.edit("Pod", Some(&pod), |p| {
                        p["status"]["containerStatuses"][0]["state"] =
                            json!({"waiting": {"reason": reason, "message": "injected"}});
                        p["status"]["containerStatuses"][0]["ready"] = json!(false);
                    })
                }),
            ));
        }
        {
            let cluster = h.cluster.clone();
            let pod = pod_of(component);
            faults.push((
                Fault {
                    what: "OOMKilled",
                    component,
                    state: "fail",
                    exit: 2,
                    hint: vec![pod.clone(), "OOMKilled".into()],
                },
                Box::new(move || {
                    cluster.edit("Pod", Some(&pod), |p| {
                        p["status"]["containerStatuses"][0]["restartCount"] = json!(3);
                        p["status"]["containerStatuses"][0]["lastState"] =
                            json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}});
                    })
                }),
            ));
        }
        {
            let cluster = h.cluster.clone();
            let pod = pod_of(component);
            faults.push((
                Fault {
                    what: "Unschedulable",
                    component,
                    state: "fail",
                    exit: 2,
                    hint: vec![
                        pod.clone(),
                        "unschedulable".into(),
                        "Insufficient cpu".into(),
                    ],
                },
                Box::new(move || {
                    cluster.edit("Pod", Some(&pod), |p| {
                        p["status"] = json!({"phase": "Pending", "conditions": [{
                            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": "0/3 nodes are available: 3 Insufficient cpu."}]});
                    })
                }),
            ));
        }
        if has("Rollout") {
            let name = workload_name("api");
            let n = name.clone();
            let cluster = h.cluster.clone();
            faults.push((
                Fault {
                    what: "Rollout Degraded and aborted",
                    component: "api",
                    state: "fail",
                    exit: 2,
                    hint: vec![
                        "aborted".into(),
                        "RolloutAborted".into(),
                        format!("kubectl argo rollouts get rollout {name}"),
                    ],
                },
                Box::new(move || {
                    cluster.edit("Rollout", Some(&n), |r| {
                        r["status"]["phase"] = json!("Degraded");
                        r["status"]["abort"] = json!(true);
                        r["status"]["message"] =
                            json!("RolloutAborted: metric \"error-ratio\" assessed Failed");
                    })
                }),
            ));
            let n = name.clone();
            let cluster = h.cluster.clone();
            faults.push((
                Fault {
                    what: "Rollout Paused",
                    component: "api",
                    state: "warn",
                    exit: 1,
                    hint: vec![
                        format!("kubectl argo rollouts promote {name} -n {NAMESPACE}"),
                        format!("kubectl argo rollouts abort {name} -n {NAMESPACE}"),
                    ],
                },
                Box::new(move || {
                    cluster.edit("Rollout", Some(&n), |r| {
                        r["status"]["phase"] = json!("Paused");
                        r["status"]["currentStepIndex"] = json!(1);
                    })
                }),
            ));
            if has("AnalysisTemplate") {
                let metric = rendered
                    .iter()
                    .find(|o| o["kind"] == "AnalysisTemplate")
                    .unwrap()["spec"]["metrics"][0]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let m = metric.clone();
                let cluster = h.cluster.clone();
                faults.push((
                    Fault {
                        what: "AnalysisRun Failed",
                        component: "api",
                        state: "fail",
                        exit: 2,
                        hint: vec!["analysis".into(), format!("on metric {metric}")],
                    },
                    Box::new(move || {
                        cluster.edit("AnalysisRun", None, |a| {
                            a["status"]["phase"] = json!("Failed");
                            a["status"]["metricResults"][0]["phase"] = json!("Failed");
                            assert_eq!(a["status"]["metricResults"][0]["name"], m.as_str());
                        })
                    }),
                ));
            }
        }
        let hpas: Vec<Value> = base
            .iter()
            .filter(|o| o["kind"] == "HorizontalPodAutoscaler")
            .cloned()
            .collect();
        for hpa in hpas {
            let name = hpa["metadata"]["name"].as_str().unwrap().to_owned();
            let target = hpa["spec"]["scaleTargetRef"]["name"].as_str().unwrap();
            let Some(c) = release
                .components
                .iter()
                .copied()
                .find(|c| target.ends_with(&format!("-{c}")))
            else {
                continue;
            };
            let cluster = h.cluster.clone();
            let n = name.clone();
            faults.push((
                Fault {
                    what: "HPA at maxReplicas",
                    component: c,
                    state: "warn",
                    exit: 1,
                    hint: vec![format!("HPA {name} is at maxReplicas")],
                },
                Box::new(move || {
                    cluster.edit("HorizontalPodAutoscaler", Some(&n), |h| {
                        let max = h["spec"]["maxReplicas"].clone();
                        h["status"] = json!({"currentReplicas": max, "desiredReplicas": max});
                    })
                }),
            ));
        }
        if has("ScaledObject") {
            let cluster = h.cluster.clone();
            faults.push((
                Fault { what: "ScaledObject not ready", component: "worker", state: "warn", exit: 1, hint: vec!["not ready".into(), "AccessDenied".into()] },
                Box::new(move || {
                    cluster.edit("ScaledObject", None, |s| {
                        s["status"]["conditions"][0] = json!({"type": "Ready", "status": "False", "message": "AccessDenied: sqs:GetQueueAttributes"});
                    })
                }),
            ));
        }
        if has("VerticalPodAutoscaler") {
            let vpa = rendered
                .iter()
                .find(|o| o["kind"] == "VerticalPodAutoscaler")
                .unwrap();
            let c = vpa["spec"]["targetRef"]["name"]
                .as_str()
                .unwrap()
                .rsplit('-')
                .next()
                .unwrap()
                .to_owned();
            if let Some(c) = release.components.iter().copied().find(|x| *x == c) {
                let cluster = h.cluster.clone();
                faults.push((
                    Fault {
                        what: "VPA past the limits",
                        component: c,
                        state: "warn",
                        exit: 1,
                        hint: vec!["recommends memory 64Gi, past the limit".into()],
                    },
                    Box::new(move || {
                        cluster.edit("VerticalPodAutoscaler", None, |v| {
                            v["status"]["recommendation"]["containerRecommendations"][0]["target"]
                                ["memory"] = json!("64Gi");
                        })
                    }),
                ));
            }
        }
        for (fault, inject) in &faults {
            h.cluster.load(base.clone());
            inject();
            let (code, report) = status.run(&release, None);
            let r = row(&report, &format!("k8s {}", fault.component));
            assert_eq!(r["state"], fault.state, "{label}: {}: {r:#}", fault.what);
            for words in &fault.hint {
                assert!(
                    r["hint"].as_str().unwrap().contains(words.as_str()),
                    "{label}: {}: hint lacks {words:?}: {r:#}",
                    fault.what
                );
            }
            assert_eq!(
                code,
                fault.exit,
                "{label}: {}: exit code; not ok: {:?}",
                fault.what,
                not_ok(&report)
            );
        }

        // The running image against the expected one.
        h.cluster.load(base.clone());
        let image = h.cluster.find("Pod", |_| true).unwrap()["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_owned();
        let (code, report) = status.run(&release, Some(&image));
        assert_eq!(
            code,
            0,
            "{label}: the expected image {image}: {:?}",
            not_ok(&report)
        );
        let (code, report) = status.run(&release, Some("latamctl:ffffff0"));
        let r = row(&report, &format!("k8s {component}"));
        assert_eq!(
            (code, r["state"].as_str().unwrap()),
            (1, "warn"),
            "{label}: {r:#}"
        );
        assert!(
            r["hint"]
                .as_str()
                .unwrap()
                .contains("expected latamctl:ffffff0"),
            "{label}: {r:#}"
        );

        covered.push(format!("{label}: {} faults", faults.len()));
    }
    eprintln!(
        "status checked against the chart's render of:\n  {}",
        covered.join("\n  ")
    );
}

/// `status` finds the workloads under the names the chart's helper gives them: overrides, the
/// 52-character cut, a release name that already contains the chart's name.
#[test]
fn status_names_objects_as_the_chart_does() {
    let Some(python) = support::service("LATAMCTL_TEST_HELM_PYTHON") else {
        return;
    };
    let h = Harness::start();
    let status = h.status();
    let long = "a-release-name-long-enough-to-be-cut-by-the-chart-helper-x";
    let cases: [(&str, &[&str]); 5] = [
        ("latamctl-prod", &[]),
        ("ingest", &[]),
        (long, &[]),
        ("ingest", &["nameOverride=pipeline"]),
        ("ingest", &["fullnameOverride=edge-ingestion"]),
    ];
    for (release_name, sets) in cases {
        let rendered = render(&python, &[], sets, release_name);
        let mut values = json!({});
        for s in sets {
            let (k, v) = s.split_once('=').unwrap();
            values[k] = json!(v);
        }
        let release = Release::from_values(release_name, &values);
        h.cluster.load(healthy(&rendered));
        let (code, report) = status.run(&release, None);
        assert_eq!(code, 0, "{release_name} {sets:?}: {:?}", not_ok(&report));
        let names: Vec<&str> = rendered
            .iter()
            .filter(|o| o["kind"] == "Deployment")
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        for c in ["api", "worker"] {
            let shown = row(&report, &format!("k8s {c}"))["figures"]["workload"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(
                names
                    .iter()
                    .any(|n| shown == format!("deployment {NAMESPACE}/{n}")),
                "{release_name} {sets:?}: {shown} not in {names:?}"
            );
        }
    }
    // A release status does not know the overrides of: named in the hint, exit 2.
    let rendered = render(&python, &[], &["fullnameOverride=edge-ingestion"], "ingest");
    h.cluster.load(healthy(&rendered));
    let (code, report) = status.run(&Release::from_values("ingest", &json!({})), None);
    assert_eq!(code, 2);
    let r = row(&report, "k8s api");
    assert_eq!(r["state"], "fail");
    assert!(
        r["hint"].as_str().unwrap().contains("fullname_override"),
        "{r:#}"
    );
}
