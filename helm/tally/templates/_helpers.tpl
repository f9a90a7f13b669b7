{{/* Chart name. */}}
{{- define "tally.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart> unless the release name already contains the chart name. */}}
{{- define "tally.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tally.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels. */}}
{{- define "tally.labels" -}}
helm.sh/chart: {{ include "tally.chart" . }}
app.kubernetes.io/name: {{ include "tally.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tally
{{- end }}

{{/* Selector labels for one component: include "tally.selectorLabels" (dict "ctx" . "component" "runtime") */}}
{{- define "tally.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tally.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "tally.componentLabels" -}}
{{ include "tally.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "tally.operator.fullname" -}}
{{- printf "%s-operator" (include "tally.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "tally.runtime.fullname" -}}
{{- printf "%s-runtime" (include "tally.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "tally.memcached.fullname" -}}
{{- printf "%s-memcached" (include "tally.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tally.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "tally.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}
{{- define "tally.runtime.serviceAccountName" -}}
{{- if .Values.runtime.serviceAccount.create }}
{{- default (include "tally.runtime.fullname" .) .Values.runtime.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.runtime.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tally.operator.image" -}}
{{- printf "%s:%s" .Values.operator.image.repository (default .Chart.AppVersion .Values.operator.image.tag) }}
{{- end }}
{{- define "tally.runtime.image" -}}
{{- printf "%s:%s" .Values.runtime.image.repository (default .Chart.AppVersion .Values.runtime.image.tag) }}
{{- end }}

{{/* The Secret holding the Cassandra credentials: the existing one, or the chart's when credentials are given. */}}
{{- define "tally.cassandra.secretName" -}}
{{- if .Values.cassandra.existingSecret }}
{{- .Values.cassandra.existingSecret }}
{{- else if .Values.cassandra.username }}
{{- printf "%s-cassandra" (include "tally.fullname" .) }}
{{- end }}
{{- end }}

{{/* The runtime's own Cassandra credentials (cassandra.runtime), when given: an existing Secret or the chart's. */}}
{{- define "tally.cassandra.runtimeSecretName" -}}
{{- if .Values.cassandra.runtime.existingSecret }}
{{- .Values.cassandra.runtime.existingSecret }}
{{- else if .Values.cassandra.runtime.username }}
{{- printf "%s-cassandra-runtime" (include "tally.fullname" .) }}
{{- end }}
{{- end }}

{{/* The Secret holding the CA that Cassandra's certificate chains to (cassandra.tls), when TLS is on. */}}
{{- define "tally.cassandra.caSecretName" -}}
{{- if .Values.cassandra.tls.existingSecret }}
{{- .Values.cassandra.tls.existingSecret }}
{{- else if .Values.cassandra.tls.ca }}
{{- printf "%s-cassandra-ca" (include "tally.fullname" .) }}
{{- end }}
{{- end }}

{{/* Where the operator and the runtime read the Cassandra CA (a Secret volume), and the env var naming it. */}}
{{- define "tally.cassandra.caMountPath" -}}/etc/tally/cassandra-ca{{- end }}
{{- define "tally.cassandra.caEnv" -}}
{{- if include "tally.cassandra.caSecretName" . -}}
- name: CASSANDRA_CA_FILE
  value: {{ printf "%s/%s" (include "tally.cassandra.caMountPath" .) .Values.cassandra.tls.caKey | quote }}
{{- end }}
{{- end }}
{{- define "tally.cassandra.caVolumeMount" -}}
{{- if include "tally.cassandra.caSecretName" . -}}
- name: cassandra-ca
  mountPath: {{ include "tally.cassandra.caMountPath" . }}
  readOnly: true
{{- end }}
{{- end }}
{{- define "tally.cassandra.caVolume" -}}
{{- with include "tally.cassandra.caSecretName" . -}}
- name: cassandra-ca
  secret:
    secretName: {{ . }}
    items:
      - key: {{ $.Values.cassandra.tls.caKey }}
        path: {{ $.Values.cassandra.tls.caKey }}
{{- end }}
{{- end }}

{{/* CASSANDRA_USERNAME and CASSANDRA_PASSWORD from the Secret named by the argument (nothing for ""). */}}
{{- define "tally.cassandra.credentialsEnv" -}}
{{- with . -}}
- name: CASSANDRA_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: username
- name: CASSANDRA_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: password
{{- end }}
{{- end }}

{{/* Memcached servers: the chart's Service when enabled, else memcached.servers. */}}
{{- define "tally.memcached.servers" -}}
{{- if .Values.memcached.enabled }}
{{- printf "%s.%s.svc:%d" (include "tally.memcached.fullname" .) .Release.Namespace (int .Values.memcached.port) }}
{{- else }}
{{- .Values.memcached.servers }}
{{- end }}
{{- end }}

{{/* Store environment shared by the operator and the runtime; credentials come from tally.cassandra.credentialsEnv. */}}
{{- define "tally.storeEnv" -}}
- name: CASSANDRA_CONTACT_POINTS
  value: {{ .Values.cassandra.contactPoints | quote }}
- name: CASSANDRA_LOCAL_DC
  value: {{ .Values.cassandra.localDataCenter | quote }}
- name: CASSANDRA_REQUEST_TIMEOUT_MS
  value: {{ .Values.cassandra.requestTimeoutMs | quote }}
{{- with include "tally.cassandra.caEnv" . }}
{{ . }}
{{- end }}
{{- with include "tally.memcached.servers" . }}
- name: MEMCACHED_SERVERS
  value: {{ . | quote }}
{{- end }}
- name: TALLY_WATCH_NAMESPACES
  value: {{ join "," .Values.watchNamespaces | quote }}
{{- end }}

{{/* Pod- and container-level security defaults. */}}
{{- define "tally.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}
{{- define "tally.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The namespaces RBAC is bound in: the watched ones, or none (cluster scope). */}}
{{- define "tally.clusterScoped" -}}
{{- if empty .Values.watchNamespaces }}true{{ end }}
{{- end }}
