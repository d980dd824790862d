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

{{- /* The RBAC rules are generated from operator/rbac.ts into _rbac-rules.tpl. */}}

{{- define "nxt-rollback-operator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail (printf "replicaCount=%d needs leaderElection.enabled=true: without it every replica would reconcile the same objects. Set replicaCount=1 or enable leader election." (int .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.alertReceiver.enabled (not .Values.alertReceiver.tokenSecret.name) }}
{{- fail "alertReceiver.enabled needs alertReceiver.tokenSecret.name: a Secret with the bearer token Alertmanager sends (docs/alertmanager.md)" }}
{{- end }}
{{- end }}
