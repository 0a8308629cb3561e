{{- define "citus.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name, short enough for "<fullname>-coordinator-headless" and the StatefulSet pod names.
*/}}
{{- define "citus.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "citus.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "citus.labels" -}}
helm.sh/chart: {{ include "citus.chart" . }}
app.kubernetes.io/name: {{ include "citus.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: latamctl
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels; call with (dict "root" $ "component" "coordinator"|"worker"|"registration").
*/}}
{{- define "citus.selectorLabels" -}}
app.kubernetes.io/name: {{ include "citus.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "citus.componentLabels" -}}
{{ include "citus.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Labels shared by every pod of the release (for NetworkPolicy peers).
*/}}
{{- define "citus.releaseSelector" -}}
app.kubernetes.io/name: {{ include "citus.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "citus.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository .Values.image.tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag }}
{{- end }}
{{- end }}

{{- define "citus.serviceAccountName" -}}
{{- include "citus.fullname" . }}
{{- end }}

{{/*
Stable DNS name of a node. Call with (dict "root" $ "component" "worker" "ordinal" 0).
*/}}
{{- define "citus.nodeHost" -}}
{{- $fn := include "citus.fullname" .root }}
{{- printf "%s-%s-%d.%s-%s-headless.%s.svc.%s" $fn .component (int .ordinal) $fn .component .root.Release.Namespace .root.Values.clusterDomain }}
{{- end }}

{{/*
Checkov skips for the Citus pods, each with its reason.
*/}}
{{- define "citus.checkovSkips" -}}
{{- $skips := list "CKV_K8S_40=The official postgres/citus image owns its data and initdb as the image's postgres user (uid 999); initdb refuses a uid with no passwd entry" }}
{{- if not .Values.image.digest }}
{{- $skips = append $skips "CKV_K8S_43=The image tag is pinned to an exact Citus release (13.1.0); set image.digest to pin by digest" }}
{{- end }}
{{- if ne .Values.image.pullPolicy "Always" }}
{{- $skips = append $skips "CKV_K8S_15=The tag is an exact release; IfNotPresent avoids a registry dependency when a database pod restarts" }}
{{- end }}
{{- $lines := list }}
{{- range $i, $s := $skips }}
{{- $lines = append $lines (printf "checkov.io/skip%d: %s" (add1 $i) ($s | quote)) }}
{{- end }}
{{- join "\n" $lines }}
{{- end }}

{{/*
Pod and container security contexts shared by every Citus pod.
*/}}
{{- define "citus.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 999
runAsGroup: 999
fsGroup: 999
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "citus.containerSecurityContext" -}}
privileged: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 999
runAsGroup: 999
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
pg_isready against the local server, as probe command.
*/}}
{{- define "citus.pgIsReady" -}}
exec:
  command:
    - sh
    - -c
    - exec pg_isready -q -h 127.0.0.1 -p 5432 -U "$POSTGRES_USER" -d "$POSTGRES_DB"
{{- end }}
