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

{{/* Settings of the engine (voicecart.config) as env vars, secrets by reference only. */}}
{{- define "voicecart.engineEnv" -}}
- name: VOICECART_SERVING__MODEL_NAME
  value: {{ .Values.resolution.modelName | quote }}
- name: VOICECART_SERVING__DEADLINE_MS
  value: {{ .Values.resolution.deadlineMs | quote }}
- name: VOICECART_SERVING__LOG_UTTERANCES
  value: {{ .Values.resolution.logUtterances | quote }}
- name: VOICECART_FEATURES__ONLINE
  value: redis
- name: VOICECART_FEATURES__OFFLINE
  value: bigquery
- name: VOICECART_FEATURES__REPO_DIR
  value: /etc/voicecart/feature_repo
- name: VOICECART_FEATURES__REDIS_URL
  value: {{ .Values.featureStore.redis.address | quote }}
{{- with .Values.featureStore.redis.passwordSecret }}
- name: VOICECART_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
{{- end }}
- name: VOICECART_FEATURES__BIGQUERY_PROJECT
  valueFrom:
    secretKeyRef:
      name: {{ .Values.featureStore.bigquery.projectSecret.name }}
      key: {{ .Values.featureStore.bigquery.projectSecret.key }}
- name: VOICECART_FEATURES__BIGQUERY_DATASET
  value: {{ .Values.featureStore.bigquery.dataset | quote }}
- name: HOME
  value: /tmp
{{- end -}}

{{/* Writable scratch and the feature store config, since the root filesystem is read-only. */}}
{{- define "voicecart.engineVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: feature-store
  mountPath: /etc/voicecart/feature_repo
  readOnly: true
{{- end -}}

{{- define "voicecart.engineVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
- name: feature-store
  configMap:
    name: {{ include "voicecart.fullname" . }}-feature-store
{{- end -}}
