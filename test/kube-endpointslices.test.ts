/**
 * The gateway's `endpointslices` resolver through real EndpointSlices written by the real endpointslice
 * controller from the pod status the process kubelet reports: pinned connects reach the pod a slice names;
 * while a pod drains (terminating), its slice endpoint says so and pinned connects get 503 pod_draining;
 * once it is gone, 404.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { DiscoveryV1Api, type V1EndpointSlice } from '@kubernetes/client-node';
import WebSocket from 'ws';
import type { Registry } from '../src/registry/registry.js';
import { CHART, startCluster, waitFor, type TestCluster } from './support/kube/cluster.js';
import { Clients, GATEWAYS, NS, installEdge, releaseRegistry, socketsLive } from './support/kube/edge.js';

const SERVICE = 'rtc-socket';
const WS_PORT = 7000;

/** The upgrade answer of a pinned connect: 101 (with the welcome's podId) or the HTTP error status and code. */
function pinned(gatewayPort: number, podId: string): Promise<{ status: number; code?: string; podId?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${gatewayPort}/ws/${podId}/connect`);
    ws.once('message', (data) => {
      resolve({ status: 101, podId: (JSON.parse(String(data)) as { podId: string }).podId });
      ws.close();
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(body || '{}') as { error?: string }).error }));
    });
    ws.once('error', () => undefined);
  });
}

describe('endpointslices resolver on real EndpointSlices', () => {
  let c: TestCluster;
  let registry: Registry;
  let gatewayPort: number;
  let slices: DiscoveryV1Api;

  const endpoints = async () => {
    const list = await slices.listNamespacedEndpointSlice({ namespace: NS, labelSelector: `kubernetes.io/service-name=${SERVICE}` });
    return list.items.flatMap((s: V1EndpointSlice) => (s.endpoints ?? []).map((e) => ({ slice: s, e })));
  };

  before(async () => {
    c = await startCluster();
    await c.explain(async () => {
      // The drain lasts a few seconds so its terminating phase can be watched.
      await installEdge(c, ['config.DRAIN_WINDOW_MS=4000', 'config.SOCKET_MIN_REPLICAS=3'], [path.join(CHART, 'ci/endpointslices-values.yaml')]);
      registry = await releaseRegistry(c);
      const [gateway] = await c.pods(NS, GATEWAYS);
      gatewayPort = c.kubelet.port(gateway!.metadata!.name!, 'http');
      slices = c.plane.kubeConfig.makeApiClient(DiscoveryV1Api);
    });
  });
  after(async () => {
    await registry?.close();
    await c?.close();
  });

  it('the real controller writes one endpoint per Ready socket pod, with the pod IP the kubelet reported', () =>
    c.explain(async () => {
      const pods = await socketsLive(c, registry, 3);
      const eps = await waitFor('3 ready endpoints', async () => {
        const all = await endpoints();
        return all.length === 3 && all.every(({ e }) => e.conditions?.ready === true) ? all : undefined;
      });
      for (const { slice, e } of eps) {
        assert.equal(slice.metadata?.labels?.['endpointslice.kubernetes.io/managed-by'], 'endpointslice-controller.k8s.io');
        assert.deepEqual(slice.ports?.map((p) => [p.name, p.port]), [['ws', WS_PORT]]);
        const pod = pods.find((p) => p.metadata!.name === e.targetRef?.name);
        assert.ok(pod, `endpoint of ${e.targetRef?.name} is a socket pod`);
        assert.deepEqual(e.addresses, [pod!.status!.podIP]);
        assert.equal(pod!.status!.podIP, c.kubelet.podIP(pod!.metadata!.name!));
      }
    }));

  it('pinned connects reach the pod its EndpointSlice names', () =>
    c.explain(async () => {
      for (const { e } of await endpoints()) {
        const r = await pinned(gatewayPort, e.targetRef!.name!);
        assert.deepEqual(r, { status: 101, podId: e.targetRef!.name });
      }
      assert.deepEqual(await pinned(gatewayPort, 'socket-nope'), { status: 404, code: 'pod_not_found' });
    }));

  it('a draining pod: its endpoint turns terminating, its pinned connects get 503 pod_draining, its clients a reconnect; gone: 404', () =>
    c.explain(async () => {
      const [{ e }] = await endpoints();
      const victim = e!.targetRef!.name!;
      const clients = new Clients(() => gatewayPort);
      await clients.pin(victim, 3);
      await c.core.deleteNamespacedPod({ name: victim, namespace: NS });
      const ep = await waitFor('a terminating endpoint', async () => (await endpoints()).find(({ e: x }) => x.targetRef?.name === victim && x.conditions?.terminating === true), 10_000, 50);
      assert.equal(ep.e.conditions?.ready, false);
      const during = await pinned(gatewayPort, victim);
      assert.deepEqual(during, { status: 503, code: 'pod_draining' });
      await waitFor('the drain to close the pinned clients', () => clients.on(victim) === 0, 15_000);
      assert.deepEqual(clients.closeCodes(victim), [1012, 1012, 1012], 'each got its paced reconnect close');
      await waitFor('the endpoint to go', async () => !(await endpoints()).some(({ e: x }) => x.targetRef?.name === victim), 30_000, 200);
      assert.deepEqual(await pinned(gatewayPort, victim), { status: 404, code: 'pod_not_found' });
      await clients.close();
    }));
});
