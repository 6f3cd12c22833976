{{/* Names, labels and images shared by every template. */}}

{{- define "klambda.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<release>-klambda", or just the release name when it already contains "klambda". */}}
{{- define "klambda.fullname" -}}
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

{{/* Cluster-scoped objects are shared by every install: the namespace keeps them apart. */}}
{{- define "klambda.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "klambda.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "klambda.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "klambda.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: klambda
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: pass (dict "ctx" $ "component" "router"). */}}
{{- define "klambda.selectorLabels" -}}
app.kubernetes.io/name: {{ include "klambda.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "klambda.componentLabels" -}}
{{ include "klambda.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "klambda.image" -}}
{{- $img := index .ctx.Values.image .which }}
{{- $tag := .ctx.Values.image.tag | default .ctx.Chart.AppVersion }}
{{- if .ctx.Values.image.registry }}
{{- printf "%s/%s:%s" .ctx.Values.image.registry $img $tag }}
{{- else }}
{{- printf "%s:%s" $img $tag }}
{{- end }}
{{- end }}

{{- define "klambda.operatorServiceAccount" -}}
{{- .Values.operator.serviceAccount.name | default (printf "%s-operator" (include "klambda.fullname" .)) }}
{{- end }}

{{- define "klambda.routerServiceAccount" -}}
{{- .Values.router.serviceAccount.name | default (printf "%s-router" (include "klambda.fullname" .)) }}
{{- end }}

{{/* Where the Functions this release serves live. */}}
{{- define "klambda.functionNamespace" -}}
{{- .Values.functions.namespace | default .Release.Namespace }}
{{- end }}

{{- define "klambda.natsUrl" -}}
{{- if .Values.nats.enabled }}
{{- printf "nats://%s-nats.%s.svc:%d" (include "klambda.fullname" .) .Release.Namespace (int .Values.nats.port) }}
{{- else }}
{{- .Values.nats.externalUrl }}
{{- end }}
{{- end }}

{{- define "klambda.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "klambda.containerSecurityContext" -}}
{{ toYaml .Values.containerSecurityContext }}
{{- end }}

{{/* True when the Prometheus Operator's API is served (or asked for with --api-versions). */}}
{{- define "klambda.hasMonitoringApi" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}true{{ end }}
{{- end }}

{{- /* Where worker pods ship their log records and the router sends queries ("": nowhere). */}}
{{- define "klambda.logEngineUrl" -}}
{{- if .Values.logs.engine.enabled }}
{{- printf "http://%s-logs.%s.svc:%d" (include "klambda.fullname" .) .Release.Namespace (int .Values.logs.engine.port) }}
{{- else }}
{{- .Values.logs.engine.externalUrl }}
{{- end }}
{{- end }}
