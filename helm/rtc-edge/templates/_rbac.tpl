{{/*
The scaler's Role rules. Keep in step with scaler/workload-kubernetes.ts and scaler/leader.ts:
test/helm.test.ts fails when a rule is missing or unused.
*/}}
{{- define "rtc-edge.scalerRules" -}}
{{- $socket := include "rtc-edge.socketName" . -}}
{{- $lease := include "rtc-edge.leaseName" . -}}
# Socket pods: list and watch them, write the pod-deletion-cost annotation just before a scale-in.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "patch"]
# The socket Deployment (its selector and status) and its scale subresource.
- apiGroups: ["apps"]
  resources: ["deployments"]
  resourceNames: [{{ $socket | quote }}]
  verbs: ["get"]
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  resourceNames: [{{ $socket | quote }}]
  verbs: ["get", "patch"]
# Leader election: the chart creates the Lease (templates/scaler-lease.yaml); `create` (which cannot be
# limited by name) lets the scaler recreate it if someone deleted it. Read and renew only that Lease.
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: [{{ $lease | quote }}]
  verbs: ["get", "update"]
{{- end -}}

{{/* The gateway's rules, only with GATEWAY_RESOLVER=endpointslices. */}}
{{- define "rtc-edge.gatewayRules" -}}
# The headless socket Service's EndpointSlices (targetRef.name → address, ready/serving/terminating).
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list", "watch"]
{{- end -}}
