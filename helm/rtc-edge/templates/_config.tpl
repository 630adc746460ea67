{{/*
Per-role configuration. Each role gets its own ConfigMap holding only the variables that role reads, and
its pods carry a checksum of only that ConfigMap: changing a gateway or scaler setting never rolls (and so
never drains) the socket pods. test/helm.test.ts checks these lists against the variables each role's code
reads, and that every variable the chart sets belongs to at least one role.
*/}}
{{- define "rtc-edge.roleKeys" -}}
gateway: [LOG_LEVEL, REDIS_URL, REDIS_PREFIX, HEARTBEAT_MS, GATEWAY_PORT, GATEWAY_ADMIN_PORT, SOCKET_PORT, SOCKET_SERVICE_NAME, GATEWAY_RESOLVER, GATEWAY_DNS_TEMPLATE, GATEWAY_POD_CIDRS, GATEWAY_TRUSTED_PROXIES, GATEWAY_UPSTREAM_TIMEOUT_MS, GATEWAY_HANDSHAKE_TIMEOUT_MS, GATEWAY_MAX_CONNECTIONS, GATEWAY_MAX_HEADER_BYTES, GATEWAY_DRAIN_MS, GATEWAY_REGISTRY_STALE_MS, GATEWAY_ASSIGN_STRATEGY, SOCKET_TARGET_CONNECTIONS]
socket: [LOG_LEVEL, REDIS_URL, REDIS_PREFIX, HEARTBEAT_MS, SOCKET_PORT, ADMIN_PORT, SOCKET_MAX_PAYLOAD_BYTES, SOCKET_MAX_BACKPRESSURE_BYTES, SOCKET_IDLE_TIMEOUT_S, SOCKET_HANDLER, SOCKET_UPGRADE_TIMEOUT_MS, SOCKET_TRUSTED_PROXIES, SOCKET_NOT_READY_MAX_MS, SOCKET_KEY_GRACE_MS, DRAIN_WINDOW_MS, DRAIN_TIMEOUT_MS]
scaler: [LOG_LEVEL, REDIS_URL, REDIS_PREFIX, HEARTBEAT_MS, ADMIN_PORT, SCALER_WORKLOAD, SOCKET_WORKLOAD_NAME, SCALER_LEASE_NAME, SOCKET_MIN_REPLICAS, SOCKET_MAX_REPLICAS, SOCKET_TARGET_CONNECTIONS, SCALER_INTERVAL_MS, SCALE_IN_STABILIZATION_MS, SCALE_IN_MAX_STEP, SCALER_KEY_WEIGHT]
{{- end -}}

{{/* Every variable the chart sets for a role, as strings: derived ones plus `config`. Call with (dict "ctx" $ "role" "socket"). */}}
{{- define "rtc-edge.roleEnv" -}}
{{- $ := .ctx -}}
{{- $all := dict
  "GATEWAY_PORT" (int $.Values.gateway.port | toString)
  "GATEWAY_ADMIN_PORT" (int $.Values.gateway.adminPort | toString)
  "SOCKET_PORT" (int $.Values.socket.port | toString)
  "ADMIN_PORT" (ternary (int $.Values.scaler.adminPort) (int $.Values.socket.adminPort) (eq .role "scaler") | toString)
  "SCALER_WORKLOAD" "kubernetes"
  "SOCKET_WORKLOAD_NAME" (include "rtc-edge.socketName" $)
  "SOCKET_SERVICE_NAME" (include "rtc-edge.socketName" $)
  "SCALER_LEASE_NAME" (include "rtc-edge.leaseName" $)
  "GATEWAY_DNS_TEMPLATE" (include "rtc-edge.dnsTemplate" $)
  "GATEWAY_POD_CIDRS" (join "," $.Values.gateway.podCIDRs)
  "GATEWAY_TRUSTED_PROXIES" (join "," $.Values.gateway.trustedProxies)
  "SOCKET_TRUSTED_PROXIES" (join "," (default $.Values.gateway.podCIDRs $.Values.socket.trustedProxies))
-}}
{{- if $.Values.redis.enabled -}}
{{- $_ := set $all "REDIS_URL" (printf "redis://%s:%d" (include "rtc-edge.redisName" $) (int $.Values.redis.port)) -}}
{{- end -}}
{{- range $key, $value := $.Values.config -}}
{{- if and (ne $key "SCALER_LEASE_NAME") (ne $key "GATEWAY_DNS_TEMPLATE") (ne (toString $value) "") -}}
{{- $v := $value -}}{{- if kindIs "float64" $v -}}{{- $v = int64 $v -}}{{- end -}}
{{- $_ := set $all $key (toString $v) -}}
{{- end -}}
{{- end -}}
{{- $roles := fromYaml (include "rtc-edge.roleKeys" $) -}}
{{- range $key, $_ := $all -}}
{{- if not (or (has $key $roles.gateway) (has $key $roles.socket) (has $key $roles.scaler)) -}}
{{- fail (printf "config.%s is read by no role: list it under its role(s) in templates/_config.tpl" $key) -}}
{{- end -}}
{{- end -}}
{{- $out := dict -}}
{{- range $key := get $roles .role -}}
{{- if hasKey $all $key -}}{{- $_ := set $out $key (get $all $key) -}}{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* A role's ConfigMap name: <fullname>-<role>-config. Call with (dict "ctx" $ "role" "socket"). */}}
{{- define "rtc-edge.configMapName" -}}
{{- include "rtc-edge.componentName" (dict "ctx" .ctx "component" (printf "%s-config" .role)) -}}
{{- end -}}

{{/* Pod annotation that rolls a role's pods when, and only when, that role's ConfigMap changes. Call with (dict "ctx" $ "role" "socket"). */}}
{{- define "rtc-edge.configChecksum" -}}
checksum/config: {{ include "rtc-edge.roleEnv" . | sha256sum }}
{{- end -}}
