{{/* Name of the chart, overridable. */}}
{{- define "nxt-rollback-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name when it already contains the chart name. */}}
{{- define "nxt-rollback-operator.fullname" -}}
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

{{- define "nxt-rollback-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; objects that belong to one component add app.kubernetes.io/component. */}}
{{- define "nxt-rollback-operator.labels" -}}
helm.sh/chart: {{ include "nxt-rollback-operator.chart" . }}
app.kubernetes.io/name: {{ include "nxt-rollback-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nxt-rollback-operator
{{- end }}

{{- define "nxt-rollback-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nxt-rollback-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end }}

{{- define "nxt-rollback-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nxt-rollback-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The manager's image; also the image of the runner Jobs (OPERATOR_IMAGE). */}}
{{- define "nxt-rollback-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Namespaced rules of the manager, used by the ClusterRole (all namespaces) and by the Role in each watched
namespace. No wildcards. Keep in step with manifests/base/clusterrole.yaml; the packaging test checks both
against one table.
*/}}
{{- define "nxt-rollback-operator.rules" -}}
- apiGroups: [rollback.nxtnewday.io]
  resources: [rollbackplans, backupschedules]
  verbs: [get, list, watch, patch, update]
- apiGroups: [rollback.nxtnewday.io]
  resources: [rollbackplans/status, backupschedules/status]
  verbs: [get, patch, update]
# blockOwnerDeletion on owner references to plans and schedules
- apiGroups: [rollback.nxtnewday.io]
  resources: [rollbackplans/finalizers, backupschedules/finalizers]
  verbs: [update]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, patch]
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [get, list, watch]
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, list, watch, create, delete]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, patch]
# only to check that a credentials Secret has the expected keys; values are never logged
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [core.openfeature.dev]
  resources: [featureflags]
  verbs: [get, list, watch, patch]
{{- end }}

{{/* Cluster-scoped: pre-validation asks the API server what the operator itself may do. */}}
{{- define "nxt-rollback-operator.accessReviewRules" -}}
- apiGroups: [authorization.k8s.io]
  resources: [selfsubjectaccessreviews]
  verbs: [create]
{{- end }}

{{- define "nxt-rollback-operator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail (printf "replicaCount=%d needs leaderElection.enabled=true: without it every replica would reconcile the same objects. Set replicaCount=1 or enable leader election." (int .Values.replicaCount)) }}
{{- end }}
{{- end }}
