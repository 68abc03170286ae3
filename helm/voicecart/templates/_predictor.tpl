{{/*
The predictor body shared by the stable predictor and a Standard-mode canary (everything but
replicas/autoscaling, which KServe forbids on canaries). Called with (dict "root" $ "storageUri" uri).
*/}}
{{- define "voicecart.predictorBody" -}}
{{- $root := .root -}}
{{- $r := $root.Values.resolution -}}
{{- if eq $r.variant "gpu" -}}
{{- $repo := $r.tritonRepository | default (ternary "triton/gpu" "triton/cpu" $r.gpu.enabled) -}}
{{- with $r.gpu }}{{ if .enabled -}}
nodeSelector:
  {{- toYaml .nodeSelector | nindent 2 }}
tolerations:
  {{- toYaml .tolerations | nindent 2 }}
{{ end }}{{- end -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ $r.predictor.runAsUser }}
  runAsGroup: {{ $r.predictor.runAsUser }}
  fsGroup: {{ $r.predictor.runAsUser }}
  seccompProfile:
    type: RuntimeDefault
model:
  # required by the CRD for canary predictors (spec.canary[].predictor.model.name)
  name: kserve-container
  modelFormat:
    name: triton
  runtime: {{ $r.predictor.runtime }}
  protocolVersion: {{ $r.predictor.protocolVersion }}
  storageUri: {{ printf "%s/%s" (trimSuffix "/" .storageUri) $repo | quote }}
  resources:
    requests:
      {{- toYaml $r.predictor.resources.requests | nindent 6 }}
      {{- if $r.gpu.enabled }}
      nvidia.com/gpu: {{ $r.gpu.count | quote }}
      {{- end }}
    limits:
      {{- toYaml $r.predictor.resources.limits | nindent 6 }}
      {{- if $r.gpu.enabled }}
      nvidia.com/gpu: {{ $r.gpu.count | quote }}
      {{- end }}
  securityContext:
    {{- include "voicecart.containerSecurityContext" $root | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 1Gi
{{- else -}}
securityContext:
  {{- include "voicecart.podSecurityContext" $root | nindent 2 }}
containers:
  - name: kserve-container
    image: {{ include "voicecart.engineImage" $root }}
    imagePullPolicy: {{ $root.Values.image.engine.pullPolicy }}
    args:
      - serve
      - --model-dir={{ $r.modelDir }}
      - --port=8080
    env:
      - name: STORAGE_URI
        value: {{ .storageUri | quote }}
      - name: VOICECART_SERVING__FEEDBACK_DB
        value: /tmp/voicecart/feedback/events.sqlite
      {{- include "voicecart.engineEnv" $root | nindent 6 }}
    envFrom:
      {{- include "voicecart.engineEnvFrom" $root | nindent 6 }}
    ports:
      - name: http1
        containerPort: 8080
        protocol: TCP
    {{- include "voicecart.engineProbes" $root | nindent 4 }}
    resources:
      {{- toYaml $r.cpu.resources | nindent 6 }}
    securityContext:
      {{- include "voicecart.containerSecurityContext" $root | nindent 6 }}
    volumeMounts:
      {{- include "voicecart.engineVolumeMounts" $root | nindent 6 }}
volumes:
  {{- include "voicecart.engineVolumes" $root | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* Readiness = the model and catalogue are loaded (KServe's model-ready route); liveness = the server answers. */}}
{{- define "voicecart.engineProbes" -}}
readinessProbe:
  httpGet:
    path: /v1/models/{{ .Values.resolution.modelName }}
    port: 8080
  periodSeconds: 5
  failureThreshold: 3
livenessProbe:
  httpGet:
    path: /
    port: 8080
  initialDelaySeconds: 10
  periodSeconds: 10
  failureThreshold: 3
startupProbe:
  httpGet:
    path: /
    port: 8080
  periodSeconds: 5
  failureThreshold: 60
{{- end -}}
