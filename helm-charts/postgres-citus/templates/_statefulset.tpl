{{/*
A Citus node StatefulSet. Call with (dict "root" $ "component" "coordinator"|"worker").
*/}}
{{- define "citus.statefulset" -}}
{{- $root := .root }}
{{- $component := .component }}
{{- $c := index $root.Values $component }}
{{- $ctx := dict "root" $root "component" $component }}
{{- $fn := include "citus.fullname" $root }}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ $fn }}-{{ $component }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "citus.componentLabels" $ctx | nindent 4 }}
  annotations:
    {{- include "citus.checkovSkips" $root | nindent 4 }}
spec:
  serviceName: {{ $fn }}-{{ $component }}-headless
  replicas: {{ if eq $component "coordinator" }}1{{ else }}{{ $c.replicas }}{{ end }}
  # Nodes are independent (each has its own data); start them together.
  podManagementPolicy: Parallel
  updateStrategy:
    type: RollingUpdate
  persistentVolumeClaimRetentionPolicy:
    whenDeleted: Retain
    whenScaled: Retain
  selector:
    matchLabels:
      {{- include "citus.selectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "citus.componentLabels" $ctx | nindent 8 }}
      {{- with $c.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "citus.serviceAccountName" $root }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with $c.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      terminationGracePeriodSeconds: 60
      securityContext:
        {{- include "citus.podSecurityContext" $root | nindent 8 }}
      initContainers:
        # libpq password file for node-to-node connections (the coordinator connecting to the
        # workers, workers to each other), built from the mounted Secret; never an env var.
        - name: pgpass
          image: {{ include "citus.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            - sh
            - -ec
            - |
              umask 077
              pw=$(sed -e 's/\\/\\\\/g' -e 's/:/\\:/g' /etc/citus-auth/password)
              printf '*:*:*:%s:%s\n' "$POSTGRES_USER" "$pw" > /etc/citus-pgpass/pgpass
          env:
            - name: POSTGRES_USER
              value: {{ $root.Values.auth.username | quote }}
          volumeMounts:
            - name: auth
              mountPath: /etc/citus-auth
              readOnly: true
            - name: pgpass
              mountPath: /etc/citus-pgpass
          resources:
            requests:
              cpu: 10m
              memory: 16Mi
            limits:
              cpu: 100m
              memory: 32Mi
          securityContext:
            {{- include "citus.containerSecurityContext" $root | nindent 12 }}
      containers:
        - name: postgres
          image: {{ include "citus.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            - postgres
            {{- range $k, $v := $root.Values.postgresql.parameters }}
            - -c
            - {{ printf "%s=%v" $k $v | quote }}
            {{- end }}
          ports:
            - name: postgres
              containerPort: 5432
              protocol: TCP
          env:
            - name: POSTGRES_USER
              value: {{ $root.Values.auth.username | quote }}
            - name: POSTGRES_DB
              value: {{ $root.Values.auth.database | quote }}
            - name: POSTGRES_PASSWORD_FILE
              value: /etc/citus-auth/password
            - name: PGDATA
              value: /var/lib/postgresql/data/pgdata
            - name: PGPASSFILE
              value: /etc/citus-pgpass/pgpass
          startupProbe:
            {{- include "citus.pgIsReady" $root | nindent 12 }}
            periodSeconds: {{ $root.Values.probes.startup.periodSeconds }}
            timeoutSeconds: 5
            failureThreshold: {{ $root.Values.probes.startup.failureThreshold }}
          livenessProbe:
            {{- include "citus.pgIsReady" $root | nindent 12 }}
            periodSeconds: {{ $root.Values.probes.liveness.periodSeconds }}
            timeoutSeconds: {{ $root.Values.probes.liveness.timeoutSeconds }}
            failureThreshold: {{ $root.Values.probes.liveness.failureThreshold }}
          readinessProbe:
            {{- include "citus.pgIsReady" $root | nindent 12 }}
            periodSeconds: {{ $root.Values.probes.readiness.periodSeconds }}
            timeoutSeconds: {{ $root.Values.probes.readiness.timeoutSeconds }}
            failureThreshold: {{ $root.Values.probes.readiness.failureThreshold }}
          resources:
            {{- toYaml $c.resources | nindent 12 }}
          securityContext:
            {{- include "citus.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /var/lib/postgresql/data
            - name: auth
              mountPath: /etc/citus-auth
              readOnly: true
            - name: pgpass
              mountPath: /etc/citus-pgpass
              readOnly: true
            # Writable paths under the read-only root filesystem: the socket dir, /tmp and a
            # real /dev/shm for parallel query.
            - name: run
              mountPath: /var/run/postgresql
            - name: tmp
              mountPath: /tmp
            - name: shm
              mountPath: /dev/shm
      volumes:
        - name: auth
          secret:
            secretName: {{ $root.Values.auth.existingSecret }}
            defaultMode: 0440
            items:
              - key: {{ $root.Values.auth.passwordKey }}
                path: password
        - name: pgpass
          emptyDir:
            medium: Memory
            sizeLimit: 1Mi
        - name: run
          emptyDir:
            sizeLimit: 16Mi
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
        - name: shm
          emptyDir:
            medium: Memory
            sizeLimit: 256Mi
      {{- with $c.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if $c.affinity }}
      affinity:
        {{- toYaml $c.affinity | nindent 8 }}
      {{- else }}
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "citus.releaseSelector" $root | nindent 20 }}
      {{- end }}
  volumeClaimTemplates:
    - apiVersion: v1
      kind: PersistentVolumeClaim
      metadata:
        name: data
        labels:
          {{- include "citus.selectorLabels" $ctx | nindent 10 }}
      spec:
        accessModes:
          - ReadWriteOnce
        {{- with $c.persistence.storageClass }}
        storageClassName: {{ . }}
        {{- end }}
        resources:
          requests:
            storage: {{ $c.persistence.size }}
{{- end }}
