{{/*
Chart name, truncated to the 63-character DNS label limit.
*/}}
{{- define "latamctl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name. Leaves room for the longest suffix ("-worker", "-dashboards") in 63 chars.
*/}}
{{- define "latamctl.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart label value.
*/}}
{{- define "latamctl.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The image tag actually deployed (used for app.kubernetes.io/version and Datadog's version tag).
*/}}
{{- define "latamctl.version" -}}
{{- default .Chart.AppVersion .Values.image.tag | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object: Kubernetes recommended labels plus the per-system labels.
*/}}
{{- define "latamctl.labels" -}}
helm.sh/chart: {{ include "latamctl.chart" . }}
app.kubernetes.io/name: {{ include "latamctl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "latamctl.version" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ .Values.partOf }}
latamctl.io/system: {{ .Values.system }}
latamctl.io/environment: {{ .Values.environment }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of one component. Call with (dict "root" $ "component" "api").
*/}}
{{- define "latamctl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "latamctl.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
All labels of one component's objects. Call with (dict "root" $ "component" "api").
*/}}
{{- define "latamctl.componentLabels" -}}
{{ include "latamctl.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Container image reference: repository:tag, or repository:tag@digest when a digest is given.
*/}}
{{- define "latamctl.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
ServiceAccount name of one component. Call with (dict "root" $ "component" "api").
*/}}
{{- define "latamctl.serviceAccountName" -}}
{{- $c := index .root.Values .component }}
{{- if $c.serviceAccount.create }}
{{- default (printf "%s-%s" (include "latamctl.fullname" .root) .component) $c.serviceAccount.name }}
{{- else }}
{{- default "default" $c.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Checkov skip annotations for a workload, numbered checkov.io/skip1..N. Each skip says why.
Only the skips that apply to the current values are emitted.
*/}}
{{- define "latamctl.checkovSkips" -}}
{{- $skips := list }}
{{- if not .Values.image.digest }}
{{- $skips = append $skips "CKV_K8S_43=Images are tagged with the immutable git SHA (ECR tag immutability); set image.digest to pin by digest" }}
{{- end }}
{{- if ne .Values.image.pullPolicy "Always" }}
{{- $skips = append $skips "CKV_K8S_15=Tags are immutable git SHAs, so IfNotPresent cannot run a stale image and avoids a registry round trip on every restart" }}
{{- end }}
{{- $lines := list }}
{{- range $i, $s := $skips }}
{{- $lines = append $lines (printf "checkov.io/skip%d: %s" (add1 $i) ($s | quote)) }}
{{- end }}
{{- join "\n" $lines }}
{{- end }}

{{/*
The latamctl.toml rendered from .Values.config. Numbers go through int so Helm's float64
values never become "4.0"; empty strings are left out so latamctl reports what is missing.
Optional keys (timeouts, log level, ...) are written only when set in values.
*/}}
{{- define "latamctl.tomlValue" -}}
{{- if kindIs "bool" . }}{{ . }}
{{- else if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) }}{{ int64 . }}
{{- else }}{{ toString . | quote }}
{{- end }}
{{- end }}

{{- define "latamctl.tomlOptional" -}}
{{- $section := .section }}
{{- range $k, $v := $section }}
{{- if not (has $k $.skip) }}
{{ $k }} = {{ include "latamctl.tomlValue" $v }}
{{- end }}
{{- end }}
{{- end }}

{{- define "latamctl.toml" -}}
{{- $c := .Values.config -}}
# latamctl.toml rendered by the latamctl Helm chart (release {{ .Release.Name }}, system {{ .Values.system }}).
# Secrets are not here: the database URL and the API token are Secrets mounted as files
# (LATAMCTL_DATABASE_URL_FILE, LATAMCTL_API_TOKEN_FILE).
bus = {{ $c.bus | quote }}
store = {{ $c.store | quote }}
topics = [{{ range $i, $t := $c.topics }}{{ if $i }}, {{ end }}{{ $t | quote }}{{ end }}]
name = {{ .Values.system | quote }}
environment = {{ .Values.environment | quote }}

[api]
listen = {{ printf "0.0.0.0:%d" (int .Values.containerPort) | quote }}
{{- include "latamctl.tomlOptional" (dict "section" (default (dict) $c.api) "skip" (list)) }}

[worker]
concurrency = {{ int $c.worker.concurrency }}
batch_size = {{ int $c.worker.batch_size }}
{{- include "latamctl.tomlOptional" (dict "section" $c.worker "skip" (list "concurrency" "batch_size")) }}

[aws]
region = {{ $c.aws.region | quote }}
{{- range $k := list "topic_arn" "queue_url" "dlq_url" "endpoint_url" }}
{{- with index $c.aws $k }}
{{ $k }} = {{ . | quote }}
{{- end }}
{{- end }}
{{- include "latamctl.tomlOptional" (dict "section" $c.aws "skip" (list "region" "topic_arn" "queue_url" "dlq_url" "endpoint_url")) }}

