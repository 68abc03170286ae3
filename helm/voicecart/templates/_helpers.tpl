{{/* Names, labels and the pieces every pod shares. */}}

{{- define "voicecart.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "voicecart.isvcName" -}}
{{- .Values.resolution.name -}}
{{- end -}}

{{- define "voicecart.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "voicecart.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "voicecart.engineImage" -}}
{{- printf "%s:%s" .Values.image.engine.repository (required "image.engine.tag is required" .Values.image.engine.tag) -}}
{{- end -}}

{{- define "voicecart.pipelineImage" -}}
{{- printf "%s:%s" .Values.image.pipeline.repository (required "image.pipeline.tag is required" .Values.image.pipeline.tag) -}}
{{- end -}}

{{/* KServe's annotation value for the mode the values select. */}}
{{- define "voicecart.kserveMode" -}}
{{- if eq .Values.deploymentMode "Knative" -}}Serverless{{- else -}}Standard{{- end -}}
{{- end -}}

{{/* Pod-level security context: never root, default seccomp. */}}
{{- define "voicecart.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
fsGroup: {{ .Values.podSecurity.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security context: read-only root, no escalation, no capabilities. */}}
{{- define "voicecart.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Settings of the engine (voicecart.config) as env vars: the feature store ConfigMap via
envFrom, secrets by secretKeyRef only. The Redis password joins the address through Kubernetes'
$(VAR) expansion, so it is never written into any object. */}}
{{- define "voicecart.engineEnvFrom" -}}
- configMapRef:
    name: {{ include "voicecart.fullname" . }}-feature-store
{{- end -}}

{{- define "voicecart.engineEnv" -}}
- name: VOICECART_SERVING__MODEL_NAME
  value: {{ .Values.resolution.modelName | quote }}
- name: VOICECART_SERVING__DEADLINE_MS
  value: {{ .Values.resolution.deadlineMs | quote }}
- name: VOICECART_SERVING__LOG_UTTERANCES
  value: {{ .Values.resolution.logUtterances | quote }}
- name: VOICECART_SERVING__WORKERS
  value: {{ .Values.resolution.workers | quote }}
- name: VOICECART_SERVING__READY_WHEN_DEGRADED
  value: {{ .Values.resolution.readyWhenDegraded | quote }}
- name: VOICECART_SERVING__CONVERSATIONS__TYPE
  value: {{ .Values.resolution.conversations | quote }}
- name: VOICECART_FEATURES__OFFLINE__PROJECT
  valueFrom:
    secretKeyRef:
      name: {{ .Values.featureStore.bigquery.projectSecret.name }}
      key: {{ .Values.featureStore.bigquery.projectSecret.key }}
{{- with .Values.featureStore.redis.passwordSecret }}
- name: VOICECART_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
- name: VOICECART_FEATURES__ONLINE__URL
  value: {{ printf "%s,password=$(VOICECART_REDIS_PASSWORD)" $.Values.featureStore.redis.address | quote }}
{{- else }}
- name: VOICECART_FEATURES__ONLINE__URL
  value: {{ .Values.featureStore.redis.address | quote }}
{{- end }}
- name: HOME
  value: /tmp
{{- end -}}

{{/* Writable scratch, since the root filesystem is read-only. */}}
{{- define "voicecart.engineVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "voicecart.engineVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- end -}}
