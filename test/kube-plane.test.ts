/**
 * The real control plane of test/support/kube/plane.ts: the real ReplicaSet controller creates a
 * Deployment's pods, the real RBAC authorizer judges a TokenRequest token, and close() leaves nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { AppsV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api, VersionApi } from '@kubernetes/client-node';
import { KUBE_VERSION, startKubePlane, type KubePlane } from './support/kube/plane.js';
import { waitUntil } from './support/wait.js';

const NS = 'smoke';


const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

describe('real Kubernetes control plane', () => {
  let plane: KubePlane;
  let core: CoreV1Api;

  before(async () => {
    plane = await startKubePlane();
    core = plane.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    // The serviceaccount controller gives every namespace its `default` ServiceAccount; pods need it.
    await waitUntil('default ServiceAccount', () => core.readNamespacedServiceAccount({ name: 'default', namespace: NS }));
  });
  after(() => plane?.close());

  it('serves the pinned version with TLS verified against its own serving certificate', () =>
    plane.explain(async () => {
      const res = await fetch(`${plane.server}/version`).catch((err: Error) => err);
      assert.ok(res instanceof Error, 'plain fetch must not trust the self-signed certificate');
      const version = await plane.kubeConfig.makeApiClient(VersionApi).getCode();
      assert.equal(version.gitVersion, KUBE_VERSION, 'setup.sh builds with the version ldflags (helm and kubectl parse it)');
    }));

  it('the real ReplicaSet controller creates the pods of a Deployment', () =>
    plane.explain(async () => {
      const apps = plane.kubeConfig.makeApiClient(AppsV1Api);
      const labels = { app: 'smoke' };
      await apps.createNamespacedDeployment({
        namespace: NS,
        body: { metadata: { name: 'smoke' }, spec: { replicas: 3, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'rtc-edge' }] } } } },
      });
      const pods = await waitUntil('3 pods', async () => {
        const list = await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=smoke' });
        return list.items.length === 3 ? list.items : undefined;
      });
      const rs = await apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: 'app=smoke' });
      assert.equal(rs.items.length, 1);
      assert.equal(rs.items[0]!.metadata?.ownerReferences?.[0]?.name, 'smoke');
      for (const p of pods) {
        assert.equal(p.metadata?.ownerReferences?.[0]?.name, rs.items[0]!.metadata?.name);
        assert.equal(p.status?.phase, 'Pending', 'nothing runs pods: no kubelet in the plane itself');
      }
    }));

  it('the real RBAC authorizer judges a ServiceAccount token from the TokenRequest API', () =>
    plane.explain(async () => {
      await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'reader' } } });
      const tr = await core.createNamespacedServiceAccountToken({ name: 'reader', namespace: NS, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
      const kc = new KubeConfig();
      kc.loadFromString(plane.kubeconfigFor(tr.status!.token, 'reader'));
      const asReader = kc.makeApiClient(CoreV1Api);
      await assert.rejects(asReader.listNamespacedPod({ namespace: NS }), (err: { code?: number; body?: string }) => {
        assert.equal(err.code, 403);
        assert.match((JSON.parse(String(err.body)) as { message: string }).message, /User "system:serviceaccount:smoke:reader" cannot list resource "pods"/);
        return true;
      });
      const rbac = plane.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
      await rbac.createNamespacedRole({ namespace: NS, body: { metadata: { name: 'reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }] } });
      await rbac.createNamespacedRoleBinding({
        namespace: NS,
        body: { metadata: { name: 'reader' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' }, subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: NS }] },
      });
      const list = await waitUntil('list allowed', () => asReader.listNamespacedPod({ namespace: NS }));
      assert.equal(list.items.length, 3);
    }));

  it('close() stops etcd, the API server and the controller manager and removes the temp dir', async () => {
    const port = Number(new URL(plane.server).port);
    assert.ok(await listening(port));
    await plane.close();
    assert.equal(await listening(port), false);
    assert.equal(existsSync(plane.dir), false);
    assert.equal(existsSync(plane.logPath), false);
  });
});
