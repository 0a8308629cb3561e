{{/*
One workload of the latamctl image. Call with (dict "root" $ "component" "api"|"worker").
Both roles share everything but args, ServiceAccount, sizing and the api-only token. With
rollout.enabled the api is an Argo Rollouts Rollout (same pod template, "latamctl.rolloutStrategy")
and the worker Deployment waits for it in a later Argo CD sync wave.
*/}}
{{- define "latamctl.deployment" -}}
{{- $root := .root }}
{{- $component := .component }}
{{- $c := index $root.Values $component }}
{{- $ctx := dict "root" $root "component" $component }}
{{- $keda := and (eq $component "worker") $root.Values.worker.keda.enabled }}
{{- $rollout := and (eq $component "api") $root.Values.rollout.enabled }}
{{- if $rollout }}
apiVersion: argoproj.io/v1alpha1
kind: Rollout
{{- else }}
apiVersion: apps/v1
kind: Deployment
{{- end }}
metadata:
  name: {{ include "latamctl.fullname" $root }}-{{ $component }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "latamctl.componentLabels" $ctx | nindent 4 }}
    {{- if $root.Values.datadog.enabled }}
    {{- include "latamctl.datadogLabels" $ctx | nindent 4 }}
    {{- end }}
  annotations:
    {{- include "latamctl.checkovSkips" $root | nindent 4 }}
    {{- if and (eq $component "worker") $root.Values.rollout.enabled }}
    argocd.argoproj.io/sync-wave: {{ $root.Values.rollout.workerSyncWave | quote }}
    {{- end }}
spec:
  {{- if not (or $c.autoscaling.enabled $keda) }}
  replicas: {{ $c.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    {{- if $rollout }}
    {{- include "latamctl.rolloutStrategy" $root | nindent 4 }}
    {{- else }}
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 25%
    {{- end }}
  selector:
    matchLabels:
      {{- include "latamctl.selectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "latamctl.componentLabels" $ctx | nindent 8 }}
        {{- if $root.Values.datadog.enabled }}
        {{- include "latamctl.datadogLabels" $ctx | nindent 8 }}
        {{- end }}
        {{- with $c.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        # Roll the pods when latamctl.toml changes.
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- if $root.Values.datadog.enabled }}
        {{- include "latamctl.datadogAnnotations" $ctx | nindent 8 }}
        {{- end }}
        {{- with $c.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "latamctl.serviceAccountName" $ctx }}
      # IRSA does not need the Kubernetes API token: the EKS webhook mounts its own
      # projected web-identity token.
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds }}
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      {{- if and (eq $component "api") $root.Values.migrations.enabled }}
      initContainers:
        - name: migrate
          image: {{ include "latamctl.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            {{- toYaml $root.Values.migrations.args | nindent 12 }}
          env:
            {{- include "latamctl.env" $ctx | nindent 12 }}
          volumeMounts:
            - name: config
              mountPath: /etc/latamctl
              readOnly: true
            - name: tmp
              mountPath: /tmp
            {{- include "latamctl.secretMounts" $ctx | nindent 12 }}
          resources:
            {{- toYaml $c.resources | nindent 12 }}
          securityContext:
            {{- include "latamctl.containerSecurityContext" $root | nindent 12 }}
      {{- end }}
      containers:
        - name: latamctl
          image: {{ include "latamctl.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            - serve
            - --role
            - {{ $component }}
            - --config
            - /etc/latamctl/latamctl.toml
          ports:
            - name: http
              containerPort: {{ $root.Values.containerPort }}
              protocol: TCP
          env:
            {{- include "latamctl.env" $ctx | nindent 12 }}
          volumeMounts:
            - name: config
              mountPath: /etc/latamctl
              readOnly: true
            - name: tmp
              mountPath: /tmp
            {{- include "latamctl.secretMounts" $ctx | nindent 12 }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ $root.Values.probes.startup.periodSeconds }}
            timeoutSeconds: {{ $root.Values.probes.startup.timeoutSeconds }}
            failureThreshold: {{ $root.Values.probes.startup.failureThreshold }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ $root.Values.probes.liveness.periodSeconds }}
            timeoutSeconds: {{ $root.Values.probes.liveness.timeoutSeconds }}
            failureThreshold: {{ $root.Values.probes.liveness.failureThreshold }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: {{ $root.Values.probes.readiness.periodSeconds }}
            timeoutSeconds: {{ $root.Values.probes.readiness.timeoutSeconds }}
            failureThreshold: {{ $root.Values.probes.readiness.failureThreshold }}
          lifecycle:
            # Let endpoints and load balancers drop the pod before SIGTERM starts the drain.
            preStop:
              sleep:
                seconds: {{ $c.preStopSleepSeconds }}
          resources:
            {{- toYaml $c.resources | nindent 12 }}
          securityContext:
            {{- include "latamctl.containerSecurityContext" $root | nindent 12 }}
      volumes:
        - name: config
          configMap:
            name: {{ include "latamctl.configMapName" $root }}
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- include "latamctl.secretVolumes" $ctx | nindent 8 }}
      {{- with $c.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if $c.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml $c.topologySpreadConstraints | nindent 8 }}
      {{- else if $root.Values.topologySpread.enabled }}
      topologySpreadConstraints:
        {{- range $root.Values.topologySpread.topologyKeys }}
        - maxSkew: {{ $root.Values.topologySpread.maxSkew }}
          topologyKey: {{ . }}
          whenUnsatisfiable: {{ $root.Values.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "latamctl.selectorLabels" $ctx | nindent 14 }}
        {{- end }}
      {{- end }}
{{- end }}
