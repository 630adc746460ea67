/**
 * The chart against a real API server: `helm install -n rtc --create-namespace --wait` with the default
 * values and every ci/*-values.yaml, pods run by the process kubelet; `helm test` passes; `helm upgrade`
 * with a gateway-only value rolls only the gateway; `helm uninstall` leaves nothing in the namespace.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { startRedis, type RedisServer } from './support/redis.js';
import { CHART, startCluster, waitFor, type TestCluster } from './support/kube/cluster.js';

const NS = 'rtc';
const RELEASE = 'rtc-edge';

/** Kinds a release or its pods leave in a namespace; `helm uninstall` must remove every one. */
const KINDS: Array<[string, string]> = [
  ['v1', 'Pod'], ['v1', 'Service'], ['v1', 'ConfigMap'], ['v1', 'Secret'], ['v1', 'ServiceAccount'],
  ['apps/v1', 'Deployment'], ['apps/v1', 'ReplicaSet'], ['discovery.k8s.io/v1', 'EndpointSlice'],
  ['rbac.authorization.k8s.io/v1', 'Role'], ['rbac.authorization.k8s.io/v1', 'RoleBinding'], ['coordination.k8s.io/v1', 'Lease'],
  ['policy/v1', 'PodDisruptionBudget'], ['networking.k8s.io/v1', 'NetworkPolicy'], ['networking.k8s.io/v1', 'Ingress'],
];

/** Everything of KINDS in the namespace, as `Kind/name`, except what the namespace itself brings (`default` ServiceAccount). */
async function leftovers(c: TestCluster): Promise<string[]> {
  const api = KubernetesObjectApi.makeApiClient(c.plane.kubeConfig);
  const out: string[] = [];
  for (const [apiVersion, kind] of KINDS) {
    const list = await api.list<KubernetesObject>(apiVersion, kind, NS);
    for (const o of list.items) if (!(kind === 'ServiceAccount' && o.metadata?.name === 'default')) out.push(`${kind}/${o.metadata?.name}`);
  }
  return out.sort();
}

const variants = [
  { name: 'default values', files: [] as string[] },
  ...fs.readdirSync(path.join(CHART, 'ci')).filter((f) => f.endsWith('-values.yaml')).sort().map((f) => ({ name: `ci/${f}`, files: [path.join(CHART, 'ci', f)] })),
];

