/**
 * The chart's ValidatingAdmissionPolicy on the REAL API server (test/support/kube/plane.ts): the rendered
 * policy, binding and scaler RBAC are applied, then requests are made as the scaler's ServiceAccount with a
 * TokenRequest token. The real scaler workload does its normal work (deletion costs, scale); a label, image
 * or other annotation change by the same ServiceAccount is refused, while the same change by another
 * ServiceAccount holding the same Role, or by an admin, goes through.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AdmissionregistrationV1Api, AppsV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions, type KubernetesObject } from '@kubernetes/client-node';
import { createKubernetesWorkload, type KubernetesWorkload } from '../scaler/workload/kubernetes.js';
import { DELETION_COST_ANNOTATION } from '../src/constants.js';
import { renderChart, type Obj } from './support/helm.js';
import { PLANE_CONTROLLERS, startKubePlane, type KubePlane } from './support/kube/plane.js';
import { captureLogs } from './support/logs.js';
import { waitUntil } from './support/wait.js';
import { FAST, scalerTestConfig } from './support/scaler-session.js';

const NS = 'rtc';
const RELEASE = 'rtc-edge';
const APPLIED = new Set(['ServiceAccount', 'Role', 'RoleBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
/** A ServiceAccount bound to the scaler's own Role: same RBAC, other identity. */
const OTHER_SA = 'not-the-scaler';
// kube-controller-manager's controller that type-checks policies and writes status.typeChecking.
const POLICY_STATUS_CONTROLLER = 'validatingadmissionpolicy-status-controller';

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
  let asOther: CoreV1Api;
  let workload: KubernetesWorkload | undefined;
  let policyName = '';
  let pods: string[] = [];
  /** The policy's own denial text, as the API server words it. */
  let denied: RegExp;
  let probes = 0;
  let enforcedAfterMs = 0;

  const tokenClient = async (sa: string) => {
    const token = await admin.createNamespacedServiceAccountToken({ name: sa, namespace: NS, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
    const kc = new KubeConfig();
    kc.loadFromString(plane.kubeconfigFor(token.status!.token, sa));
    return kc;
  };

  before(async () => {
    plane = await startKubePlane({ controllers: [...PLANE_CONTROLLERS, POLICY_STATUS_CONTROLLER] });
    admin = plane.kubeConfig.makeApiClient(CoreV1Api);
    await admin.createNamespace({ body: { metadata: { name: NS } } });
    await waitUntil('default ServiceAccount', () => admin.readNamespacedServiceAccount({ name: 'default', namespace: NS }));

    const rendered = renderChart(RELEASE, NS);
    assert.equal(rendered.status, 0, rendered.stderr);
    const objects = rendered.objects.filter((o: Obj) => APPLIED.has(o.kind) && (o.kind.startsWith('Validating') || o.metadata.labels?.['app.kubernetes.io/component'] === 'scaler'));
    assert.deepEqual([...new Set(objects.map((o) => o.kind))].sort(), [...APPLIED].sort(), 'the chart renders the scaler RBAC and the policy');
    const api = KubernetesObjectApi.makeApiClient(plane.kubeConfig);
    for (const o of objects) await api.create(o as KubernetesObject);
    const applied = Date.now();
    policyName = objects.find((o) => o.kind === 'ValidatingAdmissionPolicy')!.metadata.name;
    denied = new RegExp(`ValidatingAdmissionPolicy '${policyName}' with binding '${policyName}' denied request`);

    const role = objects.find((o) => o.kind === 'Role')!.metadata.name;
    await admin.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: OTHER_SA } } });
    await plane.kubeConfig.makeApiClient(RbacAuthorizationV1Api).createNamespacedRoleBinding({
      namespace: NS,
      body: { metadata: { name: OTHER_SA }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role }, subjects: [{ kind: 'ServiceAccount', name: OTHER_SA, namespace: NS }] },
    });

    // The socket Deployment the Role names; the real ReplicaSet controller creates its pods.
    const labels = { 'app.kubernetes.io/name': 'rtc-edge', 'app.kubernetes.io/component': 'socket' };
    await plane.kubeConfig.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: NS,
      body: { metadata: { name: 'socket' }, spec: { replicas: 2, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'socket', image: 'rtc-edge:test' }] } } } },
    });
    pods = await waitUntil('2 socket pods', async () => {
      const list = await admin.listNamespacedPod({ namespace: NS, labelSelector: 'app.kubernetes.io/component=socket' });
      return list.items.length === 2 ? list.items.map((p) => p.metadata!.name!).sort() : undefined;
    });

    const scalerKc = await tokenClient(objects.find((o) => o.kind === 'ServiceAccount')!.metadata.name);
    asScaler = scalerKc.makeApiClient(CoreV1Api);
    asOther = (await tokenClient(OTHER_SA)).makeApiClient(CoreV1Api);

    // The API server applies a new policy once its informer has seen the policy and the binding (well under a
    // second here, but not at once). Until then a change is admitted, so probe with a dry run (nothing is
    // written) and a fresh label value each time (a patch that changes nothing is admitted by design), until the
    // policy itself refuses it.
    let last = '';
    await plane.explain(() =>
      waitUntil('the policy to refuse a (dry-run) label change by the scaler', async () => {
        const body = { metadata: { labels: { 'rtc-edge.test/probe': `p${++probes}` } } };
        const r = await refusal(asScaler.patchNamespacedPod({ name: pods[0]!, namespace: NS, body, dryRun: 'All' }, merge));
        last = r ? `${r.code} ${r.message}` : 'admitted';
        return r && denied.test(r.message) ? true : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message} (${probes} probes, the last one: ${last})`);
      }),
    );
    enforcedAfterMs = Date.now() - applied;
    const pod = await admin.readNamespacedPod({ name: pods[0]!, namespace: NS });
    assert.equal(pod.metadata?.labels?.['rtc-edge.test/probe'], undefined, 'the dry-run probes wrote nothing');

    workload = createKubernetesWorkload(scalerTestConfig({ podNamespace: NS, socketWorkloadName: 'socket' }), { logger: captureLogs().logger, kubeConfig: scalerKc, retry: FAST.retry, confirmTimeoutMs: 10_000 });
    await plane.explain(() => workload!.start());
  });
  after(async () => {
    await workload?.close();
    await plane?.close();
  });

  test('the policy type-checks without warnings (status written by the real status controller)', (t) =>
    plane.explain(async () => {
      t.diagnostic(`policy enforcing ${enforcedAfterMs} ms after the binding was created, after ${probes} dry-run probe(s)`);
      const adm = plane.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
      const policy = await waitUntil('the policy status', async () => {
        const p = await adm.readValidatingAdmissionPolicy({ name: policyName });
        return p.status?.observedGeneration === p.metadata?.generation ? p : undefined;
      });
      assert.deepEqual(policy.status?.typeChecking?.expressionWarnings ?? [], [], JSON.stringify(policy.status));
      const binding = await adm.readValidatingAdmissionPolicyBinding({ name: policyName });
      assert.deepEqual(binding.spec?.validationActions, ['Deny']);
    }));

  test("the scaler's normal work is not blocked: the real workload writes deletion costs (conditional on resourceVersion), sees them on its watch, and scales", () =>
    plane.explain(async () => {
      assert.equal((await workload!.observe()).replicas, 2);
      const written = await workload!.setDeletionCosts(new Map([[pods[0]!, 7], [pods[1]!, 0]]));
      assert.equal(written, 2);
      for (const [name, cost] of [[pods[0]!, '7'], [pods[1]!, '0']] as const) {
        const pod = await admin.readNamespacedPod({ name, namespace: NS });
        assert.equal(pod.metadata?.annotations?.[DELETION_COST_ANNOTATION], cost);
      }
      // A second round changes an existing cost (the update path, not only the first write).
      assert.equal(await workload!.setDeletionCosts(new Map([[pods[0]!, 3]])), 1);
      assert.equal((await admin.readNamespacedPod({ name: pods[0]!, namespace: NS })).metadata?.annotations?.[DELETION_COST_ANNOTATION], '3');
      // The scale subresource is a Deployment write: outside the policy's rules.
      assert.equal(await workload!.scale(2, 3), true);
      const scale = await plane.kubeConfig.makeApiClient(AppsV1Api).readNamespacedDeploymentScale({ name: 'socket', namespace: NS });
      assert.equal(scale.spec?.replicas, 3);
    }));

  test('a label, image, other-annotation or non-integer cost change by the scaler ServiceAccount is refused; the same changes by another ServiceAccount with the same Role, or an admin, are not', () =>
    plane.explain(async () => {
      const name = pods[1]!;
      const label = (v: string) => ({ metadata: { labels: { team: v } } });
      const image = (v: string) => [{ op: 'replace', path: '/spec/containers/0/image', value: v }];
      const annotation = (v: string) => ({ metadata: { annotations: { 'example.com/x': v } } });
      const cases: Array<{ what: string; body: object; opts: typeof merge; says: RegExp }> = [
        { what: 'label', body: label('evil'), opts: merge, says: /may not change a pod's labels/ },
        { what: 'image', body: image('evil:1'), opts: jsonPatch, says: /may not change a pod's spec/ },
        { what: 'another annotation', body: annotation('evil'), opts: merge, says: /may change no pod annotation but controller\.kubernetes\.io\/pod-deletion-cost/ },
        { what: 'cost and a label at once', body: { metadata: { labels: { team: 'evil' }, annotations: { [DELETION_COST_ANNOTATION]: '3' } } }, opts: merge, says: /may not change a pod's labels/ },
        // The API server's own pod validation refuses this one before the policy runs.
        { what: 'a non-integer cost', body: { metadata: { annotations: { [DELETION_COST_ANNOTATION]: 'lots' } } }, opts: merge, says: /must be a 32bit integer/ },
      ];
      for (const c of cases) {
        const before = await admin.readNamespacedPod({ name, namespace: NS });
        const r = await refusal(asScaler.patchNamespacedPod({ name, namespace: NS, body: c.body }, c.opts));
        assert.ok(r, `${c.what}: the scaler's patch went through`);
        assert.match(r.message, c.says, `${c.what}: ${r.code} ${r.message}`);
        if (c.what !== 'a non-integer cost') assert.match(r.message, denied, `${c.what}: refused by the policy itself`);
        assert.ok(r.code === 403 || r.code === 422, `${c.what}: status ${r.code}`);
        const afterPatch = await admin.readNamespacedPod({ name, namespace: NS });
        assert.equal(afterPatch.metadata?.resourceVersion, before.metadata?.resourceVersion, `${c.what}: the pod is unchanged`);
      }
      // Controls: the policy binds only the scaler's identity (not its RBAC), and the changes are valid pod updates.
      for (const [who, core, tag] of [[OTHER_SA, asOther, 'other'], ['admin', admin, 'ops']] as const) {
        await core.patchNamespacedPod({ name, namespace: NS, body: label(tag) }, merge);
        await core.patchNamespacedPod({ name, namespace: NS, body: image(`rtc-edge:${tag}`) }, jsonPatch);
        await core.patchNamespacedPod({ name, namespace: NS, body: annotation(tag) }, merge);
        const pod = await admin.readNamespacedPod({ name, namespace: NS });
        assert.deepEqual([pod.metadata?.labels?.team, pod.spec?.containers[0]?.image, pod.metadata?.annotations?.['example.com/x']], [tag, `rtc-edge:${tag}`, tag], who);
      }
      // And the scaler can still write the cost on the pod the others changed.
      assert.equal(await workload!.setDeletionCosts(new Map([[name, 5]])), 1);
      assert.equal((await admin.readNamespacedPod({ name, namespace: NS })).metadata?.annotations?.[DELETION_COST_ANNOTATION], '5');
    }));

  test('the policy judges the change, not the request: a patch by the scaler that sets a label to its current value is admitted and writes nothing', () =>
    plane.explain(async () => {
      // Why the earlier probe never saw a refusal: its first label patch landed before the policy was in force,
      // and every later one carried the same value, so it changed nothing and was rightly admitted.
      const name = pods[0]!;
      const before = await admin.readNamespacedPod({ name, namespace: NS });
      const component = before.metadata?.labels?.['app.kubernetes.io/component'];
      assert.equal(component, 'socket');
      await asScaler.patchNamespacedPod({ name, namespace: NS, body: { metadata: { labels: { 'app.kubernetes.io/component': component } } } }, merge);
      const afterPatch = await admin.readNamespacedPod({ name, namespace: NS });
      assert.equal(afterPatch.metadata?.resourceVersion, before.metadata?.resourceVersion);
      const r = await refusal(asScaler.patchNamespacedPod({ name, namespace: NS, body: { metadata: { labels: { 'app.kubernetes.io/component': 'other' } } } }, merge));
      assert.match(r?.message ?? 'admitted', denied);
    }));
});
