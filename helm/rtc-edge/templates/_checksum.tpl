{{/* Pod annotation that rolls pods when the ConfigMap changes. */}}
{{- define "rtc-edge.configChecksum" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- end -}}