describe('helm chart on a real control plane', () => {
  let c: TestCluster;
  let redis: RedisServer;

  before(async () => {
    c = await startCluster();
    redis = await startRedis();
  });
  after(async () => {
    await c?.close();
    await redis?.stop();
  });

  /** Values that point the external-Redis variants at a real redis-server (their example hosts do not exist here); the Secret it created. */
  async function externalRedis(files: string[]): Promise<{ sets: string[]; secret?: string }> {
    const text = files.map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    if (/existingSecret:\s*\S/.test(text)) {
      const key = /existingSecretKey:\s*(\S+)/.exec(text)?.[1] ?? 'REDIS_URL';
      const name = /existingSecret:\s*(\S+)/.exec(text)![1]!;
      await c.core.createNamespace({ body: { metadata: { name: NS } } }).catch(() => undefined);
      await c.core.createNamespacedSecret({ namespace: NS, body: { metadata: { name }, stringData: { [key]: redis.url } } });
      return { sets: [], secret: name };
    }
    if (/url:\s*\S/.test(text)) return { sets: ['--set', `redis.url=${redis.url}`] };
    return { sets: [] };
  }

  async function install(files: string[], extra: string[] = []) {
    const r = await c.helm(['install', RELEASE, CHART, '-n', NS, '--create-namespace', '--wait', '--timeout', '3m', ...files.flatMap((f) => ['-f', f]), ...extra]);
    assert.equal(r.status, 0, `helm install failed:\n${r.stderr}`);
  }

  async function uninstallLeavesNothing(operatorSecret: string | undefined) {
    const r = await c.helm(['uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '2m']);
    assert.equal(r.status, 0, `helm uninstall failed:\n${r.stderr}`);
    // The operator's own Redis Secret (existing-secret values) is not the release's.
    if (operatorSecret) await c.core.deleteNamespacedSecret({ name: operatorSecret, namespace: NS });
    const left = await waitFor('an empty namespace', async () => {
      const l = await leftovers(c);
      return l.length === 0 ? l : undefined;
    }, 60_000, 500).catch(async () => leftovers(c));
    assert.deepEqual(left, [], 'helm uninstall left objects behind');
  }

  /** Pod uids and ReplicaSet names of one component. */
  async function generation(component: string) {
    const selector = `app.kubernetes.io/component=${component}`;
    const pods = (await c.pods(NS, selector)).map((p) => p.metadata!.uid!).sort();
    const sets = (await c.apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: selector })).items.map((r) => r.metadata!.name!).sort();
    return { pods, sets };
  }

  /** A gateway-only value: the gateway rolls (new ReplicaSet, new pods), socket, scaler and Redis pods stay. */
  async function upgradeRollsOnlyTheGateway() {
    // The scaler first raises the socket Deployment to SOCKET_MIN_REPLICAS (2): let that settle.
    await waitFor('2 socket pods', async () => (await c.pods(NS, 'app.kubernetes.io/component=socket')).length === 2);
    const before = Object.fromEntries(await Promise.all(['gateway', 'socket', 'scaler', 'redis'].map(async (k) => [k, await generation(k)] as const)));
    const r = await c.helm(['upgrade', RELEASE, CHART, '-n', NS, '--reuse-values', '--set', 'config.GATEWAY_UPSTREAM_TIMEOUT_MS=4000', '--wait', '--timeout', '3m']);
    assert.equal(r.status, 0, `helm upgrade failed:\n${r.stderr}`);
    const gateway = await waitFor('the old gateway pods to go', async () => {
      const g = await generation('gateway');
      return g.pods.length === before.gateway!.pods.length && g.pods.every((u) => !before.gateway!.pods.includes(u)) ? g : undefined;
    }, 60_000, 200);
    assert.equal(gateway.sets.length, before.gateway!.sets.length + 1, 'the gateway rolled to a new ReplicaSet');
    for (const k of ['socket', 'scaler', 'redis']) assert.deepEqual(await generation(k), before[k], `${k} pods must not roll for a gateway-only value`);
    const [pod] = await c.pods(NS, 'app.kubernetes.io/component=gateway');
    const env = pod!.spec!.containers[0]!.envFrom!.map((e) => e.configMapRef!.name!);
    const values = await Promise.all(env.map((name) => c.core.readNamespacedConfigMap({ name, namespace: NS })));
    assert.ok(values.some((cm) => cm.data?.GATEWAY_UPSTREAM_TIMEOUT_MS === '4000'), 'the new gateway pods read the new value');
  }

  for (const v of variants) {
    it(`${v.name}: install --wait, helm test,${v.files.length === 0 ? ' a gateway-only upgrade rolls only the gateway,' : ''} uninstall leaves nothing`, () =>
      c.explain(async () => {
        const external = await externalRedis(v.files);
        await install(v.files, external.sets);
        const t = await c.helm(['test', RELEASE, '-n', NS, '--timeout', '3m']);
        const testPod = /TEST SUITE:\s+(\S+)/.exec(t.stdout)?.[1] ?? `${RELEASE}-test`;
        assert.equal(t.status, 0, `helm test failed:\n${t.stdout}\n${t.stderr}\n${c.kubelet.logs(testPod).join('\n')}`);
        assert.match(t.stdout, /Phase:\s+Succeeded/);
        if (v.files.length === 0) await upgradeRollsOnlyTheGateway();
        await uninstallLeavesNothing(external.secret);
      }));
  }
});
