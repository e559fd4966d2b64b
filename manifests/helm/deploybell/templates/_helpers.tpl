{{/* Names and labels. */}}
{{- define "deploybell.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "deploybell.fullname" -}}
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

{{- define "deploybell.selectorLabels" -}}
app.kubernetes.io/name: {{ include "deploybell.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "deploybell.labels" -}}
{{ include "deploybell.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/*
Sharding: the chart renders the operator once per shard, "" being the default one. Each gets a
context that is the root's plus `shard` (built by deploybell.shardContexts), so the templates
below read .Values, .Release and .Chart as usual and .shard for the shard.
*/}}
{{- define "deploybell.shards" -}}
{{- toJson (prepend (.Values.shards | default list) "") }}
{{- end }}

{{- define "deploybell.shardName" -}}
{{- if .shard }}
{{- printf "%s-shard-%s" (include "deploybell.fullname" .) .shard | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- include "deploybell.fullname" . }}
{{- end }}
{{- end }}

{{/* The pods of one shard. A shard's instance label differs from the release's, so that the
default Deployment's selector (name and instance, unchanged since before shards) never matches
another shard's pods. */}}
{{- define "deploybell.podSelectorLabels" -}}
{{- if .shard -}}
app.kubernetes.io/name: {{ include "deploybell.name" . }}
app.kubernetes.io/instance: {{ printf "%s-shard-%s" .Release.Name .shard | trunc 63 | trimSuffix "-" }}
deploybell.io/shard: {{ .shard }}
{{- else -}}
{{ include "deploybell.selectorLabels" . }}
{{- end -}}
{{- end }}

{{- define "deploybell.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "deploybell.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "deploybell.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* "true" when kopf peering is on: asked for, or needed because several replicas run. */}}
{{- define "deploybell.peering" -}}
{{- if or .Values.peering.enabled (gt (int .Values.replicas) 1) }}true{{ end }}
{{- end }}

{{- define "deploybell.peeringName" -}}
{{- $name := default (include "deploybell.fullname" .) .Values.peering.name }}
{{- if .shard }}{{ printf "%s-%s" $name .shard | trunc 253 }}{{ else }}{{ $name }}{{ end }}
{{- end }}

{{/* Every shard's peering object, as a JSON list (RBAC lets the operator patch each). */}}
{{- define "deploybell.peeringNames" -}}
{{- $root := . }}
{{- $names := list }}
{{- range $shard := include "deploybell.shards" . | fromJsonArray }}
{{- $names = append $names (include "deploybell.peeringName" (merge (dict "shard" $shard) $root)) }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{/*
What the operator needs on namespaced resources: a ClusterRole's rules when it watches the
whole cluster, a Role's in each watched namespace otherwise. Derived from the code: handlers/,
clients/kube.py, deploy/apply.py and deploy/observe.py.
*/}}
{{- define "deploybell.namespacedRules" -}}
# DeployJobs: kopf's finalizer and progress annotations; Notifications: an index and events.
- apiGroups: [deploybell.io]
  resources: [deployjobs]
  verbs: [get, list, watch, patch]
- apiGroups: [deploybell.io]
  resources: [notifications]
  verbs: [get, list, watch]
# Status is written by deploybell itself, in one merge patch per transition.
- apiGroups: [deploybell.io]
  resources: [deployjobs/status, notifications/status]
  verbs: [patch]
# Label-selected watches on the kinds of api/kinds.py (WATCHED_KINDS, a test checks), in a
# namespace only while a run is in flight there.
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets, replicasets]
  verbs: [get, list, watch]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# Notifications' Secrets are watched (readiness) and read (delivery).
{{- if .Values.rbac.applyAsOperator }}
# The rollbackOnFailure snapshot (Secret <job>-deploybell-last-good) is server-side applied.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch]
{{- else }}
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
{{- end }}
# spec.manifestsFrom.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get]
# Events on DeployJobs and Notifications; Warning Events are read to explain failures.
- apiGroups: [""]
  resources: [events]
  verbs: [create, list]
# Does a DeployJob's ServiceAccount exist, and act as it (spec.serviceAccountName or the default).
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, impersonate]
{{- end }}

{{/* kopf's peering object: read and watch all, write only ours. */}}
{{- define "deploybell.peeringRules" -}}
- apiGroups: [kopf.dev]
  resources: [{{ .resource }}]
  verbs: [get, list, watch]
- apiGroups: [kopf.dev]
  resources: [{{ .resource }}]
  resourceNames: {{ .names }}
  verbs: [patch]
{{- end }}

{{/* Environment of the operator container: settings.py reads DEPLOYBELL_*. */}}
{{- define "deploybell.env" -}}
# kopf's identity in the peering object.
- name: POD_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: DEPLOYBELL_LIVENESS
  value: {{ printf "http://0.0.0.0:%d/healthz" (int .Values.health.port) | quote }}
{{- with .shard }}
# This shard's DeployJobs: those labelled sharding.deploybell.io/key={{ . }}.
- name: DEPLOYBELL_SHARD_KEY
  value: {{ . | quote }}
{{- end }}
- name: DEPLOYBELL_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: DEPLOYBELL_FAILFAST_GRACE_SECONDS
  value: {{ .Values.failfastGraceSeconds | quote }}
- name: DEPLOYBELL_HISTORY_LIMIT
  value: {{ .Values.historyLimit | quote }}
- name: DEPLOYBELL_METRICS_PORT
  value: {{ ternary .Values.metrics.port 0 .Values.metrics.enabled | quote }}
{{- with .Values.watchNamespaces }}
- name: DEPLOYBELL_NAMESPACES
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.defaultServiceAccount }}
- name: DEPLOYBELL_DEFAULT_SERVICE_ACCOUNT
  value: {{ . | quote }}
{{- end }}
{{- if include "deploybell.peering" . }}
- name: DEPLOYBELL_PEERING
  value: {{ include "deploybell.peeringName" . | quote }}
{{- end }}
{{- with .Values.clusterName }}
- name: DEPLOYBELL_CLUSTER_NAME
  value: {{ . | quote }}
{{- end }}
{{- with .Values.linkTemplate }}
- name: DEPLOYBELL_LINK_TEMPLATE
  value: {{ . | quote }}
{{- end }}
{{- with .Values.smtp }}
{{- if .host }}
- name: DEPLOYBELL_SMTP_HOST
  value: {{ .host | quote }}
- name: DEPLOYBELL_SMTP_PORT
  value: {{ .port | quote }}
- name: DEPLOYBELL_SMTP_TLS
  value: {{ .tls | quote }}
{{- end }}
{{- if .from }}
- name: DEPLOYBELL_SMTP_FROM
  value: {{ .from | quote }}
{{- end }}
{{- if .existingSecret }}
- name: DEPLOYBELL_SMTP_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret | quote }}
      key: {{ .usernameKey | quote }}
- name: DEPLOYBELL_SMTP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret | quote }}
      key: {{ .passwordKey | quote }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
