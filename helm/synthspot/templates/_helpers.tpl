{{/* Names and labels ------------------------------------------------------------------------ */}}

{{- define "synthspot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "synthspot.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "synthspot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "synthspot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "synthspot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "synthspot.labels" -}}
helm.sh/chart: {{ include "synthspot.chart" . }}
{{ include "synthspot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: synthspot
{{- end -}}

{{/* A role's labels: call with (dict "root" $ "component" "worker") */}}
{{- define "synthspot.componentLabels" -}}
{{ include "synthspot.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "synthspot.componentSelector" -}}
{{ include "synthspot.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "synthspot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "synthspot.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "synthspot.secretName" -}}
{{- default (include "synthspot.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* Image of a role: call with (dict "root" $ "flavor" "cuda") */}}
{{- define "synthspot.image" -}}
{{- $tag := .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s-%s" .root.Values.image.repository $tag .flavor -}}
{{- end -}}

{{/* Settings ------------------------------------------------------------------------------------ */}}

{{- define "synthspot.queue" -}}
{{- .Values.config.queue | default "synthspot.score" -}}
{{- end -}}

{{- define "synthspot.softShutdownSeconds" -}}
{{- $v := .Values.config.soft_shutdown_timeout_s -}}
{{- if kindIs "invalid" $v -}}60{{- else -}}{{- $v | ceil | int -}}{{- end -}}
{{- end -}}

{{/* One setting's value as synthspot parses it from the environment: JSON for lists and maps,
     whole numbers without an exponent (Helm reads every YAML number as a float64). */}}
{{- define "synthspot.settingValue" -}}
{{- $v := . -}}
{{- if or (kindIs "slice" $v) (kindIs "map" $v) -}}
{{- toJson $v -}}
{{- else if and (kindIs "float64" $v) (eq $v (floor $v)) -}}
{{- $v | int64 -}}
{{- else -}}
{{- $v | toString -}}
{{- end -}}
{{- end -}}

{{- define "synthspot.redisUrl" -}}
{{- $scheme := ternary "rediss" "redis" .Values.redis.tls -}}
{{- $auth := ternary ":$(REDIS_PASSWORD)@" "" .Values.redis.auth -}}
{{- printf "%s://%s%s:%d/%d" $scheme $auth .Values.redis.host (.Values.redis.port | int) (.Values.redis.database | int) -}}
{{- end -}}

{{/* Pod parts shared by both roles ------------------------------------------------------------ */}}

{{/* Environment from the Secret (keys are optional: a Secret may hold only some of them) and the
     Redis URL built from the password. Kubernetes expands $(REDIS_PASSWORD) because it is
     defined earlier in the same list. */}}
{{- define "synthspot.env" -}}
{{- $secret := include "synthspot.secretName" . -}}
{{- if .Values.redis.auth }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: REDIS_PASSWORD
{{- end }}
- name: SYNTHSPOT_REDIS_URL
  value: {{ include "synthspot.redisUrl" . | quote }}
{{- range list "SYNTHSPOT_S3_ACCESS_KEY_ID" "SYNTHSPOT_S3_SECRET_ACCESS_KEY" "SYNTHSPOT_INTEGRATIONS" }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
      optional: true
{{- end }}
{{- end -}}

{{- define "synthspot.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: metrics
  mountPath: /run/synthspot/metrics
- name: cache
  mountPath: /var/cache/synthspot
- name: state
  mountPath: /var/lib/synthspot
{{- if .Values.weights.volume }}
- name: weights
  mountPath: {{ .Values.weights.mountPath }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "synthspot.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.volumes.tmpSizeLimit }}
- name: metrics
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.volumes.metricsSizeLimit }}
- name: cache
  emptyDir:
    sizeLimit: {{ .Values.volumes.cacheSizeLimit }}
- name: state
  emptyDir:
    sizeLimit: {{ .Values.volumes.stateSizeLimit }}
{{- if .Values.weights.volume }}
- name: weights
{{- toYaml .Values.weights.volume | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Checksums that roll the pods when settings or the chart's Secret change. */}}
{{- define "synthspot.configChecksums" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end -}}
