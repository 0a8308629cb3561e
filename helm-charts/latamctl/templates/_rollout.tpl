{{/*
The workload a component runs as, for the objects that target it (HPA, VPA):
apiVersion, kind and name as a YAML map. Call with (dict "root" $ "component" "api"|"worker").
*/}}
{{- define "latamctl.workloadRef" -}}
{{- if and (eq .component "api") .root.Values.rollout.enabled }}
apiVersion: argoproj.io/v1alpha1
kind: Rollout
{{- else }}
apiVersion: apps/v1
kind: Deployment
{{- end }}
name: {{ include "latamctl.fullname" .root }}-{{ .component }}
{{- end }}

{{/*
Name of the chart's AnalysisTemplate (files/argo/analysis-template.yaml).
*/}}
{{- define "latamctl.analysisTemplateName" -}}
{{- include "latamctl.fullname" . }}-slo
{{- end }}

{{/*
The parsed files/argo/analysis-template.yaml (`latamctl render alerts --format analysis-template`).
*/}}
{{- define "latamctl.analysisTemplateFile" -}}
{{- $t := fromYaml (.Files.Get "files/argo/analysis-template.yaml") }}
{{- if or (hasKey $t "Error") (ne (get $t "kind") "AnalysisTemplate") }}
{{- fail (printf "files/argo/analysis-template.yaml is not an AnalysisTemplate (render it with `latamctl render alerts --format analysis-template`): %v" (get $t "Error")) }}
{{- end }}
{{- toYaml $t }}
{{- end }}

{{/*
The analysis a Rollout runs: the chart's template with this release's system, the new
ReplicaSet's pod-template hash (Latest: the preview in blue-green, the canary in canary) and the
Prometheus address.
*/}}
{{- define "latamctl.analysisRef" -}}
templates:
  - templateName: {{ include "latamctl.analysisTemplateName" . }}
args:
  - name: system
    value: {{ .Values.system | quote }}
  - name: canary-hash
    valueFrom:
      podTemplateHashValue: Latest
  - name: prometheus-address
    value: {{ .Values.rollout.analysis.prometheusAddress | quote }}
{{- end }}

{{/*
spec.strategy of the api Rollout, after the checks that keep it from doing what Argo Rollouts
would not (or would silently undo).
*/}}
{{- define "latamctl.rolloutStrategy" -}}
{{- $r := .Values.rollout }}
{{- $a := $r.analysis }}
{{- $name := printf "%s-api" (include "latamctl.fullname" .) }}
{{- if and $a.enabled (not .Values.metrics.serviceMonitor.enabled) }}
{{- fail "rollout.analysis.enabled needs metrics.serviceMonitor.enabled: the analysis queries the rollouts_pod_template_hash label that the chart's PodMonitor adds to every series. Turn the monitor on, or set rollout.analysis.enabled false (no automatic rollback)." }}
{{- end }}
{{- if eq $r.strategy "blueGreen" }}
{{- if and .Values.api.ingress.enabled (eq .Values.api.ingress.className "alb") }}
{{- fail "rollout.strategy blueGreen with an ALB Ingress (api.ingress.className alb): Argo Rollouts does not support it (the AWS Load Balancer Controller may deregister every pod during the switch). Use rollout.strategy canary." }}
{{- end }}
{{- if and $a.enabled $a.postPromotion (gt (int $r.blueGreen.scaleDownDelaySeconds) 0) }}
{{- $t := include "latamctl.analysisTemplateFile" . | fromYaml }}
{{- $seconds := int (get $t.metadata.annotations "latamctl.io/analysis-seconds") }}
{{- if lt (int $r.blueGreen.scaleDownDelaySeconds) $seconds }}
{{- fail (printf "rollout.blueGreen.scaleDownDelaySeconds %d is shorter than the post-promotion analysis (%d s): Argo Rollouts would cancel the analysis and scale the previous version down before it could roll back. Set it to 0 (wait for the analysis) or at least %d." (int $r.blueGreen.scaleDownDelaySeconds) $seconds $seconds) }}
{{- end }}
{{- end }}
blueGreen:
  activeService: {{ $name }}
  previewService: {{ $name }}-preview
  autoPromotionEnabled: {{ $r.blueGreen.autoPromotionEnabled }}
  {{- if and $r.blueGreen.autoPromotionEnabled (gt (int $r.blueGreen.autoPromotionSeconds) 0) }}
  autoPromotionSeconds: {{ $r.blueGreen.autoPromotionSeconds }}
  {{- end }}
  {{- if gt (int $r.blueGreen.previewReplicaCount) 0 }}
  previewReplicaCount: {{ $r.blueGreen.previewReplicaCount }}
  {{- end }}
  {{- if gt (int $r.blueGreen.scaleDownDelaySeconds) 0 }}
  scaleDownDelaySeconds: {{ $r.blueGreen.scaleDownDelaySeconds }}
  {{- end }}
  {{- if and $a.enabled $a.prePromotion }}
  prePromotionAnalysis:
    {{- include "latamctl.analysisRef" . | nindent 4 }}
  {{- end }}
  {{- if and $a.enabled $a.postPromotion }}
  postPromotionAnalysis:
    {{- include "latamctl.analysisRef" . | nindent 4 }}
  {{- end }}
{{- else }}
{{- if and $a.enabled (ge (int $a.startingStep) (len $r.canary.steps)) }}
{{- fail (printf "rollout.analysis.startingStep %d is past the last of the %d canary steps: the analysis would never run." (int $a.startingStep) (len $r.canary.steps)) }}
{{- end }}
canary:
  maxSurge: 25%
  maxUnavailable: 0
  {{- with $r.canary.trafficRouting }}
  canaryService: {{ $name }}-canary
  stableService: {{ $name }}-stable
  trafficRouting:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $a.enabled }}
  analysis:
    startingStep: {{ $a.startingStep }}
    {{- include "latamctl.analysisRef" . | nindent 4 }}
  {{- end }}
  steps:
    {{- toYaml $r.canary.steps | nindent 4 }}
{{- end }}
{{- end }}

{{/*
Name of the ConfigMap with latamctl.toml. With rollout.enabled it carries a hash of its content:
each revision has its own, so a config change is a new revision of the api Rollout (analysed
like an image change), the worker gets it only in its later sync wave (pods of the previous
worker that restart meanwhile still mount the previous ConfigMap), and an aborted rollout's
stable pods keep theirs. Argo CD prunes the previous one after a successful sync (PruneLast).
*/}}
{{- define "latamctl.configMapName" -}}
{{- if .Values.rollout.enabled }}
{{- printf "%s-config-%s" (include "latamctl.fullname" .) (include "latamctl.toml" . | sha256sum | trunc 10) }}
{{- else }}
{{- include "latamctl.fullname" . }}-config
{{- end }}
{{- end }}
