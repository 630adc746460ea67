/**
 * The chart's ValidatingAdmissionPolicy on the REAL API server (test/support/kube/plane.ts): the rendered
 * policy, binding and scaler RBAC are applied, then requests are made as the scaler's ServiceAccount with a
 * TokenRequest token. The real scaler workload writes deletion costs (allowed); a label, image or other
 * annotation change by the same ServiceAccount is refused, while the same change by an admin goes through.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AppsV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type KubernetesObject } from '@kubernetes/client-node';
import { createKubernetesWorkload, type KubernetesWorkload } from '../scaler/workload/kubernetes.js';
import { DELETION_COST_ANNOTATION } from '../src/constants.js';
import { renderChart, type Obj } from './support/helm.js';
import { startKubePlane, type KubePlane } from './support/kube/plane.js';
import { captureLogs } from './support/logs.js';
import { waitUntil } from './support/wait.js';
import { FAST, scalerTestConfig } from './support/scaler-session.js';

const NS = 'rtc';
const RELEASE = 'rtc-edge';
const APPLIED = new Set(['ServiceAccount', 'Role', 'RoleBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);


/** The refusal of a rejected call: HTTP status and the API server's message. */
async function refusal(call: Promise<unknown>): Promise<{ code: number; message: string } | undefined> {
  try {
    await call;
    return undefined;
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    const body = typeof e.body === 'string' ? (JSON.parse(e.body) as { message?: string }) : (e.body as { message?: string } | undefined);
    return { code: e.code ?? 0, message: body?.message ?? String(err) };
  }
}

const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

test('the policy is on by default and off with scaler.admissionPolicy.enabled=false', () => {
  const kinds = (sets: string[]) => renderChart(RELEASE, NS, [], sets).objects.map((o) => o.kind);
  assert.ok(kinds([]).includes('ValidatingAdmissionPolicy') && kinds([]).includes('ValidatingAdmissionPolicyBinding'));
  const off = kinds(['scaler.admissionPolicy.enabled=false']);
  assert.equal(off.includes('ValidatingAdmissionPolicy') || off.includes('ValidatingAdmissionPolicyBinding'), false);
});