[database]
max_connections = {{ int $c.database.max_connections }}
{{- include "latamctl.tomlOptional" (dict "section" $c.database "skip" (list "max_connections")) }}

[log]
format = {{ $c.log.format | quote }}
{{- include "latamctl.tomlOptional" (dict "section" $c.log "skip" (list "format")) }}
{{ end }}

{{/*
Datadog OpenMetrics autodiscovery annotations for the container "latamctl".
*/}}
{{- define "latamctl.datadogAnnotations" -}}
{{- $root := .root }}
{{- $tags := list (printf "system:%s" $root.Values.system) (printf "component:%s" .component) }}
{{- $tags = concat $tags $root.Values.datadog.tags }}
{{- $instance := dict
  "openmetrics_endpoint" (printf "http://%%%%host%%%%:%d/metrics" (int $root.Values.containerPort))
  "namespace" $root.Values.datadog.metricNamespace
  "metrics" (list "http_request.*" "latamctl_.*" "process_.*")
  "histogram_buckets_as_distributions" true
  "tags" $tags }}
{{- $checks := dict "openmetrics" (dict "init_config" (dict) "instances" (list $instance)) }}
ad.datadoghq.com/latamctl.checks: {{ $checks | toJson | quote }}
ad.datadoghq.com/latamctl.logs: {{ list (dict "source" "latamctl" "service" (printf "%s-%s" $root.Values.partOf .component)) | toJson | quote }}
{{- end }}

{{/*
Datadog unified service tagging labels. Call with (dict "root" $ "component" "api").
*/}}
{{- define "latamctl.datadogLabels" -}}
{{- if .root.Values.datadog.enabled }}
tags.datadoghq.com/env: {{ .root.Values.environment }}
tags.datadoghq.com/service: {{ printf "%s-%s" .root.Values.partOf .component }}
tags.datadoghq.com/version: {{ include "latamctl.version" .root | quote }}
{{- end }}
{{- end }}

{{/*
Relabelings for ServiceMonitor/PodMonitor: every series gets `system` (the pipeline) and
`component` (api|worker), which the alert rules and dashboards group by.
*/}}
{{- define "latamctl.scrapeRelabelings" -}}
- sourceLabels: [__meta_kubernetes_pod_label_latamctl_io_system]
  targetLabel: system
- sourceLabels: [__meta_kubernetes_pod_label_app_kubernetes_io_component]
  targetLabel: component
# The ReplicaSet of an Argo Rollouts revision (empty, so no label, on Deployment pods): the
# AnalysisTemplate measures the new version alone with it.
- sourceLabels: [__meta_kubernetes_pod_label_rollouts_pod_template_hash]
  targetLabel: rollouts_pod_template_hash
{{- end }}

{{/*
Environment of the latamctl container. Call with (dict "root" $ "component" "api"|"worker").
No secret is in the environment: they are files ("latamctl.secretMounts"), named here.
*/}}
{{- define "latamctl.env" -}}
{{- $root := .root }}
{{- $component := .component }}
- name: AWS_REGION
  value: {{ $root.Values.config.aws.region | quote }}
- name: LATAMCTL_DATABASE_URL_FILE
  value: /var/run/secrets/latamctl/database/url
{{- if and (eq $component "api") $root.Values.apiToken.existingSecret }}
- name: LATAMCTL_API_TOKEN_FILE
  value: /var/run/secrets/latamctl/api-token/token
{{- end }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Container securityContext: non-root 65532, read-only root filesystem, no privilege escalation,
no capabilities, RuntimeDefault seccomp.
*/}}
{{- define "latamctl.containerSecurityContext" -}}
privileged: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Secret files of the latamctl container (read-only, not in the environment, not in `ps`).
Call with (dict "root" $ "component" "api"|"worker").
*/}}
{{- define "latamctl.secretMounts" -}}
- name: database-secret
  mountPath: /var/run/secrets/latamctl/database
  readOnly: true
{{- if and (eq .component "api") .root.Values.apiToken.existingSecret }}
- name: api-token-secret
  mountPath: /var/run/secrets/latamctl/api-token
  readOnly: true
{{- end }}
{{- end }}

{{/*
The Secret volumes behind "latamctl.secretMounts": existing Secrets, one key each.
*/}}
{{- define "latamctl.secretVolumes" -}}
- name: database-secret
  secret:
    secretName: {{ .root.Values.database.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .root.Values.database.secretKey }}
        path: url
{{- if and (eq .component "api") .root.Values.apiToken.existingSecret }}
- name: api-token-secret
  secret:
    secretName: {{ .root.Values.apiToken.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .root.Values.apiToken.secretKey }}
        path: token
{{- end }}
{{- end }}
