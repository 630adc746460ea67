// The process kubelet's downward API for the chart's gateway: GATEWAY_WORKERS from resourceFieldRef limits.cpu,
// rounded up as the real kubelet does, read by the real loadConfig. (No API server needed: the gateway's env
// names no ConfigMap or Secret key, and envFrom is left out here.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CoreV1Api, V1Container, V1Pod } from '@kubernetes/client-node';
import { loadConfig } from '../src/config.js';
import { renderChart } from './support/helm.js';
import { containerEnv } from './support/kube/pod-spec.js';

const NO_API = {} as CoreV1Api;

async function workers(sets: string[]): Promise<number> {
  const r = renderChart('edge', 'rtc', [], sets);
  assert.equal(r.status, 0, r.stderr);
  const dep = r.objects.find((o) => o.kind === 'Deployment' && o.metadata.name.endsWith('gateway'))!;
  const container = { ...(dep.spec.template.spec.containers as V1Container[]).find((c) => c.name === 'gateway')!, envFrom: [] };
  // Only the variables the downward API fills: the chart's Secret refs need an API server, which this test has not.
  container.env = container.env!.filter((e) => !e.valueFrom?.secretKeyRef && !e.valueFrom?.configMapKeyRef);
  const pod: V1Pod = { metadata: { name: 'edge-gateway-5d8f7c9b4-x2x7k', namespace: 'rtc', uid: 'u' }, spec: { containers: [container] } };
  const env = await containerEnv(NO_API, pod, container, { podIP: '10.1.2.3', hostIP: '10.0.0.1' });
  return loadConfig(env, 'gateway').gatewayWorkers;
}

test('the process kubelet gives the chart\'s gateway one worker per CPU of its limit, rounded up', async () => {
  assert.equal(await workers(['gateway.resources.limits.cpu=1500m']), 2);
  assert.equal(await workers(['gateway.resources.limits.cpu=3']), 3);
  assert.equal(await workers([]), 1, 'no CPU limit: the chart sets 1');
});