describe('ValidatingAdmissionPolicy on the real API server: the scaler may change only the deletion cost', () => {
  let plane: KubePlane;
  let admin: CoreV1Api;
  let asScaler: CoreV1Api;
  let workload: KubernetesWorkload | undefined;
  let pods: string[] = [];

  before(async () => {
    plane = await startKubePlane();
    admin = plane.kubeConfig.makeApiClient(CoreV1Api);
    await admin.createNamespace({ body: { metadata: { name: NS } } });
    await waitUntil('default ServiceAccount', () => admin.readNamespacedServiceAccount({ name: 'default', namespace: NS }));

    const rendered = renderChart(RELEASE, NS);
    assert.equal(rendered.status, 0, rendered.stderr);
    const objects = rendered.objects.filter((o: Obj) => APPLIED.has(o.kind) && (o.kind.startsWith('Validating') || o.metadata.labels?.['app.kubernetes.io/component'] === 'scaler'));
    assert.deepEqual([...new Set(objects.map((o) => o.kind))].sort(), [...APPLIED].sort(), 'the chart renders the scaler RBAC and the policy');
    const api = KubernetesObjectApi.makeApiClient(plane.kubeConfig);
    for (const o of objects) await api.create(o as KubernetesObject);

    // The socket Deployment the Role names; the real ReplicaSet controller creates its pods.
    const labels = { 'app.kubernetes.io/name': 'rtc-edge', 'app.kubernetes.io/component': 'socket' };
    await plane.kubeConfig.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: NS,
      body: { metadata: { name: 'socket' }, spec: { replicas: 2, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'socket', image: 'rtc-edge:test' }] } } } },
    });
    pods = await waitUntil('2 socket pods', async () => {
      const list = await admin.listNamespacedPod({ namespace: NS, labelSelector: 'app.kubernetes.io/component=socket' });
      return list.items.length === 2 ? list.items.map((p) => p.metadata!.name!) : undefined;
    });

    const sa = objects.find((o) => o.kind === 'ServiceAccount')!.metadata.name;
    const token = await admin.createNamespacedServiceAccountToken({ name: sa, namespace: NS, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
    const kc = new KubeConfig();
    kc.loadFromString(plane.kubeconfigFor(token.status!.token, sa));
    asScaler = kc.makeApiClient(CoreV1Api);
    workload = createKubernetesWorkload(scalerTestConfig({ podNamespace: NS, socketWorkloadName: 'socket' }), { logger: captureLogs().logger, kubeConfig: kc, retry: FAST.retry, confirmTimeoutMs: 10_000 });
    await plane.explain(() => workload!.start());

    // A policy takes effect once the API server has compiled it and seen its binding: wait for the first refusal.
    const probe = { metadata: { labels: { 'rtc-edge.test/probe': 'x' } } };
    await waitUntil('the policy to refuse a label change', async () => ((await refusal(asScaler.patchNamespacedPod({ name: pods[0]!, namespace: NS, body: probe }, merge))) ? true : undefined));
  });
  after(async () => {
    await workload?.close();
    await plane?.close();
  });

  test('the real scaler workload writes deletion costs as the scaler ServiceAccount (conditional on resourceVersion) and sees them on its watch', () =>
    plane.explain(async () => {
      const written = await workload!.setDeletionCosts(new Map([[pods[0]!, 7], [pods[1]!, 0]]));
      assert.equal(written, 2);
      for (const [name, cost] of [[pods[0]!, '7'], [pods[1]!, '0']] as const) {
        const pod = await admin.readNamespacedPod({ name, namespace: NS });
        assert.equal(pod.metadata?.annotations?.[DELETION_COST_ANNOTATION], cost);
      }
    }));

  test('a label, image, other-annotation or non-integer cost change by the scaler ServiceAccount is refused; the same change by an admin is not', () =>
    plane.explain(async () => {
      const name = pods[1]!;
      const cases: Array<{ what: string; body: object; opts: typeof merge; says: RegExp }> = [
        { what: 'label', body: { metadata: { labels: { team: 'evil' } } }, opts: merge, says: /may not change a pod's labels/ },
        { what: 'image', body: [{ op: 'replace', path: '/spec/containers/0/image', value: 'evil:1' }], opts: jsonPatch, says: /may not change a pod's spec/ },
        { what: 'another annotation', body: { metadata: { annotations: { 'example.com/x': 'y' } } }, opts: merge, says: /may change no pod annotation but controller\.kubernetes\.io\/pod-deletion-cost/ },
        { what: 'cost and a label at once', body: { metadata: { labels: { team: 'evil' }, annotations: { [DELETION_COST_ANNOTATION]: '3' } } }, opts: merge, says: /may not change a pod's labels/ },
        // The API server's own pod validation refuses this one before the policy runs.
        { what: 'a non-integer cost', body: { metadata: { annotations: { [DELETION_COST_ANNOTATION]: 'lots' } } }, opts: merge, says: /must be a 32bit integer/ },
      ];
      for (const c of cases) {
        const before = await admin.readNamespacedPod({ name, namespace: NS });
        const r = await refusal(asScaler.patchNamespacedPod({ name, namespace: NS, body: c.body }, c.opts));
        assert.ok(r, `${c.what}: the scaler's patch went through`);
        assert.match(r.message, c.says, `${c.what}: ${r.code} ${r.message}`);
        assert.ok(r.code === 403 || r.code === 422, `${c.what}: status ${r.code}`);
        const afterPatch = await admin.readNamespacedPod({ name, namespace: NS });
        assert.equal(afterPatch.metadata?.resourceVersion, before.metadata?.resourceVersion, `${c.what}: the pod is unchanged`);
      }
      // Control: the policy binds only the scaler, and the changes themselves are valid pod updates.
      await admin.patchNamespacedPod({ name, namespace: NS, body: [{ op: 'replace', path: '/spec/containers/0/image', value: 'rtc-edge:next' }] }, jsonPatch);
      await admin.patchNamespacedPod({ name, namespace: NS, body: { metadata: { labels: { team: 'ops' } } } }, merge);
      const pod = await admin.readNamespacedPod({ name, namespace: NS });
      assert.equal(pod.spec?.containers[0]?.image, 'rtc-edge:next');
      assert.equal(pod.metadata?.labels?.team, 'ops');
      // And the scaler can still write the cost on the pod the admin changed.
      assert.equal(await workload!.setDeletionCosts(new Map([[name, 5]])), 1);
      assert.equal((await admin.readNamespacedPod({ name, namespace: NS })).metadata?.annotations?.[DELETION_COST_ANNOTATION], '5');
    }));
});
