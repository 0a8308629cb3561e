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
//!
//! Children: `shapes` (every values file: healthy, then each failure), `names` (the objects'
//! names, as the chart's helper gives them), `healthy` (what a healthy cluster adds to the
//! render), `fake_api` (the REST paths kube-rs asks for, served from a `Cluster`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support;

use fake_api::start;
use healthy::healthy;

mod fake_api;
mod healthy;
mod names;
mod shapes;

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
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {python} (LATAMCTL_TEST_HELM_PYTHON) for scripts/render_chart.py: {e}; \
             scripts/test.sh creates that venv (or unset the variable to skip the chart tests)"
        )
    });
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
