#!/usr/bin/env python3
"""Offline checks of the Helm charts (no helm binary, no cluster).

Run by scripts/check-helm.sh inside a venv with helm-python-sdk and kubernetes-validate:

1. `helm lint --strict` on both charts;
2. renders each chart with its default values and every example / GitOps values file (plus a
   "everything on" case so every template renders), writing each rendering to OUT/<chart>/<case>/;
3. asserts the invariants the charts promise (probes, security contexts, no secrets in
   ConfigMaps or values, IRSA, the config TOML, alert scoping, ...), and that the values schema
   rejects typos;
4. validates every rendered object of a built-in kind with `kubernetes-validate --strict`
   (CRD kinds are skipped: the tool has no schema for them).

The checkov scan of OUT is done by the shell script afterwards; promtool checks the rendered
PrometheusRule groups written to OUT-rules/, and a built latamctl loads each latamctl.toml written
to OUT-toml/.
Exit status: 0 all good, 1 a check failed.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, Callable

import yaml

import helm_python as helm

ROOT = Path(__file__).resolve().parent.parent
LATAMCTL = ROOT / "helm-charts" / "latamctl"
CITUS = ROOT / "helm-charts" / "postgres-citus"
KUBE_VERSION = "1.30"
NAMESPACE = "latam"

# Custom resources: kubernetes-validate has no schema for these, so they are skipped there
# (their shape is asserted below instead).
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("autoscaling.k8s.io/v1", "VerticalPodAutoscaler"),
    ("argoproj.io/v1alpha1", "Rollout"),
    ("argoproj.io/v1alpha1", "AnalysisTemplate"),
}

SECRET_ENV = re.compile(r"(PASSWORD|PASSWD|TOKEN|SECRET|DATABASE_URL|PRIVATE_KEY)", re.I)
SECRET_TEXT = [
    re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^@\s]+@"),  # credentials in a URL
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?im)^\s*(password|secret|token|api_token|database_url|url)\s*="),
]

failures: list[str] = []
counts = {"renderings": 0, "objects": 0, "assertions": 0, "schema_rejections": 0}


def check(cond: bool, what: str) -> None:
    counts["assertions"] += 1
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}", file=sys.stderr)


def load_values(path: Path) -> dict[str, Any]:
    return helm.values_from_yaml(path.read_text())


def render(chart_dir: Path, values: dict[str, Any] | None, release: str) -> dict[str, str]:
    with helm.Chart.load(str(chart_dir)) as chart:
        return chart.render(values, name=release, namespace=NAMESPACE, is_install=True)


def documents(rendered: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """(template path, object) for every non-empty document, NOTES.txt excluded."""
    out = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                out.append((path, doc))
    return out


def write_rendering(out_dir: Path, rendered: dict[str, str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, text in rendered.items():
        if path.endswith("NOTES.txt") or not any(yaml.safe_load_all(text)):
            continue
        (out_dir / Path(path).name).write_text(text)


def objs(docs: list[tuple[str, dict]], kind: str) -> list[dict]:
    return [d for _, d in docs if d.get("kind") == kind]


def by_name(docs: list[tuple[str, dict]], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in objs(docs, kind)}


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


# ---------------------------------------------------------------------------------------------
# latamctl chart invariants
# ---------------------------------------------------------------------------------------------


def check_latamctl(case: str, values: dict[str, Any], docs: list[tuple[str, dict]]) -> None:
    v = values
    system = v["system"]
    rollout_on = v["rollout"]["enabled"] and v["api"]["enabled"]
    # The workloads: Deployments, and the api's Rollout with rollout.enabled (same pod template).
    deployments = by_name(docs, "Deployment") | by_name(docs, "Rollout")
    components = [c for c in ("api", "worker") if v[c]["enabled"]]
    check(len(deployments) == len(components), f"{case}: expected workloads for {components}, got {list(deployments)}")
    for name, w in deployments.items():
        want = "Rollout" if rollout_on and name.endswith("-api") else "Deployment"
        check(w["kind"] == want, f"{case}: {name} is a {w['kind']}, expected {want}")
    check(not objs(docs, "Secret"), f"{case}: the chart must never render a Secret")

    for _, d in docs:
        labels = d["metadata"].get("labels", {})
        check(labels.get("app.kubernetes.io/part-of") == v["partOf"], f"{case}: {d['kind']}/{d['metadata']['name']} lacks part-of label")
        check(labels.get("latamctl.io/system") == system, f"{case}: {d['kind']}/{d['metadata']['name']} lacks latamctl.io/system={system}")
        is_dashboard = labels.get("grafana_dashboard") == "1"
        want_ns = (v["metrics"]["dashboards"]["namespace"] or NAMESPACE) if is_dashboard else NAMESPACE
        check(d["metadata"].get("namespace") == want_ns, f"{case}: {d['kind']}/{d['metadata']['name']} must have namespace {want_ns}")

    # ConfigMap with latamctl.toml: valid TOML, contract keys, nothing secret.
    config_maps = [d for d in objs(docs, "ConfigMap") if "latamctl.toml" in d.get("data", {})]
    check(len(config_maps) == 1, f"{case}: expected one ConfigMap with latamctl.toml")
    for cm in objs(docs, "ConfigMap"):
        for key, text in (cm.get("data") or {}).items():
            for pattern in SECRET_TEXT[:3]:
                check(not pattern.search(text), f"{case}: ConfigMap {cm['metadata']['name']}/{key} looks like it holds a secret ({pattern.pattern})")
    if config_maps:
        text = config_maps[0]["data"]["latamctl.toml"]
        check(not SECRET_TEXT[3].search(text), f"{case}: latamctl.toml has a secret-looking key")
        try:
            toml = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            check(False, f"{case}: latamctl.toml is not valid TOML: {e}")
            toml = {}
        if toml:
            check(toml["bus"] == v["config"]["bus"] and toml["store"] == v["config"]["store"], f"{case}: bus/store not rendered")
            check(toml["topics"] == v["config"]["topics"], f"{case}: topics not rendered")
            check(toml["api"]["listen"] == f"0.0.0.0:{v['containerPort']}", f"{case}: [api] listen wrong")
            check(isinstance(toml["worker"]["concurrency"], int) and isinstance(toml["worker"]["batch_size"], int), f"{case}: worker numbers must be integers")
            check(isinstance(toml["database"]["max_connections"], int), f"{case}: max_connections must be an integer")
            check(toml["aws"]["region"] == v["config"]["aws"]["region"], f"{case}: region not rendered")
            for key in ("topic_arn", "queue_url", "dlq_url"):
                want = v["config"]["aws"][key]
                check(toml["aws"].get(key, "") == want, f"{case}: aws.{key} rendered wrong")
            check(set(toml) <= {"bus", "store", "topics", "name", "environment", "api", "worker", "aws", "database", "log"}, f"{case}: unexpected TOML keys {set(toml)}")
            check(toml.get("name") == system and toml.get("environment") == v["environment"], f"{case}: name/environment not rendered from system/environment")
            check(not ({"token"} & set(toml["api"])) and not ({"url"} & set(toml["database"])), f"{case}: secrets must never be in latamctl.toml")
            for section in ("api", "worker", "aws", "database", "log"):
                for key, want in (v["config"].get(section) or {}).items():
                    if key in toml[section] and want != "":
                        check(toml[section][key] == want and type(toml[section][key]) is type(want), f"{case}: [{section}] {key} = {toml[section][key]!r}, values say {want!r}")

    service_accounts = by_name(docs, "ServiceAccount")
    for component in components:
        c = v[component]
        name = next((n for n in deployments if n.endswith(f"-{component}")), None)
        check(name is not None, f"{case}: no {component} Deployment")
        if name is None:
            continue
        dep = deployments[name]
        spec = pod_spec(dep)
        where = f"{case}: Deployment {name}"
        containers = {ct["name"]: ct for ct in spec["containers"]}
        ct = containers.get("latamctl")
        check(ct is not None, f"{where}: no container named latamctl")
        if ct is None:
            continue
        check(ct["args"] == ["serve", "--role", component, "--config", "/etc/latamctl/latamctl.toml"], f"{where}: args {ct['args']}")
        check(ct["livenessProbe"]["httpGet"]["path"] == "/healthz", f"{where}: liveness probe must GET /healthz")
        check(ct["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{where}: readiness probe must GET /readyz")
        check(ct["livenessProbe"]["httpGet"]["port"] == "http" and any(p["name"] == "http" and p["containerPort"] == v["containerPort"] for p in ct["ports"]), f"{where}: port http")
        check("sleep" in ct.get("lifecycle", {}).get("preStop", {}), f"{where}: preStop sleep missing")
        check(25 <= spec["terminationGracePeriodSeconds"] <= 60, f"{where}: terminationGracePeriodSeconds {spec['terminationGracePeriodSeconds']}")
        psc = spec["securityContext"]
        check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532 and psc.get("runAsGroup") == 65532, f"{where}: pod must run as non-root 65532")
        check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: pod seccomp RuntimeDefault")
        check(spec.get("automountServiceAccountToken") is False, f"{where}: automountServiceAccountToken must be false")
        for c_ in spec["containers"] + spec.get("initContainers", []):
            sc = c_.get("securityContext", {})
            cw = f"{where} container {c_['name']}"
            check(sc.get("readOnlyRootFilesystem") is True, f"{cw}: readOnlyRootFilesystem")
            check(sc.get("allowPrivilegeEscalation") is False, f"{cw}: allowPrivilegeEscalation false")
            check(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 65532, f"{cw}: non-root 65532")
            check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{cw}: drop ALL capabilities")
            check(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{cw}: seccomp RuntimeDefault")
            res = c_.get("resources", {})
            check(bool(res.get("requests")) and bool(res.get("limits")), f"{cw}: resources requests and limits")
            mounts = {m["mountPath"]: m["name"] for m in c_.get("volumeMounts", [])}
            check("/tmp" in mounts, f"{cw}: /tmp emptyDir mount (read-only root filesystem)")
            check(mounts.get("/etc/latamctl") == "config", f"{cw}: config mount at /etc/latamctl")
            env = {e["name"]: e for e in c_.get("env", [])}
            check(not any("secretKeyRef" in e.get("valueFrom", {}) for e in c_.get("env", [])), f"{cw}: no secret in the environment (they are mounted files)")
            check(env.get("LATAMCTL_DATABASE_URL_FILE", {}).get("value") == "/var/run/secrets/latamctl/database/url" and mounts.get("/var/run/secrets/latamctl/database") == "database-secret", f"{cw}: the database URL must be the mounted file of Secret {v['database']['existingSecret']}")
            check(env.get("AWS_REGION", {}).get("value") == v["config"]["aws"]["region"], f"{cw}: AWS_REGION env")
            for e in c_.get("env", []):
                if SECRET_ENV.search(e["name"]) and not e["name"].endswith("_FILE"):
                    check("value" not in e, f"{cw}: env {e['name']} must use valueFrom, not a literal value")
            token = env.get("LATAMCTL_API_TOKEN_FILE")
            if component == "api" and v["apiToken"]["existingSecret"]:
                check(token is not None and token.get("value") == "/var/run/secrets/latamctl/api-token/token" and mounts.get("/var/run/secrets/latamctl/api-token") == "api-token-secret", f"{cw}: the API token must be the mounted file of its Secret")
            else:
                check(token is None and "/var/run/secrets/latamctl/api-token" not in mounts, f"{cw}: the API token only on the api with apiToken.existingSecret")
        volumes = {vol["name"]: vol for vol in spec["volumes"]}
        check("emptyDir" in volumes.get("tmp", {}), f"{where}: tmp must be an emptyDir")
        check(volumes.get("config", {}).get("configMap", {}).get("name") == config_maps[0]["metadata"]["name"] if config_maps else False, f"{where}: config volume from the ConfigMap")
        check(volumes.get("database-secret", {}).get("secret", {}).get("secretName") == v["database"]["existingSecret"], f"{where}: database-secret volume from Secret {v['database']['existingSecret']}")
        if component == "api" and v["apiToken"]["existingSecret"]:
            check(volumes.get("api-token-secret", {}).get("secret", {}).get("secretName") == v["apiToken"]["existingSecret"], f"{where}: api-token-secret volume from its Secret")
        annotations = dep["spec"]["template"]["metadata"].get("annotations", {})
        check(re.fullmatch(r"[0-9a-f]{64}", annotations.get("checksum/config", "")) is not None, f"{where}: checksum/config annotation")
        if v["topologySpread"]["enabled"] and not c["topologySpreadConstraints"]:
            check(len(spec.get("topologySpreadConstraints", [])) == len(v["topologySpread"]["topologyKeys"]), f"{where}: default topologySpreadConstraints")
        sa = service_accounts.get(spec["serviceAccountName"])
        if c["serviceAccount"]["create"]:
            check(sa is not None, f"{where}: ServiceAccount {spec['serviceAccountName']} not rendered")
            if sa is not None:
                check(sa.get("automountServiceAccountToken") is False, f"{where}: ServiceAccount automount must be false")
                role = (sa["metadata"].get("annotations") or {}).get("eks.amazonaws.com/role-arn", "")
                check(role == c["serviceAccount"]["roleArn"], f"{where}: IRSA role-arn annotation {role!r}")
        if v["datadog"]["enabled"]:
            raw = annotations.get("ad.datadoghq.com/latamctl.checks")
            check(raw is not None, f"{where}: Datadog checks annotation")
            if raw:
                inst = json.loads(raw)["openmetrics"]["instances"][0]
                check(inst["openmetrics_endpoint"] == f"http://%%host%%:{v['containerPort']}/metrics", f"{where}: Datadog endpoint {inst['openmetrics_endpoint']}")
                check(f"system:{system}" in inst["tags"], f"{where}: Datadog system tag")
        else:
            check(not any(k.startswith("ad.datadoghq.com/") for k in annotations), f"{where}: Datadog annotations only when datadog.enabled")
        keda = component == "worker" and v["worker"]["keda"]["enabled"]
        scaled = c["autoscaling"]["enabled"] or keda
        check(("replicas" in dep["spec"]) != scaled, f"{where}: replicas must be omitted exactly when autoscaled")

    services = objs(docs, "Service")
    extra_services = 0
    if rollout_on:
        extra_services = 1 if v["rollout"]["strategy"] == "blueGreen" else (2 if v["rollout"]["canary"]["trafficRouting"] else 0)
    check(len(services) == ((1 + extra_services) if v["api"]["enabled"] else 0), f"{case}: the api Service (plus the Rollout's), got {[x['metadata']['name'] for x in services]}")
    for s in services:
        check(s["spec"]["selector"].get("app.kubernetes.io/component") == "api", f"{case}: the Service must select the api")
    check_rollout(case, v, docs, deployments)

    hpas = by_name(docs, "HorizontalPodAutoscaler")
    scaled_objects = objs(docs, "ScaledObject")
    for component in components:
        keda = component == "worker" and v["worker"]["keda"]["enabled"]
        has_hpa = any(n.endswith(f"-{component}") for n in hpas)
        check(has_hpa == (v[component]["autoscaling"]["enabled"] and not keda), f"{case}: HPA for {component}")
    for n, h in hpas.items():
        check(h["apiVersion"] == "autoscaling/v2", f"{case}: HPA must be autoscaling/v2")
        target = deployments.get(n)
        check(target is not None and h["spec"]["scaleTargetRef"] == {"apiVersion": target["apiVersion"], "kind": target["kind"], "name": n}, f"{case}: HPA {n} must target its workload, got {h['spec']['scaleTargetRef']}")
    if v["worker"]["enabled"] and v["worker"]["keda"]["enabled"]:
        check(len(scaled_objects) == 1, f"{case}: KEDA ScaledObject for the worker")
        for so in scaled_objects:
            trig = {t["type"]: t for t in so["spec"]["triggers"]}
            check("aws-sqs-queue" in trig, f"{case}: ScaledObject needs the aws-sqs-queue trigger")
            if "aws-sqs-queue" in trig:
                md = trig["aws-sqs-queue"]["metadata"]
                check(md["queueURL"] == v["config"]["aws"]["queue_url"] and md["awsRegion"] == v["config"]["aws"]["region"], f"{case}: SQS trigger queue/region")
                check(all(isinstance(x, str) for x in md.values()), f"{case}: KEDA trigger metadata values must be strings")
            check(so["spec"]["scaleTargetRef"]["name"].endswith("-worker"), f"{case}: ScaledObject targets the worker")
    else:
        check(not scaled_objects, f"{case}: no ScaledObject unless worker.keda.enabled")

    vpas = by_name(docs, "VerticalPodAutoscaler")
    for component in components:
        vpa = next((x for n, x in vpas.items() if n.endswith(f"-{component}")), None)
        want = v[component]["vpa"]
        check((vpa is not None) == want["enabled"], f"{case}: VPA for {component} iff {component}.vpa.enabled")
        if vpa is None:
            continue
        spec = vpa["spec"]
        target = deployments.get(vpa["metadata"]["name"], {})
        check(spec["targetRef"] == {"apiVersion": target.get("apiVersion"), "kind": target.get("kind"), "name": vpa["metadata"]["name"]}, f"{case}: VPA {component} targets its workload")
        check(spec["updatePolicy"]["updateMode"] == want["updateMode"], f"{case}: VPA {component} updateMode")
        policy = spec["resourcePolicy"]["containerPolicies"][0]
        check(policy["containerName"] == "latamctl" and policy["controlledResources"] == want["controlledResources"], f"{case}: VPA {component} container policy")
        # Never a VPA moving CPU on running pods beside a CPU-based horizontal autoscaler.
        keda = component == "worker" and v["worker"]["keda"]["enabled"]
        cpu_hpa = (v[component]["autoscaling"]["enabled"] and not keda) or (keda and v["worker"]["keda"]["cpuUtilization"] > 0)
        live = want["updateMode"] in ("Recreate", "InPlaceOrRecreate", "Auto")
        check(not (cpu_hpa and live and "cpu" in want["controlledResources"]), f"{case}: VPA {component} sets CPU beside a CPU autoscaler")

    pdbs = by_name(docs, "PodDisruptionBudget")
    for component in components:
        check(any(n.endswith(f"-{component}") for n in pdbs) == v[component]["pdb"]["enabled"], f"{case}: PDB for {component}")
    nps = by_name(docs, "NetworkPolicy")
    if v["networkPolicy"]["enabled"]:
        for component in components:
            np_ = next((p for n, p in nps.items() if n.endswith(f"-{component}")), None)
            check(np_ is not None, f"{case}: NetworkPolicy for {component}")
            if np_:
                ports = {p["port"] for rule in np_["spec"]["egress"] for p in rule.get("ports", [])}
                check({53, 443, v["networkPolicy"]["egress"]["databasePort"]} <= ports, f"{case}: {component} egress must allow DNS, 443 and the database")
                check(set(np_["spec"]["policyTypes"]) == {"Ingress", "Egress"}, f"{case}: {component} NetworkPolicy must cover ingress and egress")
    else:
        check(not nps, f"{case}: no NetworkPolicy when disabled")

    rules = objs(docs, "PrometheusRule")
    check(len(rules) == (1 if v["metrics"]["prometheusRule"]["enabled"] else 0), f"{case}: PrometheusRule iff enabled")
    for r in rules:
        text = json.dumps(r["spec"])
        check('system!=\\"\\"' not in text, f"{case}: PrometheusRule still has the unscoped system matcher")
        check(f'system=\\"{system}\\"' in text, f"{case}: PrometheusRule not scoped to system {system}")
        names = [rule.get("alert") for g in r["spec"]["groups"] for rule in g["rules"]]
        check(len(names) >= 5, f"{case}: PrometheusRule should carry the five seed alerts, got {names}")
    if v["networkPolicy"]["enabled"] and (v["metrics"]["serviceMonitor"]["enabled"] or v["datadog"]["enabled"]):
        check(bool(v["networkPolicy"]["metricsFrom"]), f"{case}: scraping is on but networkPolicy.metricsFrom is empty, so the NetworkPolicy blocks it")
    monitors = objs(docs, "ServiceMonitor") + objs(docs, "PodMonitor")
    if v["metrics"]["serviceMonitor"]["enabled"]:
        check(len(monitors) == len(components), f"{case}: a ServiceMonitor/PodMonitor per component")
        for m in monitors:
            eps = m["spec"].get("endpoints") or m["spec"].get("podMetricsEndpoints")
            check(eps[0]["path"] == "/metrics" and eps[0]["port"] == "http", f"{case}: monitor scrapes http /metrics")
            check(any(r["targetLabel"] == "system" for r in eps[0]["relabelings"]), f"{case}: monitor adds the system label")
            check(any(r["targetLabel"] == "rollouts_pod_template_hash" and r["sourceLabels"] == ["__meta_kubernetes_pod_label_rollouts_pod_template_hash"] for r in eps[0]["relabelings"]), f"{case}: monitor copies the pod-template hash (the analysis selects the new pods with it)")
            if m["metadata"]["name"].endswith("-api"):
                check(m["kind"] == ("PodMonitor" if rollout_on else "ServiceMonitor"), f"{case}: the api is scraped by {m['kind']}; with a Rollout its pods must be scraped directly (the Service points at one version)")
    else:
        check(not monitors, f"{case}: no monitors unless enabled")
    dashboards = [d for d in objs(docs, "ConfigMap") if d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    if v["metrics"]["dashboards"]["enabled"]:
        check(len(dashboards) >= 1, f"{case}: dashboard ConfigMaps")
        for d in dashboards:
            for key, text in d["data"].items():
                try:
                    dash = json.loads(text)
                    check(bool(dash.get("uid")) and bool(dash.get("panels")), f"{case}: dashboard {key} needs uid and panels")
                except json.JSONDecodeError as e:
                    check(False, f"{case}: dashboard {key} is not JSON: {e}")
    else:
        check(not dashboards, f"{case}: no dashboards unless enabled")
    ingresses = objs(docs, "Ingress")
    check(len(ingresses) == (1 if v["api"]["enabled"] and v["api"]["ingress"]["enabled"] else 0), f"{case}: Ingress iff api.ingress.enabled")


def check_rollout(case: str, v: dict[str, Any], docs: list[tuple[str, dict]], workloads: dict[str, dict]) -> None:
    """The api's Argo Rollouts Rollout: strategy, Services, analysis wiring, the worker's wave."""
    r = v["rollout"]
    rollouts = objs(docs, "Rollout")
    templates = by_name(docs, "AnalysisTemplate")
    worker = next((w for n, w in workloads.items() if n.endswith("-worker")), None)
    wave = ((worker or {}).get("metadata", {}).get("annotations") or {}).get("argocd.argoproj.io/sync-wave")
    if not (r["enabled"] and v["api"]["enabled"]):
        check(not rollouts and not templates, f"{case}: no Rollout or AnalysisTemplate unless rollout.enabled")
        check(wave is None, f"{case}: the worker has a sync wave only with rollout.enabled")
        return
    ro = rollouts[0]
    name = ro["metadata"]["name"]
    # One ConfigMap per config revision, named by its content: the worker (a later wave) and
    # the stable pods of an aborted rollout keep mounting theirs.
    cms = [d for d in objs(docs, "ConfigMap") if "latamctl.toml" in d.get("data", {})]
    cm_name = cms[0]["metadata"]["name"] if cms else ""
    check(re.fullmatch(re.escape(name.removesuffix("-api")) + r"-config-[0-9a-f]{10}", cm_name) is not None, f"{case}: with a Rollout the ConfigMap name carries its content hash, got {cm_name!r}")
    if cms:
        digest = hashlib.sha256(cms[0]["data"]["latamctl.toml"].encode()).hexdigest()[:10]
        check(cm_name.endswith(digest), f"{case}: ConfigMap {cm_name} is not named by the sha256 of its latamctl.toml ({digest})")
    services = by_name(docs, "Service")
    strategy = ro["spec"]["strategy"]
    check(list(strategy) == [r["strategy"]], f"{case}: Rollout strategy {list(strategy)}, values say {r['strategy']}")
    check(ro["spec"]["selector"]["matchLabels"].items() <= ro["spec"]["template"]["metadata"]["labels"].items(), f"{case}: Rollout selector must match its pod labels")
    a = r["analysis"]
    refs: list[dict] = []
    if r["strategy"] == "blueGreen":
        bg = strategy["blueGreen"]
        check(bg["activeService"] == name and bg["activeService"] in services, f"{case}: blue-green active Service must be the api Service")
        check(bg["previewService"] == f"{name}-preview" and bg["previewService"] in services, f"{case}: blue-green preview Service")
        check(bg["autoPromotionEnabled"] is r["blueGreen"]["autoPromotionEnabled"], f"{case}: autoPromotionEnabled")
        for key, on in (("prePromotionAnalysis", a["prePromotion"]), ("postPromotionAnalysis", a["postPromotion"])):
            check((key in bg) == (a["enabled"] and on), f"{case}: {key} iff analysis.enabled and the values ask for it")
            if key in bg:
                refs.append(bg[key])
        delay = bg.get("scaleDownDelaySeconds")
        if "postPromotionAnalysis" in bg and delay is not None:
            seconds = int(next(iter(templates.values()))["metadata"]["annotations"]["latamctl.io/analysis-seconds"])
            check(delay >= seconds, f"{case}: scaleDownDelaySeconds {delay} would cancel the {seconds} s post-promotion analysis")
    else:
        canary = strategy["canary"]
        check(canary["steps"] == r["canary"]["steps"], f"{case}: canary steps from values")
        check(any("setWeight" in s for s in canary["steps"]), f"{case}: canary steps must set a weight")
        routed = bool(r["canary"]["trafficRouting"])
        check(("trafficRouting" in canary) == routed, f"{case}: trafficRouting iff values set it")
        if routed:
            check(canary["canaryService"] in services and canary["stableService"] in services, f"{case}: canary/stable Services for the traffic router")
        check(("analysis" in canary) == a["enabled"], f"{case}: background analysis iff analysis.enabled")
        if "analysis" in canary:
            check(canary["analysis"]["startingStep"] < len(canary["steps"]), f"{case}: analysis startingStep past the steps")
            refs.append(canary["analysis"])
    check(bool(templates) == a["enabled"], f"{case}: AnalysisTemplate iff analysis.enabled")
    for ref in refs:
        names = [t["templateName"] for t in ref["templates"]]
        check(names == list(templates), f"{case}: the Rollout runs the chart's AnalysisTemplate, got {names}")
        args = {x["name"]: x for x in ref["args"]}
        check(args.get("system", {}).get("value") == v["system"], f"{case}: analysis arg system")
        check(args.get("canary-hash", {}).get("valueFrom") == {"podTemplateHashValue": "Latest"}, f"{case}: analysis arg canary-hash from the new ReplicaSet")
        check(args.get("prometheus-address", {}).get("value") == a["prometheusAddress"], f"{case}: analysis arg prometheus-address")
    for t in templates.values():
        declared = {x["name"] for x in t["spec"]["args"]}
        for ref in refs:
            check({x["name"] for x in ref["args"]} == declared, f"{case}: Rollout args {sorted(x['name'] for x in ref['args'])} vs template args {sorted(declared)}")
        metrics = t["spec"]["metrics"]
        check({m["name"] for m in metrics} == {"high-error-rate", "slow-requests", "stale-messages"}, f"{case}: analysis metrics {[m['name'] for m in metrics]}")
        for m in metrics:
            q = m["provider"]["prometheus"]["query"]
            if m["name"] == "stale-messages":
                # Freshness is the whole system's: the worker is not part of the api's canary.
                check('system="{{args.system}}"' in q and "rollouts_pod_template_hash" not in q, f"{case}: analysis {m['name']} must select this system, not only the new pods")
                continue
            check('rollouts_pod_template_hash="{{args.canary-hash}}"' in q and 'system="{{args.system}}"' in q, f"{case}: analysis {m['name']} must select the new pods of this system")
            check(m["provider"]["prometheus"]["address"] == "{{args.prometheus-address}}", f"{case}: analysis {m['name']} address")
            check("failureCondition" in m and "successCondition" in m, f"{case}: analysis {m['name']} conditions")
    check(wave is not None and int(wave) > int((ro["metadata"].get("annotations") or {}).get("argocd.argoproj.io/sync-wave", "0")), f"{case}: the worker must sync in a later Argo CD wave than the api Rollout (wave {wave})")


# ---------------------------------------------------------------------------------------------
# postgres-citus chart invariants
# ---------------------------------------------------------------------------------------------


def check_citus(case: str, values: dict[str, Any], docs: list[tuple[str, dict]]) -> None:
    v = values
    check(not objs(docs, "Secret"), f"{case}: the chart must never render a Secret")
    sts = by_name(docs, "StatefulSet")
    coord = next((s for n, s in sts.items() if n.endswith("-coordinator")), None)
    workers = next((s for n, s in sts.items() if n.endswith("-worker")), None)
    check(coord is not None and workers is not None, f"{case}: coordinator and worker StatefulSets")
    if coord is None or workers is None:
        return
    check(coord["spec"]["replicas"] == 1, f"{case}: one coordinator")
    check(workers["spec"]["replicas"] == v["worker"]["replicas"], f"{case}: worker replicas")
    services = by_name(docs, "Service")
    for s in (coord, workers):
        name = s["metadata"]["name"]
        where = f"{case}: StatefulSet {name}"
        headless = services.get(s["spec"]["serviceName"])
        check(headless is not None and headless["spec"].get("clusterIP") == "None", f"{where}: headless Service {s['spec']['serviceName']}")
        check(bool(s["spec"].get("volumeClaimTemplates")), f"{where}: PVCs")
        spec = pod_spec(s)
        check(spec["securityContext"].get("runAsNonRoot") is True and spec["securityContext"].get("fsGroup") == 999, f"{where}: non-root pod with fsGroup")
        check(spec.get("automountServiceAccountToken") is False, f"{where}: no service account token")
        for c_ in spec["containers"] + spec.get("initContainers", []):
            sc = c_["securityContext"]
            cw = f"{where} container {c_['name']}"
            check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False, f"{cw}: read-only root, no escalation")
            check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{cw}: drop ALL")
            check(not c_["image"].endswith(":latest") and ":" in c_["image"].rsplit("/", 1)[-1], f"{cw}: pinned image tag")
            for e in c_.get("env", []):
                check(not (SECRET_ENV.search(e["name"]) and "value" in e and not e["name"].endswith("_FILE") and e["name"] != "PGPASSFILE"), f"{cw}: env {e['name']} must not carry a secret literally")
        pg = next(c_ for c_ in spec["containers"] if c_["name"] == "postgres")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            cmd = " ".join(pg.get(probe, {}).get("exec", {}).get("command", []))
            check("pg_isready" in cmd, f"{where}: {probe} must run pg_isready")
        env = {e["name"]: e.get("value") for e in pg["env"]}
        check(env.get("POSTGRES_PASSWORD_FILE") == "/etc/citus-auth/password" and "POSTGRES_PASSWORD" not in env, f"{where}: password from the mounted Secret file")
        check(env.get("POSTGRES_DB") == v["auth"]["database"], f"{where}: same database name on every node")
        vols = {vol["name"]: vol for vol in spec["volumes"]}
        check(vols.get("auth", {}).get("secret", {}).get("secretName") == v["auth"]["existingSecret"], f"{where}: auth volume from the existing Secret")
    jobs = objs(docs, "Job")
    check(len(jobs) == (1 if v["registration"]["enabled"] else 0), f"{case}: registration Job iff enabled")
    for job in jobs:
        ann = job["metadata"]["annotations"]
        check("post-install" in ann.get("helm.sh/hook", "") and "post-upgrade" in ann.get("helm.sh/hook", ""), f"{case}: registration Job is a post-install/upgrade hook")
        ct = pod_spec(job)["containers"][0]
        env = {e["name"]: e.get("value", "") for e in ct["env"]}
        check(len(env["WORKERS"].split()) == v["worker"]["replicas"], f"{case}: registration lists every worker")
        script = ct["command"][-1]
        check("citus_add_node" in script and "NOT EXISTS" in script, f"{case}: registration must be idempotent citus_add_node")
    check(len(objs(docs, "PodDisruptionBudget")) == sum(1 for c in ("coordinator", "worker") if v[c]["pdb"]["enabled"]), f"{case}: PDBs")
    if v["networkPolicy"]["enabled"]:
        check(len(objs(docs, "NetworkPolicy")) == 2, f"{case}: NetworkPolicies")


# ---------------------------------------------------------------------------------------------
# schema rejections: the check must fail when the schema lets a typo through
# ---------------------------------------------------------------------------------------------


def expect_rejected(chart_dir: Path, values: dict[str, Any], what: str) -> None:
    counts["assertions"] += 1
    try:
        render(chart_dir, values, "typo")
    except helm.HelmError as e:
        counts["schema_rejections"] += 1
        detail = str(e).strip().splitlines()[-1].strip()[:160]
        print(f"  rejected as expected: {what}: {detail}")
        return
    failures.append(f"{chart_dir.name}: values with {what} rendered; the schema must reject it")
    print(f"FAIL: {chart_dir.name}: values with {what} rendered", file=sys.stderr)


def schema_tests() -> None:
    print("schema: typos and invalid values must be rejected")
    L = LATAMCTL
    expect_rejected(L, {"imagee": {"tag": "x"}}, "an unknown top-level key (imagee)")
    expect_rejected(L, {"api": {"replicaCout": 3}}, "an unknown nested key (api.replicaCout)")
    expect_rejected(L, {"config": {"aws": {"queueUrl": "https://sqs.x"}}}, "a camelCase config key (config.aws.queueUrl)")
    expect_rejected(L, {"config": {"worker": {"batch_size": 20}}}, "batch_size above the SQS limit of 10")
    expect_rejected(L, {"config": {"bus": "embedded"}}, "bus = embedded in a multi-pod chart")
    expect_rejected(L, {"database": {"existingSecret": ""}}, "no database Secret")
    expect_rejected(L, {"database": {"password": "hunter2"}}, "a password in values")
    expect_rejected(L, {"config": {"database": {"url": "postgres://u:p@h/db"}}}, "the database URL in config (secret)")
    expect_rejected(L, {"config": {"api": {"token": "s3cret"}}}, "the API token in config (secret)")
    expect_rejected(L, {"config": {"api": {"listen": "0.0.0.0:9090"}}}, "config.api.listen (comes from containerPort)")
    expect_rejected(L, {"config": {"worker": {"wait_time": "20 parsecs"}}}, "a duration that humantime cannot parse")
    expect_rejected(L, {"worker": {"keda": {"enabeld": True}}}, "an unknown KEDA key")
    expect_rejected(L, {"system": "Not_A_Label"}, "a system name that is not a DNS label")
    expect_rejected(L, {"worker": {"vpa": {"updateMode": "Sometimes"}}}, "a VPA updateMode that does not exist")
    expect_rejected(L, {"api": {"vpa": {"enabled": True, "updateMode": "Auto", "controlledResources": ["cpu", "memory"]}}},
                    "a VPA in Auto on CPU beside the api's CPU HPA")
    expect_rejected(L, {"worker": {"keda": {"enabled": True}, "vpa": {"enabled": True, "updateMode": "Recreate", "controlledResources": ["cpu"]}}},
                    "a VPA recreating pods on CPU beside KEDA's CPU trigger")
    expect_rejected(L, {"api": {"serviceAccount": {"create": True, "roleArn": "my-role"}}}, "a role ARN that is not an ARN")
    monitored = {"metrics": {"serviceMonitor": {"enabled": True}}}
    expect_rejected(L, {"rollout": {"enabled": True, "strategy": "bluegreen"}}, "a rollout strategy that does not exist (bluegreen)")
    expect_rejected(L, {"rollout": {"canary": {"steps": [{"setWeigth": 10}]}}}, "a canary step with a typo (setWeigth)")
    expect_rejected(L, {"rollout": {"canary": {"steps": [{"setWeight": 150}]}}}, "a canary weight above 100")
    expect_rejected(L, {"rollout": {"enabled": True}}, "rollout analysis without the monitor it queries")
    expect_rejected(L, {**monitored, "rollout": {"enabled": True}, "api": {"ingress": {"enabled": True, "className": "alb"}}},
                    "a blue-green rollout behind an ALB Ingress")
    expect_rejected(L, {**monitored, "rollout": {"enabled": True, "blueGreen": {"scaleDownDelaySeconds": 60}}},
                    "a scale-down delay shorter than the post-promotion analysis")
    expect_rejected(L, {**monitored, "rollout": {"enabled": True, "strategy": "canary", "analysis": {"startingStep": 6}}},
                    "a canary analysis starting after the last step")
    expect_rejected(L, {**monitored, "rollout": {"enabled": True}, "api": {"enabled": False}}, "a rollout without the api")
    C = CITUS
    expect_rejected(C, {"worker": {"replica": 3}}, "an unknown key (worker.replica)")
    expect_rejected(C, {"image": {"tag": "latest"}}, "image tag latest")
    expect_rejected(C, {"auth": {"password": "hunter2"}}, "a password in values")


# ---------------------------------------------------------------------------------------------
# documentation and deploy wiring
# ---------------------------------------------------------------------------------------------

FREE_FORM = ("annotations", "labels", "nodeSelector", "affinity", "behavior", "commonLabels",
             "podLabels", "podAnnotations", "parameters")


def value_keys(values: Any, prefix: str = "") -> list[str]:
    """Leaf keys of a values file; free-form maps count as one key."""
    if isinstance(values, dict) and values and not prefix.endswith(FREE_FORM):
        return [k for key, v in values.items() for k in value_keys(v, f"{prefix}.{key}" if prefix else key)]
    return [prefix]


def check_readme_lists_values(chart_dir: Path) -> None:
    readme = (chart_dir / "README.md").read_text()
    defaults = yaml.safe_load((chart_dir / "values.yaml").read_text())
    missing = [k for k in value_keys(defaults) if f"`{k}`" not in readme]
    check(not missing, f"{chart_dir.name}/README.md does not list values {missing}")
    schema = json.loads((chart_dir / "values.schema.json").read_text())
    check(schema.get("$schema", "").startswith("http://json-schema.org/draft-07/"), f"{chart_dir.name}: values.schema.json must be draft-07")
    check(schema.get("additionalProperties") is False, f"{chart_dir.name}: schema must reject unknown top-level keys")
    unknown = sorted(set(defaults) - set(schema["properties"]))
    check(not unknown, f"{chart_dir.name}: values.yaml keys missing from the schema: {unknown}")


def check_deploy_wiring() -> None:
    files = sorted((ROOT / "deploy/argocd").glob("application-*.yaml"))
    apps = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
    check(len(apps) >= 2, "deploy/argocd/application-<env>.yaml: expected dev and prod Applications")
    for app in apps:
        name = app["metadata"]["name"]
        check(app["kind"] == "Application" and app["apiVersion"] == "argoproj.io/v1alpha1", f"argocd {name}: not an Application")
        src = app["spec"]["source"]
        chart_dir = ROOT / src["path"]
        check((chart_dir / "Chart.yaml").is_file(), f"argocd {name}: source.path {src['path']} is not a chart")
        for vf in src.get("helm", {}).get("valueFiles", []):
            check((chart_dir / vf).resolve().is_file(), f"argocd {name}: valueFile {vf} does not exist")
            check((chart_dir / vf).resolve().is_relative_to(ROOT), f"argocd {name}: valueFile {vf} leaves the repository")
        auto = app["spec"].get("syncPolicy", {}).get("automated", {})
        check(auto.get("prune") is True and auto.get("selfHeal") is True, f"argocd {name}: automated sync with prune and selfHeal")
        check("CreateNamespace=true" in app["spec"]["syncPolicy"].get("syncOptions", []), f"argocd {name}: CreateNamespace=true")
    jenkinsfile = (ROOT / "deploy/Jenkinsfile").read_text()
    for needle in ("scripts/test.sh", "--iac-only", "deploy/gitops/", "withCredentials", "GIT_SHA", "[skip ci]"):
        check(needle in jenkinsfile, f"deploy/Jenkinsfile should mention {needle}")
    for pattern in SECRET_TEXT[:3]:
        check(not pattern.search(jenkinsfile), f"deploy/Jenkinsfile looks like it holds a secret ({pattern.pattern})")
    check(jenkinsfile.count("{") == jenkinsfile.count("}"), "deploy/Jenkinsfile has unbalanced braces")


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def everything_on(base: dict[str, Any]) -> dict[str, Any]:
    """Every optional template on, so each one renders and is validated at least once."""
    v = copy.deepcopy(base)
    v["image"]["digest"] = "sha256:" + "0" * 64
    v["image"]["pullPolicy"] = "Always"
    v["config"]["aws"].update(
        topic_arn="arn:aws:sns:us-east-1:123456789012:all-on",
        queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/all-on",
        dlq_url="https://sqs.us-east-1.amazonaws.com/123456789012/all-on-dlq",
    )
    v["apiToken"]["existingSecret"] = "latamctl-api-token"
    v["config"]["api"] = {"body_limit_bytes": 262144, "request_timeout": "10s", "publish_timeout": "5s", "idempotency_ttl": "24h"}
    v["config"]["worker"].update(wait_time="20s", visibility_timeout="30s", retry_base_delay="1s", retry_max_delay="1m")
    v["config"]["aws"].update(endpoint_url="http://localstack:4566", publish_attempts=3)
    v["config"]["database"].update(migrate_on_start=False, query_timeout="5s")
    v["config"]["log"]["level"] = "latamctl=debug,info"
    v["migrations"]["enabled"] = True
    v["extraEnv"] = [{"name": "RUST_LOG", "value": "info"}]
    v["api"]["ingress"].update(enabled=True, className="nginx", tls=[{"secretName": "tls", "hosts": ["latamctl.example.com"]}])
    v["api"]["pdb"]["minAvailable"] = "50%"
    v["api"]["serviceAccount"]["roleArn"] = "arn:aws:iam::123456789012:role/all-on-api"
    v["worker"]["serviceAccount"]["roleArn"] = "arn:aws:iam::123456789012:role/all-on-worker"
    v["worker"]["keda"]["enabled"] = True
    v["networkPolicy"]["metricsFrom"] = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    for k in ("serviceMonitor", "prometheusRule", "dashboards"):
        v["metrics"][k]["enabled"] = True
    v["datadog"]["enabled"] = True
    v["api"]["vpa"].update(enabled=True, updateMode="Auto", controlledResources=["memory"], minAllowed={"memory": "128Mi"}, maxAllowed={"memory": "1Gi"})
    v["worker"]["vpa"].update(enabled=True, updateMode="Off", controlledResources=["cpu", "memory"], controlledValues="RequestsOnly")
    v["rollout"]["enabled"] = True
    v["rollout"]["blueGreen"].update(autoPromotionEnabled=True, autoPromotionSeconds=120, previewReplicaCount=1, scaleDownDelaySeconds=600)
    v["rollout"]["analysis"].update(prePromotion=True, postPromotion=True)
    return v


def canary_routed(base: dict[str, Any]) -> dict[str, Any]:
    """A canary Rollout with a traffic router (exact weights through canary/stable Services)."""
    v = everything_on(base)
    v["rollout"]["strategy"] = "canary"
    v["rollout"]["canary"].update(
        steps=[{"setWeight": 5}, {"pause": {"duration": "10m"}}, {"setWeight": 50}, {"pause": {}}],
        trafficRouting={"nginx": {"stableIngress": "latamctl-api"}},
    )
    v["rollout"]["analysis"]["startingStep"] = 1
    return v


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="directory for the renderings")
    parser.add_argument("--values", action="append", type=Path, default=[],
                        help="extra latamctl values file to render and check (e.g. `latamctl render helm` output)")
    args = parser.parse_args()
    out: Path = args.out
    validate_dir = out.parent / (out.name + "-validate")
    validate_dir.mkdir(parents=True, exist_ok=True)

    for chart in (LATAMCTL, CITUS):
        report = helm.lint(str(chart), strict=True, kube_version=f"v{KUBE_VERSION}.0")
        problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
        for m in problems:
            print(f"FAIL: lint {chart.name}: {m.get('path', '')} {m['error']}", file=sys.stderr)
        failures.extend(f"lint {chart.name}: {m['error']}" for m in problems)
        print(f"lint {chart.name}: {len(problems)} problems ({len(report['messages'])} messages)")

    with helm.Chart.load(str(LATAMCTL)) as c:
        latamctl_defaults = c.values

    cases: list[tuple[Path, str, dict[str, Any] | None, Callable]] = [
        (LATAMCTL, "default", None, check_latamctl),
        (LATAMCTL, "everything-on", everything_on(latamctl_defaults), check_latamctl),
        (LATAMCTL, "canary-routed", canary_routed(latamctl_defaults), check_latamctl),
        (CITUS, "default", None, check_citus),
        (CITUS, "no-registration", {"registration": {"enabled": False}, "networkPolicy": {"enabled": False}}, check_citus),
    ]
    for f in sorted((ROOT / "examples").glob("values-*.yaml")):
        chart = CITUS if "citus" in f.stem else LATAMCTL
        cases.append((chart, f"examples-{f.stem}", load_values(f), check_citus if chart is CITUS else check_latamctl))
    for f in sorted((ROOT / "deploy" / "gitops").glob("*/values.yaml")):
        cases.append((LATAMCTL, f"gitops-{f.parent.name}", load_values(f), check_latamctl))
    for i, f in enumerate(args.values):
        cases.append((LATAMCTL, f"extra-{i}-{f.stem}", load_values(f.resolve()), check_latamctl))

    builtin_files: list[Path] = []
    skipped_crds: dict[str, int] = {}
    for chart, case, values, checker in cases:
        label = f"{chart.name}/{case}"
        try:
            rendered = render(chart, values, release=chart.name)
        except helm.HelmError as e:
            failures.append(f"{label}: render failed: {e}")
            print(f"FAIL: {label}: render failed: {e}", file=sys.stderr)
            continue
        counts["renderings"] += 1
        write_rendering(out / chart.name / case, rendered)
        docs = documents(rendered)
        counts["objects"] += len(docs)
        with helm.Chart.load(str(chart)) as c:
            merged = c.merge_values(values)
        before = len(failures)
        checker(label, merged, docs)
        for cm in objs(docs, "ConfigMap"):
            if "latamctl.toml" in cm.get("data", {}):
                toml_dir = out.parent / (out.name + "-toml")
                toml_dir.mkdir(parents=True, exist_ok=True)
                (toml_dir / f"{case}.toml").write_text(cm["data"]["latamctl.toml"])
        for r in objs(docs, "PrometheusRule"):
            rules_dir = out.parent / (out.name + "-rules")
            rules_dir.mkdir(parents=True, exist_ok=True)
            (rules_dir / f"{chart.name}--{case}.yaml").write_text(yaml.safe_dump({"groups": r["spec"]["groups"]}, sort_keys=False))
        builtin = []
        for _, d in docs:
            key = (d.get("apiVersion"), d.get("kind"))
            if key in CRD_KINDS:
                skipped_crds[d["kind"]] = skipped_crds.get(d["kind"], 0) + 1
            else:
                builtin.append(d)
        path = validate_dir / f"{chart.name}--{case}.yaml"
        path.write_text(yaml.safe_dump_all(builtin, sort_keys=False))
        builtin_files.append(path)
        print(f"render {label}: {len(docs)} objects, {'ok' if len(failures) == before else 'FAILED'}")

    schema_tests()

    for chart in (LATAMCTL, CITUS):
        check_readme_lists_values(chart)
    check_deploy_wiring()
    print("docs and deploy wiring: checked (README values tables, schemas, Argo CD, Jenkinsfile)")

    print(f"kubernetes-validate --strict -k {KUBE_VERSION}: {sum(1 for f in builtin_files for d in yaml.safe_load_all(f.read_text()) if d)} built-in objects in {len(builtin_files)} renderings")
    print(f"  skipped (CRDs, no schema in kubernetes-validate): {', '.join(f'{k} x{n}' for k, n in sorted(skipped_crds.items())) or 'none'}")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", "-k", KUBE_VERSION, "--quiet", *map(str, builtin_files)],
        capture_output=True,
        text=True,
    )
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        failures.append("kubernetes-validate found errors")
        print("FAIL: kubernetes-validate:\n" + output, file=sys.stderr)
    else:
        print("  all valid" + (f"\n{output}" if output else ""))

    print(
        f"helm checks: {counts['renderings']} renderings, {counts['objects']} objects, "
        f"{counts['assertions']} assertions, {counts['schema_rejections']} schema rejections"
    )
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
