{{/*
Names, labels and shared snippets. Every object name comes from here; every object carries the
standard app.kubernetes.io labels plus app.kubernetes.io/component = gateway | socket | scaler | redis | test.
*/}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "rtc-edge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified release name (bitnami/ingress-nginx convention). */}}
{{- define "rtc-edge.fullname" -}}
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

{{/* Name of a per-component object: <fullname>-<component>. Call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "rtc-edge.componentName" -}}
{{- printf "%s-%s" (include "rtc-edge.fullname" .ctx | trunc 50 | trimSuffix "-") .component -}}
{{- end -}}

{{/*
The socket Deployment, its headless Service and the pods' subdomain all share this one name, and the
scaler's SOCKET_WORKLOAD_NAME points at it. It is not prefixed with the release name on purpose: it is
the name in the pod-pinned DNS template ({podId}.socket.<ns>.svc) and in the operator's kubectl commands.
*/}}
{{- define "rtc-edge.socketName" -}}
{{- .Values.socket.name -}}
{{- end -}}

{{- define "rtc-edge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels (immutable on a Deployment: never add chart version here). Call with (dict "ctx" $ "component" "x"). */}}
{{- define "rtc-edge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rtc-edge.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Full label set. Call with (dict "ctx" $ "component" "x"). */}}
{{- define "rtc-edge.labels" -}}
helm.sh/chart: {{ include "rtc-edge.chart" .ctx }}
{{ include "rtc-edge.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: rtc-edge
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The rtc-edge image reference: repository:tag, tag defaulting to the chart's appVersion; a digest wins. */}}
{{- define "rtc-edge.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{- define "rtc-edge.redisName" -}}
{{- include "rtc-edge.componentName" (dict "ctx" . "component" "redis") -}}
{{- end -}}

{{- define "rtc-edge.scalerServiceAccountName" -}}
{{- if .Values.scaler.serviceAccount.create -}}
{{- default (include "rtc-edge.componentName" (dict "ctx" . "component" "scaler")) .Values.scaler.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.scaler.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The gateway needs Kubernetes API access only for the endpointslices resolver. */}}
{{- define "rtc-edge.gatewayNeedsApi" -}}
{{- if eq (toString .Values.config.GATEWAY_RESOLVER) "endpointslices" -}}true{{- end -}}
{{- end -}}

{{- define "rtc-edge.gatewayServiceAccountName" -}}
{{- default (include "rtc-edge.componentName" (dict "ctx" . "component" "gateway")) .Values.gateway.serviceAccount.name -}}
{{- end -}}

{{/* The Lease the scaler replicas compete for. */}}
{{- define "rtc-edge.leaseName" -}}
{{- default (include "rtc-edge.componentName" (dict "ctx" . "component" "scaler")) .Values.config.SCALER_LEASE_NAME -}}
{{- end -}}

{{/* Where the gateway's dns resolver looks a pod up (only used when GATEWAY_RESOLVER=dns). */}}
{{- define "rtc-edge.dnsTemplate" -}}
{{- if .Values.config.GATEWAY_DNS_TEMPLATE -}}
{{- .Values.config.GATEWAY_DNS_TEMPLATE -}}
{{- else -}}
{{- printf "{podId}.%s.%s.svc.%s:%d" (include "rtc-edge.socketName" .) .Release.Namespace .Values.clusterDomain (int .Values.socket.port) -}}
{{- end -}}
{{- end -}}

{{/*
Validation that JSON schema cannot express (cross-field rules). Rendered once from configmap.yaml;
`fail` stops install/upgrade/template with one clear message.
*/}}
{{- define "rtc-edge.validate" -}}
{{- $c := .Values.config -}}
{{- $drainS := div (int64 $c.DRAIN_TIMEOUT_MS) 1000 -}}
{{- $minGrace := add $drainS 30 -}}
{{- if lt (int64 .Values.socket.terminationGracePeriodSeconds) $minGrace -}}
{{- fail (printf "socket.terminationGracePeriodSeconds=%v is too short: it must be at least config.DRAIN_TIMEOUT_MS/1000 + 30 = %d, or the kubelet kills socket pods in the middle of a drain" .Values.socket.terminationGracePeriodSeconds $minGrace) -}}
{{- end -}}
{{- $gwMin := add (div (int64 $c.GATEWAY_DRAIN_MS) 1000) (int64 .Values.gateway.preStopSleepSeconds) 5 -}}
{{- if lt (int64 .Values.gateway.terminationGracePeriodSeconds) $gwMin -}}
{{- fail (printf "gateway.terminationGracePeriodSeconds=%v is too short: it must be at least gateway.preStopSleepSeconds + config.GATEWAY_DRAIN_MS/1000 + 5 = %d" .Values.gateway.terminationGracePeriodSeconds $gwMin) -}}
{{- end -}}
{{- if gt (int64 $c.SOCKET_MIN_REPLICAS) (int64 $c.SOCKET_MAX_REPLICAS) -}}
{{- fail (printf "config.SOCKET_MIN_REPLICAS=%v is greater than config.SOCKET_MAX_REPLICAS=%v" $c.SOCKET_MIN_REPLICAS $c.SOCKET_MAX_REPLICAS) -}}
{{- end -}}
{{- if gt (int64 $c.DRAIN_WINDOW_MS) (int64 $c.DRAIN_TIMEOUT_MS) -}}
{{- fail (printf "config.DRAIN_WINDOW_MS=%v is longer than config.DRAIN_TIMEOUT_MS=%v: the drain would time out before every reconnect notice is sent" $c.DRAIN_WINDOW_MS $c.DRAIN_TIMEOUT_MS) -}}
{{- end -}}
{{- if eq (int .Values.socket.port) (int .Values.socket.adminPort) -}}
{{- fail "socket.port and socket.adminPort must differ: the admin endpoints (/drain) must never share the WebSocket port" -}}
{{- end -}}
{{- if eq (int .Values.gateway.port) (int .Values.gateway.adminPort) -}}
{{- fail "gateway.port and gateway.adminPort must differ: /metrics and /api/* must never share the client-facing port" -}}
{{- end -}}
{{- $external := or .Values.redis.url .Values.redis.existingSecret -}}
{{- if and .Values.redis.enabled $external -}}
{{- fail "redis.enabled=true bundles a Redis; set redis.enabled=false when you give redis.url or redis.existingSecret" -}}
{{- end -}}
{{- if and (not .Values.redis.enabled) (not $external) -}}
{{- fail "redis.enabled=false needs redis.url (redis://, rediss://, redis+sentinel://, redis+cluster://) or redis.existingSecret: gateways, socket nodes and the scaler share one registry" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled .Values.networkPolicy.enabled (not .Values.networkPolicy.metricsNamespace) (not .Values.networkPolicy.adminExtraFrom) -}}
{{- fail "metrics.serviceMonitor.enabled scrapes the admin ports, which the NetworkPolicies open only to networkPolicy.metricsNamespace and networkPolicy.adminExtraFrom (both empty): set networkPolicy.metricsNamespace to the namespace your Prometheus runs in, add it to networkPolicy.adminExtraFrom, or set networkPolicy.enabled=false" -}}
{{- end -}}
{{- if and .Values.redis.url .Values.redis.existingSecret -}}
{{- fail "give either redis.url or redis.existingSecret, not both" -}}
{{- end -}}
{{- end -}}

{{/* Downward API identity + the shared ConfigMap; every rtc-edge container gets this. */}}
{{- define "rtc-edge.commonEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- if not .Values.redis.enabled }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ default (include "rtc-edge.componentName" (dict "ctx" . "component" "redis-url")) .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else if .Values.redis.auth.enabled }}
{{- /* The app merges REDIS_PASSWORD into REDIS_URL (percent-encoded), so the ConfigMap's URL holds no secret. */}}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "rtc-edge.redisAuthSecretName" . }}
      key: {{ .Values.redis.auth.existingSecretKey }}
{{- end }}
{{- end -}}

{{/* The Secret holding the bundled Redis's password: redis.auth.existingSecret, or the one the chart generates. */}}
{{- define "rtc-edge.redisAuthSecretName" -}}
{{- default (include "rtc-edge.componentName" (dict "ctx" . "component" "redis-auth")) .Values.redis.auth.existingSecret -}}
{{- end -}}

{{/* Pod-level settings shared by every rtc-edge pod. Call with (dict "ctx" $ "role" .Values.<role>). */}}
{{- define "rtc-edge.podCommon" -}}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .ctx.Values.podSecurityContext | nindent 2 }}
{{- with .role.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .role.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .role.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .role.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .role.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Pod template labels: selector labels plus part-of and commonLabels, without helm.sh/chart: a chart-only
version bump must not roll every socket pod (each roll drains its connections for up to DRAIN_TIMEOUT_MS).
Call with (dict "ctx" $ "component" "x").
*/}}
{{- define "rtc-edge.podLabels" -}}
{{ include "rtc-edge.selectorLabels" . }}
app.kubernetes.io/part-of: rtc-edge
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Peers allowed to a role's /metrics (admin) port: Prometheus' namespace and networkPolicy.adminExtraFrom. */}}
{{- define "rtc-edge.metricsPeers" -}}
{{- $np := .Values.networkPolicy -}}
{{- if $np.metricsNamespace }}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ $np.metricsNamespace }}
{{- end }}
{{- with $np.adminExtraFrom }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Egress every rtc-edge pod needs: DNS and the registry (the bundled Redis pods, or networkPolicy.egress.redisCIDRs
on redisPorts for an external one), plus networkPolicy.egress.extra. Call with (dict "ctx" $ "apiServer" true|false).
*/}}
{{- define "rtc-edge.egressRules" -}}
{{- $ := .ctx -}}
{{- $eg := $.Values.networkPolicy.egress -}}
- to:
    - namespaceSelector:
        {{- toYaml $eg.dns.namespaceSelector | nindent 8 }}
      podSelector:
        {{- toYaml $eg.dns.podSelector | nindent 8 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- if $.Values.redis.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "rtc-edge.selectorLabels" (dict "ctx" $ "component" "redis") | nindent 10 }}
  ports:
    - port: {{ $.Values.redis.port }}
      protocol: TCP
{{- else }}
- ports:
    {{- range $eg.redisPorts }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $eg.redisCIDRs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}
{{- if .apiServer }}
- ports:
    {{- range $eg.apiServerPorts }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $eg.apiServerCIDRs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- end }}
{{- with $eg.extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Port (number) each role serves /metrics on: its container port `admin`. Call with (dict "ctx" $ "role" "x"). */}}
{{- define "rtc-edge.metricsPortNumber" -}}
{{- (index .ctx.Values .role).adminPort -}}
{{- end -}}
